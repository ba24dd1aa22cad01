"""`flare connectors`: polls every configured platform until stopped (SIGTERM/Ctrl-C)."""
from __future__ import annotations

import logging
import signal
import threading

from connectors.registry import build_sources
from connectors.runner import DbCheckpointStore, run_forever
from dashboard import jobs
from dashboard.context import AppContext
from dashboard.intake_wiring import choose_lane

log = logging.getLogger("flare.connectors")


def run_connectors(ctx: AppContext, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    sources = build_sources(ctx.settings)
    if not sources:
        log.warning("no platform credentials configured: nothing to poll (see README, Configuration)")
    for sig in (signal.SIGINT, signal.SIGTERM):
        if threading.current_thread() is threading.main_thread():
            signal.signal(sig, lambda *_: stop.set())
    run_forever(sources, ctx.engine, lambda stored: jobs.on_persisted(ctx, stored),
                DbCheckpointStore(ctx.engine), ctx.redis, stop, choose_lane=choose_lane)
