"""The field feed: a read-only, phone-sized list of open incidents near a chosen area."""
from __future__ import annotations

import math
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session, select

from dashboard.deps import DB, require
from dashboard.routes.common import BACKGROUND, render
from dashboard.security import audit
from escalation.service import reporter_posts
from models.enums import IncidentStatus, Urgency
from models.tables import Incident, Post, User

router = APIRouter(include_in_schema=False)

EARTH_RADIUS_KM = 6371.0
DEFAULT_RADIUS_KM = 5.0
MAX_RADIUS_KM = 200.0
LATEST_REPORTS = 3


@dataclass
class Area:
    lat: float | None = None
    lon: float | None = None
    radius_km: float = DEFAULT_RADIUS_KM
    error: str = ""

    @classmethod
    def from_request(cls, request: Request) -> Area:
        p = request.query_params
        if not p.get("lat") and not p.get("lon"):
            return cls()
        try:
            lat, lon = float(p.get("lat", "")), float(p.get("lon", ""))
            radius = float(p.get("radius_km") or DEFAULT_RADIUS_KM)
        except ValueError:
            return cls(error="Latitude, longitude and radius must be numbers.")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not (0 < radius <= MAX_RADIUS_KM):
            return cls(error=f"Use a real position and a radius up to {MAX_RADIUS_KM:.0f} km.")
        return cls(lat, lon, radius)

    @property
    def chosen(self) -> bool:
        return self.lat is not None and not self.error


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


@dataclass
class FieldItem:
    incident: Incident
    distance_km: float
    latest: list[Post]


def nearby(db: Session, area: Area) -> list[FieldItem]:
    if not area.chosen:
        return []
    open_states = [s.value for s in IncidentStatus if s.is_open]
    # Pre-filter on a bounding box in SQL, then keep what is truly inside the circle.
    dlat = area.radius_km / 111.0
    dlon = area.radius_km / max(1e-6, 111.0 * math.cos(math.radians(area.lat)))
    rows = db.exec(select(Incident).where(
        Incident.status.in_(open_states), Incident.lat.is_not(None),
        Incident.lat.between(area.lat - dlat, area.lat + dlat),
        Incident.lon.between(area.lon - dlon, area.lon + dlon)))
    items = []
    for incident in rows:
        d = distance_km(area.lat, area.lon, incident.lat, incident.lon)
        if d <= area.radius_km:
            latest = reporter_posts(db, incident.id)[-LATEST_REPORTS:][::-1]
            items.append(FieldItem(incident, round(d, 2), latest))
    items.sort(key=lambda it: (Urgency(it.incident.urgency).rank, it.distance_km))
    return items


def _context(request: Request, db: Session, user: User) -> dict:
    area = Area.from_request(request)
    items = nearby(db, area)
    if items:
        audit(db, user.username, "view_field", "incident", "",
              {"incidents": [it.incident.id for it in items], "lat": area.lat, "lon": area.lon,
               "radius_km": area.radius_km})
        db.commit()
    return {"area": area, "items": items}


@router.get("/field")
def field_page(request: Request, db: DB, user: User = require("field")) -> HTMLResponse:
    return render(request, "field.html", user=user, **_context(request, db, user))


@router.get("/field/rows", dependencies=[BACKGROUND])
def field_fragment(request: Request, db: DB, user: User = require("field")) -> HTMLResponse:
    return render(request, "_field_rows.html", user=user, fragment=True, **_context(request, db, user))
