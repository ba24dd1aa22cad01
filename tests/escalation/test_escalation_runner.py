"""The step runner against a real DB and Redis: token CAS, duplicates, SLA, reminders, paging."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml
from sqlmodel import Session, select

from flows import actions
from flows import escalate
from flows import notify as notifiers
from flows.context import impatient_client, unanswering_client
from escalation.notifiers import SIGNATURE_HEADER, TIMESTAMP_HEADER, NotifierRegistry, WebhookNotifier, sign
from models.events import verify_chain
from models.tables import Incident, IncidentEvent
from esc_helpers import AheadClock, make_user, open_critical

QUICK_POLICY = {
    "critical": {"steps": [{"after": 0, "action": "alert", "targets": ["dispatchers"]},
                           {"after": 0.4, "action": "realert", "sound": True, "targets": ["dispatchers"]},
                           {"after": 0.8, "action": "notify_external", "targets": ["duty_manager"]}],
                 "repeat_every": 0, "ack_sla": 1.0, "remind_after_ack": 1},
    "high": {"steps": [{"after": 0, "action": "alert"}]},
}


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "quick.yaml"
    path.write_text(yaml.safe_dump(QUICK_POLICY))
    return path


def events(ctx, incident_id: int) -> list[IncidentEvent]:
    with Session(ctx.engine) as s:
        return list(s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                           .order_by(IncidentEvent.seq)))


def steps(ctx, incident_id: int) -> list[tuple[int, str]]:
    return [(e.data["number"], e.data["action"]) for e in events(ctx, incident_id)
            if e.kind == "escalation_step" and e.data["kind"] == "step"]


def token(ctx, incident_id: int) -> str:
    with Session(ctx.engine) as s:
        return s.get(Incident, incident_id).escalation_token


def run_timer_until(ctx, seconds: float, done=None) -> None:
    """Act as the worker's step timer for `seconds`, or until `done()` holds (then stop early:
    on a loaded machine positive checks get time, negative checks still run their full span)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        escalate.fire_due_steps(ctx)
        if done is not None and done():
            return
        time.sleep(0.05)


def set_step_after(ctx, incident_id: int, number: int, after: float) -> None:
    """Move one step of an incident's frozen chain (lets a test decide when it is due)."""
    with Session(ctx.engine) as s:
        incident = s.get(Incident, incident_id)
        snapshot = json.loads(json.dumps(incident.policy_snapshot))
        snapshot["steps"][number]["after"] = after
        incident.policy_snapshot = snapshot
        s.add(incident)
        s.commit()


def test_first_alert_fires_as_soon_as_the_incident_is_queued(ctx):
    incident_id = open_critical(ctx)
    assert steps(ctx, incident_id) == [(0, "alert")]
    with Session(ctx.engine) as s:
        incident = s.get(Incident, incident_id)
        assert incident.status == "queued"
        assert abs((incident.next_step_at - incident.queued_at).total_seconds() - 0.4) < 0.2


def test_stale_and_duplicate_jobs_do_nothing(ctx):
    incident_id = open_critical(ctx)
    assert escalate.escalation_step(incident_id, "not-the-token", ctx) == "stale"
    current = token(ctx, incident_id)
    set_step_after(ctx, incident_id, 1, 600)
    assert escalate.escalation_step(incident_id, current, ctx) == "rescheduled"  # not due yet
    assert steps(ctx, incident_id) == [(0, "alert")]
    set_step_after(ctx, incident_id, 1, 0.4)
    time.sleep(0.45)
    assert escalate.escalation_step(incident_id, current, ctx) == "fired"
    assert escalate.escalation_step(incident_id, current, ctx) == "stale"  # the duplicate
    assert steps(ctx, incident_id) == [(0, "alert"), (1, "realert")]


def test_racing_jobs_with_the_same_token_fire_a_step_once(ctx):
    incident_id = open_critical(ctx)
    current = token(ctx, incident_id)
    set_step_after(ctx, incident_id, 2, 600)  # however slow the machine, only the realert is due
    time.sleep(0.45)
    results: list[str] = []
    barrier = threading.Barrier(4)

    def job() -> None:
        barrier.wait()
        results.append(escalate.escalation_step(incident_id, current, ctx))

    threads = [threading.Thread(target=job) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results).count("fired") == 1 and results.count("stale") == 3
    assert steps(ctx, incident_id) == [(0, "alert"), (1, "realert")]


