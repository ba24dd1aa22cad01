"""Prometheus metrics. Gauges are recomputed from the database/Redis at scrape time."""
from __future__ import annotations

from prometheus_client import Gauge
from sqlalchemy import func
from sqlmodel import Session, select

from dashboard.context import AppContext
from models.enums import DeliveryStatus, IncidentStatus, TriageState
from models.tables import Incident, OutboundMessage, Post
from models.types import utcnow

OPEN_INCIDENTS = Gauge("flare_open_incidents", "Open incidents", ["urgency", "status"])
OVERDUE_INCIDENTS = Gauge("flare_overdue_escalations", "Open incidents whose next escalation step is overdue")
QUEUE_DEPTH = Gauge("flare_queue_depth", "Jobs waiting per RQ queue", ["queue"])
UNTRIAGED = Gauge("flare_untriaged_posts", "Posts persisted but not yet triaged")
FAILED_MESSAGES = Gauge("flare_reply_delivery_failures", "Outbound messages that failed after all retries")


def refresh_gauges(ctx: AppContext) -> None:
    with Session(ctx.engine) as s:
        OPEN_INCIDENTS.clear()
        rows = s.exec(select(Incident.urgency, Incident.status, func.count()).where(
            Incident.status.in_([st.value for st in IncidentStatus if st.is_open])
        ).group_by(Incident.urgency, Incident.status)).all()
        for urgency, status, n in rows:
            OPEN_INCIDENTS.labels(urgency, status).set(n)
        OVERDUE_INCIDENTS.set(s.exec(select(func.count()).select_from(Incident).where(
            Incident.next_step_at < utcnow(), Incident.status == IncidentStatus.queued.value)).one())
        UNTRIAGED.set(s.exec(select(func.count()).select_from(Post).where(
            Post.triage_state == TriageState.pending.value)).one())
        FAILED_MESSAGES.set(s.exec(select(func.count()).select_from(OutboundMessage).where(
            OutboundMessage.status == DeliveryStatus.failed.value)).one())
    for name, q in ctx.queues.items():
        QUEUE_DEPTH.labels(name).set(q.count)
