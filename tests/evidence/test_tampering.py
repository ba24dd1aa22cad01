"""Tampering with any covered table is detected, and the first bad entry is named.

The record: a checkpointed incident (two posts, triage results, an acknowledgement, a queued and a
delivered message, media) and a sealed audit log. Each case changes the database the way someone
with write access to it (but not to the evidence keys or the checkpoint file) could.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from config.settings import ServiceSettings
from escalation import service
from evidence.chain import AUDIT, CHECKPOINTS, ChainBreak, verify_all
from evidence.checkpoint import audit_hash, read_checkpoints, write_checkpoint
from evidence.keys import load_or_create_keys
from evidence_test_helpers import make_incident
from models.enums import DeliveryStatus, EventKind
from models.events import append_event, delivery_sha256, event_body, event_hash, incident_state
from models.tables import (
    AuditEntry,
    Incident,
    IncidentEvent,
    IncidentPost,
    OutboundMessage,
    Post,
    TriageRecord,
)
from models.types import utcnow


@dataclass
class Record:
    engine: object
    keys: object
    media: Path
    checkpoints: Path
    incident_id: int

    def verify(self):
        return verify_all(self.engine, self.media, read_checkpoints(self.checkpoints, self.keys.public_key))

    def events(self, s: Session) -> list[IncidentEvent]:
        return list(s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == self.incident_id)
                           .order_by(IncidentEvent.seq)))

    def seq_of(self, kind: str) -> int:
        with Session(self.engine) as s:
            return next(e.seq for e in self.events(s) if e.kind == kind)


def deliver(s: Session, msg: OutboundMessage) -> None:
    """What a successful send records (flows/sending.py)."""
    msg.status, msg.platform_message_id, msg.sent_at = DeliveryStatus.sent.value, "p-1", utcnow()
    s.add(msg)
    append_event(s, msg.incident_id, EventKind.message_sent, "system",
                 {"message_id": msg.id, "purpose": msg.purpose, "kind": msg.kind,
                  "platform_message_id": msg.platform_message_id, "error": "",
                  "delivery_sha256": delivery_sha256(msg)})


@pytest.fixture
def record(engine, evidence_keys, tmp_path) -> Record:
    media = tmp_path / "media"
    incident_id = make_incident(engine, media)
    with Session(engine, expire_on_commit=False) as s:
        service.acknowledge(s, incident_id, "alice", ServiceSettings(), lambda _p: True)
        s.commit()
    with Session(engine, expire_on_commit=False) as s:
        first = s.exec(select(OutboundMessage).order_by(OutboundMessage.id)).first()
        deliver(s, first)
        for n in range(4):
            s.add(AuditEntry(username="alice", action="view_incident", object_type="incident",
                             object_id=str(incident_id), detail={"n": n}))
        s.commit()
    rec = Record(engine, evidence_keys, media, tmp_path / "elsewhere" / "checkpoints.jsonl", incident_id)
    result = write_checkpoint(engine, evidence_keys, rec.checkpoints)
    assert result.written and result.audit_sealed == 4 and not result.held_back
    report = rec.verify()
    assert report.ok, report.breaks
    assert report.audit_checked == 4 and report.checkpoints == 1
    return rec


def _sql(rec: Record, statement: str, **params) -> None:
    with Session(rec.engine) as s:
        s.exec(text(statement).bindparams(**params))
        s.commit()


def _edit(rec: Record, model, where, **changes) -> None:
    with Session(rec.engine) as s:
        row = s.exec(select(model).where(where)).first()
        for name, value in changes.items():
            setattr(row, name, value)
        s.add(row)
        s.commit()


def _first_break(rec: Record) -> ChainBreak:
    report = rec.verify()
    assert not report.ok, "tampering went undetected"
    return report.first


def _rehash_from(rec: Record, seq: int, key: bytes, change: Callable[[IncidentEvent], None]) -> None:
    """Edit one entry and re-hash it and every later one with `key`, as a forger would."""
    with Session(rec.engine) as s:
        events = rec.events(s)
        prev = events[seq - 2].hash if seq > 1 else "0" * 64
        for ev in events[seq - 1:]:
            if ev.seq == seq:
                change(ev)
            ev.prev_hash = prev
            ev.hash = prev = event_hash(key, prev, ev.incident_id, ev.seq, ev.kind, ev.actor, ev.at, ev.data)
            s.add(ev)
        s.commit()


# ----------------------------------------------------------------------------- event chain
def test_edited_event_is_named(record):
    _edit(record, IncidentEvent, (IncidentEvent.incident_id == record.incident_id) & (IncidentEvent.seq == 2),
          data={"post_id": 1, "reason": "rewritten"})
    first = _first_break(record)
    assert (first.incident_id, first.seq) == (record.incident_id, 2) and "keyed" in first.reason


@pytest.mark.parametrize("forger", ["sha256", "other-key"])
def test_edited_and_rehashed_chain_is_named(record, forger):
    """Re-hashing the whole rest of the chain does not help without the key."""
    def unkeyed(prev, ev):
        return hashlib.sha256(event_body(prev, ev.incident_id, ev.seq, ev.kind, ev.actor, ev.at, ev.data)).hexdigest()

    def rewrite(ev: IncidentEvent) -> None:
        ev.actor = "mallory"

    if forger == "other-key":
        _rehash_from(record, 3, b"k" * 32, rewrite)
    else:
        with Session(record.engine) as s:
            events = record.events(s)
            prev = events[1].hash
            for ev in events[2:]:
                if ev.seq == 3:
                    rewrite(ev)
                ev.prev_hash, ev.hash = prev, unkeyed(prev, ev)
                prev = ev.hash
                s.add(ev)
            s.commit()
    first = _first_break(record)
    assert (first.incident_id, first.seq) == (record.incident_id, 3)


def test_truncated_chain_is_detected(record):
    with Session(record.engine) as s:
        last = record.events(s)[-1].seq
    _sql(record, "DELETE FROM incident_events WHERE incident_id = :i AND seq >= :n", i=record.incident_id, n=last - 1)
    first = _first_break(record)
    assert first.incident_id == record.incident_id and first.reason.startswith("truncated")


def test_truncated_and_regrown_chain_is_detected(record):
    """Cut the tail and append a different (properly keyed) event: the checkpointed head is gone."""
    with Session(record.engine) as s:
        last = record.events(s)[-1].seq
    _sql(record, "DELETE FROM incident_events WHERE incident_id = :i AND seq = :n", i=record.incident_id, n=last)
    with Session(record.engine) as s:
        append_event(s, record.incident_id, EventKind.note, "alice", {"note": "nothing to see"})
        s.commit()
    first = _first_break(record)
    assert (first.incident_id, first.seq) == (record.incident_id, last)
    assert first.reason == "entry differs from the checkpointed head"


def test_deleted_middle_event_is_a_gap(record):
    _sql(record, "DELETE FROM incident_events WHERE incident_id = :i AND seq = 3", i=record.incident_id)
    first = _first_break(record)
    assert first.seq == 4 and "sequence gap" in first.reason


def test_deleted_acknowledgement_event_is_detected(record):
    seq = record.seq_of(EventKind.acknowledged.value)
    _sql(record, "DELETE FROM incident_events WHERE incident_id = :i AND seq = :n", i=record.incident_id, n=seq)
    first = _first_break(record)
    assert first.seq == seq + 1 and "sequence gap" in first.reason


def test_deleted_incident_is_detected(record):
    i = record.incident_id
    for table in ("incident_events", "incident_posts", "outbound_messages", "shared_items", "share_links"):
        _sql(record, f"DELETE FROM {table} WHERE incident_id = :i", i=i)
    _sql(record, "DELETE FROM incidents WHERE id = :i", i=i)
    first = _first_break(record)
    assert first.incident_id == i and first.reason.startswith("deleted: the checkpoint recorded")


# ----------------------------------------------------------------------------- referenced rows
def test_edited_post_text_is_detected(record):
    _edit(record, Post, Post.external_id == "a1", text="nothing happening here")
    first = _first_break(record)
    assert first.seq == record.seq_of(EventKind.post_attached.value) and "text or metadata differs" in first.reason


def test_edited_post_payload_is_detected(record):
    with Session(record.engine) as s:
        payload = s.exec(select(Post.raw_payload).where(Post.external_id == "b2")).one()
    _edit(record, Post, Post.external_id == "b2", raw_payload=payload.replace("smoke", "steam"))
    assert "raw payload differs" in _first_break(record).reason


def test_edited_post_author_is_detected(record):
    _edit(record, Post, Post.external_id == "a1", author_handle="@someone_else")
    assert "text or metadata differs" in _first_break(record).reason


def test_deleted_post_is_detected(record):
    with Session(record.engine) as s:
        post_id = s.exec(select(Post.id).where(Post.external_id == "b2")).one()
    for table, column in (("incident_posts", "post_id"), ("triage_results", "post_id"),
                          ("outbound_messages", "post_id")):
        _sql(record, f"DELETE FROM {table} WHERE {column} = :p", p=post_id)
    _sql(record, "DELETE FROM posts WHERE id = :p", p=post_id)
    assert _first_break(record).reason == f"post {post_id} is missing"


def test_edited_triage_result_is_detected(record):
    with Session(record.engine) as s:
        post_id = s.exec(select(Post.id).where(Post.external_id == "a1")).one()
    _edit(record, TriageRecord, TriageRecord.post_id == post_id, urgency="low", reasons=["nothing urgent"])
    first = _first_break(record)
    assert first.reason == f"triage result of post {post_id} differs from the recorded SHA-256"
    assert first.seq == record.seq_of(EventKind.triaged.value)


def test_deleted_triage_result_is_detected(record):
    with Session(record.engine) as s:
        post_id = s.exec(select(Post.id).where(Post.external_id == "a1")).one()
    _sql(record, "DELETE FROM triage_results WHERE post_id = :p", p=post_id)
    assert _first_break(record).reason == f"triage result of post {post_id} is missing"


def test_planted_post_is_detected(record):
    # A membership the chain never recorded: a report planted into the incident.
    with Session(record.engine) as s:
        extra = Post(platform="x", external_id="zz", raw_payload="{}", text="planted")
        s.add(extra)
        s.flush()
        s.add(IncidentPost(incident_id=record.incident_id, post_id=extra.id, reason="planted"))
        s.commit()
        extra_id = extra.id
    assert _first_break(record).reason == f"post {extra_id} is attached but not in the event log"


# ----------------------------------------------------------------------------- incident state
def test_edited_incident_status_is_detected(record):
    _edit(record, Incident, Incident.id == record.incident_id, status="resolved")
    first = _first_break(record)
    assert first.seq == record.seq_of(EventKind.acknowledged.value)
    assert first.reason == "incident status differs from the state recorded at this entry"


def test_removed_acknowledgement_is_detected(record):
    _edit(record, Incident, Incident.id == record.incident_id, status="queued", acknowledged_at=None,
          acknowledged_by="")
    assert "status, acknowledged_at, acknowledged_by differs" in _first_break(record).reason


def test_changed_acknowledger_is_detected(record):
    _edit(record, Incident, Incident.id == record.incident_id, acknowledged_by="bob")
    assert "acknowledged_by differs" in _first_break(record).reason


# ----------------------------------------------------------------------------- messages
def test_edited_message_text_is_detected(record):
    with Session(record.engine) as s:
        msg_id = s.exec(select(OutboundMessage.id).order_by(OutboundMessage.id)).first()
    _edit(record, OutboundMessage, OutboundMessage.id == msg_id, text="We will not come.")
    assert _first_break(record).reason == f"message {msg_id} differs from the recorded SHA-256"


def test_edited_delivery_outcome_is_detected(record):
    with Session(record.engine) as s:
        msg_id = s.exec(select(OutboundMessage.id).order_by(OutboundMessage.id)).first()
    _edit(record, OutboundMessage, OutboundMessage.id == msg_id, status=DeliveryStatus.failed.value)
    assert _first_break(record).reason == f"message {msg_id} delivery outcome differs from the one recorded"


def test_deleted_message_is_detected(record):
    with Session(record.engine) as s:
        msg_id = s.exec(select(OutboundMessage.id).order_by(OutboundMessage.id.desc())).first()
    _sql(record, "DELETE FROM outbound_messages WHERE id = :m", m=msg_id)
    assert _first_break(record).reason == f"message {msg_id} is missing"


def test_planted_message_is_detected(record):
    with Session(record.engine) as s:
        msg = OutboundMessage(dedupe_key="planted", incident_id=record.incident_id, platform="x", kind="dm",
                              purpose="receipt", text="We told you to stay home.")
        s.add(msg)
        s.commit()
        msg_id = msg.id
    assert _first_break(record).reason == f"message {msg_id} is not in the event log"


# ----------------------------------------------------------------------------- audit log
def _audit_ids(rec: Record) -> list[int]:
    with Session(rec.engine) as s:
        return list(s.exec(select(AuditEntry.id).order_by(AuditEntry.seq)))


def test_edited_audit_entry_is_named(record):
    ids = _audit_ids(record)
    _edit(record, AuditEntry, AuditEntry.id == ids[1], username="bob")
    first = _first_break(record)
    assert (first.incident_id, first.seq) == (AUDIT, 2) and str(first).startswith("audit log seq 2")


def test_rehashed_audit_entry_is_named(record):
    ids = _audit_ids(record)
    with Session(record.engine) as s:
        entries = list(s.exec(select(AuditEntry).order_by(AuditEntry.seq)))
        prev = entries[0].hash
        for entry in entries[1:]:
            if entry.id == ids[1]:
                entry.detail = {"n": 99}
            entry.prev_hash = prev
            entry.hash = prev = audit_hash(b"k" * 32, prev, entry.seq, entry)
            s.add(entry)
        s.commit()
    assert (_first_break(record).incident_id, _first_break(record).seq) == (AUDIT, 2)


def test_deleted_audit_entry_is_a_gap(record):
    ids = _audit_ids(record)
    _sql(record, "DELETE FROM audit_log WHERE id = :i", i=ids[1])
    first = _first_break(record)
    assert (first.incident_id, first.seq) == (AUDIT, 3) and "sequence gap" in first.reason


@pytest.mark.parametrize("keep", [0, 2])
def test_truncated_audit_log_is_detected(record, keep):
    ids = _audit_ids(record)
    for entry_id in ids[keep:]:
        _sql(record, "DELETE FROM audit_log WHERE id = :i", i=entry_id)
    first = _first_break(record)
    assert first.incident_id == AUDIT and first.reason.startswith("truncated: the checkpoint recorded 4")


# ----------------------------------------------------------------------------- checkpoints
def test_later_checkpoint_holds_back_a_rewritten_chain(record):
    """The checkpointer never blesses a chain that no longer extends what it recorded."""
    with Session(record.engine) as s:
        last = record.events(s)[-1].seq
    _sql(record, "DELETE FROM incident_events WHERE incident_id = :i AND seq = :n", i=record.incident_id, n=last)
    with Session(record.engine) as s:
        append_event(s, record.incident_id, EventKind.note, "alice", {"note": "a different ending"})
        s.commit()
    result = write_checkpoint(record.engine, record.keys, record.checkpoints)
    assert result.held_back == [f"incident {record.incident_id}"]
    assert not record.verify().ok


def test_new_entries_extend_the_checkpoint(record):
    with Session(record.engine) as s:
        append_event(s, record.incident_id, EventKind.note, "alice", {"note": "later"})
        s.add(AuditEntry(username="alice", action="view_incident"))
        s.commit()
    result = write_checkpoint(record.engine, record.keys, record.checkpoints)
    assert result.written and result.incidents == 1 and result.audit_sealed == 1 and not result.held_back
    assert record.verify().ok
    assert not write_checkpoint(record.engine, record.keys, record.checkpoints).written  # nothing moved


@pytest.mark.parametrize("damage", ["edit", "drop-line", "resign-other-key", "garbage"])
def test_damaged_checkpoint_file_is_reported(record, damage, tmp_path):
    with Session(record.engine) as s:
        append_event(s, record.incident_id, EventKind.note, "alice", {"note": "later"})
        s.commit()
    write_checkpoint(record.engine, record.keys, record.checkpoints)
    lines = record.checkpoints.read_bytes().splitlines(keepends=True)
    assert len(lines) == 2
    if damage == "edit":
        doc = json.loads(lines[0])
        doc["audit"] = [0, "0" * 64]
        lines[0] = json.dumps(doc).encode() + b"\n"
    elif damage == "drop-line":
        lines = lines[1:]
    elif damage == "resign-other-key":
        other = load_or_create_keys(tmp_path / "other-keys")
        doc = json.loads(lines[1])
        doc.pop("sig")
        doc["incidents"] = {}
        doc["sig"] = other.sign(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
        lines[1] = json.dumps(doc).encode() + b"\n"
    else:
        lines.append(b"{not json\n")
    record.checkpoints.write_bytes(b"".join(lines))
    first = _first_break(record)
    assert first.incident_id == CHECKPOINTS and "checkpoint file" in first.reason


# ----------------------------------------------------------------------------- retention
def test_retention_purge_is_not_tampering_but_a_deleted_tombstone_is(record):
    from datetime import timedelta

    from evidence.retention import RetentionPolicy, purge

    with Session(record.engine, expire_on_commit=False) as s:
        incident = s.get(Incident, record.incident_id)
        incident.status, incident.closed_at = "closed", utcnow() - timedelta(days=400)
        s.add(incident)
        append_event(s, incident.id, EventKind.closed, "alice", {"note": "", **incident_state(incident)})
        s.commit()
    write_checkpoint(record.engine, record.keys, record.checkpoints)
    counts = purge(record.engine, utcnow(), RetentionPolicy(30, 365, 90), record.media)
    assert counts["incidents"] == 1
    assert record.verify().ok  # a recorded purge
    result = write_checkpoint(record.engine, record.keys, record.checkpoints)
    assert result.written and not result.held_back
    assert record.verify().ok
    # The checkpoint file now records the retirement, but a forged tombstone never counted:
    stone_mac = hmac.new(b"k" * 32, b"x", hashlib.sha256).hexdigest()
    _sql(record, "UPDATE evidence_tombstones SET mac = :m", m=stone_mac)
    assert record.verify().ok  # retired in the signed checkpoint: the tombstone is no longer needed


def test_deleted_incident_with_forged_tombstone_is_detected(record):
    from models.tables import EvidenceTombstone

    i = record.incident_id
    with Session(record.engine) as s:
        length = len(record.events(s))
        s.add(EvidenceTombstone(incident_id=i, length=length, head_hash=record.events(s)[-1].hash,
                                actor="retention", reason="forged", mac="0" * 64))
        s.commit()
    for table in ("incident_events", "incident_posts", "outbound_messages", "shared_items", "share_links"):
        _sql(record, f"DELETE FROM {table} WHERE incident_id = :i", i=i)
    _sql(record, "DELETE FROM incidents WHERE id = :i", i=i)
    assert _first_break(record).reason.startswith("deleted: the checkpoint recorded")
