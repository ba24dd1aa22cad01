"""The /api/v1 action endpoints: bearer auth, capability checks, 409 with the reason, JSON shapes."""
from __future__ import annotations

import pytest
from esc_helpers import drain, make_user, new_post, open_critical, triage
from fastapi.testclient import TestClient

from dashboard.app import create_app


@pytest.fixture
def client(ctx):
    with TestClient(create_app(ctx.settings, ctx)) as c:
        yield c


@pytest.fixture
def dispatcher(ctx):
    return {"authorization": f"Bearer {make_user(ctx, 'alice')[1]}"}


@pytest.fixture
def officer(ctx):
    return {"authorization": f"Bearer {make_user(ctx, 'olga', role='officer')[1]}"}


def test_incident_lifecycle_over_the_api(ctx, client, dispatcher):
    make_user(ctx, "bob")
    incident_id = open_critical(ctx)
    r = client.post(f"/api/v1/incidents/{incident_id}/claim", headers=dispatcher)
    assert r.status_code == 200 and r.json()["claimed_by"] == "alice"
    r = client.post(f"/api/v1/incidents/{incident_id}/reassign", json={"to_username": "bob"}, headers=dispatcher)
    assert r.status_code == 200 and r.json()["claimed_by"] == "bob"
    r = client.post(f"/api/v1/incidents/{incident_id}/release", headers=dispatcher)
    assert r.status_code == 409 and "claimed by bob" in r.json()["detail"]
    r = client.post(f"/api/v1/incidents/{incident_id}/resolve", json={"note": "done"}, headers=dispatcher)
    assert r.status_code == 409 and "claimed by bob" in r.json()["detail"]  # bob's: take it over first
    r = client.post(f"/api/v1/incidents/{incident_id}/take-over", headers=dispatcher)
    assert r.json() == {"ok": True, "incident_id": incident_id, "claimed_by": "alice", "taken_from": "bob"}
    r = client.post(f"/api/v1/incidents/{incident_id}/resolve", json={"note": "done"}, headers=dispatcher)
    assert r.json() == {"ok": True, "incident_id": incident_id, "status": "resolved"}
    assert client.post(f"/api/v1/incidents/{incident_id}/close", headers=dispatcher).status_code == 200
    r = client.post(f"/api/v1/incidents/{incident_id}/false-alarm", headers=dispatcher)
    assert r.status_code == 409 and "already closed" in r.json()["detail"]


def test_messages_endpoint_shows_delivery_status(ctx, client, dispatcher):
    incident_id = open_critical(ctx, text="he collapsed outside the library")
    post_id = client.get(f"/api/v1/incidents/{incident_id}", headers=dispatcher).json()["posts"][0]["id"]
    r = client.post(f"/api/v1/incidents/{incident_id}/reply", headers=dispatcher,
                    json={"post_id": post_id, "text": "he collapsed outside the library?", "kind": "public_reply"})
    assert r.status_code == 409 and "must not repeat" in r.json()["detail"]
    r = client.post(f"/api/v1/incidents/{incident_id}/reply", headers=dispatcher,
                    json={"post_id": post_id, "text": "Is he breathing? Reply yes or no."})
    message_id = r.json()["message_id"]
    drain(ctx)
    msgs = client.get(f"/api/v1/incidents/{incident_id}/messages", headers=dispatcher).json()
    assert [(m["purpose"], m["status"]) for m in msgs] == [("receipt", "sent"), ("manual", "sent")]
    assert msgs[1]["id"] == message_id and msgs[1]["created_by"] == "alice"
    assert client.get("/api/v1/incidents/999999/messages", headers=dispatcher).status_code == 404


def test_merge_and_split_over_the_api(ctx, client, dispatcher):
    a, b = open_critical(ctx, text="crash A"), open_critical(ctx, text="crash B")
    r = client.post("/api/v1/incidents/merge", json={"incident_ids": [a, b]}, headers=dispatcher)
    assert r.json()["incident_id"] == a
    posts = [p["id"] for p in client.get(f"/api/v1/incidents/{a}", headers=dispatcher).json()["posts"]]
    r = client.post(f"/api/v1/incidents/{a}/split", json={"post_ids": posts[1:]}, headers=dispatcher)
    assert r.status_code == 200 and r.json()["split_from"] == a and r.json()["incident_id"] not in (a, b)


def test_officer_post_actions_and_role_checks(ctx, client, officer, dispatcher):
    post_id = new_post(ctx, "is that smoke from the school roof?")
    triage(ctx, post_id, "low", category="other")
    r = client.post(f"/api/v1/posts/{post_id}/escalate", json={"urgency": "critical"}, headers=officer)
    assert r.status_code == 200
    incident_id = r.json()["incident_id"]
    other = new_post(ctx, "smoke near the school")
    r = client.post(f"/api/v1/posts/{other}/attach", json={"incident_id": incident_id}, headers=officer)
    assert r.status_code == 200
    third = new_post(ctx, "where do I report graffiti")
    r = client.post(f"/api/v1/posts/{third}/dispose", json={"disposition": "redirected"}, headers=officer)
    assert r.status_code == 200
    r = client.post(f"/api/v1/posts/{third}/dispose", json={"disposition": "binned"}, headers=officer)
    assert r.status_code == 409
    # Officers watch the feed; they do not resolve incidents or answer reporters.
    assert client.post(f"/api/v1/incidents/{incident_id}/resolve", headers=officer).status_code == 403
    assert client.post(f"/api/v1/incidents/{incident_id}/claim", headers=officer).status_code == 403
    assert client.get(f"/api/v1/incidents/{incident_id}/messages").status_code == 401
    queue = client.get("/api/v1/queue", params={"console": "desk1"}, headers=dispatcher).json()
    assert [e["incident_id"] for e in queue] == [incident_id]


def test_session_calls_need_the_csrf_token(ctx, client):
    incident_id = open_critical(ctx)
    r = client.post(f"/api/v1/incidents/{incident_id}/claim")
    assert r.status_code in (401, 403)
