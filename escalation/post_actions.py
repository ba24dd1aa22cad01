"""Officer and dispatcher actions on individual posts: escalate by hand, dispose, attach, reply.

Runs inside the caller's transaction; raises ActionError with a message for the UI.
"""
from __future__ import annotations


from sqlmodel import Session, select

from config import ServiceSettings
from escalation import messages
from escalation.echo_guard import echoes_reporter
from escalation.service import (
    QUEUED_URGENCIES,
    ActionError,
    Outcome,
    locked_incident,
    acknowledged_messages,
    attach_post,
    check_claim,
    manual_message,
    open_incident,
    post_language,
    queue_message,
    raise_urgency,
    reporter_posts,
    set_disposition,
)
from models.domain import LocationMention, TriageOutput
from models.enums import Disposition, EventKind, IncidentStatus, MessageKind, Urgency
from models.events import append_event
from models.seams import DmPossible, PolicyFor
from models.tables import Incident, IncidentPost, Post, TriageRecord
from models.types import utcnow

HAND_ESCALATION_URGENCIES = (Urgency.critical.value, Urgency.high.value, Urgency.medium.value)
OFFICER_DISPOSITIONS = (Disposition.not_emergency.value, Disposition.redirected.value,
                        Disposition.reviewed.value)
MAX_REPLY_CHARS = 1000


def _post(session: Session, post_id: int) -> Post:
    post = session.get(Post, post_id, with_for_update=True)
    if post is None:
        raise ActionError(f"post {post_id} not found")
    return post


def _membership(session: Session, post_id: int) -> IncidentPost | None:
    return session.exec(select(IncidentPost).where(IncidentPost.post_id == post_id)).first()


def _triage_output(session: Session, post: Post, urgency: str) -> TriageOutput:
    record = session.exec(select(TriageRecord).where(TriageRecord.post_id == post.id)).first()
    if record is None:
        return TriageOutput(urgency=urgency, category="other", confidence=1.0, language="en")
    locations = [LocationMention(**loc) for loc in record.locations or []]
    category = record.category if record.category and record.category != "none" else "other"
    return TriageOutput(urgency=urgency, category=category, confidence=1.0, language=record.language or "en",
                        silent=record.silent, locations=locations)


def escalate_post(session: Session, post_id: int, username: str, urgency: str, service: ServiceSettings,
                  dm_possible: DmPossible, policy_for: PolicyFor) -> Outcome:
    """An officer puts any post in front of dispatchers, whatever triage thought of it."""
    if urgency not in HAND_ESCALATION_URGENCIES:
        raise ActionError(f"escalate as one of {', '.join(HAND_ESCALATION_URGENCIES)}")
    post = _post(session, post_id)
    member = _membership(session, post_id)
    closed_from: Incident | None = None
    if member is not None:
        incident = locked_incident(session, member.incident_id)
        if not IncidentStatus(incident.status).is_open:
            # Someone judges this report still needs help: it leaves the finished incident
            # (which keeps the record of it) and starts a new one of its own.
            closed_from = incident
            session.delete(member)
            incident.report_count = max(0, incident.report_count - 1)
            session.flush()
    if member is not None and closed_from is None:
        outcome = Outcome(incident_id=incident.id, urgency=incident.urgency)
        if Urgency(urgency).rank < Urgency(incident.urgency).rank:
            append_event(session, incident.id, EventKind.note, username,
                         {"urgency_raised": {"from": incident.urgency, "to": urgency}, "post_id": post_id})
            raise_urgency(incident, urgency, policy_for)
            outcome.urgency = urgency
            outcome.needs_queue = incident.status == IncidentStatus.new.value and urgency in QUEUED_URGENCIES
        return outcome
    out = _triage_output(session, post, urgency)
    reason = f"escalated by hand by {username}"
    if closed_from is not None:
        reason += f" after incident {closed_from.id} was {closed_from.status}"
    incident = open_incident(session, post, out, actor=username, policy_snapshot=policy_for(urgency), reason=reason)
    if closed_from is not None:
        append_event(session, closed_from.id, EventKind.split, username,
                     {"into": incident.id, "post_ids": [post_id], "reason": "escalated again by hand"})
    queued = urgency in QUEUED_URGENCIES
    set_disposition(post, Disposition.escalated.value if queued else Disposition.monitoring.value, username)
    outcome = Outcome(incident_id=incident.id, created=True, needs_queue=queued, urgency=urgency)
    reply = messages.receipt(service, out.language, utcnow(), out.silent, dm_possible(post))
    if reply:
        msg = queue_message(session, post, incident.id, reply, created_by=username)
        if msg:
            outcome.message_ids.append(msg.id)
    return outcome


