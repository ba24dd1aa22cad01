"""The dispatcher's side: send or revoke a link, watch what arrives, reveal blurred media.

Everything a reporter shared is personal data, so every view is audited. The panel polls the
state every couple of seconds; one audit entry per person, incident and minute records that
continuous view instead of one row per refresh. Photos fetched one by one are audited each time.
"""
from __future__ import annotations

import time

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from config import Settings

from flows import publish
from flows.context import AppContext
from dashboard.deps import API_ERRORS, CSRF, DB, Ctx, RowId, require
from flows.live import publish_live
from dashboard.routes.common import MEDIA_REVEALED_ACTION, action_done, action_failed, render, safe_next
from models.access import audit, can
from dashboard.share import links, storage
from models.enums import EventKind, IncidentStatus, MessagePurpose
from models.events import append_event
from models.media import SharedItem, ShareLink
from models.tables import AuditEntry, Incident, OutboundMessage, User
from models.types import utcnow

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/v1", tags=["share"], responses=API_ERRORS)

VIEW_AUDIT_WINDOW_SECONDS = 60
TRAIL_LENGTH = 50


class ShareLinkRequest(BaseModel):
    post_id: int | None = None


def audit_view(ctx: AppContext, db: Session, user: User, action: str, incident_id: int,
               detail: dict, scope: str = "") -> None:
    """Audit a repeated view at most once per window (Redis SET NX is the window's lock)."""
    key = f"flare:share:audit:{user.id}:{incident_id}:{action}:{scope}"
    if ctx.redis.set(key, b"1", nx=True, ex=VIEW_AUDIT_WINDOW_SECONDS):
        audit(db, user.username, action, "incident", incident_id,
              {**detail, "covers_seconds": VIEW_AUDIT_WINDOW_SECONDS})
        db.commit()


def _send(ctx: AppContext, incident_id: int, user: User, post_id: int | None, served_at: str = "") -> dict:
    with Session(ctx.engine, expire_on_commit=False) as s:
        created = links.create_link(s, ctx.settings, incident_id, user.username, ctx.dm_possible, post_id=post_id,
                                    served_at=served_at)
        audit(s, user.username, "share_link_created", "incident", incident_id, {"link_id": created.link.id})
        s.commit()
    if created.message is not None:
        publish.enqueue_send(ctx, created.message.id)
    publish_live(ctx, {"type": "share_update", "incident_id": incident_id, "link_id": created.link.id,
                       "kind": "link_created"})
    return {"link_id": created.link.id, "url": created.url, "expires_at": created.link.expires_at.isoformat(),
            "message_id": created.message.id if created.message else None,
            "delivery": created.message.kind if created.message else "none"}


def _revoke(ctx: AppContext, incident_id: int, link_id: int, user: User) -> ShareLink:
    with Session(ctx.engine, expire_on_commit=False) as s:
        link = links.revoke(s, incident_id, link_id, user.username)
        audit(s, user.username, "share_link_revoked", "incident", incident_id, {"link_id": link_id})
        s.commit()
    publish_live(ctx, {"type": "share_update", "incident_id": incident_id, "link_id": link_id, "kind": "revoked"})
    return link


@router.post("/incidents/{incident_id}/share-link", dependencies=[CSRF])
def send_link_form(incident_id: RowId, request: Request, ctx: Ctx, user: User = require("share_link"),
                   post_id: RowId | None = Form(None), next_path: str | None = Form(None, alias="next")):
    back = safe_next(next_path, f"/incidents/{incident_id}/share")
    try:
        sent = _send(ctx, incident_id, user, post_id, served_at=str(request.base_url))
    except LookupError as exc:
        return action_failed(request, str(exc), back, status_code=404)
    except ValueError as exc:
        return action_failed(request, str(exc), back)
    how = {"dm": "by direct message", "public_reply": "as a public reply"}.get(sent["delivery"])
    # With no private channel the dispatcher is the channel: they pass the link on (e.g. by phone).
    text = (f"Share link sent {how}." if how
            else f"No private channel to this reporter: give them this one-time link another way: {sent['url']}")
    return action_done(request, text, back, **sent)


@router.post("/incidents/{incident_id}/share-link/{link_id}/revoke", dependencies=[CSRF])
def revoke_form(incident_id: RowId, link_id: RowId, request: Request, ctx: Ctx, user: User = require("share_link"),
                next_path: str | None = Form(None, alias="next")):
    back = safe_next(next_path, f"/incidents/{incident_id}/share")
    try:
        _revoke(ctx, incident_id, link_id, user)
    except LookupError as exc:
        return action_failed(request, str(exc), back, status_code=404)
    return action_done(request, "Share link revoked.", back, link_id=link_id)


