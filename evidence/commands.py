"""Typer-free entry points for the CLI (`flare evidence verify|export`, `flare purge`,
`flare cad export`): each takes Settings, does the work and returns (exit code, lines to print).
Exit codes: 0 ok, 1 evidence failed verification / delivery failed, 2 bad input."""
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
from evidence.media import default_media_root
from evidence.retention import RetentionPolicy, purge
from models.db import make_engine
from models.types import utcnow


@contextmanager
def _engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.resolved_database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def verify_chains(settings: Settings, incident_id: int | None = None) -> tuple[int, list[str]]:
    """Verify one incident (or all): chain, post payloads and media files."""
    media_root = default_media_root(settings)
    with _engine(settings) as engine:
        if incident_id is not None:
            with Session(engine) as session:
                broken = verify_incident(session, incident_id, media_root)
            return (1, [f"BROKEN {broken}"]) if broken else (0, [f"incident {incident_id}: intact"])
        report = verify_all(engine, media_root)
    lines = [f"checked {report.incidents_checked} incidents, {report.events_checked} events"]
    lines += [f"BROKEN {b}" for b in report.breaks]
    return (0 if report.ok else 1), lines + (["all intact"] if report.ok else [])


def export_bundle(settings: Settings, incident_id: int, out_path: Path, actor: str) -> tuple[int, list[str]]:
    with _engine(settings) as engine:
        try:
            result = export_incident(engine, incident_id, out_path, default_media_root(settings), actor=actor)
        except ExportError as exc:
            return 2, [str(exc)]
    return 0, [f"wrote {result.path} ({result.files} files)", f"manifest sha256 {result.manifest_sha256}"]


def check_bundle(settings: Settings | None, path: Path) -> tuple[int, list[str]]:
    """Verify a bundle; with settings, also check the database recorded its export."""
    if not Path(path).exists():
        return 2, [f"{path}: no such file or directory"]
    if settings is None:
        report = verify_bundle(path)
    else:
        with _engine(settings) as engine:
            report = verify_bundle(path, engine)
    if report.ok:
        return 0, [f"{path}: intact ({report.files_checked} files)"]
    return 1, [f"{path}: MISMATCH {report.first_mismatch}"]


def run_purge(settings: Settings) -> tuple[int, list[str]]:
    with _engine(settings) as engine:
        counts = purge(engine, utcnow(), RetentionPolicy.from_settings(settings.retention),
                       default_media_root(settings))
    return 0, [f"{name}: {count}" for name, count in counts.items()]


def cad_export(settings: Settings, incident_id: int, send: bool = False) -> tuple[int, list[str]]:
    """Print the incident's EIDO JSON, or (send=True) deliver it to the configured CAD webhook."""
    with _engine(settings) as engine:
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
