"""Incidents a dispatcher can trust, in Debian Chromium: each defect a new user met, reproduced.

Posts go through the real path (intake, the full triage pipeline with its model, batch grouping,
the dispatch stream, sending through a platform double); the dispatcher, the reporter's phone and
the monitoring officer use the dashboard in the browser. Jobs run when the test drains an RQ
SimpleWorker, exactly as a worker would.
"""
from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

import pytest
from sqlmodel import Session, select

from flows.context import AppContext, set_process_context
from escalation import messages
from models import DeliveryReceipt, Incident, IncidentPost, OutboundMessage, Post
from tests.dashboard import conftest as dashboard_fixtures
from tests.dashboard.conftest import PASSWORDS, drain, ingest, raw_post

# The dashboard tests' app, users (one per role) and uvicorn server, over this module's ctx.
app, users, server = dashboard_fixtures.app, dashboard_fixtures.users, dashboard_fixtures.server

CHROMIUM = Path("/usr/bin/chromium")
# Shared with the triage and burst tests: the ONNX encoder is exported once per machine.
MODEL_CACHE = Path(tempfile.gettempdir()) / "flare-triage-test-models"
FIX = {"latitude": 53.8008, "longitude": -1.5491, "accuracy": 15}  # the reporter's phone

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(240),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]


class Platform:
    """A platform double that records what Flare sent; DMs to `closed` accounts fail for good,
    after `refuse_seconds` (a platform slow to refuse)."""

    platform = "x"

    def __init__(self) -> None:
        self.sent: list = []
        self.closed: set[str] = set()
        self.refuse_seconds = 0.0

    def supports_dm(self, request) -> bool:
        return True

    def send(self, request) -> DeliveryReceipt:
        self.sent.append(request)
        if request.kind == "dm" and request.recipient_id in self.closed:
            time.sleep(self.refuse_seconds)
            return DeliveryReceipt(ok=False, error="403 Forbidden: you cannot send messages to this user",
                                   retryable=False)
        return DeliveryReceipt(ok=True, platform_message_id=f"m{len(self.sent)}")

    def to(self, author: str) -> list:
        return [r for r in self.sent if r.recipient_id == author]


@pytest.fixture
def ctx(settings):
    settings.triage.model_cache_dir = MODEL_CACHE  # the full pipeline: model, places, grouping
    c = AppContext.build(settings)
    c.repliers = {"x": Platform()}
    set_process_context(c)
    yield c
    set_process_context(None)
    c.close()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), timeout=30_000,
                              args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
        yield b
        b.close()


def sign_in(browser, base: str, role: str, **context_options):
    context = browser.new_context(base_url=base, viewport={"width": 1400, "height": 900}, **context_options)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=username]", role)
    page.fill("input[name=password]", PASSWORDS[role])
    page.click("button[type=submit]")
    page.wait_for_load_state("domcontentloaded")
    return page


def row(page, incident_id: int, status: str = ""):
    suffix = f'[data-status="{status}"]' if status else ""
    return page.locator(f'#queue-rows tr[data-incident="{incident_id}"]{suffix}')


def incident_of(ctx, post_id: int) -> Incident:
    with Session(ctx.engine) as s:
        incident_id = s.exec(select(IncidentPost.incident_id).where(IncidentPost.post_id == post_id)).one()
        return s.get(Incident, incident_id)


def purposes(ctx, post_id: int) -> list[str]:
    with Session(ctx.engine) as s:
        return list(s.exec(select(OutboundMessage.purpose).where(OutboundMessage.post_id == post_id)
                           .order_by(OutboundMessage.id)))


def wait_until(check, what: str, timeout: float = 15.0):
    deadline = time.time() + timeout
    while not (value := check()):
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


FIVE = [
    ("my dad collapsed not breathing, 12 High St Leeds", "leeds1"),
    ("woman collapsed not breathing outside 40 Park Row Leeds", "leeds2"),
    ("house fire at 22 Kirkgate Leeds, kids upstairs", "leeds3"),
    ("stabbing outside 5 Briggate Leeds", "leeds4"),
    ("man unconscious at 3 Market Square Leeds", "leeds5"),
]


