"""Verify the tamper-evident record: event hash chains, post payloads and media files.

An incident is intact when its events form an unbroken chain from GENESIS, every attached post's
stored payload still has the SHA-256 recorded in its 'post_attached' event, every attached post
is recorded in the chain, and every media file still has the SHA-256 recorded when it arrived.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from evidence.hashes import file_digest, post_digest
from evidence.media import POST_PURGED, data_digest, incident_media, resolve_media_path
from models.enums import EventKind
from models.events import GENESIS, event_hash
from models.tables import Incident, IncidentEvent, IncidentPost, Post


@dataclass(frozen=True)
class ChainBreak:
    incident_id: int
    seq: int | None  # the first entry that no longer checks out (None: not tied to one entry)
    reason: str

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "no entry"
        return f"incident {self.incident_id} {where}: {self.reason}"


@dataclass
class VerifyReport:
    incidents_checked: int = 0
    events_checked: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)  # the first break of each incident

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first(self) -> ChainBreak | None:
        return self.breaks[0] if self.breaks else None


def check_events(incident_id: int, events: list[IncidentEvent]) -> ChainBreak | None:
    """The first entry whose position, link or contents do not match the chain."""
    prev = GENESIS
    for expected_seq, ev in enumerate(sorted(events, key=lambda e: e.seq), start=1):
        if ev.incident_id != incident_id:
            return ChainBreak(incident_id, ev.seq, f"entry belongs to incident {ev.incident_id}")
        if ev.seq != expected_seq:
            return ChainBreak(incident_id, ev.seq, f"sequence gap: expected seq {expected_seq}")
        if ev.prev_hash != prev:
            return ChainBreak(incident_id, ev.seq, "prev_hash does not match the previous entry's hash")
        recomputed = event_hash(prev, ev.incident_id, ev.seq, ev.kind, ev.actor, ev.at, ev.data)
        if recomputed != ev.hash:
            return ChainBreak(incident_id, ev.seq, "hash does not match the entry's contents")
        prev = ev.hash
    return None


def _check_posts(session: Session, incident_id: int, events: list[IncidentEvent]) -> list[ChainBreak]:
    found: list[ChainBreak] = []
    recorded: set[int] = set()
    purged = {e.data.get("post_id") for e in events
              if e.kind == EventKind.note.value and e.data.get("retention") == POST_PURGED}
    for ev in events:
        if ev.kind != EventKind.post_attached.value:
            continue
        post_id = ev.data.get("post_id")
        recorded.add(post_id)
        expected = ev.data.get("payload_sha256")
        if not expected or post_id in purged:
            continue  # no hash recorded (older entry), or removed by retention with another incident
        post = session.get(Post, post_id)
        if post is None:
            found.append(ChainBreak(incident_id, ev.seq, f"post {post_id} is missing"))
        elif post_digest(post) != expected:
            found.append(ChainBreak(incident_id, ev.seq,
                                    f"post {post_id} raw payload differs from the recorded SHA-256"))
    attached = session.exec(select(IncidentPost.post_id).where(IncidentPost.incident_id == incident_id)).all()
    for post_id in sorted(set(attached) - recorded):
        found.append(ChainBreak(incident_id, None, f"post {post_id} is attached but not in the event log"))
    return found


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


def verify_incident(session: Session, incident_id: int, media_root: Path | None = None) -> ChainBreak | None:
    """The first broken entry of one incident (chain, payloads, media), or None when intact.

    Media files are only read when media_root is given; media rows and their data are always checked.
    """
    events = list(session.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                               .order_by(IncidentEvent.seq)))
    if not events:
        return ChainBreak(incident_id, None, "no events: every incident starts with 'opened'")
    candidates = [b for b in [check_events(incident_id, events)] if b]
    candidates += _check_posts(session, incident_id, events)
    candidates += _check_media(session, incident_id, Path(media_root) if media_root is not None else None)
    return _earliest(candidates)


def verify_all(engine: Engine, media_root: Path | None = None) -> VerifyReport:
    """Verify every incident's chain; the report lists the first break of each broken incident."""
    report = VerifyReport()
    with Session(engine) as session:
        ids = session.exec(select(Incident.id).order_by(Incident.id)).all()
        # Events whose incident row is gone still form a chain that must be reported.
        orphan_ids = set(session.exec(select(IncidentEvent.incident_id).distinct()).all()) - set(ids)
        for incident_id in ids:
            report.incidents_checked += 1
            report.events_checked += len(session.exec(
                select(IncidentEvent.id).where(IncidentEvent.incident_id == incident_id)).all())
            broken = verify_incident(session, incident_id, media_root)
            if broken:
                report.breaks.append(broken)
        for incident_id in sorted(orphan_ids):
            report.breaks.append(ChainBreak(incident_id, None, "events exist but the incident row is gone"))
    return report
