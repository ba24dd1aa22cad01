"""Escalation metrics: time-to-acknowledge, steps fired, open/overdue/past-SLA, delivery failures."""
from __future__ import annotations

from esc_helpers import AheadClock, make_user, open_critical
from prometheus_client import REGISTRY, generate_latest
from sqlmodel import Session

from flows import actions, escalate, metrics
from flows.metrics import refresh_gauges
from models.tables import OutboundMessage


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_follow_the_escalation(ctx, monkeypatch):
    alice, _ = make_user(ctx, "alice")
    before_acks = sample("flare_time_to_acknowledge_seconds_count", urgency="critical")
    waiting = open_critical(ctx)
    acked = open_critical(ctx, text="second")
    actions.acknowledge(ctx, acked, alice)
    assert sample("flare_time_to_acknowledge_seconds_count", urgency="critical") == before_acks + 1
    with Session(ctx.engine) as s:
        msg = s.get(OutboundMessage, 1)
        msg.status = "failed"
        s.add(msg)
        s.commit()
    AheadClock(monkeypatch, metrics).ahead = 3.1  # the step timer's and the gauges'; FAST_POLICY: realert at 2 s, SLA at 3 s, notify_external at 4 s
    escalate.fire_due_steps(ctx)
    refresh_gauges(ctx)
    text = generate_latest(REGISTRY).decode()
    assert 'flare_escalation_steps_total{action="alert"} 2.0' in text
    assert 'flare_escalation_steps_total{action="realert"} 1.0' in text
    assert 'flare_sla_breaches_total{urgency="critical"} 1.0' in text
    assert sample("flare_open_incidents", urgency="critical", status="queued") == 1
    assert sample("flare_open_incidents", urgency="critical", status="acknowledged") == 1
    assert sample("flare_unacknowledged_past_sla", urgency="critical") == 1
    assert sample("flare_reply_delivery_failures") == 1
    assert waiting != acked
