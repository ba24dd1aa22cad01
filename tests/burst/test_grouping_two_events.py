"""Two events at once (bench/scenarios/two_events.py): reports of one must never be grouped into the
other's incident. Decided by the grouping rules over what the real triage pipeline makes of each post.

Found by `flare bench burst --scenario bench/scenarios/two_events.py`: an incident of Bluesky posts
passing on flood reports ("🔁 @tawe_1259.bsky.social: cars floating down the street...") took in a
post passing on a collapse report in another city ("🔁 @bd8_2422.bsky.social: the roof has caed in on
bradford"), by "same wording (cosine 0.65), no place given". Triage's text normalisation
(triage/normalise.py, `_HANDLE`) removes "@tawe_1259" but leaves ".bsky.social" of a Bluesky
handle in what the encoder reads, and every Bluesky mention carries one: the shared remnant pulls
such posts' vectors together (0.65 to the incident's centroid; 0.36 without the handles).
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from config import Settings
from grouping import rules
from grouping.finder import post_facts, wording_vector
from models.tables import Post
from tests.demo_pipeline import MODEL_CACHE
from triage.base import TriageInput
from triage.factory import build_pipeline

NOW = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
FLOOD = ["🔁 @tawe_1259.bsky.social: cars floating down the street. this is st thomas 20 mins ago",
         "🔁 @tawe_521.bsky.social: neath road right now: the road is a river ... 😭😱",
         "🔁 @tawe_16.bsky.social: just walked down to Hfaood and cars floating down the street #Landore"]
COLLAPSE = "🔁 @bd8_2422.bsky.social: the roof has caed in on bradford"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    settings = Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("two-events"),
                        triage={"model_cache_dir": str(MODEL_CACHE), "threads": 1})
    return build_pipeline(settings, kind="models")


def _decide(pipeline, incident_texts: list[str], text: str) -> rules.Decision:
    """The post against an unplaced incident of `incident_texts`, its centroid the normalised mean
    of their wording vectors (grouping.finder.ClusterState.record_many)."""
    outs = pipeline.many([TriageInput(text=t) for t in [*incident_texts, text]])
    vectors = [np.asarray(wording_vector(o), dtype=np.float32) for o in outs[:-1] if wording_vector(o) is not None]
    centroid = np.sum(vectors, axis=0)
    centroid /= np.linalg.norm(centroid)
    incident = rules.Candidate(incident_id=1, category=outs[0].category, last_report_at=NOW - timedelta(minutes=3),
                               centroid=centroid, report_count=len(incident_texts))
    post = Post(id=9, platform="bluesky", external_id="at://9", author_id="did:9", text=text, received_at=NOW)
    return rules.decide(post_facts(post, outs[-1]), [incident])


def _without_handles(text: str) -> str:
    return text.split(": ", 1)[1]


def test_the_other_events_report_without_its_bluesky_handle_is_kept_apart(pipeline):
    decision = _decide(pipeline, [_without_handles(t) for t in FLOOD], _without_handles(COLLAPSE))
    assert decision.incident_id is None, decision.reason


def test_the_other_events_report_passed_on_with_a_bluesky_handle_is_kept_apart(pipeline):
    decision = _decide(pipeline, FLOOD, COLLAPSE)
    assert decision.incident_id is None, decision.reason


# -- replies in a thread of one event that report the other (found by the same benchmark: "my
# family in Bradford say a building collapsed on Maningham Lane", answering a post about the flood
# in Swansea, joined the flood's incident as "reply to or quote of a post in this incident")

SWANSEA, BRADFORD = (51.6402, -3.9363), (53.7939, -1.7521)


def _thread_incident(where: tuple[float, float] | None) -> rules.Candidate:
    lat, lon = where or (None, None)
    return rules.Candidate(incident_id=4, category="hazard", last_report_at=NOW - timedelta(minutes=5), lat=lat,
                           lon=lon, location_confidence=0.9 if where else 0.0, report_count=40,
                           link="reply to or quote of a post in this incident")


def _reply(where: tuple[float, float] | None, confidence: float = 0.55,
           text: str = "my family in Bradford say a building collapsed on Manningham Lane") -> rules.PostFacts:
    lat, lon = where or (None, None)
    return rules.PostFacts(post_id=11, text=text,
                           at=NOW, category="hazard", lat=lat, lon=lon, location_confidence=confidence,
                           place_names=frozenset({"bradford", "manningham lane"}))


def test_a_reply_placed_in_another_town_opens_its_own_incident_marked_for_a_person_to_confirm():
    decision = rules.decide(_reply(BRADFORD), [_thread_incident(SWANSEA)])
    assert decision.incident_id is None
    assert decision.possible_duplicate_of == 4 and "reply in its thread" in decision.reason
    # Where it is placed, it joins that town's own incident as any report would (an onlooker's).
    collapse = rules.Candidate(incident_id=9, category="hazard", last_report_at=NOW - timedelta(minutes=1),
                               lat=53.8027, lon=-1.7641, location_confidence=0.9, report_count=300,
                               place_names=frozenset({"manningham lane"}))
    onlooker = _reply(BRADFORD, text="meanwhile a whole building has come down on Manningham Lane in Bradford")
    assert rules.decide(onlooker, [_thread_incident(SWANSEA), collapse]).incident_id == 9


def test_a_reply_in_the_same_town_or_where_either_side_is_unplaced_still_joins_its_thread():
    nearby = (SWANSEA[0] + 0.03, SWANSEA[1])  # 3 km: the same flood further down the river
    assert rules.decide(_reply(nearby, 0.9), [_thread_incident(SWANSEA)]).incident_id == 4
    assert rules.decide(_reply(None), [_thread_incident(SWANSEA)]).incident_id == 4
    unplaced = _thread_incident(None)
    unplaced.place_names = frozenset({"manningham lane"})
    assert rules.decide(_reply(BRADFORD), [unplaced]).incident_id == 4


def test_a_placed_reply_in_the_thread_of_an_incident_with_no_place_yet_joins_it():
    # It may be the first post to say where the emergency is: kept with its thread, not split off.
    unplaced = _thread_incident(None)
    unplaced.place_names = frozenset({"st thomas"})
    assert rules.decide(_reply(BRADFORD), [unplaced]).incident_id == 4


def test_a_placed_reply_in_an_unplaced_thread_goes_to_the_incident_at_the_place_it_gives():
    # News of the other event in one event's thread, placed where the other event is (found by
    # the two-events benchmark with 4,000 posts: "meanwhile Swansea is flooding..." answering a
    # post about the collapse joined the collapse's incident, which had no place yet).
    unplaced = _thread_incident(None)
    unplaced.place_names = frozenset({"lumb lane"})
    flood = rules.Candidate(incident_id=9, category="hazard", last_report_at=NOW - timedelta(seconds=20),
                            lat=SWANSEA[0] + 0.01, lon=SWANSEA[1], location_confidence=0.95, report_count=120,
                            centroid=np.array([1.0, 0.0], dtype=np.float32))
    news = rules.PostFacts(post_id=12, text="and now the whole of the valley floor is under water by the river",
                           at=NOW, category="hazard", lat=SWANSEA[0], lon=SWANSEA[1], location_confidence=0.55,
                           embedding=np.array([0.8, 0.6], dtype=np.float32), place_names=frozenset({"swansea"}))
    assert rules.decide(news, [unplaced, flood]).incident_id == 9
    # Nothing there takes it: it stays with its thread, as before.
    assert rules.decide(news, [unplaced]).incident_id == 4
    # Unplaced, it stays with its thread whatever else reads like it.
    news.lat = news.lon = None
    news.place_names = frozenset()
    assert rules.decide(news, [unplaced, flood]).incident_id == 4
