"""Batch triage: a page of stored posts goes from "pending" to decided and acted on.

Intake enqueues one RQ job per page of up to BATCH_SIZE posts of one lane (triage_queue.enqueue), never
one per post; the lane (keyword pre-screen) only orders the pages. A job (`triage_batch`) runs
the pipeline over its posts at once and publishes every decision to the live feed. While other
pages wait to be decided, only the posts that must go first (`_split`: urgent by the model and
not one more report of an incident already waiting in the dispatch queue, or a reporter's
reply) are acted on there; the rest go, decided, to one job in the act queue (`act_batch`),
which workers serve after every lane (an act job takes on the act jobs waiting behind it, so a
deep backlog is acted on in groups of ACT_GROUP_POSTS). An act job names its posts only; their
decisions wait in Redis beside it (`_keep_decided`, one key per post), so handing posts back or
taking another job on moves ids, never the outputs and their embeddings. So every post is decided as soon as a worker is free,
whatever its wording, and a cry for help is acted on before the backlog of reports. Acting is
most urgent first, in one transaction per urgency group:

  1. mark the group triaged with one conditional UPDATE (`... WHERE triage_state = 'pending'
     RETURNING id`): a post another worker already took is skipped, so nothing is done twice,
     and on SQLite that first write takes the database's write lock for the whole group;
  2. open or join incidents (escalation.service.apply_triage, with finder.BatchFinder
     asking the database once per group and building its grouping candidates once), queue
     receipts; an incident joined by many posts of the group gets one UPDATE at the flush.
     Groups run one at a time (`_one_group_at_a_time`); with triage.plan_grouping on, a worker
     that finds another's group under way works out its own group's grouping while it waits
     (finder.plan), and under the lock matches again only the incidents opened or changed
     since: the same answers;
  3. queue the group's urgent incidents in the same transaction (service.queue_now: in front of
     a dispatcher at the commit, chain due at once), then write the group's triage records,
     memberships, messages and events with one INSERT each (plain rows, no ORM object per row);
  4. commit, then the Redis half: the group's stream entries and first escalation steps in one
     go (publish.publish_queued), receipts, clustering state, live feed.

Critical and high posts commit and reach the dispatch stream before the rest of their batch is
written. A worker killed mid-job leaves its posts pending and its job started: the sweep sees the
dead worker's liveness key gone and re-enqueues the posts (claims that expire).
"""
from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Mapping, Sequence

import redis
from rq import get_current_job
from rq.exceptions import DeserializationError, NoSuchJobError
from rq.job import Job
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlmodel import Session, select

from flows.escalate import policy_for
from grouping import finder
from flows.context import ACT_QUEUE, LANES, AppContext, process_context
from escalation import service
from flows import dbless, decisions
from flows.drill import is_drill
# The queueing half (enqueue, job ids and metas) is flows/triage_queue.py: intake, and so the
# connectors process, imports it without the model's side.
from flows.triage_queue import job_id, job_meta, meta_posts
from flows.live import publish_live_many
from flows.publish import dispatch_outcomes
from models.db import database_answers
from models.domain import GeoPoint, TriageOutput
from models.enums import TriageState, Urgency
from models.events import batch_appends, flush_appends
from models.tables import Incident, Post
from triage.base import TriageInput

log = logging.getLogger("flare.triage")

