"""In-memory world of the platform sandbox: what the public posted, what Flare sent back.

One `SandboxState` backs all three imitated platforms. Every mutation happens under one
lock, so the HTTP handlers (async, one event loop) and test threads see a consistent world.
Optionally the state is written to a JSON file after each change so `flare demo` survives a
restart of the sandbox process.
"""
from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from connectors.sandbox.faults import FaultConfig

PLATFORMS = ("x", "bluesky", "reddit")

# Who Flare is on each platform inside the sandbox.
X_SERVICE_USER_ID = "1000"
BLUESKY_SERVICE_DID = "did:plc:flareservice0000000000"
REDDIT_SERVICE_USER = "flare999"

_X_ID_BASE = 1_900_000_000_000_000_000  # snowflake-sized ids, strictly increasing


@dataclass(slots=True)
class Item:
    """Something a member of the public posted (mention, reply or DM) on one platform."""

    platform: str
    seq: int
    external_id: str  # X: tweet/dm event id; Bluesky: at-uri or chat message id; Reddit: fullname
    text: str
    author: str
    is_dm: bool
    created_at: float
    lat: float | None = None
    lon: float | None = None
    place_only: bool = False  # X: geo given as a place bounding box instead of exact coordinates
    malformed: bool = False  # served in a broken wire shape on purpose
    author_location: str = ""
    read: bool = False  # Reddit inbox read flag
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Served:
    """One request the sandbox answered, as it answered it: when it arrived (epoch seconds), what
    fault it met ("" for none; "rate_limit", "error", "outage", "drop", "lose_response"), how long
    its answer was held back, and when the answer (or the broken connection) went out; a 429 also
    says until when the platform stays rate limited (the one that opened the window has
    `until - at` equal to the configured reset seconds)."""

    at: float
    platform: str
    method: str
    path: str
    fault: str
    delay: float
    done: float
    until: float = 0.0  # a 429's advertised reset (epoch seconds)


TRACE_KEPT = 200_000  # requests remembered for a run's timeline (a few hours of polling)


@dataclass(slots=True)
class Sent:
    """Something Flare sent back through a platform API."""

    platform: str
    kind: str  # "reply" or "dm"
    message_id: str
    text: str
    in_reply_to: str = ""
    recipient: str = ""
    at: float = 0.0


