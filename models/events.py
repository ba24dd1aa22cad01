"""The incident event log: append-only and chained with a keyed hash (HMAC-SHA256).

Each entry's hash is HMAC(key, canonical entry including the previous entry's hash). The key lives
outside the database (evidence/keys.py creates it; the composition root hands it to `make_engine`),
so whoever can rewrite the database cannot re-hash an edited chain. Entries that refer to other
rows carry a digest of what those rows said at the time (`row_sha256`), so an edit of a post,
triage result or message, and a change of an incident's recorded state, shows in verification.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import weakref
from datetime import datetime
from typing import Any

from sqlalchemy import event, func
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, select

from models.tables import Incident, IncidentEvent, OutboundMessage, Post, TriageRecord
from models.types import utcnow

GENESIS = "0" * 64

_CHAIN_KEYS: weakref.WeakKeyDictionary[Engine, bytes] = weakref.WeakKeyDictionary()


class ChainKeyMissing(RuntimeError):
    """An event was appended through an engine that was built without the chain key."""


def set_chain_key(engine: Engine, key: bytes) -> None:
    """Give an engine the key its sessions chain events with (make_engine(..., chain_key=) does this)."""
    if len(key) < 32:
        raise ValueError("the chain key must be at least 32 bytes")
    _CHAIN_KEYS[engine] = bytes(key)


def engine_chain_key(engine: Engine) -> bytes | None:
    return _CHAIN_KEYS.get(engine)


def session_chain_key(session: Session) -> bytes:
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    key = _CHAIN_KEYS.get(engine)
    if key is None:
        raise ChainKeyMissing("this database engine has no evidence chain key: build it with "
                              "make_engine(url, chain_key=...) from the evidence keys")
    return key


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def event_body(prev_hash: str, incident_id: int, seq: int, kind: str, actor: str, at: datetime,
               data: dict[str, Any]) -> bytes:
    return json.dumps(
        {"prev": prev_hash, "incident": incident_id, "seq": seq, "kind": kind, "actor": actor,
         "at": at.isoformat(timespec="microseconds"), "data": data},
        sort_keys=True, separators=(",", ":"), default=_canonical, ensure_ascii=False,
    ).encode("utf-8")


def event_hash(key: bytes, prev_hash: str, incident_id: int, seq: int, kind: str, actor: str,
               at: datetime, data: dict[str, Any]) -> str:
    return hmac.new(key, event_body(prev_hash, incident_id, seq, kind, actor, at, data),
                    hashlib.sha256).hexdigest()


# ----------------------------------------------------------------------------- row digests
def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="microseconds") if value else None


def _plain(value: Any) -> Any:
    return _iso(value) if isinstance(value, datetime) else value


# What a dispatcher acted on, per table: the columns whose later change is tampering. Columns
# that legitimately move on (a post's triage state and disposition, a message's retry timer) are
# left out; a message's delivery outcome is digested separately, when it is recorded.
POST_FIELDS = ("platform", "external_id", "author_id", "author_handle", "author_name", "author_location",
               "text", "raw_payload", "is_dm", "reply_to_external_id", "conversation_id", "posted_at",
               "received_at", "geo_lat", "geo_lon", "geo_place", "is_test")
TRIAGE_FIELDS = ("post_id", "urgency", "category", "confidence", "language", "silent", "needs_review",
                 "locations", "signals", "reasons", "scores", "model_version", "created_at")
MESSAGE_FIELDS = ("dedupe_key", "incident_id", "post_id", "platform", "kind", "purpose", "recipient_id",
                  "text", "created_by", "created_at")
DELIVERY_FIELDS = ("status", "platform_message_id", "sent_at")
# An incident's recorded state: every change of these appends an event carrying `incident_state`.
STATE_FIELDS = ("status", "acknowledged_at", "acknowledged_by", "resolved_at", "closed_at")


def row_fields(row: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: _plain(getattr(row, name)) for name in fields}


def row_sha256(row: Any, fields: tuple[str, ...]) -> str:
    body = json.dumps(row_fields(row, fields), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def post_sha256(post: Post) -> str:
    return row_sha256(post, POST_FIELDS)


def triage_sha256(record: TriageRecord) -> str:
    return row_sha256(record, TRIAGE_FIELDS)


def message_sha256(msg: OutboundMessage) -> str:
    return row_sha256(msg, MESSAGE_FIELDS)


def delivery_sha256(msg: OutboundMessage) -> str:
    return row_sha256(msg, DELIVERY_FIELDS)


def incident_state(incident: Incident) -> dict[str, Any]:
    """The incident's state as an event records it (`{"incident_state": ...}` in the event data)."""
    return {"incident_state": row_fields(incident, STATE_FIELDS)}


# ----------------------------------------------------------------------------- appending
_HEADS = "flare_event_heads"


_ROWS = "flare_event_rows"
_HELD = "flare_event_held"


