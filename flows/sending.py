"""Sending replies: a job takes a page of queued messages and, one at a time, claims a message
and sends it through its platform's replier; the outcomes are recorded together, one
transaction per incident (a burst's receipts mostly share a few incidents).

A claim is the attempt counter plus `next_attempt_at` pushed past the attempt's longest
duration, taken by one conditional UPDATE just before the send and only from a message that is
queued and due: a second worker (or a sweep re-drive) finds it not due and leaves it alone, so a
message is never sent twice at once.

Exactly once across crashes and timeouts: the claim also stamps `uncertain_since` (the durable
record that an attempt may be on its way), and only a known outcome clears it. A worker killed,
or a database refusing the commit, after the platform accepted the message leaves it set; so
does a timeout (the platform may have acted). The next attempt then first asks the platform
(`Replier.find_sent`: our DMs to the reporter, or our replies under their post, since that
moment) and records what it found instead of sending again. Timeouts and other retryable
failures are retried within SEND_WINDOW of the message's creation, never marked failed sooner.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, update
from sqlmodel import Session, select

from flows.context import AppContext, process_context
from flows.live import publish_live_many
from escalation import service
from flows.publish import enqueue_send, enqueue_sends
from models.domain import OutboundRequest
from models.enums import DeliveryStatus, EventKind
from models.events import append_event, batch_appends, delivery_sha256
from models.tables import OutboundMessage, Post
from models.types import utcnow

log = logging.getLogger("flare.sending")

MAX_SEND_ATTEMPTS = 40  # a runaway guard; SEND_WINDOW is what bounds retrying
SEND_WINDOW = timedelta(hours=2)  # retryable failures are retried this long after the message was made
CLAIM_SECONDS = 90  # longer than one attempt can take (a lookup and a send, each under the clients' timeouts)
DUE_TOLERANCE = timedelta(seconds=1)  # a delayed retry job may start a moment early
# A request that timed out may still land (a slow platform acts after we gave up): the lookup
# that decides whether to send again waits this long after the uncertain attempt.
UNCERTAIN_SETTLE_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 30.0  # a reporter waits seconds, not minutes, once the platform is back
# Outcomes are written together, but none waits longer than this for the page's later sends.
RECORD_AFTER_SECONDS = 1.0


def backoff(attempt: int) -> float:
    return min(MAX_BACKOFF_SECONDS, 2.0 ** attempt)


@dataclass(slots=True)
class Attempt:
    ok: bool
    error: str = ""
    retryable: bool = True
    retry_after: float | None = None
    platform_id: str = ""
    uncertain: bool = False  # may have reached the platform
    found: bool = False  # not sent now: an earlier attempt's message was found on the platform


def send_messages(message_ids: Sequence[int], ctx: AppContext | None = None) -> dict[int, str]:
    """The RQ job: send these messages (those queued and due), one after another, each claimed
    just before its send, so a slow page never lets a claim lapse while its message is still on
    the way. Outcomes are written together (`_record`: one transaction per incident), as soon as
    the page ends or the oldest has waited RECORD_AFTER_SECONDS. Returns each message's new status."""
    ctx = ctx or process_context()
    posts = _posts_replied_to(ctx, message_ids)
    statuses: dict[int, str] = {}
    outcomes: list[tuple[OutboundMessage, Attempt]] = []
    oldest = 0.0
    for message_id in message_ids:
        if outcomes and time.monotonic() - oldest > RECORD_AFTER_SECONDS:
            statuses.update(_record(ctx, outcomes))
            outcomes = []
        msg, uncertain_since = _claim(ctx, message_id)
        if msg is not None:
            attempt = _send(ctx, msg, posts.get(msg.id), uncertain_since)
            oldest = oldest if outcomes else time.monotonic()
            outcomes.append((msg, attempt))
    statuses.update(_record(ctx, outcomes))
    return statuses


def send_message(message_id: int, ctx: AppContext | None = None) -> str:
    """A one-message send job (a retry's delayed job): a page of one."""
    return send_messages([message_id], ctx).get(message_id, "nothing-to-do")


