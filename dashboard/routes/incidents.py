"""The incident page and the actions a dispatcher takes on one incident.

Opening the page shows the reporters' own words and history, so every view is written to the
audit log and to the incident's event log before anything is rendered.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlmodel import select

from flows import actions
from dashboard.deps import CSRF, DB, Ctx, RowId, require, row_id
from dashboard.routes.common import action_done, action_failed, render, safe_next
from dashboard.routes.incident_view import build_view, event_summary
from dashboard.routes.reply_templates import LANGUAGE_NAMES, reply_language, reply_templates
from models.access import audit, can
from dashboard.share.links import hide_links
from escalation.service import ActionError
from models.enums import EventKind, MessageKind
from models.events import append_event
from models.tables import Incident, IncidentPost, TriageRecord, User

router = APIRouter(include_in_schema=False)

MAX_REPLY_CHARS = 1000
MAX_NOTE_CHARS = 2000


@router.get("/incidents/{incident_id}")
def incident_page(request: Request, incident_id: RowId, db: DB, user: User = require("view_incident")) -> HTMLResponse:
    incident = db.get(Incident, incident_id)
    if incident is None:
        raise HTTPException(404, "incident not found")
    audit(db, user.username, "view_incident", "incident", incident_id, {"via": "dashboard"})
    append_event(db, incident_id, EventKind.viewed, user.username, {"via": "dashboard"})
    db.commit()
    view = build_view(db, incident)
    ctx = request.app.state.ctx
    caps = {c: can(user.role, c) for c in ("acknowledge", "reply", "resolve", "share_link", "dispose_post", "export")}
    # A share link in a sent message is a bearer credential: only people who may send links see it.
    shown = (lambda text: text) if caps["share_link"] else hide_links
    # Each reporter's language as triage read their post: the reply templates follow the one chosen.
    languages = dict(db.exec(select(TriageRecord.post_id, TriageRecord.language)
                             .where(TriageRecord.post_id.in_([p.id for p in view.posts] or [-1]))).all())
    return render(request, "incident.html", user=user, v=view, caps=caps, event_summary=event_summary, shown=shown,
                  templates_for_reply=reply_templates(ctx.settings.service),
                  reply_languages={pid: reply_language(languages.get(pid)) for pid in (p.id for p in view.posts)},
                  language_names=LANGUAGE_NAMES,
                  tile_url=ctx.settings.dashboard.tile_url)


def _back(incident_id: int) -> str:
    return f"/incidents/{incident_id}"


@router.post("/incidents/{incident_id}/reply", dependencies=[CSRF])
def reply_form(request: Request, incident_id: RowId, db: DB, ctx: Ctx, post_id: Annotated[RowId, Form()],
               user: User = require("reply"), text: str = Form(...), kind: str = Form(MessageKind.dm.value)):
    back = _back(incident_id)
    text = text.strip()
    if not text:
        return action_failed(request, "Write a message first.", back, 422)
    if len(text) > MAX_REPLY_CHARS:
        return action_failed(request, f"Keep replies under {MAX_REPLY_CHARS} characters.", back, 422)
    if kind not in set(MessageKind):
        return action_failed(request, "Unknown reply kind.", back, 422)
    # The recipient must be one of this incident's reporters: a crafted post id must not let a
    # dispatcher message someone through an incident they were not working on.
    member = db.exec(select(IncidentPost.id).where(IncidentPost.incident_id == incident_id,
                                                   IncidentPost.post_id == post_id)).first()
    if member is None:
        return action_failed(request, "That post is not part of this incident.", back, 404)
    incident = db.get(Incident, incident_id)
    if kind == MessageKind.public_reply.value and incident is not None and incident.silent:
        return action_failed(request, "This reporter cannot speak safely: never answer them in public.", back, 422)
    try:
        message_id = actions.reply(ctx, incident_id, post_id, user, text, kind=kind)
    except ActionError as exc:
        return action_failed(request, str(exc), back)
    label = "Direct message" if kind == MessageKind.dm.value else "Public reply"
    return action_done(request, f"{label} queued for sending.", back, message_id=message_id)


def _closing(request: Request, action: Callable[..., object], incident_id: int, ctx, user: User, note: str, done: str,
             next_path: str = ""):
    back = safe_next(next_path, _back(incident_id))
    try:
        action(ctx, incident_id, user, note=note.strip()[:MAX_NOTE_CHARS])
    except ActionError as exc:
        return action_failed(request, str(exc), back)
    return action_done(request, f"Incident #{incident_id} {done}.", back)


@router.post("/incidents/{incident_id}/resolve", dependencies=[CSRF])
def resolve_form(request: Request, incident_id: RowId, ctx: Ctx, user: User = require("resolve"),
                 note: str = Form(""), next: str = Form("")):
    return _closing(request, actions.resolve, incident_id, ctx, user, note, "resolved", next)


@router.post("/incidents/{incident_id}/close", dependencies=[CSRF])
def close_form(request: Request, incident_id: RowId, ctx: Ctx, user: User = require("resolve"),
               note: str = Form(""), next: str = Form("")):
    return _closing(request, actions.close, incident_id, ctx, user, note, "closed", next)


@router.post("/incidents/{incident_id}/false-alarm", dependencies=[CSRF])
def false_alarm_form(request: Request, incident_id: RowId, ctx: Ctx, user: User = require("resolve"),
                     note: str = Form(""), next: str = Form("")):
    return _closing(request, actions.false_alarm, incident_id, ctx, user, note, "closed as a false alarm", next)


@router.post("/incidents/{incident_id}/reassign", dependencies=[CSRF])
def reassign_form(request: Request, incident_id: RowId, ctx: Ctx, user: User = require("acknowledge"),
                  to_username: str = Form(...)):
    back = _back(incident_id)
    try:
        actions.reassign(ctx, incident_id, user, to_username.strip())
    except ActionError as exc:
        return action_failed(request, str(exc), back)
    return action_done(request, f"Incident #{incident_id} handed to {to_username.strip()}.", back)


def _ids(text: str) -> list[int]:
    return [i for i in (row_id(x) for x in re.findall(r"\d+", text)) if i is not None][:50]


@router.post("/incidents/{incident_id}/merge", dependencies=[CSRF])
def merge_form(request: Request, incident_id: RowId, ctx: Ctx, user: User = require("resolve"),
               others: str = Form(...)):
    back = _back(incident_id)
    ids = [incident_id] + [i for i in _ids(others) if i != incident_id]
    if len(ids) < 2:
        return action_failed(request, "Name at least one other incident number to merge.", back, 422)
    try:
        kept = actions.merge(ctx, ids, user)
    except ActionError as exc:
        return action_failed(request, str(exc), back)
    return action_done(request, f"Incidents {', '.join(f'#{i}' for i in ids)} merged into #{kept}.",
                       _back(kept), incident_id=kept)


@router.post("/incidents/{incident_id}/split", dependencies=[CSRF])
def split_form(request: Request, incident_id: RowId, ctx: Ctx, user: User = require("resolve"),
               post_ids: list[RowId] = Form(default=[])):
    back = _back(incident_id)
    if not post_ids:
        return action_failed(request, "Tick the reports that belong to a separate incident.", back, 422)
    try:
        new_id = actions.split(ctx, incident_id, post_ids, user)
    except ActionError as exc:
        return action_failed(request, str(exc), back)
    return action_done(request, f"{len(post_ids)} report(s) moved to new incident #{new_id}.",
                       _back(new_id), incident_id=new_id)
