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
  signature.json            Ed25519 signature of manifest.json by the installation's evidence key
After writing, an 'exported' event records who exported, when, and the manifest's SHA-256, so a
bundle can later be matched to the database.

Offline, a bundle is checked with nothing but itself and the installation's public key
(`flare evidence public-key`): the signature vouches for the manifest, the manifest for every
file, and the event log's links, payload and media hashes are re-checked from the files.
Anything malformed is reported as a mismatch with its reason, never as a crash.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evidence.chain import check_events, verify_incident
from evidence.keys import EvidenceKeys, key_id, public_pem, verify_signature
from evidence.hashes import file_digest, payload_bytes, sha256_bytes
from evidence.media import POST_PURGED, data_digest, incident_media, purged_item_ids, resolve_media_path
from models.cad import CadDelivery
from models.enums import EventKind
from models.events import GENESIS, append_event
from models.tables import Incident, IncidentEvent, IncidentPost, OutboundMessage, Post, TriageRecord
from models.types import utcnow

BUNDLE_FORMAT = "flare-evidence-bundle/2"
SIGNATURE = "signature.json"
SIGNATURE_FORMAT = "flare-evidence-signature/1"
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
                    keys: EvidenceKeys, actor: str = "system") -> ExportResult:
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
    signature = _json_bytes({"format": SIGNATURE_FORMAT, "algorithm": "ed25519", "key_id": keys.key_id,
                             "public_key": keys.public_pem.decode("ascii"),
                             "manifest_sha256": sha256_bytes(manifest_bytes),
                             "signature": keys.sign(manifest_bytes)})
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, manifest_bytes)
        zf.writestr(SIGNATURE, signature)
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


class Malformed(ValueError):
    """The bundle is not shaped as a bundle: reported as a mismatch, never raised to the caller."""


_MAX_MEMBER = 64 * 1024 * 1024  # JSON members are read whole; anything larger is not ours


def _safe_name(name: object) -> bool:
    return (isinstance(name, str) and bool(name) and not PurePosixPath(name).is_absolute()
            and ".." not in PurePosixPath(name).parts and "\\" not in name)


class _Reader:
    """Reads a bundle from a zip file or from the directory it was unpacked into."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.zip = None
        if self.path.is_file():
            try:
                self.zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
                raise Malformed(f"{self.path.name}: not a readable zip file ({exc})") from None
        elif not self.path.is_dir():
            raise Malformed(f"{self.path}: no such bundle")

    def names(self) -> set[str]:
        if self.zip is not None:
            return {n for n in self.zip.namelist() if not n.endswith("/")}
        return {p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()}

    def read(self, name: str) -> bytes | None:
        if not _safe_name(name):
            return None
        if self.zip is not None:
            try:
                info = self.zip.getinfo(name)
            except KeyError:
                return None
            if info.file_size > _MAX_MEMBER:
                raise Malformed(f"{name}: {info.file_size} bytes, larger than any bundle file")
            return self.zip.read(info)
        target = self.path / name
        if not target.is_file():
            return None
        if target.stat().st_size > _MAX_MEMBER:
            raise Malformed(f"{name}: larger than any bundle file")
        return target.read_bytes()

    def digest(self, name: str) -> str | None:
        """SHA-256 of one member, read in chunks (a bundle can hold thousands of video frames)."""
        if not _safe_name(name):
            return None
        h = hashlib.sha256()
        try:
            fh = self.zip.open(name) if self.zip is not None else open(self.path / name, "rb")
        except (KeyError, FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        with fh:
            for chunk in iter(lambda: fh.read(1 << 16), b""):
                h.update(chunk)
        return h.hexdigest()

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _json(reader: _Reader, name: str) -> Any:
    raw = reader.read(name)
    if raw is None:
        raise Malformed(f"{name}: missing")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Malformed(f"{name}: not valid JSON ({exc})") from None


def _check_signature(reader: _Reader, manifest_bytes: bytes, public_key: Ed25519PublicKey) -> None:
    sig = _json(reader, SIGNATURE)
    if not isinstance(sig, dict) or sig.get("format") != SIGNATURE_FORMAT or sig.get("algorithm") != "ed25519":
        raise Malformed(f"{SIGNATURE}: not an Ed25519 bundle signature")
    if sig.get("key_id") != key_id(public_key):
        raise Malformed(f"{SIGNATURE}: signed by key {sig.get('key_id')!r}, not by the given public key "
                        f"({key_id(public_key)})")
    if not verify_signature(public_key, sig.get("signature"), manifest_bytes):
        raise Malformed(f"{SIGNATURE}: the signature does not match {MANIFEST} (edited or re-signed)")


def _manifest_files(manifest: dict[str, Any]) -> dict[str, str]:
    files = manifest.get("files")
    if not isinstance(files, list):
        raise Malformed(f"{MANIFEST}: 'files' is not a list")
    listed: dict[str, str] = {}
    for entry in files:
        if not isinstance(entry, dict) or not _safe_name(entry.get("path")) or not isinstance(entry.get("sha256"), str):
            raise Malformed(f"{MANIFEST}: a file entry is not {{path, sha256}}: {str(entry)[:120]}")
        listed[entry["path"]] = entry["sha256"]
    return listed


def _check_contents(reader: _Reader, manifest: dict[str, Any]) -> tuple[int, str | None]:
    checked = 0
    listed = _manifest_files(manifest)
    for name, expected in sorted(listed.items()):
        actual = reader.digest(name)
        checked += 1
        if actual is None:
            return checked, f"{name}: listed in the manifest but missing"
        if actual != expected:
            return checked, f"{name}: SHA-256 differs from the manifest"
    extra = sorted(reader.names() - set(listed) - {MANIFEST, SIGNATURE})
    if extra:
        return checked, f"{extra[0]}: present but not listed in the manifest"
    return checked, None


_EVENT_KEYS = {"incident_id": int, "seq": int, "kind": str, "actor": str, "at": str, "data": dict,
               "prev_hash": str, "hash": str}


def _events(reader: _Reader) -> list[IncidentEvent]:
    raw = reader.read("events.jsonl")
    if raw is None:
        raise Malformed("events.jsonl: missing")
    events = []
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise Malformed(f"events.jsonl: not UTF-8 ({exc})") from None
    for number, line in enumerate(lines, start=1):
        try:
            d = json.loads(line)
            if not isinstance(d, dict):
                raise ValueError("not an object")
            for name, kind in _EVENT_KEYS.items():
                if not isinstance(d.get(name), kind) or isinstance(d.get(name), bool):
                    raise ValueError(f"'{name}' is not {kind.__name__}")
            at = datetime.fromisoformat(d["at"])
        except ValueError as exc:
            raise Malformed(f"events.jsonl line {number}: {exc}") from None
        events.append(IncidentEvent(incident_id=d["incident_id"], seq=d["seq"], kind=d["kind"], actor=d["actor"],
                                    at=at, data=d["data"], prev_hash=d["prev_hash"], hash=d["hash"]))
    return events


def _check_chain(reader: _Reader, manifest: dict[str, Any]) -> str | None:
    """Re-check the exported event log's links and the hashes it recorded against the files."""
    events = _events(reader)
    incident_id = manifest.get("incident_id")
    if not isinstance(incident_id, int):
        raise Malformed(f"{MANIFEST}: 'incident_id' is not a number")
    broken = check_events(incident_id, events, None)
    if broken:
        return f"events.jsonl: {broken}"
    chain = manifest.get("chain")
    if not isinstance(chain, dict):
        raise Malformed(f"{MANIFEST}: 'chain' is not an object")
    head = events[-1].hash if events else GENESIS
    if chain.get("head_hash") != head or chain.get("length") != len(events):
        return "events.jsonl: chain head differs from the manifest"
    problem = _check_media(reader, events)
    if problem:
        return problem
    purged = {e.data.get("post_id") for e in events
              if e.kind == EventKind.note.value and e.data.get("retention") == POST_PURGED}
    for ev in events:
        if (ev.kind == EventKind.post_attached.value and ev.data.get("payload_sha256")
                and ev.data.get("post_id") not in purged):
            data = reader.read(f"posts/{ev.data.get('post_id')}/payload.raw")
            if data is None:
                return f"posts/{ev.data.get('post_id')}/payload.raw: missing (attached at seq {ev.seq})"
            if sha256_bytes(data) != ev.data["payload_sha256"]:
                return f"posts/{ev.data['post_id']}/payload.raw: differs from the hash recorded at seq {ev.seq}"
    return None


