"""Executes escalation steps: one step per job, then schedules the next.

Each job carries the incident's current token. Executing a step swaps the token with an atomic
compare-and-set, so a duplicate or stale job (or a sweep re-drive racing a scheduled job) finds
the token changed and does nothing.
"""
from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, select

from dashboard.context import ESCALATION_QUEUE, AppContext, process_context
from escalation.policy import Event, next_action
from models.enums import EventKind, IncidentStatus
from models.events import append_event
from models.tables import Incident, IncidentEvent
from models.types import utcnow

log = logging.getLogger("flare.escalation")
ALERT_CHANNEL = "flare:live"


def _events(session: Session, incident_id: int) -> list[Event]:
    rows = session.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                        .order_by(IncidentEvent.seq))
    return [Event(r.kind, r.at, r.data or {}) for r in rows]


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
    if action:
        schedule(ctx, incident_id, token, action.due_at)


def publish_live(ctx: AppContext, payload: dict) -> None:
    """Tell every open dashboard (SSE) that something changed."""
    ctx.redis.publish(ALERT_CHANNEL, json.dumps(payload, default=str))


def escalation_step(incident_id: int, token: str, ctx: AppContext | None = None) -> str:
    ctx = ctx or process_context()
    now = utcnow()
    with Session(ctx.engine, expire_on_commit=False) as s:
        incident = s.get(Incident, incident_id)
        if incident is None or incident.escalation_token != token:
            return "stale"
        if not IncidentStatus(incident.status).is_open:
            return "closed"
        action = next_action(incident.policy_snapshot, _events(s, incident_id), now)
        if action is None:
            return "done"
        if action.due_at > now + timedelta(milliseconds=50):
            due_at = action.due_at
        else:
            new_token = secrets.token_hex(8)
            claimed = s.execute(
                update(Incident).where(Incident.id == incident_id, Incident.escalation_token == token)
                .values(escalation_token=new_token)
            ).rowcount
            if claimed != 1:
                s.rollback()
                return "stale"
            lateness = (now - action.due_at).total_seconds()
            append_event(s, incident_id, EventKind.escalation_step, "escalation",
                         {"kind": action.kind, "number": action.number, "action": action.step.get("action"),
                          "targets": action.step.get("targets", []), "sound": action.step.get("sound", False),
                          "due_at": action.due_at.isoformat(), "lateness_s": round(lateness, 3)})
            s.commit()
            token = new_token
            publish_live(ctx, {"type": "escalation", "incident_id": incident_id,
                               "action": action.step.get("action"), "sound": action.step.get("sound", False),
                               "urgency": incident.urgency})
            _notify(ctx, incident, action.step)
            after = next_action(incident.policy_snapshot, _events(s, incident_id), utcnow())
            due_at = after.due_at if after else None
        s.execute(update(Incident).where(Incident.id == incident_id).values(next_step_at=due_at))
        s.commit()
    if due_at is not None:
        schedule(ctx, incident_id, token, due_at)
    return "fired" if token != incident.escalation_token else "rescheduled"


def _notify(ctx: AppContext, incident: Incident, step: dict) -> None:
    """External paging for steps that ask for it (webhook/email/SMS gateway)."""
    if step.get("action") not in ("notify_external", "notify_supervisor"):
        return
    from dashboard.notifiers import notify_all

    notify_all(ctx, incident, step)


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
