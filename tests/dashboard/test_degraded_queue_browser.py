"""The degraded queue in a real browser (Debian Chromium, headless): while the database refuses,
a provisional critical report that arrives after the page loaded raises the normal queue's alert
(the banner naming it by its text, shown as text, and the sound unless muted); one already on the
screen at load does not; the page goes back to the normal queue when the database answers.

The sound path is observed by counting the oscillators flare.js's beep() asks Chromium's own
AudioContext for (a wrapper installed before the page's scripts); no audio is heard. Headless
Chromium allows sound without a click; the wrapper makes the context read "suspended" until the
page is clicked, as a desktop browser's autoplay policy does, so the unlock button is exercised."""
from __future__ import annotations

import pytest

from flows.held import hold_for_dispatch
from tests.dashboard.test_dashboard_browser import CHROMIUM, browser, sign_in  # noqa: F401
from tests.dashboard.test_degraded_queue import CRITICAL, _decide, _held, cut  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(120),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]

HOSTILE = ("my mum collapsed and is not breathing at 4 Mill Lane Leeds "
           "<img src=x onerror=alert(2)><b>bold</b> please help")
MUTED = "my son collapsed and is not breathing at 9 Kirk Gate Leeds please help"

# Counts the oscillators beep() creates (two per beep); the context reads "suspended" until a click
# on the page (an autoplay policy), otherwise it is Chromium's own.
COUNT_BEEPS = """
(() => {
  window.__oscillators = 0;
  window.__clicked = false;
  document.addEventListener("click", () => { window.__clicked = true; }, true);
  const create = BaseAudioContext.prototype.createOscillator;
  BaseAudioContext.prototype.createOscillator = function () {
    window.__oscillators += 1;
    return create.apply(this, arguments);
  };
  const state = Object.getOwnPropertyDescriptor(BaseAudioContext.prototype, "state");
  Object.defineProperty(BaseAudioContext.prototype, "state", {
    configurable: true, get() { return window.__clicked ? state.get.call(this) : "suspended"; }
  });
})();
"""


@pytest.fixture
def app(cut):  # noqa: F811
    """The conftest's uvicorn `server` runs the app whose database the test cuts."""
    return cut[1]


def _beeps(page) -> int:
    return page.evaluate("window.__oscillators") // 2


def _refreshes(page, n: int) -> None:
    """Wait until the page has refreshed its rows n more times (every 3 s)."""
    for _ in range(n):
        with page.expect_response(lambda r: r.url.endswith("/queue/rows"), timeout=10_000) as answer:
            pass
        assert answer.value.status == 200


def test_a_provisional_critical_arriving_after_load_alerts_one_already_shown_does_not(cut, server, browser, redis_conn):  # noqa: F811
    ctx, app, proxy, _tokens = cut
    context, page = sign_in(browser, server, "dispatcher")
    context.add_init_script(COUNT_BEEPS)
    page.goto("/queue")  # a successful check leaves the copy the degraded queue is authorised from
    assert page.get_attribute("body", "data-page") == "queue"
    hold_for_dispatch(redis_conn, [_held("a1", CRITICAL)])
    assert _decide(ctx) == 1

    proxy.refuse()
    try:
        page.goto("/queue")
        assert page.get_attribute("body", "data-page") == "queue-degraded"
        page.locator('#queue-rows tr[data-provisional="x:a1"]').wait_for()
        assert page.get_attribute("body", "data-muted") == "0"
        # Already on the screen at load: the normal queue's rule, a visual count, no sound, no "new".
        _refreshes(page, 2)
        banner = page.locator("#alert-banner")
        assert banner.is_visible() and "1 provisional critical report(s) waiting" in banner.inner_text()
        assert "New provisional" not in banner.inner_text()
        assert _beeps(page) == 0
        assert not page.locator("#sound-unlock").is_visible()

        # A critical read after the page loaded: the next refresh brings it, with the alert.
        hold_for_dispatch(redis_conn, [_held("a2", HOSTILE)])
        assert _decide(ctx) == 1
        page.locator('#queue-rows tr[data-provisional="x:a2"]').wait_for()
        banner.locator("text=New provisional critical report").wait_for()
        said = banner.inner_text()
        assert "<img src=x onerror=alert(2)><b>bold</b>" in said and "4 Mill Lane Leeds" in said  # as text
        assert "12 Station Road" not in said  # the one shown at load is not announced again
        assert banner.locator("img, b, script").count() == 0 and page.dialogs == []
        assert page.locator("#queue-rows img").count() == 0
        assert _beeps(page) == 1
        # The browser allows no sound before a click on this page: beep() offers the unlock button.
        unlock = page.locator("#sound-unlock")
        assert unlock.is_visible()
        unlock.click()
        unlock.wait_for(state="hidden")
        # Later refreshes showing the same rows alert no more.
        _refreshes(page, 2)
        assert _beeps(page) == 1
    finally:
        proxy.accept()

    # The database answers: the next refresh takes the page back to the normal queue.
    page.locator('body[data-page="queue"]').wait_for(state="attached", timeout=15_000)

    # A dispatcher who muted the alert sound gets the visual alert only, on the degraded queue too
    # (the choice reaches the copy with the next check).
    page.click("#mute-toggle")
    page.locator('#mute-toggle[aria-pressed="true"]').wait_for()
    proxy.refuse()
    try:
        page.goto("/queue")
        assert page.get_attribute("body", "data-page") == "queue-degraded"
        assert page.get_attribute("body", "data-muted") == "1"
        assert "Alert sound is off" in page.locator("#alert-sound-state").inner_text()
        before = _beeps(page)
        hold_for_dispatch(redis_conn, [_held("a3", MUTED)])
        assert _decide(ctx) == 1
        page.locator("#alert-banner", has_text="9 Kirk Gate Leeds").wait_for()
        assert _beeps(page) == before == 0
        assert not page.locator("#sound-unlock").is_visible()  # no sound tried, nothing to unlock
    finally:
        proxy.accept()
    context.close()
