"""The periodic sweep: re-drives anything the database says is overdue.

Posts persisted but never triaged, incidents never published to the dispatch stream,
messages due a retry, escalation steps whose timers were lost, and stream entries whose
incident was acknowledged but not XACKed. One sweeper at a time (a Redis lock).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.utils import str_to_date
from sqlmodel import Session, select

from flows import escalate, liveness
from flows.context import TRIAGE_QUEUES, AppContext
from escalation.service import belongs_in_queue
from evidence.checkpoint import CheckpointResult, write_checkpoint
from flows import publish, triage_queue
from models.access import purge_sessions
from models.db import refresh_statistics
from models.enums import DeliveryStatus, IncidentStatus, TriageState
from models.tables import Incident, OutboundMessage, Post
from models.types import utcnow

log = logging.getLogger("flare.sweep")
STUCK_STARTED_SECONDS = 90


_JOB_FIELDS = ("status", "worker_name", "started_at", "meta")
_DONE = {JobStatus.FAILED.value, JobStatus.STOPPED.value, JobStatus.CANCELED.value, JobStatus.FINISHED.value}


def _job_alive(ctx: AppContext, status: str, worker_name: str, started_at: datetime | None) -> bool:
    """Will this triage job still run (or finish running)?"""
    if status in _DONE:
        return False
    if status == JobStatus.STARTED.value:
        # A SIGKILLed worker leaves its job "started" until RQ's heartbeat expires; our own
        # heartbeat tells us within seconds that nobody is working on it any more (and a worker
        # only paused for a moment is not taken for dead).
        if worker_name and not liveness.worker_alive(ctx.redis, worker_name):
            return False
        if started_at is not None:
            started = started_at if started_at.tzinfo else started_at.replace(tzinfo=utcnow().tzinfo)
            return (utcnow() - started).total_seconds() <= STUCK_STARTED_SECONDS
    return True


def _covered_posts(ctx: AppContext) -> set[int]:
    """Posts some live triage job will still handle: queued in a lane or the act queue, or started
    by a live worker.

    A worker killed between BLPOP and marking its job started leaves the job "queued" but in no
    queue at all: only jobs found in a lane or in a started registry count.

    Which posts a job covers is in its meta (`flows.triage_queue.job_meta`): the sweep reads four
    small fields of each job's hash, never its call data (an act job carries its posts' model
    outputs, embeddings included: unpickling hundreds of them every sweep slowed the worker it
    runs in). A job queued without that meta (by an older version) is read whole.
    """
    pipe = ctx.redis.pipeline(transaction=False)
    for name in TRIAGE_QUEUES:
        pipe.lrange(f"rq:queue:{name}", 0, -1)
    job_ids = {job_id.decode() for ids in pipe.execute() for job_id in ids}
    for name in TRIAGE_QUEUES:
        job_ids.update(StartedJobRegistry(name, connection=ctx.redis).get_job_ids())
    serializer = ctx.queues[TRIAGE_QUEUES[0]].serializer
    covered: set[int] = set()
    triage_ids = sorted(j for j in job_ids if j.startswith("triage-"))  # pages, and one-post jobs of old
    for start in range(0, len(triage_ids), 500):
        chunk = triage_ids[start:start + 500]
        pipe = ctx.redis.pipeline(transaction=False)
        for job_id in chunk:
            pipe.hmget(Job.key_for(job_id), *_JOB_FIELDS)
        for job_id, (status, worker, started, meta) in zip(chunk, pipe.execute(), strict=True):
            if status is None:  # gone
                continue
            posts = triage_queue.meta_posts(serializer.loads(meta)) if meta else None
            if posts is None:
                job = Job.fetch(job_id, connection=ctx.redis)
                first = job.args[0] if job.args else []
                posts = first if isinstance(first, list) else [first]
            if _job_alive(ctx, status.decode(), (worker or b"").decode(),
                          str_to_date(started) if started else None):
                covered.update(posts)
    return covered


def sweep(ctx: AppContext) -> dict[str, int]:
    now = utcnow()
    grace = timedelta(seconds=ctx.settings.outbox_grace_seconds)
    counts = {"posts": 0, "incidents": 0, "messages": 0, "steps": 0, "acks": 0}
    with Session(ctx.engine) as s:
        # Plain rows, not ORM results: in a burst thousands of posts wait their turn, and this
        # runs every few seconds.
        pending = s.connection().execute(select(Post.id, Post.lane).where(
            Post.triage_state == TriageState.pending.value, Post.received_at < now - grace,
        ).order_by(Post.lane, Post.id).limit(5000)).all()
        # Never published, or queued in the database alone while Redis was unreachable (its
        # stream entry is added now; it is not queued again).
        unpublished = [incident_id for incident_id, urgency, flags in s.exec(
            select(Incident.id, Incident.urgency, Incident.flags).where(
                Incident.status.in_([IncidentStatus.new.value, IncidentStatus.queued.value]),
                Incident.stream_entry_id == ""))
            if belongs_in_queue(urgency, flags)]
        due_messages = s.exec(select(OutboundMessage.id).where(
            OutboundMessage.status == DeliveryStatus.queued.value,
            (OutboundMessage.next_attempt_at.is_(None) & (OutboundMessage.created_at < now - grace))
            | (OutboundMessage.next_attempt_at < now - grace),
        )).all()
    # In a burst thousands of posts wait their turn in a few hundred page jobs: one LRANGE per
    # lane and one fetch per 500 jobs tell which posts a live job still covers.
    covered = _covered_posts(ctx) if pending else set()
    lost = [(post_id, lane) for post_id, lane in pending if post_id not in covered]
    if lost:
        # The queues and the started registries are read one after the other: a job handing its
        # posts on to a new job (or popped by a worker) between the two reads is in neither.
        # Only what is still uncovered at a second look is lost.
        covered = _covered_posts(ctx)
        lost = [(post_id, lane) for post_id, lane in lost if post_id not in covered]
    triage_queue.enqueue(ctx, lost)
    counts["posts"] = len(lost)
    for incident_id in unpublished:
        publish.publish_incident(ctx, incident_id)
        counts["incidents"] += 1
    publish.enqueue_sends(ctx, list(due_messages))
    counts["messages"] = len(due_messages)
    counts["steps"] = escalate.redrive_overdue(ctx)
    # Start from the few entries still pending in the stream, not from every incident ever
    # acknowledged: an acknowledgement whose XACK was lost is finished here.
    pending_ids = [p["entry_id"] for p in ctx.dispatch.pending()]
    if pending_ids:
        with Session(ctx.engine) as s:
            acked_entries = s.exec(select(Incident.stream_entry_id).where(
                Incident.stream_entry_id.in_(pending_ids),
                Incident.status.not_in([IncidentStatus.new.value, IncidentStatus.queued.value]),
            )).all()
        for entry_id in acked_entries:
            ctx.dispatch.ack(entry_id)
            counts["acks"] += 1
    # Keeps the stream short; never passes an entry a console holds unacknowledged.
    counts["trimmed"] = ctx.dispatch.trim_acknowledged()
    counts["sessions_purged"] = purge_sessions(ctx.engine, now)
    if any(counts.values()):
        log.info("sweep re-drove %s", counts)
    return counts


def try_sweep(ctx: AppContext, interval: float) -> dict[str, int] | None:
    """Run the sweep unless another process did within `interval` seconds."""
    if not ctx.redis.set("flare:sweep:lock", "1", nx=True, px=max(100, int(interval * 1000))):
        return None
    return sweep(ctx)


STATISTICS_INTERVAL_S = 10.0  # how often one worker looks for tables a burst has outgrown


def try_refresh_statistics(ctx: AppContext) -> list[str] | None:
    """Refresh the planner's statistics of tables that changed a lot (models.db.refresh_statistics),
    unless another process looked within STATISTICS_INTERVAL_S."""
    if not ctx.redis.set("flare:db:statistics", "1", nx=True, px=int(STATISTICS_INTERVAL_S * 1000)):
        return None
    analyzed = refresh_statistics(ctx.engine)
    if analyzed:
        log.info("refreshed planner statistics of %s", ", ".join(analyzed))
    return analyzed


def try_checkpoint(ctx: AppContext) -> CheckpointResult | None:
    """Write the evidence checkpoint unless another process did within its interval."""
    settings = ctx.settings.evidence
    interval = settings.checkpoint_interval_seconds
    if ctx.evidence_keys is None or not ctx.redis.set("flare:evidence:checkpoint", "1", nx=True,
                                                      px=max(100, int(interval * 1000))):
        return None
    return write_checkpoint(ctx.engine, ctx.evidence_keys, ctx.settings.resolved_checkpoint_file,
                            settings.checkpoint_webhook_url, settings.webhook_timeout_seconds)
