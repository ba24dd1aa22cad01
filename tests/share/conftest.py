"""A real Flare dashboard on a free loopback port, an incident with one reporter, and a dispatcher."""
from __future__ import annotations

import threading
import time

import pytest
import uvicorn
from sqlmodel import Session

from dashboard.app import create_app
from flows.context import AppContext, set_process_context
from dashboard.security import create_user
from escalation.service import open_incident
from models.domain import TriageOutput
from models.tables import Post
from share_test_helpers import DISPATCHER_PASSWORD, DmReplier, ShareEnv, free_port
from tests.db_cleanup import release_abandoned_sessions


@pytest.fixture
def share_env(settings, redis_conn):  # redis_conn: a flushed Redis DB per test
    port = free_port()
    settings.dashboard.public_base_url = f"http://127.0.0.1:{port}"
    ctx = AppContext.build(settings)
    ctx.repliers = {"x": DmReplier()}
    set_process_context(ctx)
    with Session(ctx.engine, expire_on_commit=False) as s:
        post = Post(platform="x", external_id="share-1", author_id="u1", author_handle="@reporter",
                    text="help there is a fire next door", is_dm=True)
        s.add(post)
        s.flush()
        incident = open_incident(s, post, TriageOutput(urgency="critical", category="fire", confidence=0.9))
        _, token = create_user(s, "dana", DISPATCHER_PASSWORD, "dispatcher")
        _, officer_token = create_user(s, "oliver", "officer-pw-123", "officer")
        s.commit()
        ids = (incident.id, post.id)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, ctx), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="share-test-server", daemon=True)
    thread.start()
    deadline = time.time() + 15
    while not server.started:
        assert time.time() < deadline, "test server did not start"
        time.sleep(0.05)
    yield ShareEnv(base=f"http://127.0.0.1:{port}", ctx=ctx, incident_id=ids[0], post_id=ids[1],
                   token=token, officer_token=officer_token)
    server.should_exit = True
    thread.join(timeout=10)
    release_abandoned_sessions()
    set_process_context(None)
    ctx.close()
