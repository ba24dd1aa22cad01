"""The typed context every flow takes: one AppContext per process, built from Settings by the
composition root (runtime/) or the web app.

Workers, the dashboard and the CLI all build the same context, so a post takes the same code
path whichever process handles it.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue
from sqlalchemy import text
from sqlalchemy.engine import Engine

from config import Settings
from escalation.queue import DispatchQueue
from connectors.registry import build_repliers
from triage import Pipeline, build_pipeline
from triage.heads import WEIGHTS_DIR
from triage.lane import load_lane_model
from triage.prescreen import LanePicker
from evidence.keys import EvidenceKeys, settings_keys
from models.db import make_engine
from models.domain import OutboundRequest
from models.enums import Lane, MessageKind
from models.seams import Replier
from models.tables import Post

if TYPE_CHECKING:
    from flows.decisions import Decisions
    from grouping.finder import ClusterState

log = logging.getLogger("flare")

LANES = [Lane.critical.value, Lane.urgent.value, Lane.default.value, Lane.bulk.value]
# Outbound messages and escalation steps share the critical lane's priority: a reporter's
# receipt or a dispatcher re-alert must never wait behind bulk triage.
MESSAGES_QUEUE = "messages"
ESCALATION_QUEUE = "escalation"
# Decided posts whose action can wait (see flows/triage_batch.py): served after every lane, so
# the model decides every post before any of them is acted on.
ACT_QUEUE = "act"
# Archiving posts' pictures and videos (flows/media_archive.py): after the lanes, and a queue of
# its own, so its jobs are never taken for posts waiting to be decided (which defers acting).
MEDIA_QUEUE = "media"
WORKER_QUEUES = [ESCALATION_QUEUE, Lane.critical.value, MESSAGES_QUEUE, Lane.urgent.value, Lane.default.value,
                 Lane.bulk.value, MEDIA_QUEUE, ACT_QUEUE]
# Queues whose jobs carry posts still pending triage (the sweep asks them what a live job covers).
TRIAGE_QUEUES = [*LANES, ACT_QUEUE]


# `flare sender` processes say they are alive here (any of them; it lapses a few seconds after the
# last beat): workers send replies themselves only while it is missing (runtime/worker.py).
SENDERS_KEY = "flare:senders-alive"


def liveness_key(worker_name: str) -> str:
    """A short-lived key each worker refreshes: its absence says the worker is gone."""
    return f"flare:worker-alive:{worker_name}"


class DatabaseUnavailable(RuntimeError):
    pass


class RedisUnavailable(RuntimeError):
    """A configured or embedded Redis could not be reached; the message says what to do."""


def redis_client(url: str, socket_timeout: float | None = 30.0) -> redis.Redis:
    """A client of the Redis at `url`, not yet connected."""
    # redis-py's default read timeout (5 s) is shorter than any blocking read we make.
    return redis.Redis.from_url(url, socket_connect_timeout=10, socket_timeout=socket_timeout,
                                health_check_interval=30)


def check_redis(url: str, socket_timeout: float | None = 30.0) -> redis.Redis:
    conn = redis_client(url, socket_timeout)
    try:
        conn.ping()
    except redis.RedisError as exc:
        raise RedisUnavailable(f"Cannot reach Redis at {_safe(url)}: {exc}. "
                               "Check FLARE_REDIS_URL or unset it to use the embedded server.") from exc
    return conn


def impatient_client(conn: redis.Redis, timeout_s: float, name: str | None = None,
                     single_connection: bool = False, hold_s: float = 0.0) -> redis.Redis:
    """A client of `conn`'s server that gives up on a connect or an answer after `timeout_s` and
    never retries (a silent server costs that long, not the 30 s of the shared client and its
    retries). `name` is set as the connection's CLIENT SETNAME, again on every reconnect.

    With `hold_s`, a call that timed out or could not connect makes every call through this
    client fail at once for the next `hold_s` seconds (then one is let through to try again): a
    thread that makes many calls pays for a silent server once per `hold_s`, not on each call."""
    pool = conn.connection_pool
    kwargs = {**pool.connection_kwargs, "socket_timeout": timeout_s, "socket_connect_timeout": timeout_s,
              "retry": Retry(NoBackoff(), 0), "health_check_interval": 0}
    if name is not None:
        kwargs["client_name"] = name
    base = getattr(pool.connection_class, "plain", pool.connection_class)  # never another client's hold
    if hold_s <= 0:
        return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=base, **kwargs),
                           single_connection_client=single_connection)
    hold = _Hold(hold_s)
    tripping = type(f"Holding{base.__name__}", (_Tripping, base), {"hold": hold, "plain": base})
    return redis.Redis(connection_pool=_HoldingPool(hold, connection_class=tripping, **kwargs),
                       single_connection_client=single_connection)


class _Hold:
    """When the last call on a client failed for want of an answer, and how long to fail at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.until = 0.0

    def trip(self) -> None:
        self.until = time.monotonic() + self.seconds

    def check(self) -> None:
        if time.monotonic() < self.until:
            raise redis.ConnectionError("Redis did not answer a moment ago; not asking again yet")


