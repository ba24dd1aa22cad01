"""Wires escalation steps to the external notifier registry and records every page sent.

The registry is built once per context from settings; tests and deployments with custom
channels install their own with `set_registry`.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import update
from sqlmodel import Session, select

from flows.context import AppContext
from escalation.notifiers import NotifierRegistry, build_registry, page_text
from models.enums import EventKind
from models.events import append_event, batch_appends, held, load_heads
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
    return notify_many(ctx, [(incident, step)])[0]


def notify_many(ctx: AppContext, pages: Sequence[tuple[Incident, dict]]) -> list[list[dict]]:
    """Page every target of each (incident, step), then append one `notification` event per
    attempt, all in one transaction (a burst's step timer fires hundreds of steps at once).
    One incident whose notifier raises is logged and left without pages; the others are sent."""
    base = ctx.settings.dashboard.public_base_url or (
        f"http://{ctx.settings.dashboard.host}:{ctx.settings.dashboard.port}")
    sent: list[list[dict]] = []
    for incident, step in pages:
        subject, body = page_text(ctx.settings.service.name, incident.id, incident.urgency, incident.category,
                                  str(step.get("action", "")), f"{base.rstrip('/')}/queue")
        try:
            sent.append(registry(ctx).notify(list(step.get("targets") or []), subject, body))
        except Exception:  # noqa: BLE001 - a broken notifier must not stop the other pages
            log.exception("notifier failed for incident %s", incident.id)
            sent.append([])
    if any(sent):
        _record(ctx, pages, sent)
    for (incident, _), results in zip(pages, sent, strict=True):
        for result in results:
            if not result["ok"]:
                log.warning("page for incident %s to %s via %s failed: %s", incident.id, result["target"],
                            result["channel"] or "-", result["error"])
    return sent


def _record(ctx: AppContext, pages: Sequence[tuple[Incident, dict]], sent: list[list[dict]]) -> None:
    """The pages' `notification` events in one transaction: the incidents locked in id order (on
    SQLite, the database's write lock), their chain heads read in one statement, and the events
    written in one INSERT."""
    ids = sorted({incident.id for (incident, _), results in zip(pages, sent, strict=True) if results})
    with Session(ctx.engine) as s:
        if s.get_bind().dialect.name == "sqlite":
            s.execute(update(Incident).where(Incident.id.in_(ids)).values(id=Incident.id))
        else:
            s.exec(select(Incident.id).where(Incident.id.in_(ids)).order_by(Incident.id).with_for_update()).all()
        batch_appends(s)
        held(s, ids)
        load_heads(s, ids)
        for (incident, step), results in zip(pages, sent, strict=True):
            for result in results:
                append_event(s, incident.id, EventKind.notification, "escalation",
                             {"action": step.get("action"), **result})
        s.commit()
