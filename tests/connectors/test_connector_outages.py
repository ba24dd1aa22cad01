"""The polling loop through database and Redis outages: probed, read ahead, stored the moment it ends."""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from connector_test_helpers import PagedSource, Recorder, RecordingStop, stored_posts, wait_for
from connectors.runner import DbCheckpointStore, run_forever
from connectors import runner
from connectors.x import XMentionsSource
from flows.context import AppContext
from models.db import make_engine
from models.domain import RawPost
from runtime.connector_loop import run_connectors
from tests.tcp_proxy import TcpProxy


def _database_behind_proxy(database_url: str):
    """An engine reaching the test database through a TCP proxy the test can cut (PostgreSQL)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL behind a cuttable TCP proxy")
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    return proxy, make_engine(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))


class _WaitLog(threading.Event):
    """A stop event that notes how long each thread asked to wait on it: what a loop did between
    its polls, read without a clock. Unlike RecordingStop, it really waits: the loop
    runs against a real database and platform."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: dict[str, list[float | None]] = {}

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.setdefault(threading.current_thread().name, []).append(timeout)
        return super().wait(timeout)


def test_first_poll_runs_as_soon_as_the_database_is_back(sandbox, platform_settings, database_url, redis_conn):
    """A post that arrived while the database refused connections is stored as soon as it
    returns: through the outage the loop only probes the database (it never waits a backoff), and
    the post is stored without waiting the (here long) poll interval."""
    state, _ = sandbox
    proxy, engine = _database_behind_proxy(database_url)
    poll_seconds = 30.0  # longer than wait_for's timeout: a wait for the next poll fails the test
    settings = platform_settings.model_copy(
        update={"x": platform_settings.x.model_copy(update={"poll_seconds": poll_seconds})})
    stop = _WaitLog()
    thread = threading.Thread(target=run_forever, args=([XMentionsSource(settings.x)], engine, Recorder(),
                                                        DbCheckpointStore(engine), redis_conn, stop))
    waits = stop.waits.setdefault("connector-x:mentions", [])
    try:
        proxy.refuse()
        thread.start()
        state.add_post("x", "@flare999 flooding at the school", "db")
        wait_for(lambda: len(waits) >= 4)  # failed polls: a second of an outage
        proxy.accept()
        wait_for(lambda: len(stored_posts(engine)) == 1)
        seen = list(waits)
    finally:
        stop.set()
        thread.join(timeout=10)
        proxy.close()
        engine.dispose()
    if seen[-1] == poll_seconds:  # the wait after the poll that followed the store
        seen.pop()
    assert all(wait is not None and wait <= runner.DATABASE_PROBE_SECONDS for wait in seen), seen


def test_posts_read_during_a_database_outage_are_stored_the_moment_it_ends(sandbox, platform_settings, database_url,
                                                                            redis_conn):
    """While the database refuses, the connector keeps reading the platform from its last
    checkpoint and holds what it read: when the database answers, the post is stored at once,
    even though the platform now fails every read (no round trip stands between the two)."""
    state, _ = sandbox
    proxy, engine = _database_behind_proxy(database_url)
    settings = platform_settings.model_copy(update={"x": platform_settings.x.model_copy(update={"poll_seconds": 0.3})})
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=([XMentionsSource(settings.x)], engine, Recorder(),
                                                        DbCheckpointStore(engine), redis_conn, stop))
    mentions = "GET /2/users/1000/mentions"
    try:
        state.add_post("x", "@flare999 before the outage", "early")
        thread.start()
        wait_for(lambda: len(stored_posts(engine)) == 1)
        proxy.refuse()
        state.add_post("x", "@flare999 flooding at the school", "db")
        reads = state.path_counts[mentions]
        wait_for(lambda: state.path_counts[mentions] >= reads + 2)  # read during the outage
        state.set_faults("x", {"error_rate": 1.0})
        proxy.accept()
        # Every read now fails, so the post can only come from the page held through the outage; it
        # is stored on the first probe that finds the database back (one every quarter second), not
        # after a poll cycle or its back-off (the bound is loose: a loaded CI machine is slow).
        wait_for(lambda: len(stored_posts(engine)) == 2, timeout=5.0)
        # The checkpoint moves after the posts are stored and handed on (its own commit).
        newest = {"since_id": state.items[-1].external_id}
        wait_for(lambda: DbCheckpointStore(engine).load("x:mentions") == newest, timeout=5.0)
    finally:
        stop.set()
        thread.join(timeout=10)
        proxy.close()
        engine.dispose()


