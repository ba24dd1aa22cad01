"""Dispatcher actions on incidents. Each runs inside the caller's transaction, checks that the
transition is valid (raising ActionError with a message for the UI) and records who/when in the
incident's event log. The Redis half (XACK, jobs, live updates) runs after the caller commits.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable

from sqlmodel import Session, select

from config import ServiceSettings
from escalation.service import (
    QUEUED_URGENCIES,
    ActionError,
    Outcome,
    locked_incident,
    incident_summary,
    acknowledge,
    acknowledged_messages,
    check_claim,
    stop_chain,
)
from models.enums import EventKind, IncidentStatus, Urgency
from models.events import append_event, incident_state, post_sha256
from models.seams import DmPossible
from models.tables import Incident, IncidentPost, Post, TriageRecord, User
from models.types import utcnow

UNACKNOWLEDGED = (IncidentStatus.new.value, IncidentStatus.queued.value)


def _open(session: Session, incident_id: int) -> Incident:
    incident = locked_incident(session, incident_id)
    if not IncidentStatus(incident.status).is_open:
        raise ActionError(f"incident {incident_id} is already {incident.status}")
    return incident


def _seen_by(session: Session, incident: Incident, username: str, service: ServiceSettings,
             dm_possible: DmPossible, outcome: Outcome) -> None:
    """Acting on an unacknowledged incident means a person has seen it: acknowledge it first."""
    if incident.status not in UNACKNOWLEDGED:
        return
    ack = acknowledge(session, incident.id, username, service, dm_possible)
    outcome.message_ids += ack.message_ids
    outcome.seconds_to_ack, outcome.urgency = ack.seconds_to_ack, ack.urgency
    outcome.sla_breached_late = ack.sla_breached_late
    outcome.stream_entry_to_ack = ack.stream_entry_to_ack


def acknowledge_claimed(session: Session, incident_id: int, username: str, service: ServiceSettings,
                        dm_possible: DmPossible) -> Outcome:
    """A person acknowledges: refused on an incident a colleague has claimed."""
    check_claim(locked_incident(session, incident_id), username)
    return acknowledge(session, incident_id, username, service, dm_possible)


def take_over(session: Session, incident_id: int, username: str, service: ServiceSettings,
              dm_possible: DmPossible) -> Outcome:
    """Take an incident a colleague has claimed (they are away, or it cannot wait): the claim
    moves to this person, and the incident's event log records from whom."""
    incident = _open(session, incident_id)
    if not incident.claimed_by:
        raise ActionError(f"incident {incident_id} is not claimed by anyone: claim it")
    if incident.claimed_by == username:
        raise ActionError(f"incident {incident_id} is already yours")
    outcome = Outcome(incident_id=incident.id, stream_entry_to_ack=incident.stream_entry_id)
    _seen_by(session, incident, username, service, dm_possible, outcome)
    previous = incident.claimed_by
    incident.claimed_by = username
    incident.updated_at = utcnow()
    append_event(session, incident.id, EventKind.taken_over, username,
                 {"from": previous, "to": username, **incident_state(incident)})
    outcome.taken_from = previous
    return outcome


def claim(session: Session, incident_id: int, username: str, service: ServiceSettings,
          dm_possible: DmPossible) -> Outcome:
    incident = _open(session, incident_id)
    outcome = Outcome(incident_id=incident.id, stream_entry_to_ack=incident.stream_entry_id)
    if incident.claimed_by and incident.claimed_by != username:
        raise ActionError(f"incident {incident_id} is already claimed by {incident.claimed_by}; "
                          "ask them or a supervisor to reassign it")
    if incident.claimed_by == username:
        return outcome
    _seen_by(session, incident, username, service, dm_possible, outcome)
    incident.claimed_by = username
    incident.updated_at = utcnow()
    append_event(session, incident.id, EventKind.claimed, username, {})
    return outcome


def release(session: Session, incident_id: int, username: str, may_override: bool = False) -> Outcome:
    incident = _open(session, incident_id)
    if not incident.claimed_by:
        raise ActionError(f"incident {incident_id} is not claimed by anyone")
    if incident.claimed_by != username and not may_override:
        raise ActionError(f"incident {incident_id} is claimed by {incident.claimed_by}, not you")
    previous = incident.claimed_by
    incident.claimed_by = ""
    incident.updated_at = utcnow()
    append_event(session, incident.id, EventKind.released, username, {"was_claimed_by": previous})
    return Outcome(incident_id=incident.id)


