"""Typer-free entry points for the CLI (`flare evidence verify|verify-bundle|export|checkpoint|
public-key`, `flare purge`, `flare cad export`): each takes Settings, does the work and returns
(exit code, lines to print). Exit codes: 0 ok, 1 evidence failed verification / delivery failed,
2 bad input."""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from config.settings import Settings
from evidence.bundle import ExportError, export_incident, verify_bundle
from evidence.cad import deliver_incident, export_eido
from evidence.chain import verify_all, verify_incident
from evidence.checkpoint import read_checkpoints, write_checkpoint
from evidence.keys import EvidenceKeys, KeyFileError, load_keys, load_public_key, settings_keys
from evidence.media import default_media_root
from evidence.retention import RetentionPolicy, purge
from models.db import make_engine
from models.types import utcnow


@contextmanager
def _engine(settings: Settings, keys: EvidenceKeys | None = None) -> Iterator[Engine]:
    engine = make_engine(settings.resolved_database_url, chain_key=keys.hmac_key if keys else None)
    try:
        yield engine
    finally:
        engine.dispose()


def verify_chains(settings: Settings, incident_id: int | None = None) -> tuple[int, list[str]]:
    """Verify one incident (or everything: every incident, the audit log, the checkpoints)."""
    try:
        keys = load_keys(settings.resolved_key_dir)
    except KeyFileError as exc:
        return 2, [str(exc)]
    media_root = default_media_root(settings)
    state = read_checkpoints(settings.resolved_checkpoint_file, keys.public_key)
    with _engine(settings, keys) as engine:
        if incident_id is not None:
            with Session(engine) as session:
                broken = verify_incident(session, incident_id, media_root, state.incidents.get(incident_id))
            problems = [f"BROKEN {p}" for p in state.problems]
            if broken:
                problems.append(f"BROKEN {broken}")
            return (1, problems) if problems else (0, [f"incident {incident_id}: intact"])
        report = verify_all(engine, media_root, state)
    lines = [f"checked {report.incidents_checked} incidents, {report.events_checked} events, "
             f"{report.audit_checked} audit entries against {report.checkpoints} checkpoints"]
    if report.audit_unsealed:
        lines.append(f"{report.audit_unsealed} audit entries not yet sealed (the next checkpoint seals them)")
    if not report.checkpoints:
        lines.append(f"no checkpoints in {settings.resolved_checkpoint_file}: truncation cannot be detected yet")
    lines += [f"BROKEN {b}" for b in report.breaks]
    return (0 if report.ok else 1), lines + (["all intact"] if report.ok else [])


def checkpoint(settings: Settings) -> tuple[int, list[str]]:
    """Seal the audit log and append a signed checkpoint now (workers do it every interval)."""
    keys = settings_keys(settings)
    cfg = settings.evidence
    with _engine(settings, keys) as engine:
        try:
            result = write_checkpoint(engine, keys, settings.resolved_checkpoint_file,
                                      cfg.checkpoint_webhook_url, cfg.webhook_timeout_seconds)
        except ValueError as exc:
            return 1, [str(exc)]
    lines = [f"checkpoint {result.number}: " + (f"{result.incidents} chains recorded" if result.written
                                                  else "nothing moved, nothing written"),
             f"sealed {result.audit_sealed} audit entries"]
    lines += [f"HELD BACK {name}: it no longer extends its last checkpoint" for name in result.held_back]
    if result.webhook_error:
        lines.append(f"webhook failed: {result.webhook_error}")
    return (1 if result.held_back or result.webhook_error else 0), lines


def public_key(settings: Settings) -> tuple[int, list[str]]:
    """The PEM public key that verifies this installation's bundles and checkpoints."""
    try:
        keys = load_keys(settings.resolved_key_dir)
    except KeyFileError as exc:
        return 2, [str(exc)]
    return 0, [keys.public_pem.decode("ascii").rstrip("\n")]


def export_bundle(settings: Settings, incident_id: int, out_path: Path, actor: str) -> tuple[int, list[str]]:
    keys = settings_keys(settings)
    with _engine(settings, keys) as engine:
        try:
            result = export_incident(engine, incident_id, out_path, default_media_root(settings), keys, actor=actor)
        except ExportError as exc:
            return 2, [str(exc)]
    return 0, [f"wrote {result.path} ({result.files} files)", f"manifest sha256 {result.manifest_sha256}"]


def check_bundle(settings: Settings | None, path: Path, public_key_file: Path | None = None) -> tuple[int, list[str]]:
    """Verify a bundle offline with a public key (PEM file); without one, with this installation's
    key, and then also check the database recorded its export."""
    if not Path(path).exists():
        return 2, [f"{path}: no such file or directory"]
    try:
        if public_key_file is not None:
            try:
                key = load_public_key(Path(public_key_file).read_bytes())
            except OSError as exc:
                return 2, [f"{public_key_file}: {exc.strerror or exc}"]
            keys = None
        else:
            if settings is None:
                return 2, ["a public key is needed: --public-key FILE (from `flare evidence public-key`)"]
            keys = load_keys(settings.resolved_key_dir)
            key = keys.public_key
    except KeyFileError as exc:
        return 2, [str(exc)]
    if keys is None or settings is None:
        report = verify_bundle(path, key)
    else:
        with _engine(settings, keys) as engine:
            report = verify_bundle(path, key, engine)
    if report.ok:
        return 0, [f"{path}: intact ({report.files_checked} files, signature valid)"]
    return 1, [f"{path}: MISMATCH {report.first_mismatch}"]


def run_purge(settings: Settings) -> tuple[int, list[str]]:
    keys = settings_keys(settings)
    with _engine(settings, keys) as engine:
        counts = purge(engine, utcnow(), RetentionPolicy.from_settings(settings.retention),
                       default_media_root(settings))
    return 0, [f"{name}: {count}" for name, count in counts.items()]


def cad_export(settings: Settings, incident_id: int, send: bool = False) -> tuple[int, list[str]]:
    """Print the incident's EIDO JSON, or (send=True) deliver it to the configured CAD webhook."""
    keys = settings_keys(settings)
    with _engine(settings, keys) as engine:
        try:
            if not send:
                return 0, [export_eido(engine, incident_id, settings.cad)]
            result = deliver_incident(engine, incident_id, settings.cad)
        except LookupError as exc:
            return 2, [str(exc)]
        except ValueError as exc:
            return 2, [str(exc)]
    line = json.dumps({"ok": result.ok, "attempts": result.attempts, "status_code": result.status_code,
                       "payload_sha256": result.payload_sha256, "error": result.error})
    return (0 if result.ok else 1), [line]
