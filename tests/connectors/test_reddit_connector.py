"""Reddit connector against the sandbox with the real praw client."""
from __future__ import annotations

import threading
import time

import prawcore
import requests
from praw.endpoints import API_PATH

from connector_test_helpers import Recorder, poll, stored_posts
from connectors.reddit import RedditInboxSource, RedditReplier, RedditSubredditSource
from connectors.runner import DbCheckpointStore, poll_once
from models.domain import OutboundRequest
from tests.waiting import wait_for


def test_mentions_and_messages_marked_read_only_after_commit(sandbox, platform_settings, engine):
    state, _ = sandbox
    mention = state.add_post("reddit", "u/flare999 car on fire outside", "ash")
    message = state.add_post("reddit", "cant talk hes downstairs", "quiet", is_dm=True)
    source = RedditInboxSource(platform_settings.reddit)

    posts, _ = source.fetch({})
    assert {p.external_id for p in posts} == {mention.external_id, message.external_id}
    assert not any(i.read for i in state.items)  # fetched, not yet stored: still unread

    result = poll(source, engine, Recorder())

    assert result.stored == 2
    wait_for(lambda: all(i.read for i in state.items), 10, "both marked read (beside the polling)")
    rows = {r.external_id: r for r in stored_posts(engine, "reddit")}
    assert rows[message.external_id].is_dm and rows[message.external_id].author_id == "quiet"
    assert poll(source, engine).fetched == 0


def test_crash_before_after_commit_leaves_items_unread_and_rereads_once(sandbox, platform_settings, engine):
    state, _ = sandbox
    state.add_post("reddit", "help", "quiet", is_dm=True)
    source = RedditInboxSource(platform_settings.reddit)

    class CrashingStore(DbCheckpointStore):
        def save(self, name, cursor):
            raise RuntimeError("power cut")

    try:
        poll_once(source, engine, Recorder(), CrashingStore(engine))
    except RuntimeError:
        pass
    assert not state.items[0].read  # after_commit never ran

    recorder = Recorder()
    poll(source, engine, recorder)

    assert len(stored_posts(engine, "reddit")) == 1
    assert [p.created for p in recorder.calls[0]] == [False]
    wait_for(lambda: state.items[0].read, 10, "the message marked read")


def test_deleted_anchor_falls_back_to_created_utc(sandbox, platform_settings):
    state, _ = sandbox
    old = state.add_post("reddit", "u/flare999 old", "ann")
    new = state.add_post("reddit", "u/flare999 new", "bob")
    state.mark_read("reddit", {old.external_id, new.external_id})
    source = RedditInboxSource(platform_settings.reddit)

    cursor = {"mentions": {"anchor": "t1_gone", "created_utc": old.created_at}}
    posts, new_cursor = source.fetch(cursor)

    assert [p.external_id for p in posts] == [new.external_id]
    assert new_cursor["mentions"]["anchor"] == new.external_id


def test_watched_subreddit_submissions(sandbox, platform_settings, engine):
    state, _ = sandbox
    submission = state.add_post("reddit", "Car flipped on the M5\npeople trapped", "rw", subreddit="emergencytest")
    source = RedditSubredditSource(platform_settings.reddit, "emergencytest")

    poll(source, engine)

    row = stored_posts(engine, "reddit")[0]
    assert row.external_id == submission.external_id
    assert row.text == "Car flipped on the M5\n\npeople trapped"
    assert poll(source, engine).fetched == 0


def test_replies_and_dms(sandbox, platform_settings):
    state, _ = sandbox
    mention = state.add_post("reddit", "u/flare999 help", "ash")
    state.add_post("reddit", "u/flare999 hi", "closed", dms_closed=True)
    replier = RedditReplier(platform_settings.reddit, "Message from Flare")

    reply = replier.send(OutboundRequest("reddit", "public_reply", "Received.",
                                         in_reply_to_external_id=mention.external_id, idempotency_key="a"))
    again = replier.send(OutboundRequest("reddit", "public_reply", "Received.",
                                         in_reply_to_external_id=mention.external_id, idempotency_key="a"))
    dm = replier.send(OutboundRequest("reddit", "dm", "Are you safe?", recipient_id="ash"))
    refused = replier.send(OutboundRequest("reddit", "dm", "Are you safe?", recipient_id="closed"))

    assert reply.ok and reply.platform_message_id.startswith("t1_") and again == reply
    assert dm.ok and not refused.ok and not refused.retryable
    assert [(s.kind, s.in_reply_to or s.recipient) for s in state.outbox] == [
        ("reply", mention.external_id), ("dm", "ash")]


def test_dropped_post_is_not_resent_by_prawcore(sandbox, platform_settings):
    state, _ = sandbox
    mention = state.add_post("reddit", "u/flare999 help", "ash")
    replier = RedditReplier(platform_settings.reddit, "Message from Flare")
    replier.reddit.user.me()  # take the token first so the dropped request is the reply
    state.set_faults("reddit", {"drop_next": 1})

    receipt = replier.send(OutboundRequest("reddit", "public_reply", "Received.",
                                           in_reply_to_external_id=mention.external_id))

    assert not receipt.ok and receipt.uncertain  # retried only after a look on the platform
    assert state.path_counts["POST /api/comment"] == 1  # one attempt, no silent retry


