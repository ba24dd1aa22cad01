"""User actions shared by the HTML pages and the JSON API: one transaction, then the Redis half."""
from __future__ import annotations

from sqlmodel import Session

from dashboard import jobs
from dashboard.context import AppContext
from dashboard.escalation_runner import publish_live
from escalation import service
from models.tables import User


def acknowledge(ctx: AppContext, incident_id: int, user: User) -> service.Outcome:
    with Session(ctx.engine, expire_on_commit=False) as s:
        outcome = service.acknowledge(s, incident_id, user.username, ctx.settings.service, ctx.dm_possible)
        s.commit()
    jobs.dispatch_outcome(ctx, outcome)
    publish_live(ctx, {"type": "acknowledged", "incident_id": incident_id, "by": user.username})
    return outcome