ACT_FUNCTION = "flows.triage_batch.act_batch"
ACT_JOB_PREFIX = "triage-act-"  # "triage-": the sweep reads which posts such a job covers
ACT_GROUP_POSTS = 64  # posts acted on in one transaction by an act job: as long as a page of old, so a cry for help waits no longer for a worker or the lock
ACT_TAKE_POSTS = 512  # posts an act job takes on, its own and those of act jobs waiting behind it
ACT_TAKE_JOBS = 16  # act jobs it looks at
DECIDED_PREFIX = "flare:act-decided:"  # + post id: a deferred post's model output, until acted on
# How long a deferred decision is kept (deleted once its post is acted on): only a decision whose
# act job was lost outlives it; a post whose decision is gone is decided again, the same way.
DECIDED_TTL_S = 6 * 3600
MAX_ATTEMPTS = 3  # a group whose transaction lost a race (deadlock, chain seq) is retried
URGENT = (Urgency.critical.value, Urgency.high.value)
GROUPING_LOCK_KEY = 0x466C617265  # "Flare": the advisory lock of grouping transactions (PostgreSQL)
_RANK = {u.value: u.rank for u in Urgency}
DATABASE_WAIT_S = 60.0  # how long a triage job waits for a database that stopped answering
DATABASE_PROBE_S = 0.25


def triage_batch(post_ids: list[int], ctx: AppContext | None = None) -> dict[str, int]:
    """The RQ job: triage and act on these posts (those still pending).

    A database that stops answering under the job is waited for (asked every DATABASE_PROBE_S,
    for up to DATABASE_WAIT_S) and the job runs again the moment it answers: what was committed
    stays done, what is still pending is decided (from the worker's remembered decisions) and
    acted on. A failed job would leave its posts to the sweep, which re-drives a post only once
    it is `outbox_grace_seconds` old (10 s by default), on its next round: a cry for help stored
    just before an outage would wait that long after the database came back."""
    ctx = ctx or process_context()
    deadline = time.monotonic() + DATABASE_WAIT_S
    while True:
        try:
            return run(ctx, post_ids)
        except DBAPIError as exc:
            if not _database_down(exc) or time.monotonic() > deadline:
                raise
            log.warning("triage of %d posts met an unreachable database (%s); running it again once it answers",
                        len(post_ids), str(exc).splitlines()[0])
        while not database_answers(ctx.engine):
            if time.monotonic() > deadline:
                raise OperationalError("SELECT 1", None, TimeoutError("the database did not answer in time"))
            time.sleep(DATABASE_PROBE_S)


def _database_down(exc: BaseException) -> bool:
    return isinstance(exc, (OperationalError, InterfaceError)) or \
        (isinstance(exc, DBAPIError) and exc.connection_invalidated)


def run(ctx: AppContext, post_ids: Sequence[int]) -> dict[str, int]:
    """Decide a page of posts with the model, then act on those that go first (`_split`) and
    leave the rest, decided, to an act job that runs once no page waits to be decided."""
    with Session(ctx.engine, expire_on_commit=False) as s:
        posts = list(s.exec(select(Post).where(Post.id.in_(list(post_ids)),
                                               Post.triage_state == TriageState.pending.value)).all())
    if not posts:
        return {"triaged": 0}
    t0 = time.perf_counter()
    outs, computed = ctx.decisions.decide([_input(p) for p in posts], shared=ctx.redis)
    durations = dict.fromkeys((p.id for p in posts), (time.perf_counter() - t0) * 1000 / len(posts))
    try:
        decisions.count(ctx.redis, len(posts), computed)
    except redis.RedisError:  # a figure for benchmarks only
        pass
    decided = _ranked(zip(posts, outs, strict=True))
    # The model's decision is on every open monitoring screen at once, acted on or not.
    publish_live_many(ctx, [{"type": "decided", "post_id": post.id, "urgency": out.urgency,
                             "category": out.category} for post, out in decided])
    first, later = _split(ctx, decided)
    counts = _act_on(ctx, first, durations)
    if later:
        _defer(ctx, later, durations)
    counts["deferred"] = len(later)
    return counts


