"""Executes escalation steps, then schedules the next.

Each job carries the incident's current token. Executing a step swaps the token with an atomic
compare-and-set, so a duplicate or stale job (or a sweep re-drive racing a scheduled job, or the
worker's step timer racing both) finds the token changed and does nothing.

Two clocks drive steps: an RQ scheduled job per step (`schedule`) and every worker's step timer
(`fire_due_steps`, polled a few times a second). RQ's scheduler only wakes once a second and
loses its lock for a minute when its worker is SIGKILLed; the timer keeps steps within a fraction
of a second of their policy time either way, and the token makes the two harmless to combine.
"""
from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime, timedelta

import redis
from sqlalchemy import update
from sqlmodel import Session, select

from dashboard.context import ESCALATION_QUEUE, AppContext, process_context
from escalation.policy import POLICY_EVENT_KINDS, Action, Event, next_action
from models.enums import EventKind, IncidentStatus
from models.events import append_event
from models.tables import Incident, IncidentEvent
from models.types import utcnow

log = logging.getLogger("flare.escalation")
ALERT_CHANNEL = "flare:live"
# A step due within this much of now is fired rather than rescheduled (timer jitter).
DUE_TOLERANCE = timedelta(milliseconds=50)
# Never fire more than this many actions in one call: a bug in a policy cannot spin forever.
MAX_ACTIONS_PER_RUN = 20


def _events(session: Session, incident_id: int) -> list[Event]:
    """The incident's events that the policy reads, oldest first. Only those kinds: in a burst the
    big incident gains an event per report, and reading them all on every step slowed workers."""
    rows = session.exec(select(IncidentEvent.kind, IncidentEvent.at, IncidentEvent.data).where(
        IncidentEvent.incident_id == incident_id, IncidentEvent.kind.in_(POLICY_EVENT_KINDS),
    ).order_by(IncidentEvent.seq))
    return [Event(kind, at, data or {}) for kind, at, data in rows]


def schedule(ctx: AppContext, incident_id: int, token: str, due_at: datetime) -> None:
    job_id = f"esc-{incident_id}-{token}"
    delay = (due_at - utcnow()).total_seconds()
    q = ctx.queues[ESCALATION_QUEUE]
    if delay <= 0:
        q.enqueue("dashboard.escalation_runner.escalation_step", incident_id, token, job_id=job_id,
                  job_timeout=60)
    else:
        q.enqueue_at(due_at, "dashboard.escalation_runner.escalation_step", incident_id, token,
                     job_id=job_id, job_timeout=60)


def start_chain(ctx: AppContext, incident_id: int) -> None:
    """Compute the first due step of a freshly queued incident and schedule it."""
    with Session(ctx.engine, expire_on_commit=False) as s:
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
        escalation_step(incident_id, token, ctx)
    else:
        schedule(ctx, incident_id, token, action.due_at)


def publish_live(ctx: AppContext, payload: dict) -> None:
    """Tell every open dashboard (SSE) that something changed."""
    ctx.redis.publish(ALERT_CHANNEL, json.dumps(payload, default=str))


def _fire(s: Session, ctx: AppContext, incident: Incident, token: str, action: Action,
          now: datetime) -> str | None:
    """Record one due action under the token CAS. Returns the new token, or None if stale."""
    new_token = secrets.token_hex(8)
    claimed = s.execute(
        update(Incident).where(Incident.id == incident.id, Incident.escalation_token == token)
        .values(escalation_token=new_token)
    ).rowcount
    if claimed != 1:
        s.rollback()
        return None
    lateness = round((now - action.due_at).total_seconds(), 3)
    if action.kind == "sla_breach":
        sla = float(incident.policy_snapshot.get("ack_sla") or 0)
        append_event(s, incident.id, EventKind.sla_breach, "escalation",
                     {"ack_sla_s": sla, "due_at": action.due_at.isoformat(), "lateness_s": lateness})
    else:
        append_event(s, incident.id, EventKind.escalation_step, "escalation",
                     {"kind": action.kind, "number": action.number, "action": action.step.get("action"),
                      "targets": action.step.get("targets", []), "sound": action.step.get("sound", False),
                      "due_at": action.due_at.isoformat(), "lateness_s": lateness})
    s.commit()
    return new_token


