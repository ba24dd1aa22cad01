"""Live updates: one Redis subscription per process, fanned out to every SSE viewer."""
from __future__ import annotations

import asyncio
import json
import secrets
import time
from types import SimpleNamespace

import httpx
import pytest
import redis
from sqlmodel import Session, select

from flows.live import ALERT_CHANNEL, live_channel, publish_live, publish_live_many
from dashboard import sessions
from dashboard.routes import live
from dashboard.routes.live import CHANNEL_BACK, CHANNEL_LOST, LiveHub, LiveMessage, visible_to
from dashboard.security import token_digest
from dashboard.sessions import revoke_user_sessions
from models import LoginSession, User
from tests.dashboard.conftest import PASSWORDS, csrf_from


@pytest.fixture
def bearer(ctx, users) -> dict[str, str]:
    """A fresh API token per role (the stream accepts the same credentials as the API)."""
    out = {}
    with Session(ctx.engine) as s:
        for role, user in users.items():
            token = secrets.token_urlsafe(24)
            row = s.get(User, user.id)
            row.api_token_hash = token_digest(token)
            s.add(row)
            out[role] = token
        s.commit()
    return out


def _subscribers(ctx) -> int:
    channel = live_channel(ctx.redis)
    return int(dict(ctx.redis.pubsub_numsub(channel))[channel.encode()])


async def _read_events(response, wanted: int, timeout: float = 5.0) -> list[tuple[str, dict]]:
    # One line iterator per response: abandoning an iterator would close the stream.
    if not hasattr(response, "flare_lines"):
        response.flare_lines = response.aiter_lines()
    events, name = [], None
    async with asyncio.timeout(timeout):
        while True:
            line = await response.flare_lines.__anext__()
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name:
                events.append((name, json.loads(line.split(":", 1)[1])))
                if len(events) == wanted:
                    return events


async def _wait_for(response, predicate, timeout: float = 5.0) -> dict:
    """The first live payload matching predicate. Redis pub/sub ignores DB numbers, so tests
    running in parallel on the same server may see each other's events: skip those."""
    async with asyncio.timeout(timeout):
        while True:
            [(name, payload)] = await _read_events(response, 1, timeout)
            if name == "live" and predicate(payload):
                return payload


def test_many_viewers_share_one_subscription_and_all_receive(ctx, server, bearer):
    async def scenario():
        before = _subscribers(ctx)  # other test processes on this Redis may hold their own
        async with httpx.AsyncClient(base_url=server, timeout=10) as client:
            streams = []
            for role in ("officer", "dispatcher", "supervisor"):
                cm = client.stream("GET", "/live/events", headers={"authorization": f"Bearer {bearer[role]}"})
                response = await cm.__aenter__()
                assert response.status_code == 200
                assert (await _read_events(response, 1))[0][0] == "hello"
                streams.append((cm, response))
            deadline = time.monotonic() + 5
            while _subscribers(ctx) != before + 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert _subscribers(ctx) == before + 1  # three viewers, one Redis subscription
            marker = secrets.token_hex(6)
            publish_live(ctx, {"type": "acknowledged", "incident_id": 7, "by": marker})
            for _cm, response in streams:
                payload = await _wait_for(response, lambda p: p.get("by") == marker)
                assert payload == {"type": "acknowledged", "incident_id": 7, "by": marker}
            for cm, _response in streams:
                await cm.__aexit__(None, None, None)

    asyncio.run(scenario())


def test_field_stream_gets_incident_changes_but_not_posts(ctx, server, bearer):
    async def scenario():
        async with httpx.AsyncClient(base_url=server, timeout=10) as client:
            async with client.stream("GET", "/live/events",
                                     headers={"authorization": f"Bearer {bearer['field']}"}) as response:
                await _read_events(response, 1)
                marker = secrets.token_hex(6)
                publish_live(ctx, {"type": "post", "post_id": 1, "lane": "critical", "marker": marker})
                publish_live(ctx, {"type": "triaged", "post_id": 1, "urgency": "critical", "incident_id": 3,
                                   "marker": marker})
                payload = await _wait_for(response, lambda p: p.get("marker") == marker)
                assert payload["type"] == "triaged"  # the post event before it was withheld

    asyncio.run(scenario())


def test_stream_requires_sign_in(server):
    assert httpx.get(f"{server}/live/events", timeout=5).status_code == 401
    assert httpx.get(f"{server}/live/events", headers={"authorization": "Bearer nope"}, timeout=5).status_code == 401