def act_batch(post_ids: list[int], outputs: list[TriageOutput] | None = None, duration_ms: float | None = None,
              ctx: AppContext | None = None) -> dict[str, int]:
    """The RQ job for decided posts that could wait: act on those still pending, with the model
    outputs their decide job computed and kept in Redis (`_keep_decided`); a post is decided
    again only if its kept decision is gone. (A job queued by an older release carries its
    outputs and decide time in its call: they are used as they are.)

    When more act jobs wait behind it, it takes them on too (`_take_waiting`), up to
    ACT_TAKE_POSTS posts: one job, one read of the grouping candidates and one commit per
    ACT_GROUP_POSTS posts instead of one per page. Between groups it gives way to pages waiting
    to be decided, handing what it has not acted on back to the act queue as one job."""
    ctx = ctx or process_context()
    ids = list(post_ids)
    known: dict[int, tuple[TriageOutput, float]] = {}
    if outputs is not None:
        known = {post_id: (out, float(duration_ms or 0.0)) for post_id, out in zip(ids, outputs, strict=True)}
    current = get_current_job()
    if current is not None:
        try:
            taken, carried = _take_waiting(ctx, current, ids)
            ids += taken
            known.update(carried)
        except redis.RedisError:  # Redis went away: this job's own posts are acted on all the same
            log.warning("could not take on waiting act jobs; acting on this one's posts")
    # A post can sit in two act jobs (a sweep re-drive of one still covered): act on it once, or
    # its group's second copy would break a unique key and roll the whole group back.
    ids = list(dict.fromkeys(ids))
    kept = _read_decided(ctx, [post_id for post_id in ids if post_id not in known])
    unkept = set(known)  # from an older release's call, or decided again below: not kept in Redis
    known.update(kept)
    again = _decide_again(ctx, [post_id for post_id in ids if post_id not in known])
    unkept.update(again)
    known.update(again)
    pairs = [(post_id, known[post_id][0]) for post_id in ids if post_id in known]  # the rest: no longer pending
    durations = {post_id: ms for post_id, (_, ms) in known.items()}
    pairs.sort(key=lambda pair: (_RANK.get(pair[1].urgency, 9), pair[0]))  # most urgent first
    counts = {"triaged": 0, "skipped": len(ids) - len(pairs), "handed_back": 0}
    for start in range(0, len(pairs), ACT_GROUP_POSTS):
        if start and _pages_waiting(ctx):
            rest = pairs[start:]
            _keep_decided(ctx, [pair for pair in rest if pair[0] in unkept], durations)
            # At the front of the act queue: these posts were decided before anything behind them.
            _defer_pairs(ctx, rest, durations, at_front=True)
            counts["handed_back"] = len(rest)
            break
        chunk = pairs[start:start + ACT_GROUP_POSTS]
        with Session(ctx.engine, expire_on_commit=False) as s:
            posts = {p.id: p for p in s.exec(select(Post).where(
                Post.id.in_([post_id for post_id, _ in chunk]), Post.triage_state == TriageState.pending.value)).all()}
        decided = _ranked((posts[post_id], out) for post_id, out in chunk if post_id in posts)
        if decided:
            done = _act_on(ctx, decided, durations)
            counts["triaged"] += done["triaged"]
            counts["skipped"] += done["skipped"]
        counts["skipped"] += len(chunk) - len(decided)
        _forget_decided(ctx, [post_id for post_id, _ in chunk])
    return counts


