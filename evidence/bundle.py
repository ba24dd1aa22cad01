"""Evidence bundles: everything known about one incident, in a zip with a SHA-256 manifest.

Layout:
  manifest.json             format, incident, who/when, chain head, sha256 + size of every file
  incident.json             the incident row
  events.jsonl              the hash-chained event log, one entry per line (re-verifiable offline)
  posts/<id>/payload.raw    the platform payload exactly as stored at intake (UTF-8 bytes)
  posts/<id>/post.json      post metadata and its membership of the incident
  triage/<post id>.json     triage result with its reasons
  messages.json             every message sent (or attempted) to reporters
  cad_deliveries.json       hand-offs to computer-aided dispatch
  media/items.json          what reporters shared (locations, texts, file metadata + hashes)
  media/<item id>-<name>    media files as received
After writing, an 'exported' event records who exported, when, and the manifest's SHA-256, so a
bundle can later be matched to the database.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from evidence.chain import check_events, verify_incident
from evidence.hashes import file_digest, payload_bytes, sha256_bytes
from evidence.media import POST_PURGED, data_digest, incident_media, purged_item_ids, resolve_media_path
from models.cad import CadDelivery
from models.enums import EventKind
from models.events import GENESIS, append_event
from models.tables import Incident, IncidentEvent, IncidentPost, OutboundMessage, Post, TriageRecord
from models.types import utcnow

BUNDLE_FORMAT = "flare-evidence-bundle/1"
_EVENT_RETRIES = 5
MANIFEST = "manifest.json"


class ExportError(ValueError):
    """The incident cannot be exported (e.g. it does not exist)."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    manifest_sha256: str
    files: int
    chain_head: str


@dataclass(frozen=True)
class BundleReport:
    ok: bool
    files_checked: int
    first_mismatch: str | None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="microseconds") if value else None


def _row(obj: Any) -> dict[str, Any]:
    out = {}
    for key, value in obj.model_dump().items():
        out[key] = _iso(value) if isinstance(value, datetime) else value
    return out


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def event_line(ev: IncidentEvent) -> dict[str, Any]:
    return {"incident_id": ev.incident_id, "seq": ev.seq, "kind": ev.kind, "actor": ev.actor,
            "at": _iso(ev.at), "data": ev.data, "prev_hash": ev.prev_hash, "hash": ev.hash}


def _collect(session: Session, incident: Incident, events: list[IncidentEvent],
             media_root: Path | None) -> dict[str, bytes | Path]:
    """Bundle member name -> its bytes, or the media file to copy (streamed: frames add up)."""
    files: dict[str, bytes | Path] = {"incident.json": _json_bytes(_row(incident))}
    files["events.jsonl"] = "".join(
        json.dumps(event_line(e), sort_keys=True, ensure_ascii=False) + "\n" for e in events).encode("utf-8")
    # Every post the chain names, not only today's members: a post merged or split away since
    # is still part of this incident's record, and its payload hash is in this chain.
    named = {e.data.get("post_id") for e in events if e.kind == EventKind.post_attached.value}
    current = set(session.exec(select(IncidentPost.post_id).where(IncidentPost.incident_id == incident.id)))
    post_ids = sorted(pid for pid in (named | current) if isinstance(pid, int))
    rows = session.exec(select(Post, IncidentPost).join(IncidentPost, IncidentPost.post_id == Post.id, isouter=True)
                        .where(Post.id.in_(post_ids or [-1])).order_by(Post.id)).all()
    for post, membership in rows:
        raw = payload_bytes(post)
        files[f"posts/{post.id}/payload.raw"] = raw
        meta = _row(post)
        meta.pop("raw_payload")
        meta["payload_sha256"] = sha256_bytes(raw)
        meta["membership"] = None if membership is None else {
            "incident_id": membership.incident_id, "attached_at": _iso(membership.attached_at),
            "attached_by": membership.attached_by, "reason": membership.reason, "similarity": membership.similarity}
        files[f"posts/{post.id}/post.json"] = _json_bytes(meta)
        triage = session.exec(select(TriageRecord).where(TriageRecord.post_id == post.id)).first()
        if triage:
            files[f"triage/{post.id}.json"] = _json_bytes(_row(triage))
    messages = session.exec(select(OutboundMessage).where(
        (OutboundMessage.incident_id == incident.id) | OutboundMessage.post_id.in_(post_ids or [-1]))
        .order_by(OutboundMessage.id)).all()
    files["messages.json"] = _json_bytes([_row(m) for m in messages])
    deliveries = session.exec(select(CadDelivery).where(CadDelivery.incident_id == incident.id)
                              .order_by(CadDelivery.id)).all()
    files["cad_deliveries.json"] = _json_bytes([_row(d) for d in deliveries])
    items = []
    for entry in incident_media(session, incident.id):
        item = {"item_id": entry.item_id, "kind": entry.kind, "sha256": entry.sha256, "event_seq": entry.seq,
                "received_at": _iso(entry.recorded_at), "data": entry.data, "has_file": bool(entry.path),
                "file": None}
        path = resolve_media_path(media_root, entry.path) if media_root is not None else None
        if path is not None and path.is_file():
            item["file"] = f"media/{entry.item_id}-{path.name}"
            files[item["file"]] = path
        items.append(item)
    files["media/items.json"] = _json_bytes(items)
    return files


