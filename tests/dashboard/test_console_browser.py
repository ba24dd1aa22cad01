"""The 3 a.m. console in Chromium: CAD-like queue rows, keyboard acknowledge, phone and 200 % zoom.

Screenshots for the README land in docs/screenshots/ (queue-cad.png, queue-phone.png, ...).
"""
from __future__ import annotations

import pytest
from sqlmodel import Session, select

from models import Incident, IncidentPost, Post, TriageRecord
from tests.dashboard.conftest import PASSWORDS, drain, ingest, raw_post
from tests.dashboard import test_dashboard_browser as base
from tests.dashboard.test_dashboard_browser import CHROMIUM, SHOTS, sign_in, wait_live

browser = base.browser  # the same Chromium fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(120),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]

REPORTS = [
    ("c1", "help my dad collapsed not breathing, we are at 12 High Street upstairs please hurry", "12 High Street"),
    ("c2", "house fire flames everywhere people trapped on Kirkstall Road", "Kirkstall Road"),
    ("c3", "man with a knife attacking people outside the station by Albion Court", "Albion Court"),
]


def seed_queue(ctx) -> dict[str, int]:
    """Three open incidents whose posts named a place triage could not put on a map."""
    ingest(ctx, [raw_post(ext, text, author=f"a{ext}") for ext, text, _ in REPORTS])
    drain(ctx)
    by_ext = {}
    with Session(ctx.engine) as s:
        for ext, _, place in REPORTS:
            record, incident_id = s.exec(
                select(TriageRecord, IncidentPost.incident_id)
                .join(IncidentPost, IncidentPost.post_id == TriageRecord.post_id)
                .join(Post, Post.id == TriageRecord.post_id)
                .where(Post.external_id == ext)).one()
            record.locations = [{"text": place, "kind": "address", "source": "text", "lat": None, "lon": None,
                                 "confidence": 0.8}]
            s.add(record)
            by_ext[ext] = incident_id
        flagged = s.get(Incident, by_ext["c2"])
        flagged.silent = True
        flagged.flags = {"dm_unreachable": {"error": "DMs closed"}, "new_report": True,
                         "possible_duplicate_of": by_ext["c1"]}
        s.add(flagged)
        s.commit()
    return by_ext


def row_box_fits(page, incident_id: int) -> None:
    """The row's Acknowledge button is on screen, not cut off, at this viewport."""
    button = page.locator(f'#queue-rows tr[data-incident="{incident_id}"] button.ack')
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    width = page.evaluate("document.documentElement.clientWidth")
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (box, width)
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1  # no sideways scrolling


