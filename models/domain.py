"""Plain data that crosses package boundaries (no database, no I/O)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from models.types import utcnow


@dataclass(frozen=True, slots=True)
class GeoPoint:
    lat: float
    lon: float
    place: str = ""


@dataclass(slots=True)
class RawPost:
    """A message as a connector received it, before we decide anything about it.

    `raw_payload` is the platform's bytes decoded as text, kept verbatim. When a payload
    cannot be understood, connectors still emit a RawPost with `malformed=True` and the
    reason, so it is stored and shown to officers instead of being dropped.
    """

    platform: str
    external_id: str
    text: str
    raw_payload: str
    author_id: str = ""
    author_handle: str = ""
    author_name: str = ""
    author_location: str = ""
    posted_at: datetime | None = None
    is_dm: bool = False
    reply_to_external_id: str = ""
    conversation_id: str = ""
    reply_ref: dict[str, Any] = field(default_factory=dict)
    geo: GeoPoint | None = None
    malformed: bool = False
    malformed_reason: str = ""
    is_test: bool = False


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    """What a Replier is asked to send. `reply_ref` is the Post.reply_ref captured at intake."""

    platform: str
    kind: str  # MessageKind value
    text: str
    recipient_id: str = ""
    in_reply_to_external_id: str = ""
    conversation_id: str = ""
    reply_ref: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    ok: bool
    platform_message_id: str = ""
    error: str = ""
    retryable: bool = True  # False: retrying cannot help (e.g. DMs closed) — fall back or fail
    retry_after_seconds: float | None = None
    # The request may have reached the platform (timeout, broken connection after sending):
    # before sending again, the platform is asked whether the message is there.
    uncertain: bool = False


@dataclass(slots=True)
class LocationMention:
    text: str
    kind: str  # postcode, zip, address, junction, latlon, what3words, landmark, place, geotag, profile
    source: str  # geotag / text / profile
    lat: float | None = None
    lon: float | None = None
    confidence: float = 0.0
    start: int | None = None
    end: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text, "kind": self.kind, "source": self.source, "lat": self.lat,
            "lon": self.lon, "confidence": self.confidence, "start": self.start, "end": self.end,
        }


@dataclass(slots=True)
class TriageOutput:
    """The decision about one post. `reasons` are for people: which phrases and scores decided."""

    urgency: str
    category: str
    confidence: float
    language: str = "und"
    silent: bool = False
    needs_review: bool = False
    locations: list[LocationMention] = field(default_factory=list)
    signals: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    scores: dict[str, Any] = field(default_factory=dict)
    model_version: str = ""
    # On critical results: True = "critical — confirmed" (page at once), False = "critical —
    # check" (same queue and priority, a person checks first).
    confirmed: bool = False
    # The sentence embedding triage computed (unit-normalised), kept in memory for incident
    # clustering; never serialised or stored.
    embedding: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "urgency": self.urgency,
            "category": self.category,
            "confidence": round(float(self.confidence), 4),
            "locations": [m.as_dict() for m in self.locations],
            "language": self.language,
            "silent": self.silent,
            "needs_review": self.needs_review,
            "signals": self.signals,
            "reasons": self.reasons,
            "scores": self.scores,
            "model_version": self.model_version,
            **({"confirmed": self.confirmed} if self.urgency == "critical" else {}),
        }


@dataclass(slots=True)
class TriageRow:
    """A triage record as plain data, for batch triage: a page of them is inserted in one
    statement (`insert_triage_rows`) instead of one ORM object each. Same columns and digest
    (`triage_sha256`) as TriageRecord."""

    post_id: int
    urgency: str
    category: str
    confidence: float
    language: str
    silent: bool
    needs_review: bool
    locations: list
    signals: dict
    reasons: list
    scores: dict
    model_version: str
    duration_ms: float
    created_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class MessageRow:
    """An outbound message as plain data, for batch triage: a group's receipts are inserted in
    one statement (escalation.service.flush_deferred_messages) instead of one ORM object each.
    Same columns and digest (`message_sha256`) as OutboundMessage; `id` is set by the insert."""

    dedupe_key: str
    incident_id: int | None
    post_id: int | None
    platform: str
    kind: str
    purpose: str
    recipient_id: str
    text: str
    created_by: str = "system"
    created_at: datetime = field(default_factory=utcnow)
    id: int | None = None


@dataclass(frozen=True, slots=True)
class PossibleDuplicate:
    """find_incident's answer when grouping is uncertain: open a new incident, marked as a possible
    duplicate of `incident_id` for a person to confirm (merge) or dismiss."""

    incident_id: int
    reason: str
