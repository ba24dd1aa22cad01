"""Server-rendered pages. Jinja2 autoescapes every value: post text is never trusted."""
from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import Session, select

from dashboard import actions
from dashboard.deps import CSRF, DB, Ctx, CurrentUser, require
from dashboard.routes.api import dispatch_order
from dashboard.security import authenticate, new_csrf_token
from escalation.service import ActionError
from models.enums import IncidentStatus
from models.tables import Incident, User

router = APIRouter(include_in_schema=False)


def render(request: Request, name: str, **context) -> HTMLResponse:
    if "csrf" not in request.session:
        request.session["csrf"] = new_csrf_token()
    templates = request.app.state.templates
    return templates.TemplateResponse(request, name, {"csrf_token": request.session["csrf"], **context})


@router.get("/login")
def login_form(request: Request, error: str = "") -> HTMLResponse:
    return render(request, "login.html", error=error, user=None)


@router.post("/login", dependencies=[CSRF])
def login(request: Request, db: DB, username: str = Form(...), password: str = Form(...)):
    user = authenticate(db, username, password)
    if user is None:
        return render(request, "login.html", error="Wrong username or password.", user=None)
    import time

    request.session.clear()
    request.session.update(user_id=user.id, last_seen=time.time(), csrf=new_csrf_token())
    home = {"field": "/field", "officer": "/feed", "admin": "/admin"}.get(user.role, "/queue")
    return RedirectResponse(home, status_code=303)


@router.post("/logout", dependencies=[CSRF])
def logout(request: Request):
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(user: CurrentUser):
    return RedirectResponse({"field": "/field", "officer": "/feed", "admin": "/admin"}.get(user.role, "/queue"),
                            status_code=303)


def open_queue(db: Session) -> list[Incident]:
    rows = db.exec(select(Incident).where(
        Incident.status.in_([IncidentStatus.queued.value, IncidentStatus.acknowledged.value])))
    return dispatch_order(list(rows))


@router.get("/queue")
def queue_page(request: Request, db: DB, user: User = require("queue")) -> HTMLResponse:
    return render(request, "queue.html", user=user, incidents=open_queue(db))


@router.post("/incidents/{incident_id}/acknowledge", dependencies=[CSRF])
def acknowledge_form(incident_id: int, ctx: Ctx, user: User = require("acknowledge")):
    try:
        actions.acknowledge(ctx, incident_id, user)
    except ActionError:
        pass  # already closed by someone else: the queue page shows the current state
    return RedirectResponse("/queue", status_code=303)
