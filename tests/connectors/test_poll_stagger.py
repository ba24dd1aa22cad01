"""A platform's sources poll out of step: X's DMs half a poll interval (at most a second) after
its mentions, at start and after a rate limit that ends for both at the same reset.

The loop runs on a clock of the test's own: each wait the runner asks for moves it on, so the
times of the polls are exact, whatever the machine's load."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from connectors import runner
from connectors.common import RateLimited
from connectors.runner import MAX_BACKOFF_SECONDS, STAGGER_MAX_SECONDS, stagger_seconds
from tests.fakes import NoCheckpoints

START = 1_000_000.0  # epoch seconds on the test's clock
RESET = START + 40.0  # when the platform's rate limit ends


class Clock:
    """Stands in for the runner's `time` and its stop event: waiting moves the clock on."""

    def __init__(self, end: float) -> None:
        self.now = START
        self.end = end
        self.waits: list[float] = []

    def time(self) -> float:
        return self.now

    def is_set(self) -> bool:
        return self.now >= self.end

    def wait(self, seconds: float | None = None) -> bool:
        self.waits.append(seconds)
        self.now += seconds or 0.0
        return self.is_set()


class FakeSource:
    platform = "x"

    def __init__(self, name: str, clock: Clock, poll_seconds: float = 15.0, limited_until: float = 0.0,
                 limits: list[float] | None = None) -> None:
        self.name, self.poll_seconds, self.rate_limited_until = name, poll_seconds, limited_until
        self.clock = clock
        self.limits = list(limits or [])  # a RateLimited with each reset, one per fetch, first
        self.polled: list[float] = []

    def fetch(self, cursor):
        self.polled.append(self.clock.now)
        if self.limits:
            raise RateLimited(self.limits.pop(0), "test")
        return [], cursor

    def after_commit(self, posts) -> None:
        pass


def _run(source: FakeSource, clock: Clock, phase: float, monkeypatch) -> list[float]:
    monkeypatch.setattr(runner, "time", SimpleNamespace(time=clock.time))
    runner._run_source(source, None, lambda _p: None, NoCheckpoints(), None, clock, None, MAX_BACKOFF_SECONDS,
                       phase=phase)
    return [t - START for t in source.polled]


def test_the_second_source_of_a_platform_is_half_a_poll_interval_behind_at_most_a_second():
    assert stagger_seconds(0, 2, 15.0) == 0.0
    assert stagger_seconds(1, 2, 15.0) == STAGGER_MAX_SECONDS == 1.0  # X's default poll: a second apart
    assert stagger_seconds(1, 2, 0.4) == pytest.approx(0.2)  # half the interval when that is shorter
    assert [stagger_seconds(k, 3, 0.3) for k in range(3)] == pytest.approx([0.0, 0.1, 0.2])
    assert stagger_seconds(0, 1, 15.0) == 0.0  # a platform with one source starts at once


def test_the_offset_holds_at_start_and_poll_after_poll(monkeypatch):
    mentions_clock, dms_clock = Clock(START + 40.0), Clock(START + 40.0)
    mentions = _run(FakeSource("x:mentions", mentions_clock), mentions_clock, 0.0, monkeypatch)
    dms = _run(FakeSource("x:dms", dms_clock), dms_clock, 1.0, monkeypatch)
    assert mentions == pytest.approx([0.0, 15.0, 30.0])
    assert dms == pytest.approx([1.0, 16.0, 31.0])


def test_after_the_same_reset_the_second_source_retries_its_offset_later(monkeypatch):
    """Both limited until one reset (a 429 on each): the first polls at the reset, the second a
    second later, and they stay a second apart afterwards."""
    first_clock, second_clock = Clock(RESET + 31.0), Clock(RESET + 31.0)
    first = _run(FakeSource("x:mentions", first_clock, limited_until=RESET), first_clock, 0.0, monkeypatch)
    second = _run(FakeSource("x:dms", second_clock, limited_until=RESET), second_clock, 1.0, monkeypatch)
    reset = RESET - START
    assert first == pytest.approx([reset, reset + 15.0, reset + 30.0])
    assert second == pytest.approx([reset + 1.0, reset + 16.0])
    limited = [w for w in second_clock.waits if w != 15.0]  # all but the poll intervals
    assert all(w <= MAX_BACKOFF_SECONDS for w in limited), "a limit is still looked at every few seconds"


def test_a_429_met_while_polling_is_retried_the_sources_offset_after_its_reset(monkeypatch):
    """A source that only says so by raising RateLimited (no rate_limited_until of its own)."""
    reset = START + 12.0
    for phase, expected in ((0.0, [0.0, 12.0, 27.0]), (1.0, [1.0, 13.0, 28.0])):
        clock = Clock(START + 29.0)
        polled = _run(FakeSource("x:dms", clock, limits=[reset]), clock, phase, monkeypatch)
        assert polled == pytest.approx(expected), phase


def test_each_platform_staggers_its_own_sources(monkeypatch):
    """run_forever: X's second source is offset, the first source of each platform is not."""
    phases: dict[str, float] = {}
    done = threading.Lock()

    def record(source, *args, phase=0.0):
        with done:
            phases[source.name] = phase

    monkeypatch.setattr(runner, "_run_source", record)
    sources = [SimpleNamespace(name=name, platform=name.split(":")[0], poll_seconds=15.0)
               for name in ("x:mentions", "bluesky:notifications", "x:dms", "bluesky:dms")]
    runner.run_forever(sources, None, lambda _p: None, NoCheckpoints(), None, threading.Event())
    assert phases == {"x:mentions": 0.0, "x:dms": 1.0, "bluesky:notifications": 0.0, "bluesky:dms": 1.0}


def test_the_second_source_really_starts_later(monkeypatch):
    """With real threads and time: DMs are not read before their offset has passed."""
    started = time.monotonic()
    first_poll: dict[str, float] = {}
    stop = threading.Event()

    class Timed:
        platform, poll_seconds, rate_limited_until = "x", 0.6, 0.0

        def __init__(self, name: str) -> None:
            self.name = name

        def fetch(self, cursor):
            first_poll.setdefault(self.name, time.monotonic() - started)
            if len(first_poll) == 2:
                stop.set()
            return [], cursor

        def after_commit(self, posts) -> None:
            pass

    thread = threading.Thread(target=runner.run_forever,
                              args=([Timed("x:mentions"), Timed("x:dms")], None, lambda _p: None, NoCheckpoints(),
                                    None, stop))
    thread.start()
    thread.join(timeout=10)
    stop.set()
    assert not thread.is_alive()
    assert first_poll["x:dms"] >= 0.3 and first_poll["x:dms"] > first_poll["x:mentions"]