@api_router.post("/incidents/{incident_id}/share-link", dependencies=[CSRF])
def send_link_api(incident_id: RowId, request: Request, ctx: Ctx, body: ShareLinkRequest | None = None,
                  user: User = require("share_link")) -> dict:
    try:
        return _send(ctx, incident_id, user, body.post_id if body else None, served_at=str(request.base_url))
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from exc


@api_router.post("/incidents/{incident_id}/share-link/{link_id}/revoke", dependencies=[CSRF])
def revoke_api(incident_id: RowId, link_id: RowId, ctx: Ctx, user: User = require("share_link")) -> dict:
    try:
        link = _revoke(ctx, incident_id, link_id, user)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc
    return {"ok": True, "link_id": link.id, "revoked_at": link.revoked_at.isoformat()}


def _revealed(db: Session, username: str, incident_id: int) -> set[str]:
    rows = db.exec(select(AuditEntry.detail).where(
        AuditEntry.username == username, AuditEntry.action == MEDIA_REVEALED_ACTION,
        AuditEntry.object_type == "incident", AuditEntry.object_id == str(incident_id)))
    return {d.get("target", "") for d in rows if isinstance(d, dict)}


def _media_url(incident_id: int, item: SharedItem) -> str:
    return f"/incidents/{incident_id}/share/media/{item.id}"


def share_state(db: Session, incident_id: int, username: str, urls_from: tuple[Settings, str] | None = None) -> dict:
    """Everything shared for an incident, newest first where it matters, as plain JSON.

    With `urls_from` (settings, the address the request reached) each link also carries its URL,
    for people who may send links: the one its message carried, so a wrong address is seen, or
    for a link sent by no message a fresh token for the same link (the row's expiry still rules)."""
    now = utcnow()
    incident = db.get(Incident, incident_id)
    incident_open = incident is not None and IncidentStatus(incident.status).is_open  # links end with it
    revealed = _revealed(db, username, incident_id)
    # Live streams can hold thousands of frames: count them in SQL and load only the newest per link.
    items = list(db.exec(select(SharedItem).where(SharedItem.incident_id == incident_id, SharedItem.kind != "frame")
                         .order_by(SharedItem.id)))
    frame_stats = {link_id: (count, last_id) for link_id, count, last_id in db.exec(
        select(SharedItem.link_id, func.count(SharedItem.id), func.max(SharedItem.id))
        .where(SharedItem.incident_id == incident_id, SharedItem.kind == "frame").group_by(SharedItem.link_id))}
    locations = [i for i in items if i.kind == "location"]
    state: dict = {"incident_id": incident_id, "links": [], "location": None, "trail": [], "photos": [],
                   "live": [], "texts": []}
    sent = {m.id: m for m in db.exec(select(OutboundMessage).where(
        OutboundMessage.incident_id == incident_id, OutboundMessage.purpose == MessagePurpose.share_link.value))}
    for link in links.links_for(db, incident_id):
        message = sent.get(link.message_id)
        entry = {
            "id": link.id, "status": links.link_status(link, now, incident_open), "created_by": link.created_by,
            "sent_as": message.kind if message else "not sent",
            # Did the message carrying the link reach the platform? queued, sent or failed (why).
            "delivery": {"status": message.status, "error": message.last_error[:200],
                         "sent_at": message.sent_at.isoformat() if message.sent_at else None}
            if message else {"status": "none", "error": "", "sent_at": None},
            "created_at": link.created_at.isoformat(), "expires_at": link.expires_at.isoformat(),
            "consent_at": link.consent_at.isoformat() if link.consent_at else None,
            "consent_scope": link.consent_scope, "ended_at": link.ended_at.isoformat() if link.ended_at else None,
            "revoked_at": link.revoked_at.isoformat() if link.revoked_at else None,
        }
        if urls_from is not None:
            settings, served_at = urls_from
            entry["url"] = (links.url_in(message.text) if message else "") \
                or links.link_url(settings, links.make_token(settings, link), served_at)
        state["links"].append(entry)
        if link.id in frame_stats:
            count, last_id = frame_stats[link.id]
            latest = db.get(SharedItem, last_id)
            state["live"].append({"link_id": link.id, "frames": count,
                                  "active": links.link_status(link, now, incident_open) == "sharing",
                                  "revealed": f"live:{link.id}" in revealed,
                                  "latest": {"id": latest.id, "url": _media_url(incident_id, latest),
                                             "at": latest.received_at.isoformat(), "sha256": latest.sha256}})
    for loc in locations[-TRAIL_LENGTH:]:
        state["trail"].append({"lat": loc.data.get("lat"), "lon": loc.data.get("lon"),
                               "accuracy_m": loc.data.get("accuracy_m"), "at": loc.received_at.isoformat()})
    if locations:
        last = locations[-1]
        state["location"] = {**last.data, "at": last.received_at.isoformat(), "link_id": last.link_id,
                             "age_s": round((now - last.received_at).total_seconds(), 1), "sha256": last.sha256}
    for p in (i for i in items if i.kind == "photo"):
        state["photos"].append({"id": p.id, "url": _media_url(incident_id, p), "at": p.received_at.isoformat(),
                                "sha256": p.sha256, "size": p.size, "revealed": f"item:{p.id}" in revealed})
    for t in (i for i in items if i.kind == "text"):
        state["texts"].append({"id": t.id, "text": t.data.get("text", ""), "at": t.received_at.isoformat()})
    return state


