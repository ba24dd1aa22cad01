"""What a triaged post does to incidents (`apply_triage`), acknowledgement, and the helpers the
actions share (incident_actions.py, post_actions.py). Each runs inside the caller's transaction
and records an event.

Redis side effects (publishing to the dispatch stream, XACK, enqueueing jobs) happen after the
caller commits; every one of them is re-driven by the sweep if the process dies first, so the
database is always the source of truth.
"""
from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime

from sqlalchemy import bindparam
from sqlmodel import Session, select

from config import ServiceSettings
from escalation import messages
from escalation.policy import Event, next_action
from models.seams import DmPossible, IncidentFinder, NoGrouping, PolicyFor
from models.db import get_locked
from models.domain import MessageRow, PossibleDuplicate, TriageOutput, TriageRow
from models.enums import (
    DeliveryStatus,
    Disposition,
    EventKind,
    IncidentStatus,
    MessageKind,
    MessagePurpose,
    TriageState,
    Urgency,
)
from models.events import append_event, incident_state, message_sha256, post_sha256, triage_sha256
from models.tables import Incident, IncidentEvent, IncidentPost, OutboundMessage, Post, TriageRecord
from models.types import utcnow

# Urgencies that go to the human-acknowledged dispatch queue.
QUEUED_URGENCIES = {Urgency.critical.value, Urgency.high.value}


class ActionError(ValueError):
    """An action that cannot apply to the incident in its current state (shown to the user)."""


@dataclass
class Outcome:
    incident_id: int | None = None
    created: bool = False
    needs_queue: bool = False
    message_ids: list[int] = field(default_factory=list)
    stream_entry_to_ack: str = ""
    # Further dispatch-stream entries to XACK (incidents merged away or closed together).
    extra_entries_to_ack: list[str] = field(default_factory=list)
    # Set when this action acknowledged the incident: for the time-to-acknowledge histogram.
    seconds_to_ack: float | None = None
    urgency: str = ""
    # Set when the acknowledgement itself found the SLA already passed (for the breach counter).
    sla_breached_late: bool = False
    # Set by a take-over: whose claim it was.
    taken_from: str = ""
    # Queued in the database by the action's own transaction (queue_now): its stream entry and
    # the first step of its chain follow the commit (flows.publish.publish_queued).
    queued: bool = False


def store_triage(session: Session, post: Post, out: TriageOutput, duration_ms: float) -> TriageRecord:
    record = TriageRecord(
        post_id=post.id, urgency=out.urgency, category=out.category, confidence=out.confidence,
        language=out.language, silent=out.silent, needs_review=out.needs_review,
        locations=[m.as_dict() for m in out.locations], signals=out.signals, reasons=out.reasons,
        scores=out.scores, model_version=out.model_version, duration_ms=duration_ms,
    )
    session.add(record)
    post.triage_state = TriageState.done.value
    return record


def triage_row(post: Post, out: TriageOutput, duration_ms: float) -> TriageRow:
    return TriageRow(
        post_id=post.id, urgency=out.urgency, category=out.category, confidence=out.confidence,
        language=out.language, silent=out.silent, needs_review=out.needs_review,
        locations=[m.as_dict() for m in out.locations], signals=out.signals, reasons=list(out.reasons),
        scores=out.scores, model_version=out.model_version, duration_ms=duration_ms)


_TRIAGE_COLUMNS = tuple(f.name for f in fields(TriageRow))


def insert_triage_rows(session: Session, rows: list[TriageRow]) -> None:
    # Shallow: the JSON columns' dicts and lists are written as they are (asdict would deep-copy).
    if rows:
        session.connection().execute(TriageRecord.__table__.insert(),
                                     [{name: getattr(row, name) for name in _TRIAGE_COLUMNS} for row in rows])


# What acting decides about a post itself, besides its claim (triage_state).
_DISPOSITION_COLUMNS = ("disposition", "disposition_by", "disposition_at", "is_test")


