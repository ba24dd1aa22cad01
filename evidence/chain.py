"""Verify the tamper-evident record.

An incident is intact when its events form an unbroken keyed chain from GENESIS (HMAC with the
evidence key, so an edited entry cannot be re-hashed by whoever can only write the database); the
chain is at least as long as the last checkpoint recorded and still ends that prefix with the
checkpointed head (truncation and deletion show); every row an entry refers to still has the
digest recorded then (post text and payload, triage result, message text and delivery outcome,
media); the incident's status and acknowledgement match the last state the chain recorded; and
every attached post and every message of the incident is named in the chain. The audit log is one
keyed chain of its own, checked the same way. Checkpointed incidents that are gone must have a
valid retention tombstone.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from evidence.checkpoint import CheckpointState, audit_hash, valid_tombstones
from evidence.hashes import file_digest, post_digest
from evidence.media import POST_PURGED, data_digest, incident_media, resolve_media_path
from models.enums import EventKind
from models.events import (
    GENESIS,
    STATE_FIELDS,
    ChainKeyMissing,
    delivery_sha256,
    engine_chain_key,
    event_hash,
    message_sha256,
    post_sha256,
    row_fields,
    session_chain_key,
    triage_sha256,
)
from models.tables import AuditEntry, Incident, IncidentEvent, IncidentPost, OutboundMessage, Post, TriageRecord

AUDIT = -1  # ChainBreak.incident_id of the audit log's chain
CHECKPOINTS = -2  # ... of the checkpoint file


@dataclass(frozen=True)
class ChainBreak:
    incident_id: int  # AUDIT for the audit log, CHECKPOINTS for the checkpoint file
    seq: int | None  # the first entry that no longer checks out (None: not tied to one entry)
    reason: str

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "no entry"
        if self.incident_id == AUDIT:
            return f"audit log {where}: {self.reason}"
        if self.incident_id == CHECKPOINTS:
            return self.reason
        return f"incident {self.incident_id} {where}: {self.reason}"


@dataclass
class VerifyReport:
    incidents_checked: int = 0
    events_checked: int = 0
    audit_checked: int = 0
    audit_unsealed: int = 0
    checkpoints: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)  # the first break of each chain

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first(self) -> ChainBreak | None:
        return self.breaks[0] if self.breaks else None


def check_events(incident_id: int, events: list[IncidentEvent], key: bytes | None) -> ChainBreak | None:
    """The first entry whose position, link or contents do not match the chain. Without a key
    (offline, from a bundle) only positions and links are checked: the bundle's signature
    vouches for the contents."""
    prev = GENESIS
    for expected_seq, ev in enumerate(sorted(events, key=lambda e: e.seq), start=1):
        if ev.incident_id != incident_id:
            return ChainBreak(incident_id, ev.seq, f"entry belongs to incident {ev.incident_id}")
        if ev.seq != expected_seq:
            return ChainBreak(incident_id, ev.seq, f"sequence gap: expected seq {expected_seq}")
        if ev.prev_hash != prev:
            return ChainBreak(incident_id, ev.seq, "prev_hash does not match the previous entry's hash")
        if key is not None and not hmac.compare_digest(
                event_hash(key, prev, ev.incident_id, ev.seq, ev.kind, ev.actor, ev.at, ev.data), ev.hash or ""):
            return ChainBreak(incident_id, ev.seq, "hash does not match the entry's contents (keyed)")
        prev = ev.hash
    return None


def _check_checkpoint(incident_id: int, events: list[IncidentEvent],
                      checkpoint: tuple[int, str] | None) -> ChainBreak | None:
    if checkpoint is None:
        return None
    length, head = checkpoint
    if len(events) < length:
        last = events[-1].seq if events else None
        return ChainBreak(incident_id, last, f"truncated: the checkpoint recorded {length} entries, "
                                             f"{len(events)} remain")
    at = next((e for e in events if e.seq == length), None)
    if at is None or at.hash != head:
        return ChainBreak(incident_id, length, "entry differs from the checkpointed head")
    return None


def _purged_posts(events: list[IncidentEvent]) -> set:
    return {e.data.get("post_id") for e in events
            if e.kind == EventKind.note.value and e.data.get("retention") == POST_PURGED}


def _check_posts(session: Session, incident_id: int, events: list[IncidentEvent]) -> list[ChainBreak]:
    found: list[ChainBreak] = []
    recorded: set[int] = set()
    purged = _purged_posts(events)
    for ev in events:
        if ev.kind != EventKind.post_attached.value:
            continue
        post_id = ev.data.get("post_id")
        recorded.add(post_id)
        if post_id in purged or not (ev.data.get("payload_sha256") or ev.data.get("post_sha256")):
            continue  # removed by retention with another incident
        post = session.get(Post, post_id)
        if post is None:
            found.append(ChainBreak(incident_id, ev.seq, f"post {post_id} is missing"))
        elif ev.data.get("payload_sha256") and post_digest(post) != ev.data["payload_sha256"]:
            found.append(ChainBreak(incident_id, ev.seq,
                                    f"post {post_id} raw payload differs from the recorded SHA-256"))
        elif ev.data.get("post_sha256") and post_sha256(post) != ev.data["post_sha256"]:
            found.append(ChainBreak(incident_id, ev.seq, f"post {post_id} text or metadata differs from the "
                                                         "recorded SHA-256"))
    attached = session.exec(select(IncidentPost.post_id).where(IncidentPost.incident_id == incident_id)).all()
    for post_id in sorted(set(attached) - recorded):
        found.append(ChainBreak(incident_id, None, f"post {post_id} is attached but not in the event log"))
    return found


def _check_triage(session: Session, incident_id: int, events: list[IncidentEvent]) -> list[ChainBreak]:
    found: list[ChainBreak] = []
    purged = _purged_posts(events)
    latest: dict[int, IncidentEvent] = {}
    for ev in events:
        if ev.kind == EventKind.triaged.value and ev.data.get("triage_sha256"):
            latest[ev.data.get("post_id")] = ev
    for post_id, ev in sorted(latest.items(), key=lambda kv: kv[1].seq):
        if post_id in purged:
            continue
        record = session.exec(select(TriageRecord).where(TriageRecord.post_id == post_id)).first()
        if record is None:
            found.append(ChainBreak(incident_id, ev.seq, f"triage result of post {post_id} is missing"))
        elif triage_sha256(record) != ev.data["triage_sha256"]:
            found.append(ChainBreak(incident_id, ev.seq,
                                    f"triage result of post {post_id} differs from the recorded SHA-256"))
    return found


_DELIVERY_KINDS = (EventKind.message_sent.value, EventKind.message_failed.value)


def _check_messages(session: Session, incident_id: int, events: list[IncidentEvent]) -> list[ChainBreak]:
    found: list[ChainBreak] = []
    queued: dict[int, IncidentEvent] = {}
    delivered: dict[int, IncidentEvent] = {}
    for ev in events:
        message_id = ev.data.get("message_id")
        if ev.kind == EventKind.message_queued.value and ev.data.get("message_sha256"):
            queued[message_id] = ev
        elif ev.kind in _DELIVERY_KINDS and ev.data.get("delivery_sha256"):
            delivered[message_id] = ev
    # A message goes with its post when retention removes the post with another incident.
    purged_posts = _purged_posts(events)
    gone = {mid for mid, ev in queued.items() if ev.data.get("post_id") is not None
            and ev.data.get("post_id") in purged_posts}
    queued = {mid: ev for mid, ev in queued.items() if mid not in gone}
    delivered = {mid: ev for mid, ev in delivered.items() if mid not in gone}
    rows = {m.id: m for m in session.exec(select(OutboundMessage).where(
        OutboundMessage.id.in_(sorted(set(queued) | set(delivered)) or [-1])))}
    for message_id, ev in sorted(queued.items(), key=lambda kv: kv[1].seq):
        msg = rows.get(message_id)
        if msg is None:
            found.append(ChainBreak(incident_id, ev.seq, f"message {message_id} is missing"))
        elif message_sha256(msg) != ev.data["message_sha256"]:
            found.append(ChainBreak(incident_id, ev.seq, f"message {message_id} differs from the recorded SHA-256"))
    for message_id, ev in sorted(delivered.items(), key=lambda kv: kv[1].seq):
        msg = rows.get(message_id)
        if msg is None:
            found.append(ChainBreak(incident_id, ev.seq, f"message {message_id} is missing"))
        elif delivery_sha256(msg) != ev.data["delivery_sha256"]:
            found.append(ChainBreak(incident_id, ev.seq, f"message {message_id} delivery outcome differs from "
                                                         "the one recorded"))
    named = {e.data.get("message_id") for e in events if e.kind == EventKind.message_queued.value}
    own = session.exec(select(OutboundMessage.id).where(OutboundMessage.incident_id == incident_id)).all()
    for message_id in sorted(set(own) - named):
        found.append(ChainBreak(incident_id, None, f"message {message_id} is not in the event log"))
    return found


def _check_state(incident: Incident | None, incident_id: int, events: list[IncidentEvent]) -> list[ChainBreak]:
    last = next((e for e in reversed(events) if isinstance(e.data.get("incident_state"), dict)), None)
    if incident is None or last is None:
        return []
    recorded = last.data["incident_state"]
    current = row_fields(incident, STATE_FIELDS)
    changed = [name for name in STATE_FIELDS if current.get(name) != recorded.get(name)]
    if changed:
        return [ChainBreak(incident_id, last.seq, f"incident {', '.join(changed)} differs from the state "
                                                  "recorded at this entry")]
    return []


def _check_media(session: Session, incident_id: int, media_root: Path | None) -> list[ChainBreak]:
    found: list[ChainBreak] = []
    for entry in incident_media(session, incident_id):
        label = f"media item {entry.item_id}"
        if entry.seq is None:
            found.append(ChainBreak(incident_id, None, f"{label} is stored but not in the event log"))
        elif entry.row_missing:
            found.append(ChainBreak(incident_id, entry.seq, f"{label} is missing"))
        elif not entry.path:
            if data_digest(entry.data) != entry.sha256:
                found.append(ChainBreak(incident_id, entry.seq, f"{label} data differs from the recorded SHA-256"))
        elif media_root is not None:
            path = resolve_media_path(media_root, entry.path)
            if path is None:
                found.append(ChainBreak(incident_id, entry.seq, f"{label} path lies outside the media root"))
            elif not path.is_file():
                found.append(ChainBreak(incident_id, entry.seq, f"{label} file {entry.path} is missing"))
            elif file_digest(path) != entry.sha256:
                found.append(ChainBreak(incident_id, entry.seq,
                                        f"{label} file {entry.path} differs from the recorded SHA-256"))
    return found


def _earliest(breaks: list[ChainBreak]) -> ChainBreak | None:
    if not breaks:
        return None
    # Breaks not tied to an entry sort last: an entry-level break says more about when it happened.
    return min(breaks, key=lambda b: (b.seq is None, b.seq or 0))


def verify_incident(session: Session, incident_id: int, media_root: Path | None = None,
                    checkpoint: tuple[int, str] | None = None) -> ChainBreak | None:
    """The first broken entry of one incident (chain, referenced rows, state, media), or None.

    Media files are only read when media_root is given; media rows and their data are always
    checked. `checkpoint` is the (length, head) the checkpoint file last recorded for it."""
    key = session_chain_key(session)
    events = list(session.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                               .order_by(IncidentEvent.seq)))
    if not events:
        return ChainBreak(incident_id, None, "no events: every incident starts with 'opened'")
    chain = [b for b in [check_events(incident_id, events, key),
                         _check_checkpoint(incident_id, events, checkpoint)] if b]
    if chain:  # what later entries say cannot be trusted once the chain itself is broken
        return _earliest(chain)
    candidates = _check_posts(session, incident_id, events)
    candidates += _check_triage(session, incident_id, events)
    candidates += _check_messages(session, incident_id, events)
    candidates += _check_state(session.get(Incident, incident_id), incident_id, events)
    candidates += _check_media(session, incident_id, Path(media_root) if media_root is not None else None)
    return _earliest(candidates)


def verify_audit(session: Session, key: bytes, checkpoint: tuple[int, str] | None) -> tuple[int, int, ChainBreak | None]:
    """(sealed entries checked, unsealed entries, first break) for the audit log's chain."""
    sealed = session.exec(select(AuditEntry).where(AuditEntry.seq.is_not(None)).order_by(AuditEntry.seq)).all()
    unsealed = len(session.exec(select(AuditEntry.id).where(AuditEntry.seq.is_(None))).all())
    prev = GENESIS
    for expected, entry in enumerate(sealed, start=1):
        if entry.seq != expected:
            return len(sealed), unsealed, ChainBreak(AUDIT, entry.seq, f"sequence gap: expected seq {expected}")
        if entry.prev_hash != prev:
            return len(sealed), unsealed, ChainBreak(AUDIT, entry.seq, "prev_hash does not match the previous entry")
        if not hmac.compare_digest(audit_hash(key, prev, entry.seq, entry), entry.hash or ""):
            return len(sealed), unsealed, ChainBreak(AUDIT, entry.seq,
                                                     f"entry {entry.id} does not match its keyed hash")
        prev = entry.hash
    if checkpoint is not None and checkpoint[0]:
        length, head = checkpoint
        if len(sealed) < length:
            return len(sealed), unsealed, ChainBreak(
                AUDIT, sealed[-1].seq if sealed else None,
                f"truncated: the checkpoint recorded {length} entries, {len(sealed)} remain")
        if sealed[length - 1].hash != head:
            return len(sealed), unsealed, ChainBreak(AUDIT, length, "entry differs from the checkpointed head")
    return len(sealed), unsealed, None


