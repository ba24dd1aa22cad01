"""The dispatch queue while the database refuses connections: degraded, not a 500.

Sign-in, sessions, incidents and the audit log all live in the database. While it refuses, the
queue page (/queue, and its live refresh /queue/rows) and GET /api/v1/queue answer from Redis:

- who is asking: every successful check of a session or an API token (deps.current_user) leaves a
  copy of what it found in Redis (SessionCopies: the person, their role and alert sound choice, the
  session's expiry and idle clock) for COPY_TTL_S, written at most every WRITE_EVERY_S per
  credential. While the database refuses, a request is authorised from that copy only (the queue
  capability, the session's expiry and idle sign-out checked as usual). Every revocation deletes
  the copies: sign-out and any change of who is signed in (ServerSessions), an admin's
  deactivation, "sign out everywhere" and a replaced API token (routes/admin.py,
  SessionCopies.forget_user). A revocation cannot happen during the outage itself (it needs the
  database), so a copy is as good as the database's answer at the moment it stopped answering.
  Signing in is not possible meanwhile;
- what they see: a banner saying the database is unavailable, the incidents waiting in the
  dispatch stream (ids and urgency only: their details are in the database), and the provisional
  urgent reports read during the outage (flows/dbless.py: text as triage read it, escaped as every
  page's text is, urgency, platform, where, age). No action is offered: they are not incidents yet;
- what alerts them: the page refreshes its rows from /queue/rows every 3 s (dashboard/static/
  flare.js, as the normal queue does) and a critical that was not on the screen before, a
  provisional report or an incident, raises the normal queue's alert: the banner naming it (the
  report's text as triage read it, set as text) and the sound unless the person muted it (their
  choice is in the copy); what was there at page load gets the count only. The page reloads into
  the normal queue once a refresh finds the database answering;
- the audit: a view of personal data is always audited. The record is buffered in Redis (AOF in
  production) before anything personal is shown and written to the audit log with the time of the
  view once the database answers (flows.dbless.flush_audit); if Redis does not take the record,
  the reports are not shown. Buffering, rather than hiding the text, because the text is what a
  dispatcher needs to act on during the outage (what, where), and Redis is as durable here as the
  posts held in it. A live refresh is recorded only when what it shows changed.

Any other request that meets the outage gets a 503 saying so (JSON or a short page), not a 500.
"""
from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import redis
from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from dashboard.routes.common import content_security_policy, wants_json
from dashboard.sessions import SCOPE_KEY, Loaded, SessionCopies, bearer_key, cookie_key
from flows import dbless
from flows.context import DatabaseUnavailable
from models.access import can

log = logging.getLogger("flare.web")

SEEN_PREFIX = "flare:dbless:seen:"
QUEUE_PATHS = ("/queue", "/queue/rows", "/api/v1/queue")
BANNER = ("DATABASE UNAVAILABLE: this is a degraded queue. Incidents, actions and sign-in are unavailable until "
          "the database answers. Below: the incidents waiting in the dispatch stream (details unavailable), and "
          "URGENT REPORTS READ DURING THE OUTAGE, decided by triage but not yet stored or grouped: each becomes an "
          "incident in the normal queue as soon as the database is back.")
REFUSED = ("The database cannot be reached, so this view is unavailable for now. The dispatch queue (/queue) "
           "still shows urgent reports read meanwhile. Retry in a few seconds.")


def database_down(exc: BaseException) -> bool:
    return isinstance(exc, (OperationalError, InterfaceError, DatabaseUnavailable)) or \
        (isinstance(exc, DBAPIError) and exc.connection_invalidated)


def credential_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return bearer_key(auth.split(" ", 1)[1].strip())
    loaded = request.scope.get(SCOPE_KEY)
    if isinstance(loaded, Loaded) and loaded.token:
        return cookie_key(loaded.token)
    return None


def install(app: FastAPI) -> None:
    async def _database_refused(request: Request, exc: Exception) -> Response:
        if not database_down(exc):
            raise exc
        return await to_thread.run_sync(answer, request)

    for kind in (DatabaseUnavailable, OperationalError, InterfaceError, DBAPIError):
        app.add_exception_handler(kind, _database_refused)


