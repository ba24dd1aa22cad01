"""The live channel: locations, texts and frames stored as hashed evidence; drops lose at most one frame."""
from __future__ import annotations

import hashlib
import json
import socket
import time

import httpx
import pytest
from sqlmodel import Session, select
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from dashboard.share import links, storage
from dashboard.share.ws import MAX_LOCATIONS_PER_WINDOW, MAX_TEXTS_PER_MINUTE
from models.events import verify_chain
from models.tables import AuditEntry
from share_test_helpers import jpeg_bytes

FRAME = b"\x01"


def consented_phone(env) -> tuple[str, str]:
    """Open a fresh link on a "phone", agree, and return the phone's device cookie and the link path."""
    with httpx.Client(base_url=env.base, headers={"User-Agent": "Mozilla/5.0 (Linux; Android 14) Mobile"},
                      timeout=10) as phone:
        path = "/" + env.new_link()["url"].split("/", 3)[3]
        assert phone.get(path).status_code == 200
        r = phone.post(f"{path}/consent", data={"answer": "agree"}, headers={"Origin": env.base})
        assert r.status_code == 303
        return phone.cookies[links.DEVICE_COOKIE], path


def open_socket(env, device: str, path: str, origin: str | None = None):
    ws = connect(env.base.replace("http://", "ws://") + path + "/ws", open_timeout=10,
                 additional_headers={"Cookie": f"{links.DEVICE_COOKIE}={device}", "Origin": origin or env.base})
    assert json.loads(ws.recv(timeout=10))["type"] == "ready"
    return ws


def ack(ws) -> dict:
    msg = json.loads(ws.recv(timeout=10))
    assert msg["type"] == "ack", msg
    return msg