def _incident_or_404(db: Session, incident_id: int) -> Incident:
    incident = db.get(Incident, incident_id)
    if incident is None:
        raise HTTPException(404, "incident not found")
    return incident


@router.get("/incidents/{incident_id}/share/state")
def state_json(incident_id: RowId, request: Request, db: DB, ctx: Ctx, user: User = require("view_incident")) -> dict:
    _incident_or_404(db, incident_id)
    # A link is a bearer credential: only people who may send links see it (to copy or check it).
    urls_from = (ctx.settings, str(request.base_url)) if can(user.role, "share_link") else None
    state = share_state(db, incident_id, user.username, urls_from)
    audit_view(ctx, db, user, "view_share_state", incident_id, {"items": len(state["trail"]) + len(state["photos"])})
    return state


@router.get("/incidents/{incident_id}/share/media/{item_id}")
def media_file(incident_id: RowId, item_id: RowId, db: DB, ctx: Ctx, user: User = require("view_incident")) -> Response:
    item = db.get(SharedItem, item_id)
    if item is None or item.incident_id != incident_id or not item.path:
        raise HTTPException(404, "no such media")
    if item.kind == "frame":  # refreshed every second while live: one entry per minute per stream
        audit_view(ctx, db, user, "view_live_frames", incident_id, {"link_id": item.link_id}, f"live:{item.link_id}")
    else:
        audit(db, user.username, "view_shared_media", "incident", incident_id, {"item_id": item.id})
        db.commit()
    path = storage.file_path(ctx.settings, item)
    return FileResponse(path, media_type=item.content_type, headers={
        "Cache-Control": "private, no-store", "Content-Security-Policy": "default-src 'none'; sandbox",
        "X-Content-Sha256": item.sha256})


@router.post("/incidents/{incident_id}/share/media/{item_id}/reveal", dependencies=[CSRF])
def reveal(incident_id: RowId, item_id: RowId, db: DB, user: User = require("view_incident")) -> dict:
    """Unblur a photo, or a whole live view (revealing one of its frames reveals the stream)."""
    item = db.get(SharedItem, item_id)
    if item is None or item.incident_id != incident_id or item.kind not in ("photo", "frame"):
        raise HTTPException(404, "no such media")
    target = f"live:{item.link_id}" if item.kind == "frame" else f"item:{item.id}"
    if target in _revealed(db, user.username, incident_id):
        return {"ok": True, "target": target}
    # A live stream appends to the same event log every second: retry if we lose the seq race.
    for attempt in range(5):
        try:
            audit(db, user.username, MEDIA_REVEALED_ACTION, "incident", incident_id,
                  {"item_id": item.id, "target": target, "kind": item.kind, "sha256": item.sha256})
            append_event(db, incident_id, EventKind.media_revealed, user.username,
                         {"item_id": item.id, "target": target, "kind": item.kind})
            db.commit()
            return {"ok": True, "target": target}
        except IntegrityError:
            db.rollback()
            time.sleep(0.02 * (attempt + 1))
    raise HTTPException(503, "busy, try again")


@router.get("/incidents/{incident_id}/share")
def share_panel_page(incident_id: RowId, request: Request, db: DB, user: User = require("view_incident")):
    incident = _incident_or_404(db, incident_id)
    audit(db, user.username, "view_incident_share", "incident", incident_id)
    db.commit()
    return render(request, "share_incident.html", user=user, incident=incident)