def answer(request: Request) -> Response:
    """What a request that met the database outage gets."""
    path = request.url.path
    api = path.startswith("/api/")
    if request.method != "GET" or path not in QUEUE_PATHS:
        return _refused(request, api)
    copies: SessionCopies = request.app.state.session_copies
    key = credential_key(request)
    try:
        who = copies.recall(key) if key else None
    except (redis.RedisError, ValueError):
        who = None
    if who is None or not can(who["role"], "queue"):
        detail = ("The database is unavailable and this sign-in could not be checked without it "
                  "(signed in more than ten minutes ago, or not at all). Sign-in works again when it is back.")
        if api or wants_json(request) or path == "/queue/rows":
            return JSONResponse({"detail": detail, "degraded": "database"}, status_code=401 if api else 503,
                                headers={"retry-after": "5"})
        return _page(request, 503, detail, [], [])
    ctx = request.app.state.ctx
    conn = copies.conn
    try:
        provisional = dbless.provisional_entries(conn)
        waiting = _waiting(conn, ctx.dispatch.key)
    except redis.RedisError:
        return _refused(request, api, "The database and Redis are both unavailable. ")
    via = "api" if api else ("refresh" if path == "/queue/rows" else "page")
    try:
        _audit(conn, who["username"], key, provisional, via)
    except redis.RedisError:  # a view that cannot be audited is not shown
        return _refused(request, api, "The view could not be audited. ")
    if api:
        return JSONResponse({"detail": BANNER, "degraded": "database", "waiting": waiting,
                             "provisional": [_public(e) for e in provisional]},
                            status_code=503, headers={"retry-after": "2"})
    return _page(request, 200, BANNER, waiting, provisional, fragment=path == "/queue/rows",
                 muted=bool(who.get("muted_alerts")))


def _waiting(conn: redis.Redis, key: str) -> list[dict[str, Any]]:
    """The incidents waiting in the dispatch stream (acknowledged ones have left it): id and urgency."""
    out = []
    for entry_id, fields in conn.xrange(key, count=500):
        f = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
             for k, v in fields.items()}
        if "incident_id" in f:
            eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            queued_at = int(eid.split("-")[0]) / 1000.0
            out.append({"incident_id": int(f["incident_id"]), "urgency": f.get("urgency", ""),
                        "queued_at": queued_at, "age_s": max(0.0, time.time() - queued_at)})
    return out


def _audit(conn: redis.Redis, username: str, key: str | None, provisional: list[dict], via: str) -> None:
    """Buffer one audit record per view that shows something this credential's last recorded view
    did not (a page load is always recorded). Raises a Redis error when it cannot be buffered."""
    shown = [e.get("key") for e in provisional]
    if not shown:
        return  # nothing personal shown
    digest = hashlib.sha256(repr(shown).encode()).hexdigest()[:32]
    previous = conn.set(SEEN_PREFIX + (key or username), digest, ex=3600, get=True)
    previous = previous.decode() if isinstance(previous, bytes) else previous
    if via == "refresh" and previous == digest:
        return
    dbless.buffer_audit(conn, username, "view_queue_degraded", "post", "",
                        {"count": len(shown), "posts": shown, "via": via})


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    now = time.time()
    at = entry.get("posted_at") or entry.get("read_at")
    return {"key": entry.get("key"), "platform": entry.get("platform"), "is_dm": entry.get("is_dm"),
            "urgency": entry.get("urgency"), "category": entry.get("category"), "text": entry.get("text"),
            "where": entry.get("where") or [], "reasons": entry.get("reasons") or [],
            "posted_at": entry.get("posted_at"), "age_s": round(now - at, 1) if at else None}


def _refused(request: Request, api: bool, prefix: str = "") -> Response:
    if api or wants_json(request) or "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"detail": prefix + REFUSED, "degraded": "database"}, status_code=503,
                            headers={"retry-after": "5"})
    return _page(request, 503, prefix + REFUSED, [], [])


def _page(request: Request, status_code: int, detail: str, waiting: list[dict], provisional: list[dict],
          fragment: bool = False, muted: bool = False) -> HTMLResponse:
    templates = request.app.state.templates
    name = "_queue_degraded_rows.html" if fragment else "queue_degraded.html"
    response = templates.TemplateResponse(
        request, name, {"detail": detail, "waiting": waiting, "provisional": [_public(e) for e in provisional],
                        "shown": status_code == 200, "muted": muted,
                        "live": request.url.path == "/queue"}, status_code=status_code)
    response.headers["Content-Security-Policy"] = content_security_policy(
        request.app.state.settings.dashboard.tile_url)
    response.headers["retry-after"] = "2"
    return response
