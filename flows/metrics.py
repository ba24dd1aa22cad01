"""Prometheus metrics.

Gauges are recomputed from the database/Redis at scrape time. Counters for things that happen in
worker processes (escalation steps, SLA breaches) live in Redis hashes, so the dashboard's
/metrics shows the whole deployment rather than only its own process. Time-to-acknowledge is a
histogram observed where acknowledgements happen (the dashboard process).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

from prometheus_client import REGISTRY, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import Session, select

from flows.context import AppContext
from models.enums import DeliveryStatus, IncidentStatus, TriageState
from models.tables import Incident, OutboundMessage, Post
from models.types import utcnow

STEPS_KEY = "flare:metrics:escalation_steps"
SLA_KEY = "flare:metrics:sla_breaches"

OPEN_INCIDENTS = Gauge("flare_open_incidents", "Open incidents", ["urgency", "status"])
OVERDUE_INCIDENTS = Gauge("flare_overdue_escalations", "Open incidents whose next escalation step is overdue")
UNACKED_PAST_SLA = Gauge("flare_unacknowledged_past_sla",
                         "Queued incidents still unacknowledged after their policy's ack SLA", ["urgency"])
QUEUE_DEPTH = Gauge("flare_queue_depth", "Jobs waiting per RQ queue", ["queue"])
UNTRIAGED = Gauge("flare_untriaged_posts", "Posts persisted but not yet triaged")
FAILED_MESSAGES = Gauge("flare_reply_delivery_failures", "Outbound messages that failed after all retries")
TIME_TO_ACK = Histogram("flare_time_to_acknowledge_seconds",
                        "Seconds from entering the dispatch queue to a dispatcher's acknowledgement",
                        ["urgency"], buckets=(5, 10, 15, 30, 45, 60, 90, 120, 180, 300, 600, 1800, 3600))


class _RedisCounters(Collector):
    """Exposes the deployment-wide counters kept in Redis."""

    def __init__(self) -> None:
        self.ctx: AppContext | None = None

    def collect(self) -> Iterator[CounterMetricFamily]:
        if self.ctx is None:
            return
        steps = CounterMetricFamily("flare_escalation_steps", "Escalation steps fired", labels=["action"])
        for action, n in self.ctx.redis.hgetall(STEPS_KEY).items():
            steps.add_metric([_text(action)], float(n))
        yield steps
        breaches = CounterMetricFamily("flare_sla_breaches", "Incidents that passed their ack SLA",
                                       labels=["urgency"])
        for urgency, n in self.ctx.redis.hgetall(SLA_KEY).items():
            breaches.add_metric([_text(urgency)], float(n))
        yield breaches


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


REDIS_COUNTERS = _RedisCounters()
REGISTRY.register(REDIS_COUNTERS)


def count_sla_breach(ctx: AppContext, urgency: str) -> None:
    ctx.redis.hincrby(SLA_KEY, urgency, 1)


def count_escalations(ctx: AppContext, steps: Counter[str], breaches: Counter[str]) -> None:
    """Fired steps (by action) and SLA breaches (by urgency), in one round trip."""
    if not (steps or breaches):
        return
    with ctx.redis.pipeline(transaction=False) as pipe:
        for action, n in steps.items():
            pipe.hincrby(STEPS_KEY, action, n)
        for urgency, n in breaches.items():
            pipe.hincrby(SLA_KEY, urgency, n)
        pipe.execute()


def observe_ack(urgency: str, seconds: float) -> None:
    TIME_TO_ACK.labels(urgency).observe(max(0.0, seconds))


def refresh_gauges(ctx: AppContext) -> None:
    REDIS_COUNTERS.ctx = ctx
    now = utcnow()
    with Session(ctx.engine) as s:
        OPEN_INCIDENTS.clear()
        rows = s.exec(select(Incident.urgency, Incident.status, func.count()).where(
            Incident.status.in_([st.value for st in IncidentStatus if st.is_open])
        ).group_by(Incident.urgency, Incident.status)).all()
        for urgency, status, n in rows:
            OPEN_INCIDENTS.labels(urgency, status).set(n)
        OVERDUE_INCIDENTS.set(s.exec(select(func.count()).select_from(Incident).where(
            Incident.next_step_at < now, Incident.status == IncidentStatus.queued.value)).one())
        UNACKED_PAST_SLA.clear()
        waiting = s.exec(select(Incident.urgency, Incident.queued_at, Incident.policy_snapshot).where(
            Incident.status == IncidentStatus.queued.value).limit(10_000)).all()
        past: dict[str, int] = {}
        for urgency, queued_at, snapshot in waiting:
            sla = float((snapshot or {}).get("ack_sla") or 0)
            if sla > 0 and queued_at is not None and queued_at + timedelta(seconds=sla) < now:
                past[urgency] = past.get(urgency, 0) + 1
        for urgency, n in past.items():
            UNACKED_PAST_SLA.labels(urgency).set(n)
        UNTRIAGED.set(s.exec(select(func.count()).select_from(Post).where(
            Post.triage_state == TriageState.pending.value)).one())
        FAILED_MESSAGES.set(s.exec(select(func.count()).select_from(OutboundMessage).where(
            OutboundMessage.status == DeliveryStatus.failed.value)).one())
    for name, q in ctx.queues.items():
        QUEUE_DEPTH.labels(name).set(q.count)
