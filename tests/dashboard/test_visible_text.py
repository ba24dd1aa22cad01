"""Bidirectional controls and invisible characters are shown as markers wherever outside text appears."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup
from sqlmodel import Session, select

from dashboard.visible_text import HIDDEN, JOINERS, finalize, visible
from models import GeoPoint, Incident
from tests.dashboard.conftest import drain, ingest, login, raw_post

REVERSED = "help fire at \u202eteerts hgih 21\u202c now"
SPLIT = "he\u200blp trapped in the ba\u2060sement, smoke everywhere, fire"
PLACE = "12 High St\u202e reversed\u2066"


@pytest.mark.parametrize("text, shown", [
    ("call \u202e999", "call ⟨RLO⟩999"),
    ("he\u200blp", "he⟨ZWSP⟩lp"),
    ("a\u2066b\u2069c", "a⟨LRI⟩b⟨PDI⟩c"),
    ("fi\u200dre", "fi⟨ZWJ⟩re"),  # a joiner inside a Latin word only splits it
    ("\ufeffhelp", "⟨ZWNBSP⟩help"),
    ("x\u2062y", "x⟨U+2062⟩y"),
    ("ASCII smuggling\U000e0041\U000e0042", "ASCII smuggling⟨U+E0041⟩⟨U+E0042⟩"),
])
def test_hidden_characters_become_markers(text, shown):
    assert visible(text) == shown


@pytest.mark.parametrize("text", [
    "plain help, 12 High St",
    "👨\u200d👩\u200d👧 family emoji",  # joiners inside an emoji sequence draw one picture
    "می\u200cخواهم کمک",  # Persian: the non-joiner is spelling
    "flag \U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    "שלום عربى",
])
def test_real_writing_is_left_alone(text):
    assert visible(text) == text


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_only_joiners_between_non_latin_characters_stay_hidden(text):
    shown = visible(text)
    for i, ch in enumerate(shown):
        if HIDDEN.fullmatch(ch) and not (0xE0020 <= ord(ch) <= 0xE007F):
            assert ch in JOINERS and 0 < i < len(shown) - 1, (text, shown)
    assert visible(shown) == shown  # markers are themselves visible text


def test_finalize_keeps_markup_markup():
    out = finalize(Markup("<b>\u202e</b>"))
    assert isinstance(out, Markup) and str(out) == "<b>⟨RLO⟩</b>"
    assert finalize(3) == 3 and finalize(None) is None


@pytest.fixture
def tricky_incident(ctx, users):
    ingest(ctx, [raw_post("t1", REVERSED + " " + SPLIT, author="rlo\u202eevil", geo=GeoPoint(51.5, -0.12))])
    drain(ctx)
    with Session(ctx.engine) as s:
        incident = s.exec(select(Incident)).one()
        incident.location_text = PLACE
        s.add(incident)
        s.commit()
        return incident.id


@pytest.mark.parametrize("role, path", [("officer", "/feed"), ("officer", "/feed/rows"),
                                        ("dispatcher", "/incidents/{i}"), ("dispatcher", "/queue"),
                                        ("dispatcher", "/queue/rows"),
                                        ("field", "/field?lat=51.5&lon=-0.12&radius_km=5")])
def test_pages_show_markers_not_hidden_characters(app, tricky_incident, role, path):
    response = login(app, role).get(path.format(i=tricky_incident), follow_redirects=True)
    assert response.status_code == 200, response.text
    html = response.text
    assert HIDDEN.search(html) is None, [hex(ord(c)) for c in HIDDEN.findall(html)]
    assert "⟨RLO⟩" in html


def test_the_queue_row_shows_the_reporters_words_and_place_with_markers(app, tricky_incident):
    html = login(app, "dispatcher").get("/queue").text
    assert "12 High St⟨RLO⟩ reversed⟨LRI⟩" in html


def test_map_popups_get_markers(app, tricky_incident):
    data = login(app, "dispatcher").get("/map/incidents.json").json()
    (point,) = data["incidents"]
    assert point["location"] == "12 High St⟨RLO⟩ reversed⟨LRI⟩"


def test_the_api_keeps_the_text_as_received(app, tricky_incident):
    posts = login(app, "officer").get("/api/v1/posts").json()
    assert posts[0]["text"].startswith(REVERSED)  # evidence and integrations see the exact characters
