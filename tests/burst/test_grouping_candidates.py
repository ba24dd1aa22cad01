"""A post is decided against only the candidates the per-group index keeps (grouping.candidates):
the decision must be the one made over every candidate, and every candidate the table would
answer anything but "different" about must be kept."""
from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from grouping import rules
from grouping.candidates import CandidateIndex
from test_grouping_shortcut import _candidate, _post

NOW = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)


def _chosen(post: rules.PostFacts, candidates: list[rules.Candidate], cluster_rules: rules.ClusterRules
            ) -> tuple[list[int], list]:
    index = CandidateIndex(candidates, cluster_rules)
    cosines = rules.centroid_cosines(post.embedding, candidates)
    near = {c.incident_id: c.near_duplicate for c in candidates if c.near_duplicate}
    links = {c.incident_id: c.link for c in candidates if c.link}
    return index.chosen(post, cosines, near, links), cosines


@pytest.mark.parametrize("cluster_rules", [rules.ClusterRules(), rules.ClusterRules(shortcut=False)])
def test_the_kept_candidates_decide_as_all_of_them(cluster_rules):
    rng = random.Random(21)
    passed_over = 0
    for _ in range(400):
        base = np.asarray([rng.gauss(0, 1) for _ in range(8)])
        post = _post(rng, base)
        candidates = [_candidate(rng, base, n) for n in range(rng.choice([1, 5, 30, 120]))]
        chosen, cosines = _chosen(post, candidates, cluster_rules)
        personal = rules.personal_request(post.text)
        for n, (cand, cos) in enumerate(zip(candidates, cosines, strict=True)):
            answer = rules._match(post, cand, personal, post.address_keys, cos, cluster_rules, post.retweet)
            assert answer is None or n in chosen, (post, cand, answer)
        passed_over += len(candidates) - len(chosen)
        kept = [candidates[n] for n in chosen]
        assert rules.decide(post, kept, cluster_rules, cosines=[cosines[n] for n in chosen]) \
            == rules.decide(post, candidates, cluster_rules)
    assert passed_over > 500, "the index passes over candidates that cannot match"


def _incident(n: int, lat: float | None, lon: float | None, confidence: float = 0.9, reports: int = 1,
              places: frozenset[str] = frozenset()) -> rules.Candidate:
    return rules.Candidate(incident_id=n, category="flood", last_report_at=NOW - timedelta(minutes=5), lat=lat,
                           lon=lon, location_confidence=confidence, report_count=reports, place_names=places)


def test_far_away_and_unrelated_incidents_are_passed_over():
    post = rules.PostFacts(post_id=1, text="water up to the car doors", at=NOW, category="flood",
                           lat=51.64, lon=-3.94, location_confidence=0.9, place_names=frozenset({"landore"}))
    candidates = [
        _incident(1, 53.80, -1.76),  # another city: passed over
        _incident(2, 51.66, -3.94),  # 2.2 km away, both street-level: passed over
        _incident(3, 51.66, -3.94, confidence=0.55),  # 2.2 km away at town level: kept
        _incident(4, 51.66, -3.94, reports=20),  # a surge across town: kept
        _incident(5, None, None),  # unplaced, nothing in common: passed over
        _incident(6, None, None, places=frozenset({"landore"})),  # unplaced, a place in common: kept
        _incident(7, None, None, places=frozenset({"landor"})),  # but for one letter: kept
        _incident(8, 53.80, -1.76),  # another city, but the post replies in its thread: kept
        _incident(9, None, None),  # unplaced, near-duplicate text: kept
    ]
    index = CandidateIndex(candidates, rules.ClusterRules())
    chosen = index.chosen(post, [None] * len(candidates), {9: 0.7, 5: 0.2}, {8: "reply to a post in this incident"})
    assert [candidates[n].incident_id for n in chosen] == [3, 4, 6, 7, 8, 9]


def test_a_candidate_at_a_radius_is_left_to_the_table():
    """Rounding may differ between numpy's distance and the table's: within a metre of the
    radius, the table decides; beyond, the index passes over."""
    cluster_rules = rules.ClusterRules()
    post = rules.PostFacts(post_id=1, text="smoke over the estate", at=NOW, category="fire", lat=53.8, lon=-1.55,
                           location_confidence=0.55)
    just, beyond = (_incident(n, 53.8 + math.degrees((cluster_rules.area_radius_km + km) / 6371.0), -1.55, confidence=0.55)
                    for n, km in ((1, 0.0005), (2, 0.002)))
    assert 0.0 < rules.distance_km(post.lat, post.lon, just.lat, just.lon) - cluster_rules.area_radius_km < 0.001
    assert CandidateIndex([just, beyond], cluster_rules).chosen(post, [None, None], {}, {}) == [0]


def test_places_named_later_in_the_group_count():
    post = rules.PostFacts(post_id=1, text="flooding", at=NOW, category="flood", place_names=frozenset({"hafod"}))
    index = CandidateIndex([_incident(1, None, None)], rules.ClusterRules())
    assert index.chosen(post, [None], {}, {}) == []
    index.add_places(1, frozenset({"hafod"}))
    assert index.chosen(post, [None], {}, {}) == [0]
