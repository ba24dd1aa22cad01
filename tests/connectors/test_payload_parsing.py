"""Property tests: no payload, however odd, makes a connector raise or lose text."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.bluesky import chat_log_to_raw, notification_to_raw
from connectors.intake import persist_posts
from connectors.reddit import thing_to_raw
from connectors.x import dm_event_to_raw, tweet_to_raw
from connector_test_helpers import stored_posts

TRICKY = st.sampled_from(["\u202e", "\u200b", "\u200d", "\ufeff", "\x00", "\ud7ff", "👩‍👩‍👧", "\u0627\u0644", "\n", "'\""])
TEXT = st.lists(st.one_of(st.text(max_size=50), TRICKY), max_size=20).map("".join)
HUGE_TEXT = st.integers(min_value=10_000, max_value=60_000).map(lambda n: "help " * (n // 5))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=5),
    max_leaves=20,
)


def _maybe(dictionary: dict, drop: list[str]) -> dict:
    return {k: v for k, v in dictionary.items() if k not in drop}


# No deadlines: the CI machine is shared, and a slow example is not a wrong one.
PROPERTY = settings(deadline=None, max_examples=100)


@PROPERTY
@given(payload=JSON)
def test_any_json_never_crashes_a_parser(payload):
    raw = json.dumps(payload, default=str)
    for post in (tweet_to_raw(payload, {}, {}, raw), dm_event_to_raw(payload, {}, raw),
                 notification_to_raw(payload), chat_log_to_raw(payload, "did:plc:me"), thing_to_raw(payload)):
        if post is not None:
            assert post.external_id and isinstance(post.text, str)
            assert post.malformed == bool(post.malformed_reason)


@PROPERTY
@given(text=TEXT | HUGE_TEXT, drop=st.lists(st.sampled_from(["author_id", "created_at", "geo", "conversation_id"])),
       coords=st.tuples(st.floats(), st.floats()))
def test_tweets_keep_their_exact_text_whatever_else_is_missing(text, drop, coords):
    tweet = _maybe({"id": "123", "text": text, "author_id": "9", "created_at": "2026-01-01T00:00:00.000Z",
                    "geo": {"coordinates": {"type": "Point", "coordinates": list(coords)}},
                    "conversation_id": "123"}, drop)
    post = tweet_to_raw(tweet, {}, {}, json.dumps(tweet))
    assert not post.malformed and post.text == text
    if post.geo is not None:  # only ever a real position, never invented
        assert -90 <= post.geo.lat <= 90 and -180 <= post.geo.lon <= 180
        assert (post.geo.lon, post.geo.lat) == coords


@PROPERTY
@given(text=TEXT | HUGE_TEXT, drop=st.lists(st.sampled_from(["cid", "reason", "author", "record", "indexedAt"])))
def test_bluesky_notifications_with_missing_fields_are_flagged_not_dropped(text, drop):
    note = _maybe({"uri": "at://did:plc:a/app.bsky.feed.post/1", "cid": "bafyrei", "reason": "mention",
                   "author": {"did": "did:plc:a"}, "record": {"text": text}, "indexedAt": "2026-01-01T00:00:00Z"},
                  drop)
    post = notification_to_raw(note)
    assert post is not None and post.external_id == "at://did:plc:a/app.bsky.feed.post/1"
    essential = {"cid", "reason", "author", "record"} & set(drop)
    assert post.malformed == bool(essential)
    if "record" not in drop:  # the verbatim payload still carries the words
        assert json.loads(post.raw_payload)["record"]["text"] == text


@PROPERTY
@given(text=TEXT | HUGE_TEXT, kind=st.sampled_from(["t1", "t4", "t3"]),
       created=st.one_of(st.floats(), st.integers(), st.text(max_size=5), st.none()))
def test_reddit_things_never_crash_and_flag_bad_timestamps(text, kind, created):
    child = {"kind": kind, "data": {"name": f"{kind}_abc", "body": text, "title": text, "author": "a",
                                    "created_utc": created}}
    post = thing_to_raw(child)
    good_time = isinstance(created, (int, float)) and created == created and abs(created) != float("inf")
    assert post.malformed != good_time
    assert post.external_id == f"{kind}_abc"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT | HUGE_TEXT)
def test_odd_text_survives_the_database(engine, text):
    tweet = {"id": str(abs(hash(text)) % 10**18 + 1), "text": text}
    post = tweet_to_raw(tweet, {}, {}, json.dumps(tweet, ensure_ascii=False))
    (persisted,) = persist_posts(engine, [post])
    row = next(r for r in stored_posts(engine, "x") if r.id == persisted.post_id)
    assert row.text == text.replace("\x00", "\ufffd")[:20_000]
    assert json.loads(row.raw_payload)["id"] == tweet["id"]
