"""Graphic media: hidden behind a content warning until a person chooses to look.

Images and videos attached to posts are never loaded by the page itself, and never from the
address the platform payload names: the background archive job (flows/media_archive.py) fetched
each once after the post was stored, and only that copy is served (`/posts/N/media/I/file`). Its
address is handed out only by the reveal endpoint, which first records who looked (audit entry, plus a
media_revealed event on every incident the post belongs to). The per-shift count of reveals is
shown to the person and to supervisors as a wellness signal — never as a performance metric.
"""
from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from sqlmodel import Session, select

from dashboard.deps import CSRF, DB, Ctx, RowId
from dashboard.routes.common import MEDIA_REVEALED_ACTION, exposure_count, require_any
from models.access import audit
from flows.media_archive import ARCHIVED, media_path
from models.enums import EventKind
from models.events import append_event
from models.media import PostMedia
from models.post_media import MAX_MEDIA_PER_POST, VIDEO_TYPES, AttachedMedia
from models.post_media import attached_media as payload_media
from models.tables import AuditEntry, IncidentPost, Post, User

router = APIRouter(include_in_schema=False)

__all__ = ["MAX_MEDIA_PER_POST", "VIDEO_TYPES", "AttachedMedia", "attached_media", "router"]


def attached_media(post: Post) -> list[AttachedMedia]:
    return payload_media(post.raw_payload)


def _archived(db: Session, post_id: int, index: int) -> PostMedia | None:
    return db.exec(select(PostMedia).where(PostMedia.post_id == post_id, PostMedia.idx == index)).first()


@router.post("/posts/{post_id}/media/{index}/reveal", dependencies=[CSRF])
def reveal_media(post_id: RowId, index: int, db: DB, user: User = require_any("feed", "view_incident")) -> dict:
    post = db.get(Post, post_id)
    if post is None:
        raise HTTPException(404, "post not found")
    media = attached_media(post)
    if not 0 <= index < len(media):
        raise HTTPException(404, "no such media on this post")
    item = media[index]
    archived = _archived(db, post_id, index)
    if archived is None or archived.status != ARCHIVED:
        # Never the live address: only the copy archived at ingest is shown.
        why = f"it could not be archived ({archived.error})" if archived else "it has not been archived yet"
        raise HTTPException(409, f"This {item.kind} cannot be shown: {why}.")
    audit(db, user.username, MEDIA_REVEALED_ACTION, "post", post_id,
          {"index": index, "kind": item.kind, "sha256": archived.sha256})
    incident_ids = db.exec(select(IncidentPost.incident_id).where(IncidentPost.post_id == post_id)).all()
    for incident_id in incident_ids:
        append_event(db, incident_id, EventKind.media_revealed, user.username,
                     {"post_id": post_id, "index": index, "kind": item.kind})
    db.commit()
    return {"ok": True, "kind": item.kind, "url": f"/posts/{post_id}/media/{index}/file", "sha256": archived.sha256,
            "exposure": exposure_count(db, user.username)}


def revealed_by(db: Session, username: str, post_id: int, index: int) -> bool:
    """Whether this person's reveal of this item was recorded (the audit entry the reveal writes)."""
    details = db.exec(select(AuditEntry.detail).where(
        AuditEntry.username == username, AuditEntry.action == MEDIA_REVEALED_ACTION,
        AuditEntry.object_type == "post", AuditEntry.object_id == str(post_id))).all()
    return any(isinstance(d, dict) and d.get("index") == index for d in details)


@router.get("/posts/{post_id}/media/{index}/file")
def media_file(post_id: RowId, index: int, db: DB, ctx: Ctx, user: User = require_any("feed", "view_incident")) -> FileResponse:
    """The archived copy's bytes (the dashboard's only source of post media), for a person who
    revealed it: the address alone skips neither the content warning nor the audit entry."""
    archived = _archived(db, post_id, index)
    if archived is None or archived.status != ARCHIVED:
        raise HTTPException(404, "no archived media")
    if not revealed_by(db, user.username, post_id, index):
        raise HTTPException(403, "reveal this item first (its view is recorded)")
    return FileResponse(media_path(ctx.settings, archived), media_type=archived.content_type,
                        headers={"content-security-policy": "sandbox; default-src 'none'"})
