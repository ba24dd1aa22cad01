"""The connectors' half of the provisional way to a dispatcher (flows/dbless.py says the whole).

Posts a connector reads while the database refuses are appended to the Redis stream STREAM, which
workers read. Kept apart from flows/dbless.py so the connectors process imports no triage code.
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import redis

from models.domain import RawPost

STREAM = "flare:dbless:posts"
STREAM_MAXLEN = 100_000  # approximate: a long outage in a busy incident keeps the newest


def hold_for_dispatch(conn: redis.Redis, posts: Sequence[RawPost]) -> None:
    """Append posts read while the database refuses to STREAM (one round trip). Raises a Redis
    error if Redis does not take them: the caller still holds them for the database."""
    if not posts:
        return
    with conn.pipeline(transaction=False) as pipe:
        for raw in posts:
            pipe.xadd(STREAM, {"post": json.dumps(held_fields(raw))}, maxlen=STREAM_MAXLEN, approximate=True)
        pipe.execute()


def held_fields(raw: RawPost) -> dict[str, Any]:
    """What triage reads of a post, and what a provisional entry shows (not the author's name or
    handle: a dispatcher sees who reported it once the post is stored)."""
    return {"platform": raw.platform, "external_id": str(raw.external_id)[:255], "text": str(raw.text or ""),
            "is_dm": bool(raw.is_dm), "author_location": raw.author_location or "",
            "posted_at": raw.posted_at.timestamp() if raw.posted_at else None,
            "geo": [raw.geo.lat, raw.geo.lon, raw.geo.place] if raw.geo else None,
            "read_at": time.time()}
