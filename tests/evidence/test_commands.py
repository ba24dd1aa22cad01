"""The CLI-facing functions report results and exit codes the lead's Typer commands print."""
from __future__ import annotations

import json

from sqlmodel import Session, select

from evidence import commands
from evidence_test_helpers import make_incident
from models.tables import IncidentEvent


def test_verify_export_and_check_bundle(settings, engine, tmp_path):
    incident_id = make_incident(engine, settings.resolved_media_dir)
    code, lines = commands.verify_chains(settings)
    assert code == 0 and lines[0] == "checked 1 incidents, 7 events, 0 audit entries against 0 checkpoints"
    assert lines[-1] == "all intact"
    code, lines = commands.export_bundle(settings, incident_id, tmp_path / "b.zip", "sam")
    assert code == 0 and "manifest sha256" in lines[1]
    assert commands.check_bundle(settings, tmp_path / "b.zip")[0] == 0
    assert commands.export_bundle(settings, 999, tmp_path / "x.zip", "sam")[0] == 2
    with Session(engine) as s:
        ev = s.exec(select(IncidentEvent).where(IncidentEvent.seq == 1)).one()
        ev.actor = "mallory"
        s.add(ev)
        s.commit()
    code, lines = commands.verify_chains(settings, incident_id)
    assert code == 1 and lines == [f"BROKEN incident {incident_id} seq 1: hash does not match the entry's contents (keyed)"]


def test_purge_and_cad_export(settings, engine):
    incident_id = make_incident(engine)
    code, lines = commands.run_purge(settings)
    assert code == 0 and lines[:3] == ["posts: 0", "incidents: 0", "media_files: 0"]
    code, [text] = commands.cad_export(settings, incident_id)
    assert code == 0 and json.loads(text)["incidentComponent"][0]["localIncidentIdentifier"] == str(incident_id)
    assert commands.cad_export(settings, incident_id, send=True)[0] == 2  # no webhook configured
    assert commands.cad_export(settings, 999)[0] == 2


def test_checkpoint_then_truncation_is_named_by_verify(settings, engine, tmp_path):
    from sqlalchemy import text

    incident_id = make_incident(engine)
    code, lines = commands.checkpoint(settings)
    assert code == 0 and lines[0] == "checkpoint 1: 1 chains recorded"
    assert settings.resolved_checkpoint_file.is_file()
    assert not settings.resolved_checkpoint_file.resolve().is_relative_to(settings.data_dir.resolve())
    assert commands.verify_chains(settings)[0] == 0
    with Session(engine) as s:
        s.exec(text("DELETE FROM incident_events WHERE incident_id = :i AND seq = 5").bindparams(i=incident_id))
        s.commit()
    code, lines = commands.verify_chains(settings)
    assert code == 1, lines
    assert f"BROKEN incident {incident_id} seq 4: truncated: the checkpoint recorded 5 entries, 4 remain" in lines
    code, lines = commands.checkpoint(settings)  # the checkpointer refuses to bless the shorter chain
    assert code == 1 and f"HELD BACK incident {incident_id}: it no longer extends its last checkpoint" in lines


def test_public_key_and_missing_keys(settings, engine, tmp_path):
    make_incident(engine)  # the engine fixture created the installation's keys
    code, lines = commands.public_key(settings)
    assert code == 0 and lines[0].startswith("-----BEGIN PUBLIC KEY-----\n")
    key_dir = settings.resolved_key_dir
    assert oct(key_dir.stat().st_mode & 0o777) == "0o700"
    assert oct(key_dir.parent.stat().st_mode & 0o777) == "0o700"  # the evidence home it created
    assert oct((key_dir / "keys.json").stat().st_mode & 0o777) == "0o600"
    elsewhere = settings.model_copy(update={"data_dir": tmp_path / "other-data"})
    code, [line] = commands.verify_chains(elsewhere)
    assert code == 2 and line.startswith("no evidence keys at")
