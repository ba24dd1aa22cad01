"""The polling loop: checkpoint order, back-fill after an outage, malformed payloads, health."""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from config import Settings
from connector_test_helpers import Recorder, db_external_id, poll, stored_posts
from connectors.bluesky import BlueskyAccount, BlueskyDirectMessagesSource, BlueskyNotificationsSource
from connectors.common import POLL_READ_TIMEOUT_S, RateLimited
from connectors.health import OUTAGE_AFTER_FAILURES, health_key, read_health
from connectors.reddit import RedditInboxSource
from connectors.registry import build_repliers, build_sources
from connectors.runner import (
    MAX_BACKOFF_SECONDS, DbCheckpointStore, _timed_out, backoff_seconds, poll_once, run_forever,
)
from connectors import runner
from connectors.x import XDirectMessagesSource, XMentionsSource
from flows.context import AppContext
from models.db import make_engine
from models.domain import RawPost
from runtime.connector_loop import run_connectors
from tests.fakes import NoCheckpoints
from tests.tcp_proxy import TcpProxy


class CrashAfterPersist(DbCheckpointStore):
    """Dies where a real process could: posts committed, checkpoint not yet written."""

    def save(self, name, cursor):
        raise RuntimeError("killed between persist and checkpoint")


def test_checkpoint_moves_only_after_persist_and_a_crash_rereads_without_duplicates(
        sandbox, platform_settings, engine):
    state, _ = sandbox
    for n in range(5):
        state.add_post("x", f"@flare999 report {n}", f"p{n}")
    source = XMentionsSource(platform_settings.x)

    with pytest.raises(RuntimeError):
        poll_once(source, engine, Recorder(), CrashAfterPersist(engine))
    assert len(stored_posts(engine)) == 5
    assert DbCheckpointStore(engine).load("x:mentions") == {}

    recorder = Recorder()
    result = poll(source, engine, recorder)

    assert result.fetched == 5 and result.stored == 0
    assert len(stored_posts(engine)) == 5
    assert DbCheckpointStore(engine).load("x:mentions") == {"since_id": state.items[-1].external_id}


def test_backfill_after_outage(sandbox, platform_settings, engine, tmp_path):
    state, _ = sandbox
    account = BlueskyAccount(platform_settings.bluesky, tmp_path / "s.txt")
    sources = [XMentionsSource(platform_settings.x), XDirectMessagesSource(platform_settings.x),
               BlueskyNotificationsSource(account), BlueskyDirectMessagesSource(account),
               RedditInboxSource(platform_settings.reddit)]
    for source in sources:
        poll(source, engine)  # logged in, checkpoints written
    outage = {"outage_for_seconds": 1.5}
    for platform in ("x", "bluesky", "reddit"):
        state.set_faults(platform, dict(outage))
    for n in range(120):
        platform = ("x", "bluesky", "reddit")[n % 3]
        state.add_post(platform, f"during outage {n}", f"u{n}", is_dm=n % 4 == 0)
    failed = 0
    for source in sources:
        try:  # prawcore retries 503s by itself and may outlast the outage
            poll(source, engine)
        except Exception:  # noqa: BLE001
            failed += 1
    assert failed >= 4

    time.sleep(max(0.0, state.faults["x"].outage_end - time.time()) + 0.1)
    for source in sources:
        poll(source, engine)

    stored = {(p.platform, p.external_id) for p in stored_posts(engine)}
    assert stored == {(i.platform, db_external_id(i)) for i in state.items}


@pytest.mark.parametrize("platform,is_dm", [("x", False), ("x", True), ("bluesky", False),
                                            ("bluesky", True), ("reddit", False), ("reddit", True)])
def test_malformed_items_are_stored_and_flagged(sandbox, platform_settings, engine, tmp_path, platform, is_dm):
    state, _ = sandbox
    state.add_post(platform, "broken on the wire", "odd", is_dm=is_dm, malformed=True)
    state.add_post(platform, "fine", "ok", is_dm=is_dm)
    sources = [s for s in build_sources(platform_settings.model_copy(update={"data_dir": tmp_path}))
               if s.platform == platform and (("dm" in s.name) == is_dm or platform == "reddit")]

    for source in sources:
        poll(source, engine)

    rows = stored_posts(engine, platform)
    flagged = [r for r in rows if r.malformed]
    assert len(rows) == 2 and len(flagged) == 1
    assert flagged[0].malformed_reason
    assert "broken on the wire" in flagged[0].raw_payload
    json.loads(flagged[0].raw_payload)  # verbatim JSON, not a Python repr
    assert [r.text for r in rows if not r.malformed] == ["fine"]


