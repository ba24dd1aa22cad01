"""X connector against the sandbox with the real tweepy client."""
from __future__ import annotations

import time

import pytest

from connector_test_helpers import Recorder, poll, stored_posts
from connectors.common import RateLimited
from connectors.sandbox.x_api import x_user_id
from connectors.x import XDirectMessagesSource, XMentionsSource, XReplier
from models.domain import OutboundRequest
from models.tables import ConnectorCheckpoint
from sqlmodel import Session, select


def test_mentions_are_stored_with_geo_place_and_profile_hint(sandbox, platform_settings, engine):
    state, _ = sandbox
    exact = state.add_post("x", "@flare999 crash on the bridge", "ana", lat=51.45, lon=-2.59)
    place = state.add_post("x", "@flare999 smoke near the park", "ben", lat=53.0, lon=-1.0, place_only=True)
    hint = state.add_post("x", "@flare999 help", "cat", author_location="Leeds, UK")
    recorder = Recorder()

    result = poll(XMentionsSource(platform_settings.x), engine, recorder)

    assert result.stored == 3 and recorder.created == 3
    rows = {p.external_id: p for p in stored_posts(engine, "x")}
    assert (rows[exact.external_id].geo_lat, rows[exact.external_id].geo_lon) == (51.45, -2.59)
    assert rows[place.external_id].geo_lat == pytest.approx(53.0)  # bbox centre
    assert rows[place.external_id].geo_lon == pytest.approx(-1.0)
    assert rows[place.external_id].geo_place == "Sandbox Place, Testshire"
    assert rows[hint.external_id].geo_lat is None  # the profile text is a hint, never a position
    assert rows[hint.external_id].author_location == "Leeds, UK"
    assert rows[hint.external_id].author_handle == "cat"
    with Session(engine) as session:
        checkpoint = session.exec(select(ConnectorCheckpoint)).one()
    assert checkpoint.cursor == {"since_id": hint.external_id}


def test_mentions_page_back_to_since_id_and_come_out_oldest_first(sandbox, platform_settings, engine):
    state, _ = sandbox
    source = XMentionsSource(platform_settings.x)
    state.add_post("x", "first", "ana")
    poll(source, engine)
    later = [state.add_post("x", f"mention {n}", f"user{n % 7}") for n in range(230)]

    posts, cursor = source.fetch({"since_id": state.items[0].external_id})

    assert [p.external_id for p in posts] == [i.external_id for i in later]
    assert cursor == {"since_id": later[-1].external_id}
    assert state.path_counts["GET /2/users/1000/mentions"] >= 4  # 100 per page


def test_direct_messages_page_until_last_seen(sandbox, platform_settings, engine):
    state, _ = sandbox
    source = XDirectMessagesSource(platform_settings.x)
    first = state.add_post("x", "cant talk", "dee", is_dm=True)
    poll(source, engine)
    second = state.add_post("x", "still here", "dee", is_dm=True)

    posts, cursor = source.fetch({"last_event_id": first.external_id})

    assert [p.external_id for p in posts] == [f"dm:{second.external_id}"]
    assert posts[0].is_dm and posts[0].author_id == x_user_id("dee")
    assert cursor == {"last_event_id": second.external_id}


def test_reply_and_dm_reach_the_sandbox(sandbox, platform_settings):
    state, _ = sandbox
    mention = state.add_post("x", "@flare999 help", "eve")
    replier = XReplier(platform_settings.x)

    reply = replier.send(OutboundRequest("x", "public_reply", "We have your message.",
                                         in_reply_to_external_id=mention.external_id, idempotency_key="r1"))
    dm = replier.send(OutboundRequest("x", "dm", "Are you safe to talk?", recipient_id=x_user_id("eve"),
                                      idempotency_key="d1"))

    assert reply.ok and dm.ok
    sent = state.outbox_json()
    assert [(s["kind"], s["in_reply_to"] or s["recipient"]) for s in sent] == [
        ("reply", mention.external_id), ("dm", x_user_id("eve"))]
    assert sent[0]["message_id"] == reply.platform_message_id


def test_same_idempotency_key_is_sent_once(sandbox, platform_settings):
    state, _ = sandbox
    mention = state.add_post("x", "@flare999 help", "eve")
    replier = XReplier(platform_settings.x)
    request = OutboundRequest("x", "public_reply", "Received.", in_reply_to_external_id=mention.external_id,
                              idempotency_key="receipt:1")

    first, second = replier.send(request), replier.send(request)

    assert first == second and first.ok
    assert len(state.outbox) == 1


def test_dm_to_closed_inbox_is_not_retryable(sandbox, platform_settings):
    state, _ = sandbox
    state.add_post("x", "@flare999 help", "fay", dms_closed=True)

    receipt = XReplier(platform_settings.x).send(OutboundRequest("x", "dm", "hello", recipient_id=x_user_id("fay")))

    assert not receipt.ok and not receipt.retryable
    assert state.outbox == []


def test_send_failures_are_classified_honestly(sandbox, platform_settings):
    state, _ = sandbox
    mention = state.add_post("x", "@flare999 help", "gus")
    replier = XReplier(platform_settings.x)
    request = OutboundRequest("x", "public_reply", "Received.", in_reply_to_external_id=mention.external_id)

    state.set_faults("x", {"error_next": 1})
    server_error = replier.send(request)
    state.set_faults("x", {"rate_limit_next": 1, "rate_limit_reset_seconds": 30})
    limited = replier.send(request)
    state.set_faults("x", {"drop_next": 1})
    dropped = replier.send(request)

    assert not server_error.ok and server_error.retryable
    assert not limited.ok and limited.retryable and 25 <= limited.retry_after_seconds <= 32.5  # just past the reset
    # Maybe sent: retried only after a look on the platform (flows/sending.py).
    assert not dropped.ok and dropped.retryable and dropped.uncertain and "outcome unknown" in dropped.error
    assert state.outbox == []


def test_429_closes_the_gate_without_sleeping(sandbox, platform_settings):
    state, _ = sandbox
    state.add_post("x", "@flare999 help", "hal")
    source = XMentionsSource(platform_settings.x)
    state.set_faults("x", {"rate_limit_next": 1, "rate_limit_reset_seconds": 2})

    started = time.monotonic()
    with pytest.raises(RateLimited) as raised:
        source.fetch({})
    calls = state.request_log["x"]
    assert source.fetch({}) == ([], {})  # gate closed: no request at all
    assert state.request_log["x"] == calls
    assert time.monotonic() - started < 1.0
    assert raised.value.until >= time.time() + 0.5

    time.sleep(max(0.0, source.rate_limited_until - time.time()) + 0.1)
    posts, _ = source.fetch({})
    assert [p.text for p in posts] == ["@flare999 help"]
