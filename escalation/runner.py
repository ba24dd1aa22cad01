"""Executes escalation steps, then schedules the next.

Each step carries the incident's current token. Executing a step swaps the token with an atomic
compare-and-set, so a duplicate or stale job (or a sweep re-drive racing a scheduled job, or a
worker's step timer racing both) finds the token changed and does nothing.

Two clocks drive steps: a scheduled job per step (`StepEffects.schedule`) and every worker's step
timer (`fire_due`, polled a few times a second by one worker at a time: flows.escalate.step_timer_round). A scheduler may wake late or lose its timers when
its worker is killed; the timer keeps steps within a fraction of a second of their policy time
either way, and the token makes the two harmless to combine.

What a step does beyond its database record (live alert, counters, paging a person) and how the
next one is scheduled are the caller's, through `StepEffects` (flows/escalate.py wires them).
"""
from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from escalation.policy import POLICY_EVENT_KINDS, Action, Event, next_action
from models.enums import EventKind, IncidentStatus
from models.events import append_event, batch_appends, held, load_heads
from models.tables import Incident, IncidentEvent
from models.types import utcnow

log = logging.getLogger("flare.escalation")
# A step due within this much of now is fired rather than rescheduled (timer jitter).
DUE_TOLERANCE = timedelta(milliseconds=50)
# Never fire more than this many actions in one call: a bug in a policy cannot spin forever.
MAX_ACTIONS_PER_RUN = 20
_CHAINED = [IncidentStatus.queued.value, IncidentStatus.acknowledged.value]


class StepEffects(Protocol):
    def schedule(self, incident_id: int, token: str, due_at: datetime) -> None:
        """Run `step(incident_id, token)` at `due_at` (or now, if it is past). May raise: the
        committed `next_step_at` lets every worker's step timer fire it anyway."""
        ...

    def fired(self, actions: Sequence[tuple[Incident, Action]]) -> None:
        """The side effects of recorded, committed actions (live alerts, counters, paging), all
        those one run fired at once, so a burst's hundreds of due chains cost round trips by the
        run, not by the action. Must not raise."""
        ...


def _events(session: Session, incident_id: int) -> list[Event]:
    """The incident's events that the policy reads, oldest first. Only those kinds: in a burst the
    big incident gains an event per report, and reading them all on every step slowed workers."""
    rows = session.exec(select(IncidentEvent.kind, IncidentEvent.at, IncidentEvent.data).where(
        IncidentEvent.incident_id == incident_id, IncidentEvent.kind.in_(POLICY_EVENT_KINDS),
    ).order_by(IncidentEvent.seq))
    return [Event(kind, at, data or {}) for kind, at, data in rows]


def start_chain(engine: Engine, effects: StepEffects, incident_id: int) -> None:
    """Compute the first due step of a freshly queued incident: fire it now if it is due, else schedule it."""
    with Session(engine, expire_on_commit=False) as s:
        incident = s.get(Incident, incident_id)
        if incident is None:
            return
        action = next_action(incident.policy_snapshot, _events(s, incident_id), utcnow())
        incident.next_step_at = action.due_at if action else None
        s.add(incident)
        s.commit()
        token = incident.escalation_token
    if action is None:
        return
    if action.due_at <= utcnow() + DUE_TOLERANCE:
        # The first alert is due now: fire it here rather than wait for a worker to pick it up.
        step(engine, effects, incident_id, token)
    else:
        effects.schedule(incident_id, token, action.due_at)


def _fire(s: Session, incident: Incident, token: str, action: Action, now: datetime) -> str | None:
    """Record one due action under the token CAS. Returns the new token, or None if stale."""
    new_token = secrets.token_hex(8)
    claimed = s.execute(
        update(Incident).where(Incident.id == incident.id, Incident.escalation_token == token)
        .values(escalation_token=new_token)
    ).rowcount
    if claimed != 1:
        s.rollback()
        return None
    kind, data = _action_event(incident, action, now)
    append_event(s, incident.id, kind, "escalation", data)
    s.commit()
    return new_token


