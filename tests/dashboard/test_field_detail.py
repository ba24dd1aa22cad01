"""Field units: incident detail without the reporter's identity, navigate links, shared locations."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import Session, select

from flows.live import publish_live
from dashboard.routes.field import Navigate, field_text
from models import GeoPoint, Incident
from models.media import SharedItem, ShareLink
from models.types import utcnow
from tests.dashboard import test_dashboard_browser as base
from tests.dashboard.conftest import drain, ingest, login, raw_post
from tests.dashboard.test_dashboard_browser import CHROMIUM, SHOTS, sign_in

browser = base.browser

TEXT = ("help my dad collapsed not breathing at 12 High Street LS1 4AP, call me on 07700 900123 "
        "or mail jo@example.org, @neighbour_jo saw it")


def located_incident(ctx) -> int:
    ingest(ctx, [raw_post("f1", TEXT, author="secret_reporter", geo=GeoPoint(53.7996, -1.5491, "Leeds"))])
    drain(ctx)
    with Session(ctx.engine) as s:
        incident = s.exec(select(Incident)).one()
        link = ShareLink(incident_id=incident.id, nonce="n1", created_by="dispatcher",
                         expires_at=utcnow() + timedelta(minutes=30))
        s.add(link)
        s.flush()
        for n, (lat, lon) in enumerate(((53.80011, -1.54902), (53.80042, -1.54877))):
            s.add(SharedItem(link_id=link.id, incident_id=incident.id, kind="location", sha256=f"{n:064x}",
                             received_at=utcnow() + timedelta(seconds=n),
                             data={"lat": lat, "lon": lon, "accuracy": 12.4}))
        s.commit()
        return incident.id


def test_field_text_masks_how_to_reach_people_and_keeps_where_to_go():
    masked = field_text(TEXT)
    assert "07700 900123" not in masked and "jo@example.org" not in masked and "@neighbour_jo" not in masked
    assert "[phone]" in masked and "[email]" in masked and "[handle]" in masked
    assert "12 High Street" in masked and "LS1 4AP" in masked


def test_navigate_links_point_at_the_place():
    nav = Navigate(53.7996, -1.5491, "Incident 7")
    assert nav.geo_uri.startswith("geo:53.799600,-1.549100?q=")
    assert parse_qs(urlsplit(nav.geo_uri).query)["q"] == ["53.799600,-1.549100(Incident 7)"]
    osm = urlsplit(nav.osm_url)
    assert osm.netloc == "www.openstreetmap.org" and osm.fragment == "map=17/53.799600/-1.549100"
    assert parse_qs(osm.query) == {"mlat": ["53.799600"], "mlon": ["-1.549100"]}


def test_field_detail_has_what_and_where_but_not_who(ctx, app, users):
    incident_id = located_incident(ctx)
    field = login(app, "field")
    html = field.get(f"/field/incidents/{incident_id}?lat=53.8&lon=-1.55&radius_km=5").text
    assert "secret_reporter" not in html and "07700 900123" not in html and "jo@example.org" not in html
    assert "12 High Street" in html and "geo:53.799600,-1.549100" in html and "openstreetmap.org" in html
    assert "53.80042, -1.54877" in html and "±12 m" in html  # shared locations, latest first
    assert html.index("53.80042") < html.index("53.80011")
    assert 'href="/field?lat=53.8&amp;lon=-1.55&amp;radius_km=5"' in html
    listing = field.get("/field?lat=53.8&lon=-1.55&radius_km=5").text
    assert f'href="/field/incidents/{incident_id}?lat=53.8' in listing and "geo:53.799600" in listing
    assert "07700 900123" not in listing
    with Session(ctx.engine) as s:
        incident = s.get(Incident, incident_id)
        incident.status = "closed"
        s.add(incident)
        s.commit()
    assert field.get(f"/field/incidents/{incident_id}").status_code == 404


@pytest.mark.browser
@pytest.mark.timeout(120)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")
def test_field_detail_on_a_phone_and_at_200_percent(ctx, users, server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    incident_id = located_incident(ctx)
    # A phone, and a 1280 x 800 desktop at 200 % zoom (640 x 400 CSS pixels).
    for name, viewport in (("field-incident-phone.png", {"width": 390, "height": 844}),
                           ("field-incident-zoom200.png", {"width": 640, "height": 400})):
        context, page = sign_in(browser, server, "field", viewport=viewport)
        page.goto("/field?lat=53.8&lon=-1.55&radius_km=5")
        page.locator(f'li.field-item[data-incident="{incident_id}"] a.open-field-incident').click()
        page.wait_for_url(f"**/field/incidents/{incident_id}?**")
        assert "secret_reporter" not in page.inner_text("body")
        nav = page.locator("#navigate-geo")
        assert nav.get_attribute("href").startswith("geo:53.799600,-1.549100")
        assert page.locator("#shared-fixes li").count() == (2 if name == "field-incident-phone.png" else 3)
        if name == "field-incident-phone.png":  # a new shared location shows without touching the phone
            with Session(ctx.engine) as s:
                link_id = s.exec(select(ShareLink.id)).first()
                s.add(SharedItem(link_id=link_id, incident_id=incident_id, kind="location", sha256="f" * 64,
                                 data={"lat": 53.8006, "lon": -1.5485, "accuracy": 8.0}))
                s.commit()
            publish_live(ctx, {"type": "share_update", "incident_id": incident_id, "kind": "location"})
            page.locator("#shared-fixes li").nth(2).wait_for()
            assert "53.80060, -1.54850" in page.locator("#shared-fixes li").first.inner_text()
        width = page.evaluate("document.documentElement.clientWidth")
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        for sel in ("#navigate-geo", "#navigate-osm"):
            box = page.locator(sel).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (name, sel, box)
        page.screenshot(path=str(SHOTS / name), full_page=True)
        page.click("#back-to-list")
        page.wait_for_url("**/field?lat=53.8&lon=-1.55&radius_km=5")
        context.close()
