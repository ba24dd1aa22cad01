"""A worker outlives a Redis restart: it reconnects and triages what arrives afterwards."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from sqlmodel import Session, select

from config import Settings
from flows.context import AppContext
from runtime.embedded import EmbeddedRedis
from flows.intake import ingest
from models.domain import RawPost
from models.enums import TriageState
from models.tables import Post
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
CHAOS_WORKER = ROOT / "tests" / "escalation" / "chaos_worker.py"



def _triaged(ctx: AppContext, external_id: str) -> bool:
    with Session(ctx.engine) as s:
        post = s.exec(select(Post).where(Post.external_id == external_id)).first()
        return post is not None and post.triage_state == TriageState.done.value


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_worker_survives_redis_restart(tmp_path: Path, database_url: str):
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    cache = os.environ.get("FLARE_TRIAGE__MODEL_CACHE_DIR", str(Path("/tmp") / "flare-triage-test-models"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FLARE_DATABASE_URL": database_url, "FLARE_REDIS_URL": url,
           "FLARE_DATA_DIR": str(tmp_path / "data"), "FLARE_TRIAGE__MODEL_CACHE_DIR": cache,
           "FLARE_SWEEP_INTERVAL_SECONDS": "1", "FLARE_OUTBOX_GRACE_SECONDS": "1"}
    ctx = AppContext.build(Settings(_env_file=None, data_dir=tmp_path / "data", database_url=database_url,
                                    redis_url=url))
    worker = subprocess.Popen([sys.executable, str(CHAOS_WORKER), str(tmp_path / "sent.jsonl")], cwd=ROOT, env=env,
                              stdout=(tmp_path / "worker.log").open("ab"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        def post(n: int) -> None:
            text = f"my dad collapsed and is not breathing, {n} High Street Leeds"
            ingest(ctx, [RawPost(platform="x", external_id=str(n), text=text, raw_payload=json.dumps({"text": text}),
                                 author_id=f"reporter{n}", author_handle=f"reporter{n}")])

        post(1)
        wait_for(lambda: _triaged(ctx, "1"), 120, "the first post to be triaged")
        server.stop()  # Redis goes away while the worker waits for work
        time.sleep(3.0)
        assert worker.poll() is None, "the worker exited when Redis went away"
        server.start()  # same data directory and socket: the AOF brings the queues back
        ctx.redis.connection_pool.disconnect()
        wait_for(lambda: _alive(ctx), 10, "Redis to answer again")
        post(2)
        wait_for(lambda: _triaged(ctx, "2"), 60, "a post sent after the restart to be triaged")
        # Its receipt goes out too: the sender threads came back under fresh names (the restarted
        # Redis remembers their old registrations, and RQ refuses a second worker of one name).
        wait_for(lambda: "reporter2" in _recipients(tmp_path / "sent.jsonl"), 15, "the receipt after the restart")
        assert worker.poll() is None
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        server.stop()
        ctx.close()


def _recipients(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {json.loads(line)["recipient"] for line in path.read_text().splitlines() if line.strip()}


def _alive(ctx: AppContext) -> bool:
    try:
        return bool(ctx.redis.ping())
    except redis.RedisError:
        return False
