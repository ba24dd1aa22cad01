"""Intake: write raw posts to the database first (the outbox), then hand them on.

A post is committed with triage_state=pending before anything is enqueued. If the process
dies between commit and enqueue, the outbox sweep finds the pending row and enqueues it.
Duplicate deliveries (same platform + external id) are absorbed by the unique constraint.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, select

from models.domain import RawPost
from models.enums import Disposition, Lane
from models.post_media import attached_media
from models.tables import Post
from models.types import utcnow

# Longest text we keep in the `text` column; the raw payload always keeps everything.
MAX_TEXT_CHARS = 20_000


@dataclass(frozen=True, slots=True)
class Persisted:
    post_id: int
    lane: str
    created: bool  # False when this delivery was a duplicate of a stored post
    media: bool = False  # its payload names pictures or videos to archive (models.post_media)


def _to_row(raw: RawPost, lane: str) -> Post:
    text = raw.text if isinstance(raw.text, str) else str(raw.text)
    # NUL bytes are rejected by PostgreSQL text columns; keep them visible, not fatal.
    text = text.replace("\x00", "\ufffd")[:MAX_TEXT_CHARS]
    return Post(
        platform=raw.platform,
        external_id=str(raw.external_id)[:255],
        author_id=raw.author_id or "",
        author_handle=raw.author_handle or "",
        author_name=(raw.author_name or "")[:255],
        author_location=(raw.author_location or "")[:255],
        text=text,
        raw_payload=(raw.raw_payload or "").replace("\x00", "\\u0000"),
        malformed=raw.malformed,
        malformed_reason=raw.malformed_reason,
        is_dm=raw.is_dm,
        reply_to_external_id=raw.reply_to_external_id or "",
        conversation_id=raw.conversation_id or "",
        reply_ref=raw.reply_ref or {},
        posted_at=raw.posted_at,
        received_at=utcnow(),
        geo_lat=raw.geo.lat if raw.geo else None,
        geo_lon=raw.geo.lon if raw.geo else None,
        geo_place=raw.geo.place if raw.geo else "",
        is_test=raw.is_test,
        lane=lane,
        disposition=Disposition.awaiting_triage.value,
    )


def persist_posts(
    engine: Engine,
    posts: Sequence[RawPost],
    choose_lane: Callable[[RawPost], str] = lambda _p: Lane.default.value,
) -> list[Persisted]:
    """Store posts (idempotently) and return their ids; the caller enqueues after this returns.

    A page goes in as one transaction; if the database refuses it (a duplicate, a bad row), each
    post gets its own small transaction so one bad row can never take the rest with it.
    """
    out: list[Persisted] = []
    lanes = [choose_lane(raw) for raw in posts]
    if len(posts) > 1:
        # Fast path for a page (in a burst, hundreds of posts): one transaction. A duplicate
        # delivery or any row the database refuses sends the page down the per-post path below.
        rows = [_to_row(raw, lane) for raw, lane in zip(posts, lanes)]
        with Session(engine, expire_on_commit=False) as session:
            session.add_all(rows)
            try:
                session.commit()
                return [Persisted(row.id, lane, True, bool(attached_media(row.raw_payload))) for row, lane in zip(rows, lanes)]
            except SQLAlchemyError:
                session.rollback()
    for raw, lane in zip(posts, lanes):
        row = _to_row(raw, lane)
        with Session(engine, expire_on_commit=False) as session:
            session.add(row)
            try:
                session.commit()
                out.append(Persisted(row.id, lane, True, bool(attached_media(row.raw_payload))))
                continue
            except IntegrityError:
                session.rollback()
            existing = session.exec(
                select(Post).where(Post.platform == row.platform, Post.external_id == row.external_id)
            ).one()
            out.append(Persisted(existing.id, existing.lane, False))
    return out