def test_unacknowledged_chain_runs_to_the_end_with_one_sla_breach(ctx):
    pages: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: pages.append(r) or httpx.Response(200))
    notifiers.set_registry(ctx, NotifierRegistry({"webhook": WebhookNotifier("http://pager/x", "s3cret",
                                                                             transport=transport)}))
    incident_id = open_critical(ctx)
    run_timer_until(ctx, 5, done=lambda: len(steps(ctx, incident_id)) == 3 and len(pages) == 1)
    run_timer_until(ctx, 0.3)
    log = events(ctx, incident_id)
    assert steps(ctx, incident_id) == [(0, "alert"), (1, "realert"), (2, "notify_external")]
    assert [e.kind for e in log].count("sla_breach") == 1
    lateness = [e.data["lateness_s"] for e in log if e.kind in ("escalation_step", "sla_breach")]
    assert max(lateness) < 1.0
    [note] = [e for e in log if e.kind == "notification"]
    assert note.data["ok"] is True and note.data["target"] == "duty_manager"
    assert verify_chain(log, ctx.evidence_keys.hmac_key) is None
    [page] = pages
    body = json.loads(page.content)
    assert page.headers[SIGNATURE_HEADER] == sign(b"s3cret", page.headers[TIMESTAMP_HEADER], page.content)
    assert f"#{incident_id}" in body["subject"] and "collapsed" not in page.content.decode()
    with Session(ctx.engine) as s:
        assert s.get(Incident, incident_id).next_step_at is None  # nothing more will ever be due


def test_failed_page_is_recorded_with_its_error(ctx):
    transport = httpx.MockTransport(lambda r: httpx.Response(503))
    notifiers.set_registry(ctx, NotifierRegistry({"webhook": WebhookNotifier("http://pager/x", "k",
                                                                             transport=transport)}))
    incident_id = open_critical(ctx)
    run_timer_until(ctx, 5, done=lambda: any(e.kind == "notification" for e in events(ctx, incident_id)))
    [note] = [e for e in events(ctx, incident_id) if e.kind == "notification"]
    assert note.data["ok"] is False and note.data["error"] == "HTTP 503"


def test_acknowledgement_stops_the_chain_and_reminders_follow(ctx):
    alice, _ = make_user(ctx, "alice")
    incident_id = open_critical(ctx)
    actions.acknowledge(ctx, incident_id, alice)
    # Steps 1 and 2 (0.4 s, 0.8 s) fall due before the first reminder (1 s after the ack).
    run_timer_until(ctx, 5, done=lambda: any(e.data.get("kind") == "reminder" for e in events(ctx, incident_id)))
    log = events(ctx, incident_id)
    assert steps(ctx, incident_id) == [(0, "alert")]
    assert "sla_breach" not in [e.kind for e in log]  # acknowledged inside the SLA
    reminders = [e for e in log if e.kind == "escalation_step" and e.data["kind"] == "reminder"]
    assert 1 <= len(reminders) <= 3
    assert [r.data["number"] for r in reminders] == list(range(len(reminders)))
    actions.resolve(ctx, incident_id, alice, note="ambulance on scene")
    count = len(events(ctx, incident_id))
    run_timer_until(ctx, 1.2)
    assert len(events(ctx, incident_id)) == count  # resolved: no more reminders


def test_late_acknowledgement_records_the_breach_once(ctx, policy_file):
    # Later steps fall due well after the 1 s SLA: on a loaded machine opening the incident can
    # take longer than the quick policy's 0.4 s, and the realert would then rightly fire inline.
    slow_steps = dict(QUICK_POLICY, critical={**QUICK_POLICY["critical"], "steps": [
        {"after": 0, "action": "alert", "targets": ["dispatchers"]},
        {"after": 30, "action": "realert", "targets": ["dispatchers"]}]})
    policy_file.write_text(yaml.safe_dump(slow_steps))
    escalate.policies.cache_clear()
    alice, _ = make_user(ctx, "alice")
    incident_id = open_critical(ctx)
    time.sleep(1.1)  # past the 1 s SLA, and no timer has run
    actions.acknowledge(ctx, incident_id, alice)
    run_timer_until(ctx, 0.3)
    log = events(ctx, incident_id)
    breaches = [e for e in log if e.kind == "sla_breach"]
    assert len(breaches) == 1 and breaches[0].data["recorded_at"] == "acknowledge"
    assert steps(ctx, incident_id) == [(0, "alert")]
    from flows.metrics import SLA_KEY

    assert int(ctx.redis.hget(SLA_KEY, "critical")) == 1


