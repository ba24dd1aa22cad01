"""Dashboard sessions held server-side (login_sessions): the cookie carries only a random id.

Pure ASGI middleware in place of Starlette's signed-cookie sessions. `request.session` is the same
dict as before; the middleware loads it from the row the cookie names and writes back what a
request changed when the response starts. A session whose signed-in person changes (sign-in,
sign-out, the idle sign-out, a deactivated account) gets a new id and the old row is revoked, so a
copy of the old cookie is worth nothing; "sign out everywhere" revokes every row of a person.

Nobody signed in (the sign-in form's CSRF token, a page to return to, a notice) has no row: that
session travels in a signed, expiring cookie ("a." + itsdangerous), so an anonymous visitor costs
no database write however often they load the sign-in page. A random id never contains a dot.
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookies import CookieError, SimpleCookie
from typing import Any

import redis
from anyio import to_thread
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.tables import LoginSession, User

log = logging.getLogger("flare.web")

COOKIE = "flare_session"
# A session ends after this long without a request (the dashboard's idle sign-out is shorter; a
# wall display, which has no idle clock, stays signed in while it keeps refreshing).
MAX_AGE_SECONDS = 12 * 3600
EXTEND_AFTER = timedelta(hours=1)  # the expiry moves on (a row write) at most once an hour
SCOPE_KEY = "flare.login_session"
ANONYMOUS_PREFIX = "a."
IDLE_SIGN_OUT = "idle"  # revoked_by of a session ended by the idle timeout
# Set on the scope when the database refused to load the session (dashboard/degraded.py).
DATABASE_DOWN = "flare.database_down"
# Copies of credentials' last successful checks, for the degraded queue (dashboard/degraded.py).
COPY_TTL_S = 600.0  # how long after its last check a credential still opens the degraded queue
WRITE_EVERY_S = 10.0  # a credential's copy is written at most this often (at once when who they are changed)
COPY_PREFIX = "flare:credential-copy:"
USER_PREFIX = "flare:credential-copies:"


def anonymous_serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="flare-anonymous-session")


def utcnow() -> datetime:
    """Session time is read from the same clock as the dashboard's idle timeout (time.time)."""
    return datetime.fromtimestamp(time.time(), UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _snapshot(data: dict) -> str:
    return json.dumps(data, sort_keys=True, default=str)


@dataclass
class Loaded:
    row_id: int | None
    user_id: int | None
    original: str  # what the session held when the request arrived
    token: str = ""
    expires_at: datetime | None = None
    # The cookie named a signed-in session that has ended (signed out, idle, expired, revoked):
    # a request sent from a page of that session, e.g. one that raced the request that ended it.
    ended: bool = False


def load(engine: Engine, token: str | None, now: datetime | None = None,
         anonymous: URLSafeTimedSerializer | None = None) -> tuple[Loaded, dict[str, Any]]:
    """The live session a cookie names; an unknown, expired or revoked id gives an empty one.

    A session ended by the idle sign-out reads as that sign-out did ("signed_out_idle"), whichever
    cookie the request carried: a request already on its way with the old id is told its session
    expired, the same as one sent after the new cookie arrived."""
    if token and token.startswith(ANONYMOUS_PREFIX):
        data = _anonymous_data(anonymous, token)
        return Loaded(None, None, _snapshot(data)), data
    if token:
        with Session(engine) as db:
            row = db.exec(select(LoginSession).where(LoginSession.token_hash == token_hash(token))).first()
        if row is not None and row.revoked_at is None and row.expires_at > (now or utcnow()):
            data = dict(row.data or {})
            return Loaded(row.id, row.user_id, _snapshot(data), token, row.expires_at), data
        if row is not None and row.user_id is not None:
            data = {"signed_out_idle": True} if row.revoked_by == IDLE_SIGN_OUT else {}
            return Loaded(None, None, _snapshot(data), ended=True), data
    return Loaded(None, None, _snapshot({})), {}


def _anonymous_data(anonymous: URLSafeTimedSerializer | None, token: str) -> dict[str, Any]:
    if anonymous is None:
        return {}
    try:
        data = anonymous.loads(token[len(ANONYMOUS_PREFIX):], max_age=MAX_AGE_SECONDS)
    except BadSignature:  # forged, garbled or expired (SignatureExpired is a BadSignature)
        return {}
    # Only what an anonymous session may hold: a signed-in person always has a revocable row.
    return data if isinstance(data, dict) and data.get("user_id") is None else {}


def save(engine: Engine, loaded: Loaded, data: dict[str, Any], now: datetime | None = None,
         anonymous: URLSafeTimedSerializer | None = None) -> str | None:
    """Write back what the request changed, and move the expiry on. Returns the cookie value to
    set (a new id, or the same one with a new expiry), "" when the cookie should be cleared, None
    when the cookie stays as it is."""
    now = now or utcnow()
    changed = _snapshot(data) != loaded.original
    extend = loaded.expires_at is not None and now + timedelta(seconds=MAX_AGE_SECONDS) - loaded.expires_at >= EXTEND_AFTER
    if not changed and not extend:
        return None
    user_id = data.get("user_id")
    if loaded.row_id is None and user_id is None and anonymous is not None:
        return ANONYMOUS_PREFIX + anonymous.dumps(data) if data else ""
    with Session(engine) as db:
        if loaded.row_id is not None and user_id == loaded.user_id:
            values: dict[str, Any] = {"updated_at": now}
            if changed:
                values["data"] = data
            if extend:
                values["expires_at"] = now + timedelta(seconds=MAX_AGE_SECONDS)
            # A revoked row stays revoked: a request in flight never brings it back.
            done = db.execute(update(LoginSession).where(LoginSession.id == loaded.row_id,
                                                         LoginSession.revoked_at.is_(None)).values(**values))
            db.commit()
            return loaded.token if extend and done.rowcount else None
        if loaded.row_id is not None:  # someone else is signed in now, or nobody: a new id
            reason = ("sign-in" if user_id is not None
                      else IDLE_SIGN_OUT if data.get("signed_out_idle") else "sign-out")
            db.execute(update(LoginSession).where(LoginSession.id == loaded.row_id, LoginSession.revoked_at.is_(None))
                       .values(revoked_at=now, revoked_by=reason))
        token = ""
        if data and user_id is None and anonymous is not None:  # signed out: no row needed
            token = ANONYMOUS_PREFIX + anonymous.dumps(data)
        elif data:
            token = secrets.token_urlsafe(32)
            db.add(LoginSession(token_hash=token_hash(token), user_id=user_id, data=data, created_at=now,
                                updated_at=now, expires_at=now + timedelta(seconds=MAX_AGE_SECONDS)))
        db.commit()
    return token


def revoke_user_sessions(db: Session, user_id: int, by: str, now: datetime | None = None) -> int:
    """End every live session of one person (caller commits). Returns how many were live."""
    now = now or utcnow()
    result = db.execute(update(LoginSession).where(
        LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None), LoginSession.expires_at > now)
        .values(revoked_at=now, revoked_by=by))
    return int(result.rowcount or 0)