def test_hub_drops_the_oldest_event_for_a_slow_viewer(ctx):
    async def scenario():
        hub = LiveHub(ctx.redis)
        slow = hub.subscribe()
        for n in range(300):
            hub._fan_out(LiveMessage.from_raw(json.dumps({"type": "post", "post_id": n})))
        assert slow.qsize() == slow.maxsize
        oldest_kept = slow.get_nowait().frame
        assert b'"post_id":%d}' % (300 - slow.maxsize) in oldest_kept  # the newest are kept
        hub.unsubscribe(slow)
        hub.stop()

    asyncio.run(scenario())


def test_visibility_by_role():
    def msg(**payload):
        return LiveMessage.from_raw(json.dumps(payload))

    assert visible_to("officer", msg(type="post", post_id=1))
    assert not visible_to("field", msg(type="post", post_id=1))
    assert not visible_to("field", msg(type="disposed", incident_id=None))
    assert visible_to("field", msg(type="escalation", incident_id=4))


def test_messages_are_one_sse_frame_whatever_the_payload():
    frame = LiveMessage.from_raw('{"type": "note", "text": "line one\\nline two", "incident_id": 2}').frame
    assert frame.startswith(b"event: live\ndata: {") and frame.endswith(b"}\n\n") and frame.count(b"\n") == 3
    assert LiveMessage.from_raw(b"not json") is None and LiveMessage.from_raw(b"[1, 2]") is None


class _FlakyPubSub:
    """Redis refusing the subscription `fails` times, then answering (with no messages)."""

    def __init__(self, owner) -> None:
        self.owner = owner

    def subscribe(self, channel) -> None:
        self.owner.attempts += 1
        if self.owner.attempts <= self.owner.fails:
            raise redis.ConnectionError("connection refused")

    def get_message(self, timeout: float = 0.0):
        time.sleep(min(timeout, 0.05))
        return None

    def close(self) -> None:
        pass


class _FlakyRedis:
    connection_pool = SimpleNamespace(connection_kwargs={"db": 0})

    def __init__(self, fails: int) -> None:
        self.fails, self.attempts = fails, 0

    def pubsub(self, **_kw) -> _FlakyPubSub:
        return _FlakyPubSub(self)


def test_viewers_are_told_once_when_the_channel_is_lost_and_once_when_it_is_back(monkeypatch):
    """While Redis is gone the browsers' connections stay open (keepalives flow), so without being
    told a screen would never start polling and an incident queued meanwhile would not show."""
    monkeypatch.setattr(LiveHub, "RESUBSCRIBE_SECONDS", 0.01)

    async def scenario():
        hub = LiveHub(_FlakyRedis(fails=3))
        viewer = hub.subscribe()
        told = [await asyncio.wait_for(viewer.get(), 5) for _ in range(2)]
        await asyncio.sleep(0.2)
        hub.unsubscribe(viewer)
        hub.stop()
        return told, viewer.qsize()

    told, more = asyncio.run(scenario())
    assert told == [CHANNEL_LOST, CHANNEL_BACK] and more == 0  # three failures, one "lost"
    assert CHANNEL_LOST.frame.startswith(b"event: lost\n") and CHANNEL_BACK.frame.startswith(b"event: back\n")
    assert visible_to("field", CHANNEL_LOST) and visible_to("wall", CHANNEL_BACK)  # every screen polls


def _browser_cookie(server: str, role: str) -> dict[str, str]:
    """Sign in over HTTP as a browser would; the session cookie it was given."""
    with httpx.Client(base_url=server, follow_redirects=False, timeout=10) as browser:
        token = csrf_from(browser.get("/login").text)
        r = browser.post("/login", data={"username": role, "password": PASSWORDS[role], "csrf_token": token})
        assert r.status_code == 303, r.text
        return {sessions.COOKIE: browser.cookies[sessions.COOKIE]}


async def _drain(response) -> None:
    """Read the stream (whatever events pass) until the server ends it."""
    async for _line in response.flare_lines:
        pass


def _revoke_by_sign_out_everywhere(ctx, user_id):
    with Session(ctx.engine) as s:
        revoke_user_sessions(s, user_id, "admin")
        s.commit()


def _revoke_by_deactivation(ctx, user_id):
    with Session(ctx.engine) as s:
        s.get(User, user_id).active = False
        s.commit()