def test_location_text_and_frames_are_stored_hashed_and_logged(share_env):
    device, path = consented_phone(share_env)
    with open_socket(share_env, device, path) as ws:
        ws.send(json.dumps({"type": "location", "lat": 51.5072, "lon": -0.1276, "accuracy": 12.4, "ts": 1}))
        assert ack(ws)["kind"] == "location"
        ws.send(json.dumps({"type": "location", "lat": 91, "lon": 0, "accuracy": 5}))
        assert json.loads(ws.recv(timeout=10))["type"] == "error"  # out of range: not stored
        ws.send(json.dumps({"type": "text", "text": "<b>third floor</b>, back window"}))
        assert ack(ws)["kind"] == "text"
        frame_acks = []
        for n in range(3):
            ws.send(FRAME + jpeg_bytes(n))
            frame_acks.append(ack(ws))
        assert [a["seq"] for a in frame_acks] == [1, 2, 3]
        assert frame_acks[0]["sha256"] == hashlib.sha256(jpeg_bytes(0)).hexdigest()
        ws.send(json.dumps({"type": "stop"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "closed", "reason": "ended"}

    items = share_env.items()
    assert [i.kind for i in items] == ["location", "text", "frame", "frame", "frame"]
    assert all(storage.verify_item(share_env.settings, i) for i in items)
    received = share_env.events("media_received")
    assert [e.data["sha256"] for e in received] == [i.sha256 for i in items]
    assert verify_chain(share_env.events(), share_env.ctx.evidence_keys.hmac_key) is None

    state = share_env.state()
    assert state["location"]["lat"] == 51.5072 and state["location"]["accuracy_m"] == 12.4
    assert state["texts"][0]["text"] == "<b>third floor</b>, back window"
    [live] = state["live"]
    assert live["frames"] == 3 and live["active"] is False and live["revealed"] is False
    assert state["links"][0]["status"] == "ended"
    with share_env.api() as api:
        frame = api.get(live["latest"]["url"])
        assert frame.status_code == 200 and hashlib.sha256(frame.content).hexdigest() == live["latest"]["sha256"]
        assert api.post(live["latest"]["url"] + "/reveal").json()["target"] == f"live:{live['link_id']}"
    assert share_env.state()["live"][0]["revealed"] is True
    [revealed] = share_env.events("media_revealed")
    assert revealed.actor == "dana"
    with Session(share_env.ctx.engine) as s:
        actions = {a.action for a in s.exec(select(AuditEntry).where(AuditEntry.username == "dana"))}
    assert {"view_share_state", "view_live_frames", "media_revealed"} <= actions

    # After "stop" the link takes nothing more.
    with connect(share_env.base.replace("http://", "ws://") + path + "/ws", open_timeout=10,
                 additional_headers={"Cookie": f"{links.DEVICE_COOKIE}={device}",
                                     "Origin": share_env.base}) as again:
        assert json.loads(again.recv(timeout=10)) == {"type": "closed", "reason": "ended"}


def test_dropped_connection_keeps_everything_acknowledged(share_env):
    device, path = consented_phone(share_env)
    ws = open_socket(share_env, device, path)
    for n in range(5):
        ws.send(FRAME + jpeg_bytes(n))
        ack(ws)
    ws.send(FRAME + jpeg_bytes(99))  # in flight when the line drops
    ws.socket.shutdown(socket.SHUT_RDWR)  # no close frame: the network just went away
    ws.socket.close()
    frames = settled_frames(share_env)
    assert 5 <= len(frames) <= 6
    assert [f.sha256 for f in frames[:5]] == [hashlib.sha256(jpeg_bytes(n)).hexdigest() for n in range(5)]
    assert all(storage.verify_item(share_env.settings, f) for f in frames)
    assert len(share_env.events("media_received")) == len(frames)
    assert not [p for p in share_env.media_files() if p.name.endswith(".part")]

    # The phone reconnects and carries on where it left off.
    with open_socket(share_env, device, path) as again:
        ws_ack = ack_after(again, FRAME + jpeg_bytes(100))
        assert ws_ack["seq"] == len(frames) + 1
    assert verify_chain(share_env.events(), share_env.ctx.evidence_keys.hmac_key) is None


def settled_frames(env, quiet_seconds: float = 0.5, timeout: float = 10.0) -> list:
    """The stored frames once the server has finished with whatever was in flight."""
    deadline = time.time() + timeout
    frames = env.items("frame")
    while time.time() < deadline:
        time.sleep(quiet_seconds)
        again = env.items("frame")
        if len(again) == len(frames):
            return again
        frames = again
    return frames


def ack_after(ws, payload: bytes) -> dict:
    ws.send(payload)
    return ack(ws)


def test_socket_refuses_other_origins_other_devices_and_non_images(share_env):
    device, path = consented_phone(share_env)
    with pytest.raises(InvalidStatus):
        open_socket(share_env, device, path, origin="http://evil.example")
    url = share_env.base.replace("http://", "ws://") + path + "/ws"
    with connect(url, open_timeout=10, additional_headers={"Origin": share_env.base,
                                                           "Cookie": f"{links.DEVICE_COOKIE}=someone-else"}) as ws:
        assert json.loads(ws.recv(timeout=10)) == {"type": "closed", "reason": "used"}
    with open_socket(share_env, device, path) as ws:
        ws.send(FRAME + b"<html>not a picture</html>")
        assert json.loads(ws.recv(timeout=10)) == {"type": "error", "detail": "frame is not an image"}
        ws.send(FRAME + b"\xff\xd8\xff" + b"0" * (share_env.settings.share.max_frame_bytes + 1))
        assert json.loads(ws.recv(timeout=10)) == {"type": "error", "detail": "frame too large"}
    assert share_env.items() == []


def test_frame_flood_is_refused_beyond_the_configured_rate(share_env):
    share_env.settings.share.frame_interval_ms = 10_000  # allows 2 * 10 s / 10 s + burst of 5 = 7 per 10 s
    device, path = consented_phone(share_env)
    with open_socket(share_env, device, path) as ws:
        for n in range(7):
            ack_after(ws, FRAME + jpeg_bytes(n))
        ws.send(FRAME + jpeg_bytes(7))
        assert json.loads(ws.recv(timeout=10)) == {"type": "error", "detail": "too many frames"}
        ws.send(json.dumps({"type": "text", "text": "still here"}))  # other messages still flow
        assert ack(ws)["kind"] == "text"
    assert len(share_env.items("frame")) == 7


def test_revoking_stops_a_live_stream_at_the_next_frame(share_env):
    device, path = consented_phone(share_env)
    link_id = share_env.state()["links"][0]["id"]
    with open_socket(share_env, device, path) as ws:
        ack_after(ws, FRAME + jpeg_bytes(1))
        with share_env.api() as api:
            assert api.post(f"/api/v1/incidents/{share_env.incident_id}/share-link/{link_id}/revoke").status_code == 200
        ws.send(FRAME + jpeg_bytes(2))
        assert json.loads(ws.recv(timeout=10)) == {"type": "closed", "reason": "revoked"}
    assert len(share_env.items("frame")) == 1


def test_rate_limits_are_per_link_across_connections(share_env):
    """Opening more sockets to the same link buys no more room: frames, locations and texts are
    each counted per link (in Redis), not per connection."""
    share_env.settings.share.frame_interval_ms = 10_000  # 7 frames per 10 s for the whole link
    device, path = consented_phone(share_env)
    sockets = [open_socket(share_env, device, path) for _ in range(3)]
    try:
        replies = []
        for n in range(9):
            ws = sockets[n % 3]
            ws.send(FRAME + jpeg_bytes(n))
            replies.append(json.loads(ws.recv(timeout=10)))
        assert [r["type"] for r in replies] == ["ack"] * 7 + ["error"] * 2
        assert replies[-1] == {"type": "error", "detail": "too many frames"}

        fix = json.dumps({"type": "location", "lat": 51.5, "lon": -0.12, "accuracy": 10})
        kinds = []
        for n in range(MAX_LOCATIONS_PER_WINDOW + 2):
            ws = sockets[n % 3]
            ws.send(fix)
            kinds.append(json.loads(ws.recv(timeout=10))["type"])
        assert kinds.count("ack") == MAX_LOCATIONS_PER_WINDOW and kinds[-2:] == ["error", "error"]

        texts = []
        for n in range(MAX_TEXTS_PER_MINUTE + 1):
            ws = sockets[n % 3]
            ws.send(json.dumps({"type": "text", "text": f"note {n}"}))
            texts.append(json.loads(ws.recv(timeout=10)))
        assert [t["type"] for t in texts].count("ack") == MAX_TEXTS_PER_MINUTE
        assert texts[-1] == {"type": "error", "detail": "too many texts"}
    finally:
        for ws in sockets:
            ws.close()
    assert len(share_env.items("frame")) == 7
    assert len(share_env.items("location")) == MAX_LOCATIONS_PER_WINDOW
    assert len(share_env.items("text")) == MAX_TEXTS_PER_MINUTE


def test_a_deeply_nested_text_message_is_an_error_not_a_dropped_socket(share_env):
    device, path = consented_phone(share_env)
    with open_socket(share_env, device, path) as ws:
        ws.send("[" * 100_000 + "]" * 100_000)
        assert json.loads(ws.recv(timeout=10)) == {"type": "error", "detail": "not JSON"}
        ws.send(json.dumps({"type": "text", "text": "still here"}))
        assert ack(ws)["kind"] == "text"


def test_closing_the_incident_ends_its_links_page_upload_and_stream(share_env):
    """A link lives only as long as its incident is open: closing the incident ends a live stream at
    the next message, and the page, consent and uploads are refused like a cancelled link."""
    device, path = consented_phone(share_env)
    with open_socket(share_env, device, path) as ws:
        ack_after(ws, FRAME + jpeg_bytes(1))
        with share_env.api() as api:
            r = api.post(f"/api/v1/incidents/{share_env.incident_id}/close")
            assert r.status_code == 200, r.text
        ws.send(FRAME + jpeg_bytes(2))
        assert json.loads(ws.recv(timeout=10)) == {"type": "closed", "reason": "revoked"}
    cookies = {links.DEVICE_COOKIE: device}
    with httpx.Client(base_url=share_env.base, cookies=cookies, timeout=10,
                      headers={"Origin": share_env.base}) as phone:
        assert phone.get(path).status_code == 410
        photo = phone.post(f"{path}/photo", files={"photo": ("a.jpg", jpeg_bytes(3), "image/jpeg")})
        assert photo.status_code == 410
        assert phone.post(f"{path}/consent", data={"answer": "agree"}).status_code == 410
    with connect(share_env.base.replace("http://", "ws://") + path + "/ws", open_timeout=10,
                 additional_headers={"Cookie": f"{links.DEVICE_COOKIE}={device}", "Origin": share_env.base}) as ws:
        assert json.loads(ws.recv(timeout=10)) == {"type": "closed", "reason": "revoked"}
    assert len(share_env.items("frame")) == 1 and share_env.items("photo") == []
    assert share_env.state()["links"][0]["status"] == "revoked"
