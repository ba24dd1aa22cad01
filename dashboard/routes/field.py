"""The field feed: a read-only, phone-sized list of open incidents near a chosen area, and each
incident's detail for a unit on its way: what, where (with navigate links) and the locations the
reporter shared, without what a unit does not need: no reporter handle, account, platform or
number (phone numbers, e-mail addresses and handles in the reports' words are masked)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session, select

from dashboard.deps import DB, RowId, require
from dashboard.routes.common import BACKGROUND, render
from dashboard.routes.incident_view import confidence_radius
from models.access import audit
from escalation.service import reporter_posts
from evidence.redaction import find_personal_data
from models.enums import IncidentStatus, Urgency
from models.media import SharedItem
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


# A unit needs the place named in a report, not who sent it or how to reach them.
MASKED_FOR_FIELD = {"phone", "email", "handle"}
SHARED_LOCATIONS_SHOWN = 10


def field_text(text: str) -> str:
    """A report's words for a field unit: phone numbers, e-mail addresses and handles masked;
    addresses, postcodes and coordinates kept (they are where to go)."""
    out, pos = [], 0
    for start, end, label in find_personal_data(text or "", names=False):
        if label in MASKED_FOR_FIELD:
            out += [text[pos:start], f"[{label}]"]
            pos = end
    return "".join(out) + (text or "")[pos:]


@dataclass(frozen=True)
class Navigate:
    """Links that open a navigation app (geo: URI) or OpenStreetMap at a point."""

    lat: float
    lon: float
    label: str = ""

    @property
    def geo_uri(self) -> str:
        point = f"{self.lat:.6f},{self.lon:.6f}"
        return f"geo:{point}?{urlencode({'q': point + (f'({self.label})' if self.label else '')})}"

    @property
    def osm_url(self) -> str:
        return (f"https://www.openstreetmap.org/?{urlencode({'mlat': f'{self.lat:.6f}', 'mlon': f'{self.lon:.6f}'})}"
                f"#map=17/{self.lat:.6f}/{self.lon:.6f}")


@dataclass
class FieldReport:
    received_at: datetime
    text: str


@dataclass
class SharedFix:
    received_at: datetime
    lat: float
    lon: float
    accuracy_m: float | None
    navigate: Navigate


@dataclass
class FieldItem:
    incident: Incident
    distance_km: float
    latest: list[FieldReport]

    @property
    def navigate(self) -> Navigate | None:
        return incident_navigate(self.incident)


def incident_navigate(incident: Incident) -> Navigate | None:
    if incident.lat is None or incident.lon is None:
        return None
    return Navigate(incident.lat, incident.lon, f"Incident {incident.id}")


def field_reports(posts: list[Post]) -> list[FieldReport]:
    return [FieldReport(p.received_at, field_text(p.text)) for p in posts]


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
            latest = field_reports(reporter_posts(db, incident.id)[-LATEST_REPORTS:][::-1])
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


def shared_fixes(db: Session, incident_id: int) -> list[SharedFix]:
    """The reporter's shared location fixes, latest first."""
    rows = db.exec(select(SharedItem).where(SharedItem.incident_id == incident_id, SharedItem.kind == "location")
                   .order_by(SharedItem.id.desc()).limit(SHARED_LOCATIONS_SHOWN)).all()
    out = []
    for item in rows:
        lat, lon = (item.data or {}).get("lat"), (item.data or {}).get("lon")
        if isinstance(lat, (int, float)) and isinstance(lon, (int, float)):
            accuracy = (item.data or {}).get("accuracy")
            out.append(SharedFix(item.received_at, float(lat), float(lon),
                                 float(accuracy) if isinstance(accuracy, (int, float)) else None,
                                 Navigate(float(lat), float(lon), "Shared location")))
    return out


@router.get("/field/incidents/{incident_id}")
def field_incident(request: Request, incident_id: RowId, db: DB, user: User = require("field")) -> HTMLResponse:
    incident = db.get(Incident, incident_id)
    if incident is None or not IncidentStatus(incident.status).is_open:
        raise HTTPException(404, "no open incident with this number")
    audit(db, user.username, "view_field_incident", "incident", incident_id, {})
    db.commit()
    fixes = shared_fixes(db, incident_id)
    return render(request, "field_incident.html", user=user, i=incident, navigate=incident_navigate(incident),
                  radius_m=confidence_radius(incident.location_confidence) if incident.lat is not None else None,
                  reports=field_reports(reporter_posts(db, incident_id)[::-1]), fixes=fixes,
                  back="/field" + (f"?{request.url.query}" if request.url.query else ""))
