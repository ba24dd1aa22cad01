"""Grouping an event whose places are not on the map (grouping.rules): place names matched with a
letter misspelt, a surge's reports joined by their words where the map cannot tell where they
are, and a report held back when it reads as close to a second surge that reports something
else. The table of single cases is tests/incidents/test_grouping_table.py; here the names, two
surges at once, and the real encoder on reports worded for this test."""
from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from config import Settings
from grouping import rules
from grouping.finder import named_places, post_facts, wording_vector
from models.tables import Post
from tests.demo_pipeline import MODEL_CACHE
from triage.base import TriageInput
from triage.factory import build_pipeline

NOW = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize("post, incident, shared", [
    ({"Pentre Llwyd"}, {"pentre llwyd"}, True),  # case only
    ({"abermawddach"}, {"abermawdach"}, True),  # a letter dropped
    ({"morristown"}, {"morirstown"}, True),  # two letters swapped
    ({"brewhose road"}, {"brewhouse road", "high street"}, True),
    ({"kingsbridge"}, {"kingsbrigde lane"}, False),  # another name that starts alike
    ({"oat lane"}, {"oak lane"}, False),  # short words must be spelt alike
    ({"hilton"}, {"milton"}, False),
    ({"12 mill row"}, {"13 mill row"}, False),  # numbers too
    ({"ashcombe"}, {"ashcroft"}, False),  # two letters apart
    (set(), {"ashcombe"}, False),
])
def test_place_names_match_but_for_one_letter_of_a_long_word(post, incident, shared):
    post_names = frozenset(n.lower() for n in post)
    assert bool(rules.shared_places(post_names, frozenset(incident))) is shared


def _vector(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


FLOOD, COLLAPSE = _vector(1, 0, 0), _vector(0, 1, 0)


def _surge(incident_id: int, centroid: np.ndarray, category: str = "hazard", reports: int = 200) -> rules.Candidate:
    return rules.Candidate(incident_id=incident_id, category=category, last_report_at=NOW - timedelta(seconds=30),
                           centroid=centroid, report_count=reports)


def _onlooker(embedding: np.ndarray, places: frozenset[str] = frozenset()) -> rules.PostFacts:
    return rules.PostFacts(post_id=5, text="no lights anywhere on our street and it's getting dark", at=NOW,
                           category="hazard", embedding=embedding, place_names=places)


def _between(a: float, b: float) -> np.ndarray:
    """A vector whose cosines with FLOOD and COLLAPSE are a and b."""
    return np.asarray([a, b, math.sqrt(max(0.0, 1 - a * a - b * b))], dtype=np.float32)


def test_a_report_as_close_to_two_surges_that_read_otherwise_joins_neither():
    flood, collapse = _surge(1, FLOOD), _surge(2, COLLAPSE)
    post = _onlooker(_between(0.46, 0.55))  # related to the collapse's reports, nearly as much to the flood's
    decision = rules.decide(post, [flood, collapse])
    assert decision.incident_id is None
    assert decision.possible_duplicate_of == 2 and "#1" in decision.reason
    # With only the collapse under way it joins it, as a report related to a surge does.
    assert rules.decide(post, [collapse]).incident_id == 2
    # Clearly closer to one of the two: it joins that one.
    assert rules.decide(_onlooker(_between(0.3, 0.62)), [flood, collapse]).incident_id == 2


def test_two_incidents_of_one_surge_are_no_rivals():
    # One event's reports opened two incidents side by side: their centroids read alike.
    first, second = _surge(1, FLOOD), _surge(2, _vector(0.95, 0.1, 0.3))
    post = _onlooker(_vector(0.55, 0.05, 0.83))
    assert rules.decide(post, [first, second]).incident_id in (1, 2)


def test_a_report_named_off_the_map_in_the_words_of_two_surges_joins_neither():
    flood, collapse = _surge(1, FLOOD), _surge(2, COLLAPSE)
    post = _onlooker(_between(0.68, 0.70), frozenset({"heol y nant"}))
    decision = rules.decide(post, [flood, collapse])
    assert decision.incident_id is None and decision.possible_duplicate_of in (1, 2)


# -- the real encoder and heads, on reports worded here: a river flood in a valley town whose
# streets the gazetteer does not know.

VALLEY = (52.4105, -3.6110)
FLOOD_REPORTS = [
    "the river has broken its banks, water rushing down the high street",
    "whole town centre flooded, water up to the shop windows",
    "flood water pouring into the houses by the bridge, it's rising fast",
    "never seen flooding like it, the roads are rivers and cars are floating",
    "the river is over the bridge now, water everywhere in town",
    "flash flood, the main road is under a metre of water",
    "water coming into homes all along the riverside, people moving upstairs",
    "river burst its banks overnight and the town is under water",
    "cars swept along by flood water near the bus station",
]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    settings = Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("unmapped"),
                        triage={"model_cache_dir": str(MODEL_CACHE), "threads": 1})
    return build_pipeline(settings, kind="models")