def escalation_step(incident_id: int, token: str, ctx: AppContext | None = None) -> str:
    """Fire every action of this incident that is due now, then schedule the next one."""
    ctx = ctx or process_context()
    fired: list[Action] = []
    due_at: datetime | None = None
    with Session(ctx.engine, expire_on_commit=False) as s:
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
            new_token = _fire(s, ctx, incident, token, action, now)
            if new_token is None:
                return "stale" if not fired else "fired"
            token = new_token
            fired.append(action)
            _after_fire(ctx, incident, action)
        # Only the holder of the current token may move the timer.
        moved = s.execute(update(Incident).where(Incident.id == incident_id, Incident.escalation_token == token)
                          .values(next_step_at=due_at)).rowcount
        s.commit()
    if moved != 1:
        return "fired" if fired else "stale"  # someone else holds the chain now; they schedule it
    if due_at is not None:
        try:
            schedule(ctx, incident_id, token, due_at)
        except redis.RedisError:  # next_step_at is committed: every worker's step timer fires it
            log.warning("incident %s: next step not scheduled in Redis; the step timer has it", incident_id)
    return "fired" if fired else "rescheduled"


def _after_fire(ctx: AppContext, incident: Incident, action: Action) -> None:
    """Side effects of a recorded action: live alert, metrics, external paging. A page to a
    person goes out even while Redis (counters, live screens) is unreachable."""
    from dashboard import metrics

    name = str(action.step.get("action"))
    try:
        if action.kind == "sla_breach":
            metrics.count_sla_breach(ctx, incident.urgency)
            publish_live(ctx, {"type": "sla_breach", "incident_id": incident.id, "urgency": incident.urgency})
        else:
            metrics.count_step(ctx, name)
            publish_live(ctx, {"type": "escalation", "incident_id": incident.id, "action": name,
                               "kind": action.kind, "sound": action.step.get("sound", False),
                               "targets": action.step.get("targets", []), "urgency": incident.urgency})
    except redis.RedisError as exc:  # the step is recorded; screens re-read it when Redis is back
        log.warning("incident %s: %s not counted or shown live (%s)", incident.id, action.kind, exc)
    if action.kind != "sla_breach" and name in ("notify_external", "notify_supervisor"):
        from dashboard.notifiers import notify_all

        try:
            notify_all(ctx, incident, action.step)
        except Exception:  # noqa: BLE001 - a broken notifier must not stop the chain
            log.exception("notifier failed for incident %s", incident.id)


def fire_due_steps(ctx: AppContext, limit: int = 200) -> int:
    """The worker's step timer: fire every incident whose next step is due. Returns how many."""
    cutoff = utcnow() + DUE_TOLERANCE
    with Session(ctx.engine) as s:
        rows = s.exec(select(Incident.id, Incident.escalation_token).where(
            Incident.next_step_at.is_not(None), Incident.next_step_at <= cutoff,
            Incident.status.in_([IncidentStatus.queued.value, IncidentStatus.acknowledged.value]),
        ).order_by(Incident.next_step_at).limit(limit)).all()
    fired = 0
    for incident_id, token in rows:
        try:
            if escalation_step(incident_id, token, ctx) == "fired":
                fired += 1
        except Exception:  # noqa: BLE001 - one bad incident must not starve the others
            log.exception("escalation step failed for incident %s", incident_id)
    return fired


def redrive_overdue(ctx: AppContext, grace_seconds: float = 1.0) -> int:
    """Sweep: schedulers lose timers on restart; re-enqueue every incident whose step is overdue."""
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    with Session(ctx.engine) as s:
        rows = s.exec(select(Incident.id, Incident.escalation_token).where(
            Incident.next_step_at.is_not(None), Incident.next_step_at < cutoff,
            Incident.status.in_([IncidentStatus.queued.value, IncidentStatus.acknowledged.value]),
        )).all()
    for incident_id, token in rows:
        schedule(ctx, incident_id, token, utcnow())
    return len(rows)
