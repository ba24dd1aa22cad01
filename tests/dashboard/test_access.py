"""Who may open or do what: role checks on every dashboard route, CSRF, and no IDOR."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from models.access import can
from models import AuditEntry, Incident, OutboundMessage
from models.enums import Role
from tests.dashboard.conftest import drain, ingest, login, raw_post

# (method, path template, capabilities that open it). {i}: an incident, {p}: a post, {u}: a user.
ROUTES: list[tuple[str, str, tuple[str, ...]]] = [
    ("GET", "/feed", ("feed",)),
    ("GET", "/feed/rows", ("feed",)),
    ("GET", "/queue", ("queue",)),
    ("GET", "/queue/rows", ("queue",)),
    ("GET", "/incidents/{i}", ("view_incident",)),
    ("GET", "/map", ("view_incident",)),
    ("GET", "/map/incidents.json", ("view_incident",)),
    ("GET", "/map/base/{layer}.geojson", ("view_incident", "field")),
    ("GET", "/field", ("field",)),
    ("GET", "/field/rows", ("field",)),
    ("GET", "/field/incidents/{i}", ("field",)),
    ("GET", "/supervisor", ("supervise",)),
    ("GET", "/admin", ("admin",)),
    ("GET", "/wall", ("wall",)),
    ("GET", "/wall/rows", ("wall",)),
    ("POST", "/posts/{p}/escalate", ("escalate_post",)),
    ("POST", "/posts/{p}/dispose", ("dispose_post",)),
    ("POST", "/posts/{p}/attach", ("dispose_post",)),
    ("POST", "/posts/{p}/media/{m}/reveal", ("feed", "view_incident")),
    ("POST", "/incidents/{i}/acknowledge", ("acknowledge",)),
    ("POST", "/incidents/{i}/claim", ("acknowledge",)),
    ("POST", "/incidents/{i}/release", ("acknowledge",)),
    ("POST", "/incidents/{i}/take-over", ("acknowledge",)),
    ("POST", "/incidents/{i}/reassign", ("acknowledge",)),
    ("POST", "/incidents/{i}/reply", ("reply",)),
    ("POST", "/incidents/{i}/resolve", ("resolve",)),
    ("POST", "/incidents/{i}/close", ("resolve",)),
    ("POST", "/incidents/{i}/false-alarm", ("resolve",)),
    ("POST", "/incidents/{i}/merge", ("resolve",)),
    ("POST", "/incidents/{i}/split", ("resolve",)),
    ("POST", "/admin/users", ("admin",)),
    ("POST", "/admin/users/{u}/active", ("admin",)),
    ("POST", "/admin/users/{u}/token", ("admin",)),
    ("POST", "/admin/users/{u}/sign-out", ("admin",)),
    ("POST", "/admin/policies", ("admin",)),
]
# Routes every signed-in person has (their own settings, the live stream, sign-out).
PERSONAL = {("POST", "/me/alerts"), ("GET", "/live/events"), ("POST", "/logout"), ("GET", "/"),
            ("GET", "/login"), ("POST", "/login"), ("GET", "/wall/enter"), ("POST", "/wall/enter")}
VIEW_MODULES = ("dashboard.routes.pages", "dashboard.routes.feed", "dashboard.routes.incidents",
                "dashboard.routes.media", "dashboard.routes.map", "dashboard.routes.field",
                "dashboard.routes.supervisor", "dashboard.routes.admin", "dashboard.routes.live",
                "dashboard.routes.wall")


@pytest.fixture
def world(ctx, users):
    """One queued incident with one post carrying media, and one extra user to act on."""
    payload = '{"id": "m1", "media": [{"type": "photo", "url": "https://media.example/1.jpg"}]}'
    [post_id] = ingest(ctx, [raw_post("m1", "help my dad collapsed not breathing", raw_payload=payload)])
    drain(ctx)
    with Session(ctx.engine) as s:
        incident_id = s.exec(select(Incident.id)).one()
    return {"i": incident_id, "p": post_id, "m": 0, "u": users["field"].id, "layer": "area"}


def test_every_view_route_is_in_the_role_table(app):
    listed = {(m, p) for m, p, _ in ROUTES} | PERSONAL
    for route in app.routes:
        endpoint = getattr(route, "endpoint", None)
        if endpoint is None or endpoint.__module__ not in VIEW_MODULES:
            continue
        for method in route.methods - {"HEAD"}:
            path = (route.path.replace("{incident_id}", "{i}").replace("{post_id}", "{p}")
                    .replace("{user_id}", "{u}").replace("{index}", "{m}"))
            assert (method, path) in listed, f"{method} {route.path} has no role test"


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_role_checks_on_every_route(app, world, role):
    client = login(app, role)
    for method, template, caps in ROUTES:
        path = template.format(**world)
        if method == "GET":
            r = client.get(path)
        else:
            r = client.post(path, data={"csrf_token": client.csrf, "disposition": "reviewed",
                                        "incident_id": world["i"], "to_username": "dispatcher",
                                        "others": "999", "post_ids": world["p"], "text": "x", "post_id": world["p"],
                                        "username": f"new{role}", "role": "officer", "password": "short",
                                        "active": "1", "policy": "{}", "action": "validate"})
        may = any(can(role, c) for c in caps)
        if may:
            assert r.status_code != 403, f"{role} refused {method} {path}: {r.text[:200]}"
        else:
            assert r.status_code == 403, f"{role} reached {method} {path} ({r.status_code})"
    client.close()


def test_the_briefs_two_refusals(app, world):
    field = login(app, "field")
    assert field.post(f"/incidents/{world['i']}/acknowledge", data={"csrf_token": field.csrf}).status_code == 403
    officer = login(app, "officer")
    assert officer.get("/admin").status_code == 403


def test_signed_out_visitors_are_sent_to_login(app, world):
    client = TestClient(app, follow_redirects=False)
    for method, template, _ in ROUTES:
        if method != "GET":
            continue
        r = client.get(template.format(**world))
        location = r.headers["location"]
        if template.startswith("/wall"):  # a wall display signs in with its key, on its own page
            assert r.status_code == 303 and location == "/wall/enter", template
            continue
        assert r.status_code == 303 and location.split("?")[0] == "/login", template
        assert "expired" not in location, template  # never signed in: nothing expired
        # ... and back to the page asked for once signed in
        assert location == "/login" or location.startswith("/login?next=%2F"), template
    assert client.get("/live/events").status_code == 401


@pytest.mark.parametrize("path", ["/incidents/{i}/acknowledge", "/posts/{p}/escalate", "/admin/policies",
                                  "/posts/{p}/media/0/reveal", "/incidents/{i}/reply", "/me/alerts"])
def test_forms_without_the_sessions_csrf_token_are_refused(app, world, path):
    dispatcher = login(app, "dispatcher")
    admin = login(app, "admin")
    url = path.format(**world)
    owner = admin if url.startswith("/admin") else dispatcher
    other = login(app, "officer")  # a valid token, but from someone else's session
    for token in (None, "", "forged", other.csrf):
        data = {"policy": "{}", "muted": "1", "post_id": world["p"], "text": "hello"}
        if token is not None:
            data["csrf_token"] = token
        r = owner.post(url, data=data)
        assert r.status_code == 403 and "CSRF" in r.text, (url, token, r.status_code)
    with Session(owner.app.state.ctx.engine) as s:
        incident = s.get(Incident, world["i"])
        assert incident.status == "queued"  # nothing happened


def test_reply_cannot_target_a_post_outside_the_incident(ctx, app, world):
    [other_post] = ingest(ctx, [raw_post("o1", "someone is breaking in next door", author="someone-else")])
    drain(ctx)
    dispatcher = login(app, "dispatcher")
    r = dispatcher.post(f"/incidents/{world['i']}/reply",
                        data={"csrf_token": dispatcher.csrf, "post_id": other_post, "text": "hello", "kind": "dm"},
                        headers={"x-requested-with": "flare"})
    assert r.status_code == 404
    with Session(ctx.engine) as s:
        assert s.exec(select(OutboundMessage).where(OutboundMessage.purpose == "manual")).all() == []


def test_silent_reporters_never_get_a_public_reply(ctx, app, world):
    with Session(ctx.engine) as s:
        incident = s.get(Incident, world["i"])
        incident.silent = True
        s.add(incident)
        s.commit()
    dispatcher = login(app, "dispatcher")
    r = dispatcher.post(f"/incidents/{world['i']}/reply",
                        data={"csrf_token": dispatcher.csrf, "post_id": world["p"], "text": "are you ok",
                              "kind": "public_reply"}, headers={"x-requested-with": "flare"})
    assert r.status_code == 422
    with Session(ctx.engine) as s:
        assert s.exec(select(OutboundMessage).where(OutboundMessage.purpose == "manual")).all() == []


def test_media_of_a_missing_post_or_index_is_not_found(app, world):
    officer = login(app, "officer")
    assert officer.post(f"/posts/{world['p']}/media/5/reveal", data={"csrf_token": officer.csrf}).status_code == 404
    assert officer.post("/posts/99999/media/0/reveal", data={"csrf_token": officer.csrf}).status_code == 404


def test_next_never_leaves_the_site(app, world):
    officer = login(app, "officer")
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        r = officer.post(f"/posts/{world['p']}/dispose",
                         data={"csrf_token": officer.csrf, "disposition": "reviewed", "next": target})
        assert r.status_code == 303 and r.headers["location"] == "/feed", target


def test_admin_actions_on_unknown_users_are_not_found(app, world):
    admin = login(app, "admin")
    assert admin.post("/admin/users/99999/token", data={"csrf_token": admin.csrf}).status_code == 404
    assert admin.post("/admin/users/99999/active", data={"csrf_token": admin.csrf, "active": "0"}).status_code == 404


def test_audit_records_who_was_refused_nothing_but_who_acted(ctx, app, world):
    dispatcher = login(app, "dispatcher")
    r = dispatcher.post(f"/incidents/{world['i']}/acknowledge", data={"csrf_token": dispatcher.csrf})
    assert r.status_code == 303
    with Session(ctx.engine) as s:
        actions = [a.action for a in s.exec(select(AuditEntry).where(AuditEntry.username == "dispatcher"))]
        assert "acknowledged" in actions
        assert s.get(Incident, world["i"]).acknowledged_by == "dispatcher"


def test_refusals_read_as_a_page_in_a_browser_and_as_json_elsewhere(app, world):
    officer = login(app, "officer")
    page = officer.get("/admin", headers={"accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 403 and "Not available to your role" in page.text
    assert 'href="/feed"' in page.text  # back to the officer's own screen
    assert officer.get("/admin").json()["detail"].startswith("your role (officer)")
    api = officer.get("/api/v1/incidents/999", headers={"accept": "text/html"})
    assert api.headers["content-type"].startswith("application/json")
