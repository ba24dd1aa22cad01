"""The reporter's live channel: location fixes, texts and live camera frames over one WebSocket.

Protocol (phone to server):
- text message, JSON: {"type": "location", "lat", "lon", "accuracy", ...}, {"type": "text", "text"},
  {"type": "stop"};
- binary message: one byte 0x01 followed by one JPEG still frame (drawn from a canvas).
Each stored item is acknowledged with {"type": "ack", "kind", "item_id", "sha256", "seq"} only after
its row is committed, so the phone knows exactly what arrived. A dropped connection therefore loses
at most the frame that was in flight. When the link cannot be used the server sends
{"type": "closed", "reason"} and closes with a 44xx code.
"""
from __future__ import annotations

import json
import logging
import math
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import func
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from flows.context import AppContext
from flows.live import publish_live
from dashboard.share import links, storage
from dashboard.share.links import DEVICE_COOKIE, LinkError, LinkProblem
from dashboard.share.reporter import same_origin
from escalation import service
from models.media import SharedItem, ShareLink

log = logging.getLogger("flare.share")
router = APIRouter()

FRAME_PREFIX = 0x01
MAX_TEXT_CHARS = 2000
# Frames arriving much faster than the page sends them are not a camera but a flood: refuse the
# excess so one device cannot fill the evidence disk. Twice the configured rate plus a small burst.
RATE_WINDOW_SECONDS = 10
RATE_BURST = 5
# The page sends at most one location fix a second; texts are typed by a person.
MAX_LOCATIONS_PER_WINDOW = 2 * RATE_WINDOW_SECONDS + RATE_BURST
MAX_TEXTS_PER_MINUTE = 20
CLOSE_CODES = {LinkProblem.invalid: 4404, LinkProblem.expired: 4410, LinkProblem.revoked: 4410,
               LinkProblem.used: 4403, LinkProblem.declined: 4409, LinkProblem.ended: 4409}


class LinkRateLimits:
    """Per-link budgets for frames, locations and texts, counted in Redis (the `limits` library's
    moving windows): shared by every connection and every web process, so opening more sockets
    to the same link buys no more room."""

    def __init__(self, redis_url: str) -> None:
        uri = "redis+" + redis_url if redis_url.startswith("unix://") else redis_url
        self.limiter = MovingWindowRateLimiter(storage_from_string(uri))

    @staticmethod
    def max_frames(frame_interval_ms: int) -> int:
        return int(2 * RATE_WINDOW_SECONDS * 1000 / max(100, frame_interval_ms)) + RATE_BURST

    def item_for(self, kind: str, frame_interval_ms: int):
        if kind == "frame":
            return RateLimitItemPerSecond(self.max_frames(frame_interval_ms), RATE_WINDOW_SECONDS)
        if kind == "location":
            return RateLimitItemPerSecond(MAX_LOCATIONS_PER_WINDOW, RATE_WINDOW_SECONDS)
        if kind == "text":
            return RateLimitItemPerMinute(MAX_TEXTS_PER_MINUTE)
        return None

    def allow(self, link_id: int, kind: str, frame_interval_ms: int) -> bool:
        """Count one message of `kind` against the link; False when its budget is spent."""
        item = self.item_for(kind, frame_interval_ms)
        return item is None or self.limiter.hit(item, "share-link", str(link_id), kind)


def message_kind(message: dict) -> str:
    """What a WebSocket message would store: "frame", "location", "text" or "" (anything else)."""
    if message.get("bytes") is not None:
        return "frame"
    text = message.get("text") or ""
    try:
        msg = json.loads(text) if len(text) <= 4 * MAX_TEXT_CHARS + 1024 else None
    except (ValueError, RecursionError):
        return ""
    kind = msg.get("type") if isinstance(msg, dict) else None
    return kind if kind in ("location", "text") else ""


def _current_link(ctx: AppContext, token: str, cookie: str | None) -> ShareLink:
    with Session(ctx.engine, expire_on_commit=False) as s:
        link = links.load_link(s, ctx.settings, token)
        links.check_device(link, cookie)
        if not link.device_hash:  # only a device that opened the page and consented may stream
            raise LinkError(LinkProblem.used)
        links.check_open_for_sharing(link)
        return link


def _frames_so_far(ctx: AppContext, link_id: int) -> int:
    with Session(ctx.engine) as s:
        return int(s.exec(select(func.coalesce(func.max(SharedItem.stream_seq), 0))
                          .where(SharedItem.link_id == link_id, SharedItem.kind == "frame")).one())


