"""Live updates: one Redis subscription per process, fanned out to every open dashboard (SSE).

A single background thread listens on the live feed's channel (flows.live.live_channel) and
hands each message to the event loop serving the browsers, which copies it into one small queue
per connected viewer. A
slow viewer's queue drops its oldest message rather than slowing anyone else: every page treats
an event as "something changed, refresh", so losing one in a burst loses nothing.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis
from fastapi import APIRouter, HTTPException, Request
from sqlmodel import Session
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from dashboard.deps import LoginRequired, current_user, wall_session_valid
from dashboard.security import session_expired, token_digest
from dashboard.sessions import SCOPE_KEY, utcnow
from flows.live import live_channel
from models.tables import LoginSession, User

log = logging.getLogger("flare.live")
router = APIRouter(include_in_schema=False)

VIEWER_QUEUE_SIZE = 256
KEEPALIVE_SECONDS = 15.0
# An open stream re-checks the sign-in it was opened with this often (one primary-key read of the
# session row and the person): signing out, "sign out everywhere", deactivation, a new API token,
# the session's expiry or its idle timeout end the stream within this time, not at the next page.
SESSION_CHECK_SECONDS = 5.0
# Field units and wall displays only need to know that an incident changed, never which post arrived.
FIELD_HIDDEN_TYPES = {"post", "disposed"}


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """One event, encoded once as an SSE frame and shared by every viewer's queue."""

    type: str
    incident_id: int | None
    frame: bytes

    @classmethod
    def from_raw(cls, raw: bytes | str) -> LiveMessage | None:
        try:
            payload = json.loads(raw)
        except (TypeError, ValueError):
            return None
        if not isinstance(payload, dict):
            return None
        # Re-encode: one line of JSON is what the SSE framing below relies on.
        data = json.dumps(payload, separators=(",", ":"), default=str).encode()
        incident_id = payload.get("incident_id")
        return cls(str(payload.get("type", "")), incident_id if isinstance(incident_id, int) else None,
                   b"event: live\ndata: " + data + b"\n\n")


# The channel itself: while Redis is gone no event can arrive, though the browsers' connections
# (and their keepalives) stay up. They are told, so each screen polls until the channel is back.
CHANNEL_LOST = LiveMessage("lost", None, b"event: lost\ndata: {}\n\n")
CHANNEL_BACK = LiveMessage("back", None, b"event: back\ndata: {}\n\n")


class LiveHub:
    """Owns the process's one pub/sub connection and the set of viewer queues."""

    RESUBSCRIBE_SECONDS = 1.0  # between attempts while Redis is gone

    def __init__(self, conn: redis.Redis) -> None:
        self._conn = conn
        self._channel = live_channel(conn)
        self._viewers: set[asyncio.Queue] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def viewer_count(self) -> int:
        return len(self._viewers)

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=VIEWER_QUEUE_SIZE)
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._viewers.add(queue)
            if self._thread is None or not self._thread.is_alive() or self._stop.is_set():
                # Each listener thread has its own stop flag, so a stopping one never blocks a new one.
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._listen, args=(self._stop,),
                                                name="flare-live", daemon=True)
                self._thread.start()
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        with self._lock:
            self._viewers.discard(queue)
            if not self._viewers:
                self._stop.set()  # nobody is watching: release the Redis connection

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)

    def _fan_out(self, message: LiveMessage) -> None:
        for queue in list(self._viewers):
            if queue.full():
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    pass
            queue.put_nowait(message)

    def _tell_viewers(self, message: LiveMessage) -> bool:
        """Hand a message to the serving loop; False when that loop has closed."""
        if self._loop is None:
            return True
        try:
            self._loop.call_soon_threadsafe(self._fan_out, message)
        except RuntimeError:  # the serving loop has closed: nobody left to tell
            return False
        return True

    def _listen(self, stop: threading.Event) -> None:
        lost = False
        while not stop.is_set():
            pubsub = self._conn.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self._channel)
                if lost:
                    lost = False
                    if not self._tell_viewers(CHANNEL_BACK):
                        return
                while not stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    live = LiveMessage.from_raw(message["data"])
                    if live is not None and not self._tell_viewers(live):
                        return
            except (redis.RedisError, OSError, ValueError) as exc:
                # ValueError/OSError: the pool was closed under us (process shutting down).
                if stop.is_set():
                    return
                # Redis restarting must not end live updates for good: browsers keep their
                # connection and we resubscribe; meanwhile each page polls (told once).
                log.warning("live channel lost (%s); resubscribing", exc)
                if not lost:
                    lost = True
                    if not self._tell_viewers(CHANNEL_LOST):
                        return
                stop.wait(self.RESUBSCRIBE_SECONDS)
            finally:
                try:
                    pubsub.close()
                except (redis.RedisError, OSError, ValueError):
                    pass