def _take_waiting(ctx: AppContext, current, own: list[int]
                  ) -> tuple[list[int], dict[int, tuple[TriageOutput, float]]]:
    """Take act jobs waiting in the act queue (oldest first, whole jobs, up to ACT_TAKE_POSTS
    posts with this job's own): their posts, and the outputs and decide times of any queued by
    an older release (which carried them in the call).

    Claims expire as every triage job's do. This job's meta names the taken posts before they
    leave the queue, so the sweep counts them as this live job's; if this worker dies, its
    liveness key lapses and the sweep re-drives whatever is still pending. A job another worker
    started in the meantime is left to it (LREM finds nothing)."""
    room = ACT_TAKE_POSTS - len(own)
    queue = ctx.queues[ACT_QUEUE]
    if room <= 0:
        return [], {}
    waiting = [entry.decode() for entry in ctx.redis.lrange(queue.key, 0, ACT_TAKE_JOBS - 1)]
    if not waiting:
        return [], {}
    with ctx.redis.pipeline(transaction=False) as pipe:
        for waiting_id in waiting:
            pipe.hget(Job.key_for(waiting_id), "meta")
        metas = pipe.execute()
    chosen: dict[str, tuple[list[int], bool]] = {}
    covered = list(own)
    for waiting_id, raw in zip(waiting, metas, strict=True):
        meta = queue.serializer.loads(raw) if raw else {}
        posts = meta_posts(meta)
        if not waiting_id.startswith(ACT_JOB_PREFIX) or posts is None or len(posts) > room:
            continue
        chosen[waiting_id] = (posts, bool(meta.get("kept")))
        covered.extend(posts)
        room -= len(posts)
    if not chosen:
        return [], {}
    current.meta.update(job_meta(covered))
    current.save_meta()
    with ctx.redis.pipeline(transaction=False) as pipe:
        for waiting_id in chosen:
            pipe.lrem(queue.key, 1, waiting_id)
        removed = pipe.execute()
    taken: list[int] = []
    carried: dict[int, tuple[TriageOutput, float]] = {}
    for (waiting_id, (posts, kept)), n in zip(chosen.items(), removed, strict=True):
        if not n:
            continue
        taken.extend(posts)
        try:
            job = Job.fetch(waiting_id, connection=ctx.redis, serializer=queue.serializer)
            if not kept:  # queued by an older release: the outputs are in its call
                ids, outs, ms = job.args[:3]
                carried.update((post_id, (out, float(ms))) for post_id, out in zip(ids, outs, strict=True))
            job.delete(remove_from_queue=False)
        except (NoSuchJobError, DeserializationError, ValueError, TypeError):  # decided again if need be
            log.warning("act job %s could not be read; its posts are decided again if their decisions are gone",
                        waiting_id)
    return taken, carried


def _keep_decided(ctx: AppContext, pairs: Sequence[tuple[int, TriageOutput]], durations: Mapping[int, float]) -> None:
    """Keep deferred posts' outputs (and decide times) in Redis until they are acted on: one key
    per post, written in one round trip. RQ would compress each act job's call data, outputs and
    embeddings, every time the job was saved or handed back; kept apart they are written once."""
    with ctx.redis.pipeline(transaction=False) as pipe:
        for post_id, out in pairs:
            pipe.set(f"{DECIDED_PREFIX}{post_id}", pickle.dumps((out, durations[post_id]), protocol=pickle.HIGHEST_PROTOCOL),
                     ex=DECIDED_TTL_S)
        pipe.execute()


def _read_decided(ctx: AppContext, post_ids: list[int]) -> dict[int, tuple[TriageOutput, float]]:
    """The kept outputs of these posts (those still kept; unreadable ones count as gone)."""
    if not post_ids:
        return {}
    found: dict[int, tuple[TriageOutput, float]] = {}
    try:
        values = ctx.redis.mget([f"{DECIDED_PREFIX}{post_id}" for post_id in post_ids])
    except redis.RedisError:
        log.warning("kept decisions unreadable; deciding %d posts again", len(post_ids))
        return {}
    for post_id, value in zip(post_ids, values, strict=True):
        if value is None:
            continue
        try:
            out, ms = pickle.loads(value)
        except Exception:  # noqa: BLE001 - a damaged value: the post is decided again
            log.warning("kept decision of post %s unreadable; deciding it again", post_id)
            continue
        found[post_id] = (out, float(ms))
    return found


