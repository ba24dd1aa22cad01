"""Chains started a group at a time: `runner.fire_many` fires what `runner.step` fires, one
incident at a time, in one transaction for all; and a triage group queues its urgent incidents
in its own transaction, so they are in front of a dispatcher at its commit, and the Redis half
of the whole group (stream entries, first steps) costs the same few statements however many
incidents it opened."""
from __future__ import annotations

import secrets
import threading
from datetime import timedelta

from sqlalchemy import event
from sqlmodel import Session, select

from escalation import runner
from escalation.notifiers import NotifierRegistry
from flows import escalate, sweep, triage_batch
from flows.notify import set_registry
from models import LocationMention, TriageOutput
from models.events import append_event, verify_chain
from models.tables import Incident, IncidentEvent, IncidentPost, Post
from models.types import utcnow
from esc_helpers import FAST_POLICY, new_post

# Due times far from the test's own run time, so what is due does not depend on how long it takes.
POLICY = {"steps": [{"after": 0, "action": "alert", "targets": ["dispatchers"]},
                    {"after": 10, "action": "realert", "sound": True, "targets": ["dispatchers"]},
                    {"after": 20, "action": "notify_supervisor", "targets": ["duty_supervisor"]},
                    {"after": 1000, "action": "notify_external", "targets": ["duty_manager"]}],
          "repeat_every": 0, "ack_sla": 30, "remind_after_ack": 30}