class _QueueDown(Recorder):
    """on_persisted against a Redis that is down until `up` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.up = threading.Event()
        self.refused = 0

    def __call__(self, persisted) -> None:
        if not self.up.is_set():
            self.refused += 1
            raise ConnectionError("Redis is down")
        super().__call__(persisted)


def test_posts_stored_while_redis_is_down_are_handed_on_the_moment_it_is_back(
        sandbox, platform_settings, engine, redis_conn):
    """Not after the sweep's grace period: the connector itself tries again every quarter second."""
    state, _ = sandbox
    settings = platform_settings.model_copy(update={"x": platform_settings.x.model_copy(update={"poll_seconds": 30})})
    handed = _QueueDown()
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=([XMentionsSource(settings.x)], engine, handed,
                                                        DbCheckpointStore(engine), None, stop))
    state.add_post("x", "@flare999 my neighbour has collapsed", "rd")
    thread.start()
    try:
        wait_for(lambda: len(stored_posts(engine)) == 1)
        time.sleep(1.0)
        assert handed.calls == [] and handed.refused >= 2  # stored, not handed on, tried again
        handed.up.set()
        back = time.monotonic()
        wait_for(lambda: handed.created == 1)
        assert time.monotonic() - back < 1.0  # not the 30 s poll interval, nor the sweep's grace
    finally:
        stop.set()
        thread.join(timeout=10)
    assert handed.created == 1 and state.path_counts["GET /2/users/1000/mentions"] == 1


class _Unanswering:
    """An engine whose pool is exhausted: not a DBAPI error, and it must still read as 'down'."""

    def connect(self):
        raise sqlalchemy.exc.TimeoutError("QueuePool limit reached")


def test_an_exhausted_pool_reads_as_a_database_that_does_not_answer():
    assert runner.database_answers(_Unanswering()) is False
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    runner.wait_for_database(_Unanswering(), stop)  # returns on stop, never raises
    assert stop.is_set()


def test_read_ahead_through_a_database_outage_holds_a_bounded_number_of_posts(monkeypatch):
    class Endless:
        name, platform, rate_limited_until = "endless", "x", 0.0

        def __init__(self) -> None:
            self.fetches = 0

        def fetch(self, cursor):
            self.fetches += 1
            start = cursor.get("n", 0)
            posts = [RawPost(platform="x", external_id=str(start + k), text="t", raw_payload="{}",
                             author_id="a", author_handle="a", posted_at=datetime.now(UTC)) for k in range(40)]
            return posts, {"n": start + 40}

    probes = iter([False] * 30 + [True])
    monkeypatch.setattr(runner, "database_answers", lambda engine: next(probes))
    monkeypatch.setattr(runner, "DATABASE_PROBE_SECONDS", 0.0)
    monkeypatch.setattr(runner, "HELD_MAX", 100)
    source = Endless()
    posts, cursor = runner.read_while_database_down(source, None, threading.Event(), {}, poll_seconds=0.0)
    assert len(posts) == 120 and source.fetches == 3  # reading paused once 100 were held
    assert cursor == {"n": 120}  # the cursor those posts were read up to: the rest are read later


def test_a_source_with_no_checkpoint_reads_ahead_through_a_database_outage(engine, monkeypatch):
    """A connectors process restarted into a database outage has loaded no checkpoint: it reads
    from the platform's newest while the database refuses, and stores the posts of the recent past
    the moment it answers, without moving the checkpoint (the read from it follows and finds them
    stored). An old post read so is left to that read: a post a retention purge removed is never
    stored again."""
    now = datetime.now(UTC)

    class Newest:
        name, platform, rate_limited_until = "x:newest", "x", 0.0

        def __init__(self) -> None:
            self.cursors: list[dict] = []
            self.committed: list[str] = []

        def fetch(self, cursor):
            self.cursors.append(dict(cursor))
            posts = [RawPost(platform="x", external_id=ext, text="help", raw_payload="{}", author_id=ext,
                             author_handle=ext, posted_at=at)
                     for ext, at in (("old", now - timedelta(days=40)), ("undated", None), ("recent", now))]
            return posts, {"since_id": "recent"}

        def after_commit(self, posts):
            self.committed += [p.external_id for p in posts]

    probes = iter([False, False, True])
    monkeypatch.setattr(runner, "database_answers", lambda _engine: next(probes))
    monkeypatch.setattr(runner, "DATABASE_PROBE_SECONDS", 0.0)
    source, handed = Newest(), Recorder()
    store = runner._RememberedCursors(DbCheckpointStore(engine))
    wait = runner._store_read_ahead(source, engine, handed, store, threading.Event(), None, poll_seconds=0.0)
    assert wait == 0.0  # the read from the checkpoint follows at once
    assert source.cursors[0] == {}  # from the platform's newest: no checkpoint was known
    assert [p.external_id for p in stored_posts(engine)] == ["recent"] and handed.created == 1
    assert source.committed == ["recent"]  # platform bookkeeping for what was stored only
    assert DbCheckpointStore(engine).load("x:newest") == {} and "x:newest" not in store.last


