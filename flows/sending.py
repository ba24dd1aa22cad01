"""Sending replies: a job takes a page of queued messages and, one at a time, claims a message,
sends it through its platform's replier and records the outcome.

A claim is the attempt counter plus `next_attempt_at` pushed past the attempt's longest
duration, taken by one conditional UPDATE just before the send and only from a message that is
queued and due: a second worker (or a sweep re-drive) finds it not due and leaves it alone, so a
message is never sent twice at once. A crash after the platform accepted the message leaves the
claim to expire; the replier's idempotency key (the message's dedupe key) then guards the re-send.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, update
from sqlmodel import Session

from dashboard.context import AppContext, process_context
from escalation import service
from flows.publish import enqueue_send, enqueue_sends
from models.domain import OutboundRequest
from models.enums import DeliveryStatus, EventKind
from models.events import append_event
from models.tables import OutboundMessage, Post
from models.types import utcnow

log = logging.getLogger("flare.sending")

MAX_SEND_ATTEMPTS = 8
CLAIM_SECONDS = 300  # longer than any one attempt can take (the replier's own timeouts are far shorter)
DUE_TOLERANCE = timedelta(seconds=1)  # a delayed retry job may start a moment early


def backoff(attempt: int) -> float:
    return min(300.0, 2.0 ** attempt)


@dataclass(slots=True)
class Attempt:
    ok: bool
    error: str = ""
    retryable: bool = True
    retry_after: float | None = None
    platform_id: str = ""


def send_messages(message_ids: Sequence[int], ctx: AppContext | None = None) -> dict[int, str]:
    """The RQ job: send these messages (those queued and due), one after another, each claimed
    just before its send and its outcome recorded just after, so a slow page never lets a claim
    lapse while its message is still on the way. Returns each message's new status."""
    ctx = ctx or process_context()
    statuses: dict[int, str] = {}
    for message_id in message_ids:
        msg, post = _claim(ctx, message_id)
        if msg is not None:
            statuses[msg.id] = _record(ctx, msg.id, _send(ctx, msg, post))
    return statuses


def _claim(ctx: AppContext, message_id: int) -> tuple[OutboundMessage | None, Post | None]:
    """Take one attempt at a message if it is queued and due: one conditional UPDATE, so of two
    workers (or a sweep re-drive racing a page) exactly one gets it."""
    now = utcnow()
    with Session(ctx.engine, expire_on_commit=False) as s:
        taken = s.exec(
            update(OutboundMessage).where(
                OutboundMessage.id == message_id, OutboundMessage.status == DeliveryStatus.queued.value,
                or_(OutboundMessage.next_attempt_at.is_(None), OutboundMessage.next_attempt_at <= now + DUE_TOLERANCE))
            .values(attempts=OutboundMessage.attempts + 1,
                    next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
            .returning(OutboundMessage.id)).first()
        if taken is None:
            s.rollback()
            return None, None
        msg = s.get(OutboundMessage, message_id)
        post = s.get(Post, msg.post_id) if msg.post_id else None
        s.commit()
    return msg, post


def _send(ctx: AppContext, msg: OutboundMessage, post: Post | None) -> Attempt:
    replier = ctx.repliers.get(msg.platform)
    if replier is None:
        return Attempt(False, f"no replier configured for platform {msg.platform}")
    request = OutboundRequest(
        platform=msg.platform, kind=msg.kind, text=msg.text, recipient_id=msg.recipient_id,
        in_reply_to_external_id=post.external_id if post else "",
        conversation_id=post.conversation_id if post else "",
        reply_ref=(post.reply_ref or {}) if post else {}, idempotency_key=msg.dedupe_key,
    )
    try:
        r = replier.send(request)
    except Exception as exc:  # noqa: BLE001 - a replier bug is a failed attempt, not a lost message
        return Attempt(False, f"{type(exc).__name__}: {exc}")
    return Attempt(r.ok, r.error, r.retryable, r.retry_after_seconds, r.platform_message_id)


def _record(ctx: AppContext, message_id: int, attempt: Attempt) -> str:
    """Write one attempt's outcome; returns the message's status ("retrying" if it will be retried)."""
    retry_in: float | None = None
    fallback: OutboundMessage | None = None  # a public reply to a reporter whose DMs are closed
    with Session(ctx.engine, expire_on_commit=False) as s:
        msg = s.get(OutboundMessage, message_id)
        if attempt.ok:
            msg.status = DeliveryStatus.sent.value
            msg.platform_message_id = attempt.platform_id
            msg.sent_at = utcnow()
            msg.next_attempt_at = None
            msg.last_error = ""
            kind = EventKind.message_sent
        elif attempt.retryable and msg.attempts < MAX_SEND_ATTEMPTS:
            retry_in = attempt.retry_after if attempt.retry_after is not None else backoff(msg.attempts)
            msg.last_error = attempt.error[:500]
            msg.next_attempt_at = utcnow() + timedelta(seconds=retry_in)
            kind = None
        else:
            msg.status = DeliveryStatus.failed.value
            msg.last_error = attempt.error[:500]
            msg.next_attempt_at = None
            kind = EventKind.message_failed
        if kind and msg.incident_id:
            append_event(s, msg.incident_id, kind, "system",
                         {"message_id": msg.id, "purpose": msg.purpose, "kind": msg.kind,
                          "platform_message_id": msg.platform_message_id, "error": msg.last_error})
        if kind == EventKind.message_failed and not attempt.retryable:  # e.g. DMs closed (403)
            fallback = service.dm_undeliverable(s, msg, ctx.settings.service)
        status = msg.status
        s.commit()
    if fallback is not None and fallback.id is not None:
        enqueue_sends(ctx, [fallback.id])
    if retry_in is not None:
        enqueue_send(ctx, message_id, delay=retry_in)
        return "retrying"
    return status
