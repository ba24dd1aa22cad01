"""Location patterns, extraction and offline geocoding."""
from __future__ import annotations

import json

import pytest

from models.domain import GeoPoint
from triage.base import TriageInput, TriageItem
from triage.locations.extract import extract_spans
from triage.locations.geocode import Gazetteer
from triage.locations.stage import LocationStage
from triage.normalise import NormaliseStage


def kinds(text: str) -> dict[str, str]:
    return {text[s:e]: kind for s, e, kind, _ in extract_spans(text)}


@pytest.mark.parametrize("text, span, kind", [
    ("flat fire at 22 Birch Lane Leeds LS6 2AB now", "LS6 2AB", "postcode"),
    ("im at ls1 4ap help", "ls1 4ap", "postcode"),
    ("crash on the M6 J14 northbound", "M6 J14", "junction"),
    ("stuck at junction 26 of the M62", "junction 26 of the M62", "junction"),
    ("pileup on I-95 north near exit 12", "I-95 north near exit 12", "junction"),
    ("fell at 51.4545, -2.5879 please", "51.4545, -2.5879", "latlon"),
    ("///index.home.raft not breathing", "///index.home.raft", "what3words"),
    ("order pizza to 12 oak st", "12 oak st", "address"),
    ("we are at 1400 Pennsylvania Ave SE", "1400 Pennsylvania Ave SE", "address"),
    ("car on fire at the corner of Mill Street and Church Road", None, "corner"),
    ("guy with a gun at 7-Eleven on Oak & 3rd", "Oak & 3rd", "corner"),
    ("bleeding man outside Greggs on Briggate", "Greggs", "landmark"),
    ("roof at 1512 Cypress St Houston TX 77009", None, "address"),
])
def test_pattern_finds_location(text, span, kind):
    found = kinds(text)
    if span is None:
        assert kind in found.values(), found
    else:
        assert found.get(span) == kind, found


def test_us_zip_needs_state_or_word_zip():
    assert "zip" in kinds("alerts for zip 90210 please").values()
    assert "zip" not in kinds("we raised 12345 pounds").values()


def test_no_spans_in_plain_text():
    assert extract_spans("my phone battery is dying send help") == []


@pytest.fixture(scope="module")
def gazetteer(tmp_path_factory):
    local = tmp_path_factory.mktemp("gaz") / "local.jsonl"
    local.write_text(json.dumps({"name": "Red Lion", "lat": 53.7996, "lon": -1.5491,
                                 "aliases": ["the red lion pub"]}) + "\nnot json\n")
    return Gazetteer(local)


def test_postcode_area_geocodes_to_post_town(gazetteer):
    lat, lon, label, confidence = gazetteer.lookup("LS6 2AB", "postcode")
    assert abs(lat - 53.8) < 0.2 and abs(lon + 1.55) < 0.2 and "Leeds" in label
    assert confidence < 0.5  # area level only


def test_latlon_and_city_and_local_gazetteer(gazetteer):
    assert gazetteer.lookup("51.4545, -2.5879", "latlon")[:2] == (51.4545, -2.5879)
    lat, lon, label, _ = gazetteer.lookup("Manchester", "place")
    assert "GB" in label and abs(lat - 53.48) < 0.2
    assert gazetteer.lookup("Red Lion", "landmark")[2].startswith("local gazetteer")
    assert gazetteer.scan_local("fight outside the red lion pub now")


def test_street_name_is_not_mistaken_for_a_town(gazetteer):
    assert gazetteer.lookup("11 Poplar St", "address") is None


def _locate(text: str, **kwargs) -> TriageItem:
    item = NormaliseStage()(TriageItem(input=TriageInput(text=text, **kwargs)))
    return LocationStage(use_ner=False)(item)


def test_geotag_comes_first_and_profile_is_last():
    item = _locate("help at LS6 2AB", geo=GeoPoint(53.81, -1.56), author_location="Leeds, UK")
    assert [m.source for m in item.locations] == ["geotag", "text", "profile"]
    assert item.locations[0].lat == 53.81
    assert item.locations[1].lat is not None and item.locations[1].start == 8


def test_unplaced_what3words_is_kept_and_explained():
    item = _locate("///filled.count.soap dad fell")
    assert item.locations[0].kind == "what3words" and item.locations[0].lat is None
    assert any("what3words" in u for u in item.undecided)


def test_ner_finds_capitalised_place(model_pipeline):
    text = "Flooding reported in Houston and Galveston tonight"
    item = NormaliseStage()(TriageItem(input=TriageInput(text=text)))
    item = LocationStage()(item)
    texts = {m.text for m in item.locations}
    assert "Houston" in texts
