"""Pieces every platform connector shares: rate-limit gates, malformed posts, send receipts."""
from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from models.domain import DeliveryReceipt, RawPost

# How many idempotency keys a replier remembers (a few days of traffic for one service).
REMEMBERED_SENDS = 10_000
# Polls only read (safe to repeat). A platform answers a poll in well under a second; one that
# has not answered in 3 s is abandoned and the poll is sent again at once (connectors.runner),
# so one stalled answer costs a post about 3 s, not the 6-25 s a longer wait would.
POLL_CONNECT_TIMEOUT_S = 2.0
POLL_READ_TIMEOUT_S = 3.0
# A read (a poll, a look-up) not answered within HEDGE_AFTER_S is sent once more alongside the
# first, and whichever answer comes first is used: a stalled answer then costs a post about
# HEDGE_AFTER_S instead of the read timeout, while a platform that is merely slow still answers
# the first request. Reads only: asking twice is safe, and costs a second request only for the
# slowest answers.
HEDGE_AFTER_S = 0.75
# A third read goes out if neither of the first two has answered HEDGE_AFTER_S after the second:
# two stalled answers in a row (1 read in 100 at a 10 % stall rate) cost about 1.5 s, not the 3 s
# read timeout.
HEDGED_READS = 3
_HEDGE_THREADS = 32

T = TypeVar("T")
_hedge_pool = ThreadPoolExecutor(max_workers=_HEDGE_THREADS, thread_name_prefix="hedged-read")


def hedged(read: Callable[[], T], discard: Callable[[T], None] | None = None, after: float = HEDGE_AFTER_S,
           copies: int = HEDGED_READS) -> T:
    """`read()`, sent again every `after` seconds it has not answered, up to `copies` reads in all;
    the first outcome once a second read is out wins, answer or failure (a 5xx to a later read is
    not held back behind an earlier one that stalls: the caller retries at once). The others'
    answers, when they come, are passed to `discard`. A read that fails before the second is sent
    raises at once."""
    futures = [_hedge_pool.submit(read)]
    try:
        return futures[0].result(timeout=after)
    except FutureTimeout:
        pass
    done: set[Future] = set()
    while not done:
        futures.append(_hedge_pool.submit(read))
        done, _ = wait(futures, timeout=after if len(futures) < copies else None, return_when=FIRST_COMPLETED)
    answered = [f for f in futures if f in done and f.exception() is None]
    winner = answered[0] if answered else next(f for f in futures if f in done)
    for loser in futures:
        if loser is not winner:
            loser.add_done_callback(lambda late: _discard(late, discard))  # now, if it is done already
    return winner.result()


def _discard(late: Future, discard: Callable[[Any], None] | None) -> None:
    if discard is not None and late.exception() is None:
        try:
            discard(late.result())
        except Exception:  # noqa: BLE001 - closing a late answer nobody reads
            pass


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
    """The request may have reached the platform (a timeout or a connection broken after sending).
    Retryable, but uncertain: the outbox first looks for the message on the platform
    (`find_sent`) and sends again only if it is not there, so nobody gets it twice."""
    return DeliveryReceipt(ok=False, error=f"delivery outcome unknown ({type(exc).__name__}: {exc})"[:500],
                           retryable=True, uncertain=True)


# Platform clocks and ours disagree by a little: a message stamped this much before the attempt
# started still counts as the attempt's.
LOOKUP_CLOCK_SLACK = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class SentItem:
    """Something our account sent, as the platform lists it (newest or oldest first, any order)."""

    message_id: str
    text: str
    at: datetime | None


def match_sent(items: Iterable[SentItem], text: str, since: datetime,
               exclude: frozenset[str]) -> DeliveryReceipt | None:
    """The earliest listed message with this text sent at or after `since` (less the clock slack)
    whose id belongs to no other message of ours; None when there is none."""
    floor = since - LOOKUP_CLOCK_SLACK
    wanted = text.strip()
    found = [i for i in items if i.message_id not in exclude and i.text.strip() == wanted
             and (i.at is None or i.at >= floor)]
    if not found:
        return None
    first = min(found, key=lambda i: i.at or datetime.max.replace(tzinfo=UTC))
    return DeliveryReceipt(ok=True, platform_message_id=first.message_id)


# A send the platform rate-limited goes again a moment after the platform's reset, spread over
# this range of seconds: the polls waiting for the same reset read first (the next post may be
# someone's call for help), and the queued replies do not all arrive in the reset's first instant,
# where one of them opening the next window would hold every poll and reply behind it again.
SEND_AFTER_RESET_S = (0.3, 1.3)


def retry_after_reset(reset_epoch: float) -> float:
    """Seconds before a rate-limited send is tried again: just past the reset, spread."""
    return max(0.0, reset_epoch - time.time()) + random.uniform(*SEND_AFTER_RESET_S)


class RateLimited(Exception):
    """Raised by fetch() when the platform said 429; the source's gate stays closed until `until`."""

    def __init__(self, until: float, detail: str = "") -> None:
        super().__init__(f"rate limited until {until:.0f} {detail}".strip())
        self.until = until
