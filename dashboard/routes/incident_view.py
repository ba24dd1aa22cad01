"""Everything the incident page shows, gathered in one place (read-only)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, select

from dashboard.routes.media import AttachedMedia, attached_media
from escalation.service import reporter_posts
from models.enums import EventKind, Role
from models.tables import AuditEntry, Incident, IncidentEvent, OutboundMessage, Post, TriageRecord, User

HISTORY_LIMIT = 20
AUDIT_LIMIT = 50
# The confidence circle: a sure fix is a small circle, a vague one covers a district.
MIN_RADIUS_M = 50
MAX_RADIUS_M = 5000


@dataclass
class TimelineEntry:
    at: datetime
    kind: str  # "post" or an EventKind value
    post: Post | None = None
    triage: TriageRecord | None = None
    media: list[AttachedMedia] = field(default_factory=list)
    event: IncidentEvent | None = None


@dataclass
class ChainStep:
    number: int
    after: float
    action: str
    targets: list[str]
    sound: bool
    fired_at: datetime | None
    failed_pages: list[dict] = field(default_factory=list)  # pages of this step that did not go out
    sent_pages: list[dict] = field(default_factory=list)


@dataclass
class IncidentView:
    incident: Incident
    posts: list[Post]
    timeline: list[TimelineEntry]
    history: list[Post]
    other_platforms: list[Post]
    messages: list[OutboundMessage]
    chain: list[ChainStep]
    repeats_fired: int
    audit_trail: list[AuditEntry]
    radius_m: float
    colleagues: list[str]


def confidence_radius(confidence: float) -> float:
    c = min(max(confidence or 0.0, 0.0), 1.0)
    return round(MIN_RADIUS_M + (1.0 - c) * (MAX_RADIUS_M - MIN_RADIUS_M))


def _handle(value: str) -> str:
    return value.strip().lstrip("@").lower()


def reporter_history(db: Session, posts: list[Post]) -> tuple[list[Post], list[Post]]:
    """Earlier posts by the same authors, and posts on other platforms under the same handle."""
    member_ids = [p.id for p in posts]
    authors = {(p.platform, p.author_id) for p in posts if p.author_id}
    history: list[Post] = []
    if authors:
        cond = or_(*[(Post.platform == pl) & (Post.author_id == a) for pl, a in authors])
        history = list(db.exec(select(Post).where(cond, Post.id.not_in(member_ids))
                               .order_by(Post.id.desc()).limit(HISTORY_LIMIT)))
    handles = {_handle(p.author_handle) for p in posts if p.author_handle.strip()}
    platforms = {p.platform for p in posts}
    elsewhere: list[Post] = []
    if handles:
        elsewhere = list(db.exec(
            select(Post).where(func.lower(func.ltrim(Post.author_handle, "@")).in_(handles),
                               Post.platform.not_in(platforms), Post.id.not_in(member_ids))
            .order_by(Post.id.desc()).limit(HISTORY_LIMIT)))
    return history, elsewhere


def escalation_chain(incident: Incident, events: list[IncidentEvent]) -> tuple[list[ChainStep], int]:
    fired = [e for e in events if e.kind == EventKind.escalation_step.value and e.data.get("kind") == "step"]
    # Each page (notification event) belongs to the step fired just before it.
    pages: dict[int, list[dict]] = {}
    current = None
    for e in events:
        if e.kind == EventKind.escalation_step.value:
            current = e.id if e.data.get("kind") == "step" else None
        elif e.kind == EventKind.notification.value and current is not None:
            pages.setdefault(current, []).append(e.data or {})
    steps = []
    for n, step in enumerate(incident.policy_snapshot.get("steps", [])):
        event = fired[n] if n < len(fired) else None
        sent = pages.get(event.id, []) if event else []
        steps.append(ChainStep(n + 1, float(step.get("after", 0)), str(step.get("action", "")),
                               list(step.get("targets", [])), bool(step.get("sound")),
                               event.at if event else None,
                               [p for p in sent if not p.get("ok")], [p for p in sent if p.get("ok")]))
    return steps, max(0, len(fired) - len(steps))


def build_view(db: Session, incident: Incident) -> IncidentView:
    posts = reporter_posts(db, incident.id)
    triage = {t.post_id: t for t in db.exec(
        select(TriageRecord).where(TriageRecord.post_id.in_([p.id for p in posts] or [-1])))}
    events = list(db.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident.id)
                          .order_by(IncidentEvent.seq)))
    timeline = [TimelineEntry(p.received_at, "post", post=p, triage=triage.get(p.id), media=attached_media(p))
                for p in posts]
    # Views are audited separately; listing every "viewed" here would bury the story.
    timeline += [TimelineEntry(e.at, e.kind, event=e) for e in events if e.kind != EventKind.viewed.value]
    timeline.sort(key=lambda t: (t.at, 0 if t.kind == "post" else 1))
    history, elsewhere = reporter_history(db, posts)
    messages = list(db.exec(select(OutboundMessage).where(OutboundMessage.incident_id == incident.id)
                            .order_by(OutboundMessage.id)))
    chain, repeats = escalation_chain(incident, events)
    audit_trail = list(db.exec(select(AuditEntry).where(AuditEntry.object_type == "incident",
                                                        AuditEntry.object_id == str(incident.id))
                               .order_by(AuditEntry.id.desc()).limit(AUDIT_LIMIT)))
    colleagues = list(db.exec(select(User.username).where(
        User.active == True, User.role.in_([Role.dispatcher.value, Role.supervisor.value]))  # noqa: E712
        .order_by(User.username)))
    return IncidentView(incident, posts, timeline, history, elsewhere, messages, chain, repeats,
                        audit_trail, confidence_radius(incident.location_confidence), colleagues)


def event_summary(event: IncidentEvent) -> str:
    """One line per event for people; never includes post text (events carry ids, not words)."""
    d: dict[str, Any] = event.data or {}
    kind = event.kind
    if kind == EventKind.escalation_step.value:
        return f"escalation {d.get('kind', 'step')} {int(d.get('number', 0)) + 1}: {d.get('action', '')}" \
               f" → {', '.join(d.get('targets', []))}{' (sound)' if d.get('sound') else ''}"
    if kind == EventKind.post_attached.value:
        return f"post {d.get('post_id')} attached: {d.get('reason', '')}"
    if kind in (EventKind.message_queued.value, EventKind.message_sent.value, EventKind.message_failed.value):
        error = f" — {d.get('error')}" if d.get("error") else ""
        return f"{kind.replace('_', ' ')}: {d.get('purpose', '')} ({d.get('kind', '')}){error}"
    if kind == EventKind.acknowledged.value and "seconds_to_ack" in d:
        return f"acknowledged after {float(d['seconds_to_ack']):.0f} s"
    if kind == EventKind.triaged.value:
        return f"triaged {d.get('urgency', '')} / {d.get('category', '')} (confidence {d.get('confidence', '')})"
    if kind == EventKind.taken_over.value:
        return f"taken over from {d.get('from', '')} by {d.get('to', '')}"
    if kind == EventKind.media_revealed.value:
        return f"graphic media on post {d.get('post_id')} revealed"
    detail = ", ".join(f"{k}: {v}" for k, v in d.items() if k not in ("stream_entry_id",) and v not in ("", None))
    return f"{kind.replace('_', ' ')}{' — ' + detail if detail else ''}"
