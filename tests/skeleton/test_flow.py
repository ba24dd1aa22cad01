"""The spine: a post travels from intake to an acknowledged incident, with real Redis and DB."""
from __future__ import annotations

from datetime import timedelta

import pytest
from runtime.worker import FlareWorker
from sqlmodel import Session, select

from connectors.intake import persist_posts
from flows import triage_batch, triage_queue
from flows import actions
from flows.context import WORKER_QUEUES, AppContext, set_process_context
from dashboard.security import create_user
from flows.sweep import sweep
from models import (
    DeliveryReceipt,
    DeliveryStatus,
    Incident,
    IncidentEvent,
    IncidentStatus,
    OutboundMessage,
    Post,
    RawPost,
    TriageState,
)
from evidence.chain import verify_all
from models.events import session_chain_key, verify_chain
from models.types import utcnow
from triage.prescreen import lane_for


class RecordingReplier:
    """A platform double: records what it was asked to send; can be told to fail first."""

    platform = "x"

    def __init__(self, fail_first: int = 0) -> None:
        self.sent: list = []
        self.fail_first = fail_first

    def supports_dm(self, request) -> bool:
        return True

    def send(self, request) -> DeliveryReceipt:
        if self.fail_first > 0:
            self.fail_first -= 1
            return DeliveryReceipt(ok=False, error="HTTP 503", retryable=True, retry_after_seconds=0)
        self.sent.append(request)
        return DeliveryReceipt(ok=True, platform_message_id=f"m{len(self.sent)}")


@pytest.fixture
def ctx(settings):
    c = AppContext.build(settings)
    c.repliers = {"x": RecordingReplier()}
    set_process_context(c)
    yield c
    set_process_context(None)
    c.close()


def drain(ctx: AppContext) -> None:
    """Run every queued job in this process, as `flare worker --burst` would."""
    FlareWorker([ctx.queues[q] for q in WORKER_QUEUES], connection=ctx.redis).work(burst=True)


def raw(ext: str, text: str, author: str = "u1") -> RawPost:
    return RawPost(platform="x", external_id=ext, text=text, raw_payload='{"id":"%s"}' % ext,
                   author_id=author, author_handle=f"@{author}")


def ingest(ctx: AppContext, posts: list[RawPost]) -> list[int]:
    stored = persist_posts(ctx.engine, posts, lambda r: lane_for(r.text, r.is_dm))
    for p in stored:
        if p.created:
            triage_queue.enqueue(ctx, [(p.post_id, p.lane)])
    return [p.post_id for p in stored]


def test_urgent_post_reaches_queue_and_acknowledgement_replies(ctx):
    [post_id] = ingest(ctx, [raw("1", "help my dad collapsed not breathing 12 High St Leeds")])
    drain(ctx)
    with Session(ctx.engine) as s:
        incident = s.exec(select(Incident)).one()
        assert incident.status == IncidentStatus.queued.value
        assert incident.urgency == "critical"
        assert s.get(Post, post_id).triage_state == TriageState.done.value
    entries = ctx.dispatch.read("console-alice")
    assert [e.incident_id for e in entries] == [incident.id]
    assert len(ctx.dispatch.pending()) == 1

    with Session(ctx.engine, expire_on_commit=False) as s:
        alice, _ = create_user(s, "alice", "pw-alice-123", "dispatcher")
        s.commit()
    actions.acknowledge(ctx, incident.id, alice)
    drain(ctx)
    assert ctx.dispatch.pending() == []  # XACKed: nothing left unacknowledged
    with Session(ctx.engine) as s:
        incident = s.get(Incident, incident.id)
        assert incident.status == IncidentStatus.acknowledged.value and incident.acknowledged_by == "alice"
        msgs = s.exec(select(OutboundMessage).order_by(OutboundMessage.id)).all()
        assert [(m.purpose, m.status) for m in msgs] == [("receipt", "sent"), ("acknowledged", "sent")]
        events = s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident.id)).all()
        assert verify_chain(list(events), session_chain_key(s)) is None
    report = verify_all(ctx.engine)  # posts, triage, messages and state still match the chain
    assert report.ok, report.breaks
    sent_texts = [r.text for r in ctx.repliers["x"].sent]
    assert "A dispatcher has seen your message." in sent_texts
    assert not any("High St" in t or "breathing" in t for t in sent_texts)  # never echo the reporter


