"""How the composition root stores posts from any source: lane choice, drill marking, enqueue."""
from __future__ import annotations

from collections.abc import Sequence

from connectors.intake import Persisted, persist_posts
from dashboard import jobs
from dashboard.context import AppContext
from models.domain import RawPost
from triage.prescreen import lane_for

DRILL_MARK = "[FLARE DRILL"


def is_drill(settings, raw: RawPost) -> bool:
    """Drill traffic is marked only when it comes from the configured drill account."""
    author = (raw.author_handle or "").lstrip("@").lower()
    return DRILL_MARK in (raw.text or "") and author == settings.drill_author.lower()


def ingest(ctx: AppContext, posts: Sequence[RawPost]) -> list[Persisted]:
    stored = persist_posts(ctx.engine, posts, lambda r: lane_for(r.text or "", r.is_dm),
                           lambda r: is_drill(ctx.settings, r))
    jobs.on_persisted(ctx, stored)
    return stored