def test_queue_rows_read_like_a_cad_line_and_a_key_acknowledges(ctx, users, server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    ids = seed_queue(ctx)
    context, page = sign_in(browser, server, "dispatcher")
    wait_live(page)
    rows = page.locator("#queue-rows tr[data-incident]")
    assert rows.count() == 3
    first = page.locator(f'#queue-rows tr[data-incident="{ids["c1"]}"]')
    text = first.inner_text()
    assert "help my dad collapsed not breathing, we are at 12 High Street" in text
    assert "medical" in text and "1 report" in text, text
    assert "12 High Street" in first.locator("td.where").inner_text()
    assert "location unknown" not in page.locator("#queue-rows").inner_text()
    flagged = page.locator(f'#queue-rows tr[data-incident="{ids["c2"]}"]').inner_text()
    for flag in ("SILENT", "UNREACHABLE", "NEW REPORT", f"possible duplicate of #{ids['c1']}"):
        assert flag in flagged, flag
    page.screenshot(path=str(SHOTS / "queue-cad.png"))

    # "a" acknowledges the top unacknowledged critical incident, and only that one.
    top = page.locator('#queue-rows tr[data-urgency="critical"][data-status="queued"]').first
    top_id = int(top.get_attribute("data-incident"))
    page.locator("h1").click()
    page.keyboard.press("a")
    page.locator(f'#queue-rows tr[data-incident="{top_id}"][data-status="acknowledged"]').wait_for()
    assert page.locator('#queue-rows tr[data-status="queued"]').count() == 2
    with Session(ctx.engine) as s:
        assert s.get(Incident, top_id).acknowledged_by == "dispatcher"
    still_queued = [i for i in ids.values() if i != top_id and
                    page.locator(f'#queue-rows tr[data-incident="{i}"][data-status="queued"]').count()]

    # On the incident page, Acknowledge is the primary action while nobody has acknowledged it.
    page.goto(f"/incidents/{still_queued[0]}")
    assert page.locator(".actions.bar button.ack").inner_text() == "Acknowledge"
    assert "secondary" in page.locator("form.closing button", has_text="Resolve").get_attribute("class")
    context.close()

    # A phone (390 x 844) and a desktop at 200 % zoom (1280 x 800 CSS px / 2): nothing cut off.
    for name, viewport, scale in (("queue-phone.png", {"width": 390, "height": 844}, 3),
                                  ("queue-zoom200.png", {"width": 640, "height": 400}, 2)):
        small = browser.new_context(base_url=server, viewport=viewport, device_scale_factor=scale)
        small.set_default_timeout(10_000)
        p = small.new_page()
        p.goto("/login")
        p.fill("input[name=username]", "dispatcher")
        p.fill("input[name=password]", PASSWORDS["dispatcher"])
        p.click("button[type=submit]")
        p.locator("#queue-rows tr[data-incident]").first.wait_for()
        for incident_id in still_queued:
            row_box_fits(p, incident_id)
        p.screenshot(path=str(SHOTS / name))
        small.close()


def test_supervisor_screen_is_honest_live_and_failed_pages_are_red(ctx, users, server, browser):
    from flows.notify import set_registry
    from escalation.notifiers import NotifierRegistry
    from models.enums import EventKind
    from models.events import append_event
    from tests.dashboard.test_console import _fire_steps_until_supervisor

    SHOTS.mkdir(parents=True, exist_ok=True)
    set_registry(ctx, NotifierRegistry())  # no paging channel: every external page fails
    ids = seed_queue(ctx)
    _fire_steps_until_supervisor(ctx, ids["c2"])
    with Session(ctx.engine) as s:
        append_event(s, ids["c1"], EventKind.sla_breach, "escalation",
                     {"ack_sla_s": 60.0, "due_at": "2026-01-01T00:00:00+00:00", "lateness_s": 0.1})
        s.commit()

    context, page = sign_in(browser, server, "supervisor", viewport={"width": 1400, "height": 1000})
    page.goto("/supervisor")
    wait_live(page)
    assert page.locator("#queued-incidents").inner_text() == "3"
    assert page.locator("#dispatch-unacknowledged").inner_text().startswith("3")
    breaches = page.locator("ul.breaches").inner_text()
    assert "critical medical not acknowledged within 60 s; still waiting" in breaches
    assert "{" not in breaches and "ack_sla_s" not in breaches
    paging = page.locator("#paging")
    assert "No paging channel is set up" in paging.inner_text()
    failed = paging.locator("ul.failed-pages li").first
    assert "duty_supervisor" in failed.inner_text()
    assert failed.evaluate("e => getComputedStyle(e).color") == "rgb(255, 92, 92)"  # var(--critical)

    # The page keeps itself current: a new critical incident shows up without a reload.
    ingest(ctx, [raw_post("late", "help he's not breathing, my husband collapsed", author="late")])
    drain(ctx)
    page.locator("#queued-incidents", has_text="4").wait_for()
    page.screenshot(path=str(SHOTS / "supervisor-console.png"), full_page=True)

    # The incident shows the failed page in red, not as "fired"; the queue row flags it.
    page.goto(f"/incidents/{ids['c2']}")
    step = page.locator("ol.chain li.failed")
    assert step.count() == 1 and "FAILED" in step.inner_text() and "fired" not in step.inner_text()
    assert step.evaluate("e => getComputedStyle(e).color") == "rgb(255, 92, 92)"
    context.close()
    context, dispatcher = sign_in(browser, server, "dispatcher")
    chip = dispatcher.locator(f'#queue-rows tr[data-incident="{ids["c2"]}"] .chip.page-failed')
    assert chip.inner_text() == "PAGE FAILED ×1"
    context.close()


def test_expired_session_says_so_returns_to_the_page_and_keeps_the_action(ctx, users, server, browser,
                                                                         monkeypatch):
    import dashboard.deps

    ids = seed_queue(ctx)
    expired = {"now": False}
    real = dashboard.deps.session_expired
    monkeypatch.setattr(dashboard.deps, "session_expired", lambda last, idle: expired["now"] or real(last, idle))
    context, page = sign_in(browser, server, "dispatcher")
    row = page.locator(f'#queue-rows tr[data-incident="{ids["c1"]}"]')
    row.wait_for()
    expired["now"] = True  # the idle time passes while the dispatcher is away
    row.locator("button.ack").click()
    page.wait_for_url("**/login?**")
    assert "next=%2Fqueue" in page.url
    assert "session ended" in page.locator("#session-expired").inner_text()
    with Session(ctx.engine) as s:
        assert s.get(Incident, ids["c1"]).status == "queued"  # not done, and ...
    expired["now"] = False
    page.fill("input[name=username]", "dispatcher")
    page.fill("input[name=password]", PASSWORDS["dispatcher"])
    page.click("button[type=submit]")
    page.wait_for_url("**/queue")
    unsent = page.locator("#unsent-action")
    unsent.wait_for(timeout=30_000)
    assert "Acknowledge" in unsent.inner_text() and f"/incidents/{ids['c1']}/acknowledge" in unsent.inner_text()
    with Session(ctx.engine) as s:
        assert s.get(Incident, ids["c1"]).status == "queued"  # ... not replayed unasked
    unsent.locator("button", has_text="Send it now").click()
    page.locator(f'#queue-rows tr[data-incident="{ids["c1"]}"][data-status="acknowledged"]').wait_for()
    assert page.locator("#unsent-action").count() == 0
    context.close()
