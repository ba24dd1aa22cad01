"""Checkpoints: the heads and lengths of every chain, signed and written where the database cannot
rewrite them.

Each checkpoint is one JSON line appended to a file outside the data directory (and, when
configured, POSTed to a webhook). A line records the incidents whose chain moved since the last
line (`incidents`: id -> [length, head]), incidents retention removed (`retired`), and the audit
log's chain (`audit`: [length, head]); it names the previous line's SHA-256 and is signed with the
Ed25519 evidence key. Replaying the file gives, for every chain, the length and head it had at the
last checkpoint: verification then detects truncation and deletion, not only edits.

The checkpointer also seals the audit log: entries written since the last run are chained in id
order with the HMAC key (writers only insert, so they never contend for the head).
"""
from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from evidence.keys import EvidenceKeys, private_dirs, verify_signature
from models.events import GENESIS, engine_chain_key, event_hash
from models.tables import AuditEntry, EvidenceTombstone, IncidentEvent
from models.types import utcnow

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "flare-evidence-checkpoint/1"


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="microseconds") if value else None


# ----------------------------------------------------------------------------- audit chain
def audit_hash(key: bytes, prev: str, seq: int, entry: AuditEntry) -> str:
    body = {"prev": prev, "seq": seq, "id": entry.id, "at": _iso(entry.at), "username": entry.username,
            "action": entry.action, "object_type": entry.object_type, "object_id": entry.object_id,
            "detail": entry.detail}
    return hmac.new(key, _canonical(body), hashlib.sha256).hexdigest()


def seal_audit(session: Session, key: bytes) -> int:
    """Chain every unsealed audit entry (id order) after the current head. Caller commits."""
    last = session.exec(select(AuditEntry.seq, AuditEntry.hash).where(AuditEntry.seq.is_not(None))
                        .order_by(AuditEntry.seq.desc()).limit(1)).first()
    seq, prev = (last.seq, last.hash) if last else (0, GENESIS)
    fresh = session.exec(select(AuditEntry).where(AuditEntry.seq.is_(None)).order_by(AuditEntry.id)).all()
    for entry in fresh:
        seq += 1
        entry.seq, entry.prev_hash = seq, prev
        entry.hash = prev = audit_hash(key, prev, seq, entry)
        session.add(entry)
    return len(fresh)


# ----------------------------------------------------------------------------- tombstones
def tombstone_mac(key: bytes, stone: EvidenceTombstone) -> str:
    body = {"incident_id": stone.incident_id, "length": stone.length, "head": stone.head_hash,
            "at": _iso(stone.at), "actor": stone.actor, "reason": stone.reason}
    return hmac.new(key, _canonical(body), hashlib.sha256).hexdigest()


def valid_tombstones(session: Session, key: bytes) -> dict[int, tuple[int, str]]:
    """Incident id -> (length, head) for every tombstone whose MAC checks out."""
    out: dict[int, tuple[int, str]] = {}
    for stone in session.exec(select(EvidenceTombstone).order_by(EvidenceTombstone.id)):
        if hmac.compare_digest(tombstone_mac(key, stone), stone.mac or ""):
            out[stone.incident_id] = (stone.length, stone.head_hash)
    return out


# ----------------------------------------------------------------------------- the file
@dataclass
class CheckpointState:
    """What the checkpoint file says, replayed: the last recorded length and head of every chain."""

    incidents: dict[int, tuple[int, str]] = field(default_factory=dict)
    retired: dict[int, tuple[int, str]] = field(default_factory=dict)
    audit: tuple[int, str] = (0, GENESIS)
    count: int = 0
    last_digest: str = GENESIS
    problems: list[str] = field(default_factory=list)  # lines that do not check out (first is enough)


def _pair(value: Any) -> tuple[int, str]:
    if (not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], int)
            or isinstance(value[0], bool) or value[0] < 0 or not isinstance(value[1], str)):
        raise ValueError(f"not a [length, head] pair: {value!r}")
    return value[0], value[1]


