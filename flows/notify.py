"""Wires escalation steps to the external notifier registry and records every page sent.

The registry is built once per context from settings; tests and deployments with custom
channels install their own with `set_registry`.
"""
from __future__ import annotations

import logging

from sqlmodel import Session

from flows.context import AppContext
from escalation.notifiers import NotifierRegistry, build_registry, page_text
from models.enums import EventKind
from models.events import append_event
from models.tables import Incident

log = logging.getLogger("flare.notify")
_ATTR = "_notifier_registry"  # kept on the context: one registry per process context


def registry(ctx: AppContext) -> NotifierRegistry:
    reg = getattr(ctx, _ATTR, None)
    if reg is None:
        reg = build_registry(ctx.settings)
        setattr(ctx, _ATTR, reg)
    return reg


def set_registry(ctx: AppContext, reg: NotifierRegistry) -> None:
    setattr(ctx, _ATTR, reg)


def notify_all(ctx: AppContext, incident: Incident, step: dict) -> list[dict]:
    """Page every target of the step and append one `notification` event per attempt."""
    base = ctx.settings.dashboard.public_base_url or (
        f"http://{ctx.settings.dashboard.host}:{ctx.settings.dashboard.port}")
    subject, body = page_text(ctx.settings.service.name, incident.id, incident.urgency, incident.category,
                              str(step.get("action", "")), f"{base.rstrip('/')}/queue")
    targets = list(step.get("targets") or [])
    results = registry(ctx).notify(targets, subject, body)
    with Session(ctx.engine) as s:
        for result in results:
            append_event(s, incident.id, EventKind.notification, "escalation",
                         {"action": step.get("action"), **result})
        s.commit()
    for result in results:
        if not result["ok"]:
            log.warning("page for incident %s to %s via %s failed: %s", incident.id, result["target"],
                        result["channel"] or "-", result["error"])
    return results