def _posts_replied_to(ctx: AppContext, message_ids: Sequence[int]) -> dict[int, Post]:
    """The post each message of a page answers (the platform ids a reply needs), in one read."""
    if not message_ids:
        return {}
    with Session(ctx.engine, expire_on_commit=False) as s:
        rows = s.exec(select(OutboundMessage.id, Post).join(Post, Post.id == OutboundMessage.post_id)
                      .where(OutboundMessage.id.in_(list(message_ids)))).all()
        return {message_id: post for message_id, post in rows}


def _claim(ctx: AppContext, message_id: int) -> tuple[OutboundMessage | None, datetime | None]:
    """Take one attempt at a message if it is queued and due: one conditional UPDATE, so of two
    workers (or a sweep re-drive racing a page) exactly one gets it. The UPDATE stamps
    `uncertain_since` unless an earlier unresolved attempt already did; returns that earlier
    stamp (None if every earlier attempt has a known outcome)."""
    now = utcnow()
    with Session(ctx.engine, expire_on_commit=False) as s:
        # The message as the UPDATE left it comes back with it (RETURNING): no second read.
        msg = s.scalars(
            update(OutboundMessage).where(
                OutboundMessage.id == message_id, OutboundMessage.status == DeliveryStatus.queued.value,
                or_(OutboundMessage.next_attempt_at.is_(None), OutboundMessage.next_attempt_at <= now + DUE_TOLERANCE))
            .values(attempts=OutboundMessage.attempts + 1,
                    next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS),
                    uncertain_since=func.coalesce(OutboundMessage.uncertain_since, now))
            .returning(OutboundMessage)).first()
        if msg is None:
            s.rollback()
            return None, None
        earlier = msg.uncertain_since if msg.uncertain_since is not None and msg.uncertain_since < now else None
        s.commit()
    return msg, earlier


def _others_ids(ctx: AppContext, msg: OutboundMessage) -> frozenset[str]:
    """Platform ids our other messages on this platform to the same person or post already own."""
    same = ([OutboundMessage.recipient_id == msg.recipient_id] if msg.recipient_id else []) + \
        ([OutboundMessage.post_id == msg.post_id] if msg.post_id else [])
    if not same:
        return frozenset()
    with Session(ctx.engine) as s:
        rows = s.exec(select(OutboundMessage.platform_message_id).where(
            OutboundMessage.platform == msg.platform, OutboundMessage.id != msg.id,
            OutboundMessage.platform_message_id != "", or_(*same))).all()
    return frozenset(rows)


def _send(ctx: AppContext, msg: OutboundMessage, post: Post | None, uncertain_since: datetime | None) -> Attempt:
    replier = ctx.repliers.get(msg.platform)
    if replier is None:
        return Attempt(False, f"no replier configured for platform {msg.platform}", uncertain=uncertain_since is not None)
    request = OutboundRequest(
        platform=msg.platform, kind=msg.kind, text=msg.text, recipient_id=msg.recipient_id,
        in_reply_to_external_id=post.external_id if post else "",
        conversation_id=post.conversation_id if post else "",
        reply_ref=(post.reply_ref or {}) if post else {}, idempotency_key=msg.dedupe_key,
    )
    if uncertain_since is not None:
        # An earlier attempt may have reached the platform: look before sending again.
        try:
            found = replier.find_sent(request, uncertain_since, _others_ids(ctx, msg))
        except Exception as exc:  # noqa: BLE001 - the platform could not be asked: ask again later
            return Attempt(False, f"could not check whether an earlier attempt arrived: {type(exc).__name__}: {exc}",
                           uncertain=True)
        if found is not None:
            log.info("message %s: an earlier attempt had arrived (%s); not sent again", msg.id,
                     found.platform_message_id)
            return Attempt(True, platform_id=found.platform_message_id, found=True)
    try:
        r = replier.send(request)
    except Exception as exc:  # noqa: BLE001 - a replier bug is a failed attempt, not a lost message
        return Attempt(False, f"{type(exc).__name__}: {exc}", uncertain=True)
    return Attempt(r.ok, r.error, r.retryable, r.retry_after_seconds, r.platform_message_id,
                   uncertain=r.uncertain or (not r.ok and uncertain_since is not None))


