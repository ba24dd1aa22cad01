"""`flare worker`: an RQ worker serving the lanes in priority order, plus the sweeper thread; and
`flare sender` (`run_sender`), the process that sends replies to reporters.

The worker is single-threaded and non-forking (models load once per process; scale by adding
processes). A short-lived liveness key lets the sweep tell a SIGKILLed worker's half-done job
from a slow one, so recovery takes seconds, not RQ's heartbeat timeout.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

import redis

from rq import SimpleWorker
from rq.timeouts import TimerDeathPenalty

from flows import liveness
from flows.context import (MESSAGES_QUEUE, SENDERS_KEY, WORKER_QUEUES, AppContext, RedisUnavailable, check_redis, impatient_client,
                           liveness_key, set_process_context, unanswering_client)
from flows.dbless import triage_while_database_down
from flows.escalate import step_timer_round
from flows.redisless import probe_client, triage_while_redis_down
from flows.sweep import try_checkpoint, try_refresh_statistics, try_sweep
from models.enums import Lane
from triage.base import TriageInput
from triage.locations.extract import get_nlp
from runtime.job_paths import MODEL_JOBS, FlareJob

log = logging.getLogger("flare.worker")
# The liveness key is refreshed twice a second on its own thread and connection (a long sweep
# never delays it): a SIGKILLed worker's job is re-driven by the sweep within FRESH_S of its last
# beat, while a worker paused for a few seconds is not taken for dead (flows/liveness.py).
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.5, 1.0  # a ping a second: back within a second of Redis
# Everything a worker does besides its blocking dequeue (jobs, the sweep, the step timer) talks to
# Redis through a client that gives up after REDIS_TIMEOUT_S, with no retries, and then fails at
# once for REDIS_HOLD_S: a Redis that answers nothing (a black-holed host, connections lost without
# a reset) costs a job, a sweep or a round of the step timer a couple of seconds, not the 30 s
# socket timeout of the process client on every call (a triage job holding the model while it
# waited would hold back the thread that triages from the database meanwhile).
REDIS_TIMEOUT_S = 2.0
REDIS_HOLD_S = 1.0


def worker_context(ctx: AppContext) -> AppContext:
    """The context a worker runs with (see REDIS_TIMEOUT_S)."""
    return ctx.with_redis(impatient_client(ctx.redis, REDIS_TIMEOUT_S, hold_s=REDIS_HOLD_S))


def _heartbeat(ctx: AppContext, current: dict[str, str], stop: threading.Event) -> None:
    """Says this worker is alive; its absence tells the sweep a started job has nobody on it."""
    name, client = current["name"], liveness.heartbeat_client(ctx.redis, current["name"])
    try:
        while not stop.is_set():
            if current["name"] != name:  # the worker came back under a new name after an outage
                client.close()
                name, client = current["name"], liveness.heartbeat_client(ctx.redis, current["name"])
            try:
                liveness.beat(client, name)
            except redis.RedisError:  # Redis is down: nothing to re-drive until it is back
                pass
            stop.wait(liveness.HEARTBEAT_S)
    finally:
        client.close()


def _sweeper(ctx: AppContext, stop: threading.Event) -> None:
    interval = ctx.settings.sweep_interval_seconds
    while not stop.is_set():
        try:
            try_sweep(ctx, interval)
            try_checkpoint(ctx)
            try_refresh_statistics(ctx)
            # Retention runs once a day, on whichever worker gets there first.
            if ctx.redis.set("flare:retention:daily", "1", nx=True, ex=24 * 3600):
                ctx.queues[Lane.bulk.value].enqueue("evidence.retention.purge_job", job_timeout=3600)
        except Exception:  # noqa: BLE001 - the sweeper must outlive a transient DB/Redis error
            log.exception("sweep failed; retrying")
        stop.wait(min(interval, 2.0))


STEP_TIMER_INTERVAL_S = 0.2
# The round the workers' step timers share (flows.escalate.step_timer_round): a little shorter
# than the interval, so a lone worker finds its own last round lapsed every time.
STEP_ROUND_MS = 150


def _step_timer(ctx: AppContext, stop: threading.Event) -> None:
    """Fires due escalation steps within a fraction of a second, whatever RQ's scheduler is doing
    (it polls once a second and stays locked out for a minute after its worker is SIGKILLed).

    Steps are recorded in the database; their Redis half (live alert, counters, scheduling the
    next job) goes through the worker's short-timeout client, and while a probe says Redis does
    not answer, through one that fails at once: a silent Redis delays a round by the probe's
    second at most, never a step by a timeout per call. The workers' timers take turns: one
    database poll per STEP_ROUND_MS whatever the number of workers."""
    probe = probe_client(ctx)
    silent = ctx.with_redis(unanswering_client())
    while not stop.is_set():
        try:
            step_timer_round(ctx, probe, silent, STEP_ROUND_MS)
        except Exception:  # noqa: BLE001 - the timer must outlive a transient DB/Redis error
            log.exception("step timer failed; retrying")
        stop.wait(STEP_TIMER_INTERVAL_S)


PUBSUB_JOIN_S = 1.0
SENDER_RESTART_S = 0.5
# RQ blocks in BLPOP/BLMOVE for worker_ttl - 15 s (405 s by default) on a connection whose read
# timeout is 10 s longer: a connection lost without a reset (a black-holed Redis, a failover
# behind a silent network) would hold the worker that long after Redis answers again. Short
# blocking reads on a short timeout notice it within DEQUEUE_WAIT_S + ANSWER_MARGIN_S.
DEQUEUE_WAIT_S = 2
ANSWER_MARGIN_S = 2


class FlareWorker(SimpleWorker):
    """RQ's SimpleWorker, stopping its command listener (the pub/sub thread) at once.

    RQ 3.0 unsubscribes and then calls the thread's stop(), which since redis-py 8 joins the
    thread without a time limit. If the thread reads the UNSUBSCRIBE reply before stop() clears
    its running flag, it loops back into a 60 s wait for a subscription that never comes, and
    the worker's shutdown (every burst drain) waits out those 60 s. Clearing the flag first
    closes that race: the reply wakes the thread's read and the thread sees it must stop."""

    # Set on the main worker: its triage jobs and the Redis-less triage thread
    # (flows/redisless.py) never run the model at the same time. Only the jobs that run the
    # model take it: an act job, an escalation step or a media fetch must not hold back the
    # thread that triages from the database while Redis is down.
    model_lock: threading.Lock | None = None
    stop_asked = False  # SIGTERM/SIGINT: work() returning then is a requested stop, not a lost Redis

    @property
    def dequeue_timeout(self) -> int:
        return DEQUEUE_WAIT_S

    @property
    def connection_timeout(self) -> int:
        return DEQUEUE_WAIT_S + ANSWER_MARGIN_S

    def request_stop(self, signum, frame) -> None:
        self.stop_asked = True
        super().request_stop(signum, frame)

    def execute_job(self, job, queue):
        if self.model_lock is None or job.func_name not in MODEL_JOBS:
            return super().execute_job(job, queue)
        with self.model_lock:
            return super().execute_job(job, queue)

    def unsubscribe(self) -> None:
        thread, pubsub = self.pubsub_thread, self.pubsub
        if thread is None or pubsub is None:
            return
        thread.stop(timeout=0)  # clears the running flag; does not wait
        try:
            pubsub.unsubscribe()  # its reply ends the thread's blocking read
        except redis.RedisError:  # Redis is gone: the thread's read fails and it ends by itself
            pass
        thread.join(timeout=PUBSUB_JOIN_S)  # a daemon thread: never wait on it longer
        if not thread.is_alive():
            pubsub.close()
        self.pubsub_thread = None