def _decide_again(ctx: AppContext, post_ids: list[int]) -> dict[int, tuple[TriageOutput, float]]:
    """Decide pending posts whose kept decision is gone: the same decision, since a post is
    decided alone (flows/decisions.py)."""
    if not post_ids:
        return {}
    with Session(ctx.engine, expire_on_commit=False) as s:
        posts = list(s.exec(select(Post).where(Post.id.in_(post_ids),
                                               Post.triage_state == TriageState.pending.value)).all())
    if not posts:
        return {}
    t0 = time.perf_counter()
    outs, _ = ctx.decisions.decide([_input(p) for p in posts], shared=ctx.redis)
    ms = (time.perf_counter() - t0) * 1000 / len(posts)
    return {post.id: (out, ms) for post, out in zip(posts, outs, strict=True)}


def _forget_decided(ctx: AppContext, post_ids: list[int]) -> None:
    try:
        ctx.redis.delete(*(f"{DECIDED_PREFIX}{post_id}" for post_id in post_ids))
    except redis.RedisError:  # they lapse after DECIDED_TTL_S
        pass


def _ranked(pairs) -> list[tuple[Post, TriageOutput]]:
    return sorted(pairs, key=lambda po: (_RANK.get(po[1].urgency, 9), po[0].id))


def _act_on(ctx: AppContext, decided: list[tuple[Post, TriageOutput]],
            durations: Mapping[int, float]) -> dict[str, int]:
    """Most urgent first: critical and high posts commit (and reach the dispatch stream) before
    the rest of the page is written."""
    urgent = [po for po in decided if po[1].urgency in URGENT]
    rest = [po for po in decided if po[1].urgency not in URGENT]
    counts = {"triaged": 0, "skipped": 0}
    for group in (urgent, rest):
        if group:
            done = _commit_group(ctx, group, durations)
            counts["triaged"] += done
            counts["skipped"] += len(group) - done
    return counts


def _split(ctx: AppContext, decided: list[tuple[Post, TriageOutput]]
           ) -> tuple[list[tuple[Post, TriageOutput]], list[tuple[Post, TriageOutput]]]:
    """Which decided posts are acted on now, and which wait until no page waits to be decided.

    | while pages wait to be decided                                   | acted on   |
    |------------------------------------------------------------------|------------|
    | from a reporter with an open incident (a reply)                  | now        |
    | critical/high or flagged for review, and not an echo of a surge  | now        |
    | an echo: joins an incident already waiting in the dispatch queue |            |
    |     with many reports, and no more urgent than it                | later      |
    | medium, low, none                                                | later      |
    | nothing waits to be decided                                      | now (all)  |

    So the model's urgency, not the keyword lane, decides how fast a post is acted on: a cry
    for help worded in any way is decided within one page's time and acted on at once, while
    thousands of reports of an event already in front of a dispatcher wait their turn.
    """
    if not _pages_waiting(ctx):
        return decided, []
    with Session(ctx.engine) as s:
        preview = finder.SurgePreview(ctx.cluster_state, s)
        replying = finder.follow_up_incidents(s, [post for post, _ in decided])
    first, later = [], []
    for post, out in decided:
        now = (post.platform, post.author_id) in replying or (
            (out.urgency in URGENT or out.needs_review) and not preview.echo(post, out))
        (first if now else later).append((post, out))
    return first, later


def _pages_waiting(ctx: AppContext) -> bool:
    """Do pages wait in a lane? Unknown while Redis is unreachable (a worker then claims posts
    from the database, flows/redisless.py): nothing is deferred to a queue it cannot reach."""
    try:
        with ctx.redis.pipeline(transaction=False) as pipe:
            for lane in LANES:
                pipe.llen(f"rq:queue:{lane}")
            return any(pipe.execute())
    except redis.RedisError:
        return False


def _defer(ctx: AppContext, later: list[tuple[Post, TriageOutput]], durations: Mapping[int, float]) -> None:
    """The posts stay pending until acted on: a lost act job is re-driven by the sweep (which
    decides them again: the same decision, since a post is decided alone)."""
    _defer_pairs(ctx, [(post.id, out) for post, out in later], durations)


