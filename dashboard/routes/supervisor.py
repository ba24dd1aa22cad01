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

from flows.context import AppContext
from dashboard.deps import DB, require
from flows.notify import registry as notifier_registry
from dashboard.routes.common import BACKGROUND, MEDIA_REVEALED_ACTION, SHIFT, render
from models.enums import EventKind, IncidentStatus, TriageState, Urgency
from models.tables import AuditEntry, Incident, IncidentEvent, Post, User
from models.types import utcnow
from connectors.health import read_health

router = APIRouter(include_in_schema=False)

ON_SHIFT_WINDOW = timedelta(minutes=15)
# The page refreshes itself on every live event and at least this often (timers, ages).
REFRESH_SECONDS = 15


@dataclass
class Breach:
    """One SLA breach, in words: which incident, how long it was allowed, where it stands now."""

    at: Any
    incident_id: int
    urgency: str
    category: str
    sla_s: float
    status: str
    acknowledged_after_s: float | None

    @property
    def text(self) -> str:
        kind = self.category.replace("_", " ") if self.category and self.category != "none" else "incident"
        head = f"{self.urgency} {kind} not acknowledged within {self.sla_s:.0f} s"
        if self.acknowledged_after_s is not None:
            return f"{head}; acknowledged after {self.acknowledged_after_s:.0f} s"
        return f"{head}; {'still waiting' if self.status == IncidentStatus.queued.value else self.status}"


def readable_breaches(db: Session, events: list[IncidentEvent]) -> list[Breach]:
    ids = {e.incident_id for e in events}
    incidents = {i.id: i for i in db.exec(select(Incident).where(Incident.id.in_(ids or {-1})))}
    out = []
    for e in events:
        i = incidents.get(e.incident_id)
        if i is None:
            continue
        after = ((i.acknowledged_at - (i.queued_at or i.created_at)).total_seconds()
                 if i.acknowledged_at else None)
        out.append(Breach(e.at, e.incident_id, i.urgency, i.category,
                          float((e.data or {}).get("ack_sla_s") or (i.policy_snapshot or {}).get("ack_sla") or 0),
                          i.status, after))
    return out


def connector_health(ctx: AppContext) -> list[dict[str, Any]] | None:
    """Each platform feed's health, or None when it cannot be read."""
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
    # Not yet acknowledged = handed to a console and not acknowledged (pending) + not yet handed
    # to any console (undelivered). Counting only the first read 0 while 20 incidents waited.
    try:
        dispatch_pending = len(ctx.dispatch.pending())
        dispatch_undelivered = ctx.dispatch.undelivered_count()
    except Exception:  # noqa: BLE001
        dispatch_pending = dispatch_undelivered = None
    failed_pages = [(e.at, e.incident_id, e.data) for e in db.exec(
        select(IncidentEvent).where(IncidentEvent.kind == EventKind.notification.value, IncidentEvent.at >= since)
        .order_by(IncidentEvent.at.desc()).limit(500)) if not (e.data or {}).get("ok")][:50]
    queued_incidents = int(db.exec(select(func.count(Incident.id))
                                   .where(Incident.status == IncidentStatus.queued.value)).one())
    return {
        "ack": ack_stats(db, since), "breaches": readable_breaches(db, breaches), "queue_depth": queue_depth,
        "dispatch_pending": dispatch_pending, "dispatch_undelivered": dispatch_undelivered,
        "dispatch_unacknowledged": (None if dispatch_pending is None or dispatch_undelivered is None
                                    else dispatch_pending + dispatch_undelivered),
        "queued_incidents": queued_incidents, "failed_pages": failed_pages,
        "paging_channels": sorted(notifier_registry(ctx).notifiers), "pending_posts": int(pending_posts),
        "backlog_age_s": (now - oldest_pending).total_seconds() if oldest_pending else None,
        "volumes": [(p, int(n), int(last_hour.get(p, 0))) for p, n in volumes],
        "on_shift": [(u, int(exposure.get(u.username, 0))) for u in on_shift],
        "exposure_off_shift": {u: n for u, n in exposure.items() if u not in {x.username for x in on_shift}},
        "connectors": connector_health(ctx), "shift_hours": int(SHIFT.total_seconds() // 3600),
    }


@router.get("/supervisor")
def supervisor_page(request: Request, db: DB, user: User = require("supervise")) -> HTMLResponse:
    return render(request, "supervisor.html", user=user, s=shift_summary(db, request.app.state.ctx),
                  refresh_seconds=REFRESH_SECONDS)


@router.get("/supervisor/cards", dependencies=[BACKGROUND])
def supervisor_cards(request: Request, db: DB, user: User = require("supervise")) -> HTMLResponse:
    return render(request, "_supervisor_cards.html", user=user, fragment=True,
                  s=shift_summary(db, request.app.state.ctx))
