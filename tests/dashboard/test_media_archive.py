"""Post media are archived once, in the background, and only the archived copy is ever shown."""
from __future__ import annotations

import hashlib
import json
import stat

import pytest
from sqlmodel import Session, select

from flows import media_archive
from models import AuditEntry, PostMedia
from tests.dashboard.conftest import drain, ingest, login, raw_post

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 + b"first version"


def _post_with(ctx, ext: str, *urls: str) -> int:
    payload = json.dumps({"id": ext, "media": [{"type": "photo", "url": u} for u in urls]})
    [post_id] = ingest(ctx, [raw_post(ext, "man with a knife attacking people", raw_payload=payload)])
    return post_id


def _rows(ctx, post_id: int) -> list[PostMedia]:
    with Session(ctx.engine) as s:
        return list(s.exec(select(PostMedia).where(PostMedia.post_id == post_id).order_by(PostMedia.idx)))


def test_media_is_archived_in_the_background_and_the_archived_copy_is_served(ctx, users, app, media_host, archiving):
    media_host.files["/a.png"] = ("image/png", PNG)
    post_id = _post_with(ctx, "m1", f"{media_host.url}/a.png")
    assert media_host.requests == []  # storing the post fetched nothing: the archive job does, later
    drain(ctx)
    [row] = _rows(ctx, post_id)
    assert (row.status, row.content_type, row.size) == ("archived", "image/png", len(PNG))
    assert row.sha256 == hashlib.sha256(PNG).hexdigest()
    stored = ctx.settings.resolved_media_dir / row.path
    assert stored.read_bytes() == PNG and stat.S_IMODE(stored.stat().st_mode) == 0o600

    # The host changes the picture after review: what Flare shows does not change, and showing it
    # asks the host for nothing.
    media_host.files["/a.png"] = ("image/png", PNG.replace(b"first", b"other"))
    officer = login(app, "officer")
    html = officer.get("/feed").text
    assert media_host.url not in html
    r = officer.post(f"/posts/{post_id}/media/0/reveal", headers={"x-csrf-token": officer.csrf})
    assert r.status_code == 200, r.text
    assert r.json()["url"] == f"/posts/{post_id}/media/0/file" and r.json()["sha256"] == row.sha256
    served = officer.get(r.json()["url"])
    assert served.status_code == 200 and served.content == PNG and served.headers["content-type"] == "image/png"
    assert media_host.requests == ["/a.png"]
    with Session(ctx.engine) as s:
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "media_revealed")).one().detail["sha256"] == row.sha256
    drain(ctx)  # a second run (a re-queued job) archives nothing twice
    assert len(_rows(ctx, post_id)) == 1 and media_host.requests == ["/a.png"]
    assert login(app, "field").get(f"/posts/{post_id}/media/0/file").status_code == 403


def test_what_is_not_archived_is_recorded_with_the_reason_and_cannot_be_shown(ctx, users, app, media_host, archiving):
    archiving.max_bytes = 1000
    media_host.files["/page.html"] = ("text/html", b"<html>tracking</html>")
    media_host.files["/big.jpg"] = ("image/jpeg", b"x" * 5000)
    media_host.files["/chunked-big.jpg"] = ("image/jpeg", b"x" * 5000)
    post_id = _post_with(ctx, "m2", f"{media_host.url}/page.html", f"{media_host.url}/big.jpg",
                         f"{media_host.url}/chunked-big.jpg", f"{media_host.url}/missing.png")
    drain(ctx)
    rows = _rows(ctx, post_id)
    assert [r.status for r in rows] == ["failed"] * 4
    assert "not an image or video (text/html)" in rows[0].error
    assert "larger than 1000 bytes" in rows[1].error and "larger than 1000 bytes" in rows[2].error
    assert "HTTP 404" in rows[3].error
    assert not any(r.path for r in rows)
    officer = login(app, "officer")
    r = officer.post(f"/posts/{post_id}/media/1/reveal", headers={"x-csrf-token": officer.csrf})
    assert r.status_code == 409 and "could not be archived (larger than 1000 bytes)" in r.json()["detail"]


def test_redirects_are_followed_only_a_few_times(ctx, users, media_host, archiving):
    media_host.files["/a.png"] = ("image/png", PNG)
    post_id = _post_with(ctx, "m3", f"{media_host.url}/redirect-to/a.png",
                         f"{media_host.url}/redirect-to/redirect-to/redirect-to/redirect-to/redirect-to/a.png")
    drain(ctx)
    first, looping = _rows(ctx, post_id)
    assert first.status == "archived" and first.sha256 == hashlib.sha256(PNG).hexdigest()
    assert looping.status == "failed" and "too many redirects" in looping.error


def test_private_addresses_are_refused_without_asking_them(ctx, users, media_host, archiving):
    archiving.allow_private_addresses = False  # the production default
    media_host.files["/a.png"] = ("image/png", PNG)
    post_id = _post_with(ctx, "m4", f"{media_host.url}/a.png", "http://localhost:9/x.png", "http://169.254.169.254/latest")
    drain(ctx)
    assert [r.status for r in _rows(ctx, post_id)] == ["failed"] * 3
    assert all("private, loopback or link-local" in r.error for r in _rows(ctx, post_id))
    assert media_host.requests == []