def _defer_pairs(ctx: AppContext, pairs: list[tuple[int, TriageOutput]],
                 durations: Mapping[int, float], at_front: bool = False) -> None:
    """One act job for these decided posts. Their outputs are kept first (persist, then queue);
    handed back (`at_front`), they are kept already."""
    ids = [post_id for post_id, _ in pairs]
    if not at_front:
        _keep_decided(ctx, pairs, durations)
    ctx.queues[ACT_QUEUE].enqueue(
        ACT_FUNCTION, ids, job_id=job_id(ids, ACT_JOB_PREFIX),
        job_timeout=300, failure_ttl=7 * 86400, meta={**job_meta(ids), "kept": True}, at_front=at_front)


def _input(post: Post) -> TriageInput:
    return TriageInput(
        text=post.text, platform=post.platform, is_dm=post.is_dm,
        geo=GeoPoint(post.geo_lat, post.geo_lon, post.geo_place) if post.geo_lat is not None else None,
        author_location=post.author_location)


def _commit_group(ctx: AppContext, group: list[tuple[Post, TriageOutput]],
                  durations: Mapping[int, float]) -> int:
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return _act(ctx, group, durations)
        except (IntegrityError, DBAPIError) as exc:
            # A lost race with another worker (deadlock on a shared incident, or both appending
            # the same event seq) rolled the whole group back: nothing of it was written.
            if attempt == MAX_ATTEMPTS or isinstance(exc, DBAPIError) and exc.connection_invalidated:
                raise
            log.warning("triage batch of %d rolled back (%s); retrying", len(group), type(exc).__name__)
            time.sleep(0.05 * attempt)
    return 0


def _one_group_at_a_time(ctx: AppContext, session: Session, group: list[tuple[Post, TriageOutput]],
                         plan: finder.Plan | None) -> finder.Plan | None:
    """Grouping transactions run one at a time per database. On SQLite the first UPDATE takes the
    database's write lock for the whole group; on PostgreSQL a transaction-level advisory lock
    does the same. Without it two workers' groups lock the incidents they join in different
    orders (and the event inserts' foreign-key checks lock them too), and every cycle cost a
    second of deadlock_timeout and a rolled-back group. A group is short (plain-row inserts,
    one UPDATE per incident), and the model runs outside it, in parallel on every worker.

    With `triage.plan_grouping` on, when another worker holds the lock (PostgreSQL), this one
    works out the group's grouping while it waits (finder.plan, in a session of its own that
    writes nothing): under the lock
    the group is decided again against the database as it is then, matching again only the
    incidents opened or changed since (finder.Plan), so the lock is held for the writes and
    little else. Uncontended, nothing is planned: the group is decided under the lock at once.
    Returns the plan to decide with (None: every answer is worked out under the lock)."""
    if session.get_bind().dialect.name != "postgresql":
        return plan
    if not ctx.settings.triage.plan_grouping:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": GROUPING_LOCK_KEY})
        return plan
    if session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": GROUPING_LOCK_KEY}).scalar():
        return plan
    if plan is None:
        with Session(ctx.engine) as ahead:
            plan = finder.plan(ctx.cluster_state, ahead, group)
            ahead.rollback()
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": GROUPING_LOCK_KEY})
    return plan