def _action_event(incident: Incident, action: Action, now: datetime) -> tuple[EventKind, dict]:
    """The event that records a fired action (`step` and `fire_many` write the same)."""
    lateness = round((now - action.due_at).total_seconds(), 3)
    if action.kind == "sla_breach":
        sla = float(incident.policy_snapshot.get("ack_sla") or 0)
        return EventKind.sla_breach, {"ack_sla_s": sla, "due_at": action.due_at.isoformat(), "lateness_s": lateness}
    return EventKind.escalation_step, {
        "kind": action.kind, "number": action.number, "action": action.step.get("action"),
        "targets": action.step.get("targets", []), "sound": action.step.get("sound", False),
        "due_at": action.due_at.isoformat(), "lateness_s": lateness}


def step(engine: Engine, effects: StepEffects, incident_id: int, token: str) -> str:
    """Fire every action of this incident that is due now, then schedule the next one.
    Returns "stale", "closed", "fired" or "rescheduled"."""
    fired: list[Action] = []
    due_at: datetime | None = None
    with Session(engine, expire_on_commit=False) as s:
        incident = s.get(Incident, incident_id)
        if incident is None or incident.escalation_token != token:
            return "stale"
        if not IncidentStatus(incident.status).is_open:
            return "closed"
        for _ in range(MAX_ACTIONS_PER_RUN):
            now = utcnow()
            action = next_action(incident.policy_snapshot, _events(s, incident_id), now)
            if action is None or action.due_at > now + DUE_TOLERANCE:
                due_at = action.due_at if action else None
                break
            new_token = _fire(s, incident, token, action, now)
            if new_token is None:
                return "stale" if not fired else "fired"
            token = new_token
            fired.append(action)
            effects.fired([(incident, action)])
        # Only the holder of the current token may move the timer.
        moved = s.execute(update(Incident).where(Incident.id == incident_id, Incident.escalation_token == token)
                          .values(next_step_at=due_at)).rowcount
        s.commit()
    if moved != 1:
        return "fired" if fired else "stale"  # someone else holds the chain now; they schedule it
    if due_at is not None:
        try:
            effects.schedule(incident_id, token, due_at)
        except Exception as exc:  # noqa: BLE001 - next_step_at is committed: every worker's step timer fires it
            log.warning("incident %s: next step not scheduled (%s); the step timer has it", incident_id, exc)
    return "fired" if fired else "rescheduled"


def fire_many(engine: Engine, effects: StepEffects, incident_ids: list[int]) -> int:
    """`step` for many incidents whose chains are due (`next_step_at` reached), in one transaction:
    the chains a triage group has just queued (escalation.service.queue_now) start here, with one
    read of their events and one write of what fired, instead of three transactions each.

    The rows are locked (FOR UPDATE SKIP LOCKED: one another transaction holds is left to the
    step timer, which fires any due chain) and each chain that fired takes a new token, so a
    `step` job or timer that read the old one finds it stale, as after `step` itself. The
    actions, their events and the next due time are those `step` works out, one incident at a
    time (tests/escalation/test_fire_many.py compares them). Returns how many actions fired."""
    ids = sorted(set(incident_ids))
    if not ids:
        return 0
    return _fire_held(engine, effects, ids)


def _due(cutoff: datetime) -> tuple:
    return (Incident.next_step_at.is_not(None), Incident.next_step_at <= cutoff, Incident.status.in_(_CHAINED))