def read_checkpoints(path: Path, public_key: Ed25519PublicKey) -> CheckpointState:
    """Replay the checkpoint file, checking every line's signature and link to the one before.
    Reading stops at the first line that does not check out (it is reported in `problems`)."""
    state = CheckpointState()
    path = Path(path)
    if not path.exists():
        return state
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            where = f"checkpoint file {path} line {number}"
            try:
                record = json.loads(raw)
                if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
                    raise ValueError("not a checkpoint record")
                signature = record.pop("sig", None)
                signed = _canonical(record)
                if not verify_signature(public_key, signature, signed):
                    raise ValueError("signature does not verify with the evidence public key")
                if record.get("n") != state.count + 1:
                    raise ValueError(f"expected checkpoint number {state.count + 1}, found {record.get('n')!r}")
                if record.get("prev") != state.last_digest:
                    raise ValueError("does not follow the previous line (a line was removed or reordered)")
                incidents = {int(k): _pair(v) for k, v in (record.get("incidents") or {}).items()}
                retired = {int(k): _pair(v) for k, v in (record.get("retired") or {}).items()}
                audit = _pair(record.get("audit"))
            except (ValueError, TypeError, AttributeError) as exc:
                state.problems.append(f"{where}: {exc}")
                return state
            state.incidents.update(incidents)
            for incident_id, pair in retired.items():
                state.incidents.pop(incident_id, None)
                state.retired[incident_id] = pair
            state.audit = audit
            state.count += 1
            state.last_digest = hashlib.sha256(signed).hexdigest()
    return state


@dataclass(frozen=True)
class CheckpointResult:
    written: bool
    number: int
    incidents: int  # chains recorded in this line
    audit_sealed: int
    held_back: list[str]  # chains that no longer extend what was checkpointed: left for verify to report
    webhook_error: str = ""


def _current_heads(session: Session) -> dict[int, tuple[int, str]]:
    last = (select(IncidentEvent.incident_id, func.max(IncidentEvent.seq).label("seq"))
            .group_by(IncidentEvent.incident_id).subquery())
    rows = session.exec(select(IncidentEvent.incident_id, IncidentEvent.seq, IncidentEvent.hash).join(
        last, (last.c.incident_id == IncidentEvent.incident_id) & (last.c.seq == IncidentEvent.seq)))
    return {incident_id: (seq, head) for incident_id, seq, head in rows}


def _chains_on(rows: list, old: tuple[int, str], recompute) -> bool:
    """Do `rows` (ordered by seq, starting at the checkpointed one) chain on from the checkpointed
    head, each entry's keyed hash checking out?"""
    start_len, start_head = old
    if start_len:
        if not rows or rows[0].seq != start_len or rows[0].hash != start_head:
            return False
        rows = rows[1:]
    prev, expected = start_head, start_len + 1
    for row in rows:
        if row.seq != expected or row.prev_hash != prev or not hmac.compare_digest(recompute(prev, row), row.hash):
            return False
        prev, expected = row.hash, expected + 1
    return True


def _extends(session: Session, key: bytes, incident_id: int, old: tuple[int, str] | None) -> bool:
    old = old or (0, GENESIS)
    rows = session.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id,
                                                    IncidentEvent.seq >= max(old[0], 1))
                        .order_by(IncidentEvent.seq)).all()
    return _chains_on(list(rows), old, lambda prev, ev: event_hash(key, prev, ev.incident_id, ev.seq, ev.kind,
                                                                     ev.actor, ev.at, ev.data))


def _audit_extends(session: Session, key: bytes, old: tuple[int, str]) -> bool:
    rows = session.exec(select(AuditEntry).where(AuditEntry.seq >= max(old[0], 1)).order_by(AuditEntry.seq)).all()
    return _chains_on(list(rows), old, lambda prev, entry: audit_hash(key, prev, entry.seq, entry))


