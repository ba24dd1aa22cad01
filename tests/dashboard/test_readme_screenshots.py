"""README screenshots from the demo's own data: the demo scenario (connectors/sandbox/scenarios/
demo.jsonl) through the full triage pipeline, then the queue's CAD-style rows and the supervisor
screen in Chromium, with the demo's e-mail paging unreachable so failed pages show in red."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from sqlmodel import Session, select

from connectors.intake import persist_posts
from dashboard import jobs
from dashboard.context import AppContext, set_process_context
from models import GeoPoint, Incident, RawPost
from models.enums import EventKind
from models.events import append_event
from tests.dashboard import test_dashboard_browser as base
from tests.dashboard.conftest import RecordingReplier, drain
from tests.dashboard.test_dashboard_browser import CHROMIUM, SHOTS, sign_in, wait_live
from triage.prescreen import lane_for

browser = base.browser
DEMO = Path(__file__).resolve().parents[2] / "connectors" / "sandbox" / "scenarios" / "demo.jsonl"
MODEL_CACHE = Path(tempfile.gettempdir()) / "flare-triage-test-models"  # shared with the triage tests

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]


@pytest.fixture
def ctx(settings, redis_conn):
    """The demo's pipeline (the full model, not the rules-only one the other UI tests use)."""
    settings.triage.model_cache_dir = MODEL_CACHE
    c = AppContext.build(settings)
    c._repliers = {p: RecordingReplier() for p in ("x", "bluesky", "reddit")}
    set_process_context(c)
    yield c
    set_process_context(None)
    c.close()


def load_demo(ctx) -> None:
    lines = [json.loads(line) for line in DEMO.read_text().splitlines() if line.strip()]
    raws = [RawPost(platform=e["platform"], external_id=f"demo{n}", text=e["text"], raw_payload=json.dumps(e),
                    author_id=e["author"], author_handle=e["author"], is_dm=bool(e.get("is_dm")),
                    author_location=e.get("author_location", ""), malformed=bool(e.get("malformed")),
                    geo=GeoPoint(e["lat"], e["lon"]) if "lat" in e else None)
            for n, e in enumerate(lines)]
    stored = persist_posts(ctx.engine, raws, lambda r: lane_for(r.text, r.is_dm))
    jobs.on_persisted(ctx, stored)
    drain(ctx)


def test_readme_screenshots_of_the_queue_rows_and_supervisor_from_the_demo(ctx, users, server, browser):
    from dashboard.notifiers import set_registry
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
