"""Every route the app serves, enumerated from the app itself (not from a list kept by hand): each
state-changing one needs the session's CSRF token, and each one either is public on purpose or
checks the sign-in and the role's capability, which refuses exactly the roles without it."""
from __future__ import annotations

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from dashboard.deps import check_csrf, current_user
from models import Incident
from models.access import can
from models.enums import Role
from tests.dashboard.conftest import drain, ingest, login, raw_post

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Reachable without signing in, on purpose: probes, the sign-in pages, and the reporter's share
# link (its signed token and device cookie are the credentials; tests/share covers them).
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/login"), ("POST", "/login"),
          ("POST", "/logout"), ("GET", "/wall/enter"), ("POST", "/wall/enter")}
REPORTER_PREFIX = "/s/{token}"
# Streams check the sign-in inside the route (it must not hold a database session open).
SIGNED_IN_INSIDE = {("GET", "/live/events")}
STREAMS = {"/live/events"}


def _routes(app):
    def walk(routes):
        for route in routes:
            inner = getattr(route, "original_router", None)
            yield from walk(inner.routes) if inner is not None else [route]
    return [r for r in walk(app.routes) if isinstance(r, APIRoute)]


def _calls(dependant):
    for dep in dependant.dependencies:
        yield dep.call
        yield from _calls(dep)


def _capabilities(route) -> tuple[str, ...] | None:
    """The capabilities a route's role check accepts (require / require_any), None without one."""
    for call in _calls(route.dependant):
        if getattr(call, "__qualname__", "") in ("require.<locals>.check", "require_any.<locals>.check"):
            [cell] = call.__closure__
            value = cell.cell_contents
            return (value,) if isinstance(value, str) else tuple(value)
    return None


def _endpoints(app):
    for route in _routes(app):
        for method in sorted(route.methods - {"HEAD"}):
            yield method, route


@pytest.fixture
def world(ctx, users):
    [post_id] = ingest(ctx, [raw_post("g1", "help my dad collapsed not breathing")])
    drain(ctx)
    with Session(ctx.engine) as s:
        incident_id = s.exec(select(Incident.id)).one()
    return {"incident_id": incident_id, "post_id": post_id, "user_id": users["field"].id, "index": 0,
            "link_id": 1, "item_id": 1, "layer": "area", "token": "x"}


def test_the_app_has_the_routes_this_file_reasons_about(app):
    paths = {(m, r.path) for m, r in _endpoints(app)}
    assert PUBLIC | SIGNED_IN_INSIDE <= paths
    assert len([p for p in paths if p[0] in MUTATING]) > 40
    # No route bypasses the HTTP stack (WebSockets are the reporter's channel only).
    sockets = [r.path for r in app.routes if isinstance(r, APIWebSocketRoute)]
    assert all(p.startswith(REPORTER_PREFIX) for p in sockets)


def test_every_state_changing_route_depends_on_the_csrf_check(app):
    missing = [f"{m} {r.path}" for m, r in _endpoints(app)
               if m in MUTATING and not r.path.startswith(REPORTER_PREFIX) and check_csrf not in set(_calls(r.dependant))]
    assert missing == []


def test_every_route_is_public_on_purpose_or_checks_sign_in(app):
    unguarded = [f"{m} {r.path}" for m, r in _endpoints(app)
                 if (m, r.path) not in PUBLIC | SIGNED_IN_INSIDE and not r.path.startswith(REPORTER_PREFIX)
                 and current_user not in set(_calls(r.dependant))]
    assert unguarded == []


