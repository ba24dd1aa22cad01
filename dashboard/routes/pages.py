"""Sign-in, the dispatch queue and the queue's one-click actions.

Jinja2 autoescapes every value: post text is never trusted.
"""
from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import redis
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func
from sqlmodel import Session, select

from flows import actions
from dashboard.deps import CSRF, DB, Ctx, CurrentUser, RowId, require
from dashboard.routes.api import dispatch_order
from dashboard.routes.common import BACKGROUND, action_done, action_failed, home_for, render, safe_next
from dashboard.routes.feed import review_count
from dashboard.routes.queue_lines import CadLine, cad_lines
from dashboard.security import authenticate, new_csrf_token
from models.access import audit
from escalation.service import ActionError
from models.enums import EventKind, IncidentStatus, Role
from models.tables import Incident, IncidentEvent, User

router = APIRouter(include_in_schema=False)


@router.get("/login")
def login_form(request: Request, error: str = "", next: str = "", expired: str = "") -> HTMLResponse:
    return render(request, "login.html", error=error, next_path=safe_next(next, ""), expired=expired == "1",
                  idle_minutes=request.app.state.settings.dashboard.session_idle_minutes)


@router.post("/login", dependencies=[CSRF])
def login(request: Request, db: DB, username: str = Form(...), password: str = Form(...),
          next: str = Form("")):
    throttle = request.app.state.login_throttle
    address = request.client.host if request.client else "unknown"
    try:
        attempt = throttle.begin(username, address)  # counted before the password is checked
    except redis.RedisError:
        # Sign-in is never let through uncounted: while the throttle's store does not answer,
        # nobody signs in, and the page says so (sessions already open are not affected).
        return render(request, "login.html", status_code=503, next_path=safe_next(next, ""),
                      error="Sign-in is unavailable for a moment (its guard against password guessing "
                            "cannot be reached). Try again in a few seconds; if it persists, call the duty admin.")
    if attempt.wait > 0:
        minutes = max(1, math.ceil(attempt.wait / 60))
        return render(request, "login.html", status_code=429, next_path=safe_next(next, ""),
                      error=f"Too many failed sign-ins for this account or from this address. "
                            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}, or ask a supervisor.")
    try:
        user = authenticate(db, username, password)
    except Exception:
        # Our failure (the database), not a guess: the attempt no longer counts as in flight, or
        # a room retrying through an outage would find its address refused for a minute after it.
        throttle.ended(address, attempt)
        raise
    if user is not None and user.role == Role.wall.value:
        # A wall display signs in with its key only, so replacing the key is enough to revoke it.
        throttle.ended(address, attempt)
        return render(request, "login.html", status_code=403, next_path="",
                      error="A wall display signs in with its wall key at /wall/enter, not a password.")
    if user is None:
        throttle.failed_address(address, attempt)  # (the account's count already has this attempt)
        return render(request, "login.html", error="Wrong username or password.", status_code=401,
                      next_path=safe_next(next, ""))
    throttle.succeeded(username, address, attempt)
    request.session.clear()
    request.session.update(user_id=user.id, last_seen=time.time(), csrf=new_csrf_token())
    return RedirectResponse(safe_next(next, home_for(user.role)), status_code=303)


@router.post("/logout", dependencies=[CSRF])
def logout(request: Request):
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(user: CurrentUser):
    return RedirectResponse(home_for(user.role), status_code=303)


@router.post("/me/alerts", dependencies=[CSRF])
def toggle_alert_sound(request: Request, db: DB, user: CurrentUser, muted: str = Form(...),
                       next: str = Form("/queue")):
    """Each dispatcher decides whether their own console beeps (the visual alert always shows)."""
    row = db.get(User, user.id)
    row.muted_alerts = muted == "1"
    db.add(row)
    db.commit()
    text = "Alert sound muted." if row.muted_alerts else "Alert sound on."
    return action_done(request, text, safe_next(next, "/queue"), muted=row.muted_alerts)


@dataclass
class QueueRow:
    incident: Incident
    last_step_at: datetime | None
    steps_fired: int
    line: CadLine