def verify_all(engine: Engine, media_root: Path | None = None,
               checkpoints: CheckpointState | None = None) -> VerifyReport:
    """Verify every incident's chain and the audit log; the report lists the first break of each
    broken chain. With `checkpoints` (the replayed checkpoint file), truncation and deletion of
    anything checkpointed are detected too."""
    key = engine_chain_key(engine)
    if key is None:
        raise ChainKeyMissing("verification needs the evidence key: build the engine with make_engine(url, chain_key=...)")
    report = VerifyReport()
    state = checkpoints or CheckpointState()
    report.checkpoints = state.count
    report.breaks += [ChainBreak(CHECKPOINTS, None, problem) for problem in state.problems]
    with Session(engine) as session:
        ids = session.exec(select(Incident.id).order_by(Incident.id)).all()
        event_ids = set(session.exec(select(IncidentEvent.incident_id).distinct()).all())
        for incident_id in ids:
            report.incidents_checked += 1
            report.events_checked += len(session.exec(
                select(IncidentEvent.id).where(IncidentEvent.incident_id == incident_id)).all())
            broken = verify_incident(session, incident_id, media_root, state.incidents.get(incident_id))
            if broken:
                report.breaks.append(broken)
        # Events whose incident row is gone still form a chain that must be reported.
        for incident_id in sorted(event_ids - set(ids)):
            report.breaks.append(ChainBreak(incident_id, None, "events exist but the incident row is gone"))
        tombstones = valid_tombstones(session, key)
        for incident_id, (length, head) in sorted(state.incidents.items()):
            if incident_id in ids or incident_id in event_ids:
                continue
            stone = tombstones.get(incident_id)
            if stone is None or stone[0] < length or (stone[0] == length and stone[1] != head):
                report.breaks.append(ChainBreak(incident_id, None, f"deleted: the checkpoint recorded {length} "
                                                                   "entries and no retention record explains it"))
        report.audit_checked, report.audit_unsealed, audit_break = verify_audit(session, key, state.audit)
        if audit_break:
            report.breaks.append(audit_break)
    return report
