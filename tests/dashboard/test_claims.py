"""A claim is respected: a colleague cannot acknowledge or finish an incident someone else has
claimed; an explicit take-over (audited, in the incident's event log) hands it over."""
from __future__ import annotations

import pytest
from sqlmodel import Session, select

from models import AuditEntry, Incident, IncidentEvent, IncidentPost, OutboundMessage
from models.events import verify_chain
from tests.dashboard.conftest import drain, ingest, login, raw_post
from tests.dashboard.test_dashboard_browser import CHROMIUM, browser, sign_in  # noqa: F401


def api(client, path: str, **body):
    return client.post(path, json=body or None, headers={"X-CSRF-Token": client.csrf})


def queued_incident(ctx, ext: str = "c1") -> int:
    ingest(ctx, [raw_post(ext, "help my dad collapsed not breathing", author=ext)])
    drain(ctx)
    with Session(ctx.engine) as s:
        incident = s.exec(select(Incident).order_by(Incident.id.desc())).first()
        assert incident.status == "queued"
        return incident.id


def test_a_colleagues_claim_blocks_acknowledge_and_resolve_until_taken_over(ctx, app, users, evidence_keys):
    incident_id = queued_incident(ctx)
    supervisor, dispatcher = login(app, "supervisor"), login(app, "dispatcher")
    assert api(dispatcher, f"/api/v1/incidents/{incident_id}/claim").status_code == 200
    # the supervisor's acknowledge, resolve, close and false alarm are all refused, and change nothing
    for action in ("acknowledge", "resolve", "close", "false-alarm"):
        r = api(supervisor, f"/api/v1/incidents/{incident_id}/{action}")
        assert r.status_code == 409, (action, r.text)
        assert "claimed by dispatcher" in r.json()["detail"] and "take it over" in r.json()["detail"]
    with Session(ctx.engine) as s:
        incident = s.get(Incident, incident_id)
        assert (incident.status, incident.claimed_by, incident.resolved_at) == ("acknowledged", "dispatcher", None)
    # the page forms say so too
    r = supervisor.post(f"/incidents/{incident_id}/resolve", data={"csrf_token": supervisor.csrf},
                        headers={"X-Requested-With": "flare"})
    assert r.status_code == 409 and "claimed by dispatcher" in r.json()["detail"]

    r = api(supervisor, f"/api/v1/incidents/{incident_id}/take-over")
    assert r.status_code == 200 and r.json()["taken_from"] == "dispatcher"
    with Session(ctx.engine) as s:
        assert s.get(Incident, incident_id).claimed_by == "supervisor"
        events = list(s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)))
        [taken] = [e for e in events if e.kind == "taken_over"]
        assert (taken.actor, taken.data["from"], taken.data["to"]) == ("supervisor", "dispatcher", "supervisor")
        assert taken.data["incident_state"]["status"] == "acknowledged"
        assert verify_chain(events, evidence_keys.hmac_key) is None
        [audited] = s.exec(select(AuditEntry).where(AuditEntry.action == "taken_over")).all()
        assert (audited.username, audited.object_id, audited.detail) == ("supervisor", str(incident_id),
                                                                          {"from": "dispatcher"})
    # now the dispatcher is the one who must take it back
    assert api(dispatcher, f"/api/v1/incidents/{incident_id}/resolve").status_code == 409
    assert api(supervisor, f"/api/v1/incidents/{incident_id}/resolve").status_code == 200
    with Session(ctx.engine) as s:
        assert s.get(Incident, incident_id).status == "resolved"


