"""The incident event log: append-only and hash-chained, so any later edit is detectable."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from models.tables import IncidentEvent
from models.types import utcnow

GENESIS = "0" * 64


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def event_hash(prev_hash: str, incident_id: int, seq: int, kind: str, actor: str, at: datetime,
               data: dict[str, Any]) -> str:
    body = json.dumps(
        {"prev": prev_hash, "incident": incident_id, "seq": seq, "kind": kind, "actor": actor,
         "at": at.isoformat(timespec="microseconds"), "data": data},
        sort_keys=True, separators=(",", ":"), default=_canonical, ensure_ascii=False,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


_HEADS = "flare_event_heads"


def batch_appends(session: Session) -> None:
    """Let this session's appends remember each incident's chain head and write their events at
    the next flush, so a batch appending many events reads each head once and inserts them in
    one statement. Only for a session whose transaction holds the incidents it appends to (the
    batch triage path locks them), and which is not used again after its commit."""
    session.info[_HEADS] = {}


def append_event(session: Session, incident_id: int, kind: str, actor: str = "system",
                 data: dict[str, Any] | None = None, at: datetime | None = None) -> IncidentEvent:
    """Append one event after the incident's last one (caller commits).

    Two writers racing for the same `seq` hit the unique constraint and one retries at the
    caller's transaction level, so the chain never forks.
    """
    heads: dict[int, tuple[int, str]] | None = session.info.get(_HEADS)
    if heads is not None and incident_id in heads:
        seq, prev = heads[incident_id]
        seq += 1
    else:
        last = session.exec(  # two columns, not the row: the last event's data is never needed here
            select(IncidentEvent.seq, IncidentEvent.hash).where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.seq.desc()).limit(1)
        ).first()
        seq = (last.seq + 1) if last else 1
        prev = last.hash if last else GENESIS
    at = at or utcnow()
    at = at.replace(microsecond=at.microsecond)  # keep microseconds: they are part of the hash
    payload = json.loads(json.dumps(data or {}, default=_canonical))
    ev = IncidentEvent(incident_id=incident_id, seq=seq, kind=str(kind), actor=actor, at=at,
                       data=payload, prev_hash=prev)
    ev.hash = event_hash(prev, incident_id, seq, ev.kind, actor, at, payload)
    session.add(ev)
    if heads is None:
        session.flush()
    else:
        heads[incident_id] = (seq, ev.hash)
    return ev


def verify_chain(events: list[IncidentEvent]) -> int | None:
    """Return the seq of the first broken entry, or None when the chain is intact."""
    prev = GENESIS
    expected_seq = 1
    for ev in sorted(events, key=lambda e: e.seq):
        if ev.seq != expected_seq or ev.prev_hash != prev:
            return ev.seq
        if event_hash(prev, ev.incident_id, ev.seq, ev.kind, ev.actor, ev.at, ev.data) != ev.hash:
            return ev.seq
        prev = ev.hash
        expected_seq += 1
    return None