@pytest.mark.parametrize("platform,source_name", [("x", "x:mentions"), ("bluesky", "bluesky:notifications"),
                                                  ("reddit", "reddit:inbox")])
def test_garbage_response_body_is_kept_and_the_connector_carries_on(sandbox, platform_settings, engine, tmp_path,
                                                                    platform, source_name):
    state, _ = sandbox
    state.add_post(platform, "real report", "ok")
    settings = platform_settings.model_copy(update={"data_dir": tmp_path})
    source = next(s for s in build_sources(settings) if s.name == source_name)
    state.set_faults(platform, {"garbage_rate": 1.0})

    poll(source, engine)
    poll(source, engine)  # the same garbage again: stored once
    state.set_faults(platform, {})
    poll(source, engine)

    rows = stored_posts(engine, platform)
    assert [r.malformed for r in rows] == [True, False]
    assert rows[0].raw_payload.startswith("{")
    assert rows[1].text == "real report"


def test_run_forever_records_health_and_outage(sandbox, platform_settings, engine, redis_conn):
    state, _ = sandbox
    state.add_post("x", "@flare999 hello", "h")
    settings = platform_settings.model_copy(update={"x": platform_settings.x.model_copy(update={"poll_seconds": 0.05})})
    sources = [XMentionsSource(settings.x)]
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=(sources, engine, Recorder(), DbCheckpointStore(engine),
                                                        redis_conn, stop), kwargs={"max_backoff": 0.1})
    thread.start()
    try:
        _wait_for(lambda: read_health(redis_conn) and read_health(redis_conn)[0]["posts_stored_total"] == 1)
        healthy = read_health(redis_conn)[0]
        assert healthy["name"] == "x:mentions" and not healthy["in_outage"]
        assert healthy["seconds_since_success"] is not None and healthy["seconds_since_success"] < 5

        state.set_faults("x", {"outage_for_seconds": 30})
        _wait_for(lambda: read_health(redis_conn)[0]["in_outage"])
        failing = read_health(redis_conn)[0]
        assert failing["consecutive_failures"] >= OUTAGE_AFTER_FAILURES and "503" in failing["last_error"]

        state.set_faults("x", {"rate_limit_next": 1, "rate_limit_reset_seconds": 20})
        _wait_for(lambda: read_health(redis_conn)[0]["rate_limited"])
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert redis_conn.exists(health_key("x:mentions"))


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_registry_disables_platforms_without_credentials(tmp_path, caplog):
    bare = Settings(_env_file=None, data_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="connectors.registry"):
        assert build_sources(bare) == [] and build_repliers(bare) == {}
    text = caplog.text
    assert "x: disabled" in text and "bluesky: disabled" in text and "reddit: disabled" in text


def test_registry_builds_everything_when_configured(platform_settings):
    names = [s.name for s in build_sources(platform_settings)]
    assert names == ["x:mentions", "x:dms", "bluesky:notifications", "bluesky:dms", "reddit:inbox",
                     "reddit:r/emergencytest"]
    assert set(build_repliers(platform_settings)) == {"x", "bluesky", "reddit"}


@pytest.mark.parametrize("source_name", ["x:mentions", "bluesky:notifications", "reddit:inbox"])
def test_429_closes_each_platforms_gate_and_then_recovers(sandbox, platform_settings, tmp_path, source_name):
    state, _ = sandbox
    source = next(s for s in build_sources(platform_settings.model_copy(update={"data_dir": tmp_path}))
                  if s.name == source_name)
    source.fetch({})  # logged in: the next request is the listing itself
    state.add_post(source.platform, "after the limit", "r")
    state.set_faults(source.platform, {"rate_limit_next": 1, "rate_limit_reset_seconds": 1})

    with pytest.raises(RateLimited):
        source.fetch({})
    calls = state.request_log[source.platform]
    assert source.fetch({}) == ([], {}) and state.request_log[source.platform] == calls

    time.sleep(max(0.0, source.rate_limited_until - time.time()) + 0.1)
    assert "after the limit" in [p.text for p in source.fetch({})[0]]


def test_shuffled_duplicated_x_pages_still_come_out_oldest_first(sandbox, platform_settings):
    state, _ = sandbox
    items = [state.add_post("x", f"m{n}", "a") for n in range(150)]
    state.set_faults("x", {"out_of_order": True, "duplicate_rate": 1.0, "seed": 1})

    posts, cursor = XMentionsSource(platform_settings.x).fetch({})

    ids = [p.external_id for p in posts]
    assert ids == sorted(ids, key=int) and set(ids) == {i.external_id for i in items}
    assert cursor == {"since_id": items[-1].external_id}