def live_session_counts(db: Session, now: datetime | None = None) -> dict[int, int]:
    """Signed-in sessions still live, per person (for the admin screen)."""
    now = now or utcnow()
    rows = db.exec(select(LoginSession.user_id).where(
        LoginSession.user_id.is_not(None), LoginSession.revoked_at.is_(None), LoginSession.expires_at > now)).all()
    counts: dict[int, int] = {}
    for user_id in rows:
        counts[user_id] = counts.get(user_id, 0) + 1
    return counts


def cookie_key(token: str) -> str:
    return "s:" + token_hash(token)


def bearer_key(token: str) -> str:
    return "t:" + token_hash(token)


class SessionCopies:
    """Copies of credentials' last successful checks, in Redis: what authorises the degraded queue
    while the database refuses (dashboard/degraded.py says what is checked and what deletes them)."""

    def __init__(self, conn: redis.Redis) -> None:
        self.conn = conn
        self._written: dict[str, tuple[float, tuple[str, str, bool]]] = {}  # key → (when, who) last written
        self._lock = threading.Lock()

    def remember(self, key: str, user: User, *, expires_at: float | None = None, last_seen: float | None = None,
                 idle_s: float | None = None) -> None:
        """Record a successful check (at most every WRITE_EVERY_S per credential). Never raises."""
        now = time.monotonic()
        # Who they are (role, name, alert sound) is written at once when it changed: a dispatcher
        # who just muted or unmuted the alert sound gets that choice on the degraded queue too.
        person = (user.role, user.display_name or user.username, bool(user.muted_alerts))
        with self._lock:
            last = self._written.get(key)
            if last is not None and now - last[0] < WRITE_EVERY_S and last[1] == person:
                return
            self._written[key] = (now, person)
            if len(self._written) > 10_000:
                self._written = {k: w for k, w in self._written.items() if now - w[0] < WRITE_EVERY_S}
        copy = {"user_id": user.id, "username": user.username, "role": user.role,
                "display_name": person[1], "muted_alerts": person[2], "expires_at": expires_at,
                "last_seen": last_seen, "idle_s": idle_s}
        try:
            with self.conn.pipeline(transaction=False) as pipe:
                pipe.set(COPY_PREFIX + key, json.dumps(copy), ex=int(COPY_TTL_S))
                pipe.sadd(USER_PREFIX + str(user.id), key)
                pipe.expire(USER_PREFIX + str(user.id), int(COPY_TTL_S))
                pipe.execute()
        except redis.RedisError:  # the database answered: nothing else depends on this
            with self._lock:
                self._written.pop(key, None)

    def recall(self, key: str, now: float | None = None) -> dict[str, Any] | None:
        """The copy of a credential, if it is still good: None when none is kept, or the session
        it copies has expired or gone idle since."""
        value = self.conn.get(COPY_PREFIX + key)
        if value is None:
            return None
        copy = json.loads(value)
        now = time.time() if now is None else now
        if copy.get("expires_at") is not None and now >= float(copy["expires_at"]):
            return None
        if copy.get("idle_s") is not None and now - float(copy.get("last_seen") or 0) >= float(copy["idle_s"]):
            return None
        return copy

    def forget(self, key: str) -> None:
        with self._lock:
            self._written.pop(key, None)
        self.conn.delete(COPY_PREFIX + key)

    def forget_user(self, user_id: int) -> None:
        """Every copy of one person's credentials (deactivated, signed out everywhere, token replaced)."""
        keys = [k.decode() if isinstance(k, bytes) else k for k in self.conn.smembers(USER_PREFIX + str(user_id))]
        with self._lock:
            for key in keys:
                self._written.pop(key, None)
        self.conn.delete(USER_PREFIX + str(user_id), *[COPY_PREFIX + k for k in keys])


