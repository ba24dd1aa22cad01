"""The supervisor's view of the shift: how fast we answer, what is waiting, who is working.

Graphic-media exposure is shown per person as a wellness signal so a supervisor can rotate
someone off the hardest material; it is never ranked or used as a performance measure.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func
from sqlmodel import Session, select

from dashboard.context import AppContext
from dashboard.deps import DB, require
from dashboard.routes.common import MEDIA_REVEALED_ACTION, SHIFT, render
from models.enums import EventKind, IncidentStatus, TriageState, Urgency
from models.tables import AuditEntry, Incident, IncidentEvent, Post, User
from models.types import utcnow

router = APIRouter(include_in_schema=False)

ON_SHIFT_WINDOW = timedelta(minutes=15)


def connector_health(ctx: AppContext) -> list[dict[str, Any]] | None:
    """Each platform feed's health, or None when no connector reports health in this build."""
    try:
        from connectors.health import read_health
    except ImportError:
        try:
            from connectors.runner import read_health  # type: ignore[attr-defined,no-redef]
        except ImportError:
            return None
    try:
        return read_health(ctx.redis)
    except Exception:  # noqa: BLE001 - a broken health reader must not take the supervisor page down
        return None


@dataclass
class AckStats:
    urgency: str
    count: int
    median_s: float | None
    p90_s: float | None
    worst_s: float | None
    waiting: int


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ack_stats(db: Session, since) -> list[AckStats]:
    acked = db.exec(select(Incident.urgency, Incident.queued_at, Incident.created_at, Incident.acknowledged_at)
                    .where(Incident.acknowledged_at.is_not(None), Incident.acknowledged_at >= since)).all()
    waiting = dict(db.exec(select(Incident.urgency, func.count(Incident.id))
                           .where(Incident.status == IncidentStatus.queued.value)
                           .group_by(Incident.urgency)).all())
    out = []
    for urgency in (Urgency.critical, Urgency.high, Urgency.medium, Urgency.low):
        secs = [(ack - (queued or created)).total_seconds() for u, queued, created, ack in acked if u == urgency]
        out.append(AckStats(urgency.value, len(secs), statistics.median(secs) if secs else None,
                            _quantile(secs, 0.9), max(secs) if secs else None, int(waiting.get(urgency.value, 0))))
    return out


def shift_summary(db: Session, ctx: AppContext) -> dict[str, Any]:
    now = utcnow()
    since = now - SHIFT
    breaches = db.exec(select(IncidentEvent).where(IncidentEvent.kind == EventKind.sla_breach.value,
                                                   IncidentEvent.at >= since)
                       .order_by(IncidentEvent.at.desc()).limit(100)).all()
    oldest_pending = db.exec(select(func.min(Post.received_at))
                             .where(Post.triage_state == TriageState.pending.value)).one()
    pending_posts = db.exec(select(func.count(Post.id)).where(Post.triage_state == TriageState.pending.value)).one()
    volumes = db.exec(select(Post.platform, func.count(Post.id)).where(Post.received_at >= since)
                      .group_by(Post.platform).order_by(Post.platform)).all()
    last_hour = dict(db.exec(select(Post.platform, func.count(Post.id))
                             .where(Post.received_at >= now - timedelta(hours=1)).group_by(Post.platform)).all())
    on_shift = db.exec(select(User).where(User.active == True, User.last_seen_at.is_not(None),  # noqa: E712
                                          User.last_seen_at >= now - ON_SHIFT_WINDOW)
                       .order_by(User.role, User.username)).all()
    exposure = dict(db.exec(select(AuditEntry.username, func.count(AuditEntry.id))
                            .where(AuditEntry.action == MEDIA_REVEALED_ACTION, AuditEntry.at >= since)
                            .group_by(AuditEntry.username)).all())
    queue_depth = {}
    for name, queue in ctx.queues.items():
        try:
            queue_depth[name] = queue.count
        except Exception:  # noqa: BLE001 - Redis down: show the gap rather than fail the page
            queue_depth[name] = None
    try:
        dispatch_pending = len(ctx.dispatch.pending())
    except Exception:  # noqa: BLE001
        dispatch_pending = None
    return {
        "ack": ack_stats(db, since), "breaches": breaches, "queue_depth": queue_depth,
        "dispatch_pending": dispatch_pending, "pending_posts": int(pending_posts),
        "backlog_age_s": (now - oldest_pending).total_seconds() if oldest_pending else None,
        "volumes": [(p, int(n), int(last_hour.get(p, 0))) for p, n in volumes],
        "on_shift": [(u, int(exposure.get(u.username, 0))) for u in on_shift],
        "exposure_off_shift": {u: n for u, n in exposure.items() if u not in {x.username for x in on_shift}},
        "connectors": connector_health(ctx), "shift_hours": int(SHIFT.total_seconds() // 3600),
    }


@router.get("/supervisor")
def supervisor_page(request: Request, db: DB, user: User = require("supervise")) -> HTMLResponse:
    return render(request, "supervisor.html", user=user, s=shift_summary(db, request.app.state.ctx))
