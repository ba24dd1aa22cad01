"""The evidence keys: an HMAC key that chains events and an Ed25519 key that signs checkpoints
and bundles. Created on first use in a 0700 directory outside the database; never stored in it.

keys.json (0600) holds both secrets; public.pem is the Ed25519 public key to hand to whoever must
check a bundle offline (`flare evidence public-key`).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from config.settings import Settings
from models.db import make_engine

KEYS_FILE = "keys.json"
PUBLIC_FILE = "public.pem"
KEYS_FORMAT = "flare-evidence-keys/1"


class KeyFileError(ValueError):
    """The key directory or a key file cannot be used (clear message, no traceback)."""


@dataclass(frozen=True)
class EvidenceKeys:
    hmac_key: bytes
    signing_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.signing_key.public_key()

    @property
    def public_pem(self) -> bytes:
        return public_pem(self.public_key)

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self.signing_key.sign(data)).decode("ascii")


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint naming the signing key: SHA-256 of its raw public bytes, first 16 hex."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (as `flare evidence public-key` prints it)."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError("the public key is not an Ed25519 key")
    return key


def verify_signature(key: Ed25519PublicKey, signature_b64: object, data: bytes) -> bool:
    if not isinstance(signature_b64, str):
        return False
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def private_dirs(path: Path) -> Path:
    """Create `path` and any missing parent 0700 (existing parents are left as they are)."""
    path = Path(path)
    missing = [p for p in [path, *path.parents] if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
        directory.chmod(0o700)
    return path


def _private_dir(path: Path) -> Path:
    private_dirs(path)
    path.chmod(0o700)
    return path


def _encode(hmac_key: bytes, signing: Ed25519PrivateKey) -> bytes:
    raw = signing.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    return json.dumps({"format": KEYS_FORMAT, "hmac_key": base64.b64encode(hmac_key).decode(),
                       "ed25519_private": base64.b64encode(raw).decode()}, indent=2).encode() + b"\n"


def _decode(data: bytes, where: Path) -> EvidenceKeys:
    try:
        doc = json.loads(data)
        if doc.get("format") != KEYS_FORMAT:
            raise ValueError(f"unknown format {doc.get('format')!r}")
        hmac_key = base64.b64decode(doc["hmac_key"], validate=True)
        signing = Ed25519PrivateKey.from_private_bytes(base64.b64decode(doc["ed25519_private"], validate=True))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyFileError(f"{where}: not a usable evidence key file ({exc})") from None
    if len(hmac_key) < 32:
        raise KeyFileError(f"{where}: the HMAC key is shorter than 32 bytes")
    return EvidenceKeys(hmac_key, signing)


def load_or_create_keys(key_dir: Path) -> EvidenceKeys:
    """Read the keys, creating them on first run. Concurrent first runs (web and worker starting
    together) agree on one key: the file is published with a hard link, which never overwrites."""
    key_dir = _private_dir(Path(key_dir))
    path = key_dir / KEYS_FILE
    if not path.exists():
        candidate = key_dir / f".{KEYS_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(_encode(secrets.token_bytes(32), Ed25519PrivateKey.generate()))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(candidate, path)
        except FileExistsError:
            pass  # another process created them first: use theirs
        finally:
            candidate.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    keys = _decode(path.read_bytes(), path)
    public = key_dir / PUBLIC_FILE
    if not public.exists() or public.read_bytes() != keys.public_pem:
        tmp = key_dir / f".{PUBLIC_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        tmp.write_bytes(keys.public_pem)
        os.replace(tmp, public)
    return keys


def load_keys(key_dir: Path) -> EvidenceKeys:
    """Read existing keys (verification must never mint a fresh key and call everything broken)."""
    path = Path(key_dir) / KEYS_FILE
    if not path.is_file():
        raise KeyFileError(f"no evidence keys at {path}: point FLARE_EVIDENCE__KEY_DIR at the installation's keys")
    return _decode(path.read_bytes(), path)


def settings_keys(settings: Settings) -> EvidenceKeys:
    return load_or_create_keys(settings.resolved_key_dir)


def evidence_engine(settings: Settings, keys: EvidenceKeys | None = None, **kwargs):
    """The configured database's engine, chaining events with this installation's key."""
    keys = keys or settings_keys(settings)
    return make_engine(settings.resolved_database_url, chain_key=keys.hmac_key, **kwargs)
