"""Grouping decisions as a table of cases: same event / different event / uncertain.

Pure (grouping.rules.decide): no database. Embeddings are 2-d vectors chosen for the cosine
each case needs, so a case reads as "how alike the wording is", not as a model's output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from grouping.rules import Candidate, PostFacts, address_keys, decide, same_kind, specific_place

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
LEEDS = (53.7997, -1.5492)  # the town centroid every unmatched Leeds address geocodes to
BLAST = (53.4774, -2.2309)
KENDAL = (54.3280, -2.7460)
# A surge of flood reports around a valley town the gazetteer has no streets of; the places its
# reports name are not on the map.
VALLEY = (52.4105, -3.6110)
VALLEY_4KM = (52.4465, -3.6110)
VALLEY_9KM = (52.4915, -3.6110)
TOWN, ADDRESS, GEOTAG = 0.3, 0.85, 0.95  # location confidences: town in address, street, GPS


def cos(c: float) -> np.ndarray:
    """A vector whose cosine with [1, 0] is c."""
    return np.array([c, math.sqrt(max(0.0, 1 - c * c))], dtype=np.float32)


@dataclass
class Case:
    name: str
    text: str
    category: str
    cand_category: str
    expect: str  # "same", "different", "uncertain"
    where: tuple[float, float] | None = None
    conf: float = 0.0
    cand_where: tuple[float, float] | None = None
    cand_conf: float = 0.0
    similarity: float = 0.4  # cosine of the post with the incident's centroid
    near_duplicate: float = 0.0
    places: frozenset[str] = frozenset()
    cand_places: frozenset[str] = frozenset()
    reports: int = 1
    link: str = ""
    vector: bool = True  # False: a post in a language its wording is not compared in
    urgency: str = ""  # triage's reading of the post
    extra: dict = field(default_factory=dict)


CASES = [
    # ---------------------------------------------------------------- same event
    Case("blast: geotags 200 m apart, related wording", "huge explosion by the station, windows out",
         "fire", "hazard", "same", where=(53.4790, -2.2320), conf=GEOTAG, cand_where=BLAST,
         cand_conf=GEOTAG, similarity=0.5),
    Case("same street address at town-level geocode, same kind",
         "ambulance needed at 12 High Street Leeds, man not breathing", "medical", "medical", "same",
         where=LEEDS, conf=TOWN, cand_where=LEEDS, cand_conf=TOWN, similarity=0.6,
         places=frozenset({"12 high street leeds"}), cand_places=frozenset({"12 high st leeds"})),
    Case("the same crash wording, not urgent: the family joins it", "smoke and a car on fire by the lights "
         "in Stamata", "traffic", "fire", "same", similarity=0.38, reports=40,
         places=frozenset({"stamata"}), cand_places=frozenset({"stamata"})),
    Case("urgent report of the fire's family that says the same", "the fire's jumped the road in Stamata, "
         "cars burning, people trapped", "traffic", "fire", "same", similarity=0.7, reports=40,
         urgency="critical", places=frozenset({"stamata"}), cand_places=frozenset({"stamata"})),
    Case("a copied appeal, geotagged where the sharer is",
         "PLEASE SHARE: Nikos, 6, went missing on the seafront at 6pm, red t-shirt, call 112 if you see him",
         "missing_person", "missing_person", "same", near_duplicate=0.9, similarity=0.9,
         where=LEEDS, conf=GEOTAG, cand_where=BLAST, cand_conf=GEOTAG, places=frozenset({"the seafront"}),
         cand_places=frozenset({"the seafront"})),
    Case("the same personal plea from two callers at one named place", "I'm trapped in the building next to "
         "the station after the explosion, please send help", "fire", "fire", "uncertain", near_duplicate=1.0,
         similarity=1.0, places=frozenset({"the station"}), cand_places=frozenset({"the station"})),
    Case("the same personal plea from two callers, no place named", "my grandad has fallen and is bleeding "
         "from his head and not responding", "medical", "medical", "different", near_duplicate=1.0, similarity=1.0),
    Case("onlooker without any place: near-duplicate text", "omg massive explosion, building on fire",
         "fire", "fire", "same", near_duplicate=0.7, similarity=0.8, cand_where=BLAST, cand_conf=GEOTAG),
    Case("onlooker without any place: same wording (es)", "explosión enorme, el edificio está ardiendo",
         "fire", "fire", "same", similarity=0.7, cand_where=BLAST, cand_conf=GEOTAG),
    Case("reply to a post of the incident, no place", "is everyone ok??", "other", "fire", "same",
         link="reply to or quote of a post in this incident", similarity=0.1),
    Case("same street named, neither placed (fr)", "grosse explosion rue de la gare, fumée partout",
         "hazard", "fire", "same", similarity=0.6, places=frozenset({"rue de la gare"}),
         cand_places=frozenset({"rue de la gare"})),
    Case("surging incident, unplaced impersonal related wording", "the whole street just shook",
         "hazard", "fire", "same", similarity=0.55, reports=300, cand_where=BLAST, cand_conf=GEOTAG),
    # ---------------------------------------------------------------- different event
    Case("Leeds: two street addresses, both geocoded to the town centroid",
         "woman collapsed not breathing outside 40 Park Row Leeds", "medical", "medical", "different",
         where=LEEDS, conf=TOWN, cand_where=LEEDS, cand_conf=TOWN, similarity=0.44,
         places=frozenset({"40 park row leeds"}), cand_places=frozenset({"12 high st leeds"})),
    Case("Leeds: fire at another address than a collapse", "house fire at 22 Kirkgate Leeds, kids upstairs",
         "fire", "medical", "different", where=LEEDS, conf=TOWN, cand_where=LEEDS, cand_conf=TOWN,
         places=frozenset({"22 kirkgate leeds"}), cand_places=frozenset({"12 high st leeds"})),
    Case("address only in the running text", "stabbing outside 5 Briggate Road, Leeds", "violence",
         "violence", "different", where=LEEDS, conf=TOWN, cand_where=LEEDS, cand_conf=TOWN, similarity=0.5,
         cand_places=frozenset({"40 park row leeds"})),
    Case("stabbings in two towns, same wording", "someone has been stabbed outside the station, Kendal",
         "violence", "violence", "different", where=KENDAL, conf=0.5, cand_where=LEEDS, cand_conf=0.5,
         similarity=0.9),
    Case("personal request without any place, same wording", "please help my mum can't breathe",
         "medical", "medical", "different", similarity=0.8, near_duplicate=0.65, cand_where=LEEDS,
         cand_conf=ADDRESS),
    Case("'other' at the same spot as a cardiac arrest, merely related wording",
         "someone's following me, I'm scared", "other", "medical", "different", where=(53.80, -1.55),
         conf=GEOTAG, cand_where=(53.8001, -1.5501), cand_conf=GEOTAG, similarity=0.35),
    Case("personal requests 1 km apart", "my grandad has fallen and is bleeding from his head",
         "medical", "medical", "different", where=(53.8050, -1.5479), conf=GEOTAG,
         cand_where=(53.7965, -1.5479), cand_conf=GEOTAG),
    Case("two addresses in other languages (es)", "mi padre no respira, calle Mayor 8, Madrid", "medical",
         "medical", "different", where=(40.4168, -3.7038), conf=TOWN, cand_where=(40.4168, -3.7038),
         cand_conf=TOWN, similarity=0.6, places=frozenset({"8 calle mayor"}),
         cand_places=frozenset({"23 calle de alcala"})),
    Case("a short cry worded like another's is no copy", "my dad collapsed please help us", "medical",
         "medical", "different", near_duplicate=0.85, similarity=0.9),
    Case("a long text like a report's but at another street address", "PLEASE SHARE: fire at 14 High Street "
         "Leeds, people still inside the flats, fire brigade on the way", "fire", "fire", "different",
         near_duplicate=0.85, similarity=0.9, places=frozenset({"14 high street leeds"}),
         cand_places=frozenset({"12 high street leeds"})),
    Case("a post with no place and unrelated wording", "car on its side on the motorway", "traffic",
         "medical", "different", similarity=0.1, cand_where=LEEDS, cand_conf=ADDRESS),
    # ---------------------------------------------------------------- uncertain: a person confirms
    Case("same town only, same kind, no addresses", "man unconscious in the town centre, Leeds",
         "medical", "medical", "uncertain", where=LEEDS, conf=0.5, cand_where=LEEDS, cand_conf=0.5,
         similarity=0.5, places=frozenset({"leeds"}), cand_places=frozenset({"leeds"})),
    Case("same river named, neither placed (not a street)", "man stabbed by the river, bleeding badly",
         "violence", "violence", "uncertain", similarity=0.5, places=frozenset({"river"}),
         cand_places=frozenset({"river"})),
    Case("placed here, incident unplaced, same wording", "someone stabbed outside the Ilkley co-op",
         "violence", "violence", "uncertain", where=(53.925, -1.822), conf=0.5, similarity=0.8),
    Case("personal request in the same town (de)", "mein Vater atmet nicht mehr, bitte helft, Leeds",
         "medical", "medical", "uncertain", where=LEEDS, conf=0.5, cand_where=LEEDS, cand_conf=0.5,
         similarity=0.5, places=frozenset({"leeds"}), cand_places=frozenset({"leeds"}),
         extra={"text_personal": "my dad isn't breathing please help, Leeds"}),
    Case("same address, another kind of emergency, unrelated wording", "car alarm going at 12 High St",
         "crime", "medical", "uncertain", similarity=0.1, places=frozenset({"12 high st"}),
         cand_places=frozenset({"12 high street"})),
    # An urgent report of another category of the fire/blast family, beside a fire's surge: the
    # family alone does not join it (a crash by a wildfire is another emergency to see).
    Case("urgent crash in the area named by a fire's surge, related wording", "scooter under a lorry at the "
         "lights in Stamata, the lad isn't moving", "traffic", "fire", "uncertain", similarity=0.38, reports=40,
         urgency="critical", places=frozenset({"stamata"}), cand_places=frozenset({"stamata"})),
    Case("a critical stroke in the area named by a fire's surge, wording alike", "yiayia can't get her words "
         "out and her mouth has gone crooked, Kapandriti", "medical", "fire", "uncertain", similarity=0.49,
         reports=40, urgency="critical", places=frozenset({"kapandriti"}), cand_places=frozenset({"kapandriti"})),
    Case("a critical report in the area of a blast, saying the same", "people injured everywhere after the "
         "explosion in the town centre", "medical", "fire", "same", similarity=0.7,
         reports=40, urgency="critical", places=frozenset({"bolton"}), cand_places=frozenset({"bolton"})),
    Case("urgent crash in the area of a surge of crashes, related wording only", "scooter under a lorry at "
         "the lights in Stamata, the lad isn't moving", "traffic", "traffic", "uncertain", similarity=0.4,
         reports=40, urgency="critical", places=frozenset({"stamata"}), cand_places=frozenset({"stamata"})),
    Case("a high report of a flood in its area, related wording", "water pouring into houses at Hafod, the "
         "road is a river", "hazard", "hazard", "same", similarity=0.4, reports=40, urgency="high",
         places=frozenset({"hafod"}), cand_places=frozenset({"hafod"})),
    Case("a report of a surge of crashes in its area, related wording, not urgent", "traffic backed up in "
         "Stamata, cars turning round", "traffic", "traffic", "same", similarity=0.4,
         reports=40, places=frozenset({"stamata"}), cand_places=frozenset({"stamata"})),
    Case("an urgent report of another kind in the incident's thread", "@fire_watch yiayia can't get her words "
         "out and her mouth has gone crooked", "medical", "fire", "uncertain", similarity=0.2, urgency="critical",
         link="same conversation thread as a post in this incident"),
    Case("an urgent report of the incident's kind in its thread", "@fire_watch the fire is at our back door, "
         "we can't get out", "fire", "fire", "same", similarity=0.4, urgency="critical",
         link="same conversation thread as a post in this incident"),
    Case("urgent crash on the street a fire's reports name, related wording", "car crash on Marathonos "
         "Avenue, the driver is unconscious and bleeding", "traffic", "fire", "uncertain", similarity=0.43,
         reports=40, urgency="critical", places=frozenset({"marathonos avenue"}),
         cand_places=frozenset({"marathonos avenue"})),
    Case("urgent crash 300 m from a fire, related wording", "crash at the junction, driver trapped",
         "traffic", "fire", "different", where=(53.4801, -2.2309), conf=GEOTAG, cand_where=BLAST,
         cand_conf=GEOTAG, similarity=0.38, urgency="critical"),
    Case("a high report of the fire's family 300 m from it, related wording", "cars abandoned at the junction, "
         "smoke everywhere", "traffic", "fire", "same", where=(53.4801, -2.2309), conf=GEOTAG, cand_where=BLAST,
         cand_conf=GEOTAG, similarity=0.38, urgency="high"),
    Case("reply in the incident's thread, placed in another town", "a building just came down in Leeds",
         "hazard", "fire", "uncertain", where=LEEDS, conf=0.55, cand_where=BLAST, cand_conf=GEOTAG,
         similarity=0.3, places=frozenset({"leeds"}), link="reply to or quote of a post in this incident"),
    # ------------------------------------------ places not on the map, and a surge spread over an area
    Case("surge, named only where the map has no such place, its wording", "the weir at Cwm Tawelog has "
         "gone under and the lane is a brown river", "hazard", "hazard", "same", similarity=0.72, reports=60,
         places=frozenset({"cwm tawelog"}), cand_where=VALLEY, cand_conf=GEOTAG),
    Case("surge, the same area named misspelt, post in another language (es)",
         "el agua ya entra en las casas de Llanfaredd", "hazard", "hazard", "same", reports=60, vector=False,
         places=frozenset({"llanfareed"}), cand_places=frozenset({"llanfaredd", "glan yr afon"})),
    Case("surge spread over an area: geotags 4 km apart, its wording", "river's come over the allotments, "
         "sheds floating off", "hazard", "hazard", "same", where=VALLEY_4KM, conf=GEOTAG, cand_where=VALLEY,
         cand_conf=GEOTAG, similarity=0.75, reports=80),
    Case("a street named by both, one spelling a letter out", "thick smoke from the warehouse on "
         "Brewhouse Road", "fire", "fire", "same", similarity=0.5, places=frozenset({"brewhouse road"}),
         cand_places=frozenset({"brewhose road"})),
    Case("surge with addresses at several streets, an area report in its words", "whole of Glan yr Afon "
         "is under water now", "hazard", "hazard", "same", similarity=0.7, reports=60,
         places=frozenset({"glan yr afon"}), cand_places=frozenset({"glan yr afon", "4 mill row", "9 bridge street"})),
    Case("not on the map, its wording, but another kind of emergency", "man collapsed and not breathing by "
         "the chapel in Cwm Tawelog", "medical", "hazard", "uncertain", similarity=0.7, reports=60,
         places=frozenset({"cwm tawelog"}), cand_where=VALLEY, cand_conf=GEOTAG),
    Case("not on the map, its wording, incident no surge", "the weir at Cwm Tawelog has gone under",
         "hazard", "hazard", "uncertain", similarity=0.72, reports=6, places=frozenset({"cwm tawelog"}),
         cand_where=VALLEY, cand_conf=GEOTAG),
    Case("not on the map, its wording, a street address of its own", "water through the front door at "
         "7 Heol Isaf, Cwm Tawelog", "hazard", "hazard", "uncertain", similarity=0.72, reports=60,
         places=frozenset({"7 heol isaf", "cwm tawelog"}), cand_where=VALLEY, cand_conf=GEOTAG),
    Case("not on the map, its wording, someone's own request", "we are trapped upstairs at Cwm Tawelog, "
         "water coming in fast", "hazard", "hazard", "different", similarity=0.72, reports=60,
         places=frozenset({"cwm tawelog"}), cand_where=VALLEY, cand_conf=GEOTAG),
    Case("placed on the map, incident unplaced surge: its wording does not carry it", "the weir has gone "
         "under, lane is a river", "hazard", "hazard", "uncertain", where=KENDAL, conf=0.55, similarity=0.72,
         reports=60),
    Case("geotags 4 km apart, its wording, but a cardiac arrest", "my husband has no pulse, doing CPR",
         "medical", "hazard", "different", where=VALLEY_4KM, conf=GEOTAG, cand_where=VALLEY, cand_conf=GEOTAG,
         similarity=0.75, reports=80),
    Case("geotags 9 km apart, its wording", "river's come over the allotments", "hazard", "hazard",
         "different", where=VALLEY_9KM, conf=GEOTAG, cand_where=VALLEY, cand_conf=GEOTAG, similarity=0.8,
         reports=80),
    Case("geotags 4 km apart, its wording, incident no surge", "river's come over the allotments", "hazard",
         "hazard", "different", where=VALLEY_4KM, conf=GEOTAG, cand_where=VALLEY, cand_conf=GEOTAG,
         similarity=0.8, reports=8),
    Case("geotags 4 km apart, related wording only", "power's out on our side of the valley", "hazard",
         "hazard", "different", where=VALLEY_4KM, conf=GEOTAG, cand_where=VALLEY, cand_conf=GEOTAG,
         similarity=0.5, reports=80),
    Case("another language, the surge's area named, but no kind the head could tell",
         "a ddaw rhywun i Llanfaredd? mae'n ofnadwy yma", "other", "hazard", "different", reports=60,
         vector=False, places=frozenset({"llanfaredd"}), cand_places=frozenset({"llanfaredd"})),
    Case("placed reply in the thread of an incident with no place yet: it may say where it is",
         "the fire is at 12 High St, Leeds", "fire", "fire", "same", where=LEEDS, conf=0.55,
         similarity=0.3, places=frozenset({"12 high st", "leeds"}),
         link="same conversation thread as a post in this incident"),
]


def _facts(case: Case, text: str) -> PostFacts:
    lat, lon = case.where or (None, None)
    return PostFacts(post_id=9, text=text, at=NOW, category=case.category, lat=lat, lon=lon,
                     location_confidence=case.conf, embedding=cos(case.similarity) if case.vector else None,
                     place_names=case.places, urgency=case.urgency)


def _candidate(case: Case) -> Candidate:
    lat, lon = case.cand_where or (None, None)
    return Candidate(incident_id=1, category=case.cand_category, last_report_at=NOW - timedelta(seconds=40),
                     lat=lat, lon=lon, location_confidence=case.cand_conf, centroid=cos(1.0),
                     link=case.link, near_duplicate=case.near_duplicate, place_names=case.cand_places,
                     report_count=case.reports)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_grouping_decision(case: Case):
    for text in (case.text, case.extra.get("text_personal")):
        if text is None:
            continue
        decision = decide(_facts(case, text), [_candidate(case)])
        got = "same" if decision.incident_id == 1 else (
            "uncertain" if decision.possible_duplicate_of == 1 else "different")
        assert got == case.expect, decision.reason
        assert decision.reason
        if got == "uncertain":
            assert decision.incident_id is None and "possible duplicate of #1" in decision.reason


def test_five_emergencies_in_one_town_within_a_minute_are_five_incidents():
    reports = [("my dad collapsed not breathing, 12 High St Leeds", "medical", {"12 high st leeds"}),
               ("woman collapsed not breathing outside 40 Park Row Leeds", "medical", {"40 park row leeds"}),
               ("house fire at 22 Kirkgate Leeds, kids upstairs", "fire", {"22 kirkgate leeds"}),
               ("stabbing outside 5 Briggate Leeds", "violence", {"5 briggate leeds"}),
               ("a man unconscious at 3 Market Square", "medical", {"3 market square"})]
    open_: list[Candidate] = []
    for n, (text, category, places) in enumerate(reports):
        post = PostFacts(post_id=n, text=text, at=NOW + timedelta(seconds=12 * n), category=category,
                         lat=LEEDS[0], lon=LEEDS[1], location_confidence=TOWN, embedding=cos(0.44),
                         place_names=frozenset(places))
        decision = decide(post, open_)
        assert decision.incident_id is None, decision.reason
        open_.append(Candidate(incident_id=n + 1, category=category, last_report_at=post.at, lat=LEEDS[0],
                               lon=LEEDS[1], location_confidence=TOWN, centroid=cos(1.0),
                               place_names=frozenset(places)))
    assert len(open_) == 5


def test_the_closest_uncertain_candidate_is_named_but_a_join_wins_over_it():
    post = PostFacts(post_id=9, text="man unconscious in the town centre, Leeds", at=NOW, category="medical",
                     lat=LEEDS[0], lon=LEEDS[1], location_confidence=0.5, embedding=cos(0.6),
                     place_names=frozenset({"leeds", "market square"}))
    town = Candidate(incident_id=4, category="medical", last_report_at=NOW, lat=LEEDS[0], lon=LEEDS[1],
                     location_confidence=0.5, centroid=cos(1.0), place_names=frozenset({"leeds"}))
    assert decide(post, [town]).possible_duplicate_of == 4
    square = Candidate(incident_id=5, category="medical", last_report_at=NOW, centroid=cos(1.0),
                       place_names=frozenset({"market square"}))
    assert decide(post, [town, square]).incident_id == 5


@pytest.mark.parametrize("names, text, keys", [
    ({"12 High St, Leeds"}, "", {"12 high"}),
    ({"flat 2, 40 Park Row"}, "", {"40 park"}),
    ({"Leeds", "the river"}, "", set()),
    (set(), "fire at 22 Kirkgate Road in town", {"22 kirkgate"}),
    (set(), "2 people trapped in a car", set()),
    (set(), "3 cars crashed on the motorway", set()),
    ({"8 calle mayor"}, "", {"8 calle"}),
])
def test_address_keys(names, text, keys):
    assert address_keys(frozenset(names), text) == frozenset(keys)


def test_kinds_and_places():
    assert same_kind("fire", "hazard") and same_kind("medical", "medical")
    assert not same_kind("other", "medical") and not same_kind("other", "other")
    assert not same_kind("medical", "violence")
    assert specific_place("london road") and specific_place("piccadilly station") and specific_place("rue de la gare")
    assert not specific_place("leeds") and not specific_place("river")
