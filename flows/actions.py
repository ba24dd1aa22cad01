"""User actions shared by the HTML pages and the JSON API: one transaction, then the Redis half.

Every function raises escalation.service.ActionError when the action does not apply (the UI
shows its message). After the transaction commits: XACK the dispatch-stream entries the action
took out of the queue, enqueue outbound messages and new chains, and tell every dashboard.
If the process dies in between, the sweep re-drives each of those from the database; so an
action whose commit succeeded succeeds even while Redis is down (the Redis half is logged and
left to the sweep, which XACKs, publishes and queues the messages once Redis is back).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from sqlmodel import Session

from flows import metrics, publish
from flows.context import MESSAGES_QUEUE, AppContext
from flows.escalate import policy_for, schedule
from flows.live import publish_live
from models.access import audit, can
from escalation import incident_actions, post_actions, service
from models.tables import Incident, User

log = logging.getLogger("flare.actions")


def _run(ctx: AppContext, user: User, event: str, work: Callable[[Session], service.Outcome],
         detail: dict | None = None) -> service.Outcome:
    with Session(ctx.engine, expire_on_commit=False) as s:
        outcome = work(s)
        audit(s, user.username, event, "incident" if outcome.incident_id else "post",
              str(outcome.incident_id or (detail or {}).get("post_id", "")), detail or {})
        s.commit()
    try:
        _after_commit(ctx, outcome)
        publish_live(ctx, {"type": event, "incident_id": outcome.incident_id, "by": user.username,
                           **(detail or {})})
    except redis.RedisError as exc:
        log.warning("%s (incident %s) committed; Redis unavailable (%s): the sweep finishes the queue "
                    "and the messages once it is back", event, outcome.incident_id, exc)
    return outcome


def _after_commit(ctx: AppContext, outcome: service.Outcome) -> None:
    publish.dispatch_outcome(ctx, outcome)
    for entry_id in outcome.extra_entries_to_ack:
        ctx.dispatch.ack(entry_id)
    if outcome.seconds_to_ack is not None:
        metrics.observe_ack(outcome.urgency, outcome.seconds_to_ack)
        if outcome.sla_breached_late:
            metrics.count_sla_breach(ctx, outcome.urgency)
    if outcome.incident_id and not outcome.needs_queue:
        _reschedule(ctx, outcome.incident_id)


def _reschedule(ctx: AppContext, incident_id: int) -> None:
    """An action may leave a new due time (e.g. a reminder after acknowledgement): arm it."""
    with Session(ctx.engine) as s:
        incident = s.get(Incident, incident_id)
        if incident is None or incident.next_step_at is None:
            return
        due_at, token = incident.next_step_at, incident.escalation_token
    schedule(ctx, incident_id, token, due_at)


def acknowledge(ctx: AppContext, incident_id: int, user: User) -> service.Outcome:
    outcome = _run(ctx, user, "acknowledged", lambda s: incident_actions.acknowledge_claimed(
        s, incident_id, user.username, ctx.settings.service, ctx.dm_possible))
    if ctx.settings.cad.webhook_url:
        # Hand the acknowledged incident to the centre's CAD (signed, retried, logged).
        try:
            ctx.queues[MESSAGES_QUEUE].enqueue("evidence.cad.deliver_incident_job", incident_id,
                                               job_timeout=300)
        except redis.RedisError as exc:  # the acknowledgement stands; the hand-off needs a person
            log.error("incident %s acknowledged but its CAD hand-off was not queued (Redis unavailable: %s); "
                      "export it from the incident page", incident_id, exc)
    return outcome


def claim(ctx: AppContext, incident_id: int, user: User) -> service.Outcome:
    return _run(ctx, user, "claimed", lambda s: incident_actions.claim(
        s, incident_id, user.username, ctx.settings.service, ctx.dm_possible))


def take_over(ctx: AppContext, incident_id: int, user: User) -> service.Outcome:
    """Take a colleague's claimed incident: audited (whose claim it was), and an event in its log."""
    detail: dict = {}

    def work(s: Session) -> service.Outcome:
        outcome = incident_actions.take_over(s, incident_id, user.username, ctx.settings.service, ctx.dm_possible)
        detail["from"] = outcome.taken_from  # read under the incident's lock, before the audit entry
        return outcome

    return _run(ctx, user, "taken_over", work, detail)


