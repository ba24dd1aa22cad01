"""Bluesky connector against the sandbox with the real atproto client."""
from __future__ import annotations

import threading
import time

import pytest

from connector_test_helpers import Recorder, poll, stored_posts
from connectors import bluesky
from connectors.bluesky import (
    BlueskyAccount, BlueskyDirectMessagesSource, BlueskyNotificationsSource, BlueskyReplier, notification_to_raw,
)
from connectors.common import RateLimited
from connectors.sandbox.state import bluesky_did
from models.domain import OutboundRequest
from tests.waiting import wait_for


def _account(settings, tmp_path):
    return BlueskyAccount(settings.bluesky, tmp_path / "bsky-session.txt")


def test_mentions_are_stored_and_answered_in_thread(sandbox, platform_settings, engine, tmp_path):
    state, _ = sandbox
    item = state.add_post("bluesky", "@flare999.bsky.social smoke on Mill Lane", "ravi")
    account = _account(platform_settings, tmp_path)

    result = poll(BlueskyNotificationsSource(account), engine, Recorder())

    assert result.stored == 1
    row = stored_posts(engine, "bluesky")[0]
    assert row.external_id == item.external_id and row.author_handle == "ravi.bsky.social"
    assert row.author_id == bluesky_did("ravi")
    assert row.reply_ref["uri"] == row.reply_ref["root_uri"] == item.external_id
    assert row.reply_ref["cid"].startswith("bafyrei")
    # After the commit, beside the polling (never in its way).
    wait_for(lambda: state.path_counts["POST /xrpc/app.bsky.notification.updateSeen"] == 1, 10, "updateSeen")

    receipt = BlueskyReplier(account).send(OutboundRequest(
        "bluesky", "public_reply", "We have your message.", reply_ref=row.reply_ref, idempotency_key="k"))
    assert receipt.ok and receipt.platform_message_id.startswith("at://")
    assert state.outbox[0].in_reply_to == item.external_id


def test_reply_refs_keep_the_thread_root():
    notification = {
        "uri": "at://did:plc:abc/app.bsky.feed.post/2", "cid": "bafyreichild", "reason": "reply",
        "author": {"did": "did:plc:abc", "handle": "abc.bsky.social"}, "indexedAt": "2026-01-01T00:00:00Z",
        "record": {"text": "still trapped", "createdAt": "2026-01-01T00:00:00Z", "reply": {
            "root": {"uri": "at://did:plc:abc/app.bsky.feed.post/1", "cid": "bafyreiroot"},
            "parent": {"uri": "at://did:plc:svc/app.bsky.feed.post/9", "cid": "bafyreiparent"}}},
    }
    post = notification_to_raw(notification)
    assert post.reply_ref == {"uri": notification["uri"], "cid": "bafyreichild",
                              "root_uri": "at://did:plc:abc/app.bsky.feed.post/1", "root_cid": "bafyreiroot"}
    assert post.reply_to_external_id == "at://did:plc:svc/app.bsky.feed.post/9"
    assert notification_to_raw({**notification, "reason": "like"}) is None


def test_session_string_is_reused(sandbox, platform_settings, tmp_path):
    state, _ = sandbox
    _account(platform_settings, tmp_path).client()
    assert (tmp_path / "bsky-session.txt").exists()

    _account(platform_settings, tmp_path).client()

    assert state.path_counts["POST /xrpc/com.atproto.server.createSession"] == 1


def test_watermark_and_seen_uris_catch_late_and_shuffled_items(sandbox, platform_settings, tmp_path):
    state, _ = sandbox
    source = BlueskyNotificationsSource(_account(platform_settings, tmp_path))
    first = state.add_post("bluesky", "one", "ann")
    posts, cursor = source.fetch({})
    assert [p.external_id for p in posts] == [first.external_id]

    late = state.add_post("bluesky", "indexed late", "bob", created_at=first.created_at - 60)
    newer = state.add_post("bluesky", "newer", "cy")
    state.set_faults("bluesky", {"duplicate_rate": 1.0, "out_of_order": True, "seed": 3})
    posts, cursor = source.fetch(cursor)

    assert sorted(p.external_id for p in posts) == sorted([late.external_id, newer.external_id])
    assert [p.external_id for p in posts] == [late.external_id, newer.external_id]  # oldest first
    assert source.fetch(cursor)[0] == []