def open_queue(db: Session) -> list[QueueRow]:
    open_states = [IncidentStatus.queued.value, IncidentStatus.acknowledged.value]
    incidents = dispatch_order(list(db.exec(select(Incident).where(Incident.status.in_(open_states)))))
    if not incidents:
        return []
    steps = db.exec(
        select(IncidentEvent.incident_id, func.max(IncidentEvent.at), func.count(IncidentEvent.id))
        .where(IncidentEvent.kind == EventKind.escalation_step.value,
               IncidentEvent.incident_id.in_([i.id for i in incidents]))
        .group_by(IncidentEvent.incident_id)).all()
    by_incident = {incident_id: (at, n) for incident_id, at, n in steps}
    lines = cad_lines(db, [i.id for i in incidents])
    return [QueueRow(i, *by_incident.get(i.id, (None, 0)), lines[i.id]) for i in incidents]


def audit_queue_view(request: Request, db: Session, user: User, rows: list[QueueRow], refresh: bool) -> None:
    """The queue shows each open incident's latest report and place: one audit entry per page
    load naming the incidents shown, and one per live refresh that shows something this person's
    last recorded view did not (a new incident or a new report), not one per refresh or per row."""
    shown = [(r.incident.id, r.line.post_id) for r in rows]
    digest = hashlib.sha256(repr(shown).encode()).hexdigest()[:32]
    if refresh and request.session.get("queue_seen") == digest:
        return
    audit(db, user.username, "view_queue", "incident", "",
          {"count": len(rows), "incidents": [i for i, _ in shown], "refresh": refresh})
    db.commit()
    request.session["queue_seen"] = digest


@router.get("/queue")
def queue_page(request: Request, db: DB, user: User = require("queue")) -> HTMLResponse:
    rows = open_queue(db)
    audit_queue_view(request, db, user, rows, refresh=False)
    return render(request, "queue.html", user=user, rows=rows, review_count=review_count(db))


@router.get("/queue/rows", dependencies=[BACKGROUND])
def queue_fragment(request: Request, db: DB, user: User = require("queue")) -> HTMLResponse:
    rows = open_queue(db)
    audit_queue_view(request, db, user, rows, refresh=True)
    return render(request, "_queue_rows.html", user=user, fragment=True, rows=rows, review_count=review_count(db))


def _run(request: Request, action: Callable[..., object], incident_id: int, ctx, user: User, next_path: str,
         done_text: str):
    back = safe_next(next_path, "/queue")
    try:
        action(ctx, incident_id, user)
    except ActionError as exc:
        return action_failed(request, str(exc), back)
    return action_done(request, f"Incident #{incident_id} {done_text}.", back, incident_id=incident_id)


@router.post("/incidents/{incident_id}/acknowledge", dependencies=[CSRF])
def acknowledge_form(request: Request, incident_id: RowId, ctx: Ctx, user: User = require("acknowledge"),
                     next: str = Form("/queue")):
    return _run(request, actions.acknowledge, incident_id, ctx, user, next, "acknowledged")


@router.post("/incidents/{incident_id}/claim", dependencies=[CSRF])
def claim_form(request: Request, incident_id: RowId, ctx: Ctx, user: User = require("acknowledge"),
               next: str = Form("/queue")):
    return _run(request, actions.claim, incident_id, ctx, user, next, "claimed by you")


@router.post("/incidents/{incident_id}/take-over", dependencies=[CSRF])
def take_over_form(request: Request, incident_id: RowId, ctx: Ctx, user: User = require("acknowledge"),
                   next: str = Form("/queue")):
    return _run(request, actions.take_over, incident_id, ctx, user, next, "taken over: it is yours now")


@router.post("/incidents/{incident_id}/release", dependencies=[CSRF])
def release_form(request: Request, incident_id: RowId, ctx: Ctx, user: User = require("acknowledge"),
                 next: str = Form("/queue")):
    return _run(request, actions.release, incident_id, ctx, user, next, "released for anyone to take")
