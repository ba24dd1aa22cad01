"""The second burst scenario (bench/scenarios/two_events.py): what it holds, and that the sandbox and
the connectors carry what it needs (every platform, private messages, replies in threads) the way
`flare bench burst` follows each post (bench/burst.py: post_key)."""
from __future__ import annotations

import runpy
from collections import Counter
from pathlib import Path

from config import Settings
from config.settings import BlueskySettings, RedditSettings, XSettings
from connectors.bluesky import BlueskyAccount, BlueskyDirectMessagesSource, BlueskyNotificationsSource
from connectors.reddit import RedditInboxSource
from connectors.sandbox import SandboxServer, SandboxState
from connectors.x import XDirectMessagesSource, XMentionsSource
from models.enums import Lane
from triage.prescreen import lane_for

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = runpy.run_path(str(ROOT / "bench" / "scenarios" / "two_events.py"))
BENCH = runpy.run_path(str(ROOT / "bench" / "burst.py"), run_name="bench_burst_test")


def _entries(n: int = 4000, seed: int = 5):
    return SCENARIO["burst_scenario"](n, 20, 60.0, seed)


def test_same_seed_same_entries_and_the_interface_of_the_first_scenario():
    assert _entries(seed=5) == _entries(seed=5) and _entries(seed=5) != _entries(seed=6)
    entries = _entries()
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    assert len({e.author for e in entries}) == len(entries), "the benchmark follows each post by its author"
    assert all(e.as_json()["text"] == e.text for e in entries[:50])


def test_two_events_on_every_platform_with_other_languages_threads_and_few_exact_copies():
    entries = _entries()
    burst = [e for e in entries if e.event]
    assert set(Counter(e.event for e in burst)) == set(SCENARIO["EVENTS"]) == {"flood", "collapse"}
    assert {(e.platform, e.is_dm) for e in burst} == {(p, dm) for p in ("x", "bluesky", "reddit") for dm in (False, True)}
    assert all(e.lat is None for e in entries if e.platform != "x" or e.is_dm), "only X posts carry geotags"
    assert sum(1 for e in burst if not e.text.isascii()) > 0.1 * len(burst)
    assert len({e.text for e in entries}) > 0.85 * len(entries)
    for platform, limit in SCENARIO["LIMITS"].items():
        longest = max(len(e.text) for e in entries if e.platform == platform)
        assert limit * 0.9 <= longest <= limit or platform == "reddit" and 2_000 <= longest <= limit
    # Replies follow what they answer, on its platform, never in private; a few answer a post of
    # the other event (the ones a thread link must not merge into it).
    by_author = {e.author: e for e in entries}
    replies = [e for e in entries if e.reply_to]
    assert len(replies) > 0.05 * len(entries)
    for reply in replies:
        parent = by_author[reply.reply_to]
        assert parent.at <= reply.at and parent.platform == reply.platform and not (parent.is_dm or reply.is_dm)
    assert any(by_author[e.reply_to].event != e.event for e in replies if e.kind == "cross")


def test_lone_cries_of_both_sets_and_what_the_keyword_prescreen_makes_of_them():
    entries = _entries()
    lone = [e for e in entries if e.author.startswith(SCENARIO["UNRELATED_AUTHOR"])]
    quiet = [e for e in entries if e.author.startswith(SCENARIO["QUIET_AUTHOR"])]
    assert len(lone) == 20 and len(quiet) >= 20 and len({e.text for e in quiet}) == len(quiet)
    assert all(lane_for(e.text, e.is_dm) == Lane.critical.value for e in lone)
    assert [e.text for e in quiet if lane_for(e.text, e.is_dm) == Lane.critical.value] == []
    assert sum(1 for e in quiet if not e.text.isascii()) >= 8
    assert {e.platform for e in lone + quiet} == {"x", "bluesky", "reddit"} and any(e.is_dm for e in quiet)
    assert not (set(SCENARIO["_QUIET"]) & set(load_first_quiet())), "written fresh, not the first scenario's"


def load_first_quiet() -> list[str]:
    return runpy.run_path(str(ROOT / "bench" / "scenarios" / "burst.py"))["_QUIET"]


def _settings(url: str) -> Settings:
    return Settings(_env_file=None).model_copy(update={
        "x": XSettings(bearer_token="sandbox-bearer", consumer_key="ck", consumer_secret="cs", access_token="at",
                       access_token_secret="ats", user_id="1000", base_url=url),
        "bluesky": BlueskySettings(handle="flare999.bsky.social", app_password="app-pass", base_url=url),
        "reddit": RedditSettings(client_id="cid", client_secret="csecret", username="flare999", password="pw",
                                 base_url=url)})


def test_every_post_reaches_the_connectors_under_the_key_the_benchmark_follows_and_replies_keep_their_thread(tmp_path):
    state = SandboxState()
    server = SandboxServer(state)
    settings = _settings(server.start())
    try:
        items = {}
        for platform in ("x", "bluesky", "reddit"):
            root = state.add_post(platform, "river over the wall at Landore", f"{platform}_root")
            reply = state.add_post(platform, "same on Odo Street", f"{platform}_reply", reply_to=root.external_id)
            deeper = state.add_post(platform, "water in our kitchen too", f"{platform}_deeper", reply_to=reply.external_id)
            dm = state.add_post(platform, "we are stuck upstairs", f"{platform}_dm", is_dm=True)
            items[platform] = (root, reply, deeper, dm)
        stored = {}
        account = BlueskyAccount(settings.bluesky, tmp_path / "bsky-session.txt")
        for source in (XMentionsSource(settings.x), XDirectMessagesSource(settings.x),
                       BlueskyNotificationsSource(account), BlueskyDirectMessagesSource(account),
                       RedditInboxSource(settings.reddit)):
            posts, _ = source.fetch({})
            stored.update({(p.platform, p.external_id): p for p in posts})
    finally:
        server.stop()
    for platform, (root, reply, deeper, dm) in items.items():
        for item in (root, reply, deeper, dm):
            assert BENCH["post_key"](item) in stored, (platform, item.external_id)
        got = {item.author: stored[BENCH["post_key"](item)] for item in (root, reply, deeper)}
        # The thread's root and the post answered, as each platform gives them (X names the
        # conversation only; Reddit comments name their parent).
        if platform == "reddit":
            assert got["reddit_reply"].reply_to_external_id == root.external_id
            assert got["reddit_deeper"].reply_to_external_id == reply.external_id
        else:
            assert got[f"{platform}_reply"].conversation_id == root.external_id
            assert got[f"{platform}_deeper"].conversation_id == root.external_id
            assert got[f"{platform}_root"].conversation_id == root.external_id
        if platform == "bluesky":
            assert got["bluesky_deeper"].reply_to_external_id == reply.external_id
