"""`flare connectors`: polls every configured platform until stopped (SIGTERM/Ctrl-C).

The process only stores posts and queues them (flows.intake, flows.triage_queue): it never
imports the triage side it does not run, so a restarted connector is polling again within a
couple of seconds."""
from __future__ import annotations

import logging
import signal
import threading

from connectors.registry import build_sources
from connectors.runner import DbCheckpointStore, run_forever
from flows.context import AppContext
from flows.intake import choose_lane, on_persisted

log = logging.getLogger("flare.connectors")


def run_connectors(ctx: AppContext, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    sources = build_sources(ctx.settings)
    if not sources:
        log.warning("no platform credentials configured: nothing to poll (see README, Configuration)")
    for sig in (signal.SIGINT, signal.SIGTERM):
        if threading.current_thread() is threading.main_thread():
            signal.signal(sig, lambda *_: stop.set())
    run_forever(sources, ctx.engine, lambda stored: on_persisted(ctx, stored),
                DbCheckpointStore(ctx.engine), ctx.redis, stop, choose_lane=choose_lane)
