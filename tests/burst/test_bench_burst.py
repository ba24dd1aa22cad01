"""`flare bench burst`'s own arithmetic: the two sets of lone cries, the count of work done twice and its verdict on the targets.

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


def _result(**changes) -> dict:
    lone = {"count": 20, "queued": 20, "p99_s": 0.9, "max_s": 0.9, "triaged_below_high": []}
    result = {"workers": 2, "triage_posts_per_second": 265.0, "intake_posts_per_second": 267.0,
              "pending_triage_at_end": 0, "model_decision": {"p99_s": 0.8, "undecided": 0},
              "lone_critical": dict(lone), "quiet_critical": dict(lone), "posts_lost": 0,
              "duplicates": {"messages_sent_twice": 0, "incidents_published_twice": 0},
              "burst_incidents": 91, "burst_single_report_personal_requests": 84,
              "largest_burst_incidents": [8700, 800], "in_system_to_standalone": 0.16,
              "standalone_pipeline_posts_per_second": 1650.0}
    result.update(changes)
    return result


def test_targets_a_rate_above_the_arrivals_is_not_shown_unless_acting_fell_behind():
    kept_pace = BENCH["targets"](_result())
    assert [verdict for _, _, verdict in kept_pace] == [
        "NOT SHOWN", "MET", "MET", "MET", "MET", "MET", "MET", "NOT SHOWN"]
    # Twice the arrivals: now the rate and the share are measured.
    faster = BENCH["targets"](_result(intake_posts_per_second=534.0, triage_posts_per_second=284.6,
                                      in_system_to_standalone=0.17))
    assert (faster[0][2], faster[-1][2]) == ("MISSED", "MISSED")
    # Falling behind the arrivals is a miss even below the target rate.
    behind = BENCH["targets"](_result(pending_triage_at_end=3770, triage_posts_per_second=135.8))
    assert (behind[0][2], behind[1][2], behind[-1][2]) == ("MISSED", "MISSED", "MISSED")
    one_worker = BENCH["targets"](_result(workers=1, triage_posts_per_second=250.0))
    assert one_worker[0][2] == "MET"


def test_targets_lone_cries_decisions_losses_and_incidents():
    slow = dict(_result()["quiet_critical"], p99_s=2.5, max_s=2.5)
    missed_by_model = dict(_result()["lone_critical"], queued=19, triaged_below_high=["lone_caller_3"])
    verdicts = [v for _, _, v in BENCH["targets"](_result(
        quiet_critical=slow, lone_critical=missed_by_model, model_decision={"p99_s": 6.0, "undecided": 0},
        posts_lost=1, burst_incidents=100))]
    # decision p99, lone (a model miss counts apart: met), quiet (2.5 s), losses, incidents
    assert verdicts[2:7] == ["MISSED", "MET", "MISSED", "MISSED", "MISSED"]
