"""Triage while Redis is unreachable: workers claim pending posts straight from the database.

Work is normally handed out through RQ, on Redis. When Redis goes away the connectors still
store posts (the database is the outbox), and every worker's `triage_while_redis_down` thread
claims them itself: a page at a time, critical lane first, with a lease written on the post
(`posts.triage_enqueued_at`) in one `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
RETURNING id`, so two workers never decide the same page and a worker killed mid-page leaves its
posts to be claimed again when the lease runs out. The page then goes through the same
`flows.triage_batch.run` as an RQ job: the claim `UPDATE ... WHERE triage_state = 'pending'`
there still decides who acts on each post, so a post that an RQ job also carries (queued before
the outage, handed on after it) is acted on once. Incidents are queued in the database, which
the dispatchers' queue page reads; their dispatch-stream entries follow when Redis is back
(flows.publish, flows.sweep).

The model is never run by two threads of one process at once: this thread and the RQ worker's
jobs share `model_lock`.

Whether Redis answers is asked by a probe client of its own that gives up after
PROBE_TIMEOUT_S, without retries: a Redis that stops answering without refusing (a black-holed
host, connections that hang) is noticed within a second or two, not after the process client's
30 s socket timeout (and its retries). A page claimed then is triaged with a context whose Redis
calls fail at once: the Redis half of acting (the stream entry, the live feed) is left to the
sweep, as when Redis refuses, instead of each call hanging on the unanswering server.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import redis
from sqlalchemy import case, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import select

from flows.context import LANES, AppContext, impatient_client, unanswering_client
from flows import triage_batch, triage_queue
from models.enums import TriageState
from models.tables import Post
from models.types import utcnow

log = logging.getLogger("flare.worker")

POLL_S = 0.25  # how often Redis is asked whether it is back, and the database for new posts
CLAIM_LEASE_S = 15.0  # a page claimed by a worker that died is claimed again after this
CLAIM_PAGE = triage_queue.BATCH_SIZE
PROBE_TIMEOUT_S = 1.0  # a Redis that has not answered a PING in this long counts as unreachable


def claim_pending(engine: Engine, limit: int = CLAIM_PAGE, lease_s: float = CLAIM_LEASE_S) -> list[int]:
    """Claim up to `limit` pending posts nobody holds a live lease on: critical lane first, oldest
    first within a lane. Returns their ids (the lease is committed)."""
    now = utcnow()
    lane_rank = case({lane: n for n, lane in enumerate(LANES)}, value=Post.lane, else_=len(LANES))
    free = (
        select(Post.id)
        .where(
            Post.triage_state == TriageState.pending.value,
            or_(Post.triage_enqueued_at.is_(None), Post.triage_enqueued_at < now - timedelta(seconds=lease_s)),
        )
        .order_by(lane_rank, Post.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with engine.begin() as conn:
        rows = conn.execute(update(Post).where(Post.id.in_(free.scalar_subquery())).values(triage_enqueued_at=now).returning(Post.id)).scalars().all()
    return sorted(rows)


def probe_client(ctx: AppContext) -> redis.Redis:
    """A client of the context's Redis server that gives up on a connect or an answer after
    PROBE_TIMEOUT_S and never retries: what asks whether Redis answers."""
    return impatient_client(ctx.redis, PROBE_TIMEOUT_S)


def redis_reachable(probe: redis.Redis) -> bool:
    try:
        probe.ping()
        return True
    except redis.RedisError:
        return False


def without_redis(ctx: AppContext) -> AppContext:
    """The context with every Redis call failing at once (same database, pipeline and
    repliers): what a page claimed from the database is triaged with while Redis does not answer."""
    ctx.decisions  # noqa: B018 - the pipeline and the remembered decisions, made once and shared
    return ctx.with_redis(unanswering_client())


def triage_once(ctx: AppContext, model_lock: threading.Lock) -> int:
    """Claim one page and triage it. Returns how many posts were claimed."""
    ids = claim_pending(ctx.engine)
    if ids:
        with model_lock:
            counts = triage_batch.run(ctx, ids)
        log.info("Redis unreachable: triaged %d posts claimed from the database (%s)", len(ids), counts)
    return len(ids)


def triage_while_redis_down(ctx: AppContext, model_lock: threading.Lock, stop: threading.Event) -> None:
    """The worker's thread: idle while Redis answers the probe; while it does not, claim and
    triage pages until none is left, then look again every POLL_S."""
    probe = probe_client(ctx)
    degraded: AppContext | None = None
    while not stop.is_set():
        if redis_reachable(probe):
            stop.wait(POLL_S)
            continue
        try:
            degraded = degraded or without_redis(ctx)
            claimed = triage_once(degraded, model_lock)
        except Exception:  # noqa: BLE001 - the database may be down too: try again shortly
            log.exception("triage from the database failed; retrying")
            claimed = 0
        if not claimed:
            stop.wait(POLL_S)
