"""The dashboard in a real browser (Debian Chromium, headless): every role, live updates, actions.

The app runs under uvicorn in a thread with the test's AppContext; jobs run when the test drains
an RQ SimpleWorker, exactly as a burst worker would. Screenshots land in docs/screenshots/.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select

from models import GeoPoint, Incident, OutboundMessage, Post
from tests.dashboard.conftest import PASSWORDS, drain, ingest, raw_post

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LEEDS = GeoPoint(53.7996, -1.5491, "Leeds")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(120),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), timeout=30_000,
                              args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


def sign_in(browser, base: str, role: str, shot: str | None = None, viewport=None):
    context = browser.new_context(base_url=base, viewport=viewport or {"width": 1400, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs  # any alert() from hostile text would land here
    page.goto("/login")
    page.fill("input[name=username]", role)
    page.fill("input[name=password]", PASSWORDS[role])
    if shot:
        page.screenshot(path=str(SHOTS / shot))
    page.click("button[type=submit]")
    page.wait_for_load_state("domcontentloaded")
    return context, page


def wait_live(page) -> None:
    page.wait_for_selector('#live-status[data-state="live"]')


def test_roles_live_feed_escalate_acknowledge_reply(ctx, users, server, browser, archiving):
    SHOTS.mkdir(parents=True, exist_ok=True)
    image_url = f"{server}/static/vendor/leaflet/images/marker-icon.png"

    # Background incidents so the queue, map and supervisor views have something to show.
    ingest(ctx, [raw_post("bg1", "help my dad collapsed not breathing", author="bg1", geo=LEEDS),
                 raw_post("bg2", "house fire flames everywhere people trapped", author="bg2",
                          geo=GeoPoint(53.81, -1.56)),
                 raw_post("bg3", "\u202egnihton\u202c <script>alert('x')</script> " + "😱" * 400, author="bg3"),
                 raw_post("bg4", "man with a knife attacking people outside the station", author="bg4",
                          geo=GeoPoint(53.795, -1.547),
                          raw_payload=json.dumps({"id": "bg4", "media": [{"type": "photo", "url": image_url}]}))])
    drain(ctx)

    officer_ctx, officer = sign_in(browser, server, "officer", shot="login.png")
    assert officer.url.endswith("/feed")
    wait_live(officer)

    # 1. A post arrives while the officer watches: it appears without a reload (SSE).
    [post_id] = ingest(ctx, [raw_post("live1", "my neighbour hasn't been seen for three days and her "
                                      "curtains are still shut", author="reporter", geo=LEEDS)])
    row = officer.locator(f'li.post[data-post-id="{post_id}"]')
    row.wait_for()
    assert "awaiting triage" in row.inner_text()
    drain(ctx)
    row.locator(".chip.pending").wait_for(state="detached")
    assert "redirected" in row.locator(".disposition").inner_text()

    # Hostile text is shown as text: no script ran, the RTL override is isolated.
    hostile = officer.locator("li.post", has_text="<script>alert('x')</script>")
    assert hostile.count() == 1
    assert officer.dialogs == []
    assert officer.evaluate("getComputedStyle(document.querySelector('.posttext')).unicodeBidi") == "isolate"

    # Graphic media is hidden until revealed; revealing counts towards this shift's exposure.
    media_row = officer.locator("li.post", has_text="man with a knife")
    assert media_row.locator("figure.media-cw img").count() == 0
    media_row.locator("button.reveal").click()
    media_row.locator("figure.media-cw img").wait_for()
    assert officer.locator("#exposure-count").inner_text() == "1"
    officer.screenshot(path=str(SHOTS / "feed.png"), full_page=False)

    # Keyboard help opens with "?".
    officer.keyboard.press("?")
    officer.locator("#help[open]").wait_for()
    officer.keyboard.press("Escape")
    officer.locator("#help[open]").wait_for(state="detached")

    # 2. The officer escalates it with the keyboard (select, then "e").
    officer.locator(f'li.post[data-post-id="{post_id}"] .posttext').click()
    officer.keyboard.press("e")
    officer.locator("#toast", has_text="escalated to incident").wait_for()
    with Session(ctx.engine) as s:
        incident_id = s.exec(select(Incident.id).order_by(Incident.id.desc())).first()
    drain(ctx)

    # 3. A dispatcher in another browser context acknowledges it from the queue.
    dispatch_ctx, dispatcher = sign_in(browser, server, "dispatcher")
    assert dispatcher.url.endswith("/queue")
    wait_live(dispatcher)
    queue_row = dispatcher.locator(f'#queue-rows tr[data-incident="{incident_id}"]')
    queue_row.wait_for()
    dispatcher.locator("#alert-banner").wait_for()  # critical incidents waiting: visual alert
    dispatcher.screenshot(path=str(SHOTS / "queue.png"))
    queue_row.locator("button.ack").click()
    dispatcher.locator(f'#queue-rows tr[data-incident="{incident_id}"][data-status="acknowledged"]').wait_for()

    # ... and the officer's feed shows it without a reload.
    officer.locator(f'li.post[data-post-id="{post_id}"] .status', has_text="acknowledged by dispatcher").wait_for()

    # A new critical incident while the dispatcher watches: the alert banner names it.
    ingest(ctx, [raw_post("crit2", "help he's not breathing, my husband collapsed", author="late")])
    drain(ctx)
    dispatcher.locator("#alert-banner", has_text="New critical incident").wait_for()

    # 4. The dispatcher replies to the reporter by DM from the incident page.
    dispatcher.goto(f"/incidents/{incident_id}")
    dispatcher.select_option("#reply-template", "ask_location")
    assert "where you are" in dispatcher.input_value("#reply-text")
    assert dispatcher.is_checked('input[name=kind][value=dm]')
    share = dispatcher.locator('#share-panel form[action$="/share-link"]')
    assert share.locator("input[name=csrf_token]").get_attribute("value")
    share.locator("button").wait_for()
    dispatcher.screenshot(path=str(SHOTS / "incident.png"), full_page=True)
    dispatcher.click("#reply-form button[type=submit]")
    dispatcher.locator(".notice", has_text="Direct message queued").wait_for()
    drain(ctx)
    sent = [r.text for r in ctx.repliers["x"].sent]
    assert any("where you are" in t for t in sent)
    with Session(ctx.engine) as s:
        manual = s.exec(select(OutboundMessage).where(OutboundMessage.purpose == "manual")).one()
        assert (manual.kind, manual.status, manual.created_by) == ("dm", "sent", "dispatcher")
        assert s.get(Post, manual.post_id).external_id == "live1"

    dispatcher.goto("/map")
    dispatcher.locator("#incident-map-all[data-markers]").wait_for(state="attached")
    assert int(dispatcher.get_attribute("#incident-map-all", "data-markers")) >= 3
    dispatcher.screenshot(path=str(SHOTS / "map.png"))

    # 5. A field officer sees nearby incidents but cannot acknowledge (403).
    field_ctx, field = sign_in(browser, server, "field", viewport={"width": 412, "height": 900})
    field.goto(f"/field?lat={LEEDS.lat}&lon={LEEDS.lon}&radius_km=10")
    field.locator(f'li.field-item[data-incident="{incident_id}"]').wait_for()
    field.screenshot(path=str(SHOTS / "field.png"), full_page=True)
    status = field.evaluate("""async (id) => {
        const csrf = document.querySelector('meta[name=csrf-token]').content;
        const r = await fetch(`/incidents/${id}/acknowledge`, {method: 'POST',
            headers: {'X-CSRF-Token': csrf, 'X-Requested-With': 'flare'}});
        return r.status; }""", incident_id)
    assert status == 403

    # 6. An officer cannot open administration.
    response = officer.goto("/admin")
    assert response.status == 403
    assert "Not available to your role" in officer.locator("h1").inner_text()  # a page, not JSON

    # 7. Supervisor and admin views.
    sup_ctx, supervisor = sign_in(browser, server, "supervisor")
    supervisor.goto("/supervisor")
    assert "officer" in supervisor.locator("section", has_text="On shift").inner_text()
    supervisor.screenshot(path=str(SHOTS / "supervisor.png"), full_page=True)
    admin_ctx, admin = sign_in(browser, server, "admin")
    assert admin.url.endswith("/admin")
    admin.screenshot(path=str(SHOTS / "admin.png"), full_page=True)

    for c in (officer_ctx, dispatch_ctx, field_ctx, sup_ctx, admin_ctx):
        c.close()
    assert officer.dialogs == [] and dispatcher.dialogs == []