class Effects:
    """runner.StepEffects that only write down what they were asked."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, int, object]] = []
        self.scheduled: dict[int, object] = {}

    def schedule(self, incident_id, token, due_at) -> None:
        self.scheduled[incident_id] = due_at

    def fired(self, actions) -> None:
        self.actions.extend((action.kind, action.number, action.step.get("action")) for _, action in actions)


def _chain(engine, shape: str, at) -> int:
    """An incident whose chain is due, in one of several states (each made twice, identically)."""
    with Session(engine, expire_on_commit=False) as s:
        incident = Incident(status="queued", urgency="critical", category="medical", policy_snapshot=POLICY,
                            escalation_token=secrets.token_hex(8), next_step_at=at)
        s.add(incident)
        s.flush()
        ago = {"fresh": 0.0, "late": 100.0, "acknowledged": 200.0, "not_due": 0.0}[shape]
        append_event(s, incident.id, "queued", "system", {"stream_entry_id": ""}, at=at - timedelta(seconds=ago))
        if shape == "acknowledged":  # three reminders are due (every 30 s since 100 s ago)
            append_event(s, incident.id, "escalation_step", "escalation",
                         {"kind": "step", "number": 0, "action": "alert"}, at=at - timedelta(seconds=199))
            append_event(s, incident.id, "acknowledged", "ann", {}, at=at - timedelta(seconds=100))
            incident.status = "acknowledged"
        if shape == "not_due":  # the first step lies ahead: nothing fires, it is rescheduled
            incident.policy_snapshot = dict(POLICY, steps=[dict(POLICY["steps"][0], after=100)])
        s.add(incident)
        s.commit()
        return incident.id


def _after(engine, incident_id: int, skip: int) -> list[tuple[str, dict]]:
    with Session(engine) as s:
        rows = s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                      .order_by(IncidentEvent.seq)).all()
    return [(e.kind, {k: v for k, v in e.data.items() if k != "lateness_s"}) for e in rows[skip:]]


def _state(engine, incident_id: int) -> tuple:
    with Session(engine) as s:
        incident = s.get(Incident, incident_id)
        return incident.next_step_at, incident.escalation_token


def test_fire_many_fires_what_step_fires_one_incident_at_a_time(ctx):
    at = utcnow()
    shapes = ["fresh", "late", "acknowledged", "not_due", "fresh", "late"]
    one_by_one = [_chain(ctx.engine, shape, at) for shape in shapes]
    together = [_chain(ctx.engine, shape, at) for shape in shapes]
    before = {i: len(_after(ctx.engine, i, 0)) for i in one_by_one + together}
    tokens = {i: _state(ctx.engine, i)[1] for i in one_by_one + together}

    stepped = Effects()
    for incident_id in one_by_one:
        runner.step(ctx.engine, stepped, incident_id, tokens[incident_id])
    many = Effects()
    fired = runner.fire_many(ctx.engine, many, together)

    assert fired == len(many.actions) > len(shapes)
    for a, b in zip(one_by_one, together, strict=True):
        assert _after(ctx.engine, b, before[b]) == _after(ctx.engine, a, before[a])
        (next_a, token_a), (next_b, token_b) = _state(ctx.engine, a), _state(ctx.engine, b)
        assert next_b == next_a
        assert (token_b != tokens[b]) == (token_a != tokens[a])  # a new token where something fired
        assert many.scheduled.get(b) == stepped.scheduled.get(a)
    assert many.actions == stepped.actions
    with Session(ctx.engine) as s:
        evs = list(s.exec(select(IncidentEvent)).all())
    key = ctx.evidence_keys.hmac_key
    assert all(verify_chain([e for e in evs if e.incident_id == i], key) is None for i in one_by_one + together)
    # Fired once: a stale step job, or the timer after it, finds nothing more to do.
    assert runner.fire_many(ctx.engine, Effects(), together) == 0
    for incident_id in together:
        assert runner.step(ctx.engine, Effects(), incident_id, tokens[incident_id]) in ("stale", "rescheduled")


def _statements(engine, call) -> int:
    """Statements `call` runs on the engine in this thread: a job or timer thread that another test
    left polling the process's context would otherwise be counted as this call's."""
    seen: list[str] = []
    caller = threading.get_ident()

    def count(conn, cursor, statement, parameters, context, executemany):
        if threading.get_ident() == caller:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_fire_many_costs_the_same_statements_for_two_chains_or_eight(ctx):
    at = utcnow()
    two = [_chain(ctx.engine, "fresh", at) for _ in range(2)]
    eight = [_chain(ctx.engine, "fresh", at) for _ in range(8)]
    assert _statements(ctx.engine, lambda: runner.fire_many(ctx.engine, Effects(), two)) == \
        _statements(ctx.engine, lambda: runner.fire_many(ctx.engine, Effects(), eight))


def test_paging_two_chains_or_eight_costs_the_same_statements(ctx):
    """The deployment's own effects: a run that fires many pages records them (one `notification`
    event per attempt, on each incident's chain) in one transaction, not one per incident."""
    set_registry(ctx, NotifierRegistry())  # no channel configured: every attempt is recorded as failed
    paging = dict(POLICY, steps=[{"after": 0, "action": "notify_supervisor", "targets": ["duty_supervisor"]},
                                 {"after": 1000, "action": "notify_external", "targets": ["duty_manager"]}])

    def chains(n: int) -> list[int]:
        ids = [_chain(ctx.engine, "fresh", utcnow()) for _ in range(n)]
        with Session(ctx.engine) as s:
            for incident_id in ids:
                s.get(Incident, incident_id).policy_snapshot = paging
            s.commit()
        return ids

    two, eight = chains(2), chains(8)
    cost = {n: _statements(ctx.engine, lambda ids=ids: runner.fire_many(ctx.engine, escalate.Effects(ctx), ids))
            for n, ids in ((2, two), (8, eight))}
    assert cost[2] == cost[8]
    with Session(ctx.engine) as s:
        evs = list(s.exec(select(IncidentEvent).where(IncidentEvent.incident_id.in_(two + eight))).all())
    for incident_id in two + eight:
        chain = sorted((e for e in evs if e.incident_id == incident_id), key=lambda e: e.seq)
        assert [e.kind for e in chain[-2:]] == ["escalation_step", "notification"]
        assert chain[-1].data["action"] == "notify_supervisor" and chain[-1].data["ok"] is False
        assert verify_chain(chain, ctx.evidence_keys.hmac_key) is None


def test_the_step_timer_finds_due_chains_with_the_read_that_locks_them(ctx):
    """fire_due costs what fire_many costs on the same chains: no read of what is due before the
    locking one (SQLite, with no row locks, reads them first so that a round with nothing due
    does not take the database's write lock)."""
    at = utcnow()
    named = [_chain(ctx.engine, "fresh", at) for _ in range(3)]
    by_id = _statements(ctx.engine, lambda: runner.fire_many(ctx.engine, Effects(), named))
    for _ in range(3):
        _chain(ctx.engine, "fresh", at)
    effects = Effects()
    timer = _statements(ctx.engine, lambda: runner.fire_due(ctx.engine, effects))
    assert len(effects.actions) == 3
    assert timer == by_id + (1 if ctx.engine.dialect.name == "sqlite" else 0)


