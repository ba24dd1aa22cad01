"""RQ job functions and the enqueue side of the outbox. Every job is idempotent.

Jobs carry ids only; the database row says what still needs doing, so a duplicate or replayed
job finds the work done and returns.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import Session

from dashboard.context import AppContext, process_context
from flows import intake, publish, triage_batch
from models.domain import OutboundRequest
from models.enums import DeliveryStatus, EventKind
from models.events import append_event
from models.tables import OutboundMessage, Post
from models.types import utcnow

log = logging.getLogger("flare.jobs")

MAX_SEND_ATTEMPTS = 8


def _backoff(attempt: int) -> float:
    return min(300.0, 2.0 ** attempt)


# ----------------------------------------------------------------------------- aliases
# The post's path lives in flows/. These names stay because RQ stores job paths as strings
# (a rolling upgrade drains jobs queued by the previous version) and callers import them.
enqueue_send = publish.enqueue_send
publish_incident = publish.publish_incident
dispatch_outcome = publish.dispatch_outcome
on_persisted = intake.on_persisted


def enqueue_triage(ctx: AppContext, post_id: int, lane: str) -> None:
    triage_batch.enqueue(ctx, [(post_id, lane)])


def enqueue_triage_batch(ctx: AppContext, items: list[tuple[int, str]]) -> None:
    triage_batch.enqueue(ctx, items)


def triage_post(post_id: int, ctx: AppContext | None = None) -> str:
    """A one-post triage job queued by an earlier version: runs as a batch of one."""
    counts = triage_batch.run(ctx or process_context(), [post_id])
    return "triaged" if counts["triaged"] else "already-triaged"


# ----------------------------------------------------------------------------- jobs
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

