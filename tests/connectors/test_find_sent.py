"""Looking a message up on the platform after an attempt whose answer was lost.

The sandbox carries the write out and then breaks the connection (`lose_response_next`): the
replier reports the outcome as uncertain, and `find_sent` must find exactly that message (and
nothing for a message that never went out, or one another message of ours already owns).
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from connectors.bluesky import BlueskyAccount, BlueskyReplier, notification_to_raw
from connectors.reddit import RedditReplier
from connectors.sandbox.state import bluesky_did
from connectors.sandbox.x_api import x_user_id
from connectors.x import XReplier
from models.domain import OutboundRequest
from models.types import utcnow


def _cases(state, settings, tmp_path):
    """(replier, a public reply request, a DM request) per platform, all against the sandbox."""
    x_post = state.add_post("x", "@flare999 help", "xena")
    state.add_post("x", "help", "xena", is_dm=True)
    bsky_item = state.add_post("bluesky", "@flare999 help", "bea")
    state.add_post("bluesky", "help", "bea", is_dm=True)
    reddit_post = state.add_post("reddit", "u/flare999 help", "rob")
    bsky_post = notification_to_raw({"uri": bsky_item.external_id, "cid": "bafyreia", "reason": "mention",
                                     "author": {"did": bluesky_did("bea")}, "record": {"text": "help"}})
    account = BlueskyAccount(settings.bluesky, tmp_path / "bsky-session.txt")
    return {
        "x": (XReplier(settings.x),
              OutboundRequest("x", "public_reply", "Received.", in_reply_to_external_id=x_post.external_id),
              OutboundRequest("x", "dm", "A dispatcher has seen your message.", recipient_id=x_user_id("xena"))),
        "bluesky": (BlueskyReplier(account),
                    OutboundRequest("bluesky", "public_reply", "Received.", reply_ref=bsky_post.reply_ref),
                    OutboundRequest("bluesky", "dm", "A dispatcher has seen your message.",
                                    recipient_id=bluesky_did("bea"))),
        "reddit": (RedditReplier(settings.reddit, "Message from Flare"),
                   OutboundRequest("reddit", "public_reply", "Received.",
                                   in_reply_to_external_id=reddit_post.external_id),
                   OutboundRequest("reddit", "dm", "A dispatcher has seen your message.", recipient_id="rob")),
    }


@pytest.mark.parametrize("platform", ["x", "bluesky", "reddit"])
@pytest.mark.parametrize("which", [1, 2], ids=["reply", "dm"])
def test_a_lost_answer_is_found_on_the_platform(sandbox, platform_settings, tmp_path, platform, which):
    state, _ = sandbox
    replier, *requests = _cases(state, platform_settings, tmp_path)[platform]
    request = requests[which - 1]
    since = utcnow()
    assert replier.find_sent(request, since, frozenset()) is None  # nothing sent yet

    state.set_faults(platform, {"lose_response_next": 1})
    lost = replier.send(request)
    state.set_faults(platform, {})

    assert not lost.ok and lost.retryable and lost.uncertain
    ours = [s for s in state.outbox if s.platform == platform]
    assert len(ours) == 1  # the platform did act on it
    found = replier.find_sent(request, since, frozenset())
    assert found is not None and found.ok and found.platform_message_id == ours[0].message_id
    # Owned by another of our messages, or sent before this message's attempt began: not ours.
    assert replier.find_sent(request, since, frozenset({ours[0].message_id})) is None
    assert replier.find_sent(request, since + timedelta(minutes=5), frozenset()) is None
    other_text = OutboundRequest(**{**{f: getattr(request, f) for f in request.__slots__}, "text": "Other."})
    assert replier.find_sent(other_text, since, frozenset()) is None


def test_bluesky_conversation_lookup_failing_before_a_dm_is_a_plain_retry(sandbox, platform_settings, tmp_path):
    state, _ = sandbox
    replier, _reply, dm = _cases(state, platform_settings, tmp_path)["bluesky"]
    replier.account.chat()  # logged in before the fault
    state.set_faults("bluesky", {"drop_next": 1})  # the read-only getConvoForMembers breaks

    receipt = replier.send(dm)

    assert not receipt.ok and receipt.retryable and not receipt.uncertain
    assert state.outbox == []


def test_reddit_rate_limit_on_the_login_token_is_retried_after_its_reset(sandbox, platform_settings, tmp_path):
    state, _ = sandbox
    replier, reply, _dm = _cases(state, platform_settings, tmp_path)["reddit"]
    state.set_faults("reddit", {"rate_limit_next": 1, "rate_limit_reset_seconds": 7})

    receipt = replier.send(reply)  # the first request is the access-token one

    assert not receipt.ok and receipt.retryable and not receipt.uncertain
    assert 5 <= receipt.retry_after_seconds <= 9.5  # just past the reset
    assert state.path_counts["POST /api/v1/access_token"] == 1 and state.outbox == []
