"""While Redis is unreachable a worker claims pending posts straight from the database: a cry for
help is triaged and queued in the database (what the dispatchers' queue page reads) during the
outage, and its dispatch-stream entry follows when Redis is back, without queueing it twice."""

from __future__ import annotations

import threading
import time

import pytest
from rq import SimpleWorker
from sqlalchemy import update
from sqlmodel import Session, select

from connectors.intake import persist_posts
from flows.context import AppContext, set_process_context
from flows.redisless import claim_pending, probe_client, redis_reachable, triage_while_redis_down
from dashboard.routes.pages import open_queue
from flows.sweep import sweep
from runtime.worker import FlareWorker
from models.domain import RawPost
from models.enums import EventKind, IncidentStatus, TriageState
from models.tables import Incident, IncidentEvent, IncidentPost, Post
from tests.tcp_proxy import proxied_redis_url
from tests.fakes import AcceptingReplier
from tests.waiting import wait_for


def _raw(ext: str, text: str) -> RawPost:
    return RawPost(platform="x", external_id=ext, text=text, raw_payload="{}", author_id=f"a{ext}", author_handle=f"a{ext}")


def _store(engine, lanes: list[str]) -> list[int]:
    out = []
    for n, lane in enumerate(lanes):
        out += [p.post_id for p in persist_posts(engine, [_raw(f"{lane}{n}", f"post {n}")], lambda _r, lane=lane: lane)]
    return out


def test_claims_lease_pages_critical_lane_first(engine):
    ids = _store(engine, ["default", "default", "critical", "bulk", "critical"])
    first = claim_pending(engine, limit=3)
    assert first == sorted([ids[2], ids[4], ids[0]])  # both critical, then the oldest default
    assert claim_pending(engine, limit=10) == sorted([ids[1], ids[3]])  # leased posts are skipped
    assert claim_pending(engine) == []
    with Session(engine) as s:
        s.exec(update(Post).where(Post.id == ids[1]).values(triage_state=TriageState.done.value))
        s.commit()
    time.sleep(0.01)
    # A lease that ran out (its worker died) is claimed again; a triaged post never is.
    assert claim_pending(engine, lease_s=0.0) == sorted([ids[0], ids[2], ids[3], ids[4]])


@pytest.fixture
def cut(settings):
    proxy, url = proxied_redis_url(settings.redis_url)
    c = AppContext.build(settings.model_copy(update={"redis_url": url, "outbox_grace_seconds": 0}))
    c.repliers = {"x": AcceptingReplier()}
    set_process_context(c)
    yield c, proxy
    set_process_context(None)
    c.close()
    proxy.close()


def test_a_critical_is_queued_while_redis_is_down_and_the_stream_catches_up(cut):
    ctx, proxy = cut
    ctx.pipeline  # noqa: B018 - the model loads before the outage, as a worker's preload does
    proxy.refuse()
    assert not redis_reachable(probe_client(ctx))
    post_id = persist_posts(ctx.engine, [_raw("1", "my dad collapsed and is not breathing, 12 High Street Leeds")])[0].post_id

    stop = threading.Event()
    thread = threading.Thread(target=triage_while_redis_down, args=(ctx, threading.Lock(), stop), daemon=True)
    thread.start()
    try:

        def triaged() -> bool:
            with Session(ctx.engine) as s:
                return s.get(Post, post_id).triage_state == TriageState.done.value

        wait_for(triaged, 60, "the post to be triaged from the database while Redis is down")
    finally:
        stop.set()
        thread.join(timeout=10)
    with Session(ctx.engine) as s:
        incident_id = s.exec(select(IncidentPost.incident_id).where(IncidentPost.post_id == post_id)).one()
        incident = s.get(Incident, incident_id)
        assert incident.urgency == "critical" and incident.status == IncidentStatus.queued.value
        assert incident.queued_at is not None and incident.stream_entry_id == ""
        queued_at = incident.queued_at
        # The dispatchers' queue page reads the database: the incident is in front of them now.
        assert [row.incident.id for row in open_queue(s)] == [incident_id]

    proxy.accept()
    assert redis_reachable(probe_client(ctx))
    sweep(ctx)
    sweep(ctx)  # a second sweep finds nothing left to add
    with Session(ctx.engine) as s:
        incident = s.get(Incident, incident_id)
        queued_events = s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id, IncidentEvent.kind == EventKind.queued.value)).all()
    entries = ctx.redis.xrange(ctx.dispatch.key)
    assert [int(fields[b"incident_id"]) for _, fields in entries] == [incident_id]
    assert incident.stream_entry_id == entries[0][0].decode()
    assert incident.queued_at == queued_at and incident.status == IncidentStatus.queued.value
    assert len(queued_events) == 1  # queued once: the stream entry is not a second queueing


def test_a_redis_that_answers_nothing_is_noticed_in_seconds(cut):
    """A black-holed Redis (connections accepted, nothing answered) refuses nothing: the process
    client waits out its 30 s socket timeout on each call. The Redis-less thread asks a probe
    client that gives up after a second, and triages the claimed page with Redis calls that fail
    at once: the critical is queued in the database within seconds of the silence."""
    ctx, proxy = cut
    ctx.pipeline  # noqa: B018 - the model loads before the outage, as a worker's preload does
    assert ctx.redis.ping()  # a pooled connection is open: it hangs too, not only new ones
    post_id = persist_posts(ctx.engine, [_raw("2", "my dad collapsed and is not breathing, 14 High Street Leeds")])[0].post_id
    proxy.blackhole()
    stop = threading.Event()
    thread = threading.Thread(target=triage_while_redis_down, args=(ctx, threading.Lock(), stop), daemon=True)
    silent = time.monotonic()
    thread.start()
    try:

        def queued() -> bool:
            with Session(ctx.engine) as s:
                incident_id = s.exec(select(IncidentPost.incident_id).where(IncidentPost.post_id == post_id)).first()
                return incident_id is not None and s.get(Incident, incident_id).queued_at is not None

        # Bounded well below the process client's 30 s timeout, which the old probe waited out.
        wait_for(queued, 12, "the critical to be queued from the database while Redis answers nothing")
    finally:
        stop.set()
        proxy.accept()
        thread.join(timeout=40)
    assert time.monotonic() - silent < 12


def test_the_model_is_never_run_by_a_job_and_the_database_claims_at_once():
    lock = threading.Lock()
    worker = FlareWorker.__new__(FlareWorker)
    worker.model_lock = lock
    seen = []

    def execute_job(job, queue):
        seen.append(lock.locked())

    class Job:
        def __init__(self, func_name: str) -> None:
            self.func_name = func_name

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SimpleWorker, "execute_job", lambda self, job, queue: execute_job(job, queue))
        for name in ("flows.triage_batch.triage_batch", "flows.triage_batch.act_batch",
                     "flows.media_archive.archive_media", "dashboard.jobs.triage_post"):
            worker.execute_job(Job(name), None)
    # only the jobs that run the model hold it: acting, steps and fetches never hold back the
    # thread that triages from the database
    assert seen == [True, False, False, True] and not lock.locked()
