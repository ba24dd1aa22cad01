"""Job paths that moved: RQ stores a job's function as a dotted path, so a job queued by an earlier
version under a path that has since moved would fail to import. The worker resolves those through
this table (a rolling upgrade drains the old jobs); new jobs are queued under the new paths."""
from __future__ import annotations

from collections.abc import Callable

from rq.job import Job

from flows import escalate, sending, triage_batch, triage_queue
from flows.context import AppContext


def _triage_post(post_id: int, ctx: AppContext | None = None) -> dict[str, int]:
    """The one-post triage job of earlier versions: a page of one."""
    return triage_batch.triage_batch([post_id], ctx)


MOVED: dict[str, Callable] = {
    "dashboard.jobs.send_message": sending.send_message,
    "dashboard.jobs.triage_post": _triage_post,
    "dashboard.escalation_runner.escalation_step": escalate.escalation_step,
}
# Jobs that run the triage model (the worker's model lock guards them).
MODEL_JOBS = frozenset({triage_queue.JOB_FUNCTION, "dashboard.jobs.triage_post"})


class FlareJob(Job):
    """An RQ job that finds a moved function under its old path."""

    @property
    def func(self):
        moved = MOVED.get(self.func_name or "")
        return moved if moved is not None else super().func
