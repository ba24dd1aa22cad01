"""The Redis half of an action, run after its transaction committed: the dispatch stream, the
escalation chain, outbound messages and the live feed. Anything lost here (a crash between the
commit and these calls) is re-driven by the sweep, because the database says what is due.
"""
from __future__ import annotations

import logging
import time
from datetime import timedelta

import redis
from rq import Queue
from sqlmodel import Session

from flows import escalate
from flows.context import MESSAGES_QUEUE, AppContext
from escalation import service
from models.db import get_locked, get_locked_many
from models.enums import IncidentStatus
from models.tables import Incident

log = logging.getLogger("flare.publish")
SEND_FUNCTION = "flows.sending.send_message"  # one message, later (a retry's delayed job)
SEND_PAGE_FUNCTION = "flows.sending.send_messages"  # a page of messages, now
SEND_PAGE = 16  # messages per send job: small enough that the first reply is not held back


def _send_job_id(message_id: int) -> str:
    return f"send-{message_id}-{int(time.time() * 1000)}"


def enqueue_send(ctx: AppContext, message_id: int, delay: float = 0.0) -> None:
    kwargs = dict(job_id=_send_job_id(message_id), job_timeout=60)
    if delay > 0:
        ctx.queues[MESSAGES_QUEUE].enqueue_in(timedelta(seconds=delay), SEND_FUNCTION, message_id, **kwargs)
    else:
        ctx.queues[MESSAGES_QUEUE].enqueue(SEND_FUNCTION, message_id, **kwargs)



def enqueue_sends(ctx: AppContext, message_ids: list[int]) -> None:
    """Queue many messages for sending now: pages of SEND_PAGE per job, one Redis round trip."""
    if message_ids:
        pages = [message_ids[i:i + SEND_PAGE] for i in range(0, len(message_ids), SEND_PAGE)]
        ctx.queues[MESSAGES_QUEUE].enqueue_many([
            Queue.prepare_data(SEND_PAGE_FUNCTION, (page,), job_id=_send_job_id(page[0]), timeout=120)
            for page in pages])


PUBLISH_LOCK_MS = 10_000  # one publisher per incident at a time; expires if that one dies


def _publish_lock(incident_id: int) -> str:
    return f"flare:publish-lock:{incident_id}"


def publish_incident(ctx: AppContext, incident_id: int) -> None:
    """Put an incident in front of a dispatcher once: queued in the database (the queue page reads
    it from there) and in the dispatch stream (the DB row records the entry id).

    The triage job and the sweep can both get here for a new incident; a short Redis lock stops
    them both publishing it (two stream entries, one never acknowledged). A holder that dies
    lets the lock expire and the sweep publishes it then. While Redis is unreachable the incident
    is queued in the database alone (the row lock, on SQLite the write lock, keeps that to one
    publisher), and the sweep adds its stream entry when Redis answers again (queued incidents
    without one), without queueing it twice.
    """
    lock = _publish_lock(incident_id)
    try:
        if not ctx.redis.set(lock, "1", nx=True, px=PUBLISH_LOCK_MS):
            return
        streaming = True
    except redis.RedisError:
        streaming = False
    fresh = False
    try:
        with Session(ctx.engine, expire_on_commit=False) as s:
            # Locked before its chain head is read: a triage batch joining reports to it holds the
            # row until it commits, and appending behind its back (a FK check waiting on that row
            # while the batch waits on our event's seq) was a deadlock on PostgreSQL.
            incident = get_locked(s, Incident, incident_id)
            if incident is None or incident.stream_entry_id:
                return
            fresh = incident.status == IncidentStatus.new.value
            if not fresh and incident.status != IncidentStatus.queued.value:
                return
            entry_id = ""
            if streaming:
                try:
                    entry_id = ctx.dispatch.publish(incident.id, incident.urgency)
                except redis.RedisError as exc:  # Redis went between the lock and the XADD
                    log.warning("incident %s queued without its stream entry (%s)", incident_id, exc)
            if fresh:
                service.mark_queued(s, incident, entry_id)
            elif entry_id:
                incident.stream_entry_id = entry_id  # the stream catches up; queued_at stays
            else:
                return
            s.add(incident)
            s.commit()
    finally:
        if streaming:
            try:
                ctx.redis.delete(lock)
            except redis.RedisError:  # it expires by itself
                pass
    if fresh:
        escalate.start_chain(ctx, incident_id)


