"""The small typed seams between packages. Implementations live in connectors/, escalation/, grouping/."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlmodel import Session

from models.domain import DeliveryReceipt, OutboundRequest, PossibleDuplicate, RawPost, TriageOutput
from models.tables import Incident, Post


# Can a private message reach this post's author? (AppContext.dm_possible asks the platform's
# Replier.) Decides whether a reporter is answered by DM or by a minimal public reply.
DmPossible = Callable[[Post], bool]
# The escalation policy snapshot a new (or raised) incident of this urgency takes
# (flows.escalate.policy_for reads the policies file).
PolicyFor = Callable[[str], dict]


@runtime_checkable
class Source(Protocol):
    """One feed on one platform (mentions, DMs, a subreddit...).

    `fetch(cursor)` returns everything newer than `cursor` (oldest first) and the cursor to
    store once those posts are committed. The caller persists posts, commits, then saves the
    cursor, so a crash in between re-reads (duplicates are absorbed by the unique key) rather
    than skips.

    Optional attributes the polling loop (connectors.runner) reads when a source has them:
    `poll_seconds` (its interval, 15 s without), `rate_limited_until` (a time.time() before
    which it is not polled), and `more_to_read`: a source that returns one page at a time
    (Bluesky's DM log) sets it after a page that may be followed by more, and is polled again
    at once, also while the loop reads ahead through a database outage.
    """

    name: str  # checkpoint key, e.g. "x:mentions"
    platform: str

    def fetch(self, cursor: dict[str, Any]) -> tuple[Sequence[RawPost], dict[str, Any]]: ...

    def after_commit(self, posts: Sequence[RawPost]) -> None:
        """Platform-side bookkeeping that must wait until posts are safe (e.g. Reddit mark_read)."""
        ...


@runtime_checkable
class Replier(Protocol):
    platform: str

    def send(self, request: OutboundRequest) -> DeliveryReceipt: ...

    def supports_dm(self, request: OutboundRequest) -> bool:
        """Whether a private message can reach this reporter (platform and conversation permitting)."""
        ...

    def find_sent(self, request: OutboundRequest, since: datetime, exclude: frozenset[str]) -> DeliveryReceipt | None:
        """Look on the platform for this message sent by us at or after `since` (an earlier attempt
        whose outcome was unknown): a receipt if it is there, None if it is not. Ids in `exclude`
        belong to other messages and never match. Raises when the platform cannot be asked."""
        ...


@runtime_checkable
class Notifier(Protocol):
    """External paging for escalation (webhook, email, SMS gateway)."""

    name: str

    def notify(self, recipient: str, subject: str, body: str) -> DeliveryReceipt: ...


class IncidentFinder(Protocol):
    """Which open incident a triaged post joins (grouping/finder.py's BatchFinder), asked by
    escalation.service.apply_triage inside the transaction that records the post's triage."""

    def reporter(self, session: Session, post: Post) -> Incident | None:
        """The reporter's own open incident that this post follows up, if any."""
        ...

    def find(self, session: Session, post: Post, out: TriageOutput
             ) -> tuple[Incident, str, float | None] | PossibleDuplicate | None:
        """(incident, reason, similarity) to join; or a possible duplicate to flag on a new
        incident; or None for a new incident."""
        ...


class NoGrouping:
    """An IncidentFinder that joins nothing: every urgent post opens its own incident."""

    def reporter(self, session: Session, post: Post) -> Incident | None:
        return None

    def find(self, session: Session, post: Post, out: TriageOutput) -> None:
        return None
