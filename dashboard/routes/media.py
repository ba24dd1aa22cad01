"""Graphic media: hidden behind a content warning until a person chooses to look.

Images and videos attached to posts are never loaded by the page itself. The address is handed
out only by the reveal endpoint, which first records who looked (audit entry, plus a
media_revealed event on every incident the post belongs to). The per-shift count of reveals is
shown to the person and to supervisors as a wellness signal — never as a performance metric.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException
from sqlmodel import select

from dashboard.deps import CSRF, DB, RowId
from dashboard.routes.common import MEDIA_REVEALED_ACTION, exposure_count, require_any
from dashboard.security import audit
from models.enums import EventKind
from models.events import append_event
from models.tables import IncidentPost, Post, User

router = APIRouter(include_in_schema=False)

MAX_MEDIA_PER_POST = 4
VIDEO_TYPES = ("video", "animated_gif", "gif")


@dataclass(frozen=True, slots=True)
class AttachedMedia:
    index: int
    kind: str  # "image" or "video"
    url: str


def _candidates(payload: Any) -> list[dict]:
    """Media lists in the shapes platforms deliver them (top-level, X `includes`, Bluesky embeds)."""
    if not isinstance(payload, dict):
        return []
    found: list = []
    for holder in (payload, payload.get("includes"), payload.get("embed")):
        if isinstance(holder, dict):
            for key in ("media", "images"):
                items = holder.get(key)
                if isinstance(items, list):
                    found.extend(i for i in items if isinstance(i, dict))
    return found


def attached_media(post: Post) -> list[AttachedMedia]:
    try:
        payload = json.loads(post.raw_payload) if post.raw_payload else None
    except (ValueError, RecursionError):  # a hostile payload nested past the parser's depth
        return []
    out: list[AttachedMedia] = []
    for item in _candidates(payload):
        url = item.get("url") or item.get("fullsize") or item.get("preview_image_url") or ""
        # Only plain web addresses: a payload must not smuggle javascript: or data: into the page.
        if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")):
            continue
        kind = "video" if str(item.get("type", "")).lower() in VIDEO_TYPES else "image"
        out.append(AttachedMedia(len(out), kind, url))
        if len(out) == MAX_MEDIA_PER_POST:
            break
    return out


@router.post("/posts/{post_id}/media/{index}/reveal", dependencies=[CSRF])
def reveal_media(post_id: RowId, index: int, db: DB, user: User = require_any("feed", "view_incident")) -> dict:
    post = db.get(Post, post_id)
    if post is None:
        raise HTTPException(404, "post not found")
    media = attached_media(post)
    if not 0 <= index < len(media):
        raise HTTPException(404, "no such media on this post")
    item = media[index]
    audit(db, user.username, MEDIA_REVEALED_ACTION, "post", post_id, {"index": index, "kind": item.kind})
    incident_ids = db.exec(select(IncidentPost.incident_id).where(IncidentPost.post_id == post_id)).all()
    for incident_id in incident_ids:
        append_event(db, incident_id, EventKind.media_revealed, user.username,
                     {"post_id": post_id, "index": index, "kind": item.kind})
    db.commit()
    return {"ok": True, "kind": item.kind, "url": item.url, "exposure": exposure_count(db, user.username)}
