"""Wires incident grouping and policy snapshots into the triage job.

Baseline grouping: a follow-up from the same reporter on the same platform within 30 minutes
joins their open incident. (Event-level clustering across reporters plugs in here.)
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import lru_cache

from sqlmodel import Session, select

from dashboard.context import AppContext
from escalation.policy import PolicySet, load_policies
from models.domain import TriageOutput
from models.enums import IncidentStatus
from models.tables import Incident, IncidentPost, Post
from models.types import utcnow

FOLLOW_UP_WINDOW = timedelta(minutes=30)


@lru_cache(maxsize=4)
def _policies(path: str | None) -> PolicySet:
    from pathlib import Path

    return load_policies(Path(path) if path else None)


def policy_for(ctx: AppContext) -> Callable[[str], dict]:
    path = ctx.settings.escalation_policy_file
    policies = _policies(str(path) if path else None)
    return policies.snapshot


def finder(ctx: AppContext) -> Callable[[Session, Post, TriageOutput], tuple[Incident, str, float | None] | None]:
    def find(session: Session, post: Post, out: TriageOutput):
        if not post.author_id:
            return None
        open_states = [s.value for s in IncidentStatus if s.is_open]
        row = session.exec(
            select(Incident).join(IncidentPost, IncidentPost.incident_id == Incident.id)
            .join(Post, Post.id == IncidentPost.post_id)
            .where(Post.platform == post.platform, Post.author_id == post.author_id,
                   Post.id != post.id, Incident.status.in_(open_states),
                   Incident.created_at >= utcnow() - FOLLOW_UP_WINDOW)
            .order_by(Incident.id.desc()).limit(1)
        ).first()
        if row is None:
            return None
        return row, "follow-up from the same reporter within 30 minutes", None

    return find