@pytest.mark.parametrize(("failures", "poll_seconds", "most"), [
    (1, 15.0, 0.6), (2, 15.0, 1.2), (4, 15.0, 4.8), (10, 15.0, 6.0), (50, 15.0, 6.0), (3, 1.0, 1.2)])
def test_backoff_after_failed_polls_is_seconds_not_minutes(failures, poll_seconds, most):
    """5xx and timeouts: retried within a few seconds (jittered), never slower than polling."""
    waits = [backoff_seconds(poll_seconds, failures, MAX_BACKOFF_SECONDS) for _ in range(50)]
    assert max(waits) <= most and min(waits) >= 0.8 * min(most / 1.2, MAX_BACKOFF_SECONDS)


def test_rate_limited_source_waits_for_the_platforms_reset(sandbox, platform_settings, engine, redis_conn):
    state, _ = sandbox
    settings = platform_settings.model_copy(update={"x": platform_settings.x.model_copy(update={"poll_seconds": 0.1})})
    state.set_faults("x", {"rate_limit_next": 1, "rate_limit_reset_seconds": 3})
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=([XMentionsSource(settings.x)], engine, Recorder(),
                                                        DbCheckpointStore(engine), redis_conn, stop))
    thread.start()
    try:
        _wait_for(lambda: state.fault_counts["x:rate_limit"] == 1)
        state.add_post("x", "@flare999 trapped in lift", "rl")
        time.sleep(1.0)
        assert stored_posts(engine) == []  # not polled while the platform said to wait
        _wait_for(lambda: len(stored_posts(engine)) == 1)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert state.path_counts["GET /2/users/1000/mentions"] <= 3  # no polling during the wait


def _database_behind_proxy(database_url: str):
    """An engine reaching the test database through a TCP proxy the test can cut (PostgreSQL)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL behind a cuttable TCP proxy")
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    return proxy, make_engine(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))


class _WaitLog(threading.Event):
    """A stop event that notes how long each thread asked to wait on it: what a loop did between
    its polls, read without a clock. Unlike _RecordingStop (below), it really waits: the loop
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
    poll_seconds = 30.0  # longer than _wait_for's timeout: a wait for the next poll fails the test
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
        _wait_for(lambda: len(waits) >= 4)  # failed polls: a second of an outage
        proxy.accept()
        _wait_for(lambda: len(stored_posts(engine)) == 1)
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
        _wait_for(lambda: len(stored_posts(engine)) == 1)
        proxy.refuse()
        state.add_post("x", "@flare999 flooding at the school", "db")
        reads = state.path_counts[mentions]
        _wait_for(lambda: state.path_counts[mentions] >= reads + 2)  # read during the outage
        state.set_faults("x", {"error_rate": 1.0})
        proxy.accept()
        # Every read now fails, so the post can only come from the page held through the outage; it
        # is stored on the first probe that finds the database back (one every quarter second), not
        # after a poll cycle or its back-off (the bound is loose: a loaded CI machine is slow).
        _wait_for(lambda: len(stored_posts(engine)) == 2, timeout=5.0)
        # The checkpoint moves after the posts are stored and handed on (its own commit).
        newest = {"since_id": state.items[-1].external_id}
        _wait_for(lambda: DbCheckpointStore(engine).load("x:mentions") == newest, timeout=5.0)
    finally:
        stop.set()
        thread.join(timeout=10)
        proxy.close()
        engine.dispose()


@pytest.mark.parametrize("platform", ["x", "bluesky", "reddit"])
def test_a_hung_poll_is_abandoned_within_seconds(sandbox, platform_settings, engine, tmp_path, platform):
    """A platform answering reads 12 s late: the poll gives up within about 3 s and the runner
    knows it timed out, so it polls again at once (writes keep their longer timeout: giving up on
    a send early only makes it uncertain)."""
    state, _ = sandbox
    settings = platform_settings.model_copy(update={"data_dir": tmp_path})
    [source] = [s for s in build_sources(settings) if s.platform == platform][:1]
    if platform == "bluesky":
        source.account.client()  # logged in before the fault
    elif platform == "reddit":
        source.reddit.user.me()
    state.set_faults(platform, {"slow_rate": 1.0, "slow_seconds": 12, "affect_writes": False})
    started = time.monotonic()
    with pytest.raises(Exception) as raised:  # noqa: B017 - each client raises its own timeout type
        poll(source, engine)
    assert time.monotonic() - started < POLL_READ_TIMEOUT_S + 2.0
    assert _timed_out(raised.value), repr(raised.value)
    assert not _timed_out(RuntimeError("HTTP 503"))


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
        _wait_for(lambda: len(stored_posts(engine)) == 1)
        time.sleep(1.0)
        assert handed.calls == [] and handed.refused >= 2  # stored, not handed on, tried again
        handed.up.set()
        back = time.monotonic()
        _wait_for(lambda: handed.created == 1)
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


