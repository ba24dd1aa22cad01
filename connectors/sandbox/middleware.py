"""ASGI middleware that applies the configured faults before any platform handler runs."""
from __future__ import annotations

import asyncio
import json
import math
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from connectors.sandbox.faults import FaultDecision, decide
from connectors.sandbox.state import SandboxState, Served


def platform_for_path(path: str) -> str | None:
    if path.startswith("/2/"):
        return "x"
    if path.startswith("/xrpc/"):
        return "bluesky"
    if path in ("/", "/favicon.ico") or path.startswith("/_sandbox"):
        return None
    return "reddit"


def _fault_response(platform: str, decision: FaultDecision) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    now = time.time()
    reset_epoch = math.ceil(decision.reset_at)
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
    if decision.kind == "rate_limit":
        if platform == "x":
            headers += [(b"x-rate-limit-limit", b"75"), (b"x-rate-limit-remaining", b"0"),
                        (b"x-rate-limit-reset", str(reset_epoch).encode())]
            body = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                    "status": 429}
        elif platform == "bluesky":
            headers += [(b"ratelimit-limit", b"3000"), (b"ratelimit-remaining", b"0"),
                        (b"ratelimit-reset", str(reset_epoch).encode()), (b"ratelimit-policy", b"3000;w=300")]
            body = {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}
        else:
            seconds = max(1, math.ceil(decision.reset_at - now))
            headers += [(b"x-ratelimit-remaining", b"0"), (b"x-ratelimit-used", b"100"),
                        (b"x-ratelimit-reset", str(seconds).encode())]
            body = {"message": "Too Many Requests", "error": 429}
        return 429, headers, json.dumps(body).encode()
    if decision.kind == "outage":
        headers.append((b"retry-after", str(max(1, math.ceil(decision.reset_at - now))).encode()))
        return 503, headers, json.dumps({"error": "ServiceUnavailable", "message": "outage"}).encode()
    body = {"error": "InternalServerError", "message": "injected server error"}
    return decision.status, headers, json.dumps(body).encode()


class FaultMiddleware:
    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        platform = platform_for_path(scope["path"])
        if platform is None:
            await self.app(scope, receive, send)
            return
        if platform == "reddit" and scope["path"].endswith("/"):
            # praw's paths end in "/"; route them without a redirect round trip.
            scope = dict(scope, path=scope["path"].rstrip("/"))
        self.state.count_request(platform, scope["method"], scope["path"])
        arrived = time.time()
        with self.state.lock:
            decision = decide(self.state.faults[platform], is_write=scope["method"] != "GET")
            if decision.kind:
                self.state.fault_counts[f"{platform}:{decision.kind}"] += 1
        try:
            await self._answer(scope, receive, send, platform, decision)
        finally:
            self.state.record_served(Served(arrived, platform, scope["method"], scope["path"], decision.kind,
                                            decision.delay, time.time(), decision.reset_at))

    async def _answer(self, scope: Scope, receive: Receive, send: Send, platform: str,
                      decision: FaultDecision) -> None:
        if decision.delay:
            await asyncio.sleep(decision.delay)
        if not decision.kind:
            await self.app(scope, receive, send)
            return
        if decision.kind == "lose_response":
            async def swallow(message) -> None:  # the platform acts; its answer is lost on the way
                return None

            await self.app(scope, receive, swallow)
            decision = FaultDecision("drop")
        if decision.kind == "drop":
            # Promise a body, send part of it, then abort: the client sees a broken connection.
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
            await send({"type": "http.response.body", "body": b'{"data": [', "more_body": True})
            raise ConnectionAbortedError("sandbox fault: connection dropped")
        status, headers, body = _fault_response(platform, decision)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