def publish_queued(ctx: AppContext, incident_ids: list[int]) -> None:
    """The Redis half of incidents their own transaction queued in the database
    (service.queue_now), for a whole triage group at once: their dispatch-stream entries in one
    round trip, then the first steps of their chains in one transaction (escalate.start_chains),
    instead of a lock, a transaction and three chain transactions per incident.

    The entries are added under the per-incident locks `publish_incident` takes, and only for
    rows still without one once they are locked: the sweep, which adds the entry of any queued
    incident without one, may be at the same incidents. Anything lost here is re-driven (the
    sweep adds missing entries, every worker's step timer fires due chains)."""
    ids = list(dict.fromkeys(incident_ids))
    if not ids:
        return
    try:
        _stream_entries(ctx, ids)
    except redis.RedisError as exc:
        log.warning("%d queued incidents without their stream entries (%s); the sweep adds them", len(ids), exc)
    escalate.start_chains(ctx, ids)


def _stream_entries(ctx: AppContext, ids: list[int]) -> None:
    with ctx.redis.pipeline(transaction=False) as pipe:
        for incident_id in ids:
            pipe.set(_publish_lock(incident_id), "1", nx=True, px=PUBLISH_LOCK_MS)
        owned = [incident_id for incident_id, ok in zip(ids, pipe.execute(), strict=True) if ok]
    if not owned:
        return
    try:
        with Session(ctx.engine, expire_on_commit=False) as s:
            waiting = {incident.id: incident for incident in get_locked_many(s, Incident, owned)
                       if incident.status == IncidentStatus.queued.value and not incident.stream_entry_id}
            order = [incident_id for incident_id in owned if incident_id in waiting]  # most urgent first
            if not order:
                return
            entries = ctx.dispatch.publish_many([(incident_id, waiting[incident_id].urgency) for incident_id in order])
            for incident_id, entry_id in zip(order, entries, strict=True):
                waiting[incident_id].stream_entry_id = entry_id  # queued_at and the queued event stay
            s.commit()
    finally:
        try:
            ctx.redis.delete(*[_publish_lock(incident_id) for incident_id in owned])
        except redis.RedisError:  # they expire by themselves
            pass


def dispatch_outcome(ctx: AppContext, outcome: service.Outcome) -> None:
    """The Redis half of an action, run after its transaction committed."""
    dispatch_outcomes(ctx, [outcome])


def dispatch_outcomes(ctx: AppContext, outcomes: list[service.Outcome]) -> None:
    """`dispatch_outcome` for a batch, in the order given (most urgent first): incidents reach
    the dispatch stream first, then every message is queued in one round trip."""
    try:
        publish_queued(ctx, [outcome.incident_id for outcome in outcomes if outcome.queued and outcome.incident_id])
    except Exception:  # noqa: BLE001 - a database blip: the sweep adds the entries, the step timer fires the chains
        log.exception("publishing %d queued incidents left to the sweep and the step timer",
                      sum(1 for outcome in outcomes if outcome.queued))
    for outcome in outcomes:
        try:
            if outcome.needs_queue and outcome.incident_id:
                publish_incident(ctx, outcome.incident_id)
            if outcome.stream_entry_to_ack:
                ctx.dispatch.ack(outcome.stream_entry_to_ack)
        except redis.RedisError as exc:  # one incident's Redis half never holds back the next's
            log.warning("incident %s: Redis half left to the sweep (%s)", outcome.incident_id, exc)
        except Exception:  # noqa: BLE001 - nor does any other failure (a database blip): the sweep re-publishes
            log.exception("incident %s: publishing left to the sweep", outcome.incident_id)
    enqueue_sends(ctx, [mid for outcome in outcomes for mid in outcome.message_ids])

