"""Helpers shared by the server-rendered views: rendering, role checks, action responses.

Every page is rendered by Jinja with autoescape on; nothing a member of the public wrote is ever
marked safe. Actions answer a browser form with a redirect (and a one-shot notice) and the
dashboard's own fetch calls with JSON, so both paths share one implementation.
"""
from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy import func, update
from sqlmodel import Session, select

from dashboard.deps import CurrentUser
from dashboard.security import new_csrf_token
from models.access import can
from models.tables import AuditEntry, User
from models.types import utcnow

# A shift, for wellness counts and "who is on": long enough to cover a night shift with overlap.
SHIFT = timedelta(hours=12)
# Writing last_seen_at on every request would turn reads into writes; once a minute is enough
# for the supervisor's "on shift" list.
LAST_SEEN_RESOLUTION = timedelta(seconds=60)
MEDIA_REVEALED_ACTION = "media_revealed"
# After this many graphic items in a shift the header suggests a break (for the person only).
BREAK_SUGGESTED_AT = 10

# (capability, path, label) — the navigation shows only what the role may open.
NAV_LINKS = [
    ("feed", "/feed", "Monitor feed"),
    ("queue", "/queue", "Dispatch queue"),
    ("view_incident", "/map", "Map"),
    ("field", "/field", "Field feed"),
    ("supervise", "/supervisor", "Supervisor"),
    ("admin", "/admin", "Admin"),
    ("wall", "/wall", "Wall display"),
]

HOME_BY_ROLE = {"field": "/field", "officer": "/feed", "admin": "/admin", "wall": "/wall"}


def home_for(role: str) -> str:
    return HOME_BY_ROLE.get(role, "/queue")


def require_any(*capabilities: str):
    """Like deps.require, for routes that several roles reach through different capabilities."""

    def check(user: CurrentUser) -> User:
        if not any(can(user.role, c) for c in capabilities):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"your role ({user.role}) cannot {' or '.join(capabilities)}")
        return user

    return Depends(check)


def remember_idle_clock(request: Request) -> None:
    """Runs before sign-in checks on background requests (live refreshes) to note the idle clock."""
    request.state.idle_since = request.session.get("last_seen")


def restore_idle_clock(request: Request) -> None:
    """A screen refreshing itself is not the person being active: keep the idle timeout running,
    so an unattended console still signs out even while events keep arriving."""
    since = getattr(request.state, "idle_since", None)
    if since is not None:
        request.session["last_seen"] = since


BACKGROUND = Depends(remember_idle_clock)


def exposure_count(db: Session, username: str) -> int:
    """How many graphic media this person revealed during the current shift (a wellness signal)."""
    since = utcnow() - SHIFT
    return int(db.exec(select(func.count(AuditEntry.id)).where(
        AuditEntry.username == username, AuditEntry.action == MEDIA_REVEALED_ACTION,
        AuditEntry.at >= since)).one())


def _touch_and_count(request: Request, user: User, count: bool) -> int:
    ctx = request.app.state.ctx
    now = utcnow()
    stale = user.last_seen_at is None or now - user.last_seen_at > LAST_SEEN_RESOLUTION
    if not stale and not count:
        return 0
    with Session(ctx.engine) as db:
        if stale:
            db.execute(update(User).where(User.id == user.id).values(last_seen_at=now))
            db.commit()
        return exposure_count(db, user.username) if count else 0


# Defence in depth for the dashboard's own pages: even if some text escaped escaping, no script
# but our own files could run. Styles stay inline-capable for Leaflet; images may come from the
# configured tile server only (so nothing could be sent out as an image request to any other
# host); post media only from our own archive (never a platform's host).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:{tiles}; media-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_TEMPLATE_PART = re.compile(r"\{[^}]*\}")


