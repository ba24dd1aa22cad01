"""GET /api/v1/backlog: how far triage is behind intake, so officers see a burst building up.

Back-pressure, not loss: when posts arrive faster than workers triage them, they wait in the
database (triage pending) and in the RQ lanes. This shows how many, per lane, and how old the
oldest waiting post is — the delay an officer should assume for anything not yet on the board.
"""
from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func
from sqlmodel import select

from flows.context import WORKER_QUEUES
from dashboard.deps import API_ERRORS, DB, Ctx, require
from models.enums import TriageState
from models.tables import Post, User
from models.types import utcnow

router = APIRouter(prefix="/api/v1", tags=["backlog"], responses=API_ERRORS)


def backlog_snapshot(ctx, db) -> dict:
    pending = Post.triage_state == TriageState.pending.value
    count, oldest = db.exec(select(func.count(Post.id), func.min(Post.received_at)).where(pending)).one()
    by_lane = dict(db.exec(select(Post.lane, func.count(Post.id)).where(pending).group_by(Post.lane)).all())
    pipe = ctx.redis.pipeline(transaction=False)
    for name in WORKER_QUEUES:
        pipe.llen(f"rq:queue:{name}")
    depths = dict(zip(WORKER_QUEUES, (int(n) for n in pipe.execute())))
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=utcnow().tzinfo)
    return {
        "queue_depths": depths,
        "posts_pending_triage": int(count or 0),
        "pending_by_lane": {lane: int(n) for lane, n in by_lane.items()},
        "oldest_untriaged_received_at": oldest.isoformat() if oldest else None,
        "oldest_untriaged_age_seconds": round((utcnow() - oldest).total_seconds(), 3) if oldest else 0.0,
    }


@router.get("/backlog")
def backlog(ctx: Ctx, db: DB, user: User = require("feed")) -> dict:
    return backlog_snapshot(ctx, db)