def test_a_poll_during_a_burst_stops_at_what_it_has_read(sandbox, platform_settings, tmp_path, monkeypatch):
    """Thousands of notifications in the slack window: a poll reads one page for the mentions
    that came since the last, not the window's 20; the whole window is read again every
    DEEP_READ_SECONDS, and finds a notification indexed late below ones already read."""
    state, _ = sandbox
    clock = [1000.0]
    monkeypatch.setattr(bluesky.time, "monotonic", lambda: clock[0])
    source = BlueskyNotificationsSource(_account(platform_settings, tmp_path))
    pages = "GET /xrpc/app.bsky.notification.listNotifications"
    for n in range(450):
        state.add_post("bluesky", f"mention {n}", f"user{n % 40}")
    posts, cursor = source.fetch({})
    assert len(posts) == 450 and state.path_counts[pages] == 5  # the first poll reads the window

    fresh = [state.add_post("bluesky", f"new {n}", f"user{n}") for n in range(30)]
    before = state.path_counts[pages]
    posts, cursor = source.fetch(cursor)
    assert sorted(p.external_id for p in posts) == sorted(i.external_id for i in fresh)
    assert state.path_counts[pages] - before == 1

    late = state.add_post("bluesky", "indexed late", "bob")
    late.seq = 0  # listed below every notification already read
    before = state.path_counts[pages]
    assert source.fetch(cursor)[0] == [] and state.path_counts[pages] - before == 1
    clock[0] += bluesky.DEEP_READ_SECONDS
    posts, cursor = source.fetch(cursor)
    assert [p.external_id for p in posts] == [late.external_id]


def test_a_dm_is_not_held_back_by_its_senders_handle(sandbox, platform_settings, tmp_path, monkeypatch):
    """The sender's handle only makes the dashboard readable: a lookup that stalls leaves this DM
    without it (the did is what Flare answers to), and names the sender's next DM once it answers."""
    state, _ = sandbox
    account = _account(platform_settings, tmp_path)
    source = BlueskyDirectMessagesSource(account)
    client = account.client()
    answer, real = threading.Event(), client.get_profile
    monkeypatch.setattr(client, "get_profile", lambda did: (answer.wait(30), real(did))[1])
    first = state.add_post("bluesky", "cant talk hes downstairs", "quiet", is_dm=True)

    posts, cursor = source.fetch({})

    assert [(p.external_id, p.author_id, p.author_handle) for p in posts] == \
        [(f"dm:{first.external_id}", bluesky_did("quiet"), "")]
    answer.set()
    wait_for(lambda: state.path_counts["GET /xrpc/app.bsky.actor.getProfile"] >= 1, 10, "the lookup to answer")
    second = state.add_post("bluesky", "still here", "quiet", is_dm=True)
    wait_for(lambda: [p.author_handle for p in source.fetch(cursor)[0] if p.external_id == f"dm:{second.external_id}"]
             == ["quiet.bsky.social"], 10, "the next DM named")


def test_direct_messages_in_and_out(sandbox, platform_settings, engine, tmp_path):
    state, _ = sandbox
    account = _account(platform_settings, tmp_path)
    dm = state.add_post("bluesky", "cant talk hes downstairs", "quiet", is_dm=True)
    source = BlueskyDirectMessagesSource(account)

    poll(source, engine)

    row = stored_posts(engine, "bluesky")[0]
    assert (row.external_id, row.is_dm, row.author_id) == (f"dm:{dm.external_id}", True, bluesky_did("quiet"))
    assert row.author_handle == "quiet.bsky.social"
    assert poll(source, engine).fetched == 0  # the log cursor moved on

    replier = BlueskyReplier(account)
    receipt = replier.send(OutboundRequest("bluesky", "dm", "Help is coming.", recipient_id=row.author_id))
    assert receipt.ok and state.outbox[0].recipient == row.author_id


