"""A way to a dispatcher while the database refuses: provisional criticals, kept in Redis.

Normally a post reaches a dispatcher only through the database (stored, triaged, an incident
queued). While the database refuses connections the connectors keep reading and hold posts in
memory until it answers (connectors.runner.read_while_database_down); a critical read then
waits for the outage to end. So, while it refuses:

1. the connectors also append each post they hold to the Redis stream STREAM (`flows.held.hold_for_dispatch`,
   wired in runtime/connector_loop.py). Redis runs with AOF in production, so this is durable; the
   held posts are still stored in the database as it answers, idempotently by platform and
   external id, exactly as before: the database stays the only record of a post;
2. every worker's `triage_while_database_down` thread reads that stream through the consumer group
   GROUP (an entry a worker took and did not acknowledge is taken over by another after
   CLAIM_IDLE_MS: XAUTOCLAIM), decides each post with the same triage pipeline (which needs no
   database) and, for posts decided critical or high, records a provisional entry in the hash
   PROVISIONAL: what, where, urgency, reasons and the post's text as triage read it;
3. the dispatcher's queue page and GET /api/v1/queue, when the database refuses, show those entries
   under a banner saying what they are (dashboard/degraded.py), each view audited through the
   record buffered in AUDIT_PENDING, written to the audit log here once the database answers.

Nothing here opens an incident, sends a reporter anything or pages anyone: a provisional entry is
only shown. When the database answers, the post is stored and triaged the usual way (one incident,
one receipt, the escalation chain started once, its first step being the queue itself), and
`reconcile` drops each provisional entry whose post has been triaged. An entry whose post is
never triaged (none should be: the connectors re-read from a checkpoint that never moved) is
dropped after PROVISIONAL_MAX_AGE_S. The triage decision made here is remembered by the worker
(flows.decisions), so the post's normal triage reuses it rather than running the model again.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import tuple_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from flows.context import AppContext
from flows.held import STREAM
from models.db import database_answers
from models.domain import GeoPoint, TriageOutput
from models.enums import TriageState, Urgency
from models.access import audit
from models.tables import Post
from triage.base import TriageInput

log = logging.getLogger("flare.worker")

GROUP = "dbless-triage"
PROVISIONAL = "flare:dbless:provisional"  # hash: "platform:external_id" → entry (JSON)
AUDIT_PENDING = "flare:dbless:audit"  # list of audit records (JSON) to write once the database answers
FLUSH_LOCK = "flare:dbless:flushing"
# Set by the usual triage for each urgent post it acted on (flows.triage_batch): a post read again
# during an outage (a connectors process started into it reads from the platform's newest) is then
# not shown as provisional beside the incident it already is.
TRIAGED_PREFIX = "flare:dbless:triaged:"
TRIAGED_TTL_S = 3600
READ_COUNT = 64
BLOCK_MS = 250
CLAIM_IDLE_MS = 15_000  # an entry a worker took and did not finish is taken over after this
RECONCILE_S = 1.0
PROVISIONAL_MAX_AGE_S = 6 * 3600.0
SHOWN = (Urgency.critical.value, Urgency.high.value)
TEXT_CHARS = 2_000  # of a post's text kept in its provisional entry


def post_key(platform: str, external_id: str) -> str:
    """A provisional entry's key: the post's unique key in the database (platform, external id)."""
    return f"{platform}:{str(external_id)[:255]}"


# ----------------------------------------------------------------------------- the workers' half
def ensure_group(conn: redis.Redis) -> None:
    try:
        conn.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def take(conn: redis.Redis, consumer: str, block_ms: int = BLOCK_MS,
         claim_idle_ms: int = CLAIM_IDLE_MS) -> list[tuple[str, dict[str, Any]]]:
    """Entries for this consumer: first those another consumer took more than `claim_idle_ms`
    ago and never acknowledged (it died), then new ones (waiting up to `block_ms`). The group is
    made on first use (and again if Redis lost it)."""
    try:
        _, claimed, *_ = conn.xautoclaim(STREAM, GROUP, consumer, min_idle_time=claim_idle_ms, start_id="0-0",
                                         count=READ_COUNT)
    except redis.ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        ensure_group(conn)
        claimed = []
    entries = [(entry_id, fields) for entry_id, fields in claimed if fields]
    if not entries:
        for _stream, fresh in conn.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=READ_COUNT,
                                              block=block_ms) or []:
            entries += fresh
    out = []
    for entry_id, fields in entries:
        entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        raw = fields.get(b"post") or fields.get("post")
        try:
            out.append((entry_id, json.loads(raw)))
        except (TypeError, ValueError):
            log.error("unreadable entry %s in %s; acknowledged and skipped", entry_id, STREAM)
            conn.xack(STREAM, GROUP, entry_id)
            conn.xdel(STREAM, entry_id)
    return out


def _input(post: dict[str, Any]) -> TriageInput:
    geo = post.get("geo")
    return TriageInput(text=post["text"], platform=post["platform"], is_dm=bool(post.get("is_dm")),
                       geo=GeoPoint(geo[0], geo[1], geo[2] or "") if geo else None,
                       author_location=post.get("author_location") or "")


def mark_triaged(conn: redis.Redis, keys: Sequence[str]) -> None:
    """Say that these posts ("platform:external_id") have been triaged and acted on (one round trip)."""
    if not keys:
        return
    with conn.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.set(TRIAGED_PREFIX + key, "1", ex=TRIAGED_TTL_S)
        pipe.execute()


def entry_for(post: dict[str, Any], out: TriageOutput) -> dict[str, Any]:
    """A provisional entry: the post as triage read it and what triage decided."""
    where = [loc.text for loc in out.locations if loc.text][:3]
    return {"key": post_key(post["platform"], post["external_id"]), "platform": post["platform"],
            "is_dm": bool(post.get("is_dm")), "text": post["text"][:TEXT_CHARS], "urgency": out.urgency,
            "category": out.category, "confirmed": bool(out.confirmed), "where": where,
            "reasons": [str(r) for r in out.reasons][:8], "language": out.language,
            "posted_at": post.get("posted_at"), "read_at": post.get("read_at"), "decided_at": time.time()}


def already_triaged(engine: Engine, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (platform, external id) posts the database has triaged. Raises if it refuses."""
    if not keys:
        return set()
    with Session(engine) as s:
        rows = s.exec(select(Post.platform, Post.external_id).where(
            tuple_(Post.platform, Post.external_id).in_(list(keys)),
            Post.triage_state == TriageState.done.value)).all()
    return {(platform, external_id) for platform, external_id in rows}


