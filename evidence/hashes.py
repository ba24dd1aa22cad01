"""SHA-256 digests used across evidence: posts, files and canonical JSON."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from models.tables import Post

_CHUNK = 1 << 16


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload_bytes(post: Post) -> bytes:
    """The stored platform payload as bytes: exactly what intake wrote, encoded as UTF-8."""
    return (post.raw_payload or "").encode("utf-8")


def post_digest(post: Post) -> str:
    """The digest escalation records in the 'post_attached' event (payload_sha256)."""
    return sha256_bytes(payload_bytes(post))


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def canonical_json(value: Any) -> bytes:
    """Stable JSON bytes (sorted keys, no whitespace variance) so equal content hashes equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8")