def write_dispositions(session: Session, posts: list[Post]) -> None:
    """Write what acting set on posts the session does not hold (the batch path acts on the
    posts it claimed without loading them again): their dispositions and drill marks, with the
    values apply_triage left on them, in one statement instead of an ORM flush of every post."""
    if posts:
        table = Post.__table__
        session.connection().execute(
            table.update().where(table.c.id == bindparam("b_post_id")),
            [{"b_post_id": post.id, **{name: getattr(post, name) for name in _DISPOSITION_COLUMNS}} for post in posts])


_DEFERRED = "flare_deferred_messages"
_MEMBERS = "flare_deferred_members"
# What the insert of a deferred message writes besides its MessageRow fields: OutboundMessage's
# defaults for a message not yet sent.
_UNSENT = {"status": DeliveryStatus.queued.value, "platform_message_id": "", "attempts": 0, "last_error": "",
           "sent_at": None, "next_attempt_at": None, "uncertain_since": None}
_MESSAGE_COLUMNS = tuple(f.name for f in fields(MessageRow) if f.name != "id")


def defer_messages(session: Session) -> None:
    """Batch mode for a session whose posts were just claimed for triage (so none of them has a
    message or a membership yet): `queue_message` skips its duplicate check (the unique key
    still guards) and keeps each message as a plain row (MessageRow, no ORM object) until
    `flush_deferred_messages`, which writes them all in one statement; `attach_post` keeps
    memberships as rows, written there in one statement too."""
    session.info[_DEFERRED] = []
    session.info[_MEMBERS] = []


def flush_deferred_messages(session: Session) -> list[MessageRow]:
    """Insert the deferred memberships and messages and record the messages' events; returns the
    messages with their ids."""
    deferred: list[MessageRow] = session.info.pop(_DEFERRED, [])
    members: list[dict] = session.info.pop(_MEMBERS, [])
    session.flush()
    if members:
        session.connection().execute(IncidentPost.__table__.insert(), members)
    if deferred:
        table = OutboundMessage.__table__
        ids = session.connection().execute(
            table.insert().returning(table.c.id, sort_by_parameter_order=True),
            [{**{name: getattr(msg, name) for name in _MESSAGE_COLUMNS}, **_UNSENT} for msg in deferred]).scalars().all()
        for msg, message_id in zip(deferred, ids, strict=True):
            msg.id = message_id
            _message_queued_event(session, msg)
    return deferred


def _message_queued_event(session: Session, msg: OutboundMessage | MessageRow) -> None:
    if msg.incident_id:
        append_event(session, msg.incident_id, EventKind.message_queued, msg.created_by,
                     {"message_id": msg.id, "post_id": msg.post_id, "purpose": msg.purpose, "kind": msg.kind,
                      "message_sha256": message_sha256(msg)})


def set_flag(incident: Incident, name: str, value) -> None:
    """Set (or with None clear) one of the incident's flags; a new dict so the change is saved."""
    flags = dict(incident.flags or {})
    if value is None:
        flags.pop(name, None)
    else:
        flags[name] = value
    incident.flags = flags


# Flags that put an incident in the dispatch queue whatever its urgency (see apply_triage).
QUEUEING_FLAGS = ("needs_review", "new_report", "reporter_replied")


def belongs_in_queue(urgency: str, flags: dict | None) -> bool:
    """Should this incident be in front of a dispatcher? The sweep republishes exactly these."""
    return urgency in QUEUED_URGENCIES or any((flags or {}).get(name) for name in QUEUEING_FLAGS)


def back_in_front(session: Session, incident: Incident, why: str, post_id: int | None) -> bool:
    """Put an incident a person has acknowledged back in front of a dispatcher: unacknowledged,
    with a fresh dispatch-queue entry (and its alert). True when the caller must publish it."""
    if incident.status == IncidentStatus.acknowledged.value:
        incident.status = IncidentStatus.new.value
        incident.stream_entry_id = ""  # the old entry was acknowledged; a new one is published
        incident.acknowledged_at = None
        incident.acknowledged_by = ""
        incident.escalation_token = secrets.token_hex(8)
        incident.next_step_at = None
        append_event(session, incident.id, EventKind.note, "triage",
                     {"kind": "unacknowledged", "why": why, "post_id": post_id, **incident_state(incident)})
        return True
    return incident.status == IncidentStatus.new.value and not incident.stream_entry_id