def append_line(path: Path, record: dict[str, Any]) -> None:
    """One write of one line, opened for append only (O_APPEND), then fsync."""
    path = Path(path)
    private_dirs(path.parent)
    line = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """One checkpointer at a time on this file (workers and `flare evidence checkpoint` alike):
    an advisory lock on a sidecar file, so reading the last line and appending the next is atomic."""
    path = Path(path)
    private_dirs(path.parent)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_checkpoint(engine: Engine, keys: EvidenceKeys, path: Path, webhook_url: str = "",
                     timeout: float = 5.0) -> CheckpointResult:
    """Seal new audit entries, then append a signed checkpoint of every chain that moved.
    Nothing is written when nothing moved."""
    with _exclusive(path):
        return _write_checkpoint(engine, keys, path, webhook_url, timeout)


def _write_checkpoint(engine: Engine, keys: EvidenceKeys, path: Path, webhook_url: str,
                      timeout: float) -> CheckpointResult:
    key = engine_chain_key(engine) or keys.hmac_key
    state = read_checkpoints(path, keys.public_key)
    if state.problems:
        raise ValueError(f"refusing to extend a checkpoint file that does not verify: {state.problems[0]}")
    held: list[str] = []
    with Session(engine, expire_on_commit=False) as session:
        sealed = seal_audit(session, key)
        try:
            session.commit()
        except IntegrityError:  # a checkpointer writing another file sealed them first
            session.rollback()
            raise ValueError("another checkpointer is sealing the audit log; try again") from None
        heads = _current_heads(session)
        moved: dict[int, tuple[int, str]] = {}
        for incident_id, head in sorted(heads.items()):
            old = state.incidents.get(incident_id)
            if old == head or incident_id in state.retired:
                continue
            if old is not None and head[0] < old[0] or not _extends(session, key, incident_id, old):
                held.append(f"incident {incident_id}")
                continue
            moved[incident_id] = head
        tombstones = valid_tombstones(session, key)
        retired = {i: pair for i, pair in tombstones.items()
                   if i not in state.retired and i not in heads and state.incidents.get(i, pair) == pair}
        audit_last = session.exec(select(AuditEntry.seq, AuditEntry.hash).where(AuditEntry.seq.is_not(None))
                                  .order_by(AuditEntry.seq.desc()).limit(1)).first()
        audit = (audit_last.seq, audit_last.hash) if audit_last else (0, GENESIS)
        if audit != state.audit and (audit[0] < state.audit[0] or not _audit_extends(session, key, state.audit)):
            held.append("audit log")
            audit = state.audit
    for name in held:
        log.error("evidence checkpoint: %s no longer extends its last checkpoint; run `flare evidence verify`", name)
    if not moved and not retired and audit == state.audit:
        return CheckpointResult(False, state.count, 0, sealed, held)
    record: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT, "n": state.count + 1, "prev": state.last_digest, "at": _iso(utcnow()),
        "key_id": keys.key_id, "incidents": {str(i): list(p) for i, p in moved.items()},
        "retired": {str(i): list(p) for i, p in retired.items()}, "audit": list(audit),
    }
    record["sig"] = keys.sign(_canonical(record))
    append_line(path, record)
    webhook_error = ""
    if webhook_url:
        webhook_error = post_checkpoint(webhook_url, record, timeout)
    return CheckpointResult(True, state.count + 1, len(moved), sealed, held, webhook_error)


def post_checkpoint(url: str, record: dict[str, Any], timeout: float) -> str:
    """Send one signed checkpoint to the external witness; an error is returned and logged, never
    raised (the file already holds the checkpoint)."""
    try:
        response = httpx.post(url, content=_canonical(record), timeout=timeout,
                              headers={"content-type": "application/json",
                                       "x-flare-checkpoint": str(record["n"])})
        response.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("evidence checkpoint %s: webhook failed: %s", record["n"], exc)
        return f"{type(exc).__name__}: {exc}"
    return ""
