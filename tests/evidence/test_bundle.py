"""Export → verify round-trips; any change to a bundle file is detected."""
from __future__ import annotations

import json
import zipfile

import pytest
from sqlmodel import Session, select

from evidence.bundle import ExportError, export_incident, verify_bundle
from evidence.hashes import sha256_bytes
from evidence_test_helpers import LOCATION, PAYLOAD_A, PAYLOAD_B, PHOTO, make_incident
from models.enums import EventKind
from models.tables import IncidentEvent, Post


def _rewrite(src, dst, name: str, data: bytes, fix_manifest: bool = False) -> None:
    """Copy a bundle replacing one member (optionally re-hashing it in the manifest, as a forger would)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        manifest = json.loads(zin.read("manifest.json"))
        if fix_manifest:
            for f in manifest["files"]:
                if f["path"] == name:
                    f["sha256"], f["bytes"] = sha256_bytes(data), len(data)
        for item in zin.namelist():
            if item == "manifest.json":
                zout.writestr(item, json.dumps(manifest) if fix_manifest else zin.read(item))
            else:
                zout.writestr(item, data if item == name else zin.read(item))


@pytest.fixture
def bundle(engine, tmp_path, evidence_keys):
    media = tmp_path / "media"
    incident_id = make_incident(engine, media)
    result = export_incident(engine, incident_id, tmp_path / "out" / "bundle.zip", media, evidence_keys, actor="sam")
    return incident_id, result


def test_export_contains_everything_and_verifies(engine, bundle, evidence_keys):
    incident_id, result = bundle
    report = verify_bundle(result.path, evidence_keys.public_key, engine)
    assert report.ok and report.first_mismatch is None and report.files_checked == result.files
    with zipfile.ZipFile(result.path) as zf:
        names = set(zf.namelist())
        with Session(engine) as s:
            ids = {p.external_id: p.id for p in s.exec(select(Post))}
        # Raw payloads byte-for-byte as received.
        assert zf.read(f"posts/{ids['a1']}/payload.raw") == PAYLOAD_A.encode()
        assert zf.read(f"posts/{ids['b2']}/payload.raw") == PAYLOAD_B.encode()
        [photo] = [n for n in names if n.endswith("photo-1.png")]
        assert zf.read(photo) == PHOTO
        items = json.loads(zf.read("media/items.json"))
        assert [(i["kind"], i["data"]) for i in items if not i["has_file"]] == [("location", LOCATION)]
        triage = json.loads(zf.read(f"triage/{ids['a1']}.json"))
        assert triage["reasons"] == ["phrase 'fire' (fire)", "urgency cue 'help!'"]
        assert {"incident.json", "events.jsonl", "messages.json", "cad_deliveries.json"} <= names
        assert len(json.loads(zf.read("messages.json"))) == 1
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["chain"]["verified"] is True and manifest["exported_by"] == "sam"
    with Session(engine) as s:
        exported = s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id,
                                                      IncidentEvent.kind == EventKind.exported.value)).one()
        assert exported.actor == "sam"
        assert exported.data["manifest_sha256"] == result.manifest_sha256
        assert exported.data["chain_head"] == manifest["chain"]["head_hash"]


def test_unpacked_bundle_verifies(bundle, tmp_path, evidence_keys):
    _, result = bundle
    with zipfile.ZipFile(result.path) as zf:
        zf.extractall(tmp_path / "unpacked")
    assert verify_bundle(tmp_path / "unpacked", evidence_keys.public_key).ok
    (tmp_path / "unpacked" / "messages.json").write_text("[]\n")
    assert verify_bundle(tmp_path / "unpacked", evidence_keys.public_key).first_mismatch == "messages.json: SHA-256 differs from the manifest"


@pytest.mark.parametrize("member", ["photo", "media/items.json", "events.jsonl", "incident.json", "messages.json"])
def test_changed_member_is_detected(bundle, tmp_path, member, evidence_keys):
    _, result = bundle
    with zipfile.ZipFile(result.path) as zf:
        if member == "photo":
            [member] = [n for n in zf.namelist() if n.endswith("photo-1.png")]
        data = bytearray(zf.read(member))
    data[len(data) // 2] ^= 0x20
    forged = tmp_path / "forged.zip"
    _rewrite(result.path, forged, member, bytes(data))
    report = verify_bundle(forged, evidence_keys.public_key)
    assert not report.ok and report.first_mismatch.startswith(member)


def test_payload_forged_together_with_manifest_fails_the_signature(engine, bundle, tmp_path, evidence_keys):
    _, result = bundle
    with Session(engine) as s:
        post_id = s.exec(select(Post.id).where(Post.external_id == "a1")).one()
    name = f"posts/{post_id}/payload.raw"
    forged = tmp_path / "forged.zip"
    _rewrite(result.path, forged, name, PAYLOAD_A.replace("07700", "07711").encode(), fix_manifest=True)
    assert "signature does not match" in verify_bundle(forged, evidence_keys.public_key).first_mismatch


def test_file_forged_together_with_manifest_fails_the_signature(engine, bundle, tmp_path, evidence_keys):
    _, result = bundle
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(result.path) as zf:
        data = zf.read("messages.json")
    _rewrite(result.path, forged, "messages.json", data + b" ", fix_manifest=True)
    # Re-hashing the manifest does not help a forger: it no longer matches its signature.
    assert "signature does not match" in verify_bundle(forged, evidence_keys.public_key).first_mismatch


def test_extra_file_is_detected(bundle, tmp_path, evidence_keys):
    _, result = bundle
    forged = tmp_path / "forged.zip"
    _rewrite(result.path, forged, "x", b"")
    with zipfile.ZipFile(forged, "a") as zf:
        zf.writestr("posts/999/payload.raw", b"{}")
    assert verify_bundle(forged, evidence_keys.public_key).first_mismatch == "posts/999/payload.raw: present but not listed in the manifest"


def test_missing_incident_is_an_error(engine, tmp_path, evidence_keys):
    with pytest.raises(ExportError):
        export_incident(engine, 12345, tmp_path / "b.zip", None, evidence_keys)


def test_post_split_into_another_incident_stays_in_both_bundles(engine, tmp_path, evidence_keys):
    from models.events import append_event
    from models.tables import Incident, IncidentPost

    source_id = make_incident(engine)
    with Session(engine) as s:  # what a split does: move the membership, record it in the new chain
        post = s.exec(select(Post).where(Post.external_id == "b2")).one()
        new = Incident(status="new", urgency="high")
        s.add(new)
        s.flush()
        append_event(s, new.id, EventKind.opened, "disp", {"reason": f"split from incident {source_id}"})
        membership = s.exec(select(IncidentPost).where(IncidentPost.post_id == post.id)).one()
        membership.incident_id = new.id
        s.add(membership)
        append_event(s, new.id, EventKind.post_attached, "disp", {"post_id": post.id, "from_incident": source_id})
        s.commit()
        post_id, new_id = post.id, new.id
    for incident_id in (source_id, new_id):
        result = export_incident(engine, incident_id, tmp_path / f"{incident_id}.zip", None, evidence_keys)
        assert verify_bundle(result.path, evidence_keys.public_key, engine).ok
        with zipfile.ZipFile(result.path) as zf:
            assert zf.read(f"posts/{post_id}/payload.raw") == PAYLOAD_B.encode()
