"""Pieces every platform connector shares: rate-limit gates, malformed posts, send receipts."""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from models.domain import DeliveryReceipt, RawPost

# How many idempotency keys a replier remembers (a few days of traffic for one service).
REMEMBERED_SENDS = 10_000


class RateLimitGate:
    """'Wait until reset' for one source. Never sleeps: callers skip work while it is closed."""

    def __init__(self) -> None:
        self.until: float = 0.0  # epoch seconds

    def close_until(self, epoch_seconds: float) -> None:
        self.until = max(self.until, epoch_seconds)

    def is_closed(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.until


def to_json_text(payload: Any) -> str:
    """The payload as text, verbatim when it already is text or bytes."""
    if isinstance(payload, bytes):
        return payload.decode("utf-8", errors="replace")
    if isinstance(payload, str):
        return payload
    try:
        return json.dumps(payload, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(payload)


def malformed_post(platform: str, payload: Any, reason: str, external_id: str = "", *,
                   is_dm: bool = False) -> RawPost:
    """A payload we could not understand, kept verbatim so an officer can read it.

    Without a usable id, the id is derived from the payload itself so that the same broken
    delivery seen twice is stored once.
    """
    raw = to_json_text(payload)
    if not external_id:
        external_id = "malformed:" + hashlib.sha256(raw.encode("utf-8", errors="replace")).hexdigest()[:40]
    text = raw if len(raw) <= 2000 else raw[:2000]
    return RawPost(platform=platform, external_id=external_id, text=text, raw_payload=raw,
                   is_dm=is_dm, malformed=True, malformed_reason=reason[:500])


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 (with Z) or epoch seconds → aware UTC datetime; anything else → None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def clean_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


class SentLedger:
    """Receipts of successful sends by idempotency key, so a repeated request is not re-sent.

    In memory and bounded: it protects against the outbox retrying a request that already went
    out during this process's life. Across restarts the outbox's own `sent` status is the guard.
    """

    def __init__(self, capacity: int = REMEMBERED_SENDS) -> None:
        self._receipts: OrderedDict[str, DeliveryReceipt] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, key: str) -> DeliveryReceipt | None:
        if not key:
            return None
        with self._lock:
            return self._receipts.get(key)

    def remember(self, key: str, receipt: DeliveryReceipt) -> DeliveryReceipt:
        if key and receipt.ok:
            with self._lock:
                self._receipts[key] = receipt
                while len(self._receipts) > self._capacity:
                    self._receipts.popitem(last=False)
        return receipt


def failure(error: str, *, retryable: bool, retry_after: float | None = None) -> DeliveryReceipt:
    return DeliveryReceipt(ok=False, error=error[:500], retryable=retryable, retry_after_seconds=retry_after)


def outcome_unknown(exc: BaseException) -> DeliveryReceipt:
    """The request may have reached the platform. Retrying could post twice to a person in
    distress, so this is reported as not retryable; the outbox marks it failed for a human."""
    return failure(f"delivery outcome unknown ({type(exc).__name__}: {exc}); not retried to avoid a double send",
                   retryable=False)


class RateLimited(Exception):
    """Raised by fetch() when the platform said 429; the source's gate stays closed until `until`."""

    def __init__(self, until: float, detail: str = "") -> None:
        super().__init__(f"rate limited until {until:.0f} {detail}".strip())
        self.until = until
