"""Queueing stored posts for triage: one RQ job per page of up to BATCH_SIZE posts of one lane.

The light half of flows/triage_batch.py (which runs the jobs): intake imports this, so the
connectors process, which only stores posts and queues them, never loads the triage side
(grouping, embeddings' numerics) it does not run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from itertools import groupby

from rq import Queue

from flows.context import WORKER_QUEUES, AppContext

BATCH_SIZE = 64
JOB_FUNCTION = "flows.triage_batch.triage_batch"
JOB_PREFIX = "triage-batch-"


def job_meta(post_ids: Sequence[int]) -> dict:
    """What a triage job carries beside its call: the posts it covers, read by the sweep."""
    return {"posts": list(post_ids)}


def meta_posts(meta: dict) -> list[int] | None:
    """The posts a triage job covers, from its meta (None: a job queued without it)."""
    posts = meta.get("posts") if isinstance(meta, dict) else None
    return list(posts) if isinstance(posts, list) else None


def job_id(post_ids: Sequence[int], prefix: str = JOB_PREFIX) -> str:
    return f"{prefix}{post_ids[0]}-{len(post_ids)}-{time.monotonic_ns() % 10**9}"


def enqueue(ctx: AppContext, items: Sequence[tuple[int, str]]) -> None:
    """Queue triage for stored posts: pages of up to BATCH_SIZE posts per lane, critical lane
    first, in one Redis pipeline. (Nothing is written to the database: the sweep asks RQ which
    pending posts a live job still covers.)"""
    if not items:
        return
    order = {lane: n for n, lane in enumerate(WORKER_QUEUES)}
    ranked = sorted(items, key=lambda item: (order.get(item[1], len(order)), item[0]))
    with ctx.redis.pipeline() as pipe:
        for lane, group in groupby(ranked, key=lambda item: item[1]):
            ids = [post_id for post_id, _ in group]
            pages = [ids[i : i + BATCH_SIZE] for i in range(0, len(ids), BATCH_SIZE)]
            ctx.queues[lane].enqueue_many(
                [Queue.prepare_data(JOB_FUNCTION, (page,), job_id=job_id(page), timeout=300, failure_ttl=7 * 86400, meta=job_meta(page)) for page in pages],
                pipeline=pipe,
            )
        pipe.execute()
