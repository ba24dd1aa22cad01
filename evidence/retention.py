"""Retention: delete personal data once policy says it is no longer needed.

What goes, and when (all ages strictly older than the limit):
- posts never attached to an incident, `unattached_post_days` after they were received, with their
  triage records and messages — except posts still waiting for triage or for an officer's review;
- resolved/closed incidents, `incident_days` after they were resolved/closed, with their posts,
  events, messages, media and every other row that points at them;
- media files (photos, frames) of incidents that are kept, `media_days` after they arrived (the
  purge is recorded in the incident's chain, so verification can tell it from tampering).
Nothing under legal hold is touched: a held post also holds the incident it belongs to.
The audit entry records counts and the policy, never content.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Table, delete, exists, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from config.settings import RetentionSettings, Settings
from evidence.checkpoint import tombstone_mac
from evidence.media import MEDIA_PURGED, POST_PURGED, default_media_root, incident_media, resolve_media_path
from evidence.keys import evidence_engine
from models.enums import Disposition, EventKind, IncidentStatus
from models.events import GENESIS, append_event, session_chain_key
from models.media import SharedItem
from models.tables import AuditEntry, EvidenceTombstone, Incident, IncidentEvent, IncidentPost, OutboundMessage, Post
from models.types import utcnow

RETENTION_ACTOR = "retention"
# A post in one of these states is unfinished work: retention never removes it.
_UNFINISHED = (Disposition.awaiting_triage.value, Disposition.needs_review.value)
_FINISHED_INCIDENT = (IncidentStatus.resolved.value, IncidentStatus.closed.value)
# Tables whose rows go with the post/incident they point at even through a nullable key.
_OWNED_BY_PARENT = {OutboundMessage.__tablename__}
_BATCH = 500


@dataclass(frozen=True)
class RetentionPolicy:
    unattached_post_days: int
    incident_days: int
    media_days: int

    @classmethod
    def from_settings(cls, settings: RetentionSettings) -> RetentionPolicy:
        return cls(settings.unattached_post_days, settings.incident_days, settings.media_days)


def _pk(table: Table):
    return next(iter(table.primary_key.columns))


def _delete_rows(session: Session, table: Table, ids: set, counts: Counter) -> None:
    """Delete rows by primary key after everything that references them (any table, any package).

    A row that must point at its parent (non-nullable key) goes with it. A row that only may point
    at it (nullable key: a share link naming the post it answered, an incident merged into
    another) belongs to something else and is kept with the key cleared — except messages, which
    carry what we wrote to the reporter and go with their post or incident.
    """
    if not ids:
        return
    if len(ids) > _BATCH:  # keep every statement under the database's bound-parameter limit
        ordered = sorted(ids)
        for start in range(0, len(ordered), _BATCH):
            _delete_rows(session, table, set(ordered[start:start + _BATCH]), counts)
        return
    for dependent in SQLModel.metadata.sorted_tables:
        for fk in dependent.foreign_keys:
            if fk.column.table is not table:
                continue
            if fk.parent.nullable and dependent.name not in _OWNED_BY_PARENT:
                session.execute(update(dependent).where(fk.parent.in_(ids)).values({fk.parent.name: None}))
                continue
            dep_pk = _pk(dependent)
            dep_ids = set(session.execute(sa_select(dep_pk).where(fk.parent.in_(ids))).scalars())
            _delete_rows(session, dependent, dep_ids, counts)
    result = session.execute(delete(table).where(_pk(table).in_(ids)))
    counts[table.name] += result.rowcount or 0


def _schedule_file(media_root: Path | None, recorded: str, doomed_files: list[Path]) -> int:
    """Queue a media file for deletion once the transaction has committed (1 if it exists)."""
    if media_root is None:
        return 0
    path = resolve_media_path(media_root, recorded)
    if path is None or not path.is_file():
        return 0
    doomed_files.append(path)
    return 1


def _held_incident_ids(session: Session) -> set[int]:
    held = set(session.exec(select(Incident.id).where(Incident.legal_hold == True)))  # noqa: E712
    held |= set(session.exec(select(IncidentPost.incident_id).join(Post, Post.id == IncidentPost.post_id)
                             .where(Post.legal_hold == True)))  # noqa: E712
    return held


def _finished_at(incident: Incident) -> datetime:
    times = [t for t in (incident.closed_at, incident.resolved_at) if t is not None]
    return max(times) if times else incident.updated_at


def _purge_incidents(session: Session, cutoff: datetime, held: set[int], media_root: Path | None,
                     counts: Counter, doomed_files: list[Path]) -> None:
    candidates = session.exec(select(Incident).where(Incident.status.in_(_FINISHED_INCIDENT))).all()
    doomed = {i.id for i in candidates if i.id not in held and _finished_at(i) < cutoff}
    if not doomed:
        return
    for incident_id in sorted(doomed):
        for entry in incident_media(session, incident_id):
            counts["media_files"] += _schedule_file(media_root, entry.path, doomed_files)
    post_ids = set(session.exec(select(IncidentPost.post_id).where(IncidentPost.incident_id.in_(doomed))))
    _record_in_other_chains(session, post_ids, doomed)
    _tombstones(session, doomed)
    _delete_rows(session, Incident.__table__, doomed, counts)
    _delete_rows(session, Post.__table__, post_ids, counts)


def _record_in_other_chains(session: Session, post_ids: set[int], doomed: set[int]) -> None:
    """A post moved between incidents (merge/split) is named in a kept incident's chain too: note
    its removal there, so verification reads it as retention, not as a deleted report."""
    attached = session.exec(select(IncidentEvent.incident_id, IncidentEvent.data).where(
        IncidentEvent.kind == EventKind.post_attached.value, IncidentEvent.incident_id.not_in(doomed or {-1})))
    named: dict[int, set[int]] = {}
    for incident_id, data in attached:
        if data.get("post_id") in post_ids:
            named.setdefault(incident_id, set()).add(data["post_id"])
    for incident_id, ids in sorted(named.items()):
        for post_id in sorted(ids):
            append_event(session, incident_id, EventKind.note, RETENTION_ACTOR,
                         {"retention": POST_PURGED, "post_id": post_id})


def _tombstones(session: Session, doomed: set[int]) -> None:
    """Record each removed incident's final chain length and head, keyed: verification then reads
    its absence as retention, while a deletion without a valid tombstone is reported."""
    key = session_chain_key(session)
    for incident_id in sorted(doomed):
        last = session.exec(select(IncidentEvent.seq, IncidentEvent.hash).where(
            IncidentEvent.incident_id == incident_id).order_by(IncidentEvent.seq.desc()).limit(1)).first()
        length, head = (last.seq, last.hash) if last else (0, GENESIS)
        stone = EvidenceTombstone(incident_id=incident_id, length=length, head_hash=head,
                                  actor=RETENTION_ACTOR, reason="retention: incident_days")
        stone.mac = tombstone_mac(key, stone)
        session.add(stone)


def _purge_unattached_posts(session: Session, cutoff: datetime, counts: Counter) -> None:
    attached = exists().where(IncidentPost.post_id == Post.id)
    ids = set(session.exec(select(Post.id).where(
        ~attached, Post.legal_hold == False, Post.received_at < cutoff,  # noqa: E712
        Post.disposition.not_in(_UNFINISHED))))
    _delete_rows(session, Post.__table__, ids, counts)


def _purge_media(session: Session, cutoff: datetime, held: set[int], media_root: Path | None,
                 counts: Counter, doomed_files: list[Path]) -> None:
    kept = session.exec(select(Incident.id).order_by(Incident.id)).all()
    for incident_id in kept:
        if incident_id in held:
            continue
        for entry in incident_media(session, incident_id):
            # Locations and texts have no file: they stay as long as their incident.
            if not entry.path or entry.row_missing or entry.recorded_at is None or entry.recorded_at >= cutoff:
                continue
            counts["media_files"] += _schedule_file(media_root, entry.path, doomed_files)
            _delete_rows(session, SharedItem.__table__, {entry.item_id}, counts)
            append_event(session, incident_id, EventKind.note, RETENTION_ACTOR,
                         {"retention": MEDIA_PURGED, "item_id": entry.item_id, "sha256": entry.sha256})


def purge(engine: Engine, now: datetime, policy: RetentionPolicy, media_root: Path | None) -> dict[str, int]:
    """Apply the policy once; returns how many rows (per table) and media files were removed."""
    counts: Counter = Counter()
    doomed_files: list[Path] = []
    with Session(engine, expire_on_commit=False) as session:
        held = _held_incident_ids(session)
        _purge_incidents(session, now - timedelta(days=policy.incident_days), held, media_root, counts,
                         doomed_files)
        _purge_unattached_posts(session, now - timedelta(days=policy.unattached_post_days), counts)
        _purge_media(session, now - timedelta(days=policy.media_days), held, media_root, counts, doomed_files)
        result = {"posts": counts.get("posts", 0), "incidents": counts.get("incidents", 0),
                  "media_files": counts.get("media_files", 0),
                  **{k: v for k, v in sorted(counts.items()) if k not in ("posts", "incidents", "media_files")}}
        session.add(AuditEntry(username=RETENTION_ACTOR, action="purge", object_type="retention",
                               detail={"counts": result, "now": now.isoformat(),
                                       "policy": {"unattached_post_days": policy.unattached_post_days,
                                                  "incident_days": policy.incident_days,
                                                  "media_days": policy.media_days}}))
        session.commit()
    # Files go only after the rows that describe them are gone: a failed commit leaves both.
    for path in doomed_files:
        path.unlink(missing_ok=True)
    return result


def purge_job(settings: Settings | None = None) -> dict[str, int]:
    """The daily scheduled job: purge with the configured policy, now."""
    settings = settings or Settings()
    engine = evidence_engine(settings)
    try:
        return purge(engine, utcnow(), RetentionPolicy.from_settings(settings.retention),
                     default_media_root(settings))
    finally:
        engine.dispose()


__all__ = ["RetentionPolicy", "purge", "purge_job"]
