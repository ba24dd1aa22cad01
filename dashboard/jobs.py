"""RQ job functions and the enqueue side of the outbox. Every job is idempotent.

Jobs carry ids only; the database row says what still needs doing, so a duplicate or replayed
job finds the work done and returns.
"""
from __future__ import annotations

import logging
import time
from datetime import timedelta

from rq import Queue
from sqlalchemy import update
from sqlmodel import Session

from dashboard.context import (
    MESSAGES_QUEUE,
    WORKER_QUEUES,
    AppContext,
    process_context,
)
from escalation import service
from models.domain import GeoPoint, OutboundRequest
from models.enums import DeliveryStatus, EventKind, IncidentStatus, TriageState
from models.events import append_event
from models.tables import Incident, OutboundMessage, Post
from models.types import utcnow
from triage.base import TriageInput

log = logging.getLogger("flare.jobs")

MAX_SEND_ATTEMPTS = 8


def _backoff(attempt: int) -> float:
    return min(300.0, 2.0 ** attempt)


# ----------------------------------------------------------------------------- enqueue side
def enqueue_triage(ctx: AppContext, post_id: int, lane: str) -> None:
    ctx.queues[lane].enqueue("dashboard.jobs.triage_post", post_id, job_id=f"triage-{post_id}",
                             job_timeout=120, failure_ttl=7 * 86400)
    with Session(ctx.engine) as s:
        post = s.get(Post, post_id)
        if post is not None and post.triage_state == TriageState.pending.value:
            post.triage_enqueued_at = utcnow()
            s.add(post)
            s.commit()


def enqueue_send(ctx: AppContext, message_id: int, delay: float = 0.0) -> None:
    kwargs = dict(job_id=f"send-{message_id}-{int(time.time() * 1000)}", job_timeout=60)
    if delay > 0:
        ctx.queues[MESSAGES_QUEUE].enqueue_in(timedelta(seconds=delay), "dashboard.jobs.send_message",
                                              message_id, **kwargs)
    else:
        ctx.queues[MESSAGES_QUEUE].enqueue("dashboard.jobs.send_message", message_id, **kwargs)


def publish_incident(ctx: AppContext, incident_id: int) -> None:
    """Put an incident into the dispatch stream once (the DB row records the entry id).

    The triage job and the sweep can both get here for a new incident; a short Redis lock stops
    them both publishing it (two stream entries, one never acknowledged). A holder that dies
    lets the lock expire and the sweep publishes it then.
    """
    lock = f"flare:publish-lock:{incident_id}"
    if not ctx.redis.set(lock, "1", nx=True, px=10_000):
        return
    try:
        with Session(ctx.engine, expire_on_commit=False) as s:
            incident = s.get(Incident, incident_id)
            if incident is None or incident.stream_entry_id or incident.status != IncidentStatus.new.value:
                return
            entry_id = ctx.dispatch.publish(incident.id, incident.urgency)
            service.mark_queued(s, incident, entry_id)
            s.add(incident)
            s.commit()
    finally:
        ctx.redis.delete(lock)
    after_queued(ctx, incident_id)


def after_queued(ctx: AppContext, incident_id: int) -> None:
    """Hook for the escalation chain (replaced by the policy runner when configured)."""
    from dashboard import escalation_runner

    escalation_runner.start_chain(ctx, incident_id)


def dispatch_outcome(ctx: AppContext, outcome: service.Outcome) -> None:
    """The Redis half of an action, run after its transaction committed."""
    if outcome.needs_queue and outcome.incident_id:
        publish_incident(ctx, outcome.incident_id)
    if outcome.stream_entry_to_ack:
        ctx.dispatch.ack(outcome.stream_entry_to_ack)
    for mid in outcome.message_ids:
        enqueue_send(ctx, mid)


# ----------------------------------------------------------------------------- jobs
def triage_post(post_id: int, ctx: AppContext | None = None) -> str:
    ctx = ctx or process_context()
    with Session(ctx.engine, expire_on_commit=False) as s:
        post = s.get(Post, post_id)
        if post is None:
            return "missing"
        if post.triage_state != TriageState.pending.value:
            return "already-triaged"
        inp = TriageInput(
            text=post.text, platform=post.platform, is_dm=post.is_dm,
            geo=GeoPoint(post.geo_lat, post.geo_lon, post.geo_place) if post.geo_lat is not None else None,
            author_location=post.author_location,
        )
    t0 = time.perf_counter()
    out = ctx.pipeline(inp)
    duration_ms = (time.perf_counter() - t0) * 1000
    if post.malformed:
        out.needs_review = True
        out.reasons.append(f"payload malformed: {post.malformed_reason or 'unreadable'}")
    from dashboard import clustering_hook

    with Session(ctx.engine, expire_on_commit=False) as s:
        post = s.get(Post, post_id, with_for_update=True)
        if post.triage_state != TriageState.pending.value:  # a duplicate job won the race
            return "already-triaged"
        from dashboard.intake_wiring import is_drill

        post.is_test = post.is_test or is_drill(ctx.settings, post.text, post.author_handle)
        service.store_triage(s, post, out, duration_ms)
        outcome = service.apply_triage(
            s, post, out, ctx.settings.service, ctx.dm_possible,
            policy_for=clustering_hook.policy_for(ctx), find_incident=clustering_hook.finder(ctx),
        )
        s.add(post)
        s.commit()
    dispatch_outcome(ctx, outcome)
    clustering_hook.after_triage(ctx, post, out, outcome.incident_id)
    from dashboard.escalation_runner import publish_live

    publish_live(ctx, {"type": "triaged", "post_id": post_id, "urgency": out.urgency,
                       "category": out.category, "incident_id": outcome.incident_id})
    return out.urgency


