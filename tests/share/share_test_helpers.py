"""Helpers for the share-link tests: a platform double, the test environment, tiny JPEG-like bytes."""
from __future__ import annotations

import hashlib
import re
import socket
from dataclasses import dataclass

import httpx
from sqlmodel import Session, select

from flows.context import AppContext
from models.domain import DeliveryReceipt
from models.media import SharedItem
from models.tables import IncidentEvent

DISPATCHER_PASSWORD = "dispatcher-pw-123"


class DmReplier:
    """A platform double that can DM and records what it was asked to send."""

    platform = "x"

    def __init__(self) -> None:
        self.sent: list = []

    def supports_dm(self, request) -> bool:
        return True

    def send(self, request) -> DeliveryReceipt:
        self.sent.append(request)
        return DeliveryReceipt(ok=True, platform_message_id=f"dm{len(self.sent)}")


@dataclass
class ShareEnv:
    base: str
    ctx: AppContext
    incident_id: int
    post_id: int
    token: str  # the dispatcher's API bearer token
    officer_token: str

    @property
    def settings(self):
        return self.ctx.settings

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)

    def new_link(self) -> dict:
        with self.api() as client:
            r = client.post(f"/api/v1/incidents/{self.incident_id}/share-link")
        assert r.status_code == 200, r.text
        return r.json()

    def state(self) -> dict:
        with self.api() as client:
            r = client.get(f"/incidents/{self.incident_id}/share/state")
        assert r.status_code == 200, r.text
        return r.json()

    def items(self, kind: str | None = None) -> list[SharedItem]:
        with Session(self.ctx.engine) as s:
            q = select(SharedItem).where(SharedItem.incident_id == self.incident_id).order_by(SharedItem.id)
            rows = list(s.exec(q))
        return [i for i in rows if kind is None or i.kind == kind]

    def events(self, kind: str | None = None) -> list[IncidentEvent]:
        with Session(self.ctx.engine) as s:
            rows = list(s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == self.incident_id)
                               .order_by(IncidentEvent.seq)))
        return [e for e in rows if kind is None or e.kind == kind]

    def media_files(self) -> list:
        root = self.settings.resolved_media_dir
        return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def jpeg_bytes(marker: int) -> bytes:
    """Bytes with a JPEG signature (enough for the server, which checks signatures, not pixels)."""
    return b"\xff\xd8\xff\xe0" + hashlib.sha256(str(marker).encode()).digest() * 8 + b"\xff\xd9"


def signed_in_dispatcher(env: ShareEnv) -> tuple[httpx.Client, str]:
    """A browser-like session for the dispatcher and the CSRF token of its session."""
    client = httpx.Client(base_url=env.base, follow_redirects=False, timeout=10)
    page = client.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"username": "dana", "password": DISPATCHER_PASSWORD, "csrf_token": csrf})
    assert r.status_code == 303, r.text
    panel = client.get(f"/incidents/{env.incident_id}/share")
    assert panel.status_code == 200, panel.text
    return client, re.search(r'data-csrf="([^"]+)"', panel.text).group(1)
