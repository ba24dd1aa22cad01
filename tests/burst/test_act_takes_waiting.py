"""An act job takes on the act jobs waiting behind it, acts on every post once, and gives way to
pages waiting to be decided."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rq.job import Job
from sqlmodel import Session, select

from burst_helpers import triage_context
from flows.context import ACT_QUEUE, LANES
from flows.sweep import _covered_posts
from runtime.worker import FlareWorker
from flows import triage_batch, triage_queue
from flows.intake import ingest
from models import Post, RawPost, TriageState
from models.tables import TriageRecord
from triage.base import TriageInput

CALM = [
    "is the 42 bus running late today",
    "what time does the library close on sundays",
    "happy birthday to my little brother, have a great day",
    "does anyone know when the shop opens",
]


@pytest.fixture
def ctx(settings, redis_conn):  # redis_conn: a flushed Redis database for this test
    with triage_context(settings) as c:
        yield c


def _deferred_pages(ctx, pages: int, first: int = 0) -> list[list[int]]:
    """`pages` act jobs waiting in the act queue, each with its page's decided posts."""
    out = []
    for n in range(first, first + pages):
        raw = [
            RawPost(platform="x", external_id=f"{n}-{k}", text=t, raw_payload=t, author_id=f"a{n}-{k}", author_handle=f"a{n}-{k}", posted_at=datetime.now(UTC))
            for k, t in enumerate(CALM)
        ]
        ids = [p.post_id for p in ingest(ctx, raw)]
        out.append(ids)
    for lane in LANES:  # the test decides the pages itself
        ctx.queues[lane].empty()
    for ids in out:
        with Session(ctx.engine) as s:
            posts = list(s.exec(select(Post).where(Post.id.in_(ids)).order_by(Post.id)).all())
        outs = ctx.pipeline.many([TriageInput(text=p.text) for p in posts])
        triage_batch._defer(ctx, list(zip(posts, outs, strict=True)), dict.fromkeys(ids, 2.5))
    return out


def _records(ctx) -> list[int]:
    with Session(ctx.engine) as s:
        return list(s.exec(select(TriageRecord.post_id)).all())


@pytest.mark.slow
def test_one_act_job_takes_on_those_waiting_and_acts_on_every_post_once(ctx):
    pages = _deferred_pages(ctx, 3)
    jobs = ctx.queues[ACT_QUEUE].job_ids
    assert len(jobs) == 3
    FlareWorker([ctx.queues[ACT_QUEUE]], connection=ctx.redis).work(burst=True, with_scheduler=False, logging_level="WARNING")
    first = Job.fetch(jobs[0], connection=ctx.redis)
    assert first.return_value() == {"triaged": 3 * len(CALM), "skipped": 0, "handed_back": 0}
    assert sorted(first.meta["posts"]) == sorted(i for ids in pages for i in ids), "it said which posts it took"
    assert not Job.exists(jobs[1], connection=ctx.redis) and not Job.exists(jobs[2], connection=ctx.redis)
    records = _records(ctx)
    assert sorted(records) == sorted(i for ids in pages for i in ids), "every post acted on once"
    with Session(ctx.engine) as s:
        assert {r.duration_ms for r in s.exec(select(TriageRecord)).all()} == {2.5}


@pytest.mark.slow
def test_taken_posts_stay_covered_for_the_sweep(ctx):
    pages = _deferred_pages(ctx, 3)
    queue = ctx.queues[ACT_QUEUE]
    current = Job.fetch(queue.job_ids[0], connection=ctx.redis)
    queue.remove(current)  # as a worker does when it starts the job
    taken, carried = triage_batch._take_waiting(ctx, current, pages[0])
    assert sorted(taken) == sorted(pages[1] + pages[2])
    assert carried == {}, "the outputs wait in Redis, not in the jobs"
    assert queue.count == 0
    # The taking job's meta names them: while it lives (here: not finished), the sweep leaves them.
    ctx.queues[ACT_QUEUE].enqueue_job(Job.fetch(current.id, connection=ctx.redis))
    assert set(pages[1] + pages[2]) <= _covered_posts(ctx)


@pytest.mark.slow
def test_an_act_job_gives_way_to_pages_waiting_to_be_decided(ctx, monkeypatch):
    (ids,) = _deferred_pages(ctx, 1)
    job = Job.fetch(ctx.queues[ACT_QUEUE].job_ids[0], connection=ctx.redis)
    ctx.queues[ACT_QUEUE].empty()
    monkeypatch.setattr(triage_batch, "ACT_GROUP_POSTS", 1)
    ctx.redis.rpush(f"rq:queue:{LANES[-1]}", "a-page-waiting")
    try:
        counts = triage_batch.act_batch(*job.args, ctx=ctx)
    finally:
        ctx.redis.lrem(f"rq:queue:{LANES[-1]}", 0, "a-page-waiting")
    assert counts == {"triaged": 1, "skipped": 0, "handed_back": len(CALM) - 1}
    back = ctx.queues[ACT_QUEUE].jobs[0]  # at the front: decided before anything behind it
    assert sorted(back.args[0]) == sorted(set(ids) - set(_records(ctx)))
    with Session(ctx.engine) as s:
        pending = set(s.exec(select(Post.id).where(Post.triage_state == TriageState.pending.value)).all())
    assert pending == set(back.args[0])



