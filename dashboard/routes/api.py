"""JSON API under /api/v1 (bearer tokens or a signed-in session)."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel
from sqlmodel import select

from dashboard import actions
from dashboard.deps import CSRF, DB, Ctx, require
from dashboard.security import audit
from escalation.service import ActionError
from models.enums import IncidentStatus, Urgency
from models.tables import Incident, Post, TriageRecord, User

router = APIRouter(prefix="/api/v1", tags=["api"])


class IncidentPublic(BaseModel):
    id: int
    status: str
    urgency: str
    category: str
    summary: str
    report_count: int
    lat: float | None
    lon: float | None
    location_text: str
    created_at: str
    queued_at: str | None
    acknowledged_at: str | None
    acknowledged_by: str
    is_test: bool


def incident_public(i: Incident) -> IncidentPublic:
    return IncidentPublic(
        id=i.id, status=i.status, urgency=i.urgency, category=i.category, summary=i.summary,
        report_count=i.report_count, lat=i.lat, lon=i.lon, location_text=i.location_text,
        created_at=i.created_at.isoformat(), queued_at=i.queued_at.isoformat() if i.queued_at else None,
        acknowledged_at=i.acknowledged_at.isoformat() if i.acknowledged_at else None,
        acknowledged_by=i.acknowledged_by, is_test=i.is_test,
    )


def dispatch_order(rows: list[Incident]) -> list[Incident]:
    """Priority first, then age (oldest first within a priority)."""
    return sorted(rows, key=lambda i: (Urgency(i.urgency).rank, i.queued_at or i.created_at))


@router.get("/incidents", response_model=list[IncidentPublic])
def list_incidents(db: DB, user: User = require("view_incident"), status: str | None = None) -> list[IncidentPublic]:
    q = select(Incident)
    if status:
        q = q.where(Incident.status == status)
    else:
        q = q.where(Incident.status.in_([s.value for s in IncidentStatus if s.is_open]))
    return [incident_public(i) for i in dispatch_order(list(db.exec(q.limit(1000))))]


@router.get("/incidents/{incident_id}")
def get_incident(incident_id: int, db: DB, user: User = require("view_incident")) -> dict:
    incident = db.get(Incident, incident_id)
    if incident is None:
        raise HTTPException(404, "incident not found")
    from escalation.service import reporter_posts

    posts = reporter_posts(db, incident_id)
    audit(db, user.username, "view_incident", "incident", incident_id)
    db.commit()
    return {"incident": incident_public(incident).model_dump(),
            "posts": [{"id": p.id, "platform": p.platform, "text": p.text, "author": p.author_handle,
                       "received_at": p.received_at.isoformat(), "disposition": p.disposition} for p in posts]}


@router.post("/incidents/{incident_id}/acknowledge", dependencies=[CSRF])
def acknowledge(incident_id: int, ctx: Ctx, user: User = require("acknowledge")) -> dict:
    try:
        actions.acknowledge(ctx, incident_id, user)
    except ActionError as exc:
        raise HTTPException(409, str(exc)) from exc
    return {"ok": True, "incident_id": incident_id, "acknowledged_by": user.username}


@router.get("/posts")
def list_posts(db: DB, user: User = require("feed"), limit: int = 100) -> list[dict]:
    rows = db.exec(select(Post, TriageRecord).join(TriageRecord, TriageRecord.post_id == Post.id, isouter=True)
                   .order_by(Post.id.desc()).limit(min(limit, 500))).all()
    audit(db, user.username, "view_feed", "post", "", {"count": len(rows)})
    db.commit()
    return [{"id": p.id, "platform": p.platform, "text": p.text, "author": p.author_handle,
             "received_at": p.received_at.isoformat(), "disposition": p.disposition,
             "triage_state": p.triage_state, "malformed": p.malformed,
             "urgency": t.urgency if t else None, "category": t.category if t else None,
             "reasons": t.reasons if t else []} for p, t in rows]
