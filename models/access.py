"""Who may do what (roles to capabilities), and the audit trail of what people did and saw."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.enums import Role
from models.tables import AuditEntry, LoginSession
from models.types import utcnow

# What each role may do. Routes ask for a capability, never for a role name.
CAPABILITIES: dict[str, set[str]] = {
    Role.officer.value: {"feed", "escalate_post", "view_incident", "dispose_post"},
    Role.dispatcher.value: {"queue", "acknowledge", "view_incident", "reply", "resolve", "feed",
                            "escalate_post", "dispose_post", "share_link"},
    Role.supervisor.value: {"queue", "acknowledge", "view_incident", "reply", "resolve", "feed",
                            "escalate_post", "dispose_post", "share_link", "supervise", "export"},
    Role.admin.value: {"admin", "supervise", "feed", "queue", "view_incident"},
    Role.field.value: {"field"},
    Role.wall.value: {"wall"},
}


def can(role: str, capability: str) -> bool:
    return capability in CAPABILITIES.get(role, set())


def audit(session: Session, username: str, action: str, object_type: str = "", object_id: str = "",
          detail: dict | None = None, at: datetime | None = None) -> None:
    """Add an audit record (the caller commits); `at` is when the act was done, if not now."""
    entry = AuditEntry(username=username, action=action, object_type=object_type,
                       object_id=str(object_id), detail=detail or {})
    if at is not None:
        entry.at = at
    session.add(entry)


def purge_sessions(engine: Engine, now: datetime | None = None) -> int:
    """Forget sessions past their expiry, and revoked ones a day after revocation."""
    now = now or utcnow()
    with Session(engine) as db:
        result = db.execute(delete(LoginSession).where(
            (LoginSession.expires_at < now) | (LoginSession.revoked_at < now - timedelta(days=1))))
        db.commit()
    return int(result.rowcount or 0)
