"""Drill traffic: marked posts from the configured drill account, kept out of real paging."""
from __future__ import annotations

from config import Settings

DRILL_MARK = "[FLARE DRILL"


def is_drill(settings: Settings, text: str, author_handle: str) -> bool:
    """Drill traffic is marked only when it comes from the configured drill account."""
    return DRILL_MARK in (text or "") and (author_handle or "").lstrip("@").lower() == settings.drill_author.lower()
