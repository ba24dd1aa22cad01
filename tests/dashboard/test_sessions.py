"""Sessions are held server-side: the cookie is a random id, and signing out, "sign out
everywhere" and deactivating a person end every copy of it."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from dashboard import sessions
from models.access import purge_sessions
from models import AuditEntry, LoginSession, User
from models.types import utcnow
from tests.dashboard.conftest import PASSWORDS, csrf_from, login
from tests.dashboard.test_dashboard_browser import CHROMIUM, browser, sign_in  # noqa: F401


def cookie_of(client: TestClient) -> str:
    return client.cookies.get(sessions.COOKIE)


def copy_of(app, client: TestClient) -> TestClient:
    """Another machine holding a copy of the cookie (stolen, or left on a shared screen)."""
    other = TestClient(app, follow_redirects=False)
    other.cookies.set(sessions.COOKIE, cookie_of(client))
    return other


def row_for(ctx, cookie: str) -> LoginSession | None:
    with Session(ctx.engine) as s:
        return s.exec(select(LoginSession).where(
            LoginSession.token_hash == hashlib.sha256(cookie.encode()).hexdigest())).first()


def signed_in(client: TestClient) -> bool:
    r = client.get("/queue")
    assert r.status_code in (200, 303), r.status_code
    return r.status_code == 200


def test_the_cookie_is_a_random_id_and_a_copy_dies_with_sign_out(ctx, app, users):
    dispatcher = login(app, "dispatcher")
    cookie = cookie_of(dispatcher)
    assert len(cookie) >= 40 and "." not in cookie  # nothing signed or encoded: an opaque id
    row = row_for(ctx, cookie)
    assert row.user_id == users["dispatcher"].id and row.data["user_id"] == users["dispatcher"].id
    assert row.revoked_at is None and row.expires_at > utcnow() + timedelta(hours=11)
    copy = copy_of(app, dispatcher)
    assert signed_in(copy) and copy.get("/api/v1/incidents").status_code == 200
    r = dispatcher.post("/logout", data={"csrf_token": dispatcher.csrf})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert not signed_in(copy)
    assert copy.get("/api/v1/incidents").status_code == 401
    assert not signed_in(dispatcher)
    assert row_for(ctx, cookie).revoked_at is not None


def test_signing_in_gives_a_new_id(ctx, app, users):
    client = TestClient(app, follow_redirects=False)
    token = csrf_from(client.get("/login").text)
    before = cookie_of(client)
    # The sign-in form's own session (its CSRF token) is a signed cookie, not a row.
    assert before.startswith(sessions.ANONYMOUS_PREFIX) and row_for(ctx, before) is None
    client.csrf = None
    planted = copy_of(app, client)  # someone who knew the cookie before sign-in learns nothing
    assert client.post("/login", data={"username": "officer", "password": PASSWORDS["officer"],
                                       "csrf_token": token}).status_code == 303
    after = cookie_of(client)
    assert after != before and "." not in after and row_for(ctx, after).user_id == users["officer"].id
    assert client.get("/feed").status_code == 200
    assert planted.get("/feed").status_code == 303


def test_sign_out_everywhere_ends_every_session_of_that_person_only(ctx, app, users):
    phone, desk = login(app, "dispatcher"), login(app, "dispatcher")
    supervisor = login(app, "supervisor")
    admin = login(app, "admin")
    page = admin.get("/admin").text
    row = page[page.index('data-username="dispatcher"'):]
    assert "2 sessions" in row[:row.index("</tr>")]
    r = admin.post(f"/admin/users/{users['dispatcher'].id}/sign-out", data={"csrf_token": admin.csrf})
    assert r.status_code == 303
    assert "signed out everywhere (2 sessions ended)" in admin.get("/admin").text
    assert not signed_in(phone) and not signed_in(desk)
    assert signed_in(supervisor) and admin.get("/admin").status_code == 200
    with Session(ctx.engine) as s:
        [entry] = s.exec(select(AuditEntry).where(AuditEntry.action == "sign_out_everywhere")).all()
    assert (entry.username, entry.object_id, entry.detail["sessions_ended"]) == ("admin", str(users["dispatcher"].id), 2)
    again = login(app, "dispatcher")  # signing in again works as before
    assert signed_in(again)


def test_a_deactivated_persons_sessions_stop_and_stay_stopped(ctx, app, users):
    dispatcher = login(app, "dispatcher")
    copy = copy_of(app, dispatcher)
    admin = login(app, "admin")
    uid = users["dispatcher"].id
    assert admin.post(f"/admin/users/{uid}/active", data={"csrf_token": admin.csrf, "active": "0"}).status_code == 303
    assert not signed_in(dispatcher) and not signed_in(copy)
    assert admin.post(f"/admin/users/{uid}/active", data={"csrf_token": admin.csrf, "active": "1"}).status_code == 303
    assert not signed_in(copy)  # re-activating does not bring an old cookie back
    with Session(ctx.engine) as s:
        assert s.get(User, uid).active
        assert all(r.revoked_at is not None for r in s.exec(select(LoginSession).where(LoginSession.user_id == uid)))


def test_a_session_past_its_lifetime_is_gone_and_purged(ctx, app, users):
    officer = login(app, "officer")
    cookie = cookie_of(officer)
    with Session(ctx.engine) as s:
        row = s.exec(select(LoginSession).where(LoginSession.token_hash == hashlib.sha256(cookie.encode()).hexdigest())).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        s.add(row)
        s.commit()
    assert officer.get("/feed").status_code == 303
    live = login(app, "supervisor")
    assert purge_sessions(ctx.engine) >= 1
    assert row_for(ctx, cookie) is None and row_for(ctx, cookie_of(live)) is not None
    assert signed_in(live)


def test_a_garbled_or_unknown_cookie_is_no_session(app, users):
    client = TestClient(app, follow_redirects=False)
    client.cookies.set(sessions.COOKIE, "not-a-session")
    assert client.get("/queue").status_code == 303
    r = client.get("/queue", headers={"Cookie": 'flare_session="\\x; bad'})
    assert r.status_code == 303


@pytest.mark.browser
@pytest.mark.timeout(120)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")
def test_sign_out_everywhere_from_the_admin_screen(ctx, users, server, browser):  # noqa: F811
    dispatcher_ctx, dispatcher = sign_in(browser, server, "dispatcher")
    dispatcher.wait_for_url("**/queue")
    admin_ctx, admin = sign_in(browser, server, "admin")
    admin.wait_for_url("**/admin")
    row = admin.locator('#users tr[data-username="dispatcher"]')
    assert row.locator("td.sessions").inner_text() == "1 session"
    row.locator("form.sign-out-everywhere button").click()
    admin.wait_for_url("**/admin")
    assert "dispatcher signed out everywhere (1 session ended)" in admin.locator("body").inner_text()
    assert admin.locator('#users tr[data-username="dispatcher"] td.sessions').inner_text() == "0 sessions"
    dispatcher.goto("/queue")
    dispatcher.wait_for_url("**/login**")
    assert dispatcher.locator("input[name=password]").count() == 1
    admin.goto("/admin")  # the admin's own session is untouched
    assert admin.url.endswith("/admin")
    dispatcher_ctx.close()
    admin_ctx.close()


def test_a_session_in_use_moves_its_expiry_on(ctx, app, users):
    officer = login(app, "officer")
    cookie = cookie_of(officer)
    with Session(ctx.engine) as s:  # signed in two hours ago
        row = s.exec(select(LoginSession).where(LoginSession.token_hash == hashlib.sha256(cookie.encode()).hexdigest())).one()
        row.expires_at = utcnow() + timedelta(hours=10)
        s.add(row)
        s.commit()
    r = officer.get("/api/v1/posts")  # any request
    assert r.status_code == 200 and sessions.COOKIE in r.headers.get("set-cookie", "")
    assert "Max-Age=43200" in r.headers["set-cookie"]
    assert cookie_of(officer) == cookie  # the same id, with a new lifetime
    assert row_for(ctx, cookie).expires_at > utcnow() + timedelta(hours=11, minutes=59)
    r = officer.get("/api/v1/posts")
    assert "set-cookie" not in r.headers  # not again within the hour


def test_visitors_who_are_not_signed_in_cost_no_session_rows(ctx, app, users):
    with Session(ctx.engine) as s:
        rows_before = len(s.exec(select(LoginSession)).all())
    for _ in range(20):  # a flood of sign-in page loads, each without a cookie
        TestClient(app, follow_redirects=False).get("/login")
    with Session(ctx.engine) as s:
        assert len(s.exec(select(LoginSession)).all()) == rows_before


def test_a_signed_out_cookie_cannot_be_forged_into_a_sign_in(ctx, app, users):
    signer = sessions.anonymous_serializer("not the dashboard's key")
    forged = TestClient(app, follow_redirects=False)
    forged.cookies.set(sessions.COOKIE, sessions.ANONYMOUS_PREFIX + signer.dumps({"user_id": users["admin"].id}))
    assert forged.get("/queue").status_code == 303
    real = TestClient(app, follow_redirects=False)
    real.get("/login")
    cookie = cookie_of(real)
    tampered = TestClient(app, follow_redirects=False)
    tampered.cookies.set(sessions.COOKIE, cookie[:-3] + ("AAA" if not cookie.endswith("AAA") else "BBB"))
    assert tampered.get("/queue").status_code == 303
    # Even a correctly signed anonymous cookie never carries a person: sign-in always makes a row.
    loaded, data = sessions.load(ctx.engine, cookie, anonymous=None)
    assert data == {} and loaded.row_id is None
