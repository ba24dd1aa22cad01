"""Evidence routes: supervisors download a verifiable bundle (CSRF-checked, audited); anyone who may
view incidents gets a redacted post; the rest are refused."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from dashboard.app import create_app
from flows.context import AppContext
from dashboard.security import create_user
from evidence.bundle import verify_bundle
from evidence_test_helpers import make_incident
from models.tables import AuditEntry, Post


@pytest.fixture
def app_ctx(settings):
    ctx = AppContext.build(settings)
    yield ctx
    ctx.close()


@pytest.fixture
def client(settings, app_ctx):
    with TestClient(create_app(settings, app_ctx)) as c:
        yield c


def _user(engine, name: str, role: str) -> str:
    with Session(engine) as s:
        _, token = create_user(s, name, f"pw-{name}-123456", role)
        s.commit()
    return token


def test_supervisor_downloads_a_bundle_that_verifies(client, app_ctx, tmp_path):
    incident_id = make_incident(app_ctx.engine)
    token = _user(app_ctx.engine, "sue", "supervisor")
    r = client.post(f"/incidents/{incident_id}/evidence-export", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    bundle = tmp_path / "downloaded.zip"
    bundle.write_bytes(r.content)
    assert verify_bundle(bundle, app_ctx.evidence_keys.public_key, app_ctx.engine).ok
    with Session(app_ctx.engine) as s:
        entry = s.exec(select(AuditEntry).where(AuditEntry.action == "evidence_export")).one()
        assert (entry.username, entry.object_id) == ("sue", str(incident_id))
        assert entry.detail["manifest_sha256"] == r.headers["x-manifest-sha256"]


def test_export_refused_without_capability_or_csrf(client, app_ctx):
    incident_id = make_incident(app_ctx.engine)
    dispatcher = _user(app_ctx.engine, "dan", "dispatcher")
    r = client.post(f"/incidents/{incident_id}/evidence-export", headers={"Authorization": f"Bearer {dispatcher}"})
    assert r.status_code == 403
    _user(app_ctx.engine, "sal", "supervisor")
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post("/login", data={"username": "sal", "password": "pw-sal-123456", "csrf_token": csrf},
                follow_redirects=False)
    assert client.post(f"/incidents/{incident_id}/evidence-export").status_code == 403  # no CSRF token
    session_csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    ok = client.post(f"/incidents/{incident_id}/evidence-export", headers={"X-CSRF-Token": session_csrf})
    assert ok.status_code == 200
    assert client.post("/incidents/999/evidence-export", headers={"X-CSRF-Token": session_csrf}).status_code == 404


def test_redacted_post_view_masks_personal_data_and_is_audited(client, app_ctx):
    make_incident(app_ctx.engine)
    token = _user(app_ctx.engine, "olly", "officer")
    with Session(app_ctx.engine) as s:
        post = Post(platform="x", external_id="r1", author_handle="@jo_reporter", author_name="Jo Bloggs",
                    text="Jo Bloggs here, fire at 12 High Street LS1 4AP, call 07700 900123 or jo@example.com",
                    raw_payload="{}", geo_lat=53.799712, geo_lon=-1.549181)
        s.add(post)
        s.commit()
        post_id = post.id
    r = client.get(f"/api/v1/posts/{post_id}/redacted", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    body = r.json()
    for secret in ("07700", "jo@example.com", "12 High Street", "LS1 4AP", "jo_reporter", "Bloggs"):
        assert secret not in r.text
    assert "[phone]" in body["text"] and "[email]" in body["text"] and "fire" in body["text"]
    assert body["approximate_location"] == {"lat": 53.8, "lon": -1.55}
    with Session(app_ctx.engine) as s:
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "view_post_redacted")).one().username == "olly"
    field = _user(app_ctx.engine, "fay", "field")
    assert client.get(f"/api/v1/posts/{post_id}/redacted", headers={"Authorization": f"Bearer {field}"}).status_code == 403


def _login(client, username: str) -> str:
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": username, "password": f"pw-{username}-123456", "csrf_token": csrf},
                follow_redirects=False)
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)


def test_incident_page_offers_the_export_button_to_supervisors_only(client, app_ctx):
    incident_id = make_incident(app_ctx.engine)
    _user(app_ctx.engine, "sid", "supervisor")
    _user(app_ctx.engine, "dot", "dispatcher")
    csrf = _login(client, "sid")
    page = client.get(f"/incidents/{incident_id}")
    assert page.status_code == 200 and f'action="/incidents/{incident_id}/evidence-export"' in page.text
    # The button's form (form-encoded CSRF field) works as the header does.
    r = client.post(f"/incidents/{incident_id}/evidence-export", data={"csrf_token": csrf})
    assert r.status_code == 200 and r.content[:2] == b"PK"
    client.post("/logout", data={"csrf_token": csrf})
    _login(client, "dot")
    assert "evidence-export" not in client.get(f"/incidents/{incident_id}").text


def test_worker_checkpoint_runs_once_per_interval_and_seals_the_export_audit(client, app_ctx, settings):
    from flows.sweep import try_checkpoint
    from evidence.chain import verify_all
    from evidence.checkpoint import read_checkpoints

    incident_id = make_incident(app_ctx.engine)
    with Session(app_ctx.engine) as s:
        s.add(AuditEntry(username="sup", action="evidence_export", object_type="incident",
                         object_id=str(incident_id)))
        s.commit()
    first = try_checkpoint(app_ctx)
    assert first is not None and first.written and first.audit_sealed == 1
    assert try_checkpoint(app_ctx) is None  # another process (or this one) did within the interval
    state = read_checkpoints(settings.resolved_checkpoint_file, app_ctx.evidence_keys.public_key)
    assert state.count == 1 and state.audit[0] == 1 and incident_id in state.incidents
    assert verify_all(app_ctx.engine, None, state).ok
