"""One-time share links and what reporters send through them (location, photos, live frames, text).

Every received item is evidence: its bytes (or canonical JSON) are hashed with SHA-256 when they
arrive and the hash goes into the incident's event log, so a later change to a stored file is
detectable. A live stream is stored frame by frame, each frame its own row and file, so a dropped
connection loses at most the frame that was in flight.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import JSONType, UTCDateTime, utcnow


class ShareLink(SQLModel, table=True):
    """A signed, expiring link sent to one reporter; bound to the first device that opens it."""

    __tablename__ = "share_links"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    post_id: int | None = Field(default=None, foreign_key="posts.id")  # the report we answered
    nonce: str = Field(unique=True)  # inside the signed token; a token without a live row is void
    created_by: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    message_id: int | None = Field(default=None, foreign_key="outbound_messages.id")
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_by: str = ""
    # sha256 of the device cookie: the raw cookie value never reaches the database.
    device_hash: str = ""
    bound_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    consent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    consent_scope: list = Field(default_factory=list, sa_type=JSONType)
    consent_text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    consent_user_agent: str = ""
    declined_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # reporter pressed "stop"


class SharedItem(SQLModel, table=True):
    """One thing a reporter sent: a location fix, a photo, a live frame or a text."""

    __tablename__ = "shared_items"
    __table_args__ = (Index("ix_shared_items_incident_kind", "incident_id", "kind", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    link_id: int = Field(foreign_key="share_links.id", index=True)
    incident_id: int = Field(foreign_key="incidents.id")
    kind: str  # location | photo | frame | text
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Files live under the media dir; the path is relative to it so the dir can move.
    path: str = ""
    content_type: str = ""
    size: int = 0
    sha256: str  # of the file bytes, or of the canonical JSON in `data` for locations and texts
    data: dict = Field(default_factory=dict, sa_type=JSONType)  # lat/lon/accuracy, or the text
    stream_seq: int | None = None  # position of a live frame within its connection


class PostMedia(SQLModel, table=True):
    """A media item a post's payload named, archived once after the post was stored: the bytes
    are kept under the media dir with their SHA-256, so what a dispatcher reveals is what arrived,
    fetched by no one's browser and unchanged since. `status` is archived or failed (`error` says
    why: too large, not an image or video, unreachable, a private address)."""

    __tablename__ = "post_media"
    __table_args__ = (UniqueConstraint("post_id", "idx", name="uq_post_media_post_idx"),)

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="posts.id", index=True)
    idx: int  # position among the post's attached media
    kind: str  # image | video
    source_url: str = Field(sa_column=Column(Text, nullable=False))
    status: str  # archived | failed
    error: str = ""
    path: str = ""  # relative to the media dir
    content_type: str = ""
    size: int = 0
    sha256: str = ""
    fetched_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