def queue_message(session: Session, post: Post, incident_id: int | None, reply: messages.Reply,
                  dedupe_key: str | None = None, created_by: str = "system") -> OutboundMessage | MessageRow | None:
    """Add a message to the outbox once. Returns None if that message was already queued.
    (In `defer_messages` mode the message is a MessageRow without an id until
    `flush_deferred_messages`.)"""
    key = dedupe_key or f"{post.id}:{reply.purpose}"
    deferred: list[MessageRow] | None = session.info.get(_DEFERRED)
    if deferred is not None:
        row = MessageRow(dedupe_key=key, incident_id=incident_id, post_id=post.id, platform=post.platform,
                         kind=reply.kind, purpose=reply.purpose, recipient_id=post.author_id, text=reply.text,
                         created_by=created_by)
        deferred.append(row)
        return row
    if session.exec(select(OutboundMessage.id).where(OutboundMessage.dedupe_key == key)).first():
        return None
    msg = OutboundMessage(
        dedupe_key=key, incident_id=incident_id, post_id=post.id, platform=post.platform,
        kind=reply.kind, purpose=reply.purpose, recipient_id=post.author_id, text=reply.text,
        created_by=created_by,
    )
    session.add(msg)
    session.flush()
    _message_queued_event(session, msg)
    return msg


def incident_summary(category: str, count: int) -> str:
    label = category.replace("_", " ") if category and category != "none" else "report"
    return f"{label} — {count} report{'s' if count != 1 else ''}"


def open_incident(session: Session, post: Post, out: TriageOutput, actor: str = "triage",
                  policy_snapshot: dict | None = None, reason: str = "",
                  possible_duplicate: PossibleDuplicate | None = None) -> Incident:
    best = next((m for m in out.locations if m.lat is not None), None)
    incident = Incident(
        status=IncidentStatus.new.value, urgency=out.urgency, category=out.category,
        summary=incident_summary(out.category, 1), location_text=best.text if best else "",
        lat=best.lat if best else post.geo_lat, lon=best.lon if best else post.geo_lon,
        location_confidence=best.confidence if best else (0.9 if post.geo_lat is not None else 0.0),
        report_count=1, silent=out.silent, is_test=post.is_test,
        policy_snapshot=policy_snapshot or {}, escalation_token=secrets.token_hex(8),
    )
    if possible_duplicate is not None:
        incident.flags = {"possible_duplicate_of": possible_duplicate.incident_id}
        reason = reason or possible_duplicate.reason
    if out.needs_review:
        set_flag(incident, "needs_review", True)
    session.add(incident)
    session.flush()
    append_event(session, incident.id, EventKind.opened, actor,
                 {"urgency": out.urgency, "category": out.category, "post_id": post.id, "reason": reason,
                  **({"possible_duplicate_of": possible_duplicate.incident_id} if possible_duplicate else {}),
                  **incident_state(incident)})
    attach_post(session, incident, post, actor, reason or "opened by this post", count=False)
    return incident


def attach_post(session: Session, incident: Incident, post: Post, actor: str, reason: str,
                similarity: float | None = None, count: bool = True) -> None:
    members: list[dict] | None = session.info.get(_MEMBERS)
    if members is None:
        session.add(IncidentPost(incident_id=incident.id, post_id=post.id, attached_by=actor,
                                 reason=reason, similarity=similarity))
    else:
        members.append({"incident_id": incident.id, "post_id": post.id, "attached_at": utcnow(),
                        "attached_by": actor, "reason": reason, "similarity": similarity})
    if count:
        incident.report_count += 1
        incident.summary = incident_summary(incident.category, incident.report_count)
        incident.updated_at = utcnow()
    # The post's digests go into the keyed chain, so a later edit of the stored post is detectable.
    payload_sha256 = hashlib.sha256((post.raw_payload or "").encode("utf-8")).hexdigest()
    append_event(session, incident.id, EventKind.post_attached, actor,
                 {"post_id": post.id, "reason": reason, "similarity": similarity,
                  "payload_sha256": payload_sha256, "post_sha256": post_sha256(post)})