@pytest.mark.slow
def test_a_post_in_two_act_jobs_is_acted_on_once_with_the_rest_of_its_group(ctx):
    """A sweep re-drive of a post a live job still covers puts it in two act jobs; the job that
    takes the other on holds it twice and must act on it once, not roll its group back."""
    texts = ["help my dad collapsed and is not breathing", "fire in the flat below, smoke everywhere", *CALM[:2]]
    raw = [RawPost(platform="x", external_id=f"dup-{k}", text=t, raw_payload=t, author_id=f"d{k}", author_handle=f"d{k}",
                   posted_at=datetime.now(UTC)) for k, t in enumerate(texts)]
    ids = [p.post_id for p in ingest(ctx, raw)]
    for lane in LANES:
        ctx.queues[lane].empty()
    with Session(ctx.engine) as s:
        posts = list(s.exec(select(Post).where(Post.id.in_(ids)).order_by(Post.id)).all())
    outs = ctx.pipeline.many([TriageInput(text=p.text) for p in posts])
    assert {o.urgency for o in outs[:2]} <= {"critical", "high"}  # they open incidents and receipts
    pairs = list(zip(ids, outs, strict=True))
    triage_batch._defer_pairs(ctx, pairs, dict.fromkeys(ids, 2.5))
    triage_batch._defer_pairs(ctx, pairs[:2], dict.fromkeys(ids, 2.5))  # the urgent two again, as a re-drive would
    queue = ctx.queues[ACT_QUEUE]
    FlareWorker([queue], connection=ctx.redis).work(burst=True, with_scheduler=False, logging_level="WARNING")
    assert sorted(_records(ctx)) == sorted(ids), "every post acted on, each once"
    with Session(ctx.engine) as s:
        assert not s.exec(select(Post.id).where(Post.triage_state == TriageState.pending.value)).all()


@pytest.mark.slow
def test_an_act_job_names_its_posts_and_their_decisions_wait_beside_it(ctx):
    """The call carries post ids only (RQ compressed 64 embeddings each time a job was saved or
    handed back); each post's output is kept in Redis until the post is acted on."""
    (ids,) = _deferred_pages(ctx, 1)
    job = ctx.queues[ACT_QUEUE].jobs[0]
    assert job.args == (ids,) and job.meta["kept"] is True
    assert len(job.data) < 200
    kept = triage_batch._read_decided(ctx, ids)
    assert sorted(kept) == sorted(ids) and {ms for _, ms in kept.values()} == {2.5}
    FlareWorker([ctx.queues[ACT_QUEUE]], connection=ctx.redis).work(burst=True, with_scheduler=False, logging_level="WARNING")
    assert sorted(_records(ctx)) == sorted(ids)
    assert not ctx.redis.keys(f"{triage_batch.DECIDED_PREFIX}*"), "forgotten once acted on"


@pytest.mark.slow
def test_a_post_whose_kept_decision_is_gone_is_decided_again(ctx):
    (ids,) = _deferred_pages(ctx, 1)
    ctx.redis.delete(f"{triage_batch.DECIDED_PREFIX}{ids[0]}")
    ctx.redis.set(f"{triage_batch.DECIDED_PREFIX}{ids[1]}", b"not a pickle")
    job = ctx.queues[ACT_QUEUE].jobs[0]
    ctx.queues[ACT_QUEUE].empty()
    counts = triage_batch.act_batch(*job.args, ctx=ctx)
    assert counts == {"triaged": len(CALM), "skipped": 0, "handed_back": 0}
    with Session(ctx.engine) as s:
        records = {r.post_id: r for r in s.exec(select(TriageRecord)).all()}
    assert sorted(records) == sorted(ids)
    assert records[ids[2]].duration_ms == 2.5 and records[ids[0]].duration_ms != 2.5, "decided again, timed again"


@pytest.mark.slow
def test_an_act_job_of_the_release_before_is_acted_on_with_the_outputs_in_its_call(ctx):
    """A rolling upgrade: act jobs queued by the release before carry (ids, outputs, decide ms)."""
    (ids,) = _deferred_pages(ctx, 1)
    kept = triage_batch._read_decided(ctx, ids)
    ctx.queues[ACT_QUEUE].empty()
    ctx.redis.delete(*(f"{triage_batch.DECIDED_PREFIX}{i}" for i in ids))
    (second,) = _deferred_pages(ctx, 1, first=1)
    old = ctx.queues[ACT_QUEUE].enqueue(triage_batch.ACT_FUNCTION, ids, [kept[i][0] for i in ids], 7.5,
                                        job_id=f"{triage_batch.ACT_JOB_PREFIX}old", meta=triage_queue.job_meta(ids),
                                        at_front=True)
    FlareWorker([ctx.queues[ACT_QUEUE]], connection=ctx.redis).work(burst=True, with_scheduler=False, logging_level="WARNING")
    assert Job.fetch(old.id, connection=ctx.redis).return_value()["triaged"] == 2 * len(CALM), "it took the new job on"
    with Session(ctx.engine) as s:
        records = {r.post_id: r.duration_ms for r in s.exec(select(TriageRecord)).all()}
    assert sorted(records) == sorted(ids + second)
    assert {records[i] for i in ids} == {7.5} and {records[i] for i in second} == {2.5}