def hub_for(request: Request) -> LiveHub:
    state = request.app.state
    hub = getattr(state, "live_hub", None)
    if hub is None:
        hub = state.live_hub = LiveHub(state.ctx.redis)
    return hub


@dataclass(frozen=True, slots=True)
class StreamSignIn:
    """What an open stream was authorised by: a browser session's row, or an API token's digest."""

    user_id: int
    role: str
    session_row: int | None
    token: str  # the API token's digest ("" for a browser session)


def _signed_in(request: Request) -> StreamSignIn:
    """Authenticate with a short-lived session: a stream must not hold a database connection."""
    ctx = request.app.state.ctx
    idle_since = request.session.get("last_seen")
    with Session(ctx.engine) as db:
        try:
            user = current_user(request, db, ctx)
        except LoginRequired as exc:
            raise HTTPException(401, "login required") from exc
    if idle_since is not None:
        request.session["last_seen"] = idle_since  # (re)connecting the stream is not activity
    if request.state.via_token:
        bearer = request.headers.get("authorization", "").split(" ", 1)[1].strip()
        return StreamSignIn(user.id, user.role, None, token_digest(bearer))
    loaded = request.scope.get(SCOPE_KEY)
    return StreamSignIn(user.id, user.role, loaded.row_id if loaded else None, "")


def still_signed_in(engine, sign_in: StreamSignIn, idle_minutes: int) -> bool:
    """Whether the sign-in a stream was opened with would still let its person in."""
    with Session(engine) as db:
        user = db.get(User, sign_in.user_id)
        if user is None or not user.active or user.role != sign_in.role:
            return False
        if sign_in.token:
            return hmac.compare_digest(user.api_token_hash, sign_in.token)
        row = db.get(LoginSession, sign_in.session_row) if sign_in.session_row is not None else None
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return False
    data = row.data or {}
    if data.get("user_id") != sign_in.user_id or not wall_session_valid(user, data.get("wall_key")):
        return False
    return bool(data.get("wall_key")) or not session_expired(data.get("last_seen"), idle_minutes)


def visible_to(role: str, message: LiveMessage) -> bool:
    if role not in ("field", "wall") or message in (CHANNEL_LOST, CHANNEL_BACK):
        return True
    return message.type not in FIELD_HIDDEN_TYPES and message.incident_id is not None


@router.get("/live/events")
async def live_events(request: Request):
    sign_in = await run_in_threadpool(_signed_in, request)
    role = sign_in.role
    engine = request.app.state.ctx.engine
    idle_minutes = request.app.state.settings.dashboard.session_idle_minutes
    hub = hub_for(request)
    queue = hub.subscribe()

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"event: hello\ndata: " + json.dumps({"role": role}).encode() + b"\n\n"
            loop = asyncio.get_running_loop()
            check_at = loop.time() + SESSION_CHECK_SECONDS
            while True:
                try:
                    async with asyncio.timeout_at(check_at):  # (a timer, not a task per event)
                        batch = [await queue.get()]
                except TimeoutError:
                    batch = []
                # Whatever else is already waiting goes out in the same write: under a burst,
                # one send per viewer instead of one per event keeps delivery delay flat.
                while not queue.empty():
                    batch.append(queue.get_nowait())
                if loop.time() >= check_at:
                    # Checked before anything more is sent: a revoked sign-in gets nothing further.
                    if not await run_in_threadpool(still_signed_in, engine, sign_in, idle_minutes):
                        return
                    check_at = loop.time() + SESSION_CHECK_SECONDS
                frames = [m.frame for m in batch if visible_to(role, m)]
                if frames:
                    yield b"".join(frames)
        finally:
            hub.unsubscribe(queue)

    return EventSourceResponse(stream(), ping=int(KEEPALIVE_SECONDS),
                               headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
