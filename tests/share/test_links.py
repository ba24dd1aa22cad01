"""Share links over plain HTTP: sending, device binding, consent, refusal, tampering, expiry, revoke."""
from __future__ import annotations

import re
import socket
import time

import httpx
import pytest
from runtime.worker import FlareWorker
from sqlmodel import Session, select

from flows.context import WORKER_QUEUES
from dashboard.security import create_user
from dashboard.share import links
from dashboard.share.links import LinkError, LinkProblem
from models.media import ShareLink
from models.tables import AuditEntry, Incident, OutboundMessage
from share_test_helpers import DISPATCHER_PASSWORD, jpeg_bytes, signed_in_dispatcher


def reporter(env, user_agent: str = "Mozilla/5.0 (Linux; Android 14) Mobile") -> httpx.Client:
    return httpx.Client(base_url=env.base, headers={"User-Agent": user_agent}, timeout=10)


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def consent(client: httpx.Client, path: str, answer: str = "agree") -> httpx.Response:
    return client.post(f"{path}/consent", data={"answer": answer}, headers={"Origin": str(client.base_url).rstrip("/")})


def link_row(env, link_id: int) -> ShareLink:
    with Session(env.ctx.engine) as s:
        return s.get(ShareLink, link_id)


def test_dispatcher_sends_link_by_dm_and_roles_are_enforced(share_env):
    sent = share_env.new_link()
    assert sent["delivery"] == "dm" and sent["url"].startswith(share_env.base + "/s/")
    FlareWorker([share_env.ctx.queues[q] for q in WORKER_QUEUES], connection=share_env.ctx.redis).work(burst=True)
    with Session(share_env.ctx.engine) as s:
        msg = s.get(OutboundMessage, sent["message_id"])
        assert (msg.purpose, msg.kind, msg.status) == ("share_link", "dm", "sent")
    [request] = share_env.ctx.repliers["x"].sent
    assert sent["url"] in request.text and "999" in request.text
    assert "fire next door" not in request.text  # never echo the reporter's words
    assert any(e.data.get("share") == "link_created" for e in share_env.events("note"))

    officer = httpx.post(f"{share_env.base}/api/v1/incidents/{share_env.incident_id}/share-link",
                         headers={"Authorization": f"Bearer {share_env.officer_token}"})
    assert officer.status_code == 403
    # The incident page's form: refused without the session's CSRF token, accepted with it.
    browser, csrf = signed_in_dispatcher(share_env)
    try:
        form = f"/incidents/{share_env.incident_id}/share-link"
        assert browser.post(form, data={"csrf_token": "wrong"}).status_code == 403
        r = browser.post(form, data={"csrf_token": csrf, "next": "https://evil.example/"})
        assert r.status_code == 303 and r.headers["location"] == f"/incidents/{share_env.incident_id}/share"
        assert "Share link sent by direct message" in browser.get(r.headers["location"]).text
    finally:
        browser.close()
    with Session(share_env.ctx.engine) as s:
        assert len(s.exec(select(ShareLink)).all()) == 2


def test_first_device_binds_the_link_and_consent_is_recorded(share_env):
    path = path_of(share_env.new_link()["url"])
    with reporter(share_env) as phone, reporter(share_env, "Mozilla/5.0 (iPhone) Mobile") as other:
        page = phone.get(path)
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self';" in csp and "unsafe" not in csp
        assert f"connect-src 'self' ws://{share_env.base.split('//')[1]};" in csp
        assert "microphone=()" in page.headers["permissions-policy"]
        assert "Nothing is shared until you agree" in page.text and "Flare Emergency Service" in page.text
        assert 'id="btn-location"' not in page.text  # no sharing controls before consent
        assert links.DEVICE_COOKIE in phone.cookies

        used = other.get(path)
        assert used.status_code == 403 and "already been used" in used.text and "999" in used.text
        assert consent(other, path).status_code == 403  # nor can the other device consent

        r = consent(phone, path)
        assert r.status_code == 303
        page = phone.get(path)
        assert 'id="btn-location"' in page.text and 'id="btn-stop"' in page.text
    link = link_row(share_env, int(share_env.state()["links"][0]["id"]))
    assert link.consent_at is not None and link.consent_scope == links.CONSENT_SCOPE
    assert "Android" in link.consent_user_agent and "evidence" in link.consent_text
    assert any(e.data.get("share") == "consent_given" for e in share_env.events("note"))