class SenderWorker(FlareWorker):
    """An RQ worker for the messages queue that runs in a thread (of `flare sender`, or of a worker
    while no sender process is alive): no signal handlers (only the main thread may install
    them), a timer instead of SIGALRM for timeouts, and a `stop_event` that ends it after its
    current send (within DEQUEUE_WAIT_S when idle)."""

    death_penalty_class = TimerDeathPenalty
    stop_event: threading.Event | None = None

    def _install_signal_handlers(self) -> None:
        return None

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        if self.stop_event is None or max_idle_time is not None:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        # RQ waits for a job for as long as it takes; here it gives up every `timeout` seconds to
        # look at the event. Nothing dequeued ends RQ's loop, tearing the worker down cleanly.
        while not self.stop_event.is_set():
            result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time=timeout)
            if result is not None:
                return result
        return None


def _rq_worker(ctx: AppContext, worker_class: type[FlareWorker], queues: list[str], name: str,
               model_lock: threading.Lock | None = None) -> FlareWorker:
    """An RQ worker on a fresh blocking connection. It blocks in BLMOVE for DEQUEUE_WAIT_S at a
    time: its own connection pool, whose read timeout RQ sets a little longer than that
    (FlareWorker.connection_timeout), leaves the timeouts the jobs use untouched. RQ backs off up
    to a minute after a Redis hiccup; an emergency queue cannot sit idle that long, so it retries
    every second at most."""
    conn = check_redis(ctx.redis_url, socket_timeout=None) if ctx.redis_url else ctx.redis
    worker = worker_class([ctx.queues[q] for q in queues], connection=conn, name=name,
                          job_class=FlareJob)
    worker.max_connection_wait_time = 1
    worker.exponential_backoff_factor = 1.0
    worker.model_lock = model_lock
    return worker