def test_five_emergencies_in_one_town_are_five_rows_and_a_new_report_after_the_ack_alerts(ctx, users, server, browser):
    dispatcher = sign_in(browser, server, "dispatcher")
    dispatcher.wait_for_selector('#live-status[data-state="live"]')

    # Five different emergencies in one town within the same second (one triage page).
    ids = ingest(ctx, [raw_post(f"five{n}", text, author=author) for n, (text, author) in enumerate(FIVE)])
    drain(ctx)
    incidents = [incident_of(ctx, post_id) for post_id in ids]
    assert len({i.id for i in incidents}) == 5, [(i.id, i.summary) for i in incidents]
    for incident in incidents:
        row(dispatcher, incident.id, "queued").wait_for()
        assert incident.report_count == 1
    assert dispatcher.locator("#queue-rows tr[data-incident]").count() == 5

    # The dispatcher acknowledges the first: only its reporter is told a person has seen it.
    first = incidents[0].id
    row(dispatcher, first).locator("button.ack").click()
    row(dispatcher, first, "acknowledged").wait_for()
    drain(ctx)
    assert purposes(ctx, ids[0]) == ["receipt", "acknowledged"]
    assert all(purposes(ctx, post_id) == ["receipt"] for post_id in ids[1:])

    # A new critical report of that emergency after the acknowledgement: back in front, with the alert.
    [later] = ingest(ctx, [raw_post("five-later", "please hurry, the man at 12 High St Leeds is still not breathing",
                                    author="leeds6")])
    drain(ctx)
    assert incident_of(ctx, later).id == first
    back = row(dispatcher, first, "queued")
    back.wait_for()
    assert "NEW REPORT" in back.inner_text()
    dispatcher.locator("#alert-banner", has_text=f"New report on incident #{first}").wait_for()
    assert purposes(ctx, later) == ["receipt"], "nobody has seen this report yet"

    back.locator("button.ack").click()
    row(dispatcher, first, "acknowledged").wait_for()
    drain(ctx)
    assert purposes(ctx, later) == ["receipt", "acknowledged"]
    assert purposes(ctx, ids[0]) == ["receipt", "acknowledged"], "told once"
    assert "NEW REPORT" not in row(dispatcher, first).inner_text()


def test_a_silent_reporters_yes_lands_on_their_incident(ctx, users, server, browser):
    dispatcher = sign_in(browser, server, "dispatcher")
    dispatcher.wait_for_selector('#live-status[data-state="live"]')
    [cry] = ingest(ctx, [raw_post("silent1", "he is in the house i cant talk he will hear me. 14 Elm Road Leeds",
                                  author="quiet1")])
    drain(ctx)
    incident = incident_of(ctx, cry)
    assert incident.silent
    row(dispatcher, incident.id).locator("button.ack").click()
    row(dispatcher, incident.id, "acknowledged").wait_for()
    drain(ctx)
    asked = ctx.repliers["x"].to("quiet1")[-1]
    assert messages.QUESTION_IN_DANGER in asked.text

    [yes] = ingest(ctx, [raw_post("silent2", "YES", author="quiet1")])
    drain(ctx)
    assert incident_of(ctx, yes).id == incident.id
    back = row(dispatcher, incident.id, "queued")
    back.wait_for()
    assert "REPORTER REPLIED: YES" in back.inner_text()
    dispatcher.locator("#alert-banner", has_text=f"Reporter replied on incident #{incident.id}").wait_for()

    dispatcher.goto(f"/incidents/{incident.id}")
    assert "REPORTER REPLIED: YES" in dispatcher.inner_text("body")
    dispatcher.locator("li", has_text="YES").first.wait_for()
    texts = [r.text for r in ctx.repliers["x"].to("quiet1")]
    assert len(texts) >= 3 and all(ctx.settings.service.emergency_number not in t for t in texts), texts
    assert all(r.kind == "dm" for r in ctx.repliers["x"].to("quiet1")), "never a public reply to a silent contact"


def test_closed_dms_are_flagged_with_a_fallback_that_reveals_nothing(ctx, users, server, browser):
    platform = ctx.repliers["x"]
    platform.closed |= {"shut1", "shut2"}
    # Slow refusals: the queue has refreshed for the triage before the failed DMs are recorded,
    # as on a loaded machine, so the flag reaches the open page only if its commit is announced.
    platform.refuse_seconds = 1.0
    dispatcher = sign_in(browser, server, "dispatcher")
    dispatcher.wait_for_selector('#live-status[data-state="live"]')
    loud, silent = ingest(ctx, [
        raw_post("shut-a", "my nan fell down the stairs and is bleeding from her head, 7 Oak Lane Leeds", author="shut1"),
        raw_post("shut-b", "he is in the house i cant talk he will hear me. 9 Ash Grove Bradford", author="shut2")])
    drain(ctx)
    drain(ctx)  # the fallback reply queued by the failed DM
    for post_id in (loud, silent):
        flagged = row(dispatcher, incident_of(ctx, post_id).id).locator(".flag.dm-unreachable")
        flagged.wait_for()
        assert "UNREACHABLE by DM" in flagged.inner_text()
        assert flagged.get_attribute("title").startswith("The reporter cannot be reached by DM: 403")
    public = [r for r in platform.to("shut1") if r.kind == "public_reply"]
    assert len(public) == 1
    text = public[0].text.lower()
    assert "dm" in text and all(word not in text for word in ("oak lane", "nan", "bleeding", "stairs"))
    assert [r.kind for r in platform.to("shut2")] == ["dm"], "a silent contact is never answered in public"


