"""Chaos: SIGKILL the worker mid-chain, restart Redis from its AOF, restart the worker.

Afterwards every critical incident is acknowledged or has reached its last step, no step ran
twice, and every reporter got exactly one receipt and (if acknowledged) one acknowledgement.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from esc_helpers import RecordingReplier, make_user, open_critical
from sqlmodel import Session, select

from config import Settings
from flows import actions
from flows.context import AppContext, set_process_context
from runtime.embedded import EmbeddedRedis
from models.events import verify_chain
from models.tables import Incident, IncidentEvent, OutboundMessage
from tests.waiting import wait_for

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
CHAOS_POLICY = {
    "critical": {"steps": [{"after": 0, "action": "alert", "targets": ["dispatchers"]},
                           {"after": 2, "action": "realert", "sound": True, "targets": ["dispatchers"]},
                           {"after": 4, "action": "notify_external", "targets": ["duty_manager"]}],
                 "repeat_every": 0, "ack_sla": 3, "remind_after_ack": 0},
    "high": {"steps": [{"after": 0, "action": "alert"}]},
}


def start_worker(env: dict[str, str], record: Path, log: Path) -> subprocess.Popen:
    # Its own session: SIGKILL must take RQ's forked scheduler down with it, as a crash would.
    return subprocess.Popen([sys.executable, str(HERE / "chaos_worker.py"), str(record)], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def kill_worker(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)



@pytest.mark.slow
@pytest.mark.timeout(90)
def test_worker_and_redis_crash_mid_escalation(tmp_path: Path, database_url: str):
    redis_dir = tmp_path / "redis"
    server = EmbeddedRedis(redis_dir)
    url = server.start()
    policy = tmp_path / "chaos.yaml"
    policy.write_text(yaml.safe_dump(CHAOS_POLICY))
    record, log = tmp_path / "sent.jsonl", tmp_path / "worker.log"
    env = {**os.environ, "FLARE_DATABASE_URL": database_url, "FLARE_REDIS_URL": url,
           "FLARE_DATA_DIR": str(tmp_path / "data"), "FLARE_ESCALATION_POLICY_FILE": str(policy),
           "FLARE_SWEEP_INTERVAL_SECONDS": "1", "FLARE_OUTBOX_GRACE_SECONDS": "1"}
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", database_url=database_url, redis_url=url,
                        escalation_policy_file=policy, sweep_interval_seconds=1, outbox_grace_seconds=1)
    ctx = AppContext.build(settings)
    ctx.repliers = {"x": RecordingReplier()}  # only for dm_possible in this process; the worker sends
    set_process_context(ctx)
    workers: list[subprocess.Popen] = []
    try:
        workers.append(start_worker(env, record, log))
        wait_for(lambda: ctx.redis.keys("flare:worker-alive:*"), 30, "the worker to start")
        alice, _ = make_user(ctx, "alice")
        incidents = [open_critical(ctx, text=f"emergency number {i}") for i in range(6)]
        time.sleep(0.5)
        for incident_id in incidents[:2]:
            actions.acknowledge(ctx, incident_id, alice)
        time.sleep(1.6)  # ~2.1 s after opening: step 1 (due at 2 s) is being fired right now
        kill_worker(workers[-1])
        server.stop()  # SHUTDOWN: Redis writes its AOF and exits
        server.start()  # same dir: the streams, queues and scheduled jobs come back from the AOF
        actions.acknowledge(ctx, incidents[2], alice)  # a dispatcher acts while no worker runs
        workers.append(start_worker(env, record, log))

        def settled() -> bool:
            with Session(ctx.engine) as s:
                rows = s.exec(select(Incident).where(Incident.id.in_(incidents))).all()
                unsent = s.exec(select(OutboundMessage).where(OutboundMessage.status != "sent")).all()
            return not unsent and all(i.status == "acknowledged" or i.next_step_at is None for i in rows)

        wait_for(settled, 45, "every chain to finish and every message to be sent")
        time.sleep(1.0)  # anything that would fire twice has had its chance
    finally:
        for proc in workers:
            kill_worker(proc)
        set_process_context(None)
        ctx.close()
        server.stop()

    with Session(ctx.engine) as s:
        for incident_id in incidents:
            incident = s.get(Incident, incident_id)
            events = list(s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                                 .order_by(IncidentEvent.seq)))
            assert verify_chain(events, ctx.evidence_keys.hmac_key) is None
            numbers = [e.data["number"] for e in events if e.kind == "escalation_step" and e.data["kind"] == "step"]
            assert numbers == sorted(set(numbers)), f"incident {incident_id} fired a step twice: {numbers}"
            assert numbers == list(range(len(numbers))), f"incident {incident_id} skipped a step: {numbers}"
            if incident_id in incidents[3:]:
                assert incident.status == "queued" and numbers == [0, 1, 2]
                assert [e.kind for e in events].count("sla_breach") == 1
            else:
                assert incident.status == "acknowledged"
            assert [e.kind for e in events].count("sla_breach") <= 1
        outbox = s.exec(select(OutboundMessage)).all()
    sent = [json.loads(line) for line in record.read_text().splitlines()]
    per_reporter = Counter((m["recipient"], m["key"].split(":")[1]) for m in sent)
    authors = {m.recipient_id for m in outbox}
    assert len(authors) == len(incidents)
    for author in authors:
        assert per_reporter[(author, "receipt")] == 1, per_reporter
    acked_authors = {m.recipient_id for m in outbox if m.incident_id in incidents[:3]}
    for author in authors:
        assert per_reporter[(author, "acknowledged")] == (1 if author in acked_authors else 0), per_reporter
