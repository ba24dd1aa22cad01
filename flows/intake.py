"""Intake: store posts from any source (connectors, API, drill), then queue them for triage.

The pre-screen (keywords and a small learned reader, triage/prescreen.py) only picks the RQ lane
a page of posts waits in; what decides how fast a post is acted on is the model's urgency
(flows/triage_batch.py acts on critical posts first).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from connectors.intake import Persisted, persist_posts
from flows.context import AppContext
from flows import media_archive, triage_queue
from flows.live import publish_live_many
from models.domain import RawPost


def lane_chooser(ctx: AppContext) -> Callable[[RawPost], str]:
    """The lane of a post about to be stored, by this process's lane picker."""
    lanes = ctx.lanes
    return lambda raw: lanes(raw.text or "", raw.is_dm)


def ingest(ctx: AppContext, posts: Sequence[RawPost]) -> list[Persisted]:
    stored = persist_posts(ctx.engine, posts, lane_chooser(ctx))
    on_persisted(ctx, stored)
    return stored


def on_persisted(ctx: AppContext, stored: Sequence[Persisted]) -> None:
    """Queue triage for the newly stored posts (duplicates are skipped), then archive jobs on the
    media queue for those whose payload names media (fetched later, never waited on here), and
    tell the live feed."""
    created = [p for p in stored if p.created]
    triage_queue.enqueue(ctx, [(p.post_id, p.lane) for p in created])
    media_archive.enqueue(ctx, [p.post_id for p in created if p.media])
    publish_live_many(ctx, [{"type": "post", "post_id": p.post_id, "lane": p.lane} for p in created])
