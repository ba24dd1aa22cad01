"""The offline base map: Natural Earth outlines from a registry package, served by Flare, drawn by
Leaflet with a list of the incidents beside it."""
from __future__ import annotations

import json

import pytest
from shapely.geometry import Point, box, shape

import dashboard.routes.map as map_routes
from dashboard import basemap
from models import GeoPoint
from tests.dashboard import test_dashboard_browser as base
from tests.dashboard.conftest import drain, ingest, login, raw_post
from tests.dashboard.test_dashboard_browser import CHROMIUM, SHOTS, sign_in

browser = base.browser
LEEDS = (53.7996, -1.5491)


def _features(data: bytes, kind: str = "land") -> dict[str, object]:
    return {f["properties"]["name"]: shape(f["geometry"]) for f in json.loads(data)["features"]
            if f["properties"]["kind"] == kind}


def shape_points(geometry) -> int:
    return sum(len(g.coords) for g in getattr(geometry, "geoms", [geometry]))


def test_area_layer_draws_the_service_area_in_detail_and_world_leaves_it_out():
    area = _features(basemap.area_outlines(54.0, -2.0))
    world = _features(basemap.world_outlines(54.0, -2.0))
    uk = area["United Kingdom"]
    assert uk.contains(Point(LEEDS[1], LEEDS[0])) and uk.contains(Point(-3.0, 55.5))  # Leeds, the Scottish Borders
    assert not uk.contains(Point(-4.5, 54.0))  # the Irish Sea is not
    assert "Ireland" in area and "France" in area
    uk_coast = _features(basemap.area_outlines(54.0, -2.0), "outline")["United Kingdom"]
    assert shape_points(uk_coast) > 1000  # coastline detail, not a box
    inner = box(-2.0 - 5.9, 54.0 - 3.9, -2.0 + 5.9, 54.0 + 3.9)
    assert all(not g.intersects(inner) for g in world.values())  # drawn once, by the area layer
    # The box's edges are filled but never stroked: outlines are the coast and borders only.
    edge = box(-2.0 - 6, 54.0 - 4, -2.0 + 6, 54.0 + 4).exterior
    for layer in (basemap.area_outlines(54.0, -2.0), basemap.world_outlines(54.0, -2.0)):
        for line in _features(layer, "outline").values():
            assert line.intersection(edge.buffer(1e-6)).length < 0.05
    assert {"Brazil", "Japan", "Australia", "Canada"} <= set(world)
    assert len(basemap.world_outlines(54.0, -2.0)) < 700_000 and len(basemap.area_outlines(54.0, -2.0)) < 200_000


def test_base_layers_are_served_to_signed_in_users_only(app, users):
    from fastapi.testclient import TestClient

    assert TestClient(app, follow_redirects=False).get("/map/base/world.geojson").status_code in (303, 401)
    field = login(app, "field")
    r = field.get("/map/base/area.geojson")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    assert "max-age" in r.headers["cache-control"] and "no-store" not in r.headers["cache-control"]
    assert field.get("/map/base/tiles.geojson").status_code == 404


def test_a_base_layer_is_built_without_holding_a_database_connection(app, users, monkeypatch):
    """The first build takes seconds of CPU: the sign-in read's connection (and the transaction that
    locks the users table) is given back before it, not held through it."""
    engine = app.state.ctx.engine
    held: list[int] = []

    def build(lat, lon):
        held.append(engine.pool.checkedout())
        return b'{"type":"FeatureCollection","features":[]}'

    monkeypatch.setitem(map_routes.BASE_LAYERS, "world", build)
    r = login(app, "dispatcher").get("/map/base/world.geojson")
    assert r.status_code == 200 and held == [0]


@pytest.mark.browser
@pytest.mark.timeout(120)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")
def test_map_has_outlines_offline_and_a_list_beside_it(ctx, users, server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    ingest(ctx, [raw_post("m1", "help my dad collapsed not breathing", author="m1", geo=GeoPoint(*LEEDS, "Leeds")),
                 raw_post("m2", "house fire flames everywhere people trapped", author="m2",
                          geo=GeoPoint(53.81, -1.56))])
    drain(ctx)
    for name, viewport in (("map-offline.png", {"width": 1400, "height": 900}),
                           ("map-phone.png", {"width": 390, "height": 844}),
                           ("map-zoom200.png", {"width": 640, "height": 400})):
        context, page = sign_in(browser, server, "dispatcher", viewport=viewport)
        elsewhere: list[str] = []
        page.on("request", lambda r, seen=elsewhere: seen.append(r.url) if not r.url.startswith(server) else None)
        page.goto("/map")
        page.locator('#incident-map-all[data-outlines="2"]').wait_for()
        items = page.locator("#map-list li")
        items.first.wait_for()
        assert items.count() == 2
        assert all(u.startswith(("data:", "blob:")) for u in elsewhere), elsewhere  # nothing leaves the site
        width = page.evaluate("document.documentElement.clientWidth")
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        items.first.locator("button.show-on-map").click()
        page.locator(".leaflet-popup-content").wait_for()
        assert "#" in page.locator(".leaflet-popup-content").inner_text()
        page.keyboard.press("Escape")
        for _ in range(8 if name == "map-offline.png" else 0):  # out to the coastline and borders
            page.locator(".leaflet-control-zoom-out").click()
            page.wait_for_timeout(600)  # each zoom animates; a click during it is dropped
        page.screenshot(path=str(SHOTS / name))
        context.close()
