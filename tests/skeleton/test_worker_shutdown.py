"""A worker stops at once: its command listener never holds a shutdown (or a burst drain) for the
minute RQ's pub/sub thread may wait; a worker (or connectors) started during an outage waits for
the store instead of exiting."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
import typer
from rq import Queue
from sqlalchemy.engine import make_url

from config import Settings
from flows.context import AppContext, liveness_key
from flows.sweep import _job_alive
from models.types import utcnow
from runtime.cli import _context
from runtime.worker import FlareWorker
from tests.tcp_proxy import TcpProxy, proxied_redis_url
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _listeners(url: str, channel: str) -> int:
    """The job: how many clients listen on the worker's command channel while it works."""
    conn = redis.Redis.from_url(url)
    try:
        return conn.pubsub_numsub(channel)[0][1]
    finally:
        conn.close()


class _ReplyFirst(FlareWorker):
    """The unlucky ordering, every time: the listener thread reads the UNSUBSCRIBE reply before
    the worker goes on to stop it (with RQ's own order that thread then waits 60 s)."""

    def subscribe(self) -> None:
        super().subscribe()
        send = self.pubsub.unsubscribe

        def unsubscribe_then_yield(*args):
            send(*args)
            time.sleep(0.3)

        self.pubsub.unsubscribe = unsubscribe_then_yield


def test_burst_drain_stops_its_listener_at_once(redis_conn: redis.Redis, redis_url: str):
    queue = Queue("shutdown-test", connection=redis_conn)
    for n in range(3):
        worker = _ReplyFirst([queue], connection=redis_conn, name=f"shutdown-test-{n}")
        job = queue.enqueue(_listeners, redis_url, worker.pubsub_channel_name)
        started = time.monotonic()
        worker.work(burst=True, logging_level="WARNING")
        assert time.monotonic() - started < 5.0, "the drain waited on the pub/sub thread"
        assert job.return_value(refresh=True) == 1  # the worker listened for commands while it worked
        assert worker.pubsub_thread is None
        assert redis_conn.pubsub_numsub(worker.pubsub_channel_name)[0][1] == 0  # and no longer does


@pytest.mark.parametrize("down", ["redis", "database"])
def test_a_service_started_during_an_outage_waits_for_the_store(tmp_path: Path, database_url: str,
                                                                redis_url: str, down: str):
    """`flare worker` started while Redis or the database refuses (and `flare connectors` while
    Redis does) waits for it (a supervisor's restart in an outage would otherwise die again) and
    starts as soon as it is back; a one-off command still fails at once with the reason."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the database outage needs PostgreSQL behind a proxy")
    redis_proxy, proxied_redis = proxied_redis_url(redis_url)
    url = make_url(database_url)
    db_proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxied_db = url.set(host="127.0.0.1", port=db_proxy.port).render_as_string(hide_password=False)
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", database_url=proxied_db, redis_url=proxied_redis)
    proxy = redis_proxy if down == "redis" else db_proxy
    proxy.refuse()
    built: list = []
    try:
        with pytest.raises(typer.Exit):  # a one-off command: a clear error, not a wait
            _context(settings)
        thread = threading.Thread(target=lambda: built.append(_context(settings, wait=True)), daemon=True)
        thread.start()
        time.sleep(2.0)
        assert thread.is_alive() and not built, "the service gave up while the store was down"
        proxy.accept()
        back = time.monotonic()
        thread.join(timeout=10)
        assert built, "the service did not start once the store was back"
        assert time.monotonic() - back < 2.0  # retried every second at most
        assert built[0].redis.ping()
    finally:
        for ctx in built:
            ctx.close()
        redis_proxy.close()
        db_proxy.close()


def test_the_connectors_start_while_the_database_refuses(tmp_path: Path, database_url: str, redis_url: str):
    """`flare connectors` does not wait for the database: restarted into an outage, it reads the
    platforms ahead through it (connectors.runner) and stores what it read the moment it answers."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the database outage needs PostgreSQL behind a proxy")
    url = make_url(database_url)
    db_proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxied_db = url.set(host="127.0.0.1", port=db_proxy.port).render_as_string(hide_password=False)
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", database_url=proxied_db, redis_url=redis_url)
    db_proxy.refuse()
    try:
        started = time.monotonic()
        ctx = _context(settings, wait=True, database_required=False)
        assert time.monotonic() - started < 1.0 and ctx.redis.ping()
        ctx.close()
    finally:
        db_proxy.close()


def _beating(name: str, redis_url: str) -> subprocess.Popen:
    """A process that runs a worker's heartbeat thread and nothing else."""
    code = ("import sys, threading, types, redis; from runtime.worker import _heartbeat; "
            "_heartbeat(types.SimpleNamespace(redis=redis.Redis.from_url(sys.argv[1])), {'name': sys.argv[2]}, "
            "threading.Event())")
    return subprocess.Popen([sys.executable, "-c", code, redis_url, name], env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_paused_worker_keeps_its_work_and_a_killed_one_loses_it_at_once(settings):
    """The sweep re-drives a started job only when its worker is gone. A worker paused (GC, a
    starved CPU; SIGSTOP here) for longer than the heartbeat's freshness is still alive, its job
    left alone; SIGKILLed, its job is re-driven as soon as Redis sees its connection close."""
    ctx = AppContext.build(settings)
    name = "heartbeat-test"
    worker = _beating(name, settings.redis_url)
    try:
        wait_for(lambda: ctx.redis.exists(liveness_key(name)) and _job_alive(ctx, "started", name, utcnow()), 30,
                 "the heartbeat to start")
        os.kill(worker.pid, signal.SIGSTOP)
        # The pause lasts 3 s: the key is where 3 s without a beat leave it (no test waits it out).
        left = ctx.redis.pttl(liveness_key(name)) - 3000
        if left > 0:
            ctx.redis.pexpire(liveness_key(name), left)
        else:
            ctx.redis.delete(liveness_key(name))
        assert _job_alive(ctx, "started", name, utcnow()), "a paused worker was taken for dead"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        killed = time.monotonic()
        wait_for(lambda: not _job_alive(ctx, "started", name, utcnow()), 10, "the killed worker to be seen dead")
        assert time.monotonic() - killed < 1.0  # its connection closed with it: no wait for the key to lapse
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
        ctx.redis.delete(liveness_key(name))
        ctx.close()