def test_a_shared_fix_moves_the_pin_and_the_link_is_on_the_dashboards_port(ctx, users, server, browser):
    assert ctx.settings.dashboard.public_base_url == ""
    assert f":{ctx.settings.dashboard.port}" not in server, "the dashboard runs on another port than the settings say"
    [cry] = ingest(ctx, [raw_post("gps1", "my dad collapsed and is not breathing, we are in Leeds", author="gps1")])
    drain(ctx)
    incident = incident_of(ctx, cry)
    before = (incident.lat, incident.lon)

    dispatcher = sign_in(browser, server, "dispatcher", permissions=["clipboard-read", "clipboard-write"])
    dispatcher.goto(f"/incidents/{incident.id}")
    dispatcher.click("#share-send")
    dispatcher.locator(".notice", has_text="Share link sent by direct message").wait_for()
    drain(ctx)  # the DM carrying the link goes out
    dm = [r for r in ctx.repliers["x"].to("gps1") if server + "/s/" in r.text]
    assert len(dm) == 1, [r.text for r in ctx.repliers["x"].to("gps1")]
    sent_url = re.search(r"https?://\S+/s/[A-Za-z0-9_.\-]+", dm[0].text).group(0)

    # The dispatcher sees the link, its delivery status and a copy button.
    link = dispatcher.locator("#share-links li").first
    link.locator(".share-delivery", has_text="delivered to the platform").wait_for()
    assert link.locator("input.share-url").input_value() == sent_url
    link.locator("button.share-copy").click()
    link.locator("button.share-copy", has_text="Copied").wait_for()
    assert dispatcher.evaluate("navigator.clipboard.readText()") == sent_url

    # The reporter opens it on their phone and shares their position.
    phone = browser.new_context(geolocation=FIX, permissions=["geolocation"], viewport={"width": 390, "height": 844},
                                is_mobile=True, has_touch=True).new_page()
    phone.set_default_timeout(15_000)
    phone.goto(sent_url)
    phone.click("#agree")
    phone.click("#btn-location")
    wait_until(lambda: "Location received" in (phone.locator("#status").text_content() or ""), "the location ack")

    moved = wait_until(lambda: (i := incident_of(ctx, cry)).lat == FIX["latitude"] and i, "the incident to move")
    assert (moved.lat, moved.lon) == (FIX["latitude"], FIX["longitude"]) != before
    dispatcher.goto(f"/incidents/{incident.id}")
    pin = dispatcher.locator("#incident-map")
    assert (float(pin.get_attribute("data-lat")), float(pin.get_attribute("data-lon"))) == (53.8008, -1.5491)
    maps = dispatcher.locator("a.shared-fix").first
    assert "±15 m" in maps.inner_text() and "mlat=53.800800" in maps.get_attribute("href")
    dispatcher.goto("/queue")
    assert "shared GPS fix (±15 m)" in row(dispatcher, incident.id).inner_text()
    points = dispatcher.request.get("/map/incidents.json").json()
    assert [(p["lat"], p["lon"]) for p in points["incidents"] if p["id"] == incident.id] == [(53.8008, -1.5491)]
    field = sign_in(browser, server, "field")
    field.goto("/field?lat=53.8008&lon=-1.5491&radius_km=0.2")  # the town centre is outside 200 m
    item = field.locator(f'li.field-item[data-incident="{incident.id}"]')
    item.wait_for()
    assert "shared GPS fix" in item.inner_text()


def test_every_post_flagged_for_review_reaches_a_person(ctx, users, server, browser):
    image = json.dumps({"id": "rev-photo", "media": [{"type": "photo", "url": f"{server}/static/vendor/leaflet/images/marker-icon.png"}]})
    medium, photo = ingest(ctx, [
        raw_post("rev-medium", "my car was broken into overnight", author="rev1", malformed=True,
                 malformed_reason="truncated payload"),
        raw_post("rev-photo", "", author="rev2", raw_payload=image)])
    drain(ctx)
    with Session(ctx.engine) as s:
        assert s.get(Post, photo).disposition == "needs_review"
    review = incident_of(ctx, medium)
    assert review.urgency == "medium" and review.flags.get("needs_review")

    dispatcher = sign_in(browser, server, "dispatcher")
    queued = row(dispatcher, review.id, "queued")
    queued.wait_for()
    assert "REVIEW" in queued.inner_text()
    dispatcher.click("#review-waiting")
    post_row = dispatcher.locator(f'li.post[data-post-id="{photo}"]')
    post_row.wait_for()
    assert "NEEDS REVIEW" in post_row.inner_text()
    assert dispatcher.locator("li.post[data-post-id]").count() == 1, "the review list holds only flagged posts"

    officer = sign_in(browser, server, "officer")
    officer.click("#review-list")
    officer.locator(f'li.post[data-post-id="{photo}"] button.act-not', has_text="Not an emergency").wait_for()
    officer.locator(f'li.post[data-post-id="{photo}"] form').filter(
        has=officer.locator('input[value="not_emergency"]')).locator("button").click()
    officer.locator("#toast", has_text="not an emergency").wait_for()
    with Session(ctx.engine) as s:
        assert s.get(Post, photo).disposition_by == "officer"
    dispatcher.goto("/queue")
    assert dispatcher.locator("#review-waiting").count() == 0
