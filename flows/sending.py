"""Sending replies: a job takes a page of queued messages, claims them with one statement and
sends them one at a time through their platform's replier; the outcomes are recorded together,
one transaction per incident (a burst's receipts mostly share a few incidents).

A claim is the attempt counter plus `next_attempt_at` pushed CLAIM_SECONDS ahead, taken by one
conditional UPDATE for the whole page and only from messages that are queued and due: a second
worker (or a sweep re-drive) finds them not due and leaves them alone, so a message is never sent
twice at once. A page whose sends are slow renews the claim on the messages it has not sent yet
before it could lapse (`PageClaim.take`): no message is ever sent on a lapsed claim.

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
from sqlalchemy.orm.attributes import set_committed_value
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
ATTEMPT_SECONDS = 90  # longer than one attempt can take (a lookup and a send, each under the clients' timeouts)
CLAIM_SECONDS = 120  # how long a claim holds; a page renews it for the messages it has not sent yet
RENEW_AFTER_SECONDS = CLAIM_SECONDS - ATTEMPT_SECONDS  # so an attempt started on a claim ends before it lapses
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
    claim = PageClaim.take_page(ctx, message_ids)
    statuses: dict[int, str] = {}
    outcomes: list[tuple[OutboundMessage, Attempt]] = []
    oldest = 0.0
    while (taken := claim.take()) is not None:
        if outcomes and time.monotonic() - oldest > RECORD_AFTER_SECONDS:
            statuses.update(_record(ctx, outcomes))
            outcomes = []
        msg, uncertain_since = taken
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


class PageClaim:
    """A page's messages, claimed by one UPDATE, handed out one at a time in page order.

    Each message comes with the `uncertain_since` an earlier attempt left on it (None if every
    earlier attempt has a known outcome). The claim stamps `uncertain_since` on every message it
    takes, so a worker that dies mid-page leaves them all to be looked up on the platform before
    they are sent again: a lookup too many, never a message twice. Before a message is handed
    out on a claim older than RENEW_AFTER_SECONDS, the claim on the page's unsent messages is
    renewed by one UPDATE that finds them still claimed by this page (a message it does not find
    is no longer this page's to send)."""

    def __init__(self, ctx: AppContext, waiting: list[tuple[OutboundMessage, datetime | None]],
                 until: datetime | None, claimed_at: float) -> None:
        self.ctx, self.waiting, self.until = ctx, waiting, until
        self.claimed_at = claimed_at  # monotonic, taken before `until` was: the claim never outlives it

    @classmethod
    def take_page(cls, ctx: AppContext, message_ids: Sequence[int]) -> PageClaim:
        """Claim the page's messages that are queued and due."""
        claimed_at = time.monotonic()
        if not message_ids:
            return cls(ctx, [], None, claimed_at)
        now = utcnow()
        until = now + timedelta(seconds=CLAIM_SECONDS)
        with Session(ctx.engine, expire_on_commit=False) as s:
            # The messages as the UPDATE left them come back with it (RETURNING): no second read.
            claimed = {msg.id: msg for msg in s.scalars(
                update(OutboundMessage).where(
                    OutboundMessage.id.in_(list(message_ids)), OutboundMessage.status == DeliveryStatus.queued.value,
                    or_(OutboundMessage.next_attempt_at.is_(None), OutboundMessage.next_attempt_at <= now + DUE_TOLERANCE))
                .values(attempts=OutboundMessage.attempts + 1, next_attempt_at=until,
                        uncertain_since=func.coalesce(OutboundMessage.uncertain_since, now))
                .returning(OutboundMessage)).all()}
            s.commit()
        waiting = [(claimed[message_id], _earlier(claimed[message_id], now))
                   for message_id in dict.fromkeys(message_ids) if message_id in claimed]
        return cls(ctx, waiting, until, claimed_at)

    def take(self) -> tuple[OutboundMessage, datetime | None] | None:
        """The next message to send on a live claim, or None when the page is done."""
        if self.waiting and time.monotonic() - self.claimed_at > RENEW_AFTER_SECONDS:
            self._renew()
        return self.waiting.pop(0) if self.waiting else None

    def _renew(self) -> None:
        claimed_at = time.monotonic()
        until = utcnow() + timedelta(seconds=CLAIM_SECONDS)
        with Session(self.ctx.engine) as s:
            still = set(s.scalars(
                update(OutboundMessage).where(
                    OutboundMessage.id.in_([msg.id for msg, _ in self.waiting]),
                    OutboundMessage.status == DeliveryStatus.queued.value,
                    OutboundMessage.next_attempt_at == self.until)
                .values(next_attempt_at=until).returning(OutboundMessage.id)).all())
            s.commit()
        lost = [msg.id for msg, _ in self.waiting if msg.id not in still]
        if lost:
            log.warning("messages %s were no longer this page's claim; left to whoever holds them", lost)
        self.waiting = [(msg, earlier) for msg, earlier in self.waiting if msg.id in still]
        for msg, _ in self.waiting:  # as the database now holds it (not a change to write)
            set_committed_value(msg, "next_attempt_at", until)
        self.until, self.claimed_at = until, claimed_at


def _earlier(msg: OutboundMessage, now: datetime) -> datetime | None:
    """When an earlier attempt with no known outcome began (None: the claim just stamped it)."""
    return msg.uncertain_since if msg.uncertain_since is not None and msg.uncertain_since < now else None


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
