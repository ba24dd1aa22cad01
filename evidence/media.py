"""An incident's media evidence: what reporters sent through share links (models.media.SharedItem)
and the SHA-256 each had when it arrived.

The hash that counts is the one in the incident's hash chain ('media_received' event, keyed by
item_id), so a row edited together with its file is still caught. Items with a file are checked
against the file's bytes; locations and texts against the canonical JSON of their data.
Retention records each media removal as a 'note' event ({"retention": "media_purged", ...}) so
verification can tell a purge from a deletion.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from config.settings import Settings
from evidence.hashes import canonical_json, sha256_bytes
from models.enums import EventKind
from models.media import SharedItem
from models.tables import IncidentEvent

MEDIA_PURGED = "media_purged"
POST_PURGED = "post_purged"  # a post named in this chain was removed with another incident


@dataclass(frozen=True)
class MediaEntry:
    item_id: int
    sha256: str  # from the chain when recorded there, else from the row
    path: str  # relative to the media root; "" for locations and texts
    data: dict[str, Any] | None  # the row's data; None when the row is gone
    recorded_at: datetime | None
    seq: int | None  # the chain event that recorded it
    kind: str = ""

    @property
    def row_missing(self) -> bool:
        return self.data is None


def default_media_root(settings: Settings) -> Path:
    return Path(settings.resolved_media_dir)


def data_digest(data: dict[str, Any]) -> str:
    """The hash share-link storage records for a location or text: SHA-256 of canonical JSON."""
    return sha256_bytes(canonical_json(data))


def purged_item_ids(events: list[IncidentEvent]) -> set[int]:
    return {e.data.get("item_id") for e in events
            if e.kind == EventKind.note.value and e.data.get("retention") == MEDIA_PURGED}


def incident_media(session: Session, incident_id: int, include_purged: bool = False) -> list[MediaEntry]:
    events = list(session.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                               .order_by(IncidentEvent.seq)))
    recorded = {e.data["item_id"]: e for e in events
                if e.kind == EventKind.media_received.value and e.data.get("item_id") is not None}
    rows = {i.id: i for i in session.exec(select(SharedItem).where(SharedItem.incident_id == incident_id))}
    gone = set() if include_purged else purged_item_ids(events)
    out = []
    for item_id in sorted(set(recorded) | set(rows)):
        if item_id in gone:
            continue
        ev, row = recorded.get(item_id), rows.get(item_id)
        out.append(MediaEntry(
            item_id=item_id,
            sha256=str(ev.data.get("sha256")) if ev and ev.data.get("sha256") else (row.sha256 if row else ""),
            path=row.path if row else "", data=dict(row.data or {}) if row else None,
            recorded_at=row.received_at if row else ev.at, seq=ev.seq if ev else None,
            kind=row.kind if row else str(ev.data.get("kind", ""))))
    return out


def resolve_media_path(media_root: Path, recorded: str) -> Path | None:
    """The file on disk for a stored relative path, or None if it would fall outside the media root."""
    if not recorded:
        return None
    root = Path(media_root).resolve()
    full = (root / recorded).resolve()
    if full != root and root in full.parents:
        return full
    return None