class SandboxState:
    def __init__(self, path: Path | None = None, handle: str = "flare999") -> None:
        self.lock = threading.RLock()
        self.path = path
        self.handle = handle
        self.items: list[Item] = []
        self._by_id: dict[tuple[str, str], Item] = {}  # (platform, external id) → item
        self.outbox: list[Sent] = []
        self.faults: dict[str, FaultConfig] = {p: FaultConfig() for p in PLATFORMS}
        self.dms_closed: set[tuple[str, str]] = set()  # (platform, author)
        self.request_log: dict[str, int] = {p: 0 for p in PLATFORMS}
        self.path_counts: Counter[str] = Counter()  # "GET /2/dm_events" → calls (tests read it)
        self.fault_counts: Counter[str] = Counter()  # "x:rate_limit" → faults served
        # Every request served, in order: what a slow post met on its way in (tests read it).
        self.trace: deque[Served] = deque(maxlen=TRACE_KEPT)
        self._seq = 0
        if path is not None and path.exists():
            self._load(path)

    # ---- ids -------------------------------------------------------------------------
    def next_seq(self) -> int:
        with self.lock:
            self._seq += 1
            return self._seq

    def x_id(self, seq: int) -> str:
        return str(_X_ID_BASE + seq)

    # ---- the public posts --------------------------------------------------------------
    def add_post(
        self,
        platform: str,
        text: str,
        author: str,
        is_dm: bool = False,
        lat: float | None = None,
        lon: float | None = None,
        *,
        place_only: bool = False,
        malformed: bool = False,
        dms_closed: bool = False,
        author_location: str = "",
        created_at: float | None = None,
        subreddit: str = "",
        reply_to: str = "",
    ) -> Item:
        """`reply_to`: the external id of an earlier public post on the same platform that this
        one replies to, in its thread (the thread's root is the parent's root, or the parent)."""
        if platform not in PLATFORMS:
            raise ValueError(f"unknown platform {platform!r}")
        with self.lock:
            parent = self.find(platform, reply_to) if reply_to else None
            if reply_to and (parent is None or parent.is_dm or is_dm):
                raise ValueError(f"no public {platform} post {reply_to!r} to reply to")
            seq = self.next_seq()
            item = Item(
                platform=platform, seq=seq, external_id=_external_id(self, platform, seq, author, is_dm),
                text=text, author=author, is_dm=is_dm, created_at=created_at or time.time(),
                lat=lat, lon=lon, place_only=place_only, malformed=malformed,
                author_location=author_location,
                extra={"subreddit": subreddit} if subreddit else {},
            )
            if parent is not None:
                item.extra.update(reply_to=parent.external_id,
                                  root=parent.extra.get("root") or parent.external_id)
            if platform == "reddit" and subreddit and not is_dm:
                item.external_id = "t3_" + base36(seq)
            self.items.append(item)
            self._by_id[(platform, item.external_id)] = item
            if dms_closed:
                self.dms_closed.add((platform, author))
            self._save()
            return item

    def items_for(self, platform: str, *, is_dm: bool | None = None) -> list[Item]:
        with self.lock:
            return [
                i for i in self.items
                if i.platform == platform and (is_dm is None or i.is_dm == is_dm)
            ]

    def find(self, platform: str, external_id: str) -> Item | None:
        with self.lock:
            return self._by_id.get((platform, external_id))

    def mark_read(self, platform: str, external_ids: set[str]) -> None:
        with self.lock:
            for item in self.items:
                if item.platform == platform and item.external_id in external_ids:
                    item.read = True
            self._save()

    # ---- what Flare sent ---------------------------------------------------------------
    def record_sent(self, platform: str, kind: str, text: str, *, in_reply_to: str = "",
                    recipient: str = "") -> Sent:
        with self.lock:
            seq = self.next_seq()
            message_id = _sent_id(self, platform, kind, seq)
            sent = Sent(platform, kind, message_id, text, in_reply_to, recipient, time.time())
            self.outbox.append(sent)
            self._save()
            return sent

    def sent_by_us(self, platform: str, kind: str) -> list[Sent]:
        """What Flare sent on one platform, oldest first (the platforms' own listings read this)."""
        with self.lock:
            return [s for s in self.outbox if s.platform == platform and s.kind == kind]

    def outbox_json(self) -> list[dict[str, Any]]:
        with self.lock:
            return [asdict(s) for s in self.outbox]

    def dm_allowed(self, platform: str, author: str) -> bool:
        with self.lock:
            return (platform, author) not in self.dms_closed

    # ---- faults ------------------------------------------------------------------------
    def set_faults(self, platform: str, settings: dict[str, Any]) -> FaultConfig:
        with self.lock:
            config = FaultConfig.from_json(settings)
            self.faults[platform] = config
            return config

    def count_request(self, platform: str, method: str, path: str) -> None:
        with self.lock:
            self.request_log[platform] += 1
            self.path_counts[f"{method} {path}"] += 1

    def record_served(self, served: Served) -> None:
        with self.lock:
            self.trace.append(served)

    def served_between(self, platform: str, start: float, end: float) -> list[Served]:
        """The requests of one platform that arrived in [start, end], oldest first."""
        with self.lock:
            return sorted((r for r in self.trace if r.platform == platform and start <= r.at <= end),
                          key=lambda r: r.at)

    # ---- persistence -------------------------------------------------------------------
    def _save(self) -> None:
        if self.path is None:
            return
        snapshot = {
            "seq": self._seq,
            "items": [asdict(i) for i in self.items],
            "outbox": [asdict(s) for s in self.outbox],
            "dms_closed": sorted(list(pair) for pair in self.dms_closed),
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(snapshot), encoding="utf-8")
        tmp.replace(self.path)

    def _load(self, path: Path) -> None:
        snapshot = json.loads(path.read_text(encoding="utf-8"))
        self._seq = int(snapshot.get("seq", 0))
        self.items = [Item(**i) for i in snapshot.get("items", [])]
        self._by_id = {(i.platform, i.external_id): i for i in self.items}
        self.outbox = [Sent(**s) for s in snapshot.get("outbox", [])]
        self.dms_closed = {(p, a) for p, a in snapshot.get("dms_closed", [])}


def _external_id(state: SandboxState, platform: str, seq: int, author: str, is_dm: bool) -> str:
    if platform == "x":
        return state.x_id(seq)
    if platform == "bluesky":
        if is_dm:
            return f"msg{seq:08d}"
        return f"at://{bluesky_did(author)}/app.bsky.feed.post/{tid(seq)}"
    return ("t4_" if is_dm else "t1_") + base36(seq)


def _sent_id(state: SandboxState, platform: str, kind: str, seq: int) -> str:
    if platform == "x":
        return state.x_id(seq)
    if platform == "bluesky":
        if kind == "dm":
            return f"msg{seq:08d}"
        return f"at://{BLUESKY_SERVICE_DID}/app.bsky.feed.post/{tid(seq)}"
    return ("t4_" if kind == "dm" else "t1_") + base36(seq)


def tid(seq: int) -> str:
    """An atproto TID (13 sortable base32 characters) that grows with `seq`."""
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    value = ((1_700_000_000_000_000 + seq) << 10) & ((1 << 63) - 1)
    chars = []
    for _ in range(13):
        value, rem = divmod(value, 32)
        chars.append(alphabet[rem])
    return "".join(reversed(chars))


@functools.lru_cache(maxsize=1 << 17)
def bluesky_did(author: str) -> str:
    """A stable did:plc for a sandbox handle (24 base32 characters, like real ones). Remembered:
    the chat endpoints map every Bluesky author to a did on each message sent (a burst's
    benchmark spent most of the sandbox's time here)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    value = abs(hash_text(author))
    chars = []
    for _ in range(24):
        value, rem = divmod(value, 32)
        chars.append(alphabet[rem])
    return "did:plc:" + "".join(chars)


@functools.lru_cache(maxsize=1 << 17)
def hash_text(text: str) -> int:
    """Deterministic across processes (unlike hash()), so ids survive a sandbox restart.
    Remembered: the platforms' handlers map authors to ids on every listing they serve."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:16], "big")


def base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    number += 36**4  # ids look like real ones (5+ characters)
    while number:
        number, rem = divmod(number, 36)
        out = digits[rem] + out
    return out