def raise_urgency(incident: Incident, urgency: str, policy_for: PolicyFor) -> None:
    """Make an incident more urgent. One not yet queued takes the chain of its new urgency (its
    own has not started); a running chain stays frozen, as policy edits never change one."""
    incident.urgency = urgency
    incident.updated_at = utcnow()
    if incident.status == IncidentStatus.new.value:
        incident.policy_snapshot = policy_for(urgency)


def set_disposition(post: Post, disposition: str, by: str = "triage") -> None:
    post.disposition = disposition
    post.disposition_by = by
    post.disposition_at = utcnow()


def apply_triage(
    session: Session,
    post: Post,
    out: TriageOutput,
    service: ServiceSettings,
    dm_possible: DmPossible,
    policy_for: PolicyFor,
    finder: IncidentFinder = NoGrouping(),
    record: TriageRecord | TriageRow | None = None,
) -> Outcome:
    """Decide what happens to a triaged post: incident, disposition and messages to the reporter.

    | the post                                                  | what happens                        |
    |-----------------------------------------------------------|-------------------------------------|
    | from a reporter with an open incident (any urgency)       | joins it: "reporter replied", back  |
    |                                                           | in front of a dispatcher, answers   |
    |                                                           | (YES/NO, a location) recorded       |
    | critical/high/medium, grouping joins an incident          | joins it; critical/high on an       |
    |                                                           | acknowledged incident: "new report",|
    |                                                           | unacknowledged, fresh queue entry   |
    | critical/high/medium, new or possible duplicate           | opens an incident (flagged "possible|
    |                                                           | duplicate of #N"); critical/high    |
    |                                                           | and review-flagged ones are queued  |
    | low/none flagged for review                               | review list (disposition)           |
    | low                                                       | redirect reply                      |
    | none                                                      | not an emergency                    |
    """
    result = Outcome()
    now = utcnow()
    own = finder.reporter(session, post)
    if own is not None and IncidentStatus(own.status).is_open:
        return _reporter_replied(session, own, post, out, service, dm_possible, policy_for)
    urgent = out.urgency in (Urgency.critical.value, Urgency.high.value, Urgency.medium.value)
    if out.needs_review and not urgent:
        set_disposition(post, Disposition.needs_review.value)
        return result
    if urgent:
        match = finder.find(session, post, out)
        if match and not isinstance(match, PossibleDuplicate):
            incident, reason, similarity = match
            attach_post(session, incident, post, "triage", reason, similarity)
            # A more urgent report raises the incident; it never lowers it.
            if Urgency(out.urgency).rank < Urgency(incident.urgency).rank:
                raise_urgency(incident, out.urgency, policy_for)
                result.needs_queue = incident.status == IncidentStatus.new.value and out.urgency in QUEUED_URGENCIES
            if out.urgency in QUEUED_URGENCIES and incident.status == IncidentStatus.acknowledged.value:
                # A person has seen the incident, not this report: back in front of a dispatcher.
                set_flag(incident, "new_report", {"post_id": post.id, "at": now.isoformat()})
                result.needs_queue = back_in_front(session, incident, "new report", post.id)
            set_disposition(post, Disposition.attached.value)
        else:
            incident = open_incident(session, post, out, policy_snapshot=policy_for(out.urgency),
                                     possible_duplicate=match if isinstance(match, PossibleDuplicate) else None)
            result.created = True
            # A post flagged for review reaches a person: in the dispatch queue whatever its urgency.
            result.needs_queue = out.urgency in QUEUED_URGENCIES or out.needs_review
            set_disposition(post, Disposition.escalated.value if result.needs_queue
                            else Disposition.monitoring.value)
        result.incident_id = incident.id
        if record is None:
            record = session.exec(select(TriageRecord).where(TriageRecord.post_id == post.id)).first()
        append_event(session, incident.id, EventKind.triaged, "triage",
                     {"post_id": post.id, "urgency": out.urgency, "category": out.category,
                      "confidence": round(out.confidence, 4), "reasons": out.reasons[:10],
                      **({"triage_sha256": triage_sha256(record)} if record is not None else {})})
        reply = messages.receipt(service, out.language, now, out.silent, dm_possible(post))
        if reply:
            msg = queue_message(session, post, incident.id, reply)
            if msg and msg.id is not None:
                result.message_ids.append(msg.id)
    elif out.urgency == Urgency.low.value:
        set_disposition(post, Disposition.redirected.value)
        msg = queue_message(session, post, None, messages.redirect(service, out.language, now, dm_possible(post)))
        if msg and msg.id is not None:
            result.message_ids.append(msg.id)
    else:
        set_disposition(post, Disposition.not_emergency.value)
    return result


