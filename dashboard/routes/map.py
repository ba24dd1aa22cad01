"""The map of open incidents (Leaflet, served from our own static files)."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, select

from dashboard import basemap
from dashboard.deps import DB, require
from dashboard.routes.common import BACKGROUND, render, require_any, restore_idle_clock
from dashboard.routes.incident_view import confidence_radius
from models.access import audit
from dashboard.visible_text import visible
from models.enums import IncidentStatus
from models.tables import Incident, User

router = APIRouter(include_in_schema=False)

OPEN_STATES = [s.value for s in IncidentStatus if s.is_open]


def open_incident_points(db: Session) -> list[dict]:
    rows = db.exec(select(Incident).where(Incident.status.in_(OPEN_STATES), Incident.lat.is_not(None),
                                          Incident.lon.is_not(None)).order_by(Incident.id))
    return [{"id": i.id, "urgency": i.urgency, "status": i.status, "category": i.category,
             "summary": visible(i.summary), "location": visible(i.location_text), "lat": i.lat, "lon": i.lon,
             "radius_m": confidence_radius(i.location_confidence), "is_test": i.is_test} for i in rows]


@router.get("/map")
def map_page(request: Request, user: User = require("view_incident")) -> HTMLResponse:
    ctx = request.app.state.ctx
    return render(request, "map.html", user=user, tile_url=ctx.settings.dashboard.tile_url)


BASE_LAYERS = {"world": basemap.world_outlines, "area": basemap.area_outlines}


@router.get("/map/base/{layer}.geojson", dependencies=[BACKGROUND])
def base_map_layer(request: Request, layer: str, db: DB, user: User = require_any("view_incident", "field")) -> Response:
    """The offline base map's outlines (public map data, the same for everyone: cacheable)."""
    # The sign-in check is this request's only read. A layer's first build takes seconds of CPU
    # (far longer on a loaded machine): no connection, nor the open transaction and the lock on the
    # users table that read leaves, is held through it.
    db.close()
    build = BASE_LAYERS.get(layer)
    if build is None:
        raise HTTPException(404, "no such base map layer")
    restore_idle_clock(request)
    dashboard = request.app.state.settings.dashboard
    return Response(build(dashboard.map_centre_lat, dashboard.map_centre_lon), media_type="application/geo+json",
                    headers={"Cache-Control": "private, max-age=86400"})


@router.get("/map/incidents.json", dependencies=[BACKGROUND])
def map_points(request: Request, db: DB, user: User = require("view_incident")) -> dict:
    restore_idle_clock(request)  # the map reloads itself on live events
    points = open_incident_points(db)
    audit(db, user.username, "view_map", "incident", "", {"count": len(points)})
    db.commit()
    unlocated = len(db.exec(select(Incident.id).where(Incident.status.in_(OPEN_STATES),
                                                      Incident.lat.is_(None))).all())
    return {"incidents": points, "unlocated": unlocated}