def _fire_held(engine: Engine, effects: StepEffects, ids: list[int] | None, limit: int = 0) -> int:
    """fire_many's work, on these incidents, or with `ids` None on every chain due (at most
    `limit`, soonest first: the step timer), found by the statement that locks them."""
    fired: list[tuple[Incident, Action]] = []
    due: dict[int, tuple[str, datetime]] = {}
    with Session(engine, expire_on_commit=False) as s:
        if s.get_bind().dialect.name == "sqlite":  # FOR UPDATE does nothing there: take the write lock
            if ids is None:  # only if something is due: the write lock is the whole database's
                ids = list(s.exec(select(Incident.id).where(*_due(utcnow() + DUE_TOLERANCE))
                                  .order_by(Incident.next_step_at).limit(limit)).all())
                if not ids:
                    s.rollback()
                    return 0
            s.execute(update(Incident).where(Incident.id.in_(ids)).values(id=Incident.id))
        chosen = select(Incident).where(*_due(utcnow() + DUE_TOLERANCE))
        if ids is None:
            chosen = chosen.order_by(Incident.next_step_at).limit(limit)
        else:
            chosen = chosen.where(Incident.id.in_(ids))
        incidents = sorted(s.exec(chosen.with_for_update(skip_locked=True)).all(), key=lambda i: i.id)
        if not incidents:
            s.rollback()
            return 0
        batch_appends(s)
        held(s, [incident.id for incident in incidents])
        load_heads(s, [incident.id for incident in incidents])
        history: dict[int, list[Event]] = {}
        for incident_id, kind, at, data in s.exec(select(
                IncidentEvent.incident_id, IncidentEvent.kind, IncidentEvent.at, IncidentEvent.data).where(
                IncidentEvent.incident_id.in_([incident.id for incident in incidents]),
                IncidentEvent.kind.in_(POLICY_EVENT_KINDS)).order_by(IncidentEvent.incident_id, IncidentEvent.seq)):
            history.setdefault(incident_id, []).append(Event(kind, at, data or {}))
        for incident in incidents:
            events = history.get(incident.id, [])
            due_at: datetime | None = None
            moved = False
            for _ in range(MAX_ACTIONS_PER_RUN):
                now = utcnow()
                action = next_action(incident.policy_snapshot, events, now)
                if action is None or action.due_at > now + DUE_TOLERANCE:
                    due_at = action.due_at if action else None
                    break
                kind, data = _action_event(incident, action, now)
                append_event(s, incident.id, kind, "escalation", data, at=now)
                events.append(Event(str(kind), now, data))
                fired.append((incident, action))
                moved = True
            if moved:
                incident.escalation_token = secrets.token_hex(8)
            incident.next_step_at = due_at
            if due_at is not None:
                due[incident.id] = (incident.escalation_token, due_at)
        s.commit()
    if fired:
        effects.fired(fired)
    for incident_id, (token, due_at) in due.items():
        try:
            effects.schedule(incident_id, token, due_at)
        except Exception as exc:  # noqa: BLE001 - next_step_at is committed: every worker's step timer fires it
            log.warning("incident %s: next step not scheduled (%s); the step timer has it", incident_id, exc)
    return len(fired)


def fire_due(engine: Engine, effects: StepEffects, limit: int = 200) -> int:
    """The step timer: fire every incident whose next step is due, in one transaction
    (`fire_many`'s: one read of their events and one write of what fired, instead of three
    transactions each), whose locking read is also the poll for due chains (no read of them
    before it). Should that fail, each is stepped on its own, so one bad incident never starves
    the others. Returns how many actions fired."""
    try:
        return _fire_held(engine, effects, None, limit)
    except Exception:  # noqa: BLE001 - rolled back whole: step each alone (a stale token does nothing)
        log.exception("firing the due chains together failed; stepping each on its own")
    with Session(engine) as s:
        rows = s.exec(select(Incident.id, Incident.escalation_token).where(*_due(utcnow() + DUE_TOLERANCE))
                      .order_by(Incident.next_step_at).limit(limit)).all()
    fired = 0
    for incident_id, token in rows:
        try:
            if step(engine, effects, incident_id, token) == "fired":
                fired += 1
        except Exception:  # noqa: BLE001 - one bad incident must not starve the others
            log.exception("escalation step failed for incident %s", incident_id)
    return fired


def overdue(engine: Engine, grace_seconds: float = 1.0) -> list[tuple[int, str]]:
    """(incident id, token) of every open chain whose step is overdue by more than the grace."""
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    with Session(engine) as s:
        return [tuple(r) for r in s.exec(select(Incident.id, Incident.escalation_token).where(
            Incident.next_step_at.is_not(None), Incident.next_step_at < cutoff, Incident.status.in_(_CHAINED),
        )).all()]