def test_the_fetch_connects_to_the_address_it_checked(ctx, users, media_host, archiving, monkeypatch):
    """DNS rebinding: a name that resolves to a public address when checked and to a private one
    a moment later. The host is resolved once per hop and the connection goes to the address
    checked; the Host header stays the name. (The name does not resolve on this machine at all,
    so the fetch succeeds only through the pinned address.)"""
    port = int(media_host.url.rsplit(":", 1)[1])
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])
    looked_up: list[str] = []

    def rebinding(host: str, _port: int) -> list[str]:
        looked_up.append(host)
        return next(answers)

    monkeypatch.setattr(media_archive, "_lookup", rebinding)
    media_host.files["/a.png"] = ("image/png", PNG)
    post_id = _post_with(ctx, "m6", f"http://media.rebind.invalid:{port}/a.png")
    drain(ctx)
    [row] = _rows(ctx, post_id)
    assert row.status == "archived" and row.sha256 == hashlib.sha256(PNG).hexdigest()
    assert looked_up == ["media.rebind.invalid"]
    assert media_host.hosts == [f"media.rebind.invalid:{port}"]


def test_a_name_with_any_private_address_is_refused(ctx, users, media_host, archiving, monkeypatch):
    archiving.allow_private_addresses = False
    monkeypatch.setattr(media_archive, "_lookup", lambda host, port: ["93.184.216.34", "127.0.0.1"])
    post_id = _post_with(ctx, "m7", "http://mixed.invalid/a.png")
    drain(ctx)
    [row] = _rows(ctx, post_id)
    assert row.status == "failed" and "private, loopback or link-local" in row.error
    assert media_host.requests == []


def test_with_the_archive_off_nothing_is_fetched_or_queued_and_nothing_can_be_revealed(ctx, users, app, media_host):
    assert ctx.settings.media_archive.enabled is False  # how every test runs unless it turns it on
    media_host.files["/a.png"] = ("image/png", PNG)
    post_id = _post_with(ctx, "m5", f"{media_host.url}/a.png")
    assert ctx.queues["media"].count == 0
    drain(ctx)
    assert _rows(ctx, post_id) == [] and media_host.requests == []
    officer = login(app, "officer")
    r = officer.post(f"/posts/{post_id}/media/0/reveal", headers={"x-csrf-token": officer.csrf})
    assert r.status_code == 409 and "has not been archived yet" in r.json()["detail"]
    assert officer.get(f"/posts/{post_id}/media/0/file").status_code == 404


@pytest.mark.parametrize("count", [1, 130])
def test_intake_queues_archive_jobs_in_pages(ctx, users, archiving, count):
    payload = json.dumps({"media": [{"type": "photo", "url": "https://img.example/a.jpg"}]})
    ingest(ctx, [raw_post(f"p{i}", "nothing to see", author=f"u{i}", raw_payload=payload) for i in range(count)])
    assert ctx.queues["media"].count == -(-count // 64)


def test_intake_queues_no_archive_job_for_posts_that_name_no_media(ctx, users, archiving):
    """A burst is mostly words: a post whose payload names no picture or video costs no archive
    job (a job per page would read every post's payload again to find nothing)."""
    with_media = json.dumps({"media": [{"type": "photo", "url": "https://img.example/b.jpg"}]})
    posts = [raw_post(f"w{i}", "nothing to see", author=f"w{i}", raw_payload=json.dumps({"media": []}))
             for i in range(70)]
    posts.append(raw_post("pic", "nothing to see", author="pic", raw_payload=with_media))
    ids = ingest(ctx, posts)
    [job] = ctx.queues["media"].jobs
    assert job.func_name == media_archive.JOB_FUNCTION and job.args[0] == [ids[-1]]


def test_the_file_is_served_only_to_someone_who_revealed_it(ctx, users, app, media_host, archiving):
    """Fetching the archived file's address directly must not skip the content warning and its
    audit entry: only a person whose reveal was recorded gets the bytes (of that item only)."""
    media_host.files["/a.png"] = ("image/png", PNG)
    media_host.files["/b.png"] = ("image/png", PNG)
    post_id = _post_with(ctx, "m9", f"{media_host.url}/a.png", f"{media_host.url}/b.png")
    drain(ctx)
    officer, dispatcher = login(app, "officer"), login(app, "dispatcher")
    assert officer.get(f"/posts/{post_id}/media/0/file").status_code == 403
    assert officer.post(f"/posts/{post_id}/media/0/reveal", headers={"x-csrf-token": officer.csrf}).status_code == 200
    assert officer.get(f"/posts/{post_id}/media/0/file").content == PNG
    assert officer.get(f"/posts/{post_id}/media/1/file").status_code == 403  # another item: not revealed
    assert dispatcher.get(f"/posts/{post_id}/media/0/file").status_code == 403  # another person