def _reporter_replied(session: Session, incident: Incident, post: Post, out: TriageOutput,
                      service: ServiceSettings, dm_possible: DmPossible,
                      policy_for: PolicyFor) -> Outcome:
    """A later message from a reporter with an open incident: one conversation. It joins their
    incident whatever its own triage says, answers to our questions are read as such, the
    incident goes back in front of a dispatcher, and a silent reporter only gets silent texts."""
    now = utcnow()
    attach_post(session, incident, post, "triage", "reply from the reporter of this incident")
    set_disposition(post, Disposition.attached.value)
    asked = last_question(session, incident.id, post)
    answer = messages.read_answer(post.text or "", out.language) if asked else None
    where = next((m for m in out.locations if m.lat is not None and m.lon is not None), None)
    replied = {"post_id": post.id, "at": now.isoformat()}
    if answer:
        replied.update(question=asked, answer=answer)
        set_flag(incident, "answers", [*(incident.flags or {}).get("answers", []),
                                       {"post_id": post.id, "question": asked, "answer": answer,
                                        "at": now.isoformat()}][-10:])
    if where is not None:
        replied["location"] = where.text
        if where.confidence >= incident.location_confidence or incident.lat is None:
            incident.lat, incident.lon = where.lat, where.lon
            incident.location_confidence = float(where.confidence)
            incident.location_text = where.text
    set_flag(incident, "reporter_replied", replied)
    append_event(session, incident.id, EventKind.note, "triage",
                 {"kind": "reporter_replied", "post_id": post.id, "question": asked, "answer": answer,
                  "location": where.text if where is not None else None})
    if out.urgency in Urgency.__members__ and Urgency(out.urgency).rank < Urgency(incident.urgency).rank:
        raise_urgency(incident, out.urgency, policy_for)
    if answer == "yes" and asked == messages.QUESTION_IN_DANGER and incident.urgency != Urgency.critical.value:
        raise_urgency(incident, Urgency.critical.value, policy_for)
    incident.updated_at = now
    result = Outcome(incident_id=incident.id, urgency=incident.urgency)
    result.needs_queue = back_in_front(session, incident, "reporter replied", post.id)
    silent = incident.silent or out.silent
    # The reply's own language (its triage record says the same; in a batch it is not written yet).
    reply = messages.receipt(service, out.language or "en", now, silent,
                             dm_possible(post))
    if reply:
        msg = queue_message(session, post, incident.id, reply)
        if msg and msg.id is not None:
            result.message_ids.append(msg.id)
    return result


def last_question(session: Session, incident_id: int, post: Post) -> str:
    """The question our last text to this reporter asked (silent texts ask YES/NO), or ""."""
    row = session.exec(select(OutboundMessage.purpose, OutboundMessage.text).where(
        OutboundMessage.incident_id == incident_id, OutboundMessage.recipient_id == post.author_id,
        OutboundMessage.platform == post.platform, OutboundMessage.post_id != post.id,
    ).order_by(OutboundMessage.id.desc()).limit(1)).first()
    return messages.question_asked(row[0], row[1]) if row else ""


def dm_undeliverable(session: Session, msg: OutboundMessage,
                     service: ServiceSettings) -> tuple[int | None, OutboundMessage | None]:
    """A private message failed for good (DMs closed, 403): the incident and its queue row say
    "reporter cannot be reached by DM", and a non-silent reporter gets one public reply that
    reveals nothing (open your DMs or call). Returns the flagged incident's id (None if none was
    flagged: the caller tells open screens after its commit) and that fallback message, if one
    was queued."""
    if msg.kind != MessageKind.dm.value or not msg.incident_id:
        return None, None
    incident = session.get(Incident, msg.incident_id)
    post = session.get(Post, msg.post_id) if msg.post_id else None
    if incident is None or post is None:
        return None, None
    set_flag(incident, "dm_unreachable", {"post_id": post.id, "error": (msg.last_error or "")[:200],
                                          "at": utcnow().isoformat()})
    reply = messages.dm_closed(service, post_language(session, post.id), utcnow(), incident.silent)
    if reply is None:
        return incident.id, None
    fallback = queue_message(session, post, incident.id, reply, dedupe_key=f"{post.id}:dm_fallback")
    return incident.id, fallback