def _finite(value: Any, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and low <= value <= high else None


def location_record(msg: dict) -> dict | None:
    """Only the fields a dispatcher needs, range-checked; None when the fix is unusable."""
    lat, lon = _finite(msg.get("lat"), -90, 90), _finite(msg.get("lon"), -180, 180)
    accuracy = _finite(msg.get("accuracy"), 0, 1e6)
    if lat is None or lon is None or accuracy is None:
        return None
    record = {"lat": lat, "lon": lon, "accuracy_m": round(accuracy, 1)}
    for key, low, high in (("altitude", -1e4, 1e5), ("heading", 0, 360), ("speed", 0, 1e4)):
        value = _finite(msg.get(key), low, high)
        if value is not None:
            record[key] = value
    device_time = _finite(msg.get("ts"), 0, 1e14)
    if device_time is not None:
        record["device_time_ms"] = int(device_time)
    return record


def _place_incident(ctx: AppContext, incident_id: int, record: dict) -> None:
    with Session(ctx.engine, expire_on_commit=False) as s:
        if service.shared_fix(s, incident_id, record["lat"], record["lon"], record["accuracy_m"]) is not None:
            s.commit()


async def _close(websocket: WebSocket, problem: LinkProblem) -> None:
    try:
        await websocket.send_text(json.dumps({"type": "closed", "reason": problem.value}))
        await websocket.close(code=CLOSE_CODES[problem])
    except (WebSocketDisconnect, RuntimeError):
        pass


@router.websocket("/s/{token}/ws")
async def share_socket(websocket: WebSocket, token: str) -> None:
    ctx: AppContext = websocket.app.state.ctx
    settings = ctx.settings
    if not same_origin(websocket.headers, websocket.url.netloc):
        await websocket.close(code=4403)
        return
    cookie = websocket.cookies.get(DEVICE_COOKIE)
    await websocket.accept()
    try:
        link = await run_in_threadpool(_current_link, ctx, token, cookie)
    except LinkError as exc:
        await _close(websocket, exc.problem)
        return
    seq = await run_in_threadpool(_frames_so_far, ctx, link.id)
    limits: LinkRateLimits = websocket.app.state.link_limits
    await websocket.send_text(json.dumps({"type": "ready", "frame_interval_ms": settings.share.frame_interval_ms}))
    while True:
        try:
            message = await websocket.receive()
        except WebSocketDisconnect:
            break
        if message["type"] == "websocket.disconnect":
            break
        try:
            # Re-checked on every message: a revoke or expiry stops the stream at once.
            link = await run_in_threadpool(_current_link, ctx, token, cookie)
        except LinkError as exc:
            await _close(websocket, exc.problem)
            return
        kind = message_kind(message)
        if kind and not await run_in_threadpool(limits.allow, link.id, kind, settings.share.frame_interval_ms):
            await _send(websocket, {"type": "error", "detail": f"too many {kind}s"})
            continue
        try:
            reply = await _handle(ctx, link, message, seq + 1)
        except Exception:  # noqa: BLE001 - storage or database trouble: say so, keep the line open
            log.exception("share link %s: could not store a message", link.id)
            reply = {"type": "error", "detail": "not stored, please try again"}
        if reply.get("kind") == "frame" and reply.get("type") == "ack":
            seq += 1
        if reply.get("type") == "closed":
            await _close(websocket, LinkProblem.ended)
            return
        if not await _send(websocket, reply):
            break


async def _send(websocket: WebSocket, reply: dict) -> bool:
    try:
        await websocket.send_text(json.dumps(reply))
        return True
    except (WebSocketDisconnect, RuntimeError):
        return False


async def _handle(ctx: AppContext, link: ShareLink, message: dict, next_seq: int) -> dict:
    settings = ctx.settings
    data = message.get("bytes")
    if data is not None:
        if not data or data[0] != FRAME_PREFIX:
            return {"type": "error", "detail": "unknown binary message"}
        frame = data[1:]
        if len(frame) > settings.share.max_frame_bytes:
            return {"type": "error", "detail": "frame too large"}
        try:
            item = await run_in_threadpool(storage.store_frame, ctx.engine, settings, link, frame, next_seq)
        except storage.NotAnImage:
            return {"type": "error", "detail": "frame is not an image"}
        await run_in_threadpool(publish_live, ctx, {"type": "share_update", "incident_id": link.incident_id,
                                                    "link_id": link.id, "kind": "frame", "item_id": item.id})
        return {"type": "ack", "kind": "frame", "item_id": item.id, "sha256": item.sha256, "seq": next_seq}
    try:
        msg = json.loads(message.get("text") or "")
    except (ValueError, RecursionError):
        return {"type": "error", "detail": "not JSON"}
    if not isinstance(msg, dict):
        return {"type": "error", "detail": "not a JSON object"}
    kind = msg.get("type")
    if kind == "stop":
        def end() -> None:
            with Session(ctx.engine, expire_on_commit=False) as s:
                links.end_sharing(s, s.get(ShareLink, link.id))
        await run_in_threadpool(end)
        await run_in_threadpool(publish_live, ctx, {"type": "share_update", "incident_id": link.incident_id,
                                                    "link_id": link.id, "kind": "stopped"})
        return {"type": "closed"}
    if kind == "location":
        record = location_record(msg)
        if record is None:
            return {"type": "error", "detail": "location out of range"}
    elif kind == "text":
        text = msg.get("text")
        if not isinstance(text, str) or not text.strip():
            return {"type": "error", "detail": "empty text"}
        record = {"text": text[:MAX_TEXT_CHARS]}
    else:
        return {"type": "error", "detail": "unknown message type"}
    item = await run_in_threadpool(storage.store_json, ctx.engine, link, kind, record)
    if kind == "location":  # the fix is now the incident's location (pin, queue, field feed)
        await run_in_threadpool(_place_incident, ctx, link.incident_id, record)
    await run_in_threadpool(publish_live, ctx, {"type": "share_update", "incident_id": link.incident_id,
                                                "link_id": link.id, "kind": kind, "item_id": item.id})
    return {"type": "ack", "kind": kind, "item_id": item.id, "sha256": item.sha256}
