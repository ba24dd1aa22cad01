"""FastAPI dependencies: the context, the database session and the signed-in user."""
from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from typing import Annotated

from annotated_types import Interval

from fastapi import Depends, HTTPException, Request, status
from pydantic import BaseModel
from sqlmodel import Session

from flows.context import AppContext, DatabaseUnavailable
from dashboard.security import session_expired, user_for_token
from dashboard.sessions import DATABASE_DOWN, SCOPE_KEY, Loaded, SessionCopies, bearer_key, cookie_key
from models.access import can
from models.enums import Role
from models.tables import User


OPENAPI_PATH = "/openapi.json"  # the API description, for signed-in users and token holders only


# The idle clock restarts on activity, to this resolution: the session is stored server-side, and
# a write on every request would turn every read into a write.
LAST_SEEN_RESOLUTION_SECONDS = 10


class LoginRequired(Exception):
    """Raised for browser pages; the app turns it into a redirect to /login."""


def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx


def get_db(ctx: Annotated[AppContext, Depends(get_ctx)]) -> Iterator[Session]:
    with Session(ctx.engine, expire_on_commit=False) as session:
        yield session


Ctx = Annotated[AppContext, Depends(get_ctx)]
DB = Annotated[Session, Depends(get_db)]

class ErrorBody(BaseModel):
    detail: str | list


def _error(description: str) -> dict:
    return {"model": ErrorBody, "description": description}


# What any JSON API operation may answer besides its success: part of /openapi.json, so clients
# (and the schemathesis test) know every status code the API uses.
API_ERRORS: dict[int | str, dict] = {
    401: _error("No valid API token or session"),
    403: _error("The role cannot do this, or a signed-in session's CSRF token is missing"),
    404: _error("No such incident, post, link or item"),
    409: _error("The action does not fit the current state (the detail says why)"),
    413: _error("Request body too large"),
    503: _error("The live queue store (Redis) cannot be reached; retry shortly"),
}

# Row ids are INTEGER columns (signed 32-bit in PostgreSQL, the narrower of the two databases): a
# larger number in a path, form or body is refused at the edge (422 naming the bound) instead of
# overflowing in the driver (a 500).
MAX_ROW_ID = 2**31 - 1
RowId = Annotated[int, Interval(ge=1, le=MAX_ROW_ID)]


def row_id(text: str) -> int | None:
    """A row id typed into a form field (digits only), or None when it cannot name a row."""
    text = text.strip()
    if not text.isdigit() or len(text) > len(str(MAX_ROW_ID)):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ROW_ID else None


def current_user(request: Request, db: DB, ctx: Ctx) -> User:
    if request.scope.get(DATABASE_DOWN):
        # The session could not be read: dashboard/degraded.py answers (the queue from Redis).
        raise DatabaseUnavailable("the database refused the session look-up")
    copies: SessionCopies | None = getattr(request.app.state, "session_copies", None)
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth.split(" ", 1)[1].strip()
        user = user_for_token(db, token)
        if user is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid token")
        if user.role == Role.wall.value:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a wall key opens the wall display only")
        request.state.via_token = True
        if copies is not None:
            copies.remember(bearer_key(token), user)
        return user
    sess = request.session
    user_id = sess.get("user_id")
    idle = ctx.settings.dashboard.session_idle_minutes
    # A wall display has no one at it to be idle: its session is bound to its wall key instead
    # (checked below), so revoking or replacing the key ends it at the next refresh.
    wall_key = sess.get("wall_key")
    if user_id is None or (not wall_key and session_expired(sess.get("last_seen"), idle)):
        idle_out = user_id is not None or bool(sess.get("signed_out_idle"))
        sess.clear()
        if idle_out:
            sess["signed_out_idle"] = True  # the sign-in page says what happened
        if request.url.path.startswith("/api/") or request.url.path == OPENAPI_PATH:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "login required")
        raise LoginRequired()
    user = db.get(User, user_id)
    if user is None or not user.active or not wall_session_valid(user, wall_key):
        sess.clear()
        raise LoginRequired()
    now = time.time()
    if now - float(sess.get("last_seen") or 0) >= LAST_SEEN_RESOLUTION_SECONDS:
        sess["last_seen"] = now  # (to the resolution: not a database write on every request)
    request.state.via_token = False
    loaded = request.scope.get(SCOPE_KEY)
    if copies is not None and isinstance(loaded, Loaded) and loaded.token and loaded.user_id == user.id:
        copies.remember(cookie_key(loaded.token), user,
                        expires_at=loaded.expires_at.timestamp() if loaded.expires_at else None,
                        last_seen=float(sess.get("last_seen") or now), idle_s=None if wall_key else idle * 60.0)
    return user


def wall_session_valid(user: User, wall_key: str | None) -> bool:
    """A wall account's session holds the digest of the key it signed in with; any other account
    never carries one. A replaced key (or a password sign-in) is no wall session."""
    if user.role == Role.wall.value:
        return bool(wall_key) and hmac.compare_digest(wall_key, user.api_token_hash)
    return not wall_key


CurrentUser = Annotated[User, Depends(current_user)]


def require(capability: str):
    def check(user: CurrentUser) -> User:
        if not can(user.role, capability):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"your role ({user.role}) cannot {capability}")
        return user

    return Depends(check)


async def check_csrf(request: Request) -> None:
    """Every state-changing form carries the session's CSRF token (API token calls are exempt)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    expected = request.session.get("csrf")
    loaded = request.scope.get(SCOPE_KEY)
    if not expected and (request.session.get("signed_out_idle") or (isinstance(loaded, Loaded) and loaded.ended)):
        # Sent from a page whose sign-in has ended (idle, signed out elsewhere, revoked), perhaps
        # while another request was ending it: say so, and the page keeps the action to offer it
        # again after sign-in, rather than refuse it as a missing CSRF token.
        raise LoginRequired()
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        ctype = request.headers.get("content-type", "")
        if "form" in ctype:
            form = await request.form()
            sent = form.get("csrf_token")
    # Compared in constant time: how long a refusal takes says nothing about how close a guess was.
    if not expected or not sent or not hmac.compare_digest(str(sent).encode(), str(expected).encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "CSRF token missing or wrong; reload the page")


CSRF = Depends(check_csrf)