def _manifest_entry(name: str, content: bytes | Path) -> dict[str, Any]:
    if isinstance(content, Path):
        return {"path": name, "sha256": file_digest(content), "bytes": content.stat().st_size}
    return {"path": name, "sha256": sha256_bytes(content), "bytes": len(content)}


def export_incident(engine: Engine, incident_id: int, out_path: Path, media_root: Path | None,
                    actor: str = "system") -> ExportResult:
    """Write the incident's evidence bundle (zip) to out_path and record the export in the chain."""
    out_path = Path(out_path)
    exported_at = utcnow()
    with Session(engine, expire_on_commit=False) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise ExportError(f"incident {incident_id} not found")
        # One read of the log feeds both events.jsonl and the manifest's head, so an event appended
        # meanwhile cannot make them disagree.
        events = list(session.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                                   .order_by(IncidentEvent.seq)))
        length, head = (events[-1].seq, events[-1].hash) if events else (0, GENESIS)
        files = _collect(session, incident, events, Path(media_root) if media_root else None)
        broken = verify_incident(session, incident_id, media_root)
    manifest = {
        "format": BUNDLE_FORMAT, "incident_id": incident_id, "exported_at": _iso(exported_at),
        "exported_by": actor,
        "chain": {"length": length, "head_hash": head,
                  "verified": broken is None, "first_break": str(broken) if broken else None},
        "files": [_manifest_entry(name, content) for name, content in sorted(files.items())],
    }
    manifest_bytes = _json_bytes(manifest)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, manifest_bytes)
        for name, content in sorted(files.items()):
            if isinstance(content, Path):
                zf.write(content, arcname=name)
            else:
                zf.writestr(name, content)
    os.replace(partial, out_path)  # never leave a half-written bundle under the final name
    manifest_sha256 = sha256_bytes(manifest_bytes)
    record = {"manifest_sha256": manifest_sha256, "files": len(files), "chain_head": head,
              "bundle_sha256": file_digest(out_path)}
    for attempt in range(_EVENT_RETRIES):
        # Another writer may take the next seq first (unique constraint): append after it instead.
        with Session(engine) as session:
            try:
                append_event(session, incident_id, EventKind.exported, actor, record, at=exported_at)
                session.commit()
                break
            except IntegrityError:
                session.rollback()
                if attempt == _EVENT_RETRIES - 1:
                    raise
    return ExportResult(out_path, manifest_sha256, len(files), head)


