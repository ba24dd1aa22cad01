"""No browser or proxy keeps a copy of anything carrying reporters' words: every page and JSON
answer (signed in or not, success or error) says Cache-Control: no-store; only static assets may be cached."""
from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Route
from sqlmodel import Session, select

from models import GeoPoint, Incident, Post
from tests.dashboard.conftest import drain, ingest, raw_post

STREAMS = {"/live/stream", "/live/events", "/events"}


@pytest.fixture
def world(ctx, users):
    ingest(ctx, [raw_post("n1", "help my dad collapsed not breathing 12 High St", geo=GeoPoint(51.5, -0.12))])
    drain(ctx)
    with Session(ctx.engine) as s:
        return {"incident_id": s.exec(select(Incident.id)).first(), "post_id": s.exec(select(Post.id)).first(),
                "user_id": 1, "link_id": 1, "item_id": 1, "index": 0, "token": "x"}


def _routes(routes):
    for route in routes:
        inner = getattr(route, "original_router", None)  # an included router
        yield from _routes(inner.routes) if inner is not None else [route]


def _get_paths(app, world) -> list[str]:
    paths = []
    for route in _routes(app.routes):
        if not isinstance(route, (APIRoute, Route)) or "GET" not in (route.methods or ()):
            continue
        if any(s in route.path for s in ("stream", "/sse", "/ws")) or route.path in STREAMS:
            continue
        try:
            paths.append(route.path.format(**world))
        except KeyError:
            continue
    return sorted(set(paths))


@pytest.mark.parametrize("role", ["supervisor", "admin", "officer", "field"])
def test_every_page_and_json_answer_is_no_store(app, world, client_for, role):
    client = client_for(role)
    paths = _get_paths(app, world)
    assert {"/feed", "/queue", "/api/v1/posts", "/map/incidents.json", "/openapi.json"} <= set(paths)
    seen = set()
    for path in paths:
        r = client.get(path, headers={"accept": "text/html"})
        assert r.headers.get("cache-control") == "no-store", (role, path, r.status_code, r.headers.get("cache-control"))
        seen.add(r.status_code)
    assert 200 in seen and (403 in seen or 303 in seen or 404 in seen)  # errors too, not only successes


def test_anonymous_answers_and_errors_are_no_store(app):
    from fastapi.testclient import TestClient

    client = TestClient(app, follow_redirects=False)
    for path in ("/login", "/feed", "/api/v1/posts", "/no-such-page", "/api/v1/incidents/0"):
        assert client.get(path).headers.get("cache-control") == "no-store", path
    assert "no-store" not in client.get("/static/flare.css").headers.get("cache-control", "")
