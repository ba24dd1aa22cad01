"""RQ job paths kept for compatibility: the jobs themselves live in flows/.

Jobs carry ids only; the database row says what still needs doing, so a duplicate or replayed
job finds the work done and returns.
"""
from __future__ import annotations

from dashboard.context import AppContext, process_context
from flows import intake, publish, sending, triage_batch

# ----------------------------------------------------------------------------- aliases
# The post's path lives in flows/. These names stay because RQ stores job paths as strings
# (a rolling upgrade drains jobs queued by the previous version) and callers import them.
enqueue_send = publish.enqueue_send
publish_incident = publish.publish_incident
dispatch_outcome = publish.dispatch_outcome
on_persisted = intake.on_persisted


def enqueue_triage(ctx: AppContext, post_id: int, lane: str) -> None:
    triage_batch.enqueue(ctx, [(post_id, lane)])


def enqueue_triage_batch(ctx: AppContext, items: list[tuple[int, str]]) -> None:
    triage_batch.enqueue(ctx, items)


def triage_post(post_id: int, ctx: AppContext | None = None) -> str:
    """A one-post triage job queued by an earlier version: runs as a batch of one."""
    counts = triage_batch.run(ctx or process_context(), [post_id])
    return "triaged" if counts["triaged"] else "already-triaged"


# ----------------------------------------------------------------------------- jobs
def send_message(message_id: int, ctx: AppContext | None = None) -> str:
    """A one-message send job (also queued by earlier versions): a page of one."""
    return sending.send_messages([message_id], ctx).get(message_id, "nothing-to-do")
