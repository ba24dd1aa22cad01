"""Wall display: signed in with a revocable key, no idle sign-out, read-only, no reporter details."""
from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from models import AuditEntry, Incident, User
from tests.dashboard.conftest import PASSWORDS, csrf_from, drain, ingest, login, raw_post, wall_key


def _queued(ctx) -> int:
    ingest(ctx, [raw_post("w1", "help my dad collapsed not breathing at 12 High Street call 07700 900123",
                          author="secret_handle")])
    drain(ctx)
    with Session(ctx.engine) as s:
        return s.exec(select(Incident.id)).one()


def test_wall_shows_the_queue_read_only_without_reporter_details(ctx, app, users):
    incident_id = _queued(ctx)
    wall = login(app, "wall")
    page = wall.get("/wall")
    assert page.status_code == 200
    assert f"#{incident_id}" in page.text and "help my dad collapsed" in page.text  # what the queue shows
    assert "secret_handle" not in page.text  # ... and no reporter handle
    assert "07700 900123" not in page.text and "[phone]" in page.text  # nor a number in their words
    assert f'href="/incidents/{incident_id}"' not in page.text  # nothing to open
    assert "/acknowledge" not in page.text and "csrf_token" not in wall.get("/wall/rows").text
    assert 'id="live-lost"' in page.text and 'data-idle="0"' in page.text
    for path in (f"/incidents/{incident_id}", "/queue", "/feed", "/map", "/field", "/supervisor"):
        assert wall.get(path).status_code == 403, path
    r = wall.post(f"/incidents/{incident_id}/acknowledge", data={"csrf_token": wall.csrf})
    assert r.status_code == 403
    with Session(ctx.engine) as s:
        assert s.get(Incident, incident_id).status == "queued"


def test_wall_masks_a_number_cut_off_by_the_first_words(ctx, app, users):
    words = " ".join(["help"] * 13)  # the row shows the first 14 words: the number is cut in two
    ingest(ctx, [raw_post("w9", f"{words} 07700 900123 now", author="w9")])
    drain(ctx)
    assert "07700" in login(app, "dispatcher").get("/queue/rows").text  # the dispatcher's queue has it
    wall_row = login(app, "wall").get("/wall/rows").text
    assert "07700" not in wall_row and "help help" in wall_row


def test_wall_key_is_the_only_way_in_and_not_an_api_token(app, users):
    client = TestClient(app, follow_redirects=False)
    csrf = csrf_from(client.get("/login").text)
    r = client.post("/login", data={"username": "wall", "password": PASSWORDS["wall"], "csrf_token": csrf})
    assert r.status_code == 403 and "wall key" in r.text
    assert client.get("/wall").headers["location"] == "/wall/enter"
    csrf = csrf_from(client.get("/wall/enter").text)
    r = client.post("/wall/enter", data={"key": "not-a-key", "csrf_token": csrf})
    assert r.status_code == 401 and client.get("/wall").status_code == 303
    csrf = csrf_from(client.get("/wall/enter").text)
    # another account's token is no wall key
    r = client.post("/wall/enter", data={"key": "x" * 43, "csrf_token": csrf})
    assert r.status_code == 401
    key = wall_key(app)
    assert client.get("/api/v1/incidents", headers={"authorization": f"Bearer {key}"}).status_code == 401
    assert client.post("/wall/enter", data={"key": key, "csrf_token": csrf}).headers["location"] == "/wall"
    assert client.get("/wall").status_code == 200
    with Session(app.state.ctx.engine) as s:
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "wall_signed_in")).first() is not None


def test_wall_stays_signed_in_past_the_idle_timeout_but_others_do_not(app, users, monkeypatch):
    wall = login(app, "wall")
    dispatcher = login(app, "dispatcher")
    start = time.time()
    # Two nights' worth of refreshes with nobody touching either screen (each refresh re-signs
    # the wall's cookie, so it outlives the cookie's 12-hour lifetime too).
    for hours in (2, 10, 18, 26):
        monkeypatch.setattr(time, "time", lambda h=hours: start + h * 3600)
        assert wall.get("/wall/rows").status_code == 200, hours
    monkeypatch.setattr(time, "time", lambda: start + 2 * 3600)
    assert dispatcher.get("/queue/rows").status_code == 303


def test_a_new_key_or_deactivation_signs_the_wall_out(ctx, app, users):
    admin = login(app, "admin")
    wall = login(app, "wall")
    wall_id = users["wall"].id
    r = admin.post(f"/admin/users/{wall_id}/token", data={"csrf_token": admin.csrf})
    assert r.status_code == 200 and 'id="wall-key-hint"' in r.text
    assert wall.get("/wall/rows").status_code == 303  # the old key's session is over
    assert wall.get("/wall").headers["location"] == "/wall/enter"
    wall = login(app, "wall")
    assert wall.get("/wall/rows").status_code == 200
    admin.post(f"/admin/users/{wall_id}/active", data={"csrf_token": admin.csrf, "active": "0"})
    assert wall.get("/wall/rows").status_code == 303
    with Session(ctx.engine) as s:
        assert not s.get(User, wall_id).active


def test_a_session_carrying_a_wall_key_is_no_wall_for_other_roles(app, users):
    from dashboard.deps import wall_session_valid

    with Session(app.state.ctx.engine) as s:
        dispatcher = s.exec(select(User).where(User.username == "dispatcher")).one()
        wall = s.exec(select(User).where(User.username == "wall")).one()
    assert wall_session_valid(dispatcher, None)
    assert not wall_session_valid(dispatcher, dispatcher.api_token_hash)  # no idle exemption for staff
    assert not wall_session_valid(wall, None)
    assert wall_session_valid(wall, wall.api_token_hash)


def test_what_the_wall_shows_is_audited_like_the_queue(ctx, app, users):
    """A wall shows reporters' first words and places: each page load is recorded, and each
    refresh that shows something new (not every refresh of the same rows)."""
    incident_id = _queued(ctx)
    wall = login(app, "wall")
    assert wall.get("/wall").status_code == 200
    wall.get("/wall/rows")
    wall.get("/wall/rows")
    with Session(ctx.engine) as s:
        rows = s.exec(select(AuditEntry).where(AuditEntry.username == "wall", AuditEntry.action == "view_queue")).all()
    assert [(r.detail["incidents"], r.detail["refresh"]) for r in rows] == [([incident_id], False)]
    ingest(ctx, [raw_post("w9", "man with a knife attacking people outside the station", author="w9")])
    drain(ctx)
    wall.get("/wall/rows")
    with Session(ctx.engine) as s:
        rows = s.exec(select(AuditEntry).where(AuditEntry.username == "wall", AuditEntry.action == "view_queue")).all()
    assert [(len(r.detail["incidents"]), r.detail["refresh"]) for r in rows] == [(1, False), (2, True)]