def _record(ctx: AppContext, outcomes: list[tuple[OutboundMessage, Attempt]]) -> dict[int, str]:
    """Write attempts' outcomes on their messages as their claims left them (nobody else writes a
    claimed message: it is not due until the claim lapses), one transaction per incident, so a
    transaction locks one incident's row, as every other writer of its event chain does, and
    reads its chain head once for all its messages' events. An outcome not yet written when a
    worker dies leaves its message uncertain: the next attempt looks on the platform first.
    Returns each message's status ("retrying" if it will be retried).

    An incident flagged "unreachable by DM" here is announced on the live feed once its
    transaction has committed: the flag changes nothing else an open queue or incident page
    would hear of, so without it a screen that refreshed before this commit never shows it."""
    by_incident: dict[int | None, list[tuple[OutboundMessage, Attempt]]] = {}
    for claimed, attempt in outcomes:
        by_incident.setdefault(claimed.incident_id, []).append((claimed, attempt))
    statuses: dict[int, str] = {}
    retries: list[tuple[int, float]] = []
    fallbacks: list[OutboundMessage] = []  # public replies to reporters whose DMs are closed
    unreachable: list[int] = []  # incidents flagged "unreachable by DM"
    for group in by_incident.values():
        with Session(ctx.engine, expire_on_commit=False) as s:
            batch_appends(s)
            for claimed, attempt in group:
                status, retry_in, flagged, fallback = _outcome(ctx, s, s.merge(claimed, load=False), attempt)
                statuses[claimed.id] = status
                if retry_in is not None:
                    retries.append((claimed.id, retry_in))
                if flagged is not None:
                    unreachable.append(flagged)
                if fallback is not None:
                    fallbacks.append(fallback)
            s.commit()
    publish_live_many(ctx, [{"type": "dm_unreachable", "incident_id": incident_id}
                            for incident_id in dict.fromkeys(unreachable)])
    enqueue_sends(ctx, [f.id for f in fallbacks if f.id is not None])
    for message_id, delay in retries:
        enqueue_send(ctx, message_id, delay=delay)
    return statuses


def _outcome(ctx: AppContext, s: Session, msg: OutboundMessage,
             attempt: Attempt) -> tuple[str, float | None, int | None, OutboundMessage | None]:
    """One attempt's outcome on its message (and its event): the status, the delay before a
    retry (None: no retry), the incident flagged "unreachable by DM" (None: none) and the public
    reply queued for a reporter whose DMs are closed."""
    retry_in: float | None = None
    flagged: int | None = None
    fallback: OutboundMessage | None = None
    now = utcnow()
    if not attempt.uncertain:
        msg.uncertain_since = None  # the platform's answer is known
    if attempt.ok:
        msg.status = DeliveryStatus.sent.value
        msg.platform_message_id = attempt.platform_id
        msg.sent_at = now
        msg.next_attempt_at = None
        msg.last_error = "" if not attempt.found else "an earlier attempt had arrived; found on the platform"
        kind = EventKind.message_sent
    elif attempt.retryable and msg.attempts < MAX_SEND_ATTEMPTS and now < msg.created_at + SEND_WINDOW:
        retry_in = attempt.retry_after if attempt.retry_after is not None else backoff(msg.attempts)
        if attempt.uncertain:
            retry_in = max(retry_in, UNCERTAIN_SETTLE_SECONDS)
        msg.last_error = attempt.error[:500]
        msg.next_attempt_at = now + timedelta(seconds=retry_in)
        kind = None
    else:
        msg.status = DeliveryStatus.failed.value
        msg.last_error = attempt.error[:500]
        msg.next_attempt_at = None
        kind = EventKind.message_failed
    if kind and msg.incident_id:
        detail = {"message_id": msg.id, "purpose": msg.purpose, "kind": msg.kind,
                  "platform_message_id": msg.platform_message_id, "error": msg.last_error,
                  "delivery_sha256": delivery_sha256(msg)}
        if attempt.found:
            detail["found_on_platform"] = True
        append_event(s, msg.incident_id, kind, "system", detail)
    if kind == EventKind.message_failed and not attempt.retryable:  # e.g. DMs closed (403)
        flagged, fallback = service.dm_undeliverable(s, msg, ctx.settings.service)
    return ("retrying" if retry_in is not None else msg.status), retry_in, flagged, fallback
