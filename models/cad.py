"""Delivery log of incident hand-offs to computer-aided dispatch (one row per HTTP attempt)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class CadDelivery(SQLModel, table=True):
    __tablename__ = "cad_deliveries"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    url: str
    status_code: int | None = None  # None when no HTTP response arrived (timeout, refused)
    attempt: int
    ok: bool = False
    error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    payload_sha256: str = ""  # of the exact body sent, so a CAD record can be matched to our export