def _sender(ctx: AppContext, name: str, stop: threading.Event) -> None:
    """Sends replies until `stop` is set; a Redis outage only pauses it. Each restart takes a
    fresh name: the old one may still be registered (a Redis restarted from its AOF remembers
    it), and RQ refuses to start a second worker under a live name."""
    attempt, current = 0, name
    while not stop.is_set():
        try:
            worker = _rq_worker(ctx, SenderWorker, [MESSAGES_QUEUE], current)
            worker.stop_event = stop
            worker.work(with_scheduler=False, logging_level="WARNING")
        except Exception:  # noqa: BLE001 - a sender must outlive a transient Redis error
            log.exception("sender %s stopped; restarting", current)
        attempt += 1
        current = f"{name}-r{attempt}"
        stop.wait(SENDER_RESTART_S)


# How long SENDERS_KEY outlives a sender process's last beat, and how often workers look for it.
SENDERS_ALIVE_S = 3.0
SENDERS_CHECK_S = 1.0


def _start_senders(ctx: AppContext, name: str, stop: threading.Event) -> list[threading.Thread]:
    threads = [threading.Thread(target=_sender, args=(ctx, f"{name}-{n}", stop), daemon=True,
                                name=f"sender-{n}") for n in range(max(1, ctx.settings.sender_threads))]
    for thread in threads:
        thread.start()
    return threads


def _senders_when_needed(ctx: AppContext, name: str, stop: threading.Event) -> None:
    """Replies go out from `flare sender` processes: sending one is mostly the platform client's
    Python (an HTTP request per direct message), and on a worker's threads it took the
    interpreter from triage (a third of the time the lock was held while a lone worker acted on a
    burst's backlog). While no sender process is alive, this worker sends them on threads of its
    own, and stops them (after their current send) once one is back. A Redis it cannot reach
    changes nothing: there is nothing to send without it."""
    own: threading.Event | None = None  # set to stop this worker's sender threads
    generation = 0
    try:
        while not stop.is_set():
            try:
                elsewhere = bool(ctx.redis.exists(SENDERS_KEY))
            except redis.RedisError:
                elsewhere = own is None
            if not elsewhere and own is None:
                generation += 1
                own = threading.Event()
                _start_senders(ctx, f"{name}-sender-{generation}", own)
                log.info("no sender process alive: this worker sends replies")
            elif elsewhere and own is not None:
                own.set()
                own = None
                log.info("a sender process is alive: replies are left to it")
            stop.wait(SENDERS_CHECK_S)
    finally:
        if own is not None:
            own.set()


def run_sender(ctx: AppContext) -> None:
    """`flare sender`: send replies on `settings.sender_threads` threads until SIGTERM/SIGINT (each
    thread finishes its current send). Run one per machine beside the workers; while none runs,
    the workers send them (`_senders_when_needed`)."""
    ctx = worker_context(ctx)
    set_process_context(ctx)
    ctx.repliers  # noqa: B018 - the platforms' client libraries load now, not on the first reply
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    name = f"flare-sender-{socket.gethostname()}-{os.getpid()}"
    threads = _start_senders(ctx, name, stop)
    while not stop.is_set():
        try:
            ctx.redis.set(SENDERS_KEY, name, px=int(SENDERS_ALIVE_S * 1000))
        except redis.RedisError:  # Redis is down: nothing can be sent until it is back
            pass
        stop.wait(liveness.HEARTBEAT_S)
    for thread in threads:
        thread.join(timeout=DEQUEUE_WAIT_S + ANSWER_MARGIN_S + 30)
    try:
        if ctx.redis.get(SENDERS_KEY) == name.encode():
            ctx.redis.delete(SENDERS_KEY)  # the workers take over now, not when the key lapses
    except redis.RedisError:
        pass


