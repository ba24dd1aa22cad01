"""Chaos: SIGKILL a worker in the middle of batch triage, start another, and check that every post
is triaged exactly once, joins at most one incident, and no reporter gets a message twice."""
from __future__ import annotations

import json
import os
import runpy
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from config import Settings
from flows.context import AppContext
from runtime.embedded import EmbeddedRedis
from flows.intake import ingest
from models.domain import RawPost
from models.enums import TriageState
from evidence.chain import verify_all
from models.events import verify_chain
from models.tables import IncidentEvent, IncidentPost, Post, TriageRecord
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
CHAOS_WORKER = ROOT / "tests" / "escalation" / "chaos_worker.py"
SCENARIO = runpy.run_path(str(ROOT / "bench" / "scenarios" / "burst.py"))


def _counts(engine) -> tuple[int, int]:
    with Session(engine) as s:
        pending = s.exec(select(func.count(Post.id)).where(Post.triage_state == TriageState.pending.value)).one()
        records = s.exec(select(func.count(TriageRecord.id))).one()
    return int(pending), int(records)



@pytest.mark.slow
@pytest.mark.timeout(240)
def test_worker_killed_mid_batch_loses_and_repeats_nothing(tmp_path: Path, database_url: str):
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    record, log = tmp_path / "sent.jsonl", tmp_path / "worker.log"
    cache = os.environ.get("FLARE_TRIAGE__MODEL_CACHE_DIR", str(Path("/tmp") / "flare-triage-test-models"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FLARE_DATABASE_URL": database_url, "FLARE_REDIS_URL": url,
           "FLARE_DATA_DIR": str(tmp_path / "data"), "FLARE_TRIAGE__MODEL_CACHE_DIR": cache,
           "FLARE_SWEEP_INTERVAL_SECONDS": "1", "FLARE_OUTBOX_GRACE_SECONDS": "1"}
    ctx = AppContext.build(Settings(_env_file=None, data_dir=tmp_path / "data", database_url=database_url,
                                    redis_url=url, sweep_interval_seconds=1, outbox_grace_seconds=1))
    entries = SCENARIO["burst_scenario"](400, 4, seconds=10.0, seed=3, n_quiet=6)
    ingest(ctx, [RawPost(platform="x", external_id=str(n), text=e.text, raw_payload=json.dumps({"text": e.text}),
                         author_id=e.author, author_handle=e.author) for n, e in enumerate(entries)])
    total = len(entries)
    procs: list[subprocess.Popen] = []
    try:
        first = subprocess.Popen([sys.executable, str(CHAOS_WORKER), str(record)], cwd=ROOT, env=env,
                                 stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(first)
        # Kill it as soon as it has written part of the backlog: it is then mid-batch or between two.
        wait_for(lambda: 0 < _counts(ctx.engine)[1] < total, 150, "the first worker to triage a batch")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        assert _counts(ctx.engine)[0] > 0, "the first worker finished everything before it was killed"
        second = subprocess.Popen([sys.executable, str(CHAOS_WORKER), str(record)], cwd=ROOT, env=env,
                                  stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(second)
        wait_for(lambda: _counts(ctx.engine)[0] == 0, 150, "the second worker to triage the rest")
        time.sleep(2.0)  # let the last replies go out
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        server.stop()
    with Session(ctx.engine) as s:
        per_post = Counter(s.exec(select(TriageRecord.post_id)).all())
        memberships = Counter(s.exec(select(IncidentPost.post_id)).all())
        events = s.exec(select(IncidentEvent)).all()
        stored = s.exec(select(func.count(Post.id))).one()
    assert stored == total
    assert len(per_post) == total and max(per_post.values()) == 1, "a post was triaged twice or not at all"
    assert max(memberships.values()) == 1, "a post joined two incidents"
    by_incident: dict[int, list[IncidentEvent]] = {}
    for ev in events:
        by_incident.setdefault(ev.incident_id, []).append(ev)
    assert all(verify_chain(evs, ctx.evidence_keys.hmac_key) is None for evs in by_incident.values())
    report = verify_all(ctx.engine)  # and every row an entry refers to still matches it
    assert report.ok, report.breaks[:3]
    sent = [json.loads(line)["key"] for line in record.read_text().splitlines()] if record.exists() else []
    assert sent, "no reply was sent"
    assert max(Counter(sent).values()) == 1, "a message was sent twice"
    ctx.close()
