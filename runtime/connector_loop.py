"""`flare connectors`: polls every configured platform until stopped (SIGTERM/Ctrl-C).

The process only stores posts and queues them (flows.intake, flows.triage_queue): it never
imports the triage side it does not run, so a restarted connector is polling again within a
couple of seconds."""
from __future__ import annotations

import logging
import signal
import threading

from connectors.registry import SourceBuilder, source_builders
from connectors.runner import DbCheckpointStore, run_platforms
from flows.context import AppContext, impatient_client
from flows.held import hold_for_dispatch
from flows.intake import lane_chooser, on_persisted

log = logging.getLogger("flare.connectors")
# Handing stored posts on to triage and writing the sources' health go through a Redis client
# that gives up after REDIS_TIMEOUT_S and then fails at once for REDIS_HOLD_S: a Redis that answers
# nothing costs a poll about a second once in a while, not the process client's 30 s socket
# timeout on every poll (each poll writes its health; each one that read posts hands them on).
# Stored posts are safe in the database meanwhile: workers triage them from there while Redis is
# unreachable, and the hand-on thread retries the rest the moment it answers.
REDIS_TIMEOUT_S = 1.0
REDIS_HOLD_S = 1.0
STANDBY_CHECK_S = 0.05


def run_connectors(ctx: AppContext, stop: threading.Event | None = None, go: threading.Event | None = None) -> None:
    """Poll until `stop`. With `go` (a standby), every platform's client is loaded and its sources
    built first, and polling starts only once `go` is set: the process that takes over from one
    that died polls at once instead of loading for seconds."""
    stop = stop or threading.Event()
    builders = source_builders(ctx.settings)
    if not builders:
        log.warning("no platform credentials configured: nothing to poll (see README, Configuration)")
    for sig in (signal.SIGINT, signal.SIGTERM):
        if threading.current_thread() is threading.main_thread():
            signal.signal(sig, lambda *_: stop.set())
    if go is not None:
        builders = _built_ahead(builders)
        log.info("standing by, %d platforms loaded", len(builders))
        while not go.wait(STANDBY_CHECK_S):
            if stop.is_set():
                return
        log.info("standby taking over: polling now")
    quick = ctx.with_redis(impatient_client(ctx.redis, REDIS_TIMEOUT_S, hold_s=REDIS_HOLD_S))
    run_platforms(builders, ctx.engine, lambda stored: on_persisted(quick, stored),
                  DbCheckpointStore(ctx.engine), quick.redis, stop, choose_lane=lane_chooser(ctx),
                  on_held=lambda posts: hold_for_dispatch(quick.redis, posts))


def _built_ahead(builders: dict[str, SourceBuilder]) -> dict[str, SourceBuilder]:
    """Each platform's sources built now (a build that fails is left to be tried when polling starts)."""
    ready: dict[str, SourceBuilder] = {}
    for platform, build in builders.items():
        try:
            sources = build()
        except Exception:  # noqa: BLE001 - retried by the runner once this process takes over
            log.exception("%s: could not load its connectors ahead; trying again when taking over", platform)
            ready[platform] = build
        else:
            ready[platform] = lambda sources=sources: sources
    return ready


def wait_for_go(stream, go: threading.Event, stop: threading.Event) -> None:
    """A standby's stdin: a line from the supervisor means take over; end of file (the supervisor
    is gone) means stop."""
    if stream.readline().strip():
        go.set()
    else:
        stop.set()
