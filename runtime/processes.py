"""Runs Flare's processes side by side (`flare run`, `flare demo`, `flare drill --embedded`).

Children get their own process group so Ctrl-C reaches the supervisor first; the supervisor
then stops every child (SIGTERM, then SIGKILL after a grace period) and the embedded Redis.
No orphans are left behind.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from config import Settings
from runtime.embedded import EmbeddedRedis
from models.db import PRIVATE_UMASK, private_dir, private_opener, upgrade


@dataclass
class Child:
    name: str
    args: list[str]
    process: subprocess.Popen | None = None


# A standby is started this long after it took over from a process that died, so loading it does
# not take CPU from the process that just took over (and the workers) while they catch up.
STANDBY_RESPAWN_DELAY_S = 5.0


@dataclass
class Supervisor:
    settings: Settings
    env: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    redis: EmbeddedRedis | None = None
    log_dir: Path | None = None
    # Warm standbys (`flare connectors --standby`): started beside the child of the same name,
    # loaded and waiting on their stdin; one takes the dead child's place at once, instead of a
    # new process that needs seconds to load (5-8 s on a loaded 2-core machine) before it polls.
    standbys: dict[str, subprocess.Popen] = field(default_factory=dict)
    _standby_due: dict[str, float] = field(default_factory=dict)

    def start_infrastructure(self) -> dict[str, str]:
        """Embedded Redis (when no URL is configured) and migrations; returns the child env."""
        env = dict(os.environ)
        env["FLARE_DATA_DIR"] = str(Path(self.settings.data_dir).resolve())
        if self.settings.embedded_redis:
            self.redis = EmbeddedRedis(Path(self.settings.data_dir))
            env["FLARE_REDIS_URL"] = self.redis.start()
        env["FLARE_DATABASE_URL"] = self.settings.resolved_database_url
        upgrade(env["FLARE_DATABASE_URL"])
        env.update(self.env)
        self.env = env
        self.log_dir = private_dir(Path(self.settings.data_dir) / "logs")
        return env

    def spawn(self, name: str, *args: str, standby: bool = False) -> Child:
        """Start a child. With `standby` (its command takes `--standby`), a warm standby of it is
        kept beside it to take its place should it die."""
        child = Child(name, [sys.executable, "-m", "runtime", *args])
        child.process = self._start(child.name, child.args)
        self.children.append(child)
        if standby:
            self._standby_due[name] = 0.0
            self._start_due_standbys()
        return child

    def _start(self, name: str, args: list[str], stdin: int | None = None) -> subprocess.Popen:
        """Start one process, its output in `<log dir>/<name>.log`, or without a log directory in
        this process's own output (a container's log)."""
        log = None
        if self.log_dir is not None:
            log = open(self.log_dir / f"{name}.log", "ab", opener=private_opener)  # noqa: SIM115 - lives as long as the child
        return subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT if log else None, stdin=stdin,
                                start_new_session=True, umask=PRIVATE_UMASK)

    def _start_due_standbys(self) -> None:
        now = time.monotonic()
        for child in self.children:
            due = self._standby_due.get(child.name)
            spare = self.standbys.get(child.name)
            if due is None or now < due or (spare is not None and spare.poll() is None):
                continue
            self.standbys[child.name] = self._start(child.name, [*child.args, "--standby"], stdin=subprocess.PIPE)

    def _take_over(self, child: Child) -> bool:
        """Tell the child's standby to start in its place; False when there is none alive."""
        spare = self.standbys.pop(child.name, None)
        if spare is None or spare.poll() is not None or spare.stdin is None:
            return False
        try:
            spare.stdin.write(b"go\n")
            spare.stdin.close()
        except OSError:  # it died just now: start afresh
            return False
        child.process = spare
        self._standby_due[child.name] = time.monotonic() + STANDBY_RESPAWN_DELAY_S
        return True

    def restart(self, child: Child) -> None:
        if child.process and child.process.poll() is None:
            self.kill(child, signal.SIGKILL)
            child.process.wait(timeout=10)  # never two of it at once
        if not self._take_over(child):
            child.process = self._start(child.name, child.args)

    @staticmethod
    def kill(child: Child, sig: int = signal.SIGTERM) -> None:
        if child.process and child.process.poll() is None:
            try:
                os.killpg(child.process.pid, sig)
            except ProcessLookupError:
                pass

    def dead_children(self) -> list[Child]:
        return [c for c in self.children if c.process and c.process.poll() is not None]

    def stop(self, grace: float = 8.0) -> None:
        for spare in self.standbys.values():
            if spare.poll() is None:
                spare.kill()  # it has done nothing yet
                spare.wait(timeout=5)
        self.standbys.clear()
        for child in self.children:
            self.kill(child, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill(child, signal.SIGKILL)
                child.process.wait(timeout=5)
        self.children.clear()
        if self.redis:
            self.redis.stop()
            self.redis = None

    def wait_forever(self) -> None:
        """Block until Ctrl-C/SIGTERM; restart children that die (a crashed worker comes back)."""
        stop = {"now": False}

        def _handler(signum, frame):
            stop["now"] = True

        signal.signal(signal.SIGINT, _handler)
        signal.signal(signal.SIGTERM, _handler)
        while not stop["now"]:
            self.restart_dead()
            time.sleep(0.5)

    def restart_dead(self) -> list[Child]:
        """Start again every child that exited (crashed, killed, or stopped on its own): a worker
        that dies anyway is back within a poll of this loop. Returns the restarted children."""
        dead = self.dead_children()
        for child in dead:
            print(f"  {child.name} exited ({child.process.returncode}); restarting", flush=True)
            self.restart(child)
        self._start_due_standbys()
        return dead


def keep_connectors(settings: Settings) -> None:
    """`flare connectors --keep-standby`: `flare connectors` and a warm standby of it, as `flare run`
    keeps them, for a deployment that runs each process on its own (compose, systemd). The
    connectors process that dies is replaced by its standby at once (a poll, not the 4-7 s a new
    process needs to load before it polls on a loaded machine), and a fresh standby follows.
    This process only starts and watches the two (it imports no connector); their output is its
    own. SIGTERM stops both."""
    sup = Supervisor(settings, env=dict(os.environ))
    try:
        sup.spawn("connectors", "connectors", standby=True)
        sup.wait_forever()
    finally:
        sup.stop()


def wait_http(url: str, timeout: float = 60.0) -> bool:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False
