"""Replies go out from `flare sender`, a process of its own: sending never takes a worker's
interpreter from triage. While no sender process is alive, the workers send them on threads of
their own, and leave them to a sender process as soon as one is back."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
from rq import Queue

from flows.context import MESSAGES_QUEUE, SENDERS_KEY, AppContext
from runtime import worker as worker_module
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
MARK = "tests.skeleton.test_sender_process.mark"  # by path: the sender process imports it


def mark(url: str, key: str, pid_key: str) -> None:
    """The job: says it ran, and in which process."""
    conn = redis.Redis.from_url(url)
    try:
        conn.set(key, "1")
        conn.set(pid_key, os.getpid())
    finally:
        conn.close()


def test_a_sender_thread_sends_and_ends_after_its_current_job_once_told(settings, redis_conn):
    ctx = AppContext.build(settings)
    stop = threading.Event()
    thread = threading.Thread(target=worker_module._sender, args=(ctx, "sender-test", stop), daemon=True)
    try:
        thread.start()
        Queue(MESSAGES_QUEUE, connection=redis_conn).enqueue(MARK, settings.redis_url, "sent", "pid")
        wait_for(lambda: redis_conn.get("sent"), 15, "the sender thread to run the job")
        assert int(redis_conn.get("pid")) == os.getpid()
        stop.set()
        thread.join(timeout=worker_module.DEQUEUE_WAIT_S + 5)
        assert not thread.is_alive(), "the sender thread did not end once told"
    finally:
        stop.set()
        ctx.close()


def test_a_worker_sends_only_while_no_sender_process_is_alive(settings, redis_conn, monkeypatch):
    monkeypatch.setattr(worker_module, "SENDERS_CHECK_S", 0.05)
    started: list[threading.Event] = []
    monkeypatch.setattr(worker_module, "_start_senders",
                        lambda ctx, name, stop: started.append(stop) or [])
    ctx = AppContext.build(settings)
    stop = threading.Event()
    redis_conn.set(SENDERS_KEY, "flare-sender-elsewhere", px=60_000)
    watcher = threading.Thread(target=worker_module._senders_when_needed, args=(ctx, "w", stop), daemon=True)
    try:
        watcher.start()
        time.sleep(0.5)
        assert started == [], "a worker sent replies while a sender process was alive"
        redis_conn.delete(SENDERS_KEY)  # the sender process is gone
        wait_for(lambda: len(started) == 1, 5, "the worker to send replies itself")
        assert not started[0].is_set()
        redis_conn.set(SENDERS_KEY, "flare-sender-back", px=60_000)
        wait_for(lambda: started[0].is_set(), 5, "the worker to leave replies to the sender process")
        assert len(started) == 1
        redis_conn.delete(SENDERS_KEY)
        wait_for(lambda: len(started) == 2, 5, "the worker to take replies back")
        stop.set()
        watcher.join(timeout=5)
        assert started[1].is_set(), "the worker's sender threads outlived it"
    finally:
        stop.set()
        ctx.close()


def test_flare_sender_sends_says_it_is_alive_and_stops_on_sigterm(settings, redis_conn):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FLARE_DATABASE_URL": settings.database_url,
           "FLARE_REDIS_URL": settings.redis_url, "FLARE_DATA_DIR": str(settings.data_dir),
           "FLARE_SENDER_THREADS": "2"}
    process = subprocess.Popen([sys.executable, "-m", "runtime", "sender"], env=env, cwd=ROOT)
    try:
        wait_for(lambda: redis_conn.exists(SENDERS_KEY), 60, "the sender process to say it is alive")
        Queue(MESSAGES_QUEUE, connection=redis_conn).enqueue(MARK, settings.redis_url, "sent", "pid")
        wait_for(lambda: redis_conn.get("sent"), 15, "the sender process to run the job")
        assert int(redis_conn.get("pid")) == process.pid
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=worker_module.DEQUEUE_WAIT_S + 10) == 0
        # Gone on its way out: the workers take replies over now, not when the key lapses.
        assert not redis_conn.exists(SENDERS_KEY)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