def test_each_platform_polls_as_soon_as_its_own_connector_is_built(sandbox, platform_settings, engine, redis_conn):
    """A platform whose client library is still loading (or whose start failed and is tried
    again) never holds up another: X polls and stores while Bluesky's build waits."""
    state, _ = sandbox
    settings = platform_settings.model_copy(update={"x": platform_settings.x.model_copy(update={"poll_seconds": 0.1})})
    loading, starts = threading.Event(), []

    def bluesky_still_loading():
        loading.wait(30)
        return []

    def x_failing_once():
        starts.append(time.monotonic())
        if len(starts) == 1:
            raise OSError("session file unreadable")
        return [XMentionsSource(settings.x)]

    stop = threading.Event()
    thread = threading.Thread(target=runner.run_platforms, args=(
        {"bluesky": bluesky_still_loading, "x": x_failing_once}, engine, Recorder(), DbCheckpointStore(engine),
        redis_conn, stop))
    thread.start()
    try:
        state.add_post("x", "@flare999 smoke in the stairwell", "early")
        _wait_for(lambda: len(stored_posts(engine)) == 1)
        assert len(starts) == 2 and not loading.is_set()
    finally:
        loading.set()
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


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
        _wait_for(lambda: len(stored_posts(engine, "x")) == 1, 30)
    finally:
        stop.set()
        thread.join(timeout=10)
        ctx.close()
    assert not thread.is_alive()


class _RecordingStop:
    """A stop event that records every wait the runner asks for, and stops it after `waits` of them."""

    def __init__(self, waits: int) -> None:
        self.asked: list[float] = []
        self.waits = waits

    def is_set(self) -> bool:
        return len(self.asked) >= self.waits

    def wait(self, seconds: float | None = None) -> bool:
        self.asked.append(seconds)
        return self.is_set()


class _FailingSource:
    name, platform, poll_seconds = "fake:mentions", "fake", 2.0

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def fetch(self, cursor):
        if self.failures:
            self.failures -= 1
            raise RuntimeError("503 Service Unavailable")
        return [], cursor

    def after_commit(self, posts) -> None:
        pass


@pytest.mark.parametrize(("failures", "then"), [(1, [0.0, 2.0]), (2, [0.0, "backoff", 2.0])])
def test_a_failed_poll_is_sent_again_at_once_then_backs_off(failures, then):
    """One 5xx: polled again at once (most are one-offs); a second in a row: the usual backoff."""
    stop = _RecordingStop(len(then))
    runner._run_source(_FailingSource(failures), None, lambda _p: None, NoCheckpoints(), None, stop, None,
                       MAX_BACKOFF_SECONDS)
    assert [("backoff" if isinstance(w, float) and 0 < w < 1 else w) for w in stop.asked] == then


class _PagedSource:
    """A source read a page at a time: two pages waiting, then nothing."""

    name, platform, poll_seconds = "fake:dms", "fake", 2.0

    def __init__(self) -> None:
        self.pages = 2
        self.more_to_read = False

    def fetch(self, cursor):
        self.more_to_read = self.pages > 0
        self.pages = max(0, self.pages - 1)
        return [], cursor

    def after_commit(self, posts) -> None:
        pass


def test_a_source_with_more_to_read_is_read_on_at_once():
    """Each page stored as it is read, the next read straight after; the poll interval only once
    a page finds nothing new."""
    stop = _RecordingStop(3)
    runner._run_source(_PagedSource(), None, lambda _p: None, NoCheckpoints(), None, stop, None,
                       MAX_BACKOFF_SECONDS)
    assert stop.asked == [0.0, 0.0, 2.0]


class _PagedPosts(_PagedSource):
    """_PagedSource with a post on each page that reads one."""

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
    stop = _RecordingStop(20)  # waiting the poll interval instead would spend them all
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