def _act(ctx: AppContext, group: list[tuple[Post, TriageOutput]], durations: Mapping[int, float],
         plan: finder.Plan | None = None) -> int:
    outcomes: list[tuple[Post, TriageOutput, service.Outcome]] = []
    finder.prepare([post for post, _ in group])  # text-only work, outside the lock
    with Session(ctx.engine, expire_on_commit=False) as s:
        plan = _one_group_at_a_time(ctx, s, group, plan)
        ids = [post.id for post, _ in group]
        won = set(s.exec(update(Post).where(Post.id.in_(ids), Post.triage_state == TriageState.pending.value)
                         .values(triage_state=TriageState.done.value).returning(Post.id)).scalars().all())
        if not won:
            s.rollback()
            return 0
        batch_appends(s)
        # The claimed posts are not read again: what acting sets on them (disposition, drill
        # mark) is written at the end in one statement (service.write_dispositions).
        mine = [(post, out) for post, out in group if post.id in won]
        records: dict[int, service.TriageRow] = {}
        for post, out in mine:
            if post.malformed:
                out.needs_review = True
                out.reasons.append(f"payload malformed: {post.malformed_reason or 'unreadable'}")
            post.is_test = post.is_test or is_drill(ctx.settings, post.text, post.author_handle)
            records[post.id] = service.triage_row(post, out, durations[post.id])
        batch = finder.BatchFinder(ctx.cluster_state, s, [post for post, _ in mine], records, plan=plan)
        snapshot = policy_for(ctx)
        service.defer_messages(s)
        # Nothing this loop reads depends on rows it has not flushed yet (the finder keeps the
        # batch's own incidents in memory), so one flush at the end writes the lot.
        with s.no_autoflush:
            for post, out in mine:
                outcome = service.apply_triage(s, post, out, ctx.settings.service, ctx.dm_possible,
                                               policy_for=snapshot, finder=batch, record=records[post.id])
                batch.placed(post, out, s.get(Incident, outcome.incident_id) if outcome.incident_id else None)
                outcomes.append((post, out, outcome))
            _queue_in_transaction(s, [outcome for _, _, outcome in outcomes])
        by_post = {outcome_post.id: outcome for outcome_post, _, outcome in outcomes}
        service.write_dispositions(s, [post for post, _ in mine])
        # Grouping notes its reasons on the rows above: they are written now, in one statement.
        service.insert_triage_rows(s, list(records.values()))
        for msg in service.flush_deferred_messages(s):
            by_post[msg.post_id].message_ids.append(msg.id)
        flush_appends(s)
        s.commit()
    batch.save_locations()
    _after_commit(ctx, outcomes)
    return len(outcomes)


def _queue_in_transaction(session: Session, outcomes: list[service.Outcome]) -> None:
    """The group's incidents that go in front of a dispatcher are queued by its own transaction
    (service.queue_now): a cry for help is in the dispatch queue the moment its group commits,
    and the stream entries and first escalation steps of the whole group follow in one go
    (flows.publish.publish_queued), not one incident at a time."""
    queued: set[int] = set()
    for outcome in outcomes:
        if not outcome.needs_queue or not outcome.incident_id:
            continue
        if outcome.incident_id in queued or service.queue_now(session, session.get(Incident, outcome.incident_id)):
            queued.add(outcome.incident_id)
            outcome.queued, outcome.needs_queue = True, False


def _after_commit(ctx: AppContext, outcomes: list[tuple[Post, TriageOutput, service.Outcome]]) -> None:
    """The Redis half, most urgent first; anything lost here is re-driven by the sweep."""
    try:
        dispatch_outcomes(ctx, [outcome for _, _, outcome in outcomes])
    except Exception:  # noqa: BLE001 - the sweep publishes and sends whatever this missed
        log.exception("could not dispatch a triage batch's incidents and messages; the sweep will")
    finder.after_triage_many(ctx.cluster_state, [(post, out, outcome.incident_id) for post, out, outcome in outcomes])
    try:
        dbless.mark_triaged(ctx.redis, [dbless.post_key(post.platform, post.external_id)
                                        for post, out, _ in outcomes if out.urgency in URGENT])
    except redis.RedisError:  # only a provisional report shown twice during a later outage
        pass
    publish_live_many(ctx, [{"type": "triaged", "post_id": post.id, "urgency": out.urgency,
                             "category": out.category, "incident_id": outcome.incident_id}
                            for post, out, outcome in outcomes])
