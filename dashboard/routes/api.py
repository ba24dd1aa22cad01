"""JSON API under /api/v1 (bearer tokens or a signed-in session)."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel
from sqlmodel import select

from flows import actions
from dashboard.deps import API_ERRORS, CSRF, DB, Ctx, RowId, require
from models.access import audit, can
from dashboard.share.links import hide_links
from escalation.service import ActionError, reporter_posts
from models.enums import IncidentStatus, Urgency
from models.tables import Incident, OutboundMessage, Post, TriageRecord, User

router = APIRouter(prefix="/api/v1", tags=["api"], responses=API_ERRORS)


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
    rows = dispatch_order(list(db.exec(q.limit(1000))))
    # Places and summaries of reporters' incidents: one audit entry per request names them all.
    audit(db, user.username, "view_incident_list", "incident", "",
          {"via": "api", "status": status or "open", "count": len(rows), "incidents": [i.id for i in rows]})
    db.commit()
    return [incident_public(i) for i in rows]


@router.get("/incidents/{incident_id}")
def get_incident(incident_id: RowId, db: DB, user: User = require("view_incident")) -> dict:
    incident = db.get(Incident, incident_id)
    if incident is None:
        raise HTTPException(404, "incident not found")
    posts = reporter_posts(db, incident_id)
    audit(db, user.username, "view_incident", "incident", incident_id)
    db.commit()
    return {"incident": incident_public(incident).model_dump(),
            "posts": [{"id": p.id, "platform": p.platform, "text": p.text, "author": p.author_handle,
                       "received_at": p.received_at.isoformat(), "disposition": p.disposition} for p in posts]}


@router.post("/incidents/{incident_id}/acknowledge", dependencies=[CSRF])
def acknowledge(incident_id: RowId, ctx: Ctx, user: User = require("acknowledge")) -> dict:
    try:
        actions.acknowledge(ctx, incident_id, user)
    except ActionError as exc:
        raise HTTPException(409, str(exc)) from exc
    return {"ok": True, "incident_id": incident_id, "acknowledged_by": user.username}


@router.get("/posts")
def list_posts(db: DB, user: User = require("feed"), limit: int = Query(100, ge=1, le=500)) -> list[dict]:
    rows = db.exec(select(Post, TriageRecord).join(TriageRecord, TriageRecord.post_id == Post.id, isouter=True)
                   .order_by(Post.id.desc()).limit(limit)).all()
    audit(db, user.username, "view_feed", "post", "", {"count": len(rows)})
    db.commit()
    return [{"id": p.id, "platform": p.platform, "text": p.text, "author": p.author_handle,
             "received_at": p.received_at.isoformat(), "disposition": p.disposition,
             "triage_state": p.triage_state, "malformed": p.malformed,
             "urgency": t.urgency if t else None, "category": t.category if t else None,
             "reasons": t.reasons if t else []} for p, t in rows]


# ----------------------------------------------------------------------------- incident actions
class NoteBody(BaseModel):
    note: str = ""


class ReassignBody(BaseModel):
    to_username: str


class ReplyBody(BaseModel):
    post_id: RowId
    text: str
    kind: str = "dm"


class MergeBody(BaseModel):
    incident_ids: list[RowId]


class SplitBody(BaseModel):
    post_ids: list[RowId]


class EscalateBody(BaseModel):
    urgency: str = "high"


class DisposeBody(BaseModel):
    disposition: str


class AttachBody(BaseModel):
    incident_id: RowId


MAX_NOTE_CHARS = 2000
MAX_RECLAIM_IDLE_SECONDS = 7 * 24 * 3600  # a week: any longer names no entry a console could still hold


def _act(fn, *args, **kwargs):
    """Run an action; an invalid transition is a 409 whose detail the UI shows as it is."""
    try:
        return fn(*args, **kwargs)
    except ActionError as exc:
        raise HTTPException(409, str(exc)) from exc


@router.post("/incidents/{incident_id}/claim", dependencies=[CSRF])
def claim(incident_id: RowId, ctx: Ctx, user: User = require("acknowledge")) -> dict:
    _act(actions.claim, ctx, incident_id, user)
    return {"ok": True, "incident_id": incident_id, "claimed_by": user.username}


@router.post("/incidents/{incident_id}/take-over", dependencies=[CSRF])
def take_over(incident_id: RowId, ctx: Ctx, user: User = require("acknowledge")) -> dict:
    """Take an incident a colleague has claimed (audited; recorded in the incident's events)."""
    outcome = _act(actions.take_over, ctx, incident_id, user)
    return {"ok": True, "incident_id": incident_id, "claimed_by": user.username, "taken_from": outcome.taken_from}


@router.post("/incidents/{incident_id}/release", dependencies=[CSRF])
def release(incident_id: RowId, ctx: Ctx, user: User = require("acknowledge")) -> dict:
    _act(actions.release, ctx, incident_id, user)
    return {"ok": True, "incident_id": incident_id}


@router.post("/incidents/{incident_id}/reassign", dependencies=[CSRF])
def reassign(incident_id: RowId, body: ReassignBody, ctx: Ctx, user: User = require("acknowledge")) -> dict:
    _act(actions.reassign, ctx, incident_id, user, body.to_username.strip())
    return {"ok": True, "incident_id": incident_id, "claimed_by": body.to_username.strip()}


@router.post("/incidents/{incident_id}/resolve", dependencies=[CSRF])
def resolve(incident_id: RowId, ctx: Ctx, body: NoteBody | None = None, user: User = require("resolve")) -> dict:
    _act(actions.resolve, ctx, incident_id, user, note=(body.note if body else "")[:MAX_NOTE_CHARS])
    return {"ok": True, "incident_id": incident_id, "status": "resolved"}


@router.post("/incidents/{incident_id}/close", dependencies=[CSRF])
def close(incident_id: RowId, ctx: Ctx, body: NoteBody | None = None, user: User = require("resolve")) -> dict:
    _act(actions.close, ctx, incident_id, user, note=(body.note if body else "")[:MAX_NOTE_CHARS])
    return {"ok": True, "incident_id": incident_id, "status": "closed"}


@router.post("/incidents/{incident_id}/false-alarm", dependencies=[CSRF])
def false_alarm(incident_id: RowId, ctx: Ctx, body: NoteBody | None = None,
                user: User = require("resolve")) -> dict:
    _act(actions.false_alarm, ctx, incident_id, user, note=(body.note if body else "")[:MAX_NOTE_CHARS])
    return {"ok": True, "incident_id": incident_id, "status": "closed"}


@router.post("/incidents/{incident_id}/reply", dependencies=[CSRF])
def reply(incident_id: RowId, body: ReplyBody, ctx: Ctx, user: User = require("reply")) -> dict:
    message_id = _act(actions.reply, ctx, incident_id, body.post_id, user, body.text, kind=body.kind)
    return {"ok": True, "incident_id": incident_id, "message_id": message_id}


@router.post("/incidents/merge", dependencies=[CSRF])
def merge(body: MergeBody, ctx: Ctx, user: User = require("resolve")) -> dict:
    survivor = _act(actions.merge, ctx, body.incident_ids, user)
    return {"ok": True, "incident_id": survivor}


@router.post("/incidents/{incident_id}/split", dependencies=[CSRF])
def split(incident_id: RowId, body: SplitBody, ctx: Ctx, user: User = require("resolve")) -> dict:
    new_id = _act(actions.split, ctx, incident_id, body.post_ids, user)
    return {"ok": True, "incident_id": new_id, "split_from": incident_id}


@router.get("/incidents/{incident_id}/messages")
def incident_messages(incident_id: RowId, db: DB, user: User = require("view_incident")) -> list[dict]:
    """Every message sent (or being sent) to this incident's reporters, with its delivery status."""
    if db.get(Incident, incident_id) is None:
        raise HTTPException(404, "incident not found")
    rows = db.exec(select(OutboundMessage).where(OutboundMessage.incident_id == incident_id)
                   .order_by(OutboundMessage.id)).all()
    audit(db, user.username, "view_messages", "incident", incident_id, {"via": "api", "count": len(rows)})
    db.commit()
    # A share link is a bearer credential: only people who may send links see it.
    shown = (lambda text: text) if can(user.role, "share_link") else hide_links
    return [{"id": m.id, "post_id": m.post_id, "platform": m.platform, "kind": m.kind, "purpose": m.purpose,
             "text": shown(m.text), "status": m.status, "attempts": m.attempts, "last_error": shown(m.last_error),
             "created_by": m.created_by, "created_at": m.created_at.isoformat(),
             "sent_at": m.sent_at.isoformat() if m.sent_at else None} for m in rows]


@router.get("/queue")
def console_queue(ctx: Ctx, user: User = require("queue"), console: str = "web",
                  reclaim_idle_seconds: float = Query(60.0, ge=0, le=MAX_RECLAIM_IDLE_SECONDS, allow_inf_nan=False)) -> list[dict]:
    """This console's share of the dispatch stream (plus entries other consoles left idle),
    most urgent first; entries stay pending until an incident is acknowledged."""
    consumer = f"{user.username}:{console[:40]}"
    entries = ctx.dispatch.board(consumer, reclaim_idle_ms=int(max(0.0, reclaim_idle_seconds) * 1000))
    return [{"entry_id": e.entry_id, "incident_id": e.incident_id, "urgency": e.urgency} for e in entries]


# ----------------------------------------------------------------------------- post actions
@router.post("/posts/{post_id}/escalate", dependencies=[CSRF])
def escalate_post(post_id: RowId, ctx: Ctx, body: EscalateBody | None = None,
                  user: User = require("escalate_post")) -> dict:
    incident_id = _act(actions.escalate_post, ctx, post_id, user, urgency=body.urgency if body else "high")
    return {"ok": True, "post_id": post_id, "incident_id": incident_id}


@router.post("/posts/{post_id}/dispose", dependencies=[CSRF])
def dispose_post(post_id: RowId, body: DisposeBody, ctx: Ctx, user: User = require("dispose_post")) -> dict:
    _act(actions.dispose_post, ctx, post_id, user, body.disposition)
    return {"ok": True, "post_id": post_id, "disposition": body.disposition}


@router.post("/posts/{post_id}/attach", dependencies=[CSRF])
def attach_post(post_id: RowId, body: AttachBody, ctx: Ctx, user: User = require("escalate_post")) -> dict:
    _act(actions.attach_post, ctx, post_id, body.incident_id, user)
    return {"ok": True, "post_id": post_id, "incident_id": body.incident_id}