def test_the_step_timer_steps_each_chain_alone_when_firing_them_together_fails(ctx, monkeypatch):
    at = utcnow()
    ids = [_chain(ctx.engine, "fresh", at) for _ in range(2)]

    def broken(session, incident_ids):
        raise RuntimeError("the batch read failed")

    monkeypatch.setattr(runner, "load_heads", broken)
    effects = Effects()
    assert runner.fire_due(ctx.engine, effects) == 2
    assert effects.actions == [("step", 0, "alert")] * 2
    with Session(ctx.engine) as s:
        assert all(s.get(Incident, i).next_step_at > at for i in ids)
    assert runner.fire_due(ctx.engine, Effects()) == 0


def _decided(ctx, n: int, first: int) -> list[tuple[Post, TriageOutput]]:
    """n critical posts from n places far apart: each opens an incident of its own."""
    group = []
    for k in range(first, first + n):
        post_id = new_post(ctx, f"help at {k} Mill Road: my neighbour collapsed and is not breathing")
        where = LocationMention(f"{k} Mill Road", "address", "text", 50.0 + 0.5 * k, -3.0 + 0.5 * k, 0.9)
        out = TriageOutput(urgency="critical", category="medical", confidence=0.95, language="en",
                           locations=[where])
        with Session(ctx.engine, expire_on_commit=False) as s:
            group.append((s.get(Post, post_id), out))
    return group


def _incidents(ctx, group) -> list[Incident]:
    with Session(ctx.engine) as s:
        return list(s.exec(select(Incident).join(IncidentPost, IncidentPost.incident_id == Incident.id)
                           .where(IncidentPost.post_id.in_([p.id for p, _ in group]))).all())


def test_a_group_queues_its_incidents_at_its_commit(ctx, monkeypatch):
    # Settings' policies are the escalation tests' fast ones (conftest): the first step is due at once.
    assert FAST_POLICY["critical"]["steps"][0]["after"] == 0
    lost: list = []
    monkeypatch.setattr(triage_batch, "_after_commit", lambda c, outcomes: lost.append(outcomes))
    group = _decided(ctx, 3, 0)
    assert triage_batch._act(ctx, triage_batch._ranked(group), dict.fromkeys((p.id for p, _ in group), 1.0)) == 3
    incidents = _incidents(ctx, group)
    # The worker died after its commit: nothing of the Redis half ran, and yet every incident is
    # queued (what the dispatch queue page reads), with its chain due now.
    assert len(incidents) == 3 and lost
    assert all(i.status == "queued" and i.queued_at is not None and i.stream_entry_id == "" for i in incidents)
    assert all(i.next_step_at is not None and i.next_step_at <= utcnow() for i in incidents)
    # Re-driven: the sweep adds the stream entries, the step timer fires the first steps, once.
    sweep.sweep(ctx)
    escalate.fire_due_steps(ctx)
    sweep.sweep(ctx)
    escalate.fire_due_steps(ctx)
    assert ctx.redis.xlen(ctx.dispatch.key) == 3
    with Session(ctx.engine) as s:
        for incident in incidents:
            kinds = list(s.exec(select(IncidentEvent.kind).where(IncidentEvent.incident_id == incident.id)))
            assert kinds.count("queued") == 1 and kinds.count("escalation_step") == 1
            assert s.get(Incident, incident.id).stream_entry_id


def test_the_redis_half_of_a_group_costs_the_same_for_two_incidents_or_six(ctx, monkeypatch):
    real = triage_batch._after_commit

    def act(n: int, first: int) -> tuple[int, list]:
        group = _decided(ctx, n, first)
        outcomes: list = []
        monkeypatch.setattr(triage_batch, "_after_commit", lambda c, done: outcomes.extend(done))
        assert triage_batch._act(ctx, triage_batch._ranked(group), dict.fromkeys((p.id for p, _ in group), 1.0)) == n
        return _statements(ctx.engine, lambda: real(ctx, outcomes)), group

    two, small = act(2, 0)
    six, large = act(6, 10)
    assert two == six
    key = ctx.evidence_keys.hmac_key
    incidents = _incidents(ctx, small + large)
    assert len(incidents) == 8
    with Session(ctx.engine) as s:
        for incident in incidents:
            evs = list(s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident.id)))
            kinds = [e.kind for e in evs]
            assert incident.status == "queued" and incident.stream_entry_id
            assert kinds.count("queued") == 1
            assert [e.data["action"] for e in evs if e.kind == "escalation_step"] == ["alert"]
            assert verify_chain(evs, key) is None
    assert ctx.redis.xlen(ctx.dispatch.key) == 8
