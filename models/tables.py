"""SQLModel tables. One row type per aggregate; enums are stored as strings.

Posts are the public's words: they are written once, verbatim, and never edited. What we
decide about them (triage, disposition, incident membership) lives beside them.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.enums import (
    DeliveryStatus,
    Disposition,
    IncidentStatus,
    Lane,
    TriageState,
)
from models.types import JSONType, UTCDateTime, utcnow





class Post(SQLModel, table=True):
    """One message from the public, exactly as the platform delivered it."""

    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("platform", "external_id", name="uq_posts_platform_external_id"),
        Index("ix_posts_triage_pending", "triage_state", "received_at"),
        # "Has this reporter written before?" is asked for every triaged post. With only the
        # one-column indexes SQLite chose the platform index (every post on X) and scanned the
        # table: 6.6 ms a post at 16,000 posts, growing with every post of a burst.
        Index("ix_posts_platform_author", "platform", "author_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(index=True)
    external_id: str
    author_id: str = Field(default="", index=True)
    author_handle: str = ""
    author_name: str = ""
    author_location: str = ""  # free-text profile location: a weak hint only
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    raw_payload: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    malformed: bool = False
    malformed_reason: str = ""
    is_dm: bool = False
    reply_to_external_id: str = ""
    conversation_id: str = ""
    reply_ref: dict = Field(default_factory=dict, sa_type=JSONType)  # platform data needed to answer
    posted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    geo_lat: float | None = None
    geo_lon: float | None = None
    geo_place: str = ""
    is_test: bool = False  # drill traffic: clearly marked, never paged to real dispatchers' phones
    lane: str = Lane.default.value
    triage_state: str = TriageState.pending.value
    # A worker's lease on the post while Redis is unreachable and it claims pending posts straight
    # from the database (flows/redisless.py). With Redis up it is not written: the sweep asks
    # RQ which pending posts a live job covers.
    triage_enqueued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disposition: str = Field(default=Disposition.awaiting_triage.value, index=True)
    disposition_by: str = ""
    disposition_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    legal_hold: bool = False


class TriageRecord(SQLModel, table=True):
    """What triage decided about one post, and why."""

    __tablename__ = "triage_results"

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="posts.id", unique=True, index=True)
    urgency: str
    category: str
    confidence: float
    language: str = ""
    silent: bool = False
    needs_review: bool = False
    locations: list = Field(default_factory=list, sa_type=JSONType)
    signals: dict = Field(default_factory=dict, sa_type=JSONType)
    reasons: list = Field(default_factory=list, sa_type=JSONType)
    scores: dict = Field(default_factory=dict, sa_type=JSONType)
    model_version: str = ""
    duration_ms: float = 0.0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Incident(SQLModel, table=True):
    """One real-world event, possibly reported by many posts."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_status_next_step", "status", "next_step_at"),)

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default=IncidentStatus.new.value, index=True)
    urgency: str = Field(index=True)
    category: str = ""
    summary: str = ""  # machine-written, generic ("medical — 3 reports"), never the reporter's words
    location_text: str = ""
    lat: float | None = None
    lon: float | None = None
    location_confidence: float = 0.0
    report_count: int = 0
    silent: bool = False
    is_test: bool = False
    legal_hold: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    queued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: str = ""
    claimed_by: str = ""
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Escalation: the policy chain frozen when the incident opened, and where it stands.
    policy_snapshot: dict = Field(default_factory=dict, sa_type=JSONType)
    escalation_token: str = ""  # jobs carrying another token are stale and do nothing
    escalation_step: int = 0
    next_step_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    stream_entry_id: str = ""
    cluster_key: str = Field(default="", index=True)
    # What a dispatcher must be shown about the incident beyond its status, e.g.
    # {"possible_duplicate_of": 12, "reporter_replied": true, "dm_unreachable": true,
    #  "new_report": true, "shared_fix": {...}}: set by escalation, cleared by people.
    flags: dict = Field(default_factory=dict, sa_type=JSONType)


class IncidentPost(SQLModel, table=True):
    """Membership of a post in an incident, with the machine's (or officer's) reason."""

    __tablename__ = "incident_posts"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    post_id: int = Field(foreign_key="posts.id", unique=True)
    attached_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    attached_by: str = "triage"
    reason: str = ""
    similarity: float | None = None


class OutboundMessage(SQLModel, table=True):
    """A reply or DM we send back. `dedupe_key` makes "exactly one receipt per post" a constraint."""

    __tablename__ = "outbound_messages"

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True)
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)
    post_id: int | None = Field(default=None, foreign_key="posts.id", index=True)
    platform: str
    kind: str  # MessageKind
    purpose: str  # MessagePurpose
    recipient_id: str = ""
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    status: str = Field(default=DeliveryStatus.queued.value, index=True)
    platform_message_id: str = ""
    attempts: int = 0
    last_error: str = ""
    created_by: str = "system"
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set when an attempt starts (and kept while its outcome is unknown): a crash or timeout
    # after the platform may have accepted the message leaves it set, so the next attempt first
    # looks for the message on the platform instead of sending it twice. Cleared by a known outcome.
    uncertain_since: datetime | None = Field(default=None, sa_type=UTCDateTime)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True)
    display_name: str = ""
    role: str
    password_hash: str
    api_token_hash: str = Field(default="", index=True)  # sha256 of the bearer token
    active: bool = True
    muted_alerts: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginSession(SQLModel, table=True):
    """A browser's session, held here: the cookie carries only a random id, stored as its sha256.

    Signing out, a change of who is signed in, "sign out everywhere" and deactivating a person
    revoke the row, so a copied cookie stops working with the original."""

    __tablename__ = "login_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)  # None: not signed in
    data: dict = Field(default_factory=dict, sa_type=JSONType)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_by: str = ""  # who or what ended it: a username, "sign-out", "sign-in" (a new id)...


class ConnectorCheckpoint(SQLModel, table=True):
    """Where a connector's feed stands. Written only after the posts it covers are committed."""

    __tablename__ = "connector_checkpoints"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)  # e.g. "x:mentions", "bluesky:notifications"
    cursor: dict = Field(default_factory=dict, sa_type=JSONType)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IncidentEvent(SQLModel, table=True):
    """Append-only event log; each entry carries the hash of the previous one (tamper-evident)."""

    __tablename__ = "incident_events"
    __table_args__ = (UniqueConstraint("incident_id", "seq", name="uq_incident_events_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    seq: int
    kind: str
    actor: str = "system"
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    data: dict = Field(default_factory=dict, sa_type=JSONType)
    prev_hash: str = ""
    hash: str = ""


class AuditEntry(SQLModel, table=True):
    """Who looked at or changed what. Views of personal data are always written here.

    Writers only insert. The evidence checkpointer then seals new entries in id order into one
    keyed chain (`seq`, `prev_hash`, `hash`), whose head and length it checkpoints outside the
    database; an unsealed entry has seq None.
    """

    __tablename__ = "audit_log"
    __table_args__ = (UniqueConstraint("seq", name="uq_audit_log_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    username: str
    action: str
    object_type: str = ""
    object_id: str = ""
    detail: dict = Field(default_factory=dict, sa_type=JSONType)
    seq: int | None = None
    prev_hash: str = ""
    hash: str = ""


class EvidenceTombstone(SQLModel, table=True):
    """An incident retention removed on purpose: its chain's final length and head, keyed (mac)
    so that verification can tell a purge from a deletion."""

    __tablename__ = "evidence_tombstones"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(index=True)
    length: int
    head_hash: str
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = ""
    reason: str = ""
    mac: str = ""
