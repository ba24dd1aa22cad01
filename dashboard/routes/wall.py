"""Wall display: the dispatch queue on a shared screen, read-only, that stays signed in safely.

A wall is an account with the `wall` role. It signs in with its wall key (the account's token,
shown once to the admin who creates it), never with a password; its session holds the key's
digest instead of an idle clock, so nobody has to sign it in again every half hour, and an admin
revokes it at once by replacing the key or deactivating the account (the next refresh ends it).
The role can open this screen and nothing else: no incident pages, no feed, no API, no actions.
It shows what the queue rows show and less: anyone passing a wall can read it, so phone numbers,
e-mail addresses and handles in the reports' first words are masked, as for field units.
"""
from __future__ import annotations

import math
import re
import time

import redis
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from dashboard.deps import CSRF, DB, require
from dashboard.routes.common import render
from dashboard.routes.field import field_text
from dashboard.routes.pages import QueueRow, audit_queue_view, open_queue
from dashboard.security import new_csrf_token, user_for_token
from models.access import audit
from models.enums import Role
from models.tables import User
from models.types import utcnow

router = APIRouter(include_in_schema=False)

# Timers and ages on the wall also move without events.
WALL_REFRESH_SECONDS = 30


# Digits cut off at the end of the first words may be the start of a number the masking cannot
# recognise any more: they go too.
_CUT_DIGITS = re.compile(r"[+(]?\d[\d\s().-]*$")


def wall_rows_of(db) -> list[QueueRow]:
    rows = open_queue(db)
    for row in rows:
        words = field_text(row.line.first_words)
        if row.line.words_truncated:
            words = _CUT_DIGITS.sub("[…]", words).rstrip()
        row.line.first_words = words
    return rows


@router.get("/wall/enter")
def wall_enter_form(request: Request) -> HTMLResponse:
    return render(request, "wall_enter.html", error="")


@router.post("/wall/enter", dependencies=[CSRF])
def wall_enter(request: Request, db: DB, key: str = Form(...)):
    """Wrong keys are counted against the address they come from, as wrong passwords are (its
    failures plus its attempts in flight, LoginThrottle.begin_address), never against walls in
    general: guessing from one place locks no other wall out."""
    throttle = request.app.state.login_throttle
    address = request.client.host if request.client else "unknown"
    try:
        attempt = throttle.begin_address(address)  # counted before the key is checked
    except redis.RedisError:
        return render(request, "wall_enter.html", status_code=503,
                      error="Wall sign-in is unavailable for a moment (its guard against key guessing cannot "
                            "be reached). Try again in a few seconds; if it persists, call the duty admin.")
    if attempt.wait > 0:
        return render(request, "wall_enter.html", status_code=429,
                      error=f"Too many wrong wall keys. Try again in {max(1, math.ceil(attempt.wait / 60))} min.")
    try:
        user = user_for_token(db, key.strip()) if key.strip() else None
    except Exception:
        throttle.ended(address, attempt)  # our failure (the database), not a guess
        raise
    if user is None or user.role != Role.wall.value:
        throttle.failed_address(address, attempt)
        return render(request, "wall_enter.html", status_code=401,
                      error="That is not a current wall key. Ask an admin for the key of this wall.")
    throttle.ended(address, attempt)
    request.session.clear()
    request.session.update(user_id=user.id, last_seen=time.time(), csrf=new_csrf_token(),
                           wall_key=user.api_token_hash)
    audit(db, user.username, "wall_signed_in", "user", user.id, {"address": address})
    db.commit()
    return RedirectResponse("/wall", status_code=303)


# What a wall shows (reporters' first words and places) is audited as the queue is: each page
# load, and each refresh that shows something its last recorded view did not.
@router.get("/wall")
def wall_page(request: Request, db: DB, user: User = require("wall")) -> HTMLResponse:
    rows = wall_rows_of(db)
    audit_queue_view(request, db, user, rows, refresh=False)
    return render(request, "wall.html", user=user, rows=rows, review_count=0, idle_seconds=0,
                  refresh_seconds=WALL_REFRESH_SECONDS, now=utcnow())


@router.get("/wall/rows")
def wall_rows(request: Request, db: DB, user: User = require("wall")) -> HTMLResponse:
    rows = wall_rows_of(db)
    audit_queue_view(request, db, user, rows, refresh=True)
    return render(request, "_queue_rows.html", user=user, fragment=True, rows=rows, review_count=0)
