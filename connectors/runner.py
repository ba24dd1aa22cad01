"""Polling loop: fetch → persist (outbox) → hand on → save checkpoint → platform bookkeeping.

The order is the whole point. The checkpoint moves only after the posts it covers are
committed, so a crash anywhere re-reads (and the unique key absorbs the duplicates) instead
of skipping someone's message.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
import redis
import requests
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlmodel import Session, select

from connectors import health
from connectors.common import RateLimited
from connectors.health import ConnectorHealth, read_health
from connectors.intake import Persisted, persist_posts
from models.db import database_answers
from models.domain import RawPost
from models.enums import Lane
from models.seams import Source
from models.tables import ConnectorCheckpoint
from models.types import utcnow

log = logging.getLogger(__name__)

# read_health and ConnectorHealth live in connectors.health; re-exported for /readyz and metrics.
__all__ = ["CheckpointStore", "ConnectorHealth", "DbCheckpointStore", "PollResult", "poll_once",
           "read_health", "run_forever", "run_platforms"]

OnPersisted = Callable[[list[Persisted]], None]
# Given the posts a source read while the database refused, as they are read (each once): the way
# to a dispatcher that does not wait for the database (runtime wires flows.held.hold_for_dispatch).
OnHeld = Callable[[list[RawPost]], None]
LaneChooser = Callable[[RawPost], str]


class CheckpointStore(Protocol):
    def load(self, name: str) -> dict[str, Any]: ...

    def save(self, name: str, cursor: dict[str, Any]) -> None: ...


class DbCheckpointStore:
    """Checkpoints in the `connector_checkpoints` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load(self, name: str) -> dict[str, Any]:
        with Session(self.engine) as session:
            row = session.exec(select(ConnectorCheckpoint).where(ConnectorCheckpoint.name == name)).first()
            return dict(row.cursor or {}) if row else {}

    def save(self, name: str, cursor: dict[str, Any]) -> None:
        for _ in range(2):  # a concurrent first insert loses the race once, then updates
            with Session(self.engine) as session:
                row = session.exec(select(ConnectorCheckpoint).where(ConnectorCheckpoint.name == name)).first()
                if row is None:
                    row = ConnectorCheckpoint(name=name, cursor=cursor)
                else:
                    row.cursor, row.updated_at = dict(cursor), utcnow()
                session.add(row)
                try:
                    session.commit()
                    return
                except IntegrityError:
                    session.rollback()
        raise RuntimeError(f"could not save checkpoint {name}")


@dataclass(frozen=True, slots=True)
class PollResult:
    fetched: int
    stored: int  # newly created rows (duplicates excluded)
    lag_seconds: float  # post time → stored, for the oldest new post


def poll_once(
    source: Source,
    engine: Engine,
    on_persisted: OnPersisted,
    checkpoint_store: CheckpointStore,
    *,
    choose_lane: LaneChooser | None = None,
) -> PollResult:
    """One poll of one source. Raises whatever fetch raised (the checkpoint is then untouched).

    `on_persisted` receives every Persisted, duplicates included (created=False), so a post
    whose earlier enqueue was lost is handed on again. If it raises, the posts are already
    committed with triage pending and the outbox sweep re-drives them, so the checkpoint still moves.
    """
    cursor = checkpoint_store.load(source.name)
    posts, new_cursor = source.fetch(cursor)
    return store_page(source, engine, on_persisted, checkpoint_store, cursor, posts, new_cursor, choose_lane=choose_lane)


def store_page(
    source: Source,
    engine: Engine,
    on_persisted: OnPersisted,
    checkpoint_store: CheckpointStore,
    cursor: dict[str, Any],
    posts: list[RawPost],
    new_cursor: dict[str, Any],
    *,
    choose_lane: LaneChooser | None = None,
) -> PollResult:
    """Persist what was read from `cursor` up to `new_cursor`, hand it on, then move the checkpoint
    and do the platform's bookkeeping (the second half of `poll_once`)."""
    persisted: list[Persisted] = []
    if posts:
        persisted = persist_posts(engine, posts, choose_lane or (lambda _p: Lane.default.value))
        try:
            on_persisted(persisted)
        except Exception:  # noqa: BLE001 - committed rows are safe; the sweep re-drives them
            log.exception("%s: on_persisted failed for %d posts; leaving them to the outbox sweep",
                          source.name, len(persisted))
    if new_cursor != cursor:
        checkpoint_store.save(source.name, new_cursor)
    source.after_commit(posts)
    created = [raw for raw, p in zip(posts, persisted) if p.created]
    now = datetime.now(UTC)
    lags = [(now - raw.posted_at).total_seconds() for raw in created if raw.posted_at is not None]
    return PollResult(len(posts), len(created), max(lags, default=0.0))