def enqueue_triage_batch(ctx: AppContext, items: list[tuple[int, str]]) -> None:
    """Enqueue many triage jobs at once: critical lane first, one Redis pipeline per chunk and one
    UPDATE, so a cry for help on a page of hundreds of burst posts is not enqueued last."""
    order = {lane: n for n, lane in enumerate(WORKER_QUEUES)}
    for start in range(0, len(items), 500):
        chunk = sorted(items[start:start + 500], key=lambda item: order.get(item[1], len(order)))
        with ctx.redis.pipeline() as pipe:
            for lane in dict.fromkeys(lane for _, lane in chunk):
                ctx.queues[lane].enqueue_many([
                    Queue.prepare_data("dashboard.jobs.triage_post", (post_id,), job_id=f"triage-{post_id}",
                                       timeout=120, failure_ttl=7 * 86400)
                    for post_id, post_lane in chunk if post_lane == lane], pipeline=pipe)
            pipe.execute()
        with Session(ctx.engine) as s:
            s.exec(update(Post).where(Post.id.in_([post_id for post_id, _ in chunk]),
                                      Post.triage_state == TriageState.pending.value)
                   .values(triage_enqueued_at=utcnow()))
            s.commit()


def on_persisted(ctx: AppContext, stored) -> None:
    """Intake callback (connectors, API, drill): enqueue triage for newly stored posts."""
    from dashboard.escalation_runner import publish_live

    created = [p for p in stored if p.created]
    enqueue_triage_batch(ctx, [(p.post_id, p.lane) for p in created])
    for p in created:
        publish_live(ctx, {"type": "post", "post_id": p.post_id, "lane": p.lane})


def send_message(message_id: int, ctx: AppContext | None = None) -> str:
    ctx = ctx or process_context()
    with Session(ctx.engine, expire_on_commit=False) as s:
        msg = s.get(OutboundMessage, message_id)
        if msg is None or msg.status != DeliveryStatus.queued.value:
            return "nothing-to-do"
        post = s.get(Post, msg.post_id) if msg.post_id else None
        # Claim this attempt first: a crash after the platform accepted the message must not
        # make the sweep send it again without the replier's idempotency key.
        msg.attempts += 1
        msg.next_attempt_at = utcnow() + timedelta(seconds=_backoff(msg.attempts) + 60)
        s.add(msg)
        s.commit()
    replier = ctx.repliers.get(msg.platform)
    request = OutboundRequest(
        platform=msg.platform, kind=msg.kind, text=msg.text, recipient_id=msg.recipient_id,
        in_reply_to_external_id=post.external_id if post else "",
        conversation_id=post.conversation_id if post else "",
        reply_ref=(post.reply_ref or {}) if post else {}, idempotency_key=msg.dedupe_key,
    )
    if replier is None:
        receipt_ok, error, retryable, retry_after, platform_id = (
            False, f"no replier configured for platform {msg.platform}", True, None, "")
    else:
        try:
            r = replier.send(request)
            receipt_ok, error, retryable, retry_after, platform_id = (
                r.ok, r.error, r.retryable, r.retry_after_seconds, r.platform_message_id)
        except Exception as exc:  # noqa: BLE001 - a replier bug is a failed attempt, not a lost message
            receipt_ok, error, retryable, retry_after, platform_id = (
                False, f"{type(exc).__name__}: {exc}", True, None, "")
    retry_in = None
    with Session(ctx.engine, expire_on_commit=False) as s:
        msg = s.get(OutboundMessage, message_id)
        if receipt_ok:
            msg.status = DeliveryStatus.sent.value
            msg.platform_message_id = platform_id
            msg.sent_at = utcnow()
            msg.next_attempt_at = None
            msg.last_error = ""
            kind = EventKind.message_sent
        elif retryable and msg.attempts < MAX_SEND_ATTEMPTS:
            retry_in = retry_after if retry_after is not None else _backoff(msg.attempts)
            msg.last_error = error[:500]
            msg.next_attempt_at = utcnow() + timedelta(seconds=retry_in)
            kind = None
        else:
            msg.status = DeliveryStatus.failed.value
            msg.last_error = error[:500]
            msg.next_attempt_at = None
            kind = EventKind.message_failed
        s.add(msg)
        if kind and msg.incident_id:
            append_event(s, msg.incident_id, kind, "system",
                         {"message_id": msg.id, "purpose": msg.purpose, "kind": msg.kind,
                          "platform_message_id": msg.platform_message_id, "error": msg.last_error})
        s.commit()
    if retry_in is not None:
        enqueue_send(ctx, message_id, delay=retry_in)
        return "retrying"
    return msg.status

