"""A stalled answer costs a post a fraction of a second, not the read timeout: a read not answered
within HEDGE_AFTER_S is sent again alongside and the first answer is used; and on Reddit, one of
the inbox's two listings failing does not hold back the posts the other read."""
from __future__ import annotations

import threading
import time

import pytest

from connector_test_helpers import db_external_id, poll, stored_posts
from connectors.common import RateLimited, hedged
from connectors.registry import build_sources

SOURCES = {"x": "x:mentions", "bluesky": "bluesky:notifications", "reddit": "reddit:inbox"}


def _source(platform_settings, tmp_path, platform: str):
    settings = platform_settings.model_copy(update={"data_dir": tmp_path})
    source = next(s for s in build_sources(settings) if s.name == SOURCES[platform])
    if platform == "bluesky":
        source.account.client()  # logged in before the fault: the next request is the poll
    elif platform == "reddit":
        source.reddit.user.me()
    return source


@pytest.mark.parametrize("platform", ["x", "bluesky", "reddit"])
def test_a_poll_whose_answer_stalls_is_sent_again_and_the_post_stored(sandbox, platform_settings, engine,
                                                                      tmp_path, platform):
    state, _ = sandbox
    source = _source(platform_settings, tmp_path, platform)
    item = state.add_post(platform, "@flare999 my neighbour is trapped under a wall, 3 Mill Lane", "stalled1")
    # The poll's answer is held back 4 s: longer than the 3 s read timeout, which would fail the poll.
    state.set_faults(platform, {"slow_next": 1, "slow_seconds": 4, "affect_writes": False})
    poll(source, engine)
    assert db_external_id(item) in [p.external_id for p in stored_posts(engine, platform)]
    assert state.faults[platform].slow_next == 0  # the stalled answer was really served


def test_reddit_inbox_stores_one_listings_posts_when_the_other_fails(sandbox, platform_settings, engine, tmp_path):
    state, _ = sandbox
    source = _source(platform_settings, tmp_path, "reddit")
    item = state.add_post("reddit", "please help, the water is at the door, 9 Bridge Street", "dm1", is_dm=True)
    state.set_faults("reddit", {"error_next": 1, "affect_writes": False})  # the mentions listing answers 503
    poll(source, engine)
    assert state.fault_counts["reddit:error"] == 1
    assert db_external_id(item) in [p.external_id for p in stored_posts(engine, "reddit")]


def test_hedged_uses_the_first_answer_and_discards_the_late_one():
    release, calls, discarded = threading.Event(), [], []

    def read() -> str:
        calls.append(len(calls))
        if len(calls) == 1:
            release.wait(10)  # the stalled first answer
            return "late"
        return "second"

    assert hedged(read, discard=discarded.append, after=0.05) == "second"
    release.set()
    for _ in range(100):
        if discarded:
            break
        threading.Event().wait(0.01)
    assert discarded == ["late"]


def test_hedged_raises_a_failure_that_comes_before_the_second_read():
    calls = []

    def read() -> str:
        calls.append(1)
        raise RuntimeError("HTTP 503")

    with pytest.raises(RuntimeError, match="503"):
        hedged(read, after=5.0)
    assert calls == [1]  # failed at once: no second read


def test_a_429_on_the_bluesky_login_waits_for_the_reset(sandbox, platform_settings, tmp_path):
    """A source restarted into a rate-limit window: the login's 429 closes its gate like a poll's,
    so it does not ask again inside the window."""
    state, _ = sandbox
    settings = platform_settings.model_copy(update={"data_dir": tmp_path})
    source = next(s for s in build_sources(settings) if s.name == "bluesky:notifications")
    state.set_faults("bluesky", {"rate_limit_next": 1, "rate_limit_reset_seconds": 30, "affect_writes": True})
    with pytest.raises(RateLimited):
        source.fetch({})
    asked = state.request_log["bluesky"]
    assert source.rate_limited_until > time.time() + 20
    assert source.fetch({}) == ([], {}) and state.request_log["bluesky"] == asked  # nothing sent into the window


def test_a_failed_second_read_is_not_held_behind_a_stalled_first():
    """The second read answers 503 while the first still stalls: the failure comes back at once
    (the polling loop retries within half a second) instead of after the first's read timeout."""
    release, calls = threading.Event(), []

    def read() -> str:
        calls.append(1)
        if len(calls) == 1:
            release.wait(10)
            return "late"
        raise RuntimeError("HTTP 503")

    try:
        with pytest.raises(RuntimeError, match="503"):
            hedged(read, after=0.05)
        assert not release.is_set() and len(calls) == 2
    finally:
        release.set()


def test_two_stalled_reads_are_followed_by_a_third():
    """A read and its hedge both stalled (1 read in 100 at a 10 % stall rate): a third read goes
    out, and its answer is used, about two hedge intervals in rather than at the read timeout."""
    release, calls, discarded = threading.Event(), [], []

    def read() -> str:
        calls.append(1)
        if len(calls) <= 2:
            release.wait(10)
            return "late"
        return "third"

    started = time.monotonic()
    try:
        assert hedged(read, discard=discarded.append, after=0.1) == "third"
        assert time.monotonic() - started < 1.0 and len(calls) == 3
    finally:
        release.set()
    for _ in range(100):
        if len(discarded) == 2:
            break
        threading.Event().wait(0.01)
    assert discarded == ["late", "late"]