def test_link_preview_fetchers_do_not_use_up_the_link(share_env):
    path = path_of(share_env.new_link()["url"])
    with reporter(share_env, "Twitterbot/1.0") as bot, reporter(share_env) as phone:
        assert bot.get(path).status_code == 200
        assert phone.get(path).status_code == 200
        assert bot.get(path).status_code == 403


def test_refusing_consent_stores_nothing(share_env):
    path = path_of(share_env.new_link()["url"])
    with reporter(share_env) as phone:
        phone.get(path)
        r = consent(phone, path, "decline")
        assert "You chose not to share" in r.text and "999" in r.text
        photo = phone.post(f"{path}/photo", files={"photo": ("a.jpg", jpeg_bytes(1), "image/jpeg")},
                           headers={"Origin": share_env.base})
        assert photo.status_code == 409
        assert consent(phone, path, "agree").status_code == 200  # shows "declined"; consent not recorded
        assert "You chose not to share" in phone.get(path).text
    link = link_row(share_env, share_env.state()["links"][0]["id"])
    assert link.declined_at is not None and link.consent_at is None and link.consent_user_agent == ""
    assert share_env.items() == [] and share_env.media_files() == []
    assert share_env.events("media_received") == []


def test_tampered_link_is_refused(share_env):
    path = path_of(share_env.new_link()["url"])
    token = path.rsplit("/", 1)[1]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    with reporter(share_env) as phone:
        for bad in (f"/s/{flipped}", f"/s/{token}x", "/s/not-a-token"):
            r = phone.get(bad)
            assert r.status_code == 404 and "not valid" in r.text and 'href="tel:999"' in r.text
        assert links.DEVICE_COOKIE not in phone.cookies


def test_expired_link_is_refused(share_env):
    share_env.settings.share.link_ttl_minutes = 1 / 60  # one second
    path = path_of(share_env.new_link()["url"])
    time.sleep(2.2)
    with reporter(share_env) as phone:
        r = phone.get(path)
        assert r.status_code == 410 and "expired" in r.text and "999" in r.text


def test_expiry_uses_the_stored_deadline(share_env):
    """A frozen clock at the deadline: the database row decides even while the signature is young."""
    sent = share_env.new_link()
    token = path_of(sent["url"]).rsplit("/", 1)[1]
    link = link_row(share_env, sent["link_id"])
    with Session(share_env.ctx.engine) as s:
        assert links.load_link(s, share_env.settings, token, now=link.created_at).id == link.id
        with pytest.raises(LinkError) as err:
            links.load_link(s, share_env.settings, token, now=link.expires_at)
    assert err.value.problem == LinkProblem.expired


def test_revoked_link_stops_working(share_env):
    sent = share_env.new_link()
    path = path_of(sent["url"])
    with reporter(share_env) as phone:
        phone.get(path)
        consent(phone, path)
        with share_env.api() as api:
            r = api.post(f"/api/v1/incidents/{share_env.incident_id}/share-link/{sent['link_id']}/revoke")
            assert r.status_code == 200
        page = phone.get(path)
        assert page.status_code == 410 and "cancelled" in page.text
        photo = phone.post(f"{path}/photo", files={"photo": ("a.jpg", jpeg_bytes(2), "image/jpeg")},
                           headers={"Origin": share_env.base})
        assert photo.status_code == 410
    assert share_env.state()["links"][0]["status"] == "revoked"
    with Session(share_env.ctx.engine) as s:
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "share_link_revoked")).first()


def test_photo_checks_type_size_and_origin(share_env):
    share_env.settings.share.max_upload_bytes = 4096
    path = path_of(share_env.new_link()["url"])
    with reporter(share_env) as phone:
        phone.get(path)
        consent(phone, path)
        origin = {"Origin": share_env.base}
        assert phone.post(f"{path}/photo", files={"photo": ("x.jpg", b"<svg onload=alert(1)>", "image/jpeg")},
                          headers=origin).status_code == 415
        assert phone.post(f"{path}/photo", files={"photo": ("x.jpg", b"\xff\xd8\xff" + b"0" * 5000, "image/jpeg")},
                          headers=origin).status_code == 413
        assert phone.post(f"{path}/photo", files={"photo": ("x.jpg", jpeg_bytes(3), "image/jpeg")},
                          headers={"Origin": "http://evil.example"}).status_code == 404
        ok = phone.post(f"{path}/photo", files={"photo": ("x.jpg", jpeg_bytes(4), "image/jpeg")}, headers=origin)
        assert ok.status_code == 200
    [photo] = share_env.items("photo")
    assert photo.sha256 == ok.json()["sha256"] and photo.content_type == "image/jpeg"