def test_duplicate_delivery_is_recorded_once(ctx):
    first = ingest(ctx, [raw("dup", "there's a fire in the flat below")])
    again = ingest(ctx, [raw("dup", "there's a fire in the flat below"), raw("dup", "changed?")])
    assert first == again[:1] == again[1:]
    drain(ctx)
    with Session(ctx.engine) as s:
        assert len(s.exec(select(Post)).all()) == 1
        assert len(s.exec(select(OutboundMessage)).all()) == 1  # one receipt, not three


def test_crash_between_persist_and_enqueue_is_recovered_by_sweep(ctx):
    # Persist only (the process "dies" before enqueueing).
    [stored] = persist_posts(ctx.engine, [raw("c1", "someone is breaking in downstairs")])
    drain(ctx)
    with Session(ctx.engine) as s:
        assert s.get(Post, stored.post_id).triage_state == TriageState.pending.value
        post = s.get(Post, stored.post_id)
        post.received_at = utcnow() - timedelta(seconds=60)  # older than the outbox grace
        s.add(post)
        s.commit()
    counts = sweep(ctx)
    assert counts["posts"] == 1
    drain(ctx)
    with Session(ctx.engine) as s:
        assert s.get(Post, stored.post_id).triage_state == TriageState.done.value
        assert s.exec(select(Incident)).one().status == IncidentStatus.queued.value


def test_sweep_republishes_a_review_flagged_incident_whose_publish_was_lost(ctx):
    """Not only critical and high: whatever triage puts in the dispatch queue, the sweep re-drives."""
    with Session(ctx.engine) as s:
        flagged = Incident(status=IncidentStatus.new.value, urgency="medium", category="other",
                           flags={"needs_review": True})
        plain = Incident(status=IncidentStatus.new.value, urgency="medium", category="other")
        s.add_all([flagged, plain])
        s.commit()
        flagged_id, plain_id = flagged.id, plain.id
    assert sweep(ctx)["incidents"] == 1
    with Session(ctx.engine) as s:
        assert s.get(Incident, flagged_id).status == IncidentStatus.queued.value
        assert s.get(Incident, plain_id).status == IncidentStatus.new.value


def test_triage_job_is_idempotent(ctx):
    [post_id] = ingest(ctx, [raw("i1", "my neighbour is unconscious on the floor")])
    drain(ctx)
    assert triage_batch.run(ctx, [post_id])["triaged"] == 0
    with Session(ctx.engine) as s:
        assert len(s.exec(select(Incident)).all()) == 1


def test_failed_send_is_retried_then_delivered(ctx):
    ctx.repliers = {"x": RecordingReplier(fail_first=2)}
    ingest(ctx, [raw("r1", "there is a man with a knife attacking people")])
    drain(ctx)
    import time

    deadline = time.time() + 10
    while time.time() < deadline:
        drain(ctx)
        with Session(ctx.engine) as s:
            msg = s.exec(select(OutboundMessage)).one()
            if msg.status != DeliveryStatus.queued.value:
                break
        time.sleep(0.3)
    # The scheduler runs inside a real worker; in burst mode we re-drive through the sweep.
    with Session(ctx.engine) as s:
        msg = s.exec(select(OutboundMessage)).one()
        if msg.status == DeliveryStatus.queued.value:
            msg.next_attempt_at = utcnow() - timedelta(seconds=60)
            s.add(msg)
            s.commit()
    for _ in range(3):
        sweep(ctx)
        drain(ctx)
    with Session(ctx.engine) as s:
        msg = s.exec(select(OutboundMessage)).one()
        assert msg.status == DeliveryStatus.sent.value
        assert msg.attempts == 3


def test_not_an_emergency_is_kept_with_a_disposition(ctx):
    [post_id] = ingest(ctx, [raw("n1", "this exam is killing me lol")])
    drain(ctx)
    with Session(ctx.engine) as s:
        post = s.get(Post, post_id)
        assert post.disposition == "not_emergency"
        assert s.exec(select(Incident)).all() == []


def test_acknowledgement_hands_the_incident_to_cad_when_configured(ctx):
    from flows.context import MESSAGES_QUEUE

    ctx.settings.cad.webhook_url = "http://127.0.0.1:9/cad"
    ingest(ctx, [raw("cad1", "my husband collapsed and is not breathing")])
    drain(ctx)
    with Session(ctx.engine, expire_on_commit=False) as s:
        incident = s.exec(select(Incident)).one()
        bob, _ = create_user(s, "bob", "pw-bob-12345", "dispatcher")
        s.commit()
    actions.acknowledge(ctx, incident.id, bob)
    queued = [j for j in ctx.queues[MESSAGES_QUEUE].get_jobs() if j.func_name == "evidence.cad.deliver_incident_job"]
    assert [j.args for j in queued] == [(incident.id,)]