def batch_appends(session: Session) -> None:
    """Let this session's appends remember each incident's chain head and keep their events as
    plain rows, written by `flush_appends` in one INSERT (no ORM object per event), so a batch
    appending many events reads each head once. Only for a session whose transaction holds the
    incidents it appends to (the batch triage path locks them), and which is not used again
    after its commit. A commit without `flush_appends` writes them too (before_commit)."""
    session.info[_HEADS] = {}
    session.info[_ROWS] = []
    session.info[_HELD] = set()
    if not event.contains(session, "before_commit", flush_appends):
        event.listen(session, "before_commit", flush_appends)


def held(session: Session, incident_ids) -> None:
    """In `batch_appends` mode: the session's transaction holds these incidents' rows locked
    (the batch triage path loads each incident it joins FOR UPDATE), so an append to one of
    them reads its chain head without locking the row a second time. Outside that mode (a
    session that may live on past its transaction) it changes nothing."""
    if _HELD in session.info:
        session.info[_HELD].update(incident_ids)


def load_heads(session: Session, incident_ids) -> None:
    """In `batch_appends` mode: read the chain heads of these incidents in one statement, so
    appends to them read none of their own. Only for incidents the session's transaction holds
    locked (see `held`): no other writer can move their heads until it ends."""
    heads: dict[int, tuple[int, str]] | None = session.info.get(_HEADS)
    wanted = [i for i in dict.fromkeys(incident_ids) if heads is not None and i not in heads]
    if not wanted:
        return
    last = (select(IncidentEvent.incident_id, func.max(IncidentEvent.seq).label("seq"))
            .where(IncidentEvent.incident_id.in_(wanted)).group_by(IncidentEvent.incident_id).subquery())
    found = {incident_id: (seq, digest) for incident_id, seq, digest in session.exec(
        select(IncidentEvent.incident_id, IncidentEvent.seq, IncidentEvent.hash).join(
            last, (IncidentEvent.incident_id == last.c.incident_id) & (IncidentEvent.seq == last.c.seq)))}
    for incident_id in wanted:
        heads[incident_id] = found.get(incident_id, (0, GENESIS))


def flush_appends(session: Session) -> int:
    """Write the events a `batch_appends` session has appended so far (after flushing the rows
    they refer to); returns how many."""
    rows: list[dict[str, Any]] | None = session.info.get(_ROWS)
    if not rows:
        return 0
    session.flush()
    session.connection().execute(IncidentEvent.__table__.insert(), rows)
    session.info[_ROWS] = []
    return len(rows)


def append_event(session: Session, incident_id: int, kind: str, actor: str = "system",
                 data: dict[str, Any] | None = None, at: datetime | None = None) -> IncidentEvent | None:
    """Append one event after the incident's last one (caller commits). Returns the event, or
    None in `batch_appends` mode (it is a row until `flush_appends`).

    Two writers racing for the same `seq` hit the unique constraint and one retries at the
    caller's transaction level, so the chain never forks.
    """
    key = session_chain_key(session)
    heads: dict[int, tuple[int, str]] | None = session.info.get(_HEADS)
    if heads is not None and incident_id in heads:
        seq, prev = heads[incident_id]
        seq += 1
    else:
        # The incident's row is locked before its chain head is read (a no-op where the caller
        # holds it already, and on SQLite): two writers appending to one incident then queue on
        # the row instead of each waiting on the other's seq while holding what the other's
        # foreign-key check needs, a deadlock on PostgreSQL.
        if incident_id not in session.info.get(_HELD, ()):
            session.exec(select(Incident.id).where(Incident.id == incident_id).with_for_update())
        last = session.exec(  # two columns, not the row: the last event's data is never needed here
            select(IncidentEvent.seq, IncidentEvent.hash).where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.seq.desc()).limit(1)
        ).first()
        seq = (last.seq + 1) if last else 1
        prev = last.hash if last else GENESIS
    at = at or utcnow()
    payload = json.loads(json.dumps(data or {}, default=_canonical))
    digest = event_hash(key, prev, incident_id, seq, str(kind), actor, at, payload)
    if heads is not None:
        heads[incident_id] = (seq, digest)
        session.info[_ROWS].append({"incident_id": incident_id, "seq": seq, "kind": str(kind), "actor": actor,
                                    "at": at, "data": payload, "prev_hash": prev, "hash": digest})
        return None
    ev = IncidentEvent(incident_id=incident_id, seq=seq, kind=str(kind), actor=actor, at=at,
                       data=payload, prev_hash=prev, hash=digest)
    session.add(ev)
    session.flush()
    return ev


def verify_chain(events: list[IncidentEvent], key: bytes) -> int | None:
    """Return the seq of the first broken entry of one incident's events, or None when intact."""
    prev = GENESIS
    for expected_seq, ev in enumerate(sorted(events, key=lambda e: e.seq), start=1):
        if ev.seq != expected_seq or ev.prev_hash != prev:
            return ev.seq
        if not hmac.compare_digest(event_hash(key, prev, ev.incident_id, ev.seq, ev.kind, ev.actor, ev.at,
                                              ev.data), ev.hash):
            return ev.seq
        prev = ev.hash
    return None
