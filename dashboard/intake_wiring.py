"""How the composition root stores posts from any source: lane choice, drill marking, enqueue."""
from __future__ import annotations

from collections.abc import Sequence

from connectors.intake import Persisted, persist_posts
from dashboard import jobs
from dashboard.context import AppContext
from models.domain import RawPost
from triage.prescreen import lane_for

DRILL_MARK = "[FLARE DRILL"


def is_drill(settings, text: str, author_handle: str) -> bool:
    """Drill traffic is marked only when it comes from the configured drill account."""
    return DRILL_MARK in (text or "") and (author_handle or "").lstrip("@").lower() == settings.drill_author.lower()


def choose_lane(raw: RawPost) -> str:
    return lane_for(raw.text or "", raw.is_dm)


def ingest(ctx: AppContext, posts: Sequence[RawPost]) -> list[Persisted]:
    stored = persist_posts(ctx.engine, posts, choose_lane)
    jobs.on_persisted(ctx, stored)
    return stored
