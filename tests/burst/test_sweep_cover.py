"""The sweep tells which pending posts a live triage job still covers from each job's meta, never
from its call data (an act job's data carries its posts' model outputs, embeddings included)."""
from __future__ import annotations

import pytest
from rq.job import Job, JobStatus

from datetime import UTC, datetime

from flows import sweep
from flows.context import ACT_QUEUE, LANES, AppContext, set_process_context
from flows.sweep import _covered_posts
from flows import triage_batch, triage_queue
from flows.intake import ingest
from models import RawPost


@pytest.fixture
def ctx(settings, redis_conn):
    c = AppContext.build(settings)
    set_process_context(c)
    yield c
    set_process_context(None)
    c.close()


def test_covered_posts_come_from_job_meta_and_older_jobs_are_read_whole(ctx):
    triage_queue.enqueue(ctx, [(1, "default"), (2, "default"), (3, "bulk")])
    act = ctx.queues[ACT_QUEUE].enqueue(triage_batch.ACT_FUNCTION, [4, 5],
                                        job_id="triage-act-4-2-1", meta=triage_queue.job_meta([4, 5]))
    # Queued by a version without the meta: its posts are only in its call.
    ctx.queues["default"].enqueue(triage_queue.JOB_FUNCTION, [7, 8], job_id="triage-batch-7-2-1")
    # The act job's call data is never read: unreadable data does not matter.
    ctx.redis.hset(Job.key_for(act.id), "data", b"not a pickle")
    assert _covered_posts(ctx) == {1, 2, 3, 4, 5, 7, 8}

    # A job that failed covers nothing (its posts are re-driven).
    old = Job.fetch("triage-batch-7-2-1", connection=ctx.redis)
    old.set_status(JobStatus.FAILED)
    ctx.redis.hset(Job.key_for(act.id), "status", JobStatus.FINISHED.value)
    assert _covered_posts(ctx) == {1, 2, 3}


@pytest.mark.parametrize("looks", [1, 2])
def test_a_post_is_re_driven_only_when_it_looks_uncovered_twice(ctx, monkeypatch, looks):
    """A job handing its posts on between the sweep's reads of the queues and of the registries
    looks lost once; a post no live job holds looks lost at every look."""
    ctx.settings.outbox_grace_seconds = 0
    ids = [p.post_id for p in ingest(ctx, [RawPost(platform="x", external_id="s1", text="is the bus late",
                                                   raw_payload="{}", author_id="a", author_handle="a",
                                                   posted_at=datetime.now(UTC))])]
    real = sweep._covered_posts
    seen: list[int] = []

    def covered(c):
        seen.append(1)
        return set() if len(seen) <= looks else real(c)  # the first `looks` reads miss the job

    monkeypatch.setattr(sweep, "_covered_posts", covered)
    queued_before = sum(ctx.queues[lane].count for lane in LANES)
    counts = sweep.sweep(ctx)
    assert len(seen) == 2
    assert counts["posts"] == (len(ids) if looks == 2 else 0)
    assert sum(ctx.queues[lane].count for lane in LANES) == queued_before + (1 if looks == 2 else 0)
