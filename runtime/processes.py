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


@dataclass
class Supervisor:
    settings: Settings
    env: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    redis: EmbeddedRedis | None = None
    log_dir: Path | None = None

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

    def spawn(self, name: str, *args: str) -> Child:
        child = Child(name, [sys.executable, "-m", "runtime", *args])
        log = open(self.log_dir / f"{name}.log", "ab", opener=private_opener)  # noqa: SIM115 - lives as long as the child
        child.process = subprocess.Popen(child.args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, umask=PRIVATE_UMASK)
        self.children.append(child)
        return child

    def restart(self, child: Child) -> None:
        self.kill(child, signal.SIGKILL)
        log = open(self.log_dir / f"{child.name}.log", "ab", opener=private_opener)  # noqa: SIM115
        child.process = subprocess.Popen(child.args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, umask=PRIVATE_UMASK)

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
        return dead


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
