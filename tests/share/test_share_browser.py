"""End to end in Debian Chromium: the reporter shares location, a photo, text and live camera frames;
the dispatcher's panel shows them (blurred until revealed); other devices and tampered links fail."""
from __future__ import annotations

import base64
import re
import time
from pathlib import Path

import pytest

from dashboard.share import storage
from share_test_helpers import DISPATCHER_PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
LEEDS = {"latitude": 53.8008, "longitude": -1.5491, "accuracy": 15}


@pytest.fixture
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000)
        yield browser
        browser.close()


def phone_context(browser):
    return browser.new_context(geolocation=LEEDS, permissions=["geolocation", "camera"],
                               viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)


def wait_until(check, what: str, timeout: float = 15.0):
    """Poll from Python: the share page's CSP (rightly) forbids the eval that wait_for_function uses."""
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def text_of(page, selector: str) -> str:
    return page.locator(selector).text_content() or ""


def real_jpeg(page) -> bytes:
    """A genuine JPEG drawn by the browser itself (no image library needed on the test side)."""
    data_url = page.evaluate("""() => { const c = document.createElement('canvas'); c.width = 64; c.height = 48;
        const g = c.getContext('2d'); g.fillStyle = '#c33'; g.fillRect(0, 0, 64, 48);
        return c.toDataURL('image/jpeg', 0.8); }""")
    return base64.b64decode(data_url.split(",", 1)[1])


def test_reporter_shares_and_dispatcher_sees_it_live(share_env, chromium):
    share_env.settings.share.frame_interval_ms = 300
    url = share_env.new_link()["url"]
    phone = phone_context(chromium)
    page = phone.new_page()
    csp_errors: list[str] = []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.set_default_timeout(15_000)

    page.goto(url)
    assert page.locator("#btn-location").count() == 0  # nothing can be shared before consent
    assert "Nothing is shared until you agree" in page.inner_text("#consent")
    page.click("#agree")
    page.wait_for_selector("#btn-location")

    page.click("#btn-location")
    wait_until(lambda: "15 m" in text_of(page, "#location-readout"), "the accuracy readout")
    wait_until(lambda: "Location received" in text_of(page, "#status"), "the location ack")

    photo = real_jpeg(page)
    page.set_input_files("#photo-input", files=[{"name": "scene.jpg", "mimeType": "image/jpeg", "buffer": photo}])
    wait_until(lambda: "Photo received" in text_of(page, "#photo-readout"), "the photo ack")
    page.fill("#text-input", "Smoke on the <2nd> floor")
    page.click("#btn-text")
    wait_until(lambda: "Message received" in text_of(page, "#text-readout"), "the text ack")

    page.click("#btn-live")
    wait_until(lambda: re.search(r"Live: ([3-9]|\d\d+) pictures", text_of(page, "#live-readout")), "3 live frames")

    # The dispatcher's panel, while the reporter is live.
    desk = chromium.new_context()
    console = desk.new_page()
    console.set_default_timeout(15_000)
    console.goto(share_env.base + "/login")
    console.fill("input[name=username]", "dana")
    console.fill("input[name=password]", DISPATCHER_PASSWORD)
    console.click("button[type=submit]")
    console.wait_for_load_state()
    console.goto(f"{share_env.base}/incidents/{share_env.incident_id}/share")
    wait_until(lambda: "53.8008" in text_of(console, "#share-location"), "the location on the panel")
    assert "±15 m" in console.inner_text("#share-location")
    live_img = console.locator("#share-live figure img")
    live_img.wait_for()
    assert "blurred" in (live_img.get_attribute("class") or "")
    first_frame = live_img.get_attribute("data-item")
    wait_until(lambda: live_img.get_attribute("data-item") != first_frame, "the live view to refresh")
    wait_until(lambda: live_img.evaluate("img => img.complete && img.naturalWidth > 0"), "a decoded frame")
    console.click("#share-live figure button.reveal")
    wait_until(lambda: "blurred" not in (live_img.get_attribute("class") or ""), "the live view to unblur")
    assert console.locator("#share-photos figure img.blurred").count() == 1
    assert "Smoke on the <2nd> floor" in console.inner_text("#share-texts")  # shown as text, not markup

    page.click("#btn-stop")
    page.wait_for_selector("#stopped", state="visible")
    time.sleep(0.5)
    assert page.evaluate("document.getElementById('preview').srcObject") is None
    assert csp_errors == []

    state = share_env.state()
    assert abs(state["location"]["lat"] - 53.8008) < 1e-6 and state["location"]["accuracy_m"] == 15
    assert len(state["photos"]) == 1 and state["live"][0]["frames"] >= 3
    assert state["live"][0]["revealed"] is True and state["links"][0]["status"] == "ended"
    items = share_env.items()
    assert all(storage.verify_item(share_env.settings, i) for i in items)
    assert [e.data["sha256"] for e in share_env.events("media_received")] == [i.sha256 for i in items]
    [stored_photo] = share_env.items("photo")
    assert storage.file_path(share_env.settings, stored_photo).read_bytes() == photo
    assert all(storage.sniff_image(storage.file_path(share_env.settings, f).read_bytes())[0] == "image/jpeg"
               for f in share_env.items("frame"))
    assert len(share_env.events("media_revealed")) == 1

    # Another device, a tampered token, and an expired link all fail with a way to call for help.
    other = phone_context(chromium).new_page()
    other.goto(url)
    assert "already been used" in other.inner_text("#problem") and "999" in other.inner_text("main")
    token = url.rsplit("/", 1)[1]
    other.goto(url.replace(token, re.sub(r"\.(\w)", lambda m: "." + ("B" if m.group(1) != "B" else "C"), token, count=1)))
    assert "not valid" in other.inner_text("#problem")
    share_env.settings.share.link_ttl_minutes = 1 / 60
    expiring = share_env.new_link()["url"]
    time.sleep(2.2)
    other.goto(expiring)
    assert "expired" in other.inner_text("#problem") and "999" in other.inner_text("main")
