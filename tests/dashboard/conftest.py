"""Dashboard fixtures: a real AppContext (database + Redis), one user per role, signed-in clients."""
from __future__ import annotations

import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi.testclient import TestClient
from runtime.worker import FlareWorker
from sqlmodel import Session, select

from connectors.intake import persist_posts
from flows import intake
from dashboard.app import create_app
from flows.context import WORKER_QUEUES, AppContext, set_process_context
from dashboard.security import create_user, token_digest
from models import DeliveryReceipt, RawPost, User
from models.enums import Role
from triage.factory import build_pipeline
from triage.prescreen import lane_for
from tests.db_cleanup import release_abandoned_sessions

PASSWORDS = {role.value: f"pw-{role.value}-correct-horse" for role in Role}


class RecordingReplier:
    """A platform double that records what Flare asked it to send."""

    platform = "x"

    def __init__(self) -> None:
        self.sent: list = []

    def supports_dm(self, request) -> bool:
        return True

    def send(self, request) -> DeliveryReceipt:
        self.sent.append(request)
        return DeliveryReceipt(ok=True, platform_message_id=f"m{len(self.sent)}")


@pytest.fixture
def ctx(settings) -> Iterator[AppContext]:
    c = AppContext.build(settings)
    c.repliers = {"x": RecordingReplier()}
    c.pipeline = build_pipeline(settings, kind="rules")  # fast and deterministic for UI tests
    set_process_context(c)
    yield c
    set_process_context(None)
    c.close()


@pytest.fixture
def users(ctx) -> dict[str, object]:
    """One active user per role, keyed by role name (username == role name)."""
    out = {}
    with Session(ctx.engine, expire_on_commit=False) as s:
        for role in Role:
            user, _token = create_user(s, role.value, PASSWORDS[role.value], role.value,
                                       display_name=f"{role.value.title()} Tester")
            out[role.value] = user
        s.commit()
    return out


@pytest.fixture
def app(settings, ctx):
    return create_app(settings, ctx)


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "page carries no CSRF token"
    return match.group(1)


def wall_key(app, username: str = "wall") -> str:
    """A fresh wall key for the wall account (what an admin's "new token" gives)."""
    key = secrets.token_urlsafe(32)
    with Session(app.state.ctx.engine) as s:
        wall = s.exec(select(User).where(User.username == username)).one()
        wall.api_token_hash = token_digest(key)
        s.add(wall)
        s.commit()
    return key


def login(app, role: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    token = csrf_from(client.get("/login").text)
    if role == Role.wall.value:  # a wall signs in with its key, never a password
        r = client.post("/wall/enter", data={"key": wall_key(app), "csrf_token": token})
        assert r.status_code == 303, r.text
        client.csrf = csrf_from(client.get("/wall/enter").text)
        return client
    r = client.post("/login", data={"username": role, "password": PASSWORDS[role], "csrf_token": token})
    assert r.status_code == 303, r.text
    client.csrf = csrf_from(client.get("/login").text)  # the session's token after sign-in
    return client


@pytest.fixture
def client_for(app, users):
    clients: list[TestClient] = []

    def make(role: str) -> TestClient:
        c = login(app, role)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


def drain(ctx: AppContext) -> None:
    FlareWorker([ctx.queues[q] for q in WORKER_QUEUES], connection=ctx.redis).work(burst=True)


def raw_post(ext: str, text: str, author: str = "u1", **extra) -> RawPost:
    return RawPost(platform=extra.pop("platform", "x"), external_id=ext, text=text,
                   raw_payload=extra.pop("raw_payload", '{"id":"%s"}' % ext),
                   author_id=author, author_handle=f"@{author}", **extra)


def ingest(ctx: AppContext, posts: list[RawPost]) -> list[int]:
    stored = persist_posts(ctx.engine, posts, lambda r: lane_for(r.text, r.is_dm))
    intake.on_persisted(ctx, stored)
    return [p.post_id for p in stored]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(app):
    """The app under uvicorn in a thread on a free port; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                            timeout_graceful_shutdown=2)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
    hub = getattr(app.state, "live_hub", None)
    if hub is not None:
        hub.stop()  # before the context closes the Redis pool under the listener
    release_abandoned_sessions()  # a request cut short at shutdown must not hold the next test's TRUNCATE


class MediaHost:
    """A local web server standing in for a platform's media host; counts what it was asked."""

    def __init__(self) -> None:
        import http.server

        self.files: dict[str, tuple[str, bytes]] = {}
        self.requests: list[str] = []
        self.hosts: list[str] = []  # the Host header of each request
        host = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                host.requests.append(self.path)
                host.hosts.append(self.headers.get("host", ""))
                if self.path.startswith("/redirect-to"):
                    self.send_response(302)
                    self.send_header("location", self.path[len("/redirect-to"):])
                    self.end_headers()
                    return
                if self.path not in host.files:
                    self.send_error(404)
                    return
                ctype, body = host.files[self.path]
                self.send_response(200)
                self.send_header("content-type", ctype)
                if not self.path.startswith("/chunked"):
                    self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def media_host():
    host = MediaHost()
    yield host
    host.close()


@pytest.fixture
def archiving(ctx):
    """Turn the media archive on for this test, against local servers."""
    ctx.settings.media_archive.enabled = True
    ctx.settings.media_archive.allow_private_addresses = True
    return ctx.settings.media_archive
