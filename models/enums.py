"""String enums shared by every package (stored as plain strings in the database)."""
from __future__ import annotations

from enum import StrEnum


class Platform(StrEnum):
    x = "x"
    bluesky = "bluesky"
    reddit = "reddit"


class Urgency(StrEnum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"
    none = "none"

    @property
    def rank(self) -> int:
        """0 is most urgent; used to order the dispatch queue (priority, then age)."""
        return _URGENCY_RANK[self]


_URGENCY_RANK = {Urgency.critical: 0, Urgency.high: 1, Urgency.medium: 2, Urgency.low: 3, Urgency.none: 4}


class Category(StrEnum):
    medical = "medical"
    fire = "fire"
    violence = "violence"
    crime = "crime"
    traffic = "traffic"
    hazard = "hazard"
    missing_person = "missing_person"
    self_harm = "self_harm"
    domestic_abuse = "domestic_abuse"
    other = "other"
    none = "none"


class TriageState(StrEnum):
    pending = "pending"  # persisted, triage not yet done (the outbox sweep watches these)
    done = "done"
    failed = "failed"  # triage raised; the post is still shown to officers for manual review


class Lane(StrEnum):
    """RQ queues, served in this order by every worker."""

    critical = "critical"  # the keyword pre-screen reads a life threat
    urgent = "urgent"  # only the learned lane reader does (triage/lane.py): a likely cry in other words
    default = "default"
    bulk = "bulk"


class Disposition(StrEnum):
    """What became of a post. Every post ends with one; none is ever silently dropped."""

    awaiting_triage = "awaiting_triage"
    needs_review = "needs_review"  # triage failed/uncertain or payload malformed: an officer must look
    escalated = "escalated"  # opened or joined an incident in the dispatch queue
    attached = "attached"  # joined an existing incident as a further report
    monitoring = "monitoring"  # medium/low incident kept on the board, not paged
    not_emergency = "not_emergency"  # auto-closed as not a request for help (still visible)
    redirected = "redirected"  # told about non-emergency channels
    reviewed = "reviewed"  # an officer looked and closed it


class IncidentStatus(StrEnum):
    new = "new"
    queued = "queued"
    acknowledged = "acknowledged"
    resolved = "resolved"
    closed = "closed"

    @property
    def is_open(self) -> bool:
        return self in (IncidentStatus.new, IncidentStatus.queued, IncidentStatus.acknowledged)


class MessageKind(StrEnum):
    dm = "dm"
    public_reply = "public_reply"


class MessagePurpose(StrEnum):
    receipt = "receipt"  # "your message was received"
    acknowledged = "acknowledged"  # "a dispatcher has seen your message"
    redirect = "redirect"  # non-emergency channels
    manual = "manual"  # written by a dispatcher
    share_link = "share_link"  # one-time location/media link


class DeliveryStatus(StrEnum):
    queued = "queued"
    sent = "sent"
    failed = "failed"  # after all retries; shown on the dashboard


class Role(StrEnum):
    officer = "officer"  # monitoring officer: sees the live feed of every post
    dispatcher = "dispatcher"
    supervisor = "supervisor"
    admin = "admin"
    field = "field"  # officer on patrol: read-only field feed
    wall = "wall"  # a wall display: the queue, read-only, signed in with a revocable wall key


class EventKind(StrEnum):
    """Everything that happens to an incident (the append-only, hash-chained event log)."""

    opened = "opened"
    post_attached = "post_attached"
    triaged = "triaged"
    queued = "queued"
    escalation_step = "escalation_step"
    acknowledged = "acknowledged"
    claimed = "claimed"
    released = "released"
    reassigned = "reassigned"
    taken_over = "taken_over"  # a colleague's claim taken over, explicitly (audited)
    resolved = "resolved"
    closed = "closed"
    false_alarm = "false_alarm"
    reopened = "reopened"
    message_queued = "message_queued"
    message_sent = "message_sent"
    message_failed = "message_failed"
    viewed = "viewed"  # a person viewed the incident's personal data
    media_received = "media_received"
    media_revealed = "media_revealed"
    sla_breach = "sla_breach"
    notification = "notification"  # an external page (webhook/email/SMS) and its delivery result
    merged = "merged"
    split = "split"
    note = "note"
    exported = "exported"
