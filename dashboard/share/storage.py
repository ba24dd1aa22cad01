"""Evidence storage for shared items: files under the media dir, hashes, rows and event-log entries.

Order matters for "nothing received is lost": the file is written and fsynced under a temporary
name, renamed into place, and only then is the row (with its hash) committed together with its
media_received event. A crash before the commit leaves an orphan file, never a row without bytes.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from config import Settings
from models.db import private_dir, write_private
from models.enums import EventKind
from models.events import append_event
from models.media import ShareLink, SharedItem
from models.types import utcnow

# Magic numbers of the image formats phones produce; anything else is refused, whatever the
# client claims its content type is.
_IMAGE_SIGNATURES: list[tuple[bytes, int, str, str]] = [
    (b"\xff\xd8\xff", 0, "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", "png"),
    (b"GIF87a", 0, "image/gif", "gif"),
    (b"GIF89a", 0, "image/gif", "gif"),
    (b"WEBP", 8, "image/webp", "webp"),
]
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif"}
# Concurrent writers (a photo upload racing live frames) can collide on the event log's seq.
_EVENT_RETRIES = 8


class NotAnImage(ValueError):
    pass


@dataclass(frozen=True)
class StoredFile:
    relpath: str
    sha256: str
    size: int


def sniff_image(data: bytes) -> tuple[str, str]:
    """(content type, extension) from the bytes themselves."""
    for magic, offset, ctype, ext in _IMAGE_SIGNATURES:
        if data[offset:offset + len(magic)] == magic and (ext != "webp" or data[:4] == b"RIFF"):
            return ctype, ext
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return ("image/avif", "avif") if data[8:12] == b"avif" else ("image/heic", "heic")
    raise NotAnImage("not a JPEG, PNG, GIF, WebP or HEIC image")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: dict) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def media_root(settings: Settings) -> Path:
    return settings.resolved_media_dir


def write_file(settings: Settings, incident_id: int, link_id: int, stem: str, ext: str,
               data: bytes) -> StoredFile:
    """Write bytes durably under <media>/<incident>/<link>/ and return where and their hash."""
    root = media_root(settings)
    folder = root / str(incident_id) / f"link-{link_id}"
    private_dir(folder)
    name = f"{stem}-{time.time_ns()}-{secrets.token_hex(4)}.{ext}"
    final = write_private(folder / name, data)
    return StoredFile(relpath=str(final.relative_to(root)), sha256=sha256_hex(data), size=len(data))


def file_path(settings: Settings, item: SharedItem) -> Path:
    root = media_root(settings).resolve()
    path = (root / item.path).resolve()
    if root not in path.parents:  # a stored path can never point outside the media dir
        raise ValueError("stored path escapes the media dir")
    return path


def verify_item(settings: Settings, item: SharedItem) -> bool:
    """Does the stored evidence still match the hash recorded when it arrived?"""
    if item.path:
        try:
            return sha256_hex(file_path(settings, item).read_bytes()) == item.sha256
        except OSError:
            return False
    return sha256_hex(canonical_json(item.data)) == item.sha256


def record_item(engine: Engine, link: ShareLink, kind: str, sha256: str, *, path: str = "",
                content_type: str = "", size: int = 0, data: dict | None = None,
                stream_seq: int | None = None) -> SharedItem:
    """Commit the item row and its media_received event in one transaction (retried on seq races)."""
    last_error: Exception | None = None
    for attempt in range(_EVENT_RETRIES):
        with Session(engine, expire_on_commit=False) as s:
            item = SharedItem(link_id=link.id, incident_id=link.incident_id, kind=kind, path=path,
                              content_type=content_type, size=size, sha256=sha256, data=data or {},
                              stream_seq=stream_seq, received_at=utcnow())
            s.add(item)
            try:
                s.flush()
                append_event(s, link.incident_id, EventKind.media_received, f"reporter:link-{link.id}",
                             {"item_id": item.id, "link_id": link.id, "kind": kind, "sha256": sha256,
                              "size": size, "stream_seq": stream_seq})
                s.commit()
                return item
            except IntegrityError as exc:
                s.rollback()
                last_error = exc
                time.sleep(0.01 * (attempt + 1))
    raise RuntimeError(f"could not record shared {kind} after {_EVENT_RETRIES} attempts") from last_error


def store_photo(engine: Engine, settings: Settings, link: ShareLink, data: bytes) -> SharedItem:
    ctype, ext = sniff_image(data)
    stored = write_file(settings, link.incident_id, link.id, "photo", ext, data)
    return record_item(engine, link, "photo", stored.sha256, path=stored.relpath, content_type=ctype,
                       size=stored.size)


def store_frame(engine: Engine, settings: Settings, link: ShareLink, data: bytes, seq: int) -> SharedItem:
    ctype, ext = sniff_image(data)
    stored = write_file(settings, link.incident_id, link.id, f"frame-{seq:06d}", ext, data)
    return record_item(engine, link, "frame", stored.sha256, path=stored.relpath, content_type=ctype,
                       size=stored.size, stream_seq=seq)


def store_json(engine: Engine, link: ShareLink, kind: str, data: dict) -> SharedItem:
    """Locations and texts: small, kept in the row; the hash covers their canonical JSON."""
    return record_item(engine, link, kind, sha256_hex(canonical_json(data)), data=data,
                       size=len(canonical_json(data)))