class _Tripping:
    """Mixed into a connection class: a connect, send or read that times out or fails trips the hold."""

    hold: _Hold

    def connect_check_health(self, *args, **kwargs):
        return self._tripping(super().connect_check_health, *args, **kwargs)

    def send_packed_command(self, *args, **kwargs):
        return self._tripping(super().send_packed_command, *args, **kwargs)

    def read_response(self, *args, **kwargs):
        return self._tripping(super().read_response, *args, **kwargs)

    def _tripping(self, call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError):
            self.hold.trip()
            raise


class _HoldingPool(redis.ConnectionPool):
    """A pool that hands out no connection while its hold lasts."""

    def __init__(self, hold: _Hold, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hold = hold

    def get_connection(self, *args, **kwargs):
        self.hold.check()
        return super().get_connection(*args, **kwargs)


class _Unreachable(redis.ConnectionPool):
    """A pool that never connects: every call through it fails at once with a ConnectionError."""

    def get_connection(self, *args, **kwargs):
        raise redis.ConnectionError("Redis did not answer the probe")


def unanswering_client() -> redis.Redis:
    """A client whose every call fails at once: what a thread uses while a probe says Redis does
    not answer, instead of waiting out a timeout on each call."""
    return redis.Redis(connection_pool=_Unreachable())


def _safe(url: str) -> str:
    """Hide any password in a URL before printing it."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    redis: redis.Redis
    queues: dict[str, Queue]
    dispatch: DispatchQueue
    redis_url: str = ""
    evidence_keys: EvidenceKeys | None = None  # chains events, signs checkpoints and bundles
    _pipeline: Pipeline | None = None
    _lanes: LanePicker | None = None
    _decisions: Decisions | None = None
    _cluster_state: ClusterState | None = None
    _repliers: dict[str, Replier] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, settings: Settings, redis_url: str | None = None, database_required: bool = True,
              redis_required: bool = True) -> AppContext:
        """The context of one process. `database_required=False` builds it while the database
        does not answer (the connectors read the platforms ahead through an outage);
        `redis_required=False` while Redis does not (the connectors store posts without it, and
        hand them on once it answers)."""
        url = redis_url or settings.redis_url
        if not url:
            raise RedisUnavailable("No Redis URL: start the embedded server first (flare run/demo do).")
        conn = check_redis(url) if redis_required else redis_client(url)
        keys = settings_keys(settings)
        engine = make_engine(settings.resolved_database_url, chain_key=keys.hmac_key)
        if database_required:
            try:
                with engine.connect() as c:
                    c.execute(text("SELECT 1"))
            except Exception as exc:  # noqa: BLE001 - turn any driver error into one clear message
                engine.dispose()
                conn.close()
                raise DatabaseUnavailable(
                    f"Cannot reach the database ({type(exc).__name__}: {str(exc).splitlines()[0]}). "
                    "Check FLARE_DATABASE_URL or unset it to use SQLite in the data dir."
                ) from exc
        queues = {name: Queue(name, connection=conn) for name in WORKER_QUEUES}
        return cls(settings=settings, engine=engine, redis=conn, queues=queues,
                   dispatch=DispatchQueue(conn), redis_url=url, evidence_keys=keys)

    def with_redis(self, conn: redis.Redis) -> AppContext:
        """This context with every Redis call going through `conn` (e.g. an impatient or an
        unanswering client): same database, pipeline, decisions and repliers; a grouping state of
        its own (the shared one reads centroids through the process client)."""
        return dataclasses.replace(self, redis=conn, queues={name: Queue(name, connection=conn) for name in self.queues},
                                   dispatch=DispatchQueue(conn), _cluster_state=None)

    @property
    def pipeline(self) -> Pipeline:
        """The triage pipeline, built once per process on first use (its model loads on first use too)."""
        with self._lock:
            if self._pipeline is None:
                self._pipeline = build_pipeline(self.settings)
            return self._pipeline

    @pipeline.setter
    def pipeline(self, pipeline: Pipeline) -> None:
        """Use this pipeline instead (tests and benchmarks choose the rules-only one)."""
        with self._lock:
            self._pipeline = pipeline

    @property
    def lanes(self) -> LanePicker:
        """The intake's lane picker: the keyword pre-screen and the learned lane reader (numpy
        only, loaded once per process; the keywords alone where no reader was trained)."""
        with self._lock:
            if self._lanes is None:
                self._lanes = LanePicker(load_lane_model(WEIGHTS_DIR))
            return self._lanes

    @property
    def decisions(self) -> Decisions:
        """The worker's remembered decisions over its current pipeline."""
        # Imported on first use, as is grouping below: the connectors process builds this context
        # too and starts in moments because it never loads the triage side's numerics
        # (tests/connectors/test_connector_startup.py).
        from flows.decisions import Decisions

        pipeline = self.pipeline
        with self._lock:
            if self._decisions is None or self._decisions.pipeline is not pipeline:
                self._decisions = Decisions(pipeline)
            return self._decisions

    @property
    def cluster_state(self) -> ClusterState:
        """This process's view of the open incidents for grouping, made on first use."""
        from grouping.finder import ClusterState

        with self._lock:
            if self._cluster_state is None:
                self._cluster_state = ClusterState(self.redis)
            return self._cluster_state

    @cluster_state.setter
    def cluster_state(self, state: ClusterState) -> None:
        """Group with this state instead (tests acting as several workers, each with its own)."""
        with self._lock:
            self._cluster_state = state

    @property
    def repliers(self) -> dict[str, Replier]:
        with self._lock:
            if self._repliers is None:
                self._repliers = build_repliers(self.settings)
            return self._repliers

    @repliers.setter
    def repliers(self, repliers: dict[str, Replier]) -> None:
        """Send through these repliers (platform name → Replier) instead of the configured ones."""
        with self._lock:
            self._repliers = repliers

    def dm_possible(self, post: Post) -> bool:
        replier = self.repliers.get(post.platform)
        if replier is None:
            return post.is_dm
        req = OutboundRequest(platform=post.platform, kind=MessageKind.dm.value, text="",
                              recipient_id=post.author_id, conversation_id=post.conversation_id,
                              reply_ref=post.reply_ref or {})
        try:
            return bool(replier.supports_dm(req))
        except Exception:  # noqa: BLE001 - unknown means "assume no DM": we then reply minimally
            return False

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()




_process_context: AppContext | None = None
_process_lock = threading.Lock()


def process_context() -> AppContext:
    """The context for job functions in this worker process (built once from the environment)."""
    global _process_context
    with _process_lock:
        if _process_context is None:
            _process_context = AppContext.build(Settings())
        return _process_context


def set_process_context(ctx: AppContext | None) -> None:
    """Tests and in-process runners install their own context."""
    global _process_context
    with _process_lock:
        _process_context = ctx
