"""`flare connectors`: polls every configured platform until stopped (SIGTERM/Ctrl-C).

The process only stores posts and queues them (flows.intake, flows.triage_queue): it never
imports the triage side it does not run, so a restarted connector is polling again within a
couple of seconds."""
from __future__ import annotations

import logging
import signal
import threading

from connectors.registry import source_builders
from connectors.runner import DbCheckpointStore, run_platforms
from flows.context import AppContext, impatient_client
from flows.intake import choose_lane, on_persisted

log = logging.getLogger("flare.connectors")
# Handing stored posts on to triage and writing the sources' health go through a Redis client
# that gives up after REDIS_TIMEOUT_S and then fails at once for REDIS_HOLD_S: a Redis that answers
# nothing costs a poll about a second once in a while, not the process client's 30 s socket
# timeout on every poll (each poll writes its health; each one that read posts hands them on).
# Stored posts are safe in the database meanwhile: workers triage them from there while Redis is
# unreachable, and the hand-on thread retries the rest the moment it answers.
REDIS_TIMEOUT_S = 1.0
REDIS_HOLD_S = 1.0


def run_connectors(ctx: AppContext, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    builders = source_builders(ctx.settings)
    if not builders:
        log.warning("no platform credentials configured: nothing to poll (see README, Configuration)")
    for sig in (signal.SIGINT, signal.SIGTERM):
        if threading.current_thread() is threading.main_thread():
            signal.signal(sig, lambda *_: stop.set())
    quick = ctx.with_redis(impatient_client(ctx.redis, REDIS_TIMEOUT_S, hold_s=REDIS_HOLD_S))
    run_platforms(builders, ctx.engine, lambda stored: on_persisted(quick, stored),
                  DbCheckpointStore(ctx.engine), quick.redis, stop, choose_lane=choose_lane)