def reassign(session: Session, incident_id: int, username: str, to_username: str,
             service: ServiceSettings, dm_possible: DmPossible, may_override: bool = False,
             eligible: Callable[[User], bool] = lambda _u: True) -> Outcome:
    incident = _open(session, incident_id)
    target = session.exec(select(User).where(User.username == to_username)).first()
    if target is None or not target.active:
        raise ActionError(f"there is no active user called {to_username!r}")
    if not eligible(target):
        raise ActionError(f"{to_username} ({target.role}) cannot take incidents")
    if incident.claimed_by and incident.claimed_by != username and not may_override:
        raise ActionError(f"incident {incident_id} is claimed by {incident.claimed_by}; "
                          "only they or a supervisor can reassign it")
    outcome = Outcome(incident_id=incident.id, stream_entry_to_ack=incident.stream_entry_id)
    _seen_by(session, incident, username, service, dm_possible, outcome)
    previous = incident.claimed_by
    incident.claimed_by = to_username
    incident.updated_at = utcnow()
    append_event(session, incident.id, EventKind.reassigned, username, {"from": previous, "to": to_username})
    return outcome


def _finish(session: Session, incident_id: int, username: str, note: str, kind: EventKind,
            service: ServiceSettings, dm_possible: DmPossible, tell_reporter: bool) -> Outcome:
    incident = locked_incident(session, incident_id)
    if kind == EventKind.closed and incident.status == IncidentStatus.resolved.value:
        pass  # resolved incidents are closed once the paperwork is done
    elif not IncidentStatus(incident.status).is_open:
        raise ActionError(f"incident {incident_id} is already {incident.status}")
    check_claim(incident, username)
    outcome = Outcome(incident_id=incident.id, stream_entry_to_ack=incident.stream_entry_id,
                      urgency=incident.urgency)
    if tell_reporter:
        _seen_by(session, incident, username, service, dm_possible, outcome)
    now = utcnow()
    if kind == EventKind.resolved:
        incident.status, incident.resolved_at = IncidentStatus.resolved.value, now
    else:
        incident.status, incident.closed_at = IncidentStatus.closed.value, now
    stop_chain(incident)
    incident.updated_at = now
    append_event(session, incident.id, kind, username, {"note": note[:2000], **incident_state(incident)})
    return outcome


def resolve(session: Session, incident_id: int, username: str, service: ServiceSettings,
            dm_possible: DmPossible, note: str = "") -> Outcome:
    return _finish(session, incident_id, username, note, EventKind.resolved, service, dm_possible, True)


def close(session: Session, incident_id: int, username: str, service: ServiceSettings,
          dm_possible: DmPossible, note: str = "") -> Outcome:
    return _finish(session, incident_id, username, note, EventKind.closed, service, dm_possible, True)


def false_alarm(session: Session, incident_id: int, username: str, service: ServiceSettings,
                dm_possible: DmPossible, note: str = "") -> Outcome:
    # No "a dispatcher has seen your message" here: nothing is being sent to help them.
    return _finish(session, incident_id, username, note, EventKind.false_alarm, service, dm_possible, False)


def _move_posts(session: Session, post_ids: list[int], source: Incident, dest: Incident,
                username: str, reason: str) -> None:
    rows = session.exec(select(IncidentPost).where(IncidentPost.incident_id == source.id,
                                                   IncidentPost.post_id.in_(post_ids))).all()
    for row in rows:
        row.incident_id = dest.id
        row.attached_by, row.reason, row.attached_at = username, reason, utcnow()
        session.add(row)
        post = session.get(Post, row.post_id)
        append_event(session, dest.id, EventKind.post_attached, username,
                     {"post_id": row.post_id, "reason": reason, "from_incident": source.id,
                      **({"post_sha256": post_sha256(post)} if post is not None else {})})
    source.report_count = max(0, source.report_count - len(rows))
    dest.report_count += len(rows)
    for inc in (source, dest):
        inc.summary = incident_summary(inc.category, inc.report_count)
        inc.updated_at = utcnow()
    session.flush()