# A failed poll (5xx, timeout, a broken connection) is retried within seconds, not minutes: the
# next post may be someone's only call for help. A 429 waits for the platform's own reset instead.
MAX_BACKOFF_SECONDS = 5.0
FIRST_RETRY_SECONDS = 0.5
DATABASE_PROBE_SECONDS = 0.25
HELD_MAX = 10_000  # posts read ahead through a database outage; the rest are read once it is stored
# A source with no checkpoint loaded when the database refused reads ahead from the platform's
# newest; posts of this recent past are stored as the outage ends (see _store_read_ahead).
READ_AHEAD_WINDOW_S = 600.0
TIMEOUT_RETRIES_AT_ONCE = 2  # then the usual backoff: a platform that keeps stalling is not hammered
# A poll that failed otherwise (a 5xx, a broken connection) is sent again at once, once: most such
# answers are one-offs, and the 0.5 s backoff could carry the retry into a rate-limit window that
# opened meanwhile (the chaos test's seed 3: a DM read only after a 5xx, the backoff, a 429 and the
# database outage that followed, 10.7 s). A second failure in a row backs off as before.
FAILED_RETRIES_AT_ONCE = 1
HAND_ON_RETRY_SECONDS = 0.25
HAND_ON_KEPT = 50_000  # posts waiting to be handed on; beyond that the sweep re-drives the oldest
# A platform's sources (X's mentions and DMs, one API) poll out of step: the k-th starts k steps
# after the first, a step being the poll interval shared among them (half of it for two sources)
# but at most STAGGER_MAX_SECONDS, so a restarted connector reads X's DMs a second after its
# mentions, not a poll interval later. They keep the offset: each waits its poll interval after its
# own poll, and after a rate limit each polls its offset after the reset, so two sources limited
# until the same reset do not hit the platform in the same instant.
STAGGER_MAX_SECONDS = 1.0


class HandOn:
    """Hands stored posts on (to triage). A batch it could not hand on (Redis down) is tried
    again every quarter second until it goes, so posts stored during a Redis outage reach triage
    the moment Redis is back, not after the sweep's grace period (the sweep still covers a crash
    of this process)."""

    def __init__(self, on_persisted: OnPersisted) -> None:
        self._on_persisted = on_persisted
        self._waiting: list[Persisted] = []
        self._lock = threading.Lock()

    def __call__(self, persisted: list[Persisted]) -> None:
        try:
            self._on_persisted(list(persisted))
        except Exception as exc:  # noqa: BLE001 - committed rows are safe; retried below
            log.warning("%d stored posts not handed on (%s: %s); retrying", len(persisted), type(exc).__name__, exc)
            self._keep(list(persisted))

    def _keep(self, batch: list[Persisted]) -> None:
        with self._lock:
            self._waiting = (batch + self._waiting)[-HAND_ON_KEPT:]

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def retry(self) -> bool:
        """One attempt at everything waiting; True when nothing is left."""
        with self._lock:
            batch, self._waiting = self._waiting, []
        if not batch:
            return True
        try:
            self._on_persisted(batch)
        except Exception:  # noqa: BLE001 - still down: next time
            self._keep(batch)
            return False
        log.info("%d stored posts handed on after an outage", len(batch))
        return True

    def retry_until(self, stop: threading.Event) -> None:
        while not stop.wait(HAND_ON_RETRY_SECONDS):
            self.retry()


def backoff_seconds(poll_seconds: float, failures: int, max_backoff: float) -> float:
    """Seconds before retrying after `failures` failed polls in a row: short and capped,
    never longer than the source's own poll interval would have waited."""
    base = min(max_backoff, poll_seconds, FIRST_RETRY_SECONDS * (2 ** min(failures - 1, 10)))
    return base * random.uniform(0.8, 1.2)  # jitter: sources that failed together retry apart


