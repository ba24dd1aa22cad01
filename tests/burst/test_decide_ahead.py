"""Decide ahead: while pages wait to be decided, a page's urgent posts are acted on at once and the
rest wait, decided, in the act queue; an act job that is lost is re-driven by the sweep."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from runtime.worker import FlareWorker
from sqlalchemy import update
from sqlmodel import Session, select

from flows.context import ACT_QUEUE, LANES, WORKER_QUEUES
from flows.sweep import _covered_posts, sweep
from flows import triage_batch
from flows.intake import ingest
from models import Incident, IncidentPost, Post, RawPost, TriageState
from models.tables import TriageRecord
from triage.base import TriageInput
from burst_helpers import triage_context

URGENT = "my dad has collapsed and isn't breathing, 4 Mill Lane Leeds, please help"
CALM = ["is the 42 bus running late today", "what time does the library close on sundays",
        "happy birthday to my little brother, have a great day", "does anyone know when the shop opens"]


@pytest.fixture
def ctx(settings, redis_conn):  # redis_conn: a flushed Redis database for this test
    with triage_context(settings) as c:
        yield c


def _posts(texts: list[str], start: int) -> list[RawPost]:
    return [RawPost(platform="x", external_id=str(start + n), text=t, raw_payload=t, author_id=f"a{start + n}",
                    author_handle=f"a{start + n}", posted_at=datetime.now(UTC)) for n, t in enumerate(texts)]


@pytest.mark.slow
def test_urgent_posts_are_acted_on_first_the_rest_wait_decided_and_a_lost_act_job_is_redriven(ctx):
    page = ingest(ctx, _posts([URGENT, *CALM], 0))
    # A second page waits to be decided: the first page's job acts only on what must go first.
    ingest(ctx, _posts(CALM, 100))
    ids = [p.post_id for p in page]
    for lane in LANES:  # this test runs the first page's jobs itself
        for job in ctx.queues[lane].jobs:
            if set(job.args[0]) & set(ids):
                ctx.queues[lane].remove(job)
    outs = ctx.pipeline.many([TriageInput(text=t) for t in [URGENT, *CALM]])
    first = {i for i, out in zip(ids, outs, strict=True) if out.urgency in ("critical", "high") or out.needs_review}
    assert ids[0] in first and len(first) < len(ids), "the model's view of these posts"
    counts = triage_batch.run(ctx, ids)
    assert counts["triaged"] == len(first) and counts["deferred"] == len(ids) - len(first)
    with Session(ctx.engine) as s:
        state = dict(s.exec(select(Post.id, Post.triage_state).where(Post.id.in_(ids))).all())
        queued = s.exec(select(Incident).join(IncidentPost, IncidentPost.incident_id == Incident.id)
                        .where(IncidentPost.post_id == ids[0])).one()
    assert state[ids[0]] == TriageState.done.value and queued.stream_entry_id, "the cry is in the dispatch queue"
    later = set(ids) - first
    assert all(state[i] == TriageState.pending.value for i in later), "the rest stay pending until acted on"
    assert later <= _covered_posts(ctx), "the act job covers them: the sweep leaves them alone"

    # The act job is lost (a crash between decide and act): the sweep queues the posts again.
    ctx.redis.delete(f"rq:queue:{ACT_QUEUE}")
    assert not later & _covered_posts(ctx)
    with Session(ctx.engine) as s:
        s.exec(update(Post).values(received_at=datetime.now(UTC) - timedelta(minutes=5)))
        s.commit()
    assert sweep(ctx)["posts"] >= len(later)
    FlareWorker([ctx.queues[q] for q in WORKER_QUEUES], connection=ctx.redis).work(
        burst=True, with_scheduler=False, logging_level="WARNING")
    with Session(ctx.engine) as s:
        assert not s.exec(select(Post.id).where(Post.triage_state == TriageState.pending.value)).all()
        records = s.exec(select(TriageRecord.post_id)).all()
    assert len(records) == len(set(records)) == 1 + 2 * len(CALM), "every post acted on once"


@pytest.mark.slow
def test_nothing_waits_when_no_page_waits(ctx):
    ids = [p.post_id for p in ingest(ctx, _posts([URGENT, *CALM], 0))]
    for lane in LANES:  # this test runs the page's jobs itself
        ctx.queues[lane].empty()
    counts = triage_batch.run(ctx, ids)
    assert counts["triaged"] == 1 + len(CALM) and counts["deferred"] == 0