def run_worker(ctx: AppContext, burst: bool = False, name: str | None = None, preload: bool = True,
               step_timer: bool = True) -> None:
    """Serve every queue until stopped. `step_timer=False` leaves escalation steps to RQ's scheduler
    and the sweep alone (`flare bench escalation` compares the two)."""
    ctx = worker_context(ctx)
    set_process_context(ctx)
    if preload:
        # Models load lazily; one warm-up post loads them before the first real job waits on it.
        ctx.pipeline(TriageInput(text="warm-up: is anyone hurt at 1 High Street, Leeds?"))
        # The NER loads on the first urgent post without a known place (seconds): load it now,
        # not while a real cry for help waits.
        try:
            get_nlp()
        except Exception:  # noqa: BLE001 - triage marks such posts for review; the worker still serves
            log.warning("NER model unavailable at start; locations fall back to patterns")
        # The platforms' client libraries load with the repliers (seconds of CPU for atproto):
        # now, not on a sender thread beside the first critical post's triage.
        ctx.repliers  # noqa: B018 - built for the side effect
    name = name or f"flare-{socket.gethostname()}-{os.getpid()}"
    current = {"name": name}  # the RQ worker name the liveness key speaks for
    stop = threading.Event()
    model_lock = threading.Lock()
    threading.Thread(target=_heartbeat, args=(ctx, current, stop), daemon=True, name="heartbeat").start()
    threading.Thread(target=_sweeper, args=(ctx, stop), daemon=True, name="sweeper").start()
    if not burst and step_timer:
        threading.Thread(target=_step_timer, args=(ctx, stop), daemon=True, name="step-timer").start()
    if not burst:
        # While Redis is unreachable, posts are claimed from the database and triaged here.
        threading.Thread(target=triage_while_redis_down, args=(ctx, model_lock, stop), daemon=True,
                         name="redisless-triage").start()
        # While the database refuses, posts the connectors held are decided here and the urgent
        # ones shown to dispatchers as provisional (flows/dbless.py).
        threading.Thread(target=triage_while_database_down, args=(ctx, model_lock, stop, name), daemon=True,
                         name="dbless-triage").start()
        # Replies go out from `flare sender` processes, or while none is alive, from threads of
        # this worker (the main worker serves the messages queue only when they are configured off).
        if ctx.settings.sender_threads >= 1:
            threading.Thread(target=_senders_when_needed, args=(ctx, name, stop), daemon=True,
                             name="senders").start()
    # With sender threads, the main worker leaves the messages queue to them: a send can wait
    # 20 s on a slow platform, and a critical post's triage must never queue behind it.
    queues = WORKER_QUEUES if burst or ctx.settings.sender_threads < 1 else \
        [q for q in WORKER_QUEUES if q != MESSAGES_QUEUE]
    try:
        _serve(ctx, current, burst, queues, model_lock)
    finally:
        stop.set()
        try:
            ctx.redis.delete(liveness_key(current["name"]))
        except redis.RedisError:  # Redis is gone: the key expires by itself within seconds
            pass


def _serve(ctx: AppContext, current: dict[str, str], burst: bool, queues: list[str],
           model_lock: threading.Lock | None = None) -> None:
    """Run the RQ worker until it stops on its own (burst done, or SIGTERM/SIGINT). A lost Redis
    connection never ends the process: RQ's bookkeeping raises it out of `work()` (or RQ logs a
    Redis timeout and returns from it, "quitting"), and the worker comes back under a fresh name
    (the old one may still be registered) as soon as Redis answers."""
    base, attempt, delay = current["name"], 0, RECONNECT_MIN_S
    while True:
        try:
            worker = _rq_worker(ctx, FlareWorker, queues, current["name"], model_lock)
            worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
            if burst or worker.stop_asked:
                return
            reason = "RQ stopped on a Redis timeout"
        except (redis.ConnectionError, redis.TimeoutError, RedisUnavailable) as exc:
            reason = str(exc)
        attempt += 1
        log.warning("Redis unavailable (%s); worker reconnecting in %.1f s", reason, delay)
        time.sleep(delay)
        delay = min(RECONNECT_MAX_S, delay * 2)
        current["name"] = f"{base}-r{attempt}"
