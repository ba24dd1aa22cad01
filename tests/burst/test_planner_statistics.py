"""The planner's statistics follow a burst: a table that grew a lot since its last ANALYZE is
analyzed by the workers' sweeper within seconds (PostgreSQL), instead of a minute or more later by
autovacuum; without them every reply check of a page walked all members of every open incident."""
from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import insert, text

from flows import sweep
from flows.context import AppContext
from models.db import ANALYZE_MIN_CHANGES, refresh_statistics
from models.tables import Incident, IncidentPost, Post

AUTHORS = 2_000


@pytest.fixture
def ctx(settings, redis_conn):
    c = AppContext.build(settings)
    yield c
    c.close()


def _changes_counted(engine, table: str, at_least: int) -> None:
    """Wait until the statistics system counts this session's writes (PostgreSQL publishes a
    backend's counts when it is idle, at most about once a second)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            changed = conn.execute(text("SELECT n_mod_since_analyze FROM pg_stat_user_tables "
                                        "WHERE relname = :t AND schemaname = current_schema()"),
                                   {"t": table}).scalar()
        if changed is not None and changed >= at_least:
            return
        time.sleep(0.2)
    raise AssertionError(f"{table}: {at_least} changes never counted")


def _burst(engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(Post), [{"platform": "x", "external_id": f"p{i}", "author_id": f"a{i}",
                                     "text": "smoke everywhere"} for i in range(AUTHORS)])
        conn.execute(insert(Incident), [{"urgency": "critical", "category": "fire", "status": "queued"}])
        incident_id = conn.execute(text("SELECT max(id) FROM incidents")).scalar()
        post_ids = conn.execute(text("SELECT id FROM posts ORDER BY id")).scalars().all()
        conn.execute(insert(IncidentPost), [{"incident_id": incident_id, "post_id": post_id}
                                            for post_id in post_ids])


def _posts_estimated(engine) -> int:
    """How many posts the planner expects 64 authors to have written."""
    authors = ", ".join(f"'a{i}'" for i in range(64))
    with engine.connect() as conn:
        plan = "\n".join(conn.execute(text(f"EXPLAIN SELECT id FROM posts WHERE author_id IN ({authors})")).scalars())
    return int(re.search(r"on posts .*?rows=(\d+)", plan).group(1))


def test_tables_a_burst_grew_are_analyzed_once(engine):
    if engine.dialect.name != "postgresql":
        _burst(engine)
        assert refresh_statistics(engine) == []  # SQLite plans from its indexes
        return
    refresh_statistics(engine)  # whatever earlier tests changed is analyzed first
    _burst(engine)
    _changes_counted(engine, "posts", AUTHORS)
    _changes_counted(engine, "incident_posts", AUTHORS)
    analyzed = refresh_statistics(engine)
    assert {"posts", "incident_posts"} <= set(analyzed)
    with engine.connect() as conn:
        distinct = conn.execute(text("SELECT n_distinct FROM pg_stats WHERE tablename = 'posts' "
                                     "AND attname = 'author_id' AND schemaname = current_schema()")).scalar()
    assert distinct == -1  # every author once: a lookup by author is one row
    assert _posts_estimated(engine) == 64
    # Nothing changed since: analyzed again only once it has changed enough.
    assert not {"posts", "incident_posts"} & set(refresh_statistics(engine))
    assert ANALYZE_MIN_CHANGES < AUTHORS


def test_one_process_looks_per_interval(ctx, monkeypatch):
    calls = []
    monkeypatch.setattr(sweep, "refresh_statistics", lambda engine: calls.append(engine) or ["posts"])
    assert sweep.try_refresh_statistics(ctx) == ["posts"]
    assert sweep.try_refresh_statistics(ctx) is None  # another worker (or this one) looked just now
    assert len(calls) == 1