def release(ctx: AppContext, incident_id: int, user: User) -> service.Outcome:
    return _run(ctx, user, "released", lambda s: incident_actions.release(
        s, incident_id, user.username, may_override=can(user.role, "supervise")))


def reassign(ctx: AppContext, incident_id: int, user: User, to_username: str) -> service.Outcome:
    return _run(ctx, user, "reassigned", lambda s: incident_actions.reassign(
        s, incident_id, user.username, to_username, ctx.settings.service, ctx.dm_possible,
        may_override=can(user.role, "supervise"), eligible=lambda u: can(u.role, "acknowledge")),
        {"to": to_username})


def resolve(ctx: AppContext, incident_id: int, user: User, note: str = "") -> service.Outcome:
    return _run(ctx, user, "resolved", lambda s: incident_actions.resolve(
        s, incident_id, user.username, ctx.settings.service, ctx.dm_possible, note))


def close(ctx: AppContext, incident_id: int, user: User, note: str = "") -> service.Outcome:
    return _run(ctx, user, "closed", lambda s: incident_actions.close(
        s, incident_id, user.username, ctx.settings.service, ctx.dm_possible, note))


def false_alarm(ctx: AppContext, incident_id: int, user: User, note: str = "") -> service.Outcome:
    return _run(ctx, user, "false_alarm", lambda s: incident_actions.false_alarm(
        s, incident_id, user.username, ctx.settings.service, ctx.dm_possible, note))


def escalate_post(ctx: AppContext, post_id: int, user: User, urgency: str = "high") -> int:
    outcome = _run(ctx, user, "escalated", lambda s: post_actions.escalate_post(
        s, post_id, user.username, urgency, ctx.settings.service, ctx.dm_possible,
        policy_for(ctx)), {"post_id": post_id, "urgency": urgency})
    assert outcome.incident_id is not None  # escalate_post always names an incident or raises
    return outcome.incident_id


def dispose_post(ctx: AppContext, post_id: int, user: User, disposition: str) -> service.Outcome:
    return _run(ctx, user, "disposed", lambda s: post_actions.dispose_post(
        s, post_id, user.username, disposition, ctx.settings.service, ctx.dm_possible),
        {"post_id": post_id, "disposition": disposition})


def attach_post(ctx: AppContext, post_id: int, incident_id: int, user: User) -> service.Outcome:
    return _run(ctx, user, "attached", lambda s: post_actions.attach_to_incident(
        s, post_id, incident_id, user.username, ctx.settings.service, ctx.dm_possible),
        {"post_id": post_id})


def reply(ctx: AppContext, incident_id: int, post_id: int, user: User, text: str, kind: str = "dm") -> int:
    outcome = _run(ctx, user, "reply_queued", lambda s: post_actions.reply(
        s, incident_id, post_id, user.username, text, kind, ctx.dm_possible),
        {"post_id": post_id, "kind": kind})
    return outcome.message_ids[0]


def merge(ctx: AppContext, incident_ids: list[int], user: User) -> int:
    outcome = _run(ctx, user, "merged", lambda s: incident_actions.merge(
        s, list(incident_ids), user.username, ctx.settings.service, ctx.dm_possible),
        {"merged": sorted(set(incident_ids))})
    assert outcome.incident_id is not None
    return outcome.incident_id


def split(ctx: AppContext, incident_id: int, post_ids: list[int], user: User) -> int:
    outcome = _run(ctx, user, "split", lambda s: incident_actions.split(
        s, incident_id, list(post_ids), user.username), {"from": incident_id, "post_ids": sorted(set(post_ids))})
    assert outcome.incident_id is not None
    return outcome.incident_id
