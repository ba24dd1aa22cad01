"""GET /api/v1/backlog: queue depths per lane, posts pending triage and the oldest one's age."""
from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from connectors.intake import persist_posts
from flows import intake
from dashboard.app import create_app
from flows.context import AppContext, set_process_context
from dashboard.security import create_user
from models import Post, RawPost
from models.enums import Role
from models.types import utcnow
from triage.prescreen import lane_for


@pytest.fixture
def ctx(settings, redis_conn):  # redis_conn: a flushed Redis database for this test
    c = AppContext.build(settings)
    set_process_context(c)
    yield c
    set_process_context(None)
    c.close()


def _tokens(ctx) -> dict[str, str]:
    tokens = {}
    with Session(ctx.engine) as s:
        for role in (Role.officer, Role.field):
            _user, token = create_user(s, role.value, "a-long-password-1", role.value)
            tokens[role.value] = token
        s.commit()
    return tokens


def test_backlog_shows_what_waits_per_lane_and_for_how_long(settings, ctx):
    tokens = _tokens(ctx)
    texts = ["my dad is not breathing, 4 Oak Road", "praying for everyone", "RT @a: what was that bang",
             "huge explosion near the station"]
    raws = [RawPost(platform="x", external_id=str(100 + i), text=t, raw_payload=t) for i, t in enumerate(texts)]
    stored = persist_posts(ctx.engine, raws, lambda r: lane_for(r.text, r.is_dm))
    intake.on_persisted(ctx, stored)
    with Session(ctx.engine) as s:  # the oldest waiting post arrived two minutes ago
        first = s.get(Post, stored[0].post_id)
        first.received_at = utcnow() - timedelta(minutes=2)
        s.add(first)
        s.commit()
    client = TestClient(create_app(settings, ctx))
    r = client.get("/api/v1/backlog", headers={"authorization": f"Bearer {tokens['officer']}"})
    assert r.status_code == 200
    body = r.json()
    # Lanes hold page jobs (up to 64 posts each), not one job per post.
    assert body["queue_depths"] == {**body["queue_depths"], "critical": 1, "bulk": 1, "default": 1}
    assert body["posts_pending_triage"] == 4
    assert body["pending_by_lane"] == {"critical": 1, "bulk": 2, "default": 1}
    assert 110 <= body["oldest_untriaged_age_seconds"] <= 600
    assert client.get("/api/v1/backlog").status_code in (401, 303, 307)
    r = client.get("/api/v1/backlog", headers={"authorization": f"Bearer {tokens['field']}"})
    assert r.status_code == 403
