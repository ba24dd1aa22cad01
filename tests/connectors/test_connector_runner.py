"""The polling loop: checkpoint order, back-fill after an outage, malformed payloads, health."""
from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from config import Settings
from connector_test_helpers import PagedSource, Recorder, RecordingStop, db_external_id, poll, stored_posts, wait_for
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
from tests.fakes import NoCheckpoints


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
        wait_for(lambda: read_health(redis_conn) and read_health(redis_conn)[0]["posts_stored_total"] == 1)
        healthy = read_health(redis_conn)[0]
        assert healthy["name"] == "x:mentions" and not healthy["in_outage"]
        assert healthy["seconds_since_success"] is not None and healthy["seconds_since_success"] < 5

        state.set_faults("x", {"outage_for_seconds": 30})
        wait_for(lambda: read_health(redis_conn)[0]["in_outage"])
        failing = read_health(redis_conn)[0]
        assert failing["consecutive_failures"] >= OUTAGE_AFTER_FAILURES and "503" in failing["last_error"]

        state.set_faults("x", {"rate_limit_next": 1, "rate_limit_reset_seconds": 20})
        wait_for(lambda: read_health(redis_conn)[0]["rate_limited"])
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert redis_conn.exists(health_key("x:mentions"))



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
        wait_for(lambda: state.fault_counts["x:rate_limit"] == 1)
        state.add_post("x", "@flare999 trapped in lift", "rl")
        time.sleep(1.0)
        assert stored_posts(engine) == []  # not polled while the platform said to wait
        wait_for(lambda: len(stored_posts(engine)) == 1)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert state.path_counts["GET /2/users/1000/mentions"] <= 3  # no polling during the wait


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
        wait_for(lambda: len(stored_posts(engine)) == 1)
        assert len(starts) == 2 and not loading.is_set()
    finally:
        loading.set()
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


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
    stop = RecordingStop(len(then))
    runner._run_source(_FailingSource(failures), None, lambda _p: None, NoCheckpoints(), None, stop, None,
                       MAX_BACKOFF_SECONDS)
    assert [("backoff" if isinstance(w, float) and 0 < w < 1 else w) for w in stop.asked] == then



def test_a_source_with_more_to_read_is_read_on_at_once():
    """Each page stored as it is read, the next read straight after; the poll interval only once
    a page finds nothing new."""
    stop = RecordingStop(3)
    runner._run_source(PagedSource(), None, lambda _p: None, NoCheckpoints(), None, stop, None,
                       MAX_BACKOFF_SECONDS)
    assert stop.asked == [0.0, 0.0, 2.0]
