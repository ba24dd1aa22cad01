"""Live updates: one Redis subscription per process, fanned out to every open dashboard (SSE).

A single background thread listens on the "flare:live" channel and hands each message to the
event loop serving the browsers, which copies it into one small queue per connected viewer. A
slow viewer's queue drops its oldest message rather than slowing anyone else: every page treats
an event as "something changed, refresh", so losing one in a burst loses nothing.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator

import redis
from fastapi import APIRouter, HTTPException, Request
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from sqlmodel import Session

from dashboard.deps import LoginRequired, current_user
from dashboard.escalation_runner import ALERT_CHANNEL

log = logging.getLogger("flare.live")
router = APIRouter(include_in_schema=False)

VIEWER_QUEUE_SIZE = 256
KEEPALIVE_SECONDS = 15.0
# Field units only need to know that incidents changed, never which post arrived.
FIELD_EVENT_TYPES = {"triaged", "escalation", "acknowledged", "incident"}


class LiveHub:
    """Owns the process's one pub/sub connection and the set of viewer queues."""

    def __init__(self, conn: redis.Redis) -> None:
        self._conn = conn
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
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._listen, name="flare-live", daemon=True)
                self._thread.start()
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        with self._lock:
            self._viewers.discard(queue)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)

    def _fan_out(self, payload: dict) -> None:
        for queue in list(self._viewers):
            if queue.full():
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    pass
            queue.put_nowait(payload)

    def _listen(self) -> None:
        while not self._stop.is_set():
            pubsub = self._conn.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(ALERT_CHANNEL)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    try:
                        payload = json.loads(message["data"])
                    except (TypeError, ValueError):
                        continue
                    if isinstance(payload, dict) and self._loop is not None:
                        self._loop.call_soon_threadsafe(self._fan_out, payload)
            except redis.RedisError as exc:
                # Redis restarting must not end live updates for good: browsers keep their
                # connection and we resubscribe; pages also poll slowly as a fallback.
                log.warning("live channel lost (%s); resubscribing", exc)
                time.sleep(1.0)
            finally:
                try:
                    pubsub.close()
                except redis.RedisError:
                    pass


def hub_for(request: Request) -> LiveHub:
    state = request.app.state
    hub = getattr(state, "live_hub", None)
    if hub is None:
        hub = state.live_hub = LiveHub(state.ctx.redis)
    return hub


def _signed_in_role(request: Request) -> str:
    """Authenticate with a short-lived session: a stream must not hold a database connection."""
    ctx = request.app.state.ctx
    with Session(ctx.engine) as db:
        try:
            user = current_user(request, db, ctx)
        except LoginRequired as exc:
            raise HTTPException(401, "login required") from exc
        return user.role


def visible_to(role: str, payload: dict) -> bool:
    return role != "field" or payload.get("type") in FIELD_EVENT_TYPES


@router.get("/live/events")
async def live_events(request: Request):
    role = await run_in_threadpool(_signed_in_role, request)
    hub = hub_for(request)
    queue = hub.subscribe()

    async def stream() -> AsyncIterator[dict]:
        try:
            yield {"event": "hello", "data": json.dumps({"role": role})}
            while True:
                payload = await queue.get()
                if visible_to(role, payload):
                    yield {"event": "live", "data": json.dumps(payload)}
        finally:
            hub.unsubscribe(queue)

    return EventSourceResponse(stream(), ping=int(KEEPALIVE_SECONDS),
                               headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