def stagger_seconds(index: int, count: int, poll_seconds: float) -> float:
    """How long after its platform's first source the `index`-th of `count` polls (0 for the first)."""
    if index <= 0 or count <= 1:
        return 0.0
    return index * min(max(poll_seconds, 0.0) / count, STAGGER_MAX_SECONDS)


def _timed_out(exc: BaseException) -> bool:
    """A read that got no answer in time (whichever client library raised it, however wrapped):
    the platform is up, one answer stalled; a poll sent again at once usually gets through."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (TimeoutError, requests.exceptions.Timeout, httpx.TimeoutException)):
            return True
        todo += [current.__cause__, current.__context__, getattr(current, "original_exception", None)]
    return False


def _database_down(exc: BaseException) -> bool:
    return isinstance(exc, (OperationalError, InterfaceError)) or \
        (isinstance(exc, DBAPIError) and exc.connection_invalidated)


def wait_for_database(engine: Engine, stop: threading.Event) -> None:
    """Block until the database answers (or `stop`), probing every fraction of a second, so the
    poll that follows runs the moment it is back rather than after a backoff."""
    while not stop.is_set() and not database_answers(engine):
        stop.wait(DATABASE_PROBE_SECONDS)


def read_while_database_down(
    source: Source, engine: Engine, stop: threading.Event, cursor: dict[str, Any], poll_seconds: float,
    on_held: OnHeld | None = None,
) -> tuple[list[RawPost], dict[str, Any]]:
    """The database refused. Keep reading the platform from the last checkpoint this process
    loaded (it cannot move: nothing read since is stored), holding what arrives in memory, and
    return it with the cursor it reached as soon as the database answers (probed every
    DATABASE_PROBE_SECONDS). So the posts written during the outage are stored the moment it ends,
    with no platform round trip (nor its 429s, 5xx or stalls) in between. A process that dies
    meanwhile loses only memory: the checkpoint never moved, and the posts are read again. At most
    HELD_MAX posts are held (a long outage in a busy incident): then reading pauses, and the
    cursor returned is the one those posts were read up to, so the rest are read after storing.

    Each post newly held is also given to `on_held` (the provisional way to a dispatcher); a batch
    it refused (Redis down) is offered again on the next round, with what was read since."""
    held: dict[str, RawPost] = {}
    unsent: list[RawPost] = []
    next_fetch = 0.0
    while not stop.is_set():
        limited_until = float(getattr(source, "rate_limited_until", 0.0) or 0.0)
        now = time.time()
        if now >= next_fetch and now >= limited_until and len(held) < HELD_MAX:
            next_fetch = now + poll_seconds
            try:
                posts, cursor = source.fetch(cursor)
                for post in posts:
                    if post.external_id not in held:
                        held[post.external_id] = post
                        unsent.append(post)
                if getattr(source, "more_to_read", False):
                    next_fetch = now  # the next page at once, as _run_source reads on
            except Exception as exc:  # noqa: BLE001 - a 429, 5xx or stall: read again next time
                log.info("%s: read while the database is down failed: %s", source.name, exc)
        if unsent and on_held is not None:
            try:
                on_held(list(unsent))
                unsent.clear()
            except Exception as exc:  # noqa: BLE001 - still held for the database; offered again
                log.warning("%s: %d posts read while the database is down not handed on for dispatch: %s",
                            source.name, len(unsent), exc)
        if database_answers(engine):
            break
        stop.wait(DATABASE_PROBE_SECONDS)
    return list(held.values()), cursor


class _RememberedCursors:
    """The checkpoint store, remembering the last cursor loaded or saved for each source: what a
    source reads from while the database is unreachable."""

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store
        self.last: dict[str, dict[str, Any]] = {}

    def load(self, name: str) -> dict[str, Any]:
        cursor = self.store.load(name)
        self.last[name] = dict(cursor)
        return cursor

    def save(self, name: str, cursor: dict[str, Any]) -> None:
        self.store.save(name, cursor)
        self.last[name] = dict(cursor)


def _run_source(
    source: Source, engine: Engine, on_persisted: OnPersisted, checkpoint_store: CheckpointStore,
    conn: redis.Redis | None, stop: threading.Event, choose_lane: LaneChooser | None, max_backoff: float,
    on_held: OnHeld | None = None, *, phase: float = 0.0,
) -> None:
    """Poll one source until `stop`, `phase` seconds out of step with its platform's first source
    (stagger_seconds): the first poll waits that long, and so does the first after a rate limit."""
    poll_seconds = _poll_seconds(source)
    checkpoint_store = _RememberedCursors(checkpoint_store)
    failures = 0
    limit_seen = 0.0  # the latest reset a RateLimited named (a source may not expose its own)
    if phase > 0:
        stop.wait(phase)
    while not stop.is_set():
        limited_until = max(float(getattr(source, "rate_limited_until", 0.0) or 0.0), limit_seen)
        now = time.time()
        if limited_until > now:
            health.record_rate_limited(conn, source.name, source.platform, limited_until)
            stop.wait(min(limited_until + phase - now, max_backoff))
            continue
        if now < limited_until + phase:  # the limit has just reset: this source's turn is `phase` after it
            stop.wait(limited_until + phase - now)
            continue
        try:
            result = poll_once(source, engine, on_persisted, checkpoint_store, choose_lane=choose_lane)
        except RateLimited as exc:
            health.record_rate_limited(conn, source.name, source.platform, exc.until)
            limit_seen = max(limit_seen, exc.until)
            wait = min(max(0.05, exc.until + phase - time.time()), max_backoff)
        except Exception as exc:  # noqa: BLE001 - one source's failure must not stop the others
            failures += 1
            log.warning("%s: poll failed (%d in a row): %s", source.name, failures, exc)
            health.record_failure(conn, source.name, source.platform, f"{type(exc).__name__}: {exc}", failures)
            if _database_down(exc) and source.name in checkpoint_store.last:
                wait = _store_held(source, engine, on_persisted, checkpoint_store, stop, choose_lane, poll_seconds,
                                   on_held)
            elif _database_down(exc):
                wait = _store_read_ahead(source, engine, on_persisted, checkpoint_store, stop, choose_lane,
                                         poll_seconds, on_held)
            elif _timed_out(exc) and failures <= TIMEOUT_RETRIES_AT_ONCE:
                wait = 0.0  # the wait was the timeout itself
            elif failures <= FAILED_RETRIES_AT_ONCE:
                wait = 0.0
            else:
                wait = backoff_seconds(poll_seconds, failures - FAILED_RETRIES_AT_ONCE, max_backoff)
        else:
            failures = 0
            health.record_success(conn, source.name, source.platform, result.stored, result.lag_seconds)
            # A source that reads a page at a time (Bluesky's chat log) says when the page it
            # just stored may be followed by more: read on at once, not after the poll interval.
            wait = 0.0 if getattr(source, "more_to_read", False) else poll_seconds
        stop.wait(wait)


def _store_held(
    source: Source, engine: Engine, on_persisted: OnPersisted, checkpoint_store: _RememberedCursors,
    stop: threading.Event, choose_lane: LaneChooser | None, poll_seconds: float, on_held: OnHeld | None = None,
) -> float:
    """Read while the database is down, store what was held the moment it answers, and say how
    long to wait before the next poll (none: it follows at once)."""
    cursor = checkpoint_store.last[source.name]
    posts, new_cursor = read_while_database_down(source, engine, stop, dict(cursor), poll_seconds, on_held)
    if stop.is_set():
        return 0.0
    try:
        result = store_page(source, engine, on_persisted, checkpoint_store, cursor, posts, new_cursor,
                            choose_lane=choose_lane)
    except Exception as exc:  # noqa: BLE001 - down again: the checkpoint did not move, so they are read again
        log.warning("%s: %d posts held through a database outage not stored: %s", source.name, len(posts), exc)
        return DATABASE_PROBE_SECONDS
    log.info("%s: %d posts read during a database outage stored as it ended", source.name, result.stored)
    return 0.0


def _store_read_ahead(
    source: Source, engine: Engine, on_persisted: OnPersisted, checkpoint_store: _RememberedCursors,
    stop: threading.Event, choose_lane: LaneChooser | None, poll_seconds: float, on_held: OnHeld | None = None,
) -> float:
    """The database refused before this process loaded the source's checkpoint (a connectors
    process restarted into an outage): read from the platform's newest anyway while it is down,
    and store the posts of the last READ_AHEAD_WINDOW_S the moment it answers, without moving the
    checkpoint. The read from the checkpoint follows at once and finds them stored (the unique key
    absorbs them); older posts wait for it, so nothing a retention purge removed is stored again."""
    posts, _ = read_while_database_down(source, engine, stop, {}, poll_seconds, on_held)
    if stop.is_set():
        return 0.0
    cutoff = datetime.now(UTC) - timedelta(seconds=READ_AHEAD_WINDOW_S)
    recent = [p for p in posts if p.posted_at is not None and _aware(p.posted_at) >= cutoff]
    if recent:
        try:
            result = store_page(source, engine, on_persisted, checkpoint_store, {}, recent, {},
                                choose_lane=choose_lane)
        except Exception as exc:  # noqa: BLE001 - down again: the read from the checkpoint has them
            log.warning("%s: %d posts read ahead through a database outage not stored: %s", source.name,
                        len(recent), exc)
            return DATABASE_PROBE_SECONDS
        log.info("%s: %d posts read ahead during a database outage stored as it ended", source.name, result.stored)
    return 0.0  # the read from the checkpoint follows at once


def _poll_seconds(source: Source) -> float:
    return float(getattr(source, "poll_seconds", 15.0))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_forever(
    sources: Sequence[Source],
    engine: Engine,
    on_persisted: OnPersisted,
    checkpoint_store: CheckpointStore,
    redis_conn: redis.Redis | None,
    stop: threading.Event,
    *,
    choose_lane: LaneChooser | None = None,
    max_backoff: float = MAX_BACKOFF_SECONDS,
    on_held: OnHeld | None = None,
) -> None:
    """Poll every source on its own schedule (`source.poll_seconds`) until `stop` is set.

    Each source gets its own thread: a slow platform, or a client library that sleeps on its
    own (prawcore does, between requests), never holds up the others. A platform's sources poll
    out of step (stagger_seconds). Posts that could not be handed on are retried by one more
    thread (HandOn).
    """
    by_platform: dict[str, list[Source]] = {}
    for source in sources:
        by_platform.setdefault(str(getattr(source, "platform", "")), []).append(source)
    run_platforms({platform: (lambda group=group: group) for platform, group in by_platform.items()}, engine,
                  on_persisted, checkpoint_store, redis_conn, stop, choose_lane=choose_lane, max_backoff=max_backoff,
                  on_held=on_held)


def run_platforms(
    builders: Mapping[str, Callable[[], Sequence[Source]]],
    engine: Engine,
    on_persisted: OnPersisted,
    checkpoint_store: CheckpointStore,
    redis_conn: redis.Redis | None,
    stop: threading.Event,
    *,
    choose_lane: LaneChooser | None = None,
    max_backoff: float = MAX_BACKOFF_SECONDS,
    on_held: OnHeld | None = None,
) -> None:
    """`run_forever`, with each platform's sources built in that platform's own thread (which
    imports its client library: connectors.registry.source_builders), so a platform polls as soon
    as its own connector is loaded, not after every other platform's. A build that fails (a
    session file that cannot be read, say) is logged and tried again after a short backoff."""
    hand_on = HandOn(on_persisted)
    threading.Thread(target=hand_on.retry_until, args=(stop,), name="connector-hand-on", daemon=True).start()
    threads = [
        threading.Thread(target=_run_platform, name=f"connectors-{platform}", daemon=True,
                         args=(platform, build, engine, hand_on, checkpoint_store, redis_conn, stop, choose_lane,
                               max_backoff, on_held))
        for platform, build in builders.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _run_platform(
    platform: str, build: Callable[[], Sequence[Source]], engine: Engine, on_persisted: OnPersisted,
    checkpoint_store: CheckpointStore, conn: redis.Redis | None, stop: threading.Event,
    choose_lane: LaneChooser | None, max_backoff: float, on_held: OnHeld | None = None,
) -> None:
    failures = 0
    sources: Sequence[Source] | None = None
    while sources is None and not stop.is_set():
        try:
            sources = build()
        except Exception:  # noqa: BLE001 - one platform's failure must not stop the others
            failures += 1
            log.exception("%s: could not start its connectors (%d in a row)", platform, failures)
            stop.wait(backoff_seconds(max_backoff, failures, max_backoff))
    sources = list(sources or [])
    threads = [
        threading.Thread(
            target=_run_source, name=f"connector-{source.name}", daemon=True,
            args=(source, engine, on_persisted, checkpoint_store, conn, stop, choose_lane, max_backoff, on_held),
            kwargs={"phase": stagger_seconds(index, len(sources), _poll_seconds(sources[0]))},
        )
        for index, source in enumerate(sources)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
