"""`flare run`'s supervisor keeps a warm standby of `flare connectors`: loaded, waiting on its
stdin, polling nothing. When the connectors process dies the standby takes its place (the same
process, told to go), and a fresh standby follows."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
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


@dataclass
class Platforms:
    """The sandbox platforms, an embedded Redis and the environment a connectors process needs."""

    state: SandboxState
    env: dict[str, str]
    engine: Engine

    def stored(self, text: str) -> bool:
        with Session(self.engine) as s:
            return s.exec(select(Post.id).where(Post.text.contains(text))).first() is not None


@pytest.fixture
def platforms(tmp_path, database_url) -> Iterator[Platforms]:
    redis = EmbeddedRedis(tmp_path / "redis")
    redis_url = redis.start()
    state = SandboxState(handle="flare999")
    sandbox = SandboxServer(state)
    env = {**os.environ, **sandbox_client_env(sandbox.start(), "flare999"), "PYTHONPATH": str(ROOT),
           "FLARE_DATABASE_URL": database_url, "FLARE_REDIS_URL": redis_url, "FLARE_DATA_DIR": str(tmp_path / "data"),
           "FLARE_X__POLL_SECONDS": "0.5"}
    engine = make_engine(database_url)
    try:
        yield Platforms(state, env, engine)
    finally:
        engine.dispose()
        sandbox.stop()
        redis.stop()


def test_a_standby_takes_the_place_of_connectors_that_died(tmp_path, platforms, monkeypatch):
    monkeypatch.setattr(processes, "STANDBY_RESPAWN_DELAY_S", 0.0)
    state, stored = platforms.state, platforms.stored
    sup = Supervisor(Settings(_env_file=None, data_dir=tmp_path / "data"), env=platforms.env, log_dir=tmp_path / "logs")
    sup.log_dir.mkdir()
    log = sup.log_dir / "connectors.log"
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


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def _is_standby(pid: int) -> bool:
    return b"--standby" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


def test_flare_connectors_keeps_a_standby_of_its_own(tmp_path, platforms):
    """`flare connectors --keep-standby` (what the compose file runs): a deployment that runs each
    process on its own gets the warm standby `flare run` keeps, so the connectors process that
    dies is replaced by one already loaded, not by a restart that loads for seconds."""
    if not Path("/proc/self/task").exists():
        pytest.skip("finds the supervisor's children through /proc")
    state, stored = platforms.state, platforms.stored
    out = tmp_path / "connectors.out"
    with open(out, "wb") as log:
        keeper = subprocess.Popen([sys.executable, "-m", "runtime", "connectors", "--keep-standby"], env=platforms.env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: "standing by" in out.read_text(), 120, "the standby to load")
        state.add_post("x", "@flare999 smoke from the flat below", "first")
        wait_for(lambda: stored("smoke from the flat below"), 60, "the first post stored")
        kids = _children(keeper.pid)
        active = [pid for pid in kids if not _is_standby(pid)]
        assert len(kids) == 2 and len(active) == 1, kids
        assert "taking over" not in out.read_text()

        os.kill(active[0], signal.SIGKILL)
        wait_for(lambda: "standby taking over" in out.read_text(), 30, "the standby taking over")
        state.add_post("x", "@flare999 the stairwell is full of smoke", "second")
        wait_for(lambda: stored("the stairwell is full of smoke"), 60, "a post stored by the standby")
        assert active[0] not in _children(keeper.pid)
    finally:
        os.killpg(keeper.pid, signal.SIGTERM)
        keeper.wait(timeout=30)
    assert not [pid for pid in kids if Path(f"/proc/{pid}").exists()]  # SIGTERM stopped both