def test_connectors_start_and_store_while_redis_is_down(sandbox, platform_settings, engine, tmp_path):
    """`flare connectors` started while Redis refuses polls and stores at once: posts wait in the
    database (workers triage them from there) and are handed on once Redis answers."""
    state, _ = sandbox
    ctx = AppContext.build(platform_settings, redis_url=f"unix://{tmp_path / 'no-redis.sock'}", redis_required=False)
    stop = threading.Event()
    thread = threading.Thread(target=run_connectors, args=(ctx, stop))
    thread.start()
    try:
        state.add_post("x", "@flare999 my neighbour fell down the stairs", "early")
        wait_for(lambda: len(stored_posts(engine, "x")) == 1, 30)
    finally:
        stop.set()
        thread.join(timeout=10)
        ctx.close()
    assert not thread.is_alive()


class _PagedPosts(PagedSource):
    """PagedSource with a post on each page that reads one."""

    def fetch(self, cursor):
        page = self.pages
        _, cursor = super().fetch(cursor)
        return [RawPost(platform="fake", external_id=str(page), text="t", raw_payload="{}",
                        author_id="a", author_handle="a")], cursor


def test_a_source_with_more_to_read_reads_on_through_a_database_outage(monkeypatch):
    """While the database refuses, a page that says more follows is read on at once too, not a
    poll interval later: the whole backlog is held, and stored, when the database answers."""
    source = _PagedPosts()
    monkeypatch.setattr(runner, "database_answers", lambda engine: not source.more_to_read)
    stop = RecordingStop(20)  # waiting the poll interval instead would spend them all
    posts, _ = runner.read_while_database_down(source, None, stop, {}, poll_seconds=30.0)
    assert [p.external_id for p in posts] == ["2", "1", "0"] and not stop.is_set()


def test_posts_read_while_the_database_refuses_are_handed_on_for_dispatch_once_each(monkeypatch):
    """Each post newly read during the outage goes to `on_held` once (a re-read does not repeat
    it); a batch `on_held` refused (Redis down) is offered again with what was read since, and
    the posts are held for the database either way."""
    class Repeating:
        name, platform, rate_limited_until = "repeating", "x", 0.0

        def __init__(self) -> None:
            self.fetches = 0

        def fetch(self, cursor):
            self.fetches += 1
            # Every read returns the page again plus one new post: a platform read from a cursor
            # that cannot move (nothing is stored).
            posts = [RawPost(platform="x", external_id=str(k), text=f"t{k}", raw_payload="{}", author_id="a",
                             author_handle="a") for k in range(self.fetches + 1)]
            return posts, cursor

    offered: list[list[str]] = []

    def on_held(posts):
        offered.append([p.external_id for p in posts])
        if len(offered) == 2:
            raise ConnectionError("Redis refused")

    probes = iter([False] * 3 + [True])
    monkeypatch.setattr(runner, "database_answers", lambda engine: next(probes))
    monkeypatch.setattr(runner, "DATABASE_PROBE_SECONDS", 0.0)
    posts, _ = runner.read_while_database_down(Repeating(), None, threading.Event(), {}, poll_seconds=0.0,
                                               on_held=on_held)
    assert offered == [["0", "1"], ["2"], ["2", "3"], ["4"]]  # refused once, offered again with the next
    assert sorted(p.external_id for p in posts) == ["0", "1", "2", "3", "4"]