@pytest.mark.parametrize("as_json", [False, True])
def test_every_state_changing_route_refuses_a_request_without_the_token(app, world, users, as_json):
    """Sent as a signed-in browser would be tricked into sending it: the session cookie, no token
    (or a wrong one). Refused with 403 before anything runs, whatever the role or the body."""
    clients = {role: login(app, role) for role in ("supervisor", "admin")}
    for method, route in _endpoints(app):
        if method not in MUTATING or route.path.startswith(REPORTER_PREFIX):
            continue
        client = clients["admin" if route.path.startswith("/admin") else "supervisor"]
        url = route.path.format(**world)
        for token in (None, "forged"):
            if as_json:
                headers = {"x-requested-with": "flare"} | ({"x-csrf-token": token} if token else {})
                r = client.request(method, url, json={"post_id": world["post_id"], "text": "x"}, headers=headers)
            else:
                data = {"text": "x", "disposition": "reviewed"} | ({"csrf_token": token} if token else {})
                r = client.request(method, url, data=data)
            assert r.status_code == 403 and "CSRF" in r.text, (method, route.path, token, r.status_code, r.text[:200])


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_each_role_is_refused_exactly_the_routes_it_lacks_the_capability_for(app, world, role):
    """Derived from the route's own check, then confirmed over HTTP: a field unit or an officer
    calling supervisor or admin routes gets 403; what the role may open is not refused."""
    client = login(app, role)
    checked = 0
    for method, route in _endpoints(app):
        caps = _capabilities(route)
        if caps is None:
            continue
        url = route.path.format(**world)
        allowed = any(can(role, c) for c in caps)
        if method in MUTATING:
            if allowed:
                continue  # acting is tested per route elsewhere; a refusal changes nothing
            r = client.request(method, url, data={"csrf_token": client.csrf},
                               headers={"x-csrf-token": client.csrf})
        else:
            if route.path in STREAMS:
                continue
            r = client.get(url)
        checked += 1
        if allowed:
            assert r.status_code != 403, (role, method, route.path, r.text[:200])
        else:
            assert r.status_code == 403 and f"your role ({role})" in r.text, (role, method, route.path, r.status_code)
    assert checked > 20


def test_signed_out_callers_get_nothing_from_any_guarded_route(app, world):
    anonymous = TestClient(app, follow_redirects=False)
    for method, route in _endpoints(app):
        if (method, route.path) in PUBLIC or route.path.startswith(REPORTER_PREFIX):
            continue
        r = anonymous.request(method, route.path.format(**world))
        if method in MUTATING:
            assert r.status_code == 403, (method, route.path, r.status_code)  # no session: no token
        elif route.path.startswith(("/api/", "/live/", "/openapi")):
            assert r.status_code == 401, (method, route.path, r.status_code)
        else:
            assert r.status_code == 303 and r.headers["location"].split("?")[0] in ("/login", "/wall/enter"), route.path


HOSTILE = "<script>alert('owned')</script><img src=x onerror=alert(1)> help there is a fire in my kitchen"


@pytest.mark.parametrize("role", ["officer", "supervisor", "admin", "field", "wall"])
def test_a_hostile_post_is_text_on_every_page_a_role_can_open(ctx, app, users, role):
    """Every page the app serves (enumerated, not listed) shows a post's markup as text."""
    ingest(ctx, [raw_post("x1", HOSTILE, author="<b>attacker</b>")])
    drain(ctx)
    with Session(ctx.engine) as s:
        incident_id = s.exec(select(Incident.id)).one()
    world = {"incident_id": incident_id, "post_id": 1, "user_id": 1, "index": 0, "link_id": 1, "item_id": 1,
             "layer": "area", "token": "x"}
    client = login(app, role)
    pages = shown = 0
    for method, route in _endpoints(app):
        if method != "GET" or route.path in STREAMS:
            continue
        r = client.get(route.path.format(**world))
        if r.status_code != 200 or not r.headers.get("content-type", "").startswith("text/html"):
            continue
        pages += 1
        shown += "there is a fire in my kitchen" in r.text
        assert "<script>alert" not in r.text and "<img src=x" not in r.text and "<b>attacker" not in r.text, route.path
    assert pages >= 2 and shown >= 1  # the post was on some page, as text


def _img_src(response) -> set[str]:
    policy = dict(d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";") if d.strip())
    return set(policy["img-src"].split())


@pytest.mark.parametrize("tile_url, allowed", [
    ("", set()),
    ("https://tiles.example.org/{z}/{x}/{y}.png", {"https://tiles.example.org"}),
    ("https://{s}.tile.example.net:8443/{z}/{x}/{y}.png?key=k", {"https://*.tile.example.net:8443"}),
])
def test_pages_load_images_only_from_flare_and_the_configured_tile_server(ctx, app, users, tile_url, allowed):
    """The policy's promise, kept: were some markup ever to slip through escaping, it could not
    load an image from (and so send anything to) any other host."""
    ctx.settings.dashboard.tile_url = tile_url
    client = login(app, "supervisor")
    for path in ("/login", "/map", "/queue"):
        assert _img_src(client.get(path)) == {"'self'", "data:", "blob:"} | allowed, path
