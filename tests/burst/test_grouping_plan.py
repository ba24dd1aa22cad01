"""Grouping worked out before the act transaction (grouping.finder.plan) gives the answers of
grouping decided under the lock, when two workers interleave: each worker plans its group, the
other worker commits a group of its own (joining and opening incidents, so the plan is stale),
then the first acts with its plan. The same interleaving is replayed on a fresh database with
every group decided under the lock alone; every post must land in the same incident for the same
reason, and every incident must be the same."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlmodel import Session, SQLModel, select

from burst_helpers import load_burst_module, triage_context
from flows import triage_batch
from flows.intake import ingest
from grouping import finder, rules
from models import Incident, IncidentPost, Post, RawPost
from models.domain import GeoPoint
from tests.db_cleanup import truncate_all

GROUP = 32


@pytest.fixture
def ctx(settings, redis_conn):  # redis_conn: a flushed Redis database for this test
    with triage_context(settings) as c:
        yield c


def _raws(entries) -> list[RawPost]:
    return [RawPost(platform=e.platform, external_id=str(n), text=e.text, raw_payload=e.text,
                    author_id=e.author, author_handle=e.author, posted_at=datetime.now(UTC),
                    geo=GeoPoint(e.lat, e.lon, "") if e.lat is not None else None)
            for n, e in enumerate(entries)]


def _reset(ctx) -> None:
    """An empty database (ids from 1 again) and Redis, as before the first run."""
    if ctx.engine.dialect.name == "postgresql":
        truncate_all(ctx.engine)
    else:
        with ctx.engine.begin() as conn:
            for table in reversed(SQLModel.metadata.sorted_tables):
                conn.execute(table.delete())
            # Ids restart at 1 once the rows are gone, unless a table uses AUTOINCREMENT
            # (then sqlite_sequence exists and remembers them).
            if conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")).first():
                conn.execute(text("DELETE FROM sqlite_sequence"))
    ctx.redis.flushdb()


def _run(ctx, entries, outs, planned: bool, cluster_rules: rules.ClusterRules = finder.RULES
         ) -> tuple[dict, dict, tuple[int, int]]:
    """Two workers (each with its own grouping state, deciding by `cluster_rules`) act on
    alternate groups; with `planned`, each plans its group before the other's previous group
    commits."""
    _reset(ctx)
    ids = [p.post_id for p in ingest(ctx, _raws(entries))]
    for queue in ctx.queues.values():
        queue.empty()
    with Session(ctx.engine, expire_on_commit=False) as s:
        posts = {p.id: p for p in s.exec(select(Post).where(Post.id.in_(ids))).all()}
    decided = [(posts[i], out) for i, out in zip(ids, outs, strict=True)]
    groups = [decided[n:n + GROUP] for n in range(0, len(decided), GROUP)]
    workers = [finder.ClusterState(ctx.redis, cluster_rules), finder.ClusterState(ctx.redis, cluster_rules)]
    durations = dict.fromkeys(ids, 1.0)
    in_lock = [0, 0]  # answers reused, computed under the lock

    def plan(n: int) -> finder.Plan | None:
        if not planned:
            return None
        with Session(ctx.engine) as ahead:
            made = finder.plan(workers[n % 2], ahead, groups[n])
        return made

    def act(n: int, made: finder.Plan | None) -> None:
        ctx.cluster_state = workers[n % 2]
        before = made.reuse_counts() if made is not None else (0, 0)
        assert triage_batch._act(ctx, groups[n], durations, made) == len(groups[n])
        if made is not None:
            after = made.reuse_counts()
            in_lock[0] += after[0] - before[0]
            in_lock[1] += after[1] - before[1]

    # Worker A plans group n; worker B plans and commits group n + 1; A acts on group n with its
    # now stale plan; and so on.
    for n in range(0, len(groups), 2):
        first = plan(n)
        if n + 1 < len(groups):
            act(n + 1, plan(n + 1))
        act(n, first)
    with Session(ctx.engine) as s:
        placed = {row.post_id: (row.incident_id, row.reason, row.similarity)
                  for row in s.exec(select(IncidentPost)).all()}
        incidents = {i.id: (i.category, i.urgency, i.report_count, i.lat, i.lon, (i.flags or {}).get("possible_duplicate_of"))
                     for i in s.exec(select(Incident)).all()}
        dispositions = dict(s.exec(select(Post.id, Post.disposition)).all())
    return {"placed": placed, "dispositions": dispositions}, incidents, (in_lock[0], in_lock[1])


@pytest.mark.slow
def test_planned_grouping_gives_the_answers_of_grouping_under_the_lock(ctx, monkeypatch):
    # Every decision reads the incidents' centroids from Redis as they are (no few-seconds cache
    # whose expiry would fall differently in two runs of different speed).
    monkeypatch.setattr(finder, "SHARED_CACHE_SECONDS", 0.0)
    entries = load_burst_module().burst_scenario(360, 6, 60.0, 7)
    outs = ctx.pipeline.many([triage_batch._input(Post(text=e.text, platform=e.platform,
                                                       geo_lat=e.lat, geo_lon=e.lon)) for e in entries])
    locked, locked_incidents, _ = _run(ctx, entries, outs, planned=False)
    planned, planned_incidents, (reused, computed) = _run(ctx, entries, outs, planned=True)

    assert len(locked["placed"]) > 100 and len(locked_incidents) > 3, "the burst was grouped"
    assert planned["placed"] == locked["placed"]
    assert planned["dispositions"] == locked["dispositions"]
    assert planned_incidents == locked_incidents
    # Both halves were exercised: answers reused from the plan, and answers computed again under
    # the lock for incidents the other worker opened or changed after the plan was made.
    assert reused > 0 and computed > 0
