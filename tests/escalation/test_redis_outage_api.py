"""Redis going away under the dashboard: acknowledging still succeeds (the database commit is
the acknowledgement; the stream and the messages catch up through the sweep), and reads that
need Redis answer a clear 503 instead of a 500."""
from __future__ import annotations

import pytest
import redis
from esc_helpers import RecordingReplier, make_user, open_critical
from fastapi.testclient import TestClient
from rq import Queue
from sqlmodel import Session, select

from dashboard.app import create_app
from flows.context import WORKER_QUEUES, AppContext, set_process_context
from flows.sweep import sweep
from runtime.worker import FlareWorker
from models.enums import IncidentStatus, MessagePurpose
from models.tables import Incident, OutboundMessage
from tests.tcp_proxy import proxied_redis_url


def drain(direct_url: str) -> None:
    """Run the queued jobs on a connection that bypasses the proxy, as a worker elsewhere would."""
    conn = redis.Redis.from_url(direct_url)
    FlareWorker([Queue(q, connection=conn) for q in WORKER_QUEUES], connection=conn).work(burst=True)
    conn.close()


@pytest.fixture
def cut(settings, policy_file):
    """An AppContext whose Redis connections go through a proxy the test can cut."""
    proxy, url = proxied_redis_url(settings.redis_url)
    # No grace period: the sweep re-drives what the outage left at once (the test does not wait).
    c = AppContext.build(settings.model_copy(update={"escalation_policy_file": policy_file, "redis_url": url,
                                                     "outbox_grace_seconds": 0}))
    c.repliers = {"x": RecordingReplier()}
    set_process_context(c)
    yield c, proxy
    set_process_context(None)
    c.close()
    proxy.close()


def test_acknowledge_while_redis_is_down_succeeds_and_the_sweep_catches_up(cut, settings):
    ctx, proxy = cut
    direct = settings.redis_url
    token = make_user(ctx, "alice")[1]
    dispatcher = {"authorization": f"Bearer {token}"}
    incident_id = open_critical(ctx, text="my neighbour collapsed and is not breathing")
    with TestClient(create_app(ctx.settings, ctx), raise_server_exceptions=False) as client:
        assert [e["incident_id"] for e in client.get("/api/v1/queue", headers=dispatcher).json()] == [incident_id]
        drain(direct)  # the receipt goes out
        proxy.refuse()

        queue = client.get("/api/v1/queue", headers=dispatcher)
        ack = client.post(f"/api/v1/incidents/{incident_id}/acknowledge", headers=dispatcher)
        page = client.get("/api/v1/incidents/{}".format(incident_id), headers=dispatcher)

        assert queue.status_code == 503 and "Redis" in queue.json()["detail"]
        assert "Nothing is lost" in queue.json()["detail"] and queue.headers["retry-after"] == "5"
        assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "alice"
        assert page.status_code == 200  # database reads are untouched
        with Session(ctx.engine) as s:
            assert s.get(Incident, incident_id).status == IncidentStatus.acknowledged.value

        proxy.accept()
        assert len(ctx.dispatch.pending()) == 1  # the XACK has not happened yet
        counts = sweep(ctx)
        drain(direct)
        assert counts["acks"] == 1 and ctx.dispatch.pending() == []
        assert client.get("/api/v1/queue", headers=dispatcher).json() == []
    with Session(ctx.engine) as s:
        messages = s.exec(select(OutboundMessage).where(OutboundMessage.incident_id == incident_id)).all()
    assert sorted((m.purpose, m.status) for m in messages) == [
        (MessagePurpose.acknowledged.value, "sent"), (MessagePurpose.receipt.value, "sent")]
    assert len(ctx.repliers["x"].sent) == 2  # each once


def test_a_dashboard_page_that_needs_redis_says_so(cut):
    ctx, proxy = cut
    token = make_user(ctx, "bea")[1]
    with TestClient(create_app(ctx.settings, ctx), raise_server_exceptions=False) as client:
        proxy.refuse()
        r = client.get("/api/v1/queue", headers={"authorization": f"Bearer {token}", "accept": "application/json"})
    assert r.status_code == 503 and r.headers["content-type"].startswith("application/json")