def tile_source(tile_url: str) -> str:
    """The CSP source for a tile URL template ("https://{s}.tiles.example/{z}/{x}/{y}.png" gives
    "https://*.tiles.example"); "" when there is none or it names no http(s) host."""
    parts = urlsplit(tile_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return ""
    host = _TEMPLATE_PART.sub("*", parts.netloc)
    if not re.fullmatch(r"(\*\.)?[A-Za-z0-9.-]+(:\d+)?", host):
        return ""  # a placeholder elsewhere than a leading label: no source would cover it exactly
    return f"{parts.scheme}://{host}"


@lru_cache(maxsize=8)
def content_security_policy(tile_url: str) -> str:
    source = tile_source(tile_url)
    return CONTENT_SECURITY_POLICY.format(tiles=f" {source}" if source else "")


def render(request: Request, name: str, user: User | None = None, status_code: int = 200,
           fragment: bool = False, **context: Any) -> HTMLResponse:
    """A page, or with fragment=True a piece of one refreshed live (no header, no notice)."""
    if fragment:
        restore_idle_clock(request)
    if "csrf" not in request.session:
        request.session["csrf"] = new_csrf_token()
    notice = None if fragment else request.session.pop("notice", None)
    nav = [(path, label) for cap, path, label in NAV_LINKS if user and can(user.role, cap)]
    # Fragments carry no header, so they skip the exposure count query (they run on every event).
    exposure = _touch_and_count(request, user, count=not fragment) if user else 0
    templates = request.app.state.templates
    response = templates.TemplateResponse(
        request, name,
        {"csrf_token": request.session["csrf"], "user": user, "nav": nav, "notice": notice,
         "exposure": exposure, "path": request.url.path,
         "idle_seconds": request.app.state.settings.dashboard.session_idle_minutes * 60,
         "break_suggested_at": BREAK_SUGGESTED_AT,
         # Templates offer only the buttons this person may press (the routes check again).
         "may": lambda capability: bool(user) and can(user.role, capability), **context},
        status_code=status_code,
    )
    response.headers["Content-Security-Policy"] = content_security_policy(
        request.app.state.settings.dashboard.tile_url)
    return response


def safe_next(value: str | None, default: str) -> str:
    """Only same-site paths: a crafted `next` must never send a dispatcher to another site."""
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


def wants_json(request: Request) -> bool:
    return request.headers.get("x-requested-with") == "flare"


def action_done(request: Request, message: str, next_path: str, **data: Any):
    if wants_json(request):
        return JSONResponse({"ok": True, "message": message, **data})
    request.session["notice"] = {"level": "ok", "text": message}
    return RedirectResponse(next_path, status_code=303)


def action_failed(request: Request, message: str, next_path: str, status_code: int = 409):
    if wants_json(request):
        return JSONResponse({"ok": False, "detail": message}, status_code=status_code)
    request.session["notice"] = {"level": "error", "text": message}
    return RedirectResponse(next_path, status_code=303)


def login_redirect(request: Request):
    """Send someone whose sign-in ended back to the page they were on, once signed in again.

    A page load returns to that page; a form sent after the session ended returns to the page it
    was sent from, and the dashboard's script keeps the unsent action to offer it again (it is
    never replayed unasked: the situation may have changed meanwhile).
    """
    expired = bool(request.session.get("signed_out_idle"))
    if request.method == "GET" and not wants_json(request):
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    else:
        referer = urlsplit(request.headers.get("referer", ""))
        same_site = referer.netloc in ("", request.url.netloc)
        back = (referer.path + (f"?{referer.query}" if referer.query else "")) if same_site else ""
    if back.startswith("/wall") and not wants_json(request):
        return RedirectResponse("/wall/enter", status_code=303)  # a wall signs in with its key
    params = {"next": safe_next(back, "")} if safe_next(back, "") not in ("", "/login") else {}
    if expired:
        params["expired"] = "1"
    url = "/login" + (f"?{urlencode(params)}" if params else "")
    if wants_json(request):
        detail = "Your session expired; sign in again." if expired else "You are not signed in."
        return JSONResponse({"ok": False, "detail": detail, "expired": expired, "login": url}, status_code=401)
    return RedirectResponse(url, status_code=303)
