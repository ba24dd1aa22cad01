"""`flare bench burst`'s own arithmetic: the two sets of lone cries and the count of work done twice.

The benchmark's figures (rates, latencies) are measured by `flare bench burst`, never here; these
tests only check that what it counts is what it says it counts.
"""
from __future__ import annotations

import os
import runpy
import time
from pathlib import Path

from connectors.sandbox import SandboxState
from escalation.queue import DispatchQueue
from models.enums import Lane
from triage.prescreen import lane_for
from burst_helpers import load_burst_module

BENCH = runpy.run_path(str(Path(__file__).resolve().parents[2] / "bench" / "burst.py"), run_name="bench_burst_test")


def test_the_quiet_set_is_large_varied_and_passes_the_keyword_prescreen():
    scenario = load_burst_module()
    quiet = [e for e in scenario.burst_scenario(200, 0, seconds=10.0, seed=1) if e.kind == "quiet"]
    texts = [e.text for e in quiet]
    assert len(texts) >= 20 and len(set(texts)) == len(texts)
    assert all(e.author.startswith(scenario.QUIET_AUTHOR) for e in quiet)
    # Each of these reaches the dispatch queue only if the model, not the keyword list, rates it.
    assert [t for t in texts if lane_for(t) == Lane.critical.value] == []
    # Not only English: several scripts and accented languages.
    assert sum(1 for t in texts if not t.isascii()) >= 6


def test_work_done_twice_counts_repeated_messages_and_incidents_published_twice(redis_conn):
    state = SandboxState()
    state.record_sent("x", "reply", "We have your message.", in_reply_to="1")
    state.record_sent("x", "reply", "We have your message.", in_reply_to="2")
    state.record_sent("x", "dm", "We have your message.", recipient="a")
    state.record_sent("x", "reply", "We have your message.", in_reply_to="1")  # the same reply again
    main, other = DispatchQueue(redis_conn), DispatchQueue(redis_conn, desk="north")
    main.publish(1, "critical")
    main.publish(2, "high")
    main.publish(1, "critical")  # incident 1 twice on one desk
    other.publish(2, "high")  # one entry on each of two desks is not a duplicate on either
    redis_conn.set("flare:dispatch:not-a-stream", "x")

    assert BENCH["_duplicates"](redis_conn, state) == {
        "messages_sent": 4, "messages_sent_twice": 1, "stream_entries": 4, "incidents_published_twice": 1}


def test_each_set_counts_triage_misses_apart_from_path_delays():
    latencies = {
        "quiet_caller_0": {"queued_s": 0.8, "urgency": "critical"},
        "quiet_caller_1": {"queued_s": 2.5, "urgency": "high"},
        "quiet_caller_2": {"queued_s": None, "urgency": "none"},  # the model missed it
        "quiet_caller_3": {"queued_s": None, "urgency": None},  # never triaged
    }
    summary = BENCH["_set_summary"](latencies)
    assert (summary["count"], summary["queued"], summary["within_target"]) == (4, 2, 1)
    assert (summary["max_s"], summary["p99_s"]) == (2.5, 2.5)
    assert summary["triaged_below_high"] == ["quiet_caller_2"]


def test_cpu_windows_count_each_role_and_leave_the_rest_to_other_processes():
    """The cores a run used, by role: what is not the system's (or the machine's PostgreSQL and
    Redis) is other work on the machine, which the report flags."""
    first = {"wall": 10.0, "busy": 100.0, "workers": 50.0, "connectors": 5.0, "benchmark": 2.0,
             "postgres": 3.0, "redis": 1.0}
    last = {"wall": 20.0, "busy": 118.0, "workers": 62.0, "connectors": 6.0, "benchmark": 3.0,
            "postgres": 4.0, "redis": 1.5}
    used = BENCH["_cpu_window"](first, last)
    assert (used["busy"], used["workers"], used["connectors"], used["benchmark"]) == (1.8, 1.2, 0.1, 0.1)
    assert used["other"] == 0.25  # 1.8 - 1.2 - 0.1 - 0.1 - 0.1 - 0.05
    assert BENCH["_cpu_window"](None, last) is None


def test_a_cpu_snapshot_reads_this_process_and_the_machine():
    before = BENCH["_cpu_snapshot"]({"benchmark": [os.getpid()], "gone": [2 ** 22 + 7]})
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # burn 0.3 s of CPU
        pass
    after = BENCH["_cpu_snapshot"]({"benchmark": [os.getpid()], "gone": [2 ** 22 + 7]})
    assert after["benchmark"] - before["benchmark"] >= 0.2
    assert after["busy"] - before["busy"] >= 0.2 and after["gone"] == 0.0