def test_dm_refused_is_not_retryable(sandbox, platform_settings, tmp_path):
    state, _ = sandbox
    state.add_post("bluesky", "@flare999 hi", "closed", dms_closed=True)

    receipt = BlueskyReplier(_account(platform_settings, tmp_path)).send(
        OutboundRequest("bluesky", "dm", "hello", recipient_id=bluesky_did("closed")))

    assert not receipt.ok and not receipt.retryable and state.outbox == []


def test_reply_without_strong_refs_is_refused(sandbox, platform_settings, tmp_path):
    receipt = BlueskyReplier(_account(platform_settings, tmp_path)).send(
        OutboundRequest("bluesky", "public_reply", "hi", reply_ref={"uri": "at://x"}))
    assert not receipt.ok and not receipt.retryable


def test_send_failures_are_classified_honestly(sandbox, platform_settings, tmp_path):
    state, _ = sandbox
    item = state.add_post("bluesky", "@flare999 help", "ann")
    account = _account(platform_settings, tmp_path)
    post = notification_to_raw({"uri": item.external_id, "cid": "bafyreia", "reason": "mention",
                                "author": {"did": bluesky_did("ann")}, "record": {"text": "help"}})
    replier = BlueskyReplier(account)
    account.client()  # logged in before the faults start
    request = OutboundRequest("bluesky", "public_reply", "Received.", reply_ref=post.reply_ref)

    state.set_faults("bluesky", {"error_next": 1})
    server_error = replier.send(request)
    state.set_faults("bluesky", {"rate_limit_next": 1, "rate_limit_reset_seconds": 30})
    limited = replier.send(request)
    state.set_faults("bluesky", {"drop_next": 1})
    dropped = replier.send(request)

    assert not server_error.ok and server_error.retryable
    assert not limited.ok and limited.retryable and 25 <= limited.retry_after_seconds <= 32.5  # just past the reset
    # Maybe sent: retried only after a look on the platform (flows/sending.py).
    assert not dropped.ok and dropped.retryable and dropped.uncertain and "outcome unknown" in dropped.error
    assert state.outbox == []


def test_a_dm_is_stored_before_the_log_is_read_on(sandbox, platform_settings, engine, tmp_path, monkeypatch):
    """A poll that read new DM events returns them at once, to be stored, and says the log may
    hold more: the read that learns it reached the end follows the storing (the runner reads on
    at once) instead of standing between the DM and its storing, where its 429 (in the chaos test
    a stall and then a 429) held the DM back. That read failing costs the DM nothing."""
    state, _ = sandbox
    source = BlueskyDirectMessagesSource(_account(platform_settings, tmp_path))
    dm = state.add_post("bluesky", "the water is at the stairs, 4 Quay Street", "flooded", is_dm=True)
    real, reads = source._query, []

    def second_read_limited(client, nsid, params):
        reads.append(nsid)
        if len(reads) == 2:
            raise RateLimited(time.time() + 2, "bluesky")
        return real(client, nsid, params)

    monkeypatch.setattr(source, "_query", second_read_limited)
    result = poll(source, engine)
    assert len(reads) == 1 and result.stored == 1 and source.more_to_read
    assert [p.external_id for p in stored_posts(engine, "bluesky")] == [f"dm:{dm.external_id}"]
    with pytest.raises(RateLimited):  # the read on meets the 429: the DM is stored already
        poll(source, engine)
    monkeypatch.setattr(source, "_query", real)
    assert poll(source, engine).fetched == 0 and not source.more_to_read  # the cursor moved past it

    def first_read_limited(client, nsid, params):
        raise RateLimited(time.time() + 2, "bluesky")

    monkeypatch.setattr(source, "_query", first_read_limited)
    with pytest.raises(RateLimited):  # nothing read: the poll still fails, and is retried
        source.fetch({})