def test_the_claimer_acts_freely_and_take_over_needs_a_colleagues_claim(ctx, app, users):
    incident_id = queued_incident(ctx)
    dispatcher = login(app, "dispatcher")
    r = api(dispatcher, f"/api/v1/incidents/{incident_id}/take-over")
    assert r.status_code == 409 and "not claimed" in r.json()["detail"]
    assert api(dispatcher, f"/api/v1/incidents/{incident_id}/acknowledge").status_code == 200  # claims it too
    assert api(dispatcher, f"/api/v1/incidents/{incident_id}/acknowledge").status_code == 200  # idempotent for them
    r = api(dispatcher, f"/api/v1/incidents/{incident_id}/take-over")
    assert r.status_code == 409 and "already yours" in r.json()["detail"]
    assert api(dispatcher, f"/api/v1/incidents/{incident_id}/resolve", note="unit on scene").status_code == 200
    # a released incident is anyone's again
    other = queued_incident(ctx, "c2")
    supervisor = login(app, "supervisor")
    assert api(dispatcher, f"/api/v1/incidents/{other}/claim").status_code == 200
    assert api(dispatcher, f"/api/v1/incidents/{other}/release").status_code == 200
    assert api(supervisor, f"/api/v1/incidents/{other}/resolve").status_code == 200



def test_a_colleagues_claim_blocks_reply_merge_and_split(ctx, app, users):
    claimed = queued_incident(ctx, "c1")
    other = queued_incident(ctx, "c3")
    dispatcher, supervisor = login(app, "dispatcher"), login(app, "supervisor")
    assert api(dispatcher, f"/api/v1/incidents/{claimed}/claim").status_code == 200
    with Session(ctx.engine) as s:
        members = [row.post_id for row in s.exec(select(IncidentPost).where(IncidentPost.incident_id == claimed))]
        messages_before = len(s.exec(select(OutboundMessage)).all())
    refused = {
        "reply": api(supervisor, f"/api/v1/incidents/{claimed}/reply", post_id=members[0],
                     text="Help is on the way.", kind="dm"),
        "merge": api(supervisor, "/api/v1/incidents/merge", incident_ids=[claimed, other]),
        # the claim is checked before anything else: the split would be refused for it first
        "split": api(supervisor, f"/api/v1/incidents/{claimed}/split", post_ids=members[-1:]),
    }
    for action, r in refused.items():
        assert r.status_code == 409, (action, r.text)
        assert "claimed by dispatcher" in r.json()["detail"], action
    with Session(ctx.engine) as s:  # nothing changed: no message, both incidents open, members in place
        assert len(s.exec(select(OutboundMessage)).all()) == messages_before
        assert s.get(Incident, other).status == "queued"
        assert {row.post_id for row in s.exec(select(IncidentPost).where(IncidentPost.incident_id == claimed))} \
            == set(members)
    # the claimer may do all three
    assert api(dispatcher, f"/api/v1/incidents/{claimed}/reply", post_id=members[0], text="Help is on the way.",
               kind="dm").status_code == 200
    assert api(dispatcher, "/api/v1/incidents/merge", incident_ids=[claimed, other]).status_code == 200


@pytest.mark.browser
@pytest.mark.timeout(120)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")
def test_take_over_button_in_the_browser(ctx, users, server, browser):  # noqa: F811
    incident_id = queued_incident(ctx)
    context, page = sign_in(browser, server, "dispatcher")
    page.goto(f"/incidents/{incident_id}")
    page.locator("form[action$='/claim'] button").click()
    page.wait_for_url(f"**/incidents/{incident_id}")
    context.close()
    context, page = sign_in(browser, server, "supervisor")
    page.goto(f"/incidents/{incident_id}")
    assert "Claimed by dispatcher" in page.locator(".claimed-note").inner_text()
    page.locator("form.closing button", has_text="Resolve").click()  # refused, with the reason
    page.wait_for_url(f"**/incidents/{incident_id}")
    assert "claimed by dispatcher" in page.locator("body").inner_text()
    with Session(ctx.engine) as s:
        assert s.get(Incident, incident_id).status == "acknowledged"
    page.locator("form.take-over button").click()
    page.wait_for_url(f"**/incidents/{incident_id}")
    assert "taken over" in page.locator("body").inner_text()
    assert page.locator("form.take-over").count() == 0 and page.locator("form[action$='/release']").count() == 1
    assert "taken over from dispatcher by supervisor" in page.locator("body").inner_text()  # the timeline
    page.locator("form.closing button", has_text="Resolve").click()
    page.wait_for_url(f"**/incidents/{incident_id}")
    with Session(ctx.engine) as s:
        assert s.get(Incident, incident_id).status == "resolved"
    context.close()
