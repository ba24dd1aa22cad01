"""A TCP forwarder a test can cut: the database "refusing connections" without touching the
shared PostgreSQL server (or Redis going away). While refusing, new connections are reset at once and live ones are
dropped; while black-holed, connections are accepted and nothing is answered on any of them (a
host gone silent: clients wait out their timeouts); `accept()` lets traffic through again on the same port.
`revive()` ends a black-hole the way a client does not see: new connections are answered again,
while the ones opened before stay silent and are never reset (their packets were lost, as after
a failover behind a silent network), so a client notices only through its own timeout."""
from __future__ import annotations

import socket
import threading


class TcpProxy:
    """Listens on 127.0.0.1:`port`; forwards to (host, port), or to a unix socket path."""

    def __init__(self, target_host: str, target_port: int | None = None) -> None:
        self.target = (target_host, target_port) if target_port is not None else target_host
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self._refusing = threading.Event()
        self._silent = threading.Event()
        self._held: list[socket.socket] = []  # connections accepted while black-holed, never answered
        self._dead: set[socket.socket] = set()  # silent for good after revive(), never reset
        self.refused = 0  # connections reset on arrival while refusing (a client trying again)
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        threading.Thread(target=self._accept_loop, daemon=True, name="tcp-proxy").start()

    def refuse(self) -> None:
        """Reset every live connection and every new one until accept()."""
        self._refusing.set()
        with self._lock:
            live, self._live = self._live, set()
        for sock in live:
            _reset(sock)

    def blackhole(self) -> None:
        """Answer nothing: what is sent on live connections is swallowed, new ones are accepted
        and left hanging. Nothing is refused or reset."""
        self._silent.set()

    def accept(self) -> None:
        self._refusing.clear()
        if self._silent.is_set():  # the silent spell ends the way a reconnecting client sees it
            self._silent.clear()
            self.refuse()
            self._refusing.clear()
        with self._lock:
            held, self._held = self._held, []
        for sock in held:
            _reset(sock)

    def revive(self) -> None:
        """Answer new connections again; every connection open now stays silent and open."""
        with self._lock:
            self._dead.update(self._live)
            self._dead.update(self._held)
            self._held = []
        self._silent.clear()

    def close(self) -> None:
        self._closed.set()
        self.refuse()
        with self._lock:
            held, self._held = self._held + list(self._dead), []
            self._dead = set()
        for sock in held:
            _reset(sock)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._refusing.is_set():
                self.refused += 1
                _reset(client)
                continue
            if self._silent.is_set():
                with self._lock:
                    self._held.append(client)
                continue
            try:
                if isinstance(self.target, str):
                    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    upstream.connect(self.target)
                else:
                    upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._live.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if not self._silent.is_set() and src not in self._dead:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with self._lock:
                    self._live.discard(sock)
                _reset(sock)


def _reset(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes the pump blocked in recv()
    except OSError:
        pass
    sock.close()


def proxied_redis_url(redis_url: str) -> tuple[TcpProxy, str]:
    """A proxy in front of the test Redis (TCP or the embedded server's unix socket) and the URL
    that reaches the same database through it."""
    from urllib.parse import parse_qs, urlparse

    parsed = urlparse(redis_url)
    if parsed.scheme == "unix":
        proxy = TcpProxy(parsed.path)
        db = parse_qs(parsed.query).get("db", ["0"])[0]
    else:
        proxy = TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 6379)
        db = parsed.path.lstrip("/") or "0"
    return proxy, f"redis://127.0.0.1:{proxy.port}/{db}"