def dispose_post(session: Session, post_id: int, username: str, disposition: str, service: ServiceSettings,
                 dm_possible: DmPossible) -> Outcome:
    """An officer decides a post needs no incident: it stays visible with who decided and when."""
    if disposition not in OFFICER_DISPOSITIONS:
        raise ActionError(f"disposition must be one of {', '.join(OFFICER_DISPOSITIONS)}")
    post = _post(session, post_id)
    member = _membership(session, post_id)
    if member is not None:
        incident = session.get(Incident, member.incident_id)
        if incident is not None and IncidentStatus(incident.status).is_open:
            raise ActionError(f"this post is part of open incident {incident.id}: "
                              "split it off or resolve the incident instead")
    set_disposition(post, disposition, username)
    outcome = Outcome()
    if disposition == Disposition.redirected.value:
        reply = messages.redirect(service, post_language(session, post.id), utcnow(), dm_possible(post))
        msg = queue_message(session, post, None, reply, created_by=username)
        if msg:
            outcome.message_ids.append(msg.id)
    return outcome


def attach_to_incident(session: Session, post_id: int, incident_id: int, username: str,
                       service: ServiceSettings, dm_possible: DmPossible) -> Outcome:
    """An officer adds a further report to an incident; its author hears what the others heard."""
    post = _post(session, post_id)
    incident = locked_incident(session, incident_id)
    if not IncidentStatus(incident.status).is_open:
        raise ActionError(f"incident {incident_id} is {incident.status}")
    member = _membership(session, post_id)
    if member is not None:
        if member.incident_id == incident_id:
            return Outcome(incident_id=incident_id)
        raise ActionError(f"this post is already part of incident {member.incident_id}; merge the incidents")
    attach_post(session, incident, post, username, "attached by hand")
    set_disposition(post, Disposition.attached.value, username)
    outcome = Outcome(incident_id=incident.id, urgency=incident.urgency)
    language = post_language(session, post.id)
    receipt = messages.receipt(service, language, utcnow(), incident.silent, dm_possible(post))
    if receipt:
        msg = queue_message(session, post, incident.id, receipt, created_by=username)
        if msg:
            outcome.message_ids.append(msg.id)
    if incident.status == IncidentStatus.acknowledged.value:
        outcome.message_ids += acknowledged_messages(session, incident, username, service, dm_possible)
    return outcome


def reply(session: Session, incident_id: int, post_id: int, username: str, text: str, kind: str,
          dm_possible: DmPossible) -> Outcome:
    """A dispatcher's own words to one reporter, checked against the privacy rules first."""
    text = (text or "").strip()
    if not text:
        raise ActionError("the message is empty")
    if len(text) > MAX_REPLY_CHARS:
        raise ActionError(f"the message is longer than {MAX_REPLY_CHARS} characters")
    if kind not in (MessageKind.dm.value, MessageKind.public_reply.value):
        raise ActionError("kind must be dm or public_reply")
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise ActionError(f"incident {incident_id} not found")
    check_claim(incident, username)  # one voice per incident: its claimer's
    posts = reporter_posts(session, incident_id)
    post = next((p for p in posts if p.id == post_id), None)
    if post is None:
        raise ActionError(f"post {post_id} is not part of incident {incident_id}")
    if kind == MessageKind.public_reply.value:
        if incident.silent:
            raise ActionError("this reporter cannot speak safely: only a private message is allowed")
        locations = [incident.location_text] if incident.location_text else []
        for record in session.exec(select(TriageRecord).where(TriageRecord.post_id.in_([p.id for p in posts]))):
            locations += [loc.get("text", "") for loc in record.locations or [] if loc.get("text")]
        locations += [p.geo_place for p in posts if p.geo_place]
        why = echoes_reporter(text, [p.text for p in posts], locations)
        if why:
            raise ActionError(f"a public reply must not repeat the reporter: {why}")
    elif not dm_possible(post):
        raise ActionError(f"a private message cannot reach this reporter on {post.platform}; "
                          "use a minimal public reply")
    msg = manual_message(session, incident_id, post, text, kind, username)
    return Outcome(incident_id=incident_id, message_ids=[msg.id])