def triage_entries(ctx: AppContext, conn: redis.Redis, entries: list[tuple[str, dict[str, Any]]],
                   model_lock: threading.Lock) -> int:
    """Decide the posts of these entries and record the critical and high ones as provisional;
    then acknowledge the entries. Returns how many entries were recorded. The database is not
    asked (one that does not answer could hold this up): a post the usual triage marked as acted
    on (mark_triaged) is skipped, and one it triaged meanwhile is dropped by the next `reconcile`."""
    if not entries:
        return 0
    marked = conn.mget([TRIAGED_PREFIX + post_key(post["platform"], post["external_id"]) for _, post in entries])
    todo = [(entry_id, post) for (entry_id, post), mark in zip(entries, marked) if mark is None]
    recorded = 0
    if todo:
        with model_lock:
            outs, _ = ctx.decisions.decide([_input(post) for _, post in todo])
        shown = {post_key(post["platform"], post["external_id"]): json.dumps(entry_for(post, out))
                 for (_, post), out in zip(todo, outs) if out.urgency in SHOWN}
        with conn.pipeline(transaction=False) as pipe:
            for key, value in shown.items():
                pipe.hsetnx(PROVISIONAL, key, value)  # the first reading stands (a re-read post)
            pipe.execute()
        recorded = len(shown)
        if shown:
            log.warning("database unreachable: %d urgent posts shown to dispatchers as provisional", len(shown))
    done = [entry_id for entry_id, _ in entries]
    with conn.pipeline(transaction=False) as pipe:  # decided: the entry is not needed any more
        pipe.xack(STREAM, GROUP, *done)
        pipe.xdel(STREAM, *done)
        pipe.execute()
    return recorded


def provisional_entries(conn: redis.Redis) -> list[dict[str, Any]]:
    """Every provisional entry, most urgent first, then oldest first."""
    rank = {u.value: u.rank for u in Urgency}
    entries = []
    for value in conn.hvals(PROVISIONAL):
        try:
            entries.append(json.loads(value))
        except (TypeError, ValueError):
            continue
    return sorted(entries, key=lambda e: (rank.get(e.get("urgency"), 9), e.get("posted_at") or e.get("read_at") or 0))