@pytest.fixture(scope="module")
def flood(pipeline) -> rules.Candidate:
    """The flood's incident after 40 reports: placed by the geotags of a few, its centroid the
    normalised mean of their wording vectors (grouping.finder.ClusterState.record_many)."""
    outs = pipeline.many([TriageInput(text=t) for t in FLOOD_REPORTS])
    centroid = np.sum([np.asarray(wording_vector(o), dtype=np.float32) for o in outs], axis=0)
    return rules.Candidate(incident_id=7, category="hazard", last_report_at=NOW - timedelta(seconds=20),
                           lat=VALLEY[0], lon=VALLEY[1], location_confidence=0.95,
                           centroid=centroid / np.linalg.norm(centroid), report_count=40,
                           place_names=frozenset().union(*(named_places(o) for o in outs)))


def _decide(pipeline, incident: rules.Candidate, text: str) -> tuple[rules.Decision, rules.PostFacts]:
    out = pipeline.many([TriageInput(text=text, platform="bluesky")])[0]
    post = Post(id=11, platform="bluesky", external_id="at://11", author_id="did:11", text=text, received_at=NOW)
    facts = post_facts(post, out)
    return rules.decide(facts, [incident]), facts


@pytest.mark.parametrize("text", [
    "flood water pouring into the houses at Pentre Llwyd, the river has burst its banks",
    "water rushing down the main street of Pentre Llwyd, cars floating",
])
def test_a_flood_report_named_off_the_map_joins_the_flood(pipeline, flood, text):
    decision, facts = _decide(pipeline, flood, text)
    assert facts.place_names and not facts.located  # named, and not on the map
    assert decision.incident_id == 7, decision.reason
    assert "not on the map" in decision.reason


@pytest.mark.parametrize("text", [
    "Pentre Llwyd: an old building has just collapsed, people under the rubble",
    "man collapsed in Pentre Llwyd, he's not breathing, someone doing CPR",
    "house on fire in Pentre Llwyd, flames through the roof",
    "my daughter is stuck in the car at Pentre Llwyd and the water is at the windows",
])
def test_another_emergency_named_off_the_map_in_the_flood_stays_apart(pipeline, flood, text):
    decision, _ = _decide(pipeline, flood, text)
    assert decision.incident_id is None, decision.reason


def test_a_surge_gone_quiet_or_silent_is_no_rival():
    collapse = _surge(2, COLLAPSE)
    post = _onlooker(_between(0.46, 0.55))
    quiet = _surge(1, FLOOD)
    quiet.last_report_at = NOW - rules.ClusterRules().window - timedelta(minutes=1)
    assert rules.decide(post, [quiet, collapse]).incident_id == 2
    silent = _surge(1, FLOOD)
    silent.silent = True
    assert rules.decide(post, [silent, collapse]).incident_id == 2
