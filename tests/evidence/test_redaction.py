"""redact(): personal data is masked, ordinary words and numbers are left alone."""
from __future__ import annotations

import pytest

from evidence.redaction import find_personal_data, redact, redacted_post
from models.tables import Post, TriageRecord


@pytest.mark.parametrize("text, gone, label", [
    ("call me on 07700 900123 please", "07700 900123", "[phone]"),
    ("ring 07912345678", "07912345678", "[phone]"),
    ("landline 0113 496 0000", "0113 496 0000", "[phone]"),
    ("US number (415) 555-2671", "555-2671", "[phone]"),
    ("intl +44 20 7946 0958", "7946 0958", "[phone]"),
    ("france +33 6 12 34 56 78", "12 34 56 78", "[phone]"),
    ("mail jo.smith+help@example.co.uk now", "jo.smith+help@example.co.uk", "[email]"),
    ("we are at 12 High Street Leeds", "12 High Street", "[address]"),
    ("flat 3, 22b baker st", "22b baker st", "[address]"),
    ("1600 Pennsylvania Ave NW", "1600 Pennsylvania Ave", "[address]"),
    ("postcode ls1 4ap", "ls1 4ap", "[postcode]"),
    ("near SW1A 1AA", "SW1A 1AA", "[postcode]"),
    ("Washington, DC 20500", "20500", "[zip]"),
    ("zip 90210", "90210", "[zip]"),
    ("ZIP code 94105-1234", "94105-1234", "[zip]"),
    ("we are at 53.7997, -1.5492", "53.7997", "[coordinates]"),
    ("ask @jo_reporter", "@jo_reporter", "[handle]"),
])
def test_personal_data_is_masked(text, gone, label):
    out = redact(text, names=False)
    assert gone not in out and label in out


@pytest.mark.parametrize("text", [
    "I have 2 dogs and 3 cats", "post 12345 took 22.5 ms", "incident 1234567 seq 4",
    "at 2026-11-22 03:00:01 the sweep ran", "call 999 now", "the exam is killing me lol",
])
def test_ordinary_text_is_left_alone(text):
    assert redact(text, names=False) == text


def test_person_names_are_masked_when_the_model_is_available():
    out = redact("My name is John Smith and I need help")
    assert "John Smith" not in out and "[name]" in out and "I need help" in out


def test_spans_do_not_overlap_and_cover_everything():
    text = "Jo at 12 High Street LS1 4AP on 07700 900123, jo@example.com"
    spans = find_personal_data(text)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    masked = redact(text)
    for secret in ("12 High Street", "LS1 4AP", "07700", "jo@example.com"):
        assert secret not in masked


def test_redacted_post_hides_author_and_rounds_location():
    post = Post(id=7, platform="x", external_id="e", author_handle="@jo", author_name="Jo Bloggs",
                text="help at 12 High Street, 07700 900123", raw_payload="{}", geo_lat=53.799712, geo_lon=-1.549181)
    triage = TriageRecord(post_id=7, urgency="high", category="medical", confidence=0.9,
                          reasons=["address '12 High Street' found"])
    view = redacted_post(post, triage)
    assert view["author"] == "[redacted]" and view["approximate_location"] == {"lat": 53.8, "lon": -1.55}
    assert "High Street" not in str(view) and "07700" not in str(view) and "@jo" not in str(view)
    assert view["urgency"] == "high" and view["reasons"] == ["address '[address]' found"]