def reconcile(engine: Engine, conn: redis.Redis, now: float | None = None) -> int:
    """The database answers: drop the provisional entries whose posts it has triaged (and any
    older than PROVISIONAL_MAX_AGE_S). Returns how many were dropped. Raises if either refuses."""
    now = time.time() if now is None else now
    raw = conn.hgetall(PROVISIONAL)
    if not raw:
        return 0
    entries = {}
    for key, value in raw.items():
        key = key.decode() if isinstance(key, bytes) else key
        try:
            entries[key] = json.loads(value)
        except (TypeError, ValueError):
            entries[key] = {}
    stale = [k for k, e in entries.items() if now - float(e.get("read_at") or 0) > PROVISIONAL_MAX_AGE_S]
    keys = [tuple(k.split(":", 1)) for k in entries if k not in stale]
    done = already_triaged(engine, [k for k in keys if len(k) == 2])
    drop = stale + [post_key(*k) for k in done]
    if drop:
        conn.hdel(PROVISIONAL, *drop)
    return len(drop)


# ----------------------------------------------------------------------------- audit, buffered
def buffer_audit(conn: redis.Redis, username: str, action: str, object_type: str = "", object_id: str = "",
                 detail: dict | None = None) -> None:
    """An audit record of a view made while the database refused, kept until it answers. Raises a
    Redis error when it cannot be kept: the caller must then not show what it would record."""
    conn.rpush(AUDIT_PENDING, json.dumps({"at": time.time(), "username": username, "action": action,
                                          "object_type": object_type, "object_id": str(object_id),
                                          "detail": detail or {}}))


def flush_audit(engine: Engine, conn: redis.Redis, page: int = 500) -> int:
    """Write the buffered audit records to the audit log, oldest first, with the time each view
    was made. One writer at a time (a lock that lapses); a record is removed from Redis only after
    its row is committed, so a crash between the two writes it twice rather than never."""
    if not conn.set(FLUSH_LOCK, "1", nx=True, px=30_000):
        return 0
    written = 0
    try:
        while True:
            batch = conn.lrange(AUDIT_PENDING, 0, page - 1)
            if not batch:
                return written
            with Session(engine) as s:
                for value in batch:
                    try:
                        record = json.loads(value)
                    except (TypeError, ValueError):
                        log.error("unreadable buffered audit record dropped: %r", value[:200])
                        continue
                    audit(s, record["username"], record["action"], record.get("object_type", ""),
                          record.get("object_id", ""), record.get("detail"),
                          at=datetime.fromtimestamp(float(record["at"]), UTC))  # when the view was made
                s.commit()
            conn.ltrim(AUDIT_PENDING, len(batch), -1)
            written += len(batch)
    finally:
        conn.delete(FLUSH_LOCK)


def triage_while_database_down(ctx: AppContext, model_lock: threading.Lock, stop: threading.Event,
                               consumer: str) -> None:
    """The worker's thread: decide what the connectors held in STREAM (and, on a thread of its
    own, so a database that hangs never holds this up, reconcile once it answers)."""
    threading.Thread(target=reconcile_while_running, args=(ctx, stop), daemon=True, name="dbless-reconcile").start()
    conn = ctx.redis
    while not stop.is_set():
        try:
            entries = take(conn, consumer)
            if entries:
                triage_entries(ctx, conn, entries, model_lock)
        except Exception:  # noqa: BLE001 - Redis went away: try again shortly
            log.warning("provisional triage round failed; retrying", exc_info=True)
            stop.wait(BLOCK_MS / 1000)


def reconcile_while_running(ctx: AppContext, stop: threading.Event) -> None:
    """Every RECONCILE_S, while there is anything to do and the database answers: drop the
    provisional entries it has triaged and write the buffered audit records."""
    conn = ctx.redis
    while not stop.wait(RECONCILE_S):
        try:
            if (conn.hlen(PROVISIONAL) or conn.llen(AUDIT_PENDING)) and database_answers(ctx.engine):
                reconcile(ctx.engine, conn)
                flush_audit(ctx.engine, conn)
        except Exception:  # noqa: BLE001 - Redis or the database went away again: next round
            log.warning("reconciling provisional entries failed; retrying", exc_info=True)
