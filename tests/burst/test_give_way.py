"""A page from a lane below `critical` gives way to a critical page between slices of its
decisions: what it has not decided goes back to the front of its lane as one job, still pending
and covered for the sweep, and the worker takes the critical page next."""
from __future__ import annotations

from datetime import UTC, datetime

from rq.job import Job
from rq.registry import FinishedJobRegistry
from sqlmodel import Session, select

from connectors.intake import persist_posts
from flows import triage_batch, triage_queue
from flows.context import AppContext, set_process_context
from flows.sweep import _covered_posts
from models import Post, RawPost, TriageState
from runtime.worker import FlareWorker
from triage.factory import rules_pipeline

CALM = "is the 42 bus running late today, number {n}"
CRY = "help my dad collapsed and is not breathing, 7 Rowan Close"


def _stored(ctx: AppContext, texts: list[str], start: int) -> list[int]:
    raws = [RawPost(platform="x", external_id=str(start + n), text=t, raw_payload="{}", author_id=f"a{start + n}",
                    author_handle=f"a{start + n}", posted_at=datetime.now(UTC)) for n, t in enumerate(texts)]
    return [p.post_id for p in persist_posts(ctx.engine, raws)]


def _results(ctx: AppContext, lane: str) -> list[dict]:
    registry = FinishedJobRegistry(queue=ctx.queues[lane])
    jobs = [Job.fetch(job_id, connection=ctx.redis) for job_id in registry.get_job_ids()]
    return [job.return_value() for job in sorted(jobs, key=lambda j: j.ended_at)]


def test_a_default_page_gives_way_to_a_critical_page_a_slice_at_a_time(settings, redis_conn):
    ctx = AppContext.build(settings)
    ctx.pipeline = rules_pipeline()
    set_process_context(ctx)  # what the worker's jobs run with
    try:
        calm = _stored(ctx, [CALM.format(n=n) for n in range(40)], 0)
        [cry] = _stored(ctx, [CRY], 100)
        triage_queue.enqueue(ctx, [(post_id, "default") for post_id in calm])
        triage_queue.enqueue(ctx, [(cry, "critical")])
        # A worker on the default lane alone, so the critical page waits for the whole test.
        FlareWorker([ctx.queues["default"]], connection=ctx.redis).work(burst=True)
        slices = _results(ctx, "default")
        assert [r["handed_back"] for r in slices] == [40 - 16, 40 - 32, 0]
        assert ctx.queues["critical"].count == 1, "the critical page was never held back by this lane"
        with Session(ctx.engine) as s:
            pending = s.exec(select(Post.id).where(Post.triage_state == TriageState.pending.value)).all()
        assert set(pending) <= set(calm) | {cry}
        assert set(pending) - {cry} <= _covered_posts(ctx), "what was handed back stays covered"
        # With no critical page waiting, a page is decided whole.
        more = _stored(ctx, [CALM.format(n=n) for n in range(40, 80)], 200)
        ctx.queues["critical"].empty()
        assert triage_batch.run(ctx, more)["handed_back"] == 0
    finally:
        set_process_context(None)
        ctx.close()
