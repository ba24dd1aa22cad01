"""Policy files and the pure step runner `next_action`, with property tests."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalation.policy import DEFAULT_POLICY_FILE, Event, PolicySet, load_policies, next_action

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


# ----------------------------------------------------------------------------- the policy file
def test_shipped_policy_matches_the_critical_chain():
    policies = load_policies(DEFAULT_POLICY_FILE)
    snap = policies.snapshot("critical")
    steps = [(s["after"], s["action"], s["sound"]) for s in snap["steps"]]
    assert steps[0] == (0, "alert", False)
    assert (30, "realert", True) in steps and any(a == 30 and act == "notify_supervisor" for a, act, _ in steps)
    assert steps[-1][:2] == (60, "notify_external")
    assert snap["repeat_every"] > 0 and snap["ack_sla"] == 60 and snap["urgency"] == "critical"
    assert policies.ack_sla("high") > 0


@pytest.mark.parametrize("bad, reason", [
    ({"critical": {"steps": []}, "high": {"steps": [{"after": 0, "action": "alert"}]}}, "at least 1"),
    ({"critical": {"steps": [{"after": 5, "action": "alert"}, {"after": 1, "action": "realert"}]},
      "high": {"steps": [{"after": 0, "action": "alert"}]}}, "in order"),
    ({"critical": {"steps": [{"after": 0, "action": "page_everyone"}]},
      "high": {"steps": [{"after": 0, "action": "alert"}]}}, "action"),
    ({"critical": {"steps": [{"after": -1, "action": "alert"}]},
      "high": {"steps": [{"after": 0, "action": "alert"}]}}, "greater than or equal"),
    ({"high": {"steps": [{"after": 0, "action": "alert"}]}}, "critical"),
    ({"critical": {"steps": [{"after": 0, "action": "alert", "sund": True}]},
      "high": {"steps": [{"after": 0, "action": "alert"}]}}, "sund"),
    ({"critical": {"steps": [{"after": 0, "action": "alert"}]}, "high": {"steps": [{"after": 0, "action": "alert"}]},
      "urgentish": {"steps": [{"after": 0, "action": "alert"}]}}, "unknown urgency"),
    ({"critical": {"steps": [{"after": 0, "action": "notify_external"}]},
      "high": {"steps": [{"after": 0, "action": "alert"}]}}, "at least one target"),
    ({"critical": {"steps": [{"after": 0, "action": "alert"}], "repeat_every": 0.01},
      "high": {"steps": [{"after": 0, "action": "alert"}]}}, "at least 1 second"),
])
def test_invalid_policies_are_refused_with_a_reason(tmp_path: Path, bad, reason):
    import yaml

    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ValueError, match=reason):
        load_policies(path)


def test_unreadable_policy_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ValueError, match="cannot read escalation policy"):
        load_policies(tmp_path / "missing.yaml")


# ----------------------------------------------------------------------------- next_action
SNAP = {"urgency": "critical", "steps": [{"after": 0, "action": "alert"}, {"after": 30, "action": "realert"},
                                          {"after": 60, "action": "notify_external", "targets": ["duty_manager"]}],
        "repeat_every": 60, "ack_sla": 45, "remind_after_ack": 600}


def ev(event_kind: str, seconds: float, **data) -> Event:
    return Event(event_kind, T0 + timedelta(seconds=seconds), data)


def test_chain_then_repeat_then_reminders():
    events = [ev("queued", 0)]
    a = next_action(SNAP, events, T0)
    assert (a.kind, a.number, a.step["action"], a.due_at) == ("step", 0, "alert", T0)
    events.append(ev("escalation_step", 0.2, kind="step", number=0))
    a = next_action(SNAP, events, T0)
    assert (a.step["action"], a.due_at) == ("realert", T0 + timedelta(seconds=30))
    events.append(ev("escalation_step", 30.1, kind="step", number=1))
    a = next_action(SNAP, events, T0)
    assert (a.kind, a.due_at) == ("sla_breach", T0 + timedelta(seconds=45))
    events.append(ev("sla_breach", 45.0))
    events.append(ev("escalation_step", 60.0, kind="step", number=2))
    a = next_action(SNAP, events, T0)
    assert (a.number, a.step["action"], a.due_at) == (3, "notify_external", T0 + timedelta(seconds=120))
    events.append(ev("acknowledged", 70))
    a = next_action(SNAP, events, T0)
    assert (a.kind, a.due_at) == ("reminder", T0 + timedelta(seconds=670))
    events.append(ev("resolved", 80))
    assert next_action(SNAP, events, T0) is None


def test_nothing_is_due_before_queueing_or_without_a_chain():
    assert next_action(SNAP, [ev("opened", 0)], T0) is None
    assert next_action({}, [ev("queued", 0)], T0) is None


def test_now_never_moves_a_due_time():
    events = [ev("queued", 0), ev("escalation_step", 1, kind="step", number=0)]
    early = next_action(SNAP, events, T0 - timedelta(hours=3))
    late = next_action(SNAP, events, T0 + timedelta(hours=3))
    assert early == late


def test_policy_edits_do_not_change_a_running_chain():
    running = PolicySet.model_validate({k: {kk: vv for kk, vv in v.items() if kk != "urgency"}
                                        for k, v in {"critical": SNAP, "high": SNAP}.items()})
    snapshot = running.snapshot("critical")
    edited_chain = {"steps": [{"after": 0, "action": "alert"},
                              {"after": 5, "action": "notify_external", "targets": ["duty_manager"]}]}
    edited = PolicySet.model_validate({"critical": edited_chain, "high": {"steps": [{"after": 0, "action": "alert"}]}})
    assert edited.snapshot("critical") != snapshot
    events = [ev("queued", 0), ev("escalation_step", 0, kind="step", number=0)]
    assert next_action(snapshot, events, T0).due_at == T0 + timedelta(seconds=30)


# ----------------------------------------------------------------------------- properties
steps_strategy = st.lists(st.integers(0, 120), min_size=1, max_size=5).map(sorted).map(
    lambda afters: [{"after": a, "action": ["alert", "realert", "notify_supervisor", "notify_external"][i % 4]}
                    for i, a in enumerate(afters)])
snapshot_strategy = st.fixed_dictionaries({
    "steps": steps_strategy,
    "repeat_every": st.sampled_from([0, 0, 7, 60]),
    "ack_sla": st.sampled_from([0, 10, 61]),
    "remind_after_ack": st.sampled_from([0, 0, 30]),
})
# Each tick: (true seconds since queued, that worker's clock skew in seconds).
ticks_strategy = st.lists(st.tuples(st.floats(0, 400), st.floats(-5, 5)), min_size=1, max_size=40)


def simulate(snapshot: dict, ticks: list[tuple[float, float]], ack_at_tick: int | None,
             duplicate_every: int = 0) -> list[Event]:
    """Drive next_action like the runner does: at each tick fire everything due by that worker's
    clock; a duplicate job at the same instant asks again and must find nothing new."""
    events = [ev("queued", 0)]
    for i, (true_t, skew) in enumerate(ticks):
        now = T0 + timedelta(seconds=true_t + skew)
        if ack_at_tick == i:
            events.append(Event("acknowledged", now, {}))
        for _ in range(30):
            action = next_action(snapshot, events, now)
            if action is None or action.due_at > now:
                break
            kind = "sla_breach" if action.kind == "sla_breach" else "escalation_step"
            events.append(Event(kind, now, {"kind": action.kind, "number": action.number,
                                            "action": action.step["action"]}))
        if duplicate_every and i % duplicate_every == 0:
            again = next_action(snapshot, events, now)
            assert again is None or again.due_at > now
    return events


def step_events(events: list[Event]) -> list[Event]:
    return [e for e in events if e.kind == "escalation_step" and e.data["kind"] == "step"]


@settings(max_examples=300, deadline=None)
@given(snapshot_strategy, ticks_strategy, st.one_of(st.none(), st.integers(0, 39)))
def test_steps_fire_in_order_never_skipped_never_twice(snapshot, ticks, ack_at_tick):
    events = simulate(snapshot, ticks, ack_at_tick, duplicate_every=3)
    fired = step_events(events)
    assert [e.data["number"] for e in fired] == list(range(len(fired)))  # in order, none skipped or repeated
    steps = snapshot["steps"]
    for e in fired:
        expected = steps[min(e.data["number"], len(steps) - 1)]["action"]
        assert e.data["action"] == expected
    assert sum(1 for e in events if e.kind == "sla_breach") <= 1


@settings(max_examples=300, deadline=None)
@given(snapshot_strategy, ticks_strategy, st.integers(0, 39))
def test_acknowledgement_at_any_moment_stops_steps(snapshot, ticks, ack_at_tick):
    ack_at_tick = ack_at_tick % len(ticks)
    events = simulate(snapshot, ticks + [(10_000.0, 0.0)], ack_at_tick)
    ack_index = next(i for i, e in enumerate(events) if e.kind == "acknowledged")
    after = events[ack_index + 1:]
    assert not [e for e in after if e.kind == "sla_breach" or e.data.get("kind") == "step"]
    assert all(e.data.get("kind") == "reminder" for e in after)


@settings(max_examples=200, deadline=None)
@given(snapshot_strategy, ticks_strategy)
def test_every_step_is_reached_when_nobody_acknowledges(snapshot, ticks):
    # Whatever the clocks did before, a worker running well after the chain's end fires what is left.
    final = [(1000.0 + 100 * k, 0.0) for k in range(len(snapshot["steps"]) + 1)]
    events = simulate(snapshot, ticks + final, None)
    fired = step_events(events)
    assert len(fired) >= len(snapshot["steps"])
    if snapshot["ack_sla"]:
        assert sum(1 for e in events if e.kind == "sla_breach") == 1


@settings(max_examples=200, deadline=None)
@given(snapshot_strategy, st.floats(0, 400), st.floats(-30, 30))
def test_clock_skew_between_workers_never_fires_a_step_twice(snapshot, t, skew):
    # Worker A fires what is due at its clock; worker B, whose clock runs behind or ahead, runs
    # the same job right after and must not repeat anything A fired.
    events = simulate(snapshot, [(t, 0.0)], None)
    before = len(step_events(events))
    now_b = T0 + timedelta(seconds=t + skew)
    action = next_action(snapshot, events, now_b)
    if action is not None and action.kind == "step":
        assert action.number == before


_OTHER_KINDS = ["triaged", "post_attached", "message_sent", "viewed", "note", "claimed", "merged"]


@settings(max_examples=200, deadline=None)
@given(snapshot_strategy, ticks_strategy, st.one_of(st.none(), st.integers(0, 39)),
       st.lists(st.tuples(st.integers(0, 60), st.sampled_from(_OTHER_KINDS)), max_size=30),
       st.lists(st.sampled_from(["resolved", "reopened", "false_alarm"]), max_size=3),
       st.floats(0, 600))
def test_only_the_policy_event_kinds_decide_what_is_due(snapshot, ticks, ack_at_tick, noise,
                                                         closing, at):
    # The runner reads only POLICY_EVENT_KINDS from the database (a big incident has thousands of
    # other events): dropping every other kind must never change the answer.
    from escalation.policy import POLICY_EVENT_KINDS

    events = simulate(snapshot, ticks, ack_at_tick)
    for position, kind in noise:
        events.insert(min(position, len(events)), Event(kind, T0, {"post_id": position}))
    events += [Event(kind, T0 + timedelta(seconds=500), {}) for kind in closing]
    now = T0 + timedelta(seconds=at)
    kept = [e for e in events if e.kind in POLICY_EVENT_KINDS]
    assert next_action(snapshot, events, now) == next_action(snapshot, kept, now)
