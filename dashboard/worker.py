"""`flare worker`: an RQ worker serving the lanes in priority order, plus the sweeper thread.

The worker is single-threaded and non-forking (models load once per process; scale by adding
processes). A short-lived liveness key lets the sweep tell a SIGKILLed worker's half-done job
from a slow one, so recovery takes seconds, not RQ's heartbeat timeout.
"""
from __future__ import annotations

import logging
import os
import socket
import threading

from rq import SimpleWorker

from dashboard.context import WORKER_QUEUES, AppContext, set_process_context
from dashboard.sweep import try_sweep

log = logging.getLogger("flare.worker")
LIVENESS_TTL_S = 6


def liveness_key(worker_name: str) -> str:
    return f"flare:worker-alive:{worker_name}"


def _sweeper(ctx: AppContext, worker_name: str, stop: threading.Event) -> None:
    interval = ctx.settings.sweep_interval_seconds
    while not stop.is_set():
        try:
            ctx.redis.set(liveness_key(worker_name), "1", ex=LIVENESS_TTL_S)
            try_sweep(ctx, interval)
        except Exception:  # noqa: BLE001 - the sweeper must outlive a transient DB/Redis error
            log.exception("sweep failed; retrying")
        stop.wait(min(interval, 2.0))


def run_worker(ctx: AppContext, burst: bool = False, name: str | None = None, preload: bool = True) -> None:
    set_process_context(ctx)
    if preload:
        ctx.pipeline  # noqa: B018 - load models before taking the first job
    name = name or f"flare-{socket.gethostname()}-{os.getpid()}"
    queues = [ctx.queues[q] for q in WORKER_QUEUES]
    worker = SimpleWorker(queues, connection=ctx.redis, name=name)
    stop = threading.Event()
    thread = threading.Thread(target=_sweeper, args=(ctx, name, stop), daemon=True, name="sweeper")
    thread.start()
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
    finally:
        stop.set()
        ctx.redis.delete(liveness_key(name))
