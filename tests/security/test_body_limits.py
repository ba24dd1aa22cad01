"""Request bodies over their limit are refused before they are read, whatever the route."""
from __future__ import annotations

import asyncio

from dashboard.app import BodyLimit

LIMIT = 1024


async def _echo_app(scope, receive, send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


def _call(headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, int]:
    """Run one request through the middleware: (status, how many body chunks the app pulled)."""
    pulled = 0
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        chunk = chunks[pulled] if pulled < len(chunks) else b""
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < len(chunks)}

    async def send(message):
        sent.append(message)

    app = BodyLimit(_echo_app, lambda path: LIMIT)
    asyncio.run(app({"type": "http", "path": "/s/token/photo", "headers": headers}, receive, send))
    return sent[0]["status"], pulled


def test_declared_length_over_the_limit_is_refused_unread():
    status, pulled = _call([(b"content-length", b"1073741824")], [b"x" * 100])
    assert (status, pulled) == (413, 0)


def test_streamed_body_is_cut_off_once_over_the_limit():
    chunks = [b"x" * 600] * 1000  # a chunked upload with no Content-Length
    status, pulled = _call([], chunks)
    assert status == 413 and pulled == 2  # stopped at the chunk that crossed the limit


def test_bodies_within_the_limit_pass():
    assert _call([(b"content-length", b"1000")], [b"x" * 1000]) == (200, 1)


def test_a_malformed_length_is_refused():
    assert _call([(b"content-length", b"12abc")], [b"x"])[0] == 413


def test_login_form_over_the_limit_is_refused(settings):
    from fastapi.testclient import TestClient

    from dashboard.app import create_app

    client = TestClient(create_app(settings))
    r = client.post("/login", content=b"username=" + b"a" * (settings.dashboard.max_body_bytes + 1),
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
