"""README screenshots from the demo's own data: the demo scenario (connectors/sandbox/scenarios/
demo.jsonl) through the full triage pipeline, then the queue's CAD-style rows and the supervisor
screen in Chromium, with the demo's e-mail paging unreachable so failed pages show in red."""
from __future__ import annotations

import pytest
from sqlmodel import Session, select

from models import Incident
from models.enums import EventKind
from models.events import append_event
from tests.dashboard import test_dashboard_browser as base
from tests.dashboard.conftest import RecordingReplier, drain
from tests.dashboard.test_dashboard_browser import CHROMIUM, SHOTS, sign_in, wait_live
from tests.demo_pipeline import demo_context, ingest_demo

browser = base.browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]


@pytest.fixture
def ctx(settings, redis_conn):
    with demo_context(settings, RecordingReplier) as c:
        yield c


def load_demo(ctx) -> None:
    ingest_demo(ctx)
    drain(ctx)


def test_readme_screenshots_of_the_queue_rows_and_supervisor_from_the_demo(ctx, users, server, browser):
    from flows.notify import set_registry
    from escalation.notifiers import NotifierRegistry
    from tests.dashboard.test_console import _fire_steps_until_supervisor

    SHOTS.mkdir(parents=True, exist_ok=True)
    set_registry(ctx, NotifierRegistry())  # the demo's paging inbox is not running here: pages fail
    load_demo(ctx)
    with Session(ctx.engine) as s:
        queued = s.exec(select(Incident).where(Incident.status == "queued").order_by(Incident.id)).all()
    assert len(queued) >= 5, "the demo scenario fills the queue"
    _fire_steps_until_supervisor(ctx, queued[0].id)

    context, page = sign_in(browser, server, "dispatcher", viewport={"width": 1400, "height": 1000})
    wait_live(page)
    rows = page.locator("#queue-rows tr[data-incident]")
    assert rows.count() >= 5
    assert page.locator("#queue-rows td.what .words").count() >= 5  # the reporters' first words on each row
    page.screenshot(path=str(SHOTS / "demo-queue.png"))
    top = page.locator('#queue-rows tr[data-urgency="critical"][data-status="queued"]').first.get_attribute("data-incident")
    page.locator("h1").click()
    page.keyboard.press("a")  # the dispatcher takes the top critical: the supervisor sees a time to acknowledge
    page.locator(f'#queue-rows tr[data-incident="{top}"][data-status="acknowledged"]').wait_for()
    context.close()
    with Session(ctx.engine) as s:
        append_event(s, queued[1].id, EventKind.sla_breach, "escalation",
                     {"ack_sla_s": 60.0, "due_at": "2026-01-01T00:00:00+00:00", "lateness_s": 0.1})
        s.commit()

    context, page = sign_in(browser, server, "supervisor", viewport={"width": 1400, "height": 1000})
    page.goto("/supervisor")
    wait_live(page)
    assert int(page.locator("#queued-incidents").inner_text()) >= 5
    assert page.locator("#paging ul.failed-pages li").count() >= 1
    assert "not acknowledged within 60 s" in page.locator("ul.breaches").inner_text()
    page.screenshot(path=str(SHOTS / "demo-supervisor.png"), full_page=True)
    context.close()