class _Reader:
    """Reads a bundle from a zip file or from the directory it was unpacked into."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.zip = zipfile.ZipFile(self.path) if self.path.is_file() else None

    def names(self) -> set[str]:
        if self.zip is not None:
            return {n for n in self.zip.namelist() if not n.endswith("/")}
        return {p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()}

    def read(self, name: str) -> bytes | None:
        if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
            return None
        if self.zip is not None:
            try:
                return self.zip.read(name)
            except KeyError:
                return None
        target = self.path / name
        return target.read_bytes() if target.is_file() else None

    def digest(self, name: str) -> str | None:
        """SHA-256 of one member, read in chunks (a bundle can hold thousands of video frames)."""
        if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
            return None
        h = hashlib.sha256()
        try:
            fh = self.zip.open(name) if self.zip is not None else open(self.path / name, "rb")
        except (KeyError, FileNotFoundError, IsADirectoryError):
            return None
        with fh:
            for chunk in iter(lambda: fh.read(1 << 16), b""):
                h.update(chunk)
        return h.hexdigest()

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _check_contents(reader: _Reader, manifest: dict[str, Any]) -> tuple[int, str | None]:
    checked = 0
    listed = {f["path"]: f["sha256"] for f in manifest.get("files", [])}
    for name, expected in sorted(listed.items()):
        actual = reader.digest(name)
        checked += 1
        if actual is None:
            return checked, f"{name}: listed in the manifest but missing"
        if actual != expected:
            return checked, f"{name}: SHA-256 differs from the manifest"
    extra = sorted(reader.names() - set(listed) - {MANIFEST})
    if extra:
        return checked, f"{extra[0]}: present but not listed in the manifest"
    return checked, None


def _check_chain(reader: _Reader, manifest: dict[str, Any]) -> str | None:
    """Re-verify the exported event log itself, so editing a file *and* the manifest is still caught."""
    raw = reader.read("events.jsonl")
    if raw is None:
        return "events.jsonl: missing"
    events = []
    for line in raw.decode("utf-8").splitlines():
        d = json.loads(line)
        events.append(IncidentEvent(incident_id=d["incident_id"], seq=d["seq"], kind=d["kind"], actor=d["actor"],
                                    at=datetime.fromisoformat(d["at"]), data=d["data"],
                                    prev_hash=d["prev_hash"], hash=d["hash"]))
    incident_id = manifest.get("incident_id")
    broken = check_events(incident_id, events)
    if broken:
        return f"events.jsonl: {broken}"
    head = events[-1].hash if events else None
    if manifest.get("chain", {}).get("head_hash") != head or manifest["chain"].get("length") != len(events):
        return "events.jsonl: chain head differs from the manifest"
    problem = _check_media(reader, events)
    if problem:
        return problem
    purged = {e.data.get("post_id") for e in events
              if e.kind == EventKind.note.value and e.data.get("retention") == POST_PURGED}
    for ev in events:
        if (ev.kind == EventKind.post_attached.value and ev.data.get("payload_sha256")
                and ev.data.get("post_id") not in purged):
            data = reader.read(f"posts/{ev.data['post_id']}/payload.raw")
            if data is None:
                return f"posts/{ev.data['post_id']}/payload.raw: missing (attached at seq {ev.seq})"
            if sha256_bytes(data) != ev.data["payload_sha256"]:
                return f"posts/{ev.data['post_id']}/payload.raw: differs from the hash recorded at seq {ev.seq}"
    return None


def _check_media(reader: _Reader, events: list[IncidentEvent]) -> str | None:
    """Every media item recorded in the exported chain matches its recorded hash in the bundle."""
    raw = reader.read("media/items.json")
    items = {i["item_id"]: i for i in json.loads(raw)} if raw else {}
    purged = purged_item_ids(events)
    for ev in events:
        item_id = ev.data.get("item_id")
        if ev.kind != EventKind.media_received.value or item_id is None or item_id in purged:
            continue
        item = items.get(item_id)
        if item is None:
            return f"media/items.json: item {item_id} (recorded at seq {ev.seq}) is missing"
        if item["has_file"]:
            actual = reader.digest(item["file"]) if item["file"] else None
            if actual is None:
                return f"media/items.json: item {item_id} file is not in the bundle"
            if actual != ev.data.get("sha256"):
                return f"{item['file']}: differs from the hash recorded at seq {ev.seq}"
        elif item["data"] is None or data_digest(item["data"]) != ev.data.get("sha256"):
            return f"media/items.json: item {item_id} data differs from the hash recorded at seq {ev.seq}"
    return None


def verify_bundle(path: Path, engine: Engine | None = None) -> BundleReport:
    """Check every file against the manifest and the event log; with an engine, also check that
    the database recorded this manifest's hash in an 'exported' event."""
    reader = _Reader(path)
    try:
        manifest_bytes = reader.read(MANIFEST)
        if manifest_bytes is None:
            return BundleReport(False, 0, f"{MANIFEST}: missing")
        try:
            manifest = json.loads(manifest_bytes)
        except ValueError:
            return BundleReport(False, 0, f"{MANIFEST}: not valid JSON")
        if manifest.get("format") != BUNDLE_FORMAT:
            return BundleReport(False, 0, f"{MANIFEST}: unknown format {manifest.get('format')!r}")
        checked, problem = _check_contents(reader, manifest)
        problem = problem or _check_chain(reader, manifest)
        if problem is None and engine is not None:
            digest = sha256_bytes(manifest_bytes)
            with Session(engine) as session:
                recorded = session.exec(select(IncidentEvent).where(
                    IncidentEvent.incident_id == manifest["incident_id"],
                    IncidentEvent.kind == EventKind.exported.value)).all()
            if not any(e.data.get("manifest_sha256") == digest for e in recorded):
                problem = f"{MANIFEST}: its SHA-256 is not recorded by any export of incident {manifest['incident_id']}"
        return BundleReport(problem is None, checked, problem)
    finally:
        reader.close()
