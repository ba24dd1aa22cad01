"""The grouping rules rule out a candidate that cannot match before matching it in full
(grouping.rules._may_match_unplaced, and the distance and address tests first): the answers must
be those of the full table, candidate by candidate, and for a replayed burst."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from burst_helpers import load_burst_module
from flows import triage_batch
from grouping import finder, rules
from models import Post
from test_grouping_plan import _run, ctx  # noqa: F401 - the fixture, shared

NOW = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)
PLACES = ["high st", "12 high st", "leeds", "kirkgate market", "station road", "40 park row", "armley"]
TEXTS = ["huge explosion near the station, smoke everywhere", "RT @bob: huge explosion near the station",
         "my dad can't breathe please help, we're trapped", "fire at 22 kirkgate road, people inside",
         "lovely day in the park", "flooding on station road, cars stuck", "help my baby is not breathing"]
CATEGORIES = ["fire", "hazard", "medical", "traffic", "flood", "other", "violence"]


def _vector(rng: random.Random, base: np.ndarray) -> np.ndarray | None:
    if rng.random() < 0.1:
        return None
    return (base + rng.uniform(0.0, 2.0) * np.asarray([rng.gauss(0, 1) for _ in range(8)])).astype(np.float32)


def _place(rng: random.Random) -> tuple[float | None, float | None, float]:
    if rng.random() < 0.4:
        return None, None, 0.0
    # around one spot: some within 0.5 km, some within 1.5 and 8 km, some far
    spread = rng.choice([0.002, 0.01, 0.05, 0.3])
    return 53.8 + rng.uniform(-spread, spread), -1.55 + rng.uniform(-spread, spread), rng.choice([0.55, 0.7, 0.85, 0.9])


def _post(rng: random.Random, base: np.ndarray) -> rules.PostFacts:
    lat, lon, conf = _place(rng)
    return rules.PostFacts(
        post_id=rng.randrange(10**6), text=rng.choice(TEXTS), at=NOW, category=rng.choice(CATEGORIES),
        lat=lat, lon=lon, location_confidence=conf, embedding=_vector(rng, base),
        place_names=frozenset(rng.sample(PLACES, rng.choice([0, 0, 1, 2]))),
        addresses=frozenset(rng.sample(["12 high", "22 kirkgate"], rng.choice([0, 0, 0, 1]))),
        urgency=rng.choice(["critical", "high", "medium"]))


def _candidate(rng: random.Random, base: np.ndarray, n: int) -> rules.Candidate:
    lat, lon, conf = _place(rng)
    return rules.Candidate(
        incident_id=n, category=rng.choice(CATEGORIES),
        last_report_at=NOW - timedelta(minutes=rng.choice([1, 30, 119, 200])),
        lat=lat, lon=lon, location_confidence=conf, centroid=_vector(rng, base),
        link=rng.choice(["", "", "", "", "", "", "reply to or quote of a post in this incident"]),
        near_duplicate=rng.choice([0.0, 0.0, 0.3, 0.59, 0.6, 0.79, 0.8, 0.95]),
        place_names=frozenset(rng.sample(PLACES, rng.choice([0, 0, 1, 3]))),
        report_count=rng.choice([1, 3, 19, 20, 200]),
        addresses=frozenset(rng.sample(["12 high", "22 kirkgate"], rng.choice([0, 0, 0, 1]))))


FULL_TABLE = rules.ClusterRules(shortcut=False)


def _answers(post: rules.PostFacts, candidates: list[rules.Candidate], cluster_rules: rules.ClusterRules) -> list:
    personal = rules.personal_request(post.text)
    cosines = rules._cosines(post.embedding, candidates)
    each = [rules._match(post, cand, personal, post.address_keys, cos, cluster_rules, post.retweet)
            for cand, cos in zip(candidates, cosines, strict=True)]
    return [None if s is None else (s.score, s.decision) for s in each] + [rules.decide(post, candidates,
                                                                                        cluster_rules)]


def test_the_shortcut_answers_as_the_full_table_candidate_by_candidate():
    rng = random.Random(15)
    ruled_out = 0
    for _ in range(400):
        base = np.asarray([rng.gauss(0, 1) for _ in range(8)])
        post = _post(rng, base)
        candidates = [_candidate(rng, base, n) for n in range(1, 31)]
        full = _answers(post, candidates, FULL_TABLE)
        assert _answers(post, candidates, rules.ClusterRules()) == full
        cosines = rules._cosines(post.embedding, candidates)
        ruled_out += sum(not (post.located and c.located) and not rules._may_match_unplaced(
            post, c, post.address_keys, cos, rules.ClusterRules(), rules.shared_places(post.place_names, c.place_names))
            for c, cos in zip(candidates, cosines, strict=True))
        assert sum(a is not None for a in full[:-1]) > 0 or not candidates
    assert ruled_out > 500, "the shortcut was exercised"


@pytest.mark.slow
def test_a_burst_is_grouped_alike_with_and_without_the_shortcut(ctx, monkeypatch):  # noqa: F811
    monkeypatch.setattr(finder, "SHARED_CACHE_SECONDS", 0.0)
    entries = load_burst_module().burst_scenario(360, 6, 60.0, 5)
    outs = ctx.pipeline.many([triage_batch._input(Post(text=e.text, platform=e.platform,
                                                       geo_lat=e.lat, geo_lon=e.lon)) for e in entries])
    full, full_incidents, _ = _run(ctx, entries, outs, planned=False, cluster_rules=FULL_TABLE)
    short, short_incidents, _ = _run(ctx, entries, outs, planned=False)
    assert len(full["placed"]) > 100 and len(full_incidents) > 3, "the burst was grouped"
    assert short == full
    assert short_incidents == full_incidents
