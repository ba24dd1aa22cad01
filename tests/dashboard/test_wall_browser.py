"""The wall display in Chromium: signed in with its key, live, and loud when live updates are lost."""
from __future__ import annotations

import re
import threading
import time

import pytest
import uvicorn

from tests.dashboard import test_dashboard_browser as base
from tests.dashboard.conftest import _free_port, drain, ingest, raw_post, wall_key
from tests.db_cleanup import release_abandoned_sessions
from tests.dashboard.test_dashboard_browser import CHROMIUM, SHOTS

browser = base.browser  # the same Chromium fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]


class Server:
    """The app under uvicorn on a fixed port, so the test can take it away and bring it back."""

    def __init__(self, app, port: int) -> None:
        self.app, self.port = app, port
        self.srv: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=1)
        self.srv = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.srv.run, name="uvicorn-wall", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.srv.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.srv.started

    def stop(self) -> None:
        self.srv.should_exit = True
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()
        hub = getattr(self.app.state, "live_hub", None)
        if hub is not None:
            hub.stop()
        release_abandoned_sessions()


def enter(browser, base_url: str, key: str, viewport=None, scale: float = 1):
    context = browser.new_context(base_url=base_url, viewport=viewport or {"width": 1600, "height": 900},
                                  device_scale_factor=scale)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto("/wall")  # not signed in: the wall's own sign-in, not the password form
    assert page.url.endswith("/wall/enter")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    page.wait_for_url("**/wall")
    return context, page


def no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1


def test_wall_display_is_live_read_only_and_says_when_live_updates_are_lost(ctx, app, users, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    ingest(ctx, [raw_post("w1", "help my dad collapsed not breathing at 12 High Street", author="wall_reporter")])
    drain(ctx)
    server = Server(app, _free_port())
    server.start()
    url = f"http://127.0.0.1:{server.port}"
    key = wall_key(app)
    try:
        context, page = enter(browser, url, key)
        page.wait_for_selector('#live-status[data-state="live"]')
        assert page.locator("#queue-rows tr[data-incident]").count() == 1
        text = page.locator("body").inner_text()
        assert "wall_reporter" not in text and "media viewed" not in text
        assert page.locator("#queue-rows button, #queue-rows a[href^='/incidents']").count() == 0
        assert page.locator("#live-lost").is_hidden()

        # A new incident shows up by itself.
        ingest(ctx, [raw_post("w2", "house fire flames everywhere people trapped", author="w2")])
        drain(ctx)
        page.locator("#queue-rows tr[data-incident]").nth(1).wait_for()

        # The server goes away: a loud banner says since when the list is stale.
        server.stop()
        banner = page.locator("#live-lost")
        banner.wait_for(state="visible", timeout=15_000)
        since = page.locator("#live-lost-since").inner_text()
        assert re.fullmatch(r"\d\d:\d\d", since), since
        assert "LIVE UPDATES LOST SINCE " + since in banner.inner_text()
        assert banner.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 92, 92)"
        page.screenshot(path=str(SHOTS / "wall-live-lost.png"))

        # ... and goes once the stream is back (no one touched the screen; still signed in).
        server.start()
        page.wait_for_selector('#live-status[data-state="live"]', timeout=30_000)
        banner.wait_for(state="hidden")
        assert page.url.endswith("/wall")
        page.screenshot(path=str(SHOTS / "wall.png"))
        context.close()

        # A phone and a desktop at 200 % zoom: rows and the banner fit, nothing scrolls sideways.
        for name, viewport, scale in (("wall-phone.png", {"width": 390, "height": 844}, 3),
                                      ("wall-zoom200.png", {"width": 640, "height": 400}, 2)):
            small, p = enter(browser, url, key, viewport, scale)
            p.locator("#queue-rows tr[data-incident]").first.wait_for()
            p.wait_for_selector('#live-status[data-state="live"]')
            no_sideways_scroll(p)
            p.evaluate("document.getElementById('live-lost').hidden = false")  # its layout at this size
            no_sideways_scroll(p)
            box = p.locator("#live-lost").bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 1
            p.screenshot(path=str(SHOTS / name))
            small.close()
    finally:
        if server.thread is not None and server.thread.is_alive():
            server.stop()
