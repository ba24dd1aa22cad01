"""Signed bundles: verified offline with only the bundle and a public key; every edit is caught;
malformed input gives a clear reason, never a traceback."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from evidence import commands
from evidence.bundle import export_incident, verify_bundle
from evidence.hashes import sha256_bytes
from evidence.keys import load_or_create_keys
from evidence_test_helpers import make_incident

REPO = Path(__file__).resolve().parents[2]


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _forge(members: dict[str, bytes], name: str, data: bytes, keys=None) -> dict[str, bytes]:
    """Replace one member, fix its manifest entry and (with keys) re-sign the manifest."""
    out = dict(members)
    out[name] = data
    manifest = json.loads(out["manifest.json"])
    for entry in manifest["files"]:
        if entry["path"] == name:
            entry["sha256"], entry["bytes"] = sha256_bytes(data), len(data)
    out["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    if keys is not None:
        out["signature.json"] = _signature(out["manifest.json"], keys)
    return out


def _signature(manifest: bytes, keys) -> bytes:
    return json.dumps({"format": "flare-evidence-signature/1", "algorithm": "ed25519", "key_id": keys.key_id,
                       "public_key": keys.public_pem.decode(), "manifest_sha256": sha256_bytes(manifest),
                       "signature": keys.sign(manifest)}).encode()


@pytest.fixture
def bundle(engine, evidence_keys, tmp_path) -> Path:
    incident_id = make_incident(engine, tmp_path / "media")
    return export_incident(engine, incident_id, tmp_path / "bundle.zip", tmp_path / "media", evidence_keys).path


@pytest.fixture
def public_key_file(evidence_keys, tmp_path) -> Path:
    path = tmp_path / "flare-public.pem"
    path.write_bytes(evidence_keys.public_pem)
    return path


def test_offline_verification_needs_only_the_bundle_and_the_public_key(bundle, public_key_file):
    code, [line] = commands.check_bundle(None, bundle, public_key_file)
    assert code == 0 and "intact" in line and "signature valid" in line


def test_a_different_public_key_is_refused(bundle, tmp_path):
    other = load_or_create_keys(tmp_path / "other")
    report = verify_bundle(bundle, other.public_key)
    assert not report.ok and "not by the given public key" in report.first_mismatch


def test_resigned_with_another_key_is_refused(bundle, evidence_keys, tmp_path):
    """A forger can sign with their own key and embed it; the court checks with ours."""
    other = load_or_create_keys(tmp_path / "other")
    members = _members(bundle)
    forged = _write(tmp_path / "f.zip", _forge(members, "messages.json", b"[]\n", other))
    assert verify_bundle(forged, other.public_key).ok  # self-consistent under the forger's key...
    assert not verify_bundle(forged, evidence_keys.public_key).ok  # ...not under ours


@pytest.mark.parametrize("name", ["incident.json", "messages.json", "events.jsonl", "cad_deliveries.json",
                                  "media/items.json", "post.json", "triage"])
@pytest.mark.parametrize("fix_manifest", [False, True])
def test_every_edited_member_is_detected(bundle, evidence_keys, tmp_path, name, fix_manifest):
    members = _members(bundle)
    if name in ("post.json", "triage"):
        name = next(n for n in members if n.endswith("/post.json") or (name == "triage" and n.startswith("triage/")))
    data = members[name] + b" "
    forged = dict(members, **{name: data}) if not fix_manifest else _forge(members, name, data)
    report = verify_bundle(_write(tmp_path / "f.zip", forged), evidence_keys.public_key)
    assert not report.ok
    expected = "signature does not match" if fix_manifest else f"{name}: SHA-256 differs from the manifest"
    assert expected in report.first_mismatch


@pytest.mark.parametrize("change", ["drop-signature", "flip-signature", "drop-member", "edit-manifest"])
def test_signature_and_membership_damage_is_detected(bundle, evidence_keys, tmp_path, change):
    members = _members(bundle)
    if change == "drop-signature":
        members.pop("signature.json")
    elif change == "flip-signature":
        sig = json.loads(members["signature.json"])
        sig["signature"] = sig["signature"][:10] + ("A" if sig["signature"][10] != "A" else "B") + sig["signature"][11:]
        members["signature.json"] = json.dumps(sig).encode()
    elif change == "drop-member":
        members.pop("messages.json")
    else:
        members["manifest.json"] = members["manifest.json"].replace(b'"exported_by": "system"', b'"exported_by": "x"')
        members["manifest.json"] += b" "
    report = verify_bundle(_write(tmp_path / "f.zip", members), evidence_keys.public_key)
    assert not report.ok and report.first_mismatch


# ----------------------------------------------------------------------------- malformed
MALFORMED = {
    "manifest-not-json": {"manifest.json": b"{nope"},
    "manifest-a-list": {"manifest.json": b"[1, 2]"},
    "files-not-a-list": {"manifest.json": b'{"format": "flare-evidence-bundle/2", "files": 3}'},
    "file-entry-escapes": {"manifest.json": json.dumps({"format": "flare-evidence-bundle/2", "incident_id": 1,
                                                        "files": [{"path": "../../etc/passwd", "sha256": "0"}]}).encode()},
    "file-entry-not-object": {"manifest.json": b'{"format": "flare-evidence-bundle/2", "files": ["x"]}'},
    "unknown-format": {"manifest.json": b'{"format": "something/9"}'},
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_manifest_gives_a_clear_reason(evidence_keys, tmp_path, case):
    members = dict(MALFORMED[case])
    members["signature.json"] = _signature(members["manifest.json"], evidence_keys)
    report = verify_bundle(_write(tmp_path / "m.zip", members), evidence_keys.public_key)
    assert not report.ok and report.first_mismatch.startswith("malformed bundle: manifest.json")


@pytest.mark.parametrize("member, data", [
    ("events.jsonl", b"{not json}\n"), ("events.jsonl", b'{"seq": "1"}\n'), ("events.jsonl", b"\xff\xfe\n"),
    ("events.jsonl", b'{"incident_id": 1, "seq": 1, "kind": "x", "actor": "a", "at": "yesterday", "data": {},'
                     b' "prev_hash": "", "hash": ""}\n'),
    ("media/items.json", b'{"not": "a list"}'), ("media/items.json", b"[1, 2]"),
])
def test_malformed_members_give_a_clear_reason(bundle, evidence_keys, tmp_path, member, data):
    forged = _forge(_members(bundle), member, data, evidence_keys)
    report = verify_bundle(_write(tmp_path / "m.zip", forged), evidence_keys.public_key)
    assert not report.ok and report.first_mismatch.startswith(f"malformed bundle: {member}")


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", os.urandom(512), b"plain text"])
def test_not_a_zip_is_reported(evidence_keys, tmp_path, content):
    path = tmp_path / "x.zip"
    path.write_bytes(content)
    report = verify_bundle(path, evidence_keys.public_key)
    assert not report.ok and "not a readable zip file" in report.first_mismatch


def test_truncated_bundle_is_reported(bundle, evidence_keys, tmp_path):
    data = bundle.read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(data[: len(data) // 2])
    report = verify_bundle(cut, evidence_keys.public_key)
    assert not report.ok and report.first_mismatch.startswith("malformed bundle")


def test_bad_public_key_file_and_missing_bundle(bundle, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    code, [line] = commands.check_bundle(None, bundle, bad)
    assert code == 2 and "not a PEM public key" in line
    assert commands.check_bundle(None, bundle, tmp_path / "nope.pem")[0] == 2
    assert commands.check_bundle(None, tmp_path / "nope.zip", bad)[0] == 2
    assert commands.check_bundle(None, bundle, None)[0] == 2  # offline needs a key


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(member=st.sampled_from(["manifest.json", "signature.json", "events.jsonl", "media/items.json",
                               "incident.json"]),
       resign=st.booleans(),
       data=st.one_of(st.binary(max_size=300),
                      st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                                   lambda inner: st.lists(inner, max_size=4)
                                   | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                                   max_leaves=12).map(lambda v: json.dumps(v).encode())))
def test_any_member_content_gives_a_report_not_an_exception(bundle, evidence_keys, tmp_path, member, resign, data):
    """Whatever a member holds: a report, never an exception. Without our key (no re-signing)
    no change is ever accepted."""
    members = _members(bundle)
    if member == "manifest.json":
        forged = dict(members, **{"manifest.json": data})
        if resign:
            forged["signature.json"] = _signature(data, evidence_keys)
    elif member == "signature.json":
        forged = dict(members, **{"signature.json": data})
    else:
        forged = _forge(members, member, data, evidence_keys if resign else None)
    report = verify_bundle(_write(tmp_path / "h.zip", forged), evidence_keys.public_key)
    assert isinstance(report.ok, bool) and (report.ok or report.first_mismatch)
    if not resign and data != members.get(member):
        assert not report.ok


def test_cli_verify_bundle_reports_malformed_input_without_a_traceback(evidence_keys, tmp_path, public_key_file):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"definitely not a bundle")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "runtime", "evidence", "verify-bundle", str(junk),
                           "--public-key", str(public_key_file)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 1 and "malformed bundle" in done.stdout
    assert "Traceback" not in done.stderr + done.stdout
