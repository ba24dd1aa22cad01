"""Every read of personal data is on record: one audit entry per request (never one per item),
and a live refresh only when it shows something the person's last recorded view did not."""
from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from models import AuditEntry, Incident, User
from tests.dashboard.conftest import drain, ingest, login, raw_post


def entries(ctx, action: str) -> list[AuditEntry]:
    with Session(ctx.engine) as s:
        return list(s.exec(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def two_incidents(ctx) -> list[int]:
    ingest(ctx, [raw_post("a1", "help my dad collapsed not breathing", author="a1"),
                 raw_post("a2", "house fire flames everywhere people trapped", author="a2")])
    drain(ctx)
    with Session(ctx.engine) as s:
        return sorted(s.exec(select(Incident.id)).all())


def test_incident_list_api_is_audited_once_per_request_naming_the_incidents(ctx, app, users):
    ids = two_incidents(ctx)
    dispatcher = login(app, "dispatcher")
    r = dispatcher.get("/api/v1/incidents")
    assert r.status_code == 200 and sorted(i["id"] for i in r.json()) == ids
    [entry] = entries(ctx, "view_incident_list")
    assert entry.username == "dispatcher"
    assert sorted(entry.detail["incidents"]) == ids and entry.detail["count"] == 2
    dispatcher.get("/api/v1/incidents?status=resolved")
    assert [e.detail["count"] for e in entries(ctx, "view_incident_list")] == [2, 0]


def test_messages_api_is_audited(ctx, app, users):
    ids = two_incidents(ctx)
    officer = login(app, "officer")
    r = officer.get(f"/api/v1/incidents/{ids[0]}/messages")
    assert r.status_code == 200 and len(r.json()) >= 1  # the receipt sent to the reporter
    [entry] = entries(ctx, "view_messages")
    assert (entry.username, entry.object_type, entry.object_id) == ("officer", "incident", str(ids[0]))
    assert entry.detail["count"] == len(r.json())


def test_api_token_reads_are_audited_too(ctx, app, users):
    two_incidents(ctx)
    from dashboard.security import create_user

    with Session(ctx.engine) as s:
        _, token = create_user(s, "cad-bridge", "cad-bridge-password", "dispatcher")
        s.commit()
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    assert client.get("/api/v1/incidents").status_code == 200
    assert [e.username for e in entries(ctx, "view_incident_list")] == ["cad-bridge"]


def test_queue_page_is_audited_and_refreshes_only_when_what_they_show_changes(ctx, app, users):
    ids = two_incidents(ctx)
    dispatcher = login(app, "dispatcher")
    assert dispatcher.get("/queue").status_code == 200
    assert dispatcher.get("/queue/rows").status_code == 200  # shows the same: no further entry
    assert dispatcher.get("/queue/rows").status_code == 200
    [page] = entries(ctx, "view_queue")
    assert page.username == "dispatcher" and sorted(page.detail["incidents"]) == ids
    assert page.detail["refresh"] is False
    ingest(ctx, [raw_post("a3", "man with a knife attacking people outside the station", author="a3")])
    drain(ctx)
    dispatcher.get("/queue/rows")  # a new incident shown: recorded once
    dispatcher.get("/queue/rows")
    rows = entries(ctx, "view_queue")
    assert [(r.detail["refresh"], r.detail["count"]) for r in rows] == [(False, 2), (True, 3)]
    dispatcher.get("/queue")  # a page load is always recorded
    assert len(entries(ctx, "view_queue")) == 3
    # Another person's view is theirs: their first refresh is recorded even though nothing changed.
    supervisor = login(app, "supervisor")
    supervisor.get("/queue/rows")
    assert [r.username for r in entries(ctx, "view_queue")][-1] == "supervisor"


def test_the_staff_list_is_audited_per_view(ctx, app, users):
    admin = login(app, "admin")
    assert admin.get("/admin").status_code == 200
    assert admin.get("/admin").status_code == 200
    rows = entries(ctx, "view_users")
    assert [r.username for r in rows] == ["admin", "admin"]
    with Session(ctx.engine) as s:
        assert rows[0].detail["users"] == sorted(s.exec(select(User.id)).all())
