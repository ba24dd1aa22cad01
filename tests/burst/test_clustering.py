"""Clustering decisions (grouping.rules.decide): pure, no database or models."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from grouping.near_duplicates import NearDuplicateIndex, minhash
from grouping.rules import (
    Candidate,
    ClusterRules,
    PostFacts,
    decide,
    merged_location,
    personal_request,
)

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
BLAST = (53.4774, -2.2309)
EVENT = np.array([1.0, 0.0, 0.0], dtype=np.float32)
UNRELATED = np.array([0.0, 1.0, 0.0], dtype=np.float32)


def _post(text: str, *, at: datetime = NOW, category: str = "fire", where=BLAST, confidence: float = 0.95,
          embedding=EVENT, silent: bool = False, places=frozenset()) -> PostFacts:
    lat, lon = where if where else (None, None)
    return PostFacts(post_id=99, text=text, at=at, category=category, silent=silent, lat=lat, lon=lon,
                     location_confidence=confidence if where else 0.0, embedding=embedding,
                     place_names=frozenset(places))


def _explosion(**kw) -> Candidate:
    base = dict(incident_id=1, category="fire", last_report_at=NOW - timedelta(minutes=5), lat=BLAST[0],
                lon=BLAST[1], location_confidence=0.95, centroid=EVENT,
                place_names=frozenset({"piccadilly", "london road"}))
    base.update(kw)
    return Candidate(**base)


def test_same_place_time_and_kind_joins_with_a_reason():
    post = _post("huge explosion by the station, windows blown out", where=(53.4790, -2.2320))
    decision = decide(post, [_explosion()])
    assert decision.incident_id == 1
    assert "same place" in decision.reason and "km" in decision.reason
    assert decision.similarity is not None and decision.similarity > 0.9


def test_different_place_stays_separate_even_with_the_same_words():
    leeds = (53.7965, -1.5479)
    post = _post("huge explosion by the station, windows blown out", where=leeds)
    assert decide(post, [_explosion()]).incident_id is None


def test_same_place_but_outside_the_time_window_stays_separate():
    post = _post("explosion near Piccadilly", at=NOW + ClusterRules().window + timedelta(minutes=10))
    assert decide(post, [_explosion()]).incident_id is None


def test_personal_request_without_location_is_never_absorbed_by_wording():
    post = _post("please help my mum can't breathe", where=None, category="fire", embedding=EVENT)
    decision = decide(post, [_explosion(near_duplicate=0.7)])
    assert decision.incident_id is None
    assert "personal request" in decision.reason


def test_personal_request_at_another_address_stays_separate():
    post = _post("my dad has collapsed and isn't breathing, 4 Mill Lane Leeds", where=(53.7965, -1.5479),
                 confidence=0.55, category="medical", embedding=UNRELATED)
    assert decide(post, [_explosion()]).incident_id is None


def test_personal_request_at_the_blast_joins_it():
    post = _post("I'm trapped in the building next to the station, please help", where=(53.4776, -2.2311))
    assert decide(post, [_explosion()]).incident_id == 1


def test_silent_contact_never_merges_into_a_public_cluster():
    post = _post("explosion by the station", silent=True)
    decision = decide(post, [_explosion()])
    assert decision.incident_id is None and "silent" in decision.reason


def test_silent_incident_never_absorbs_other_reports():
    post = _post("explosion by the station")
    assert decide(post, [_explosion(silent=True)]).incident_id is None


def test_retweet_joins_its_original_without_any_location():
    original = "London Road: huge explosion, flames coming out of a building"
    index = NearDuplicateIndex()
    index.add(post_id=5, incident_id=1, text=original)
    index.add(post_id=6, incident_id=2, text="my nan has fallen and is bleeding, 12 Oak Road York")
    retweet = f"RT @mcr_4: {original}"
    overlap = index.best_by_incident(minhash(retweet))
    assert overlap.get(1, 0) >= 0.9 and overlap.get(2, 0) < 0.5
    post = _post(retweet, where=None, category="hazard", embedding=None)
    decision = decide(post, [_explosion(near_duplicate=overlap[1], lat=None, lon=None)])
    assert decision.incident_id == 1 and "retweet" in decision.reason


def test_reply_link_joins_whatever_the_wording():
    post = _post("is everyone ok?", where=None, category="other", embedding=UNRELATED)
    decision = decide(post, [_explosion(link="reply to or quote of a post in this incident")])
    assert decision.incident_id == 1 and "reply" in decision.reason


def test_unlocated_report_joins_on_a_shared_named_place():
    post = _post("a massive bang outside London Road, smoke everywhere", where=None, category="hazard",
                 places={"london road"}, embedding=np.array([0.8, 0.6, 0.0], dtype=np.float32))
    decision = decide(post, [_explosion()])
    assert decision.incident_id == 1 and "london road" in decision.reason


def test_best_candidate_wins():
    near = _explosion(incident_id=2, lat=53.4775, lon=-2.2310)
    far = _explosion(incident_id=3, lat=53.4850, lon=-2.2400)
    assert decide(_post("explosion"), [far, near]).incident_id == 2


def test_personal_request_detection():
    assert personal_request("my mum can't breathe")
    assert personal_request("WE'RE TRAPPED on the 2nd floor")
    assert not personal_request("huge explosion by the station")
    assert not personal_request("my thoughts are with everyone")


def test_merged_location_is_weighted_by_confidence():
    town_guess = (53.4810, -2.2400, 0.55)
    geotag = (53.4774, -2.2309, 0.95)
    merged, weight = merged_location(town_guess, 0.55 ** 2, geotag)
    assert abs(merged[0] - geotag[0]) < abs(merged[0] - town_guess[0])
    assert merged[2] == 0.95 and weight > 0.55 ** 2
    assert merged_location(None, 0.0, geotag)[0] == geotag
    assert merged_location(town_guess, 0.3, None)[0] == town_guess


def test_index_is_bounded():
    index = NearDuplicateIndex(capacity=3)
    for i in range(5):
        index.add(i, 1, f"report number {i} of the explosion near the station")
    assert len(index) == 3


def test_two_personal_emergencies_a_kilometre_apart_stay_separate():
    first_caller = _explosion(category="medical", lat=53.7965, lon=-1.5479, place_names=frozenset())
    post = _post("my grandad has fallen and is bleeding from his head", where=(53.8050, -1.5479),
                 category="medical")
    assert decide(post, [first_caller]).incident_id is None


def test_unplaced_report_with_related_wording_joins_a_surging_incident_only():
    related = np.array([0.55, 0.835, 0.0], dtype=np.float32)  # cosine 0.55 with the event
    post = _post("the whole street just shook, what a noise", where=None, category="hazard", embedding=related)
    assert decide(post, [_explosion(report_count=3)]).incident_id is None
    decision = decide(post, [_explosion(report_count=300)])
    assert decision.incident_id == 1 and "300 reports" in decision.reason
    personal = _post("my mum can't breathe, the whole street shook", where=None, embedding=related)
    assert decide(personal, [_explosion(report_count=300)]).incident_id is None


def test_a_repeated_text_is_indexed_once_and_kept_as_recent():
    index = NearDuplicateIndex(capacity=2)
    copied = "huge explosion near Piccadilly, windows blown out"
    index.add(1, 1, copied)
    index.add(2, 1, "smoke everywhere on London Road after the blast")
    version = index.version
    index.add(3, 1, f"RT @mcr_9: {copied}")  # the same signature: nothing new to score against
    assert len(index) == 2 and index.version == version
    index.add(4, 2, "my nan has fallen and is bleeding, 12 Oak Road York")  # evicts the oldest seen: post 2
    assert set(index.entries) == {1, 4}
    assert index.best_by_incident(minhash(copied)) == {1: 1.0}


def test_merged_posts_count_for_the_survivor():
    index = NearDuplicateIndex()
    text = "flames coming out of a building on London Road"
    index.add(1, 1, text)
    index.add(2, 2, "smoke over Ancoats, the whole street shook")
    index.add(4, 3, text)  # the same text in another incident is that incident's own entry
    assert index.best_by_incident(minhash(text)) == {1: 1.0, 3: 1.0}
    before = index.version
    index.move(1, 2)
    assert index.best_by_incident(minhash(text)) == {2: 1.0, 3: 1.0}
    assert index.changed_since(before) == {1, 2}
    index.add(3, 2, text)  # already indexed for the survivor
    assert len(index) == 3
