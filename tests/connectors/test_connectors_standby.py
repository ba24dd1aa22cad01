"""`flare run`'s supervisor keeps a warm standby of `flare connectors`: loaded, waiting on its
stdin, polling nothing. When the connectors process dies the standby takes its place (the same
process, told to go), and a fresh standby follows."""
from __future__ import annotations

import os
import signal
from pathlib import Path

from sqlmodel import Session, select

from config import Settings
from connectors.sandbox import SandboxServer, SandboxState
from models.db import make_engine
from models.tables import Post
from runtime import processes
from runtime.demo import sandbox_client_env
from runtime.embedded import EmbeddedRedis
from runtime.processes import Supervisor
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_a_standby_takes_the_place_of_connectors_that_died(tmp_path, database_url, monkeypatch):
    monkeypatch.setattr(processes, "STANDBY_RESPAWN_DELAY_S", 0.0)
    redis = EmbeddedRedis(tmp_path / "redis")
    redis_url = redis.start()
    state = SandboxState(handle="flare999")
    sandbox = SandboxServer(state)
    env = {**os.environ, **sandbox_client_env(sandbox.start(), "flare999"), "PYTHONPATH": str(ROOT),
           "FLARE_DATABASE_URL": database_url, "FLARE_REDIS_URL": redis_url, "FLARE_DATA_DIR": str(tmp_path / "data"),
           "FLARE_X__POLL_SECONDS": "0.5"}
    sup = Supervisor(Settings(_env_file=None, data_dir=tmp_path / "data"), env=env, log_dir=tmp_path / "logs")
    sup.log_dir.mkdir()
    engine = make_engine(database_url)
    log = sup.log_dir / "connectors.log"

    def stored(text: str) -> bool:
        with Session(engine) as s:
            return s.exec(select(Post.id).where(Post.text.contains(text))).first() is not None

    try:
        child = sup.spawn("connectors", "connectors", standby=True)
        wait_for(lambda: log.exists() and "standing by" in log.read_text(), 120, "the standby to load")
        state.add_post("x", "@flare999 smoke from the flat below", "first")
        wait_for(lambda: stored("smoke from the flat below"), 60, "the first post stored")
        spare = sup.standbys["connectors"]
        assert spare.poll() is None and "taking over" not in log.read_text()

        os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait(timeout=10)
        assert sup.restart_dead() == [child]

        assert child.process is spare  # the standby, not a new process
        state.add_post("x", "@flare999 the stairwell is full of smoke", "second")
        wait_for(lambda: stored("the stairwell is full of smoke"), 60, "a post stored by the standby")
        assert "standby taking over" in log.read_text()
        wait_for(lambda: (sup.restart_dead(), sup.standbys.get("connectors") not in (None, spare))[1], 10,
                 "a fresh standby")
        assert sup.standbys["connectors"].poll() is None
    finally:
        sup.stop()
        engine.dispose()
        sandbox.stop()
        redis.stop()
