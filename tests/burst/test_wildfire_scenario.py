"""The third burst scenario (bench/scenarios/wildfire.py): the interface `flare bench burst` reads,
and what the scenario says it holds. Its grouping results are measured by the benchmark, not here."""
from __future__ import annotations

import runpy
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = runpy.run_path(str(ROOT / "bench" / "scenarios" / "wildfire.py"))
BENCH = runpy.run_path(str(ROOT / "bench" / "burst.py"), run_name="bench_burst_test")


def _entries(n: int = 4000, seed: int = 5):
    return SCENARIO["burst_scenario"](n, 20, 60.0, seed)


def test_same_seed_same_entries_sorted_and_one_author_each():
    assert _entries(seed=5) == _entries(seed=5) and _entries(seed=5) != _entries(seed=6)
    entries = _entries()
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    assert len({e.author for e in entries}) == len(entries), "the benchmark follows each post by its author"
    for e in entries:
        assert e.text and len(e.text) <= SCENARIO["LIMITS"][e.platform]
        assert e.as_json()["text"] == e.text


def test_events_platforms_threads_and_geotags():
    entries = _entries()
    assert set(Counter(e.event for e in entries)) == {*SCENARIO["EVENTS"], ""}
    assert {(e.platform, e.is_dm) for e in entries if e.event == "wildfire"} == {
        (p, dm) for p in ("x", "bluesky", "reddit") for dm in (False, True)}
    assert all(e.lat is None for e in entries if e.platform != "x" or e.is_dm), "only public X posts carry geotags"
    by_author = {e.author: e for e in entries}
    replies = [e for e in entries if e.reply_to]
    assert len(replies) > 0.05 * len(entries)
    for reply in replies:
        parent = by_author[reply.reply_to]
        assert parent.at <= reply.at and parent.platform == reply.platform and not (parent.is_dm or reply.is_dm)
    # The front moves: the place most reports name changes over the replay.
    names = [p.name for p in SCENARIO["FRONT"]]
    first = Counter(n for e in entries if e.at < 6 for n in names if n in e.text).most_common(1)[0][0]
    last = Counter(n for e in entries if e.at > 54 for n in names if n in e.text).most_common(1)[0][0]
    assert first != last
    assert sum(1 for e in entries if e.event and not e.text.isascii()) > 0.1 * len(entries)


def test_lone_cries_of_both_sets_some_in_fire_threads():
    entries = _entries()
    lone = [e for e in entries if e.author.startswith(SCENARIO["UNRELATED_AUTHOR"])]
    quiet = [e for e in entries if e.author.startswith(SCENARIO["QUIET_AUTHOR"])]
    assert len(lone) == 20 and len(quiet) >= 20 and len({e.text for e in quiet}) == len(quiet)
    assert all(e.event == "" for e in lone + quiet)
    assert sum(1 for e in quiet if not e.text.isascii()) >= 8
    assert any(e.is_dm for e in quiet) and any(e.reply_to for e in quiet)
    events = BENCH["events_of"](entries, (SCENARIO["UNRELATED_AUTHOR"], SCENARIO["QUIET_AUTHOR"]))
    assert set(events.values()) == {"wildfire", "missing_child", ""}
    first_quiet = runpy.run_path(str(ROOT / "bench" / "scenarios" / "burst.py"))["_QUIET"]
    assert not ({text for text, _, _ in SCENARIO["_QUIET"]} & set(first_quiet)), "written fresh"
