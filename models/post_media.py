"""The media a post's raw payload names, in the shapes platforms deliver them.

Pure parsing (no fetching): the archive job (flows/media_archive.py) fetches these once and the
dashboard shows the archived copies."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

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


def attached_media(raw_payload: str | None) -> list[AttachedMedia]:
    try:
        payload = json.loads(raw_payload) if raw_payload else None
    except (ValueError, RecursionError):  # a hostile payload nested past the parser's depth
        return []
    out: list[AttachedMedia] = []
    for item in _candidates(payload):
        url = item.get("url") or item.get("fullsize") or item.get("preview_image_url") or ""
        # Only plain web addresses: a payload must not smuggle javascript:, data: or file: in.
        if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")):
            continue
        kind = "video" if str(item.get("type", "")).lower() in VIDEO_TYPES else "image"
        out.append(AttachedMedia(len(out), kind, url))
        if len(out) == MAX_MEDIA_PER_POST:
            break
    return out