def test_no_link_for_a_closed_incident_and_head_requests_do_not_bind(share_env):
    path = path_of(share_env.new_link()["url"])
    with reporter(share_env) as first, reporter(share_env) as phone:
        assert first.head(path).status_code == 200
        assert phone.get(path).status_code == 200  # the HEAD did not take the link
    with Session(share_env.ctx.engine) as s:
        incident = s.get(Incident, share_env.incident_id)
        incident.status = "closed"
        s.add(incident)
        s.commit()
    with share_env.api() as api:
        r = api.post(f"/api/v1/incidents/{share_env.incident_id}/share-link")
    assert r.status_code == 409 and "closed" in r.json()["detail"]


@pytest.mark.parametrize("silent, dm, expected", [(False, True, "dm"), (False, False, "public_reply"),
                                                  (True, False, None)])
def test_link_message_goes_by_dm_and_never_publicly_to_a_silent_contact(share_env, silent, dm, expected):
    with Session(share_env.ctx.engine, expire_on_commit=False) as s:
        incident = s.get(Incident, share_env.incident_id)
        incident.silent = silent
        s.add(incident)
        created = links.create_link(s, share_env.settings, share_env.incident_id, "dana", lambda _post: dm)
        s.commit()
    assert (created.message.kind if created.message else None) == expected
    assert share_env.state()["links"][0]["sent_as"] == (expected or "not sent")
    if created.message:
        assert created.url in created.message.text


def test_public_reply_with_the_link_fits_a_short_post(share_env):
    with Session(share_env.ctx.engine, expire_on_commit=False) as s:
        created = links.create_link(s, share_env.settings, share_env.incident_id, "dana", lambda _post: False)
        s.commit()
    assert created.message.kind == "public_reply"
    assert len(created.message.text) <= 300 and created.url in created.message.text


def _signed_in(env, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=env.base, follow_redirects=False, timeout=10)
    page = client.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"username": username, "password": password, "csrf_token": csrf})
    assert r.status_code == 303, r.text
    return client


def test_share_link_urls_are_shown_only_to_roles_that_can_send_links(share_env):
    sent = share_env.new_link()
    path = path_of(sent["url"])
    with Session(share_env.ctx.engine) as s:
        _, admin_token = create_user(s, "ada", "admin-pw-123456", "admin")
        s.commit()
    messages = f"/api/v1/incidents/{share_env.incident_id}/messages"
    with share_env.api() as dispatcher:
        [mine] = [m for m in dispatcher.get(messages).json() if m["purpose"] == "share_link"]
    assert path in mine["text"]  # the dispatcher checks the address the reporter was sent
    for token in (share_env.officer_token, admin_token):
        r = httpx.get(share_env.base + messages, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        [theirs] = [m for m in r.json() if m["purpose"] == "share_link"]
        assert path not in r.text and "/s/" not in theirs["text"]
        assert links.LINK_HIDDEN in theirs["text"] and theirs["text"].startswith(share_env.settings.service.name)
    officer = _signed_in(share_env, "oliver", "officer-pw-123")
    dispatcher = _signed_in(share_env, "dana", DISPATCHER_PASSWORD)
    try:
        page = officer.get(f"/incidents/{share_env.incident_id}")
        assert page.status_code == 200 and path not in page.text and "/s/" not in page.text
        assert "shown only to people who can send links" in page.text
        assert path in dispatcher.get(f"/incidents/{share_env.incident_id}").text
    finally:
        officer.close()
        dispatcher.close()
    # The link is still unused: nobody without the right to send it could have opened it first.
    assert link_row(share_env, sent["link_id"]).device_hash in (None, "")


def test_an_upload_to_a_link_that_cannot_take_it_is_refused_before_its_body_is_read(share_env):
    """A forged, used or unconsented link costs the server no upload: the answer comes while the
    (declared 10 MB) body has barely started, and the connection is not kept to read the rest."""
    host, port = share_env.base.removeprefix("http://").split(":")
    sent = share_env.new_link()
    unconsented = path_of(sent["url"])
    for path in ("/s/not-a-token", unconsented):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(f"POST {path}/photo HTTP/1.1\r\nHost: {host}:{port}\r\nOrigin: {share_env.base}\r\n"
                         "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 10000000\r\n\r\n"
                         "--b\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.jpg\"\r\n\r\n".encode())
            sock.settimeout(5)
            try:
                head = sock.recv(4096)
            except TimeoutError:
                head = b"(no answer while the body was still owed)"
        assert head.split(b"\r\n", 1)[0] in (b"HTTP/1.1 404 Not Found", b"HTTP/1.1 409 Conflict"), (path, head[:80])