def test_a_listing_answered_with_a_5xx_is_handed_back_at_once(sandbox, platform_settings, engine):
    """prawcore would retry a 503 itself, sleeping up to 2 s and then 2-4 s; the sources' client
    hands it straight back, and the inbox's other listing (a mention is in the unread inbox too)
    stores the post in the same poll."""
    state, _ = sandbox
    state.add_post("reddit", "u/flare999 car on fire outside", "ash")
    source = RedditInboxSource(platform_settings.reddit)
    source.reddit.user.me()  # the token first, so the fault meets the poll
    state.set_faults("reddit", {"error_next": 1})
    before = dict(state.path_counts)
    started = time.monotonic()
    result = poll(source, engine)
    assert time.monotonic() - started < 1.0
    asked = {path: n - before.get(path, 0) for path, n in state.path_counts.items() if n != before.get(path, 0)}
    # the failed listing asked once (no silent retry), the other still asked
    assert asked["GET /message/mentions"] == 1 and asked["GET /message/unread"] == 1, asked
    assert state.fault_counts["reddit:error"] == 1 and result.stored == 1


class _InboxReddit:
    """praw's `request`/`post` as RedditInboxSource uses them: one unread private message, and a
    read_message POST that stalls until the test releases it (or answers 429)."""

    def __init__(self, answer_429: bool = False) -> None:
        self.release = threading.Event()
        self.post_started = threading.Event()
        self.post_finished = threading.Event()
        self.answer_429 = answer_429
        self.gets = 0
        self.marked: list[str] = []
        self.child = {"kind": "t4", "data": {"name": "t4_help1", "body": "he is not breathing", "author": "quiet",
                                             "created_utc": time.time()}}

    def request(self, method: str, path: str, params: dict) -> dict:
        self.gets += 1
        unread = path == API_PATH["unread"] and "t4_help1" not in self.marked
        return {"data": {"children": [self.child] if unread else []}}

    def post(self, path: str, data: dict) -> None:
        self.post_started.set()
        try:
            if self.answer_429:
                response = requests.Response()
                response.status_code, response.headers["x-ratelimit-reset"] = 429, "30"
                raise prawcore.exceptions.TooManyRequests(response)
            self.release.wait(30)  # a guard against a hung test, not a timing
            self.marked += data["id"].split(",")
        finally:
            self.post_finished.set()


def test_marking_read_never_holds_the_next_poll(platform_settings):
    reddit = _InboxReddit()
    source = RedditInboxSource(platform_settings.reddit, reddit=reddit)
    posts, cursor = source.fetch({})
    assert [p.external_id for p in posts] == ["t4_help1"]

    source.after_commit(posts)  # stored: marked read, beside the polling
    wait_for(reddit.post_started.is_set, 10, "the read_message POST sent")
    assert not reddit.post_finished.is_set()  # after_commit did not wait for its answer
    gets = reddit.gets
    again, _ = source.fetch(cursor)  # the next poll goes while the mark is still unanswered
    assert reddit.gets == gets + 2 and [p.external_id for p in again] == ["t4_help1"]
    assert source.marks_due == 1

    reddit.release.set()
    wait_for(lambda: source.marks_due == 0, 10, "the mark answered")
    assert reddit.marked == ["t4_help1"] and source.fetch(cursor)[0] == []


def test_a_429_to_marking_read_closes_the_gate_the_polls_wait_on(platform_settings):
    reddit = _InboxReddit(answer_429=True)
    source = RedditInboxSource(platform_settings.reddit, reddit=reddit)
    posts, cursor = source.fetch({})
    source.after_commit(posts)
    wait_for(reddit.post_finished.is_set, 10, "the read_message POST answered")
    wait_for(lambda: source.gate.is_closed(), 10, "the gate closed")
    gets = reddit.gets
    assert source.fetch(cursor) == ([], cursor) and reddit.gets == gets  # no poll into the window
    assert source.marks_due == 1  # marked after the window, with the next poll's items


def test_a_poll_reads_each_listing_once_when_its_anchor_is_on_the_newest_page(sandbox, platform_settings, engine):
    """One request per listing per poll, whether it finds something or nothing: an empty answer
    to `before=` the anchor (which a deleted anchor also gives) no longer costs a second read on
    every quiet poll, each able to draw the 429 that closes the platform to every poll."""
    state, _ = sandbox
    state.add_post("reddit", "u/flare999 old news", "ann")
    source = RedditInboxSource(platform_settings.reddit)
    assert poll(source, engine).stored == 1
    wait_for(lambda: source.marks_due == 0, 10, "the mention marked read")
    mentions = [k for k in state.path_counts if k.startswith("GET") and k.endswith("/mentions")]
    assert len(mentions) == 1
    asked = state.path_counts[mentions[0]]

    assert poll(source, engine).fetched == 0
    new = state.add_post("reddit", "u/flare999 fire at the school on Mill Lane", "bob")
    assert poll(source, engine).stored == 1
    assert state.path_counts[mentions[0]] == asked + 2  # two polls, one read each
    assert [p.external_id for p in stored_posts(engine, "reddit")][-1] == new.external_id