def _cookie_from(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except CookieError:  # a malformed Cookie header names no session
                return None
            if COOKIE in jar:
                return jar[COOKIE].value
    return None


class ServerSessions:
    """Loads `scope["session"]` from login_sessions and saves it when the response starts.

    While the database refuses, the session cannot be read: the request goes on with an empty
    session, DATABASE_DOWN set and the cookie's id kept (Loaded.token), so the degraded queue can
    authorise it from its copy (dashboard/degraded.py), and nothing is saved. A request that ends
    a session or changes who is signed in deletes the session's copy (`copies`)."""

    def __init__(self, app, engine: Engine, secret: str, https_only: bool = False,
                 copies: SessionCopies | None = None) -> None:
        self.app = app
        self.engine = engine
        self.copies = copies
        self.anonymous = anonymous_serializer(secret)
        self.flags = "; path=/; httponly; samesite=strict" + ("; secure" if https_only else "")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope.get("path", "").startswith("/static/"):  # our own files: no session needed
            scope["session"] = {}
            await self.app(scope, receive, send)
            return
        token = _cookie_from(scope)
        try:
            loaded, data = await to_thread.run_sync(load, self.engine, token, None, self.anonymous)
        except (OperationalError, InterfaceError) as exc:
            log.warning("session not loaded, the database refused: %s", str(exc).splitlines()[0])
            scope[DATABASE_DOWN] = True
            loaded, data = Loaded(None, None, _snapshot({}), token or ""), {}
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            scope[DATABASE_DOWN] = True
            loaded, data = Loaded(None, None, _snapshot({}), token or ""), {}
        scope["session"] = data
        scope[SCOPE_KEY] = loaded
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        async def send_saving(message) -> None:
            if message["type"] == "http.response.start" and not scope.get(DATABASE_DOWN):
                cookie = await to_thread.run_sync(save, self.engine, loaded, scope["session"], None, self.anonymous)
                if loaded.user_id is not None and scope["session"].get("user_id") != loaded.user_id \
                        and self.copies is not None:
                    await to_thread.run_sync(self._forget, loaded.token)
                if cookie is not None:
                    value = (f"{COOKIE}={cookie}; Max-Age={MAX_AGE_SECONDS}" if cookie
                             else f"{COOKIE}=; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0")
                    message["headers"] = list(message.get("headers", [])) + [
                        (b"set-cookie", (value + self.flags).encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, send_saving)

    def _forget(self, token: str) -> None:
        try:
            self.copies.forget(cookie_key(token))
        except redis.RedisError:  # its copy lapses by itself within COPY_TTL_S
            log.warning("the copy of an ended session could not be deleted; it lapses within %.0f s", COPY_TTL_S)