def test_policy_edits_during_escalation_do_not_change_the_running_chain(ctx, policy_file):
    incident_id = open_critical(ctx)
    edited = dict(QUICK_POLICY, critical={"steps": [{"after": 0, "action": "alert"},
                                                    {"after": 0.1, "action": "notify_supervisor",
                                                     "targets": ["duty_supervisor"]}]})
    policy_file.write_text(yaml.safe_dump(edited))
    escalate.policies.cache_clear()
    run_timer_until(ctx, 5, done=lambda: len(steps(ctx, incident_id)) == 3)
    run_timer_until(ctx, 0.3)
    assert steps(ctx, incident_id) == [(0, "alert"), (1, "realert"), (2, "notify_external")]
    newer = open_critical(ctx, text="second emergency")
    run_timer_until(ctx, 3, done=lambda: len(steps(ctx, newer)) == 2)
    assert steps(ctx, newer) == [(0, "alert"), (1, "notify_supervisor")]


def test_sweep_redrives_a_step_whose_timer_was_lost(ctx):
    from esc_helpers import drain

    incident_id = open_critical(ctx)
    for q in ctx.queues.values():  # the scheduler lost every timer (e.g. Redis restarted without AOF)
        q.empty()
        for job_id in q.scheduled_job_registry.get_job_ids():
            q.scheduled_job_registry.remove(job_id)
    time.sleep(1.0)
    assert escalate.redrive_overdue(ctx, grace_seconds=0.1) == 1
    drain(ctx)
    assert [n for n, _ in steps(ctx, incident_id)] == [0, 1, 2]


def test_acknowledged_entries_leave_the_stream_and_the_sweep_keeps_unacknowledged_ones(ctx):
    from flows.sweep import sweep

    alice, _ = make_user(ctx, "alice")
    first, second = open_critical(ctx), open_critical(ctx, text="another")
    ctx.dispatch.read("console")
    actions.acknowledge(ctx, first, alice)
    counts = sweep(ctx)
    assert counts["trimmed"] == 0  # acknowledging removed the entry already
    remaining = [int(fields[b"incident_id"]) for _, fields in ctx.redis.xrange(ctx.dispatch.key)]
    assert remaining == [second]
    assert [e.incident_id for e in ctx.dispatch.read("console")] == [second]


def test_racing_publishers_put_an_incident_in_the_stream_once(ctx):
    from esc_helpers import new_post
    from escalation import service
    from models import TriageOutput
    from models.tables import Post

    from flows import publish

    out = TriageOutput(urgency="critical", category="fire", confidence=0.9)
    with Session(ctx.engine, expire_on_commit=False) as s:
        post = s.get(Post, new_post(ctx, "fire"))
        service.store_triage(s, post, out, 1.0)
        outcome = service.apply_triage(s, post, out, ctx.settings.service, ctx.dm_possible,
                                       policy_for=lambda u: dict(QUICK_POLICY["critical"], urgency=u))
        s.commit()
    barrier = threading.Barrier(4)

    def publisher() -> None:  # the triage job and sweeps in several workers, all at once
        barrier.wait()
        publish.publish_incident(ctx, outcome.incident_id)

    threads = [threading.Thread(target=publisher) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ctx.redis.xlen(ctx.dispatch.key) == 1
    assert [e.kind for e in events(ctx, outcome.incident_id)].count("queued") == 1
    assert steps(ctx, outcome.incident_id) == [(0, "alert")]


def test_step_timers_take_turns_but_each_polls_while_redis_does_not_answer(ctx, monkeypatch):
    """A round of the step timer polls the database for every worker: within it another
    worker's timer does nothing; with Redis unreachable, each worker polls for itself."""
    clock = AheadClock(monkeypatch)
    incident_id = open_critical(ctx)
    set_step_after(ctx, incident_id, 2, 600)  # notify_external out of reach until the clock is moved
    silent = ctx.with_redis(unanswering_client())
    probe = impatient_client(ctx.redis, 1.0)
    ctx.redis.delete(escalate.STEP_ROUND_KEY)
    round_ms = 60_000  # no round lapses during the test
    clock.ahead = 0.45  # the realert is due
    assert escalate.step_timer_round(ctx, probe, silent, round_ms) >= 1
    assert steps(ctx, incident_id) == [(0, "alert"), (1, "realert")]
    clock.ahead = 600.5  # notify_external is due, but this round is taken
    assert escalate.step_timer_round(ctx, probe, silent, round_ms) is None
    assert steps(ctx, incident_id) == [(0, "alert"), (1, "realert")]
    assert escalate.step_timer_round(ctx, unanswering_client(), silent, round_ms) >= 1
    assert steps(ctx, incident_id) == [(0, "alert"), (1, "realert"), (2, "notify_external")]
    ctx.redis.delete(escalate.STEP_ROUND_KEY)