def shared_fix(session: Session, incident_id: int, lat: float, lon: float, accuracy_m: float) -> Incident | None:
    """A GPS fix the reporter shared through the one-time link becomes the incident's location,
    with its accuracy (queue, map, field feed and incident page read the incident's location)."""
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident is None:
        return None
    now = utcnow()
    incident.lat, incident.lon = float(lat), float(lon)
    # Confidence from the accuracy circle: 10 m ≈ 0.99, 100 m 0.98, 1 km 0.8, worse than 2 km 0.6.
    incident.location_confidence = max(0.6, min(0.99, 1.0 - float(accuracy_m) / 5000.0))
    incident.location_text = f"shared GPS fix (±{accuracy_m:.0f} m)"
    incident.updated_at = now
    set_flag(incident, "shared_fix", {
        "lat": round(float(lat), 6), "lon": round(float(lon), 6), "accuracy_m": round(float(accuracy_m), 1),
        "at": now.isoformat(), "maps_url": f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=18/{lat:.6f}/{lon:.6f}"})
    append_event(session, incident.id, EventKind.note, "reporter",
                 {"kind": "shared_location", "accuracy_m": round(float(accuracy_m), 1)})
    return incident


def mark_queued(session: Session, incident: Incident, entry_id: str) -> None:
    incident.status = IncidentStatus.queued.value
    incident.stream_entry_id = entry_id
    incident.queued_at = incident.queued_at or utcnow()
    append_event(session, incident.id, EventKind.queued, "system",
                 {"stream_entry_id": entry_id, **incident_state(incident)})


def queue_now(session: Session, incident: Incident) -> bool:
    """Queue a new incident in the caller's transaction: in front of a dispatcher (the queue page
    reads the database) from its commit, with its escalation chain due at once. What follows the
    commit (its dispatch-stream entry, the chain's first step) is re-driven if it is lost: the
    sweep adds the stream entry of a queued incident without one, and every worker's step timer
    fires a chain whose `next_step_at` has passed. True when it was queued here."""
    if incident.status != IncidentStatus.new.value or incident.stream_entry_id:
        return False
    mark_queued(session, incident, "")
    incident.next_step_at = utcnow()
    return True


def check_claim(incident: Incident, username: str) -> None:
    """Acknowledging, finishing, merging or splitting an incident a colleague has claimed, or
    writing to its reporters, would act behind their back: it takes an explicit take-over
    (recorded) first."""
    if incident.claimed_by and incident.claimed_by != username:
        raise ActionError(f"incident {incident.id} is claimed by {incident.claimed_by}; "
                          "take it over first (it is recorded), or ask them")


def locked_incident(session: Session, incident_id: int) -> Incident:
    """The incident, held against other writers until the transaction ends (on SQLite too: see
    models.db.get_locked), so two people acting on it at once act one after the other."""
    incident = get_locked(session, Incident, incident_id)
    if incident is None:
        raise ActionError(f"incident {incident_id} not found")
    return incident


def reporter_posts(session: Session, incident_id: int) -> list[Post]:
    return list(session.exec(
        select(Post).join(IncidentPost, IncidentPost.post_id == Post.id)
        .where(IncidentPost.incident_id == incident_id).order_by(Post.id)
    ))


def acknowledge(session: Session, incident_id: int, username: str, service: ServiceSettings,
                dm_possible: DmPossible, at: datetime | None = None) -> Outcome:
    """A dispatcher has seen the incident: stop the chain, tell every reporter a person has seen it."""
    incident = locked_incident(session, incident_id)
    if incident.status == IncidentStatus.acknowledged.value:
        return Outcome(incident_id=incident.id, stream_entry_to_ack=incident.stream_entry_id)
    if not IncidentStatus(incident.status).is_open:
        raise ActionError(f"incident {incident_id} is {incident.status}")
    now = at or utcnow()
    incident.status = IncidentStatus.acknowledged.value
    set_flag(incident, "new_report", None)  # a person has now seen it
    set_flag(incident, "reporter_replied", None)
    incident.acknowledged_at = now
    incident.acknowledged_by = username
    incident.claimed_by = incident.claimed_by or username
    incident.escalation_token = secrets.token_hex(8)  # any scheduled escalation step is now stale
    waited = (now - (incident.queued_at or incident.created_at)).total_seconds()
    breached_late = _record_late_sla_breach(session, incident, waited)
    append_event(session, incident.id, EventKind.acknowledged, username,
                 {"seconds_to_ack": waited, **incident_state(incident)}, at=now)
    # Acknowledged incidents may still be due reminders under their frozen policy.
    incident.next_step_at = _next_due(session, incident)
    incident.updated_at = now
    result = Outcome(incident_id=incident.id, stream_entry_to_ack=incident.stream_entry_id,
                     seconds_to_ack=waited, urgency=incident.urgency, sla_breached_late=breached_late)
    result.message_ids += acknowledged_messages(session, incident, username, service, dm_possible, now)
    return result


def post_language(session: Session, post_id: int) -> str:
    return session.exec(select(TriageRecord.language).where(TriageRecord.post_id == post_id)).first() or "en"


def acknowledged_messages(session: Session, incident: Incident, username: str, service: ServiceSettings,
                          dm_possible: DmPossible, at: datetime | None = None) -> list[int]:
    """Tell every reporter of the incident that a person has seen their message: once per reporter
    for what they have written so far (keyed on their latest report), so three messages from one
    reporter bring one "seen", and a later message of theirs brings another once a person has
    seen that one too."""
    now = at or utcnow()
    ids = []
    latest: dict[tuple[str, str], Post] = {}
    for post in reporter_posts(session, incident.id):  # oldest first: the last one per reporter stays
        latest[(post.platform, post.author_id or f"post:{post.id}")] = post
    for post in sorted(latest.values(), key=lambda p: p.id):
        reply = messages.acknowledged(service, post_language(session, post.id), now, incident.silent,
                                      dm_possible(post))
        if reply:
            msg = queue_message(session, post, incident.id, reply, created_by=username)
            if msg:
                ids.append(msg.id)
    return ids


def _record_late_sla_breach(session: Session, incident: Incident, waited: float) -> bool:
    """An ack that arrives after the SLA records the breach if the timer had not yet done so."""
    sla = float((incident.policy_snapshot or {}).get("ack_sla") or 0)
    if sla <= 0 or waited <= sla:
        return False
    if session.exec(select(IncidentEvent.id).where(IncidentEvent.incident_id == incident.id,
                                                   IncidentEvent.kind == EventKind.sla_breach.value)).first():
        return False
    append_event(session, incident.id, EventKind.sla_breach, "escalation",
                 {"ack_sla_s": sla, "waited_s": round(waited, 3), "recorded_at": "acknowledge"})
    return True


def _next_due(session: Session, incident: Incident) -> datetime | None:
    rows = session.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident.id)
                        .order_by(IncidentEvent.seq)).all()
    action = next_action(incident.policy_snapshot or {}, [Event(r.kind, r.at, r.data or {}) for r in rows],
                         utcnow())
    return action.due_at if action else None


def stop_chain(incident: Incident) -> None:
    """Invalidate every scheduled step of an incident that no longer needs paging."""
    incident.escalation_token = secrets.token_hex(8)
    incident.next_step_at = None


def manual_message(session: Session, incident_id: int, post: Post, text: str, kind: str,
                   username: str) -> OutboundMessage:
    reply = messages.Reply(MessagePurpose.manual.value, kind, text)
    msg = queue_message(session, post, incident_id, reply, dedupe_key=f"manual:{uuid.uuid4().hex}",
                        created_by=username)
    assert msg is not None  # a fresh uuid key cannot collide
    return msg
