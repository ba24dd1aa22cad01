"""Location patterns, extraction and offline geocoding."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.domain import GeoPoint
from triage.base import TriageInput, TriageItem
from triage.locations.extract import extract_spans, ner_spans
from triage.locations.geocode import Gazetteer
from triage.locations.patterns import find_pattern_spans
from triage.locations import stage as stage_module
from triage.locations.stage import LocationStage
from triage.normalise import NormaliseStage


def kinds(text: str) -> dict[str, str]:
    return {text[s:e]: kind for s, e, kind, _ in extract_spans(text)}


@pytest.mark.parametrize(
    "text, span, kind",
    [
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
    ],
)
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
    local.write_text(json.dumps({"name": "Red Lion", "lat": 53.7996, "lon": -1.5491, "aliases": ["the red lion pub"]}) + "\nnot json\n")
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


def test_a_text_the_ner_read_lately_is_not_read_again(model_pipeline, monkeypatch):
    """Copies of a post (other geotags, other profiles) get the same places without a second
    NER pass; a new text is read."""
    read: list[str] = []
    nlp = stage_module.get_nlp()

    class Counting:
        def pipe(self, texts, batch_size=64):
            texts = list(texts)
            read.extend(texts)
            return nlp.pipe(texts, batch_size=batch_size)

    monkeypatch.setattr(stage_module, "get_nlp", lambda: Counting())
    stage = LocationStage()
    text, other = "Flooding reported in Houston and Galveston tonight", "Smoke over Tulsa now"

    def places(texts: list[str]) -> list[set[str]]:
        items = [NormaliseStage()(TriageItem(input=TriageInput(text=t))) for t in texts]
        return [{m.text for m in it.locations} for it in stage.batch(items)]

    first = places([text, text])
    again = places([text, other])
    assert first[0] == first[1] == again[0] and "Houston" in first[0] and "Tulsa" in again[1]
    assert read == [text, other]


# --- mention boundaries and place-name spotting -----------------------------------------------


def _places(gazetteer, text: str) -> list[str]:
    return [text[s:e] for s, e in gazetteer.scan_places(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Donations for #ItalyEarthquake victims", []),  # a name inside a longer tag
        ("Thoughts with #PuertoRico and #srilanka tonight", ["PuertoRico", "srilanka"]),
        ("pray for mexico and texas", ["mexico", "texas"]),  # countries/states in any case
        ("FLOODING IN MEXICO NOW", ["MEXICO"]),
        ("Ecuadors president visits", ["Ecuadors"]),  # possessive without apostrophe
        ("Follow @Relief_Zimbabwe and https://example.org/Zimbabwe", []),
        ("Man rescued from flood waters", []),  # a town that is also a word
        ("Flooding in Houston, Texas", ["Houston", "Texas"]),
        ("Mexico City is shaking", ["Mexico City"]),
    ],
)
def test_scan_places_boundaries(gazetteer, text, expected):
    assert _places(gazetteer, text) == expected


def _spans(text: str, gazetteer=None, doc=None) -> list[str]:
    extra = [(s, e, "place", 0.55) for s, e in gazetteer.scan_places(text)] if gazetteer else None
    return [text[s:e] for s, e, _, _ in extract_spans(text, ner_spans(doc) if doc is not None else None, extra)]


def test_storm_name_is_not_a_place(gazetteer):
    text = "Hurricane Florence hits Wilmington. Damage from Florence is huge"
    assert "Florence" not in _spans(text, gazetteer)
    assert "Florence" in _spans("Flooding in Florence tonight", gazetteer)


def _doc(text: str, ents: list[tuple[str, str]]):
    import spacy
    from spacy.tokens import Span as SpacySpan

    doc = spacy.blank("en")(text)
    spans = []
    for phrase, label in ents:
        start = text.index(phrase)
        spans.append(doc.char_span(start, start + len(phrase), label=label))
    doc.ents = [s for s in spans if isinstance(s, SpacySpan)]
    return doc


@pytest.mark.parametrize(
    "text, ents, expected",
    [
        ("Fires in Northern California spread", [("Northern California", "GPE")], ["California"]),
        ("Boats sent to the Abaco Islands", [("the Abaco Islands", "LOC")], ["Abaco Islands"]),
        ("Aid for Northern Ireland", [("Northern Ireland", "GPE")], ["Northern Ireland"]),
        ("Crews fight the Camp Fire", [("the Camp Fire", "FAC")], []),
        ("Hurricane Harvey hits", [("Hurricane Harvey", "FAC")], []),
        ("RT @abc: floods", [("RT @abc", "GPE")], []),
        ("Help for Puerto Rico’s people", [("Puerto Rico’s", "GPE")], ["Puerto Rico"]),
    ],
)
def test_ner_span_tidying(text, ents, expected):
    assert _spans(text, doc=_doc(text, ents)) == expected


def test_two_known_places_in_one_ner_span_are_split(gazetteer):
    text = "Smoke over Paradise California this morning"
    doc = _doc(text, [("Paradise California", "GPE")])
    assert _spans(text, gazetteer, doc) == ["Paradise", "California"]


def test_repeated_name_is_found_again():
    text = "Kerala floods: donate now #Kerala"
    found = extract_spans(text, None, [(0, 6, "place", 0.6)])
    assert [text[s:e] for s, e, _, _ in found] == ["Kerala", "Kerala"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Shelters open in Wilmington, NC tonight", ["Wilmington", "NC"]),
        ("Aid from the U.S. arrives", ["U.S."]),
        ("Flights from the UK’s airports", ["UK"]),
        ("HELP IN OR NEAR TX NOW PLEASE", []),  # all caps: codes mean nothing
        ("toll now 31 and expected to rise", []),  # not "272 ... rise" (street type)
        ("burned 2,340 sq km of forest", []),
        ("A M7.1 quake hit", []),  # magnitude, not the M7
        ("Rescue Teams On Their Way", []),
        ("Patients died in hospital overnight", []),  # where, not a named place
        ("Homes hit by Irma", []),
    ],
)
def test_abbreviations_and_false_addresses(text, expected):
    assert _spans(text) == expected


def test_codes_and_states_geocode_to_the_right_country(gazetteer):
    assert "Texas" in gazetteer.lookup("TX", "place")[2]
    assert gazetteer.lookup("N.C.", "place")[2].startswith("North Carolina")
    assert gazetteer.lookup("NZ", "place")[0] < 0  # Wellington NZ, not Florida
    assert gazetteer.lookup("Florida", "place")[2].endswith(", US")


def test_spans_stay_inside_the_text_and_do_not_overlap():
    # pyap reported an address ending past the text on this input.
    text = "\nZHurricane cX#','Florence_Y@12 oak st#PuertoRicoFlorenceXTXY"
    doc = _doc(text, [("oak st#PuertoRicoFlorenceXTXY", "GPE")])
    found = extract_spans(text, ner_spans(doc))
    assert all(0 <= s < e <= len(text) for s, e, _, _ in found)
    assert all(a[1] <= b[0] for a, b in zip(found, found[1:]))


def test_location_ner_is_the_tuned_one_when_its_weights_are_shipped():
    from triage.locations.extract import get_nlp
    from triage.locations.learned_ner import LABEL, WEIGHTS_DIR

    assert (WEIGHTS_DIR / "model").exists()
    assert LABEL in get_nlp().get_pipe("ner").labels


def test_location_ner_missing_weights_means_no_tuned_model(tmp_path):
    from triage.locations.learned_ner import load_location_ner

    assert load_location_ner(tmp_path) is None


@pytest.mark.parametrize(
    "text, place",
    [
        # Tweet-style pleas: hashtags, places the stock news-trained NER does not know.
        ("Help urgently #Urgent - 35 ppl trapped in Puthankavu, #Chengannur need urgent rescuing", "Chengannur"),
        ("Thrissur Annamanada, StJohn UP school, 50 people are stuck, emergency, please help them", "Annamanada"),
        ("family of 5 on the roof at Meyerland, water rising fast, please send a boat", "Meyerland"),
    ],
)
def test_tuned_ner_finds_places_in_tweet_style_pleas(text, place):
    from triage.locations.extract import get_nlp

    doc = get_nlp()(text)
    spans = {text[s:e] for s, e, _, _ in extract_spans(text, ner_spans(doc))}
    assert place in spans, spans


def test_a_landmark_word_must_end_at_a_word_boundary():
    # "the parking garage" is not "the park"; the whole "parking lot" still is a landmark.
    assert "park" not in kinds("shooting at the parking garage on Wabash, guy down")
    assert kinds("tree fell on cars in the parking lot").get("parking lot") == "landmark"


@pytest.mark.parametrize(
    "text, word",
    [
        ("Hurricane Irma Update: Sonesta Guests in St. Maarten Remain in Shelters", "Shelters"),
        ("UPDATE: 79 Killed in Deadliest Wildfires to Hit Greece in Decades", "Deadliest"),
        ("Dorian Could Ravage Floridas Agricultural Industry, Costing Millions in Damage", "Damage"),
    ],
)
def test_title_case_headline_words_are_not_landmarks(text, word):
    assert word not in kinds(text)


@pytest.mark.parametrize(
    "text, span",
    [
        ("bleeding man outside Greggs on Briggate", "Greggs"),
        ("Help at Tesco Extra now", "Tesco Extra"),  # too short to be read as a headline
        ("Storm damage at a church near Clayton County #Irma #Storm #Damage #News", "Clayton County"),
    ],
)
def test_landmarks_in_ordinary_sentences_are_kept(text, span):
    assert kinds(text).get(span) == "landmark"


_TITLE_WORDS = st.sampled_from(["Storm", "Damage", "in", "at", "the", "Shelters", "near", "Oak", "St", "#Irma", "@x", "12", "road"])


@settings(max_examples=200, deadline=None, database=None)
@given(st.one_of(st.text(max_size=300), st.lists(_TITLE_WORDS, max_size=30).map(" ".join)))
def test_pattern_spans_stay_inside_the_text(text):
    for start, end, kind, confidence in find_pattern_spans(text):
        assert 0 <= start < end <= len(text)
        assert 0 < confidence <= 1 and kind


@pytest.mark.parametrize(
    "text, span",
    [
        ("FIRE AT THE HOSTEL ON DAME LANE PEOPLE HANGING OUT THE TOP WINDOWS", "DAME LANE"),
        ("MAN WITH A KNIFE ON HIGH ST NOW @police", "HIGH ST"),
        ("thre is smok comin out the flats on harrow rd n sum1 at the windo wavin", "harrow rd"),
        ("Help flooding on rockfish road, I'm trapped on the roof", "rockfish road"),
    ],
)
def test_streets_in_posts_written_in_one_case(text, span):
    assert kinds(text).get(span) == "street"


@pytest.mark.parametrize(
    "text",
    [
        "car crashed on the main road, driver ok",
        "ON MY WAY DOWN THE ROAD NOW",
        "stuck in the bus lane again",
        "he lives on my street",
    ],
)
def test_single_case_street_needs_a_name(text):
    assert "street" not in kinds(text).values(), kinds(text)