def _revoke_by_new_token(ctx, user_id):
    with Session(ctx.engine) as s:
        s.get(User, user_id).api_token_hash = token_digest(secrets.token_urlsafe(24))
        s.commit()


def _revoke_by_idle_timeout(ctx, user_id):
    """Nobody touched the console for longer than the idle timeout (the stream is no activity)."""
    with Session(ctx.engine) as s:
        for row in s.exec(select(LoginSession).where(LoginSession.user_id == user_id)):
            row.data = {**row.data, "last_seen": 0}
            s.add(row)
        s.commit()


@pytest.mark.parametrize("how, credential", [
    (_revoke_by_sign_out_everywhere, "session"), (_revoke_by_deactivation, "session"),
    (_revoke_by_idle_timeout, "session"),
    (_revoke_by_deactivation, "token"), (_revoke_by_new_token, "token")])
def test_an_open_stream_ends_once_its_sign_in_is_revoked(ctx, server, users, bearer, monkeypatch, how, credential):
    """Revoking a sign-in stops the live stream it opened too, not only the next page load: a
    stream already open is re-checked and ends, so no further event reaches a stolen session."""
    monkeypatch.setattr(live, "SESSION_CHECK_SECONDS", 0.2)
    auth = ({"cookies": _browser_cookie(server, "dispatcher")} if credential == "session"
            else {"headers": {"authorization": f"Bearer {bearer['dispatcher']}"}})

    async def scenario():
        async with httpx.AsyncClient(base_url=server, timeout=10, **auth) as client:
            async with client.stream("GET", "/live/events") as response:
                assert response.status_code == 200
                assert (await _read_events(response, 1))[0][0] == "hello"
                ended = asyncio.create_task(_drain(response))
                await asyncio.wait({ended}, timeout=0.8)
                assert not ended.done()  # still signed in: it stays open
                how(ctx, users["dispatcher"].id)
                await asyncio.wait({ended}, timeout=5.0)
                assert ended.done() and ended.exception() is None
            r = await client.get("/live/events")
            assert r.status_code == 401  # and it cannot be reopened

    asyncio.run(scenario())


def test_installations_on_other_databases_of_one_redis_server_do_not_hear_each_other(ctx):
    """Pub/sub belongs to the whole Redis server: the feed's channel is named for the database,
    so an installation on database N never hears (or sounds the alarms of) one on another."""
    kwargs = ctx.redis.connection_pool.connection_kwargs
    other = redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=ctx.redis.connection_pool.connection_class,
        **{**kwargs, "db": 0 if kwargs.get("db", 0) else 2}))
    assert live_channel(ctx.redis) != live_channel(other)
    mine, theirs = ctx.redis.pubsub(), other.pubsub()
    try:
        mine.subscribe(live_channel(ctx.redis))
        theirs.subscribe(live_channel(other))
        for feed in (mine, theirs):  # each subscription confirmed by the server before the publish
            confirmed = feed.get_message(ignore_subscribe_messages=False, timeout=5.0)
            assert confirmed is not None and confirmed["type"] == "subscribe"
        publish_live(ctx, {"type": "decided", "post_id": 1})
        heard_mine = _next_message(mine)
        assert heard_mine is not None and json.loads(heard_mine["data"])["post_id"] == 1
        assert _next_message(theirs, timeout=0.5) is None
    finally:
        mine.close()
        theirs.close()
        other.close()


def _next_message(feed, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = feed.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            return message
    return None


def test_a_dashboard_of_the_release_before_still_hears_every_change_during_a_rolling_upgrade(ctx):
    """Workers are restarted before dashboards: a dashboard not yet restarted listens on the
    single channel of the release before (ALERT_CHANNEL), and still hears them."""
    old_dashboard = ctx.redis.pubsub()
    try:
        old_dashboard.subscribe(ALERT_CHANNEL)
        confirmed = old_dashboard.get_message(timeout=5.0)
        assert confirmed is not None and confirmed["type"] == "subscribe"
        publish_live(ctx, {"type": "decided", "post_id": 7})
        publish_live_many(ctx, [{"type": "triaged", "post_id": 8}])
        heard = [json.loads(m["data"])["post_id"] for m in (_next_message(old_dashboard), _next_message(old_dashboard))
                 if m is not None]
        assert heard == [7, 8]
    finally:
        old_dashboard.close()