def _check_media(reader: _Reader, events: list[IncidentEvent]) -> str | None:
    """Every media item recorded in the exported chain matches its recorded hash in the bundle."""
    raw = _json(reader, "media/items.json") if reader.read("media/items.json") is not None else []
    if not isinstance(raw, list) or not all(isinstance(i, dict) for i in raw):
        raise Malformed("media/items.json: not a list of items")
    items = {i.get("item_id"): i for i in raw}
    purged = purged_item_ids(events)
    for ev in events:
        item_id = ev.data.get("item_id")
        if ev.kind != EventKind.media_received.value or item_id is None or item_id in purged:
            continue
        item = items.get(item_id)
        if item is None:
            return f"media/items.json: item {item_id} (recorded at seq {ev.seq}) is missing"
        if item.get("has_file"):
            actual = reader.digest(item["file"]) if isinstance(item.get("file"), str) else None
            if actual is None:
                return f"media/items.json: item {item_id} file is not in the bundle"
            if actual != ev.data.get("sha256"):
                return f"{item['file']}: differs from the hash recorded at seq {ev.seq}"
        elif not isinstance(item.get("data"), dict) or data_digest(item["data"]) != ev.data.get("sha256"):
            return f"media/items.json: item {item_id} data differs from the hash recorded at seq {ev.seq}"
    return None


def _verify(reader: _Reader, public_key: Ed25519PublicKey, engine: Engine | None) -> BundleReport:
    manifest_bytes = reader.read(MANIFEST)
    if manifest_bytes is None:
        raise Malformed(f"{MANIFEST}: missing")
    _check_signature(reader, manifest_bytes, public_key)
    manifest = _json(reader, MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise Malformed(f"{MANIFEST}: unknown format {found!r}")
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


def verify_bundle(path: Path, public_key: Ed25519PublicKey, engine: Engine | None = None) -> BundleReport:
    """Check the signature with `public_key`, every file against the manifest and the event log;
    with an engine, also check that the database recorded this manifest's hash in an 'exported'
    event. A malformed bundle gives a report with the reason, never an exception."""
    try:
        reader = _Reader(path)
    except Malformed as exc:
        return BundleReport(False, 0, f"malformed bundle: {exc}")
    try:
        return _verify(reader, public_key, engine)
    except Malformed as exc:
        return BundleReport(False, 0, f"malformed bundle: {exc}")
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
        # A damaged or unsupported zip member (bad CRC, unknown compression, encryption).
        return BundleReport(False, 0, f"malformed bundle: {type(exc).__name__}: {exc}")
    finally:
        reader.close()


__all__ = ["BundleReport", "ExportError", "ExportResult", "export_incident", "public_pem", "verify_bundle"]