def merge(session: Session, incident_ids: list[int], username: str, service: ServiceSettings,
          dm_possible: DmPossible) -> Outcome:
    """Fold several incidents into the most urgent (then oldest) one, which survives."""
    ids = sorted(set(incident_ids))
    if len(ids) < 2:
        raise ActionError("choose at least two incidents to merge")
    incidents = [_open(session, i) for i in ids]  # locked in id order: no deadlock between mergers
    for incident in incidents:
        check_claim(incident, username)
    survivor = min(incidents, key=lambda i: (Urgency(i.urgency).rank, i.created_at, i.id))
    others = [i for i in incidents if i.id != survivor.id]
    outcome = Outcome(incident_id=survivor.id, urgency=survivor.urgency)
    if any(i.status == IncidentStatus.acknowledged.value for i in incidents):
        # Whoever merges has seen them all; an acknowledged part makes the whole acknowledged.
        _seen_by(session, survivor, username, service, dm_possible, outcome)
    for other in others:
        member_ids = list(session.exec(select(IncidentPost.post_id).where(IncidentPost.incident_id == other.id)))
        _move_posts(session, member_ids, other, survivor, username, f"merged from incident {other.id}")
        survivor.silent = survivor.silent or other.silent
        if not survivor.location_text and other.location_text:
            survivor.location_text, survivor.lat, survivor.lon = other.location_text, other.lat, other.lon
            survivor.location_confidence = other.location_confidence
        other.status, other.closed_at = IncidentStatus.closed.value, utcnow()
        stop_chain(other)
        append_event(session, other.id, EventKind.merged, username, {"into": survivor.id, **incident_state(other)})
        if other.stream_entry_id:
            outcome.extra_entries_to_ack.append(other.stream_entry_id)
    append_event(session, survivor.id, EventKind.merged, username, {"from": [o.id for o in others]})
    if survivor.status == IncidentStatus.acknowledged.value:
        outcome.message_ids += acknowledged_messages(session, survivor, username, service, dm_possible)
    return outcome


def split(session: Session, incident_id: int, post_ids: list[int], username: str) -> Outcome:
    """Move some reports into a new incident, which goes through the dispatch queue itself."""
    source = _open(session, incident_id)
    check_claim(source, username)
    members = set(session.exec(select(IncidentPost.post_id).where(IncidentPost.incident_id == source.id)))
    chosen = sorted(set(post_ids))
    if not chosen:
        raise ActionError("choose the reports to split off")
    if not set(chosen) <= members:
        raise ActionError(f"posts {sorted(set(chosen) - members)} are not part of incident {incident_id}")
    if set(chosen) == members:
        raise ActionError("an incident cannot be split into nothing: leave at least one report behind")
    new = Incident(
        status=IncidentStatus.new.value, urgency=source.urgency, category=source.category,
        summary=incident_summary(source.category, 0), silent=source.silent, is_test=source.is_test,
        policy_snapshot=dict(source.policy_snapshot or {}), escalation_token=secrets.token_hex(8),
        report_count=0,
    )
    best = _best_location(session, chosen)
    if best:
        new.location_text, new.lat, new.lon = best.get("text", ""), best.get("lat"), best.get("lon")
        new.location_confidence = float(best.get("confidence") or 0.0)
    session.add(new)
    session.flush()
    append_event(session, new.id, EventKind.opened, username,
                 {"urgency": new.urgency, "category": new.category, "reason": f"split from incident {source.id}",
                  **incident_state(new)})
    _move_posts(session, chosen, source, new, username, f"split from incident {source.id}")
    append_event(session, new.id, EventKind.split, username, {"from": source.id, "post_ids": chosen})
    append_event(session, source.id, EventKind.split, username, {"into": new.id, "post_ids": chosen})
    return Outcome(incident_id=new.id, created=True, needs_queue=new.urgency in QUEUED_URGENCIES,
                   urgency=new.urgency)


def _best_location(session: Session, post_ids: list[int]) -> dict | None:
    records = session.exec(select(TriageRecord).where(TriageRecord.post_id.in_(post_ids))).all()
    for record in records:
        for loc in record.locations or []:
            if loc.get("lat") is not None:
                return loc
    return None
