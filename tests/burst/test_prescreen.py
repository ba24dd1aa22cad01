"""The intake pre-screen: lanes for life threats, event reports and commentary; robust to odd text."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.enums import Lane
from triage.prescreen import lane_for

LIFE_THREATS = ["my mum can't breathe", "he is not breathing", "I'm trapped", "she's unconscious",
                "bleeding badly", "please help", "send help", "there's an intruder", "I've been stabbed",
                "took an overdose", "kitchen on fire and my nan is upstairs", "someone help me"]


@pytest.mark.parametrize("text,lane", [
    ("my mum can't breathe, 4 Oak Road, Leeds", Lane.critical),
    ("I'm trapped in the building next to the station, please send help", Lane.critical),
    ("huge explosion near Piccadilly, windows blown out", Lane.default),
    ("RT @mcr_1: huge explosion near Piccadilly", Lane.bulk),
    ("praying for everyone in Manchester", Lane.bulk),
    ("praying nobody is hurt at London Road", Lane.bulk),
    ("what was that bang??", Lane.bulk),
    ("people injured near the station", Lane.critical),
    ("is the 42 bus running late today", Lane.default),
])
def test_lanes(text, lane):
    assert lane_for(text) == lane.value


def test_a_retweeted_cry_for_help_does_not_wait_with_the_bulk():
    assert lane_for("RT @sam: my dad is not breathing, 3 Mill Lane") == Lane.default.value


def test_a_dm_is_never_bulk():
    assert lane_for("what was that bang", is_dm=True) == Lane.default.value
    assert lane_for("hope nobody is hurt", is_dm=True) == Lane.critical.value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400), st.booleans())
def test_never_crashes_and_always_names_a_lane(text, is_dm):
    assert lane_for(text, is_dm) in {lane.value for lane in Lane}


_ZERO_WIDTH = st.sampled_from(["", "\u200b", "\u200d", "\u00ad", "\u2060", "\ufeff"])
_SPACE = st.sampled_from([" ", "  ", "\t", "\u00a0", "\u3000", " \n "])


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@st.composite
def disguised_threat(draw):
    phrase = draw(st.sampled_from(LIFE_THREATS))
    words = phrase.split(" ")
    out = []
    for word in words:
        word = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in word)
        if len(word) > 2 and draw(st.booleans()):
            cut = draw(st.integers(1, len(word) - 1))
            word = word[:cut] + draw(_ZERO_WIDTH) + word[cut:]
        out.append(word)
    text = draw(_SPACE).join(out)
    if draw(st.booleans()):
        text = _full_width(text)
    if draw(st.booleans()):
        text = text.replace("'", draw(st.sampled_from(["\u2019", "\u02bc", "'"])))
    prefix = draw(st.sampled_from(["", "@flare999 ", "URGENT ", "😭 ", "pls "]))
    suffix = draw(st.sampled_from(["", "!!!", " 🙏", " at 4 Oak Road", "..."]))
    return prefix + text + suffix


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(disguised_threat(), st.booleans())
def test_life_threats_route_critical_whatever_the_case_spacing_or_unicode(text, is_dm):
    assert lane_for(text, is_dm) == Lane.critical.value, text
