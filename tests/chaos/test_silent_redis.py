"""A Redis that answers nothing costs seconds, not socket timeouts.

A black-holed Redis (connections accepted, nothing answered, nothing refused) and then one that
answers new connections again while the old ones stay silent for good (their packets were lost,
as after a failover behind a silent network; nothing resets them): the worker's blocking
dequeue, its sweep and its escalation step timer, and the connectors' hand-on and health writes,
each notice through a short timeout of their own instead of the process client's 30 s (or RQ's
415 s read timeout on its blocking dequeue).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
import redis
import yaml
from sqlmodel import Session, select

from config import Settings
from config.settings import XSettings
from connectors.intake import persist_posts
from connectors.sandbox import SandboxServer, SandboxState
from flows.context import AppContext, impatient_client, set_process_context
from flows.intake import ingest
from models.domain import RawPost
from models.enums import TriageState
from models.tables import Incident, IncidentEvent, IncidentPost, Post
from runtime.connector_loop import run_connectors
from tests.escalation.esc_helpers import open_critical
from tests.tcp_proxy import proxied_redis_url
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "escalation" / "chaos_worker.py"
CRITICAL = "my dad collapsed and is not breathing, {n} High Street Leeds"
# A step every 2 s for 40 s: steps fall due while Redis is silent and after it answers again.
POLICY = {"critical": {"steps": [{"after": 2 * n, "action": "realert" if n else "alert", "targets": ["dispatchers"]}
                                 for n in range(21)], "repeat_every": 0, "ack_sla": 600, "remind_after_ack": 0},
          "high": {"steps": [{"after": 0, "action": "alert"}]}}
QUEUED_WITHIN_S = 10.0  # the target for a critical during faults
STEP_LATE_AT_MOST_S = 3.5  # a probe's second, a round of the step timer, the database


def test_a_client_with_a_hold_pays_for_a_silent_server_once_per_hold(redis_url):
    proxy, url = proxied_redis_url(redis_url)
    client = impatient_client(redis.Redis.from_url(url), 0.5, hold_s=1.0)
    try:
        assert client.ping()
        proxy.blackhole()
        costs = []
        for _ in range(4):
            started = time.monotonic()
            with pytest.raises(redis.RedisError):
                pipe = client.pipeline()
                pipe.set("flare:test:silent", "1")
                pipe.execute()
            costs.append(time.monotonic() - started)
        assert 0.4 < costs[0] < 1.5 and max(costs[1:]) < 0.1  # the timeout once, then at once
        proxy.accept()
        time.sleep(1.1)  # the hold ends: the next call asks again
        assert client.ping()
    finally:
        client.close()
        proxy.close()


def _queued(ctx: AppContext, post_id: int) -> bool:
    with Session(ctx.engine) as s:
        incident_id = s.exec(select(IncidentPost.incident_id).where(IncidentPost.post_id == post_id)).first()
        return incident_id is not None and s.get(Incident, incident_id).queued_at is not None


def _triaged(ctx: AppContext, post_id: int) -> bool:
    with Session(ctx.engine) as s:
        return s.get(Post, post_id).triage_state == TriageState.done.value


def _raw(n: int) -> RawPost:
    text = CRITICAL.format(n=n)
    return RawPost(platform="x", external_id=f"silent{n}", text=text, raw_payload="{}", author_id=f"reporter{n}",
                   author_handle=f"reporter{n}")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_worker_rides_out_a_silent_redis(tmp_path: Path, settings: Settings):
    proxy, proxied = proxied_redis_url(settings.redis_url)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    settings = settings.model_copy(update={"escalation_policy_file": policy, "sweep_interval_seconds": 1,
                                           "outbox_grace_seconds": 1})
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FLARE_DATABASE_URL": settings.resolved_database_url,
           "FLARE_REDIS_URL": proxied, "FLARE_DATA_DIR": str(settings.data_dir),
           "FLARE_ESCALATION_POLICY_FILE": str(policy), "FLARE_SWEEP_INTERVAL_SECONDS": "1",
           "FLARE_OUTBOX_GRACE_SECONDS": "1"}
    ctx = AppContext.build(settings)  # the test's side, straight to Redis (connectors, dispatchers)
    set_process_context(ctx)
    worker = subprocess.Popen([sys.executable, str(WORKER), str(tmp_path / "sent.jsonl"), "--rules"], cwd=ROOT,
                              env=env, stdout=(tmp_path / "worker.log").open("ab"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        wait_for(lambda: ctx.redis.keys("flare:worker-alive:*"), 60, "the worker to start")
        first = ingest(ctx, [_raw(1)])[0].post_id
        wait_for(lambda: _triaged(ctx, first), 30, "a post to be triaged through Redis")
        chained = open_critical(ctx, text="help, my neighbour collapsed at 3 Mill Lane")
        time.sleep(2.5)  # its second step fires while Redis answers

        proxy.blackhole()  # every connection the worker holds goes silent; new ones hang
        silent = time.monotonic()
        # Stored as a connector stores it when Redis does not answer: in the database only.
        during = persist_posts(ctx.engine, [_raw(2)], lambda _raw: "critical")[0].post_id
        wait_for(lambda: _queued(ctx, during), QUEUED_WITHIN_S, "a critical to be queued while Redis is silent")
        assert time.monotonic() - silent < QUEUED_WITHIN_S
        time.sleep(max(0.0, 8.0 - (time.monotonic() - silent)))  # steps fall due during the silence

        proxy.revive()  # Redis answers again, but not on any connection opened before
        revived = time.monotonic()
        # By now the probe answers again on a new connection: the worker no longer triages from
        # the database, and a post queued in RQ waits for the worker's blocking dequeue, whose
        # connection went silent with the rest.
        time.sleep(3.0)
        queued = time.monotonic()
        after = ingest(ctx, [_raw(3)])[0].post_id
        wait_for(lambda: _triaged(ctx, after), QUEUED_WITHIN_S, "a post queued in RQ after Redis came back")
        assert time.monotonic() - queued < QUEUED_WITHIN_S
        time.sleep(max(0.0, 10.0 - (time.monotonic() - revived)))  # steps fall due after it came back
        assert worker.poll() is None, "the worker exited"
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        set_process_context(None)
        ctx.close()
        proxy.close()
    with Session(ctx.engine) as s:
        steps = [e.data for e in s.exec(select(IncidentEvent).where(
            IncidentEvent.incident_id == chained, IncidentEvent.kind == "escalation_step").order_by(IncidentEvent.seq))]
    due = [datetime.fromisoformat(step["due_at"]).timestamp() for step in steps]
    numbers = [step["number"] for step in steps]
    assert numbers == list(range(len(numbers))), numbers  # none skipped, none twice
    assert len(steps) >= 9, steps  # the chain went on through the silence and after it
    late = {step["number"]: step["lateness_s"] for step in steps}
    assert max(late.values()) <= STEP_LATE_AT_MOST_S, (late, due)


@pytest.mark.timeout(60)
def test_connectors_keep_storing_while_redis_is_silent(settings: Settings):
    """Each poll writes the source's health to Redis and hands what it stored on to triage: with a
    silent Redis on the process client's 30 s timeout, a source polled about twice a minute."""
    state = SandboxState()
    server = SandboxServer(state)
    url = server.start()
    proxy, proxied = proxied_redis_url(settings.redis_url)
    x = XSettings(bearer_token="sandbox-bearer", user_id="1000", base_url=url, poll_seconds=0.3)
    ctx = AppContext.build(settings.model_copy(update={"redis_url": proxied, "x": x}))
    stop = threading.Event()
    thread = threading.Thread(target=run_connectors, args=(ctx, stop), daemon=True)
    try:
        thread.start()
        item = state.add_post("x", "@flare999 is the bridge open", "before")
        wait_for(lambda: _stored(ctx, item.external_id), 20, "a post stored while Redis answers")
        proxy.blackhole()
        for n in range(3):
            item = state.add_post("x", f"@flare999 my dad collapsed and is not breathing, {n} Mill Lane", f"silent{n}")
            posted = time.monotonic()
            wait_for(lambda item=item: _stored(ctx, item.external_id), 5, "a post stored while Redis is silent")
            assert time.monotonic() - posted < 3.5  # a poll interval, a 1 s timeout, a hedge at most
    finally:
        stop.set()
        proxy.accept()
        thread.join(timeout=15)
        ctx.close()
        proxy.close()
        server.stop()


def _stored(ctx: AppContext, external_id: str) -> bool:
    with Session(ctx.engine) as s:
        return s.exec(select(Post.id).where(Post.external_id == external_id)).first() is not None
