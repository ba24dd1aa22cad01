"""The learned lane reader (triage/lane.py): cries worded without the pre-screen's English
keywords wait in the critical lane too, in any language its training rows hold."""
from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.enums import Lane
from triage.heads import WEIGHTS_DIR
from triage.lane import N_FEATURES, LaneModel, features, lane_info, load_lane_model, save_lane_model
from triage.normalise import normalise_text
from triage.prescreen import LanePicker, fold, lane_for


def _reader_of(word: str, threshold: float = 0.5) -> LaneModel:
    """A reader that rates a post critical exactly when it holds `word`."""
    weight = np.zeros(N_FEATURES, dtype=np.float32)
    weight[zlib.crc32(f"w {word}".encode()) % N_FEATURES] = 40.0
    return LaneModel(weight=weight, bias=-5.0, threshold=threshold)


def test_features_are_hashed_words_pairs_and_word_ends_and_l2_normalised():
    feats = features("se ahoga")
    expected = {zlib.crc32(key.encode()) % N_FEATURES for key in ("w se", "w ahoga", "b se ahoga", "p ahog", "s hoga")}
    assert set(feats) == expected
    assert sum(v * v for v in feats.values()) == pytest.approx(1.0)
    assert features("") == {}


def test_the_reader_raises_a_post_the_keywords_leave_in_the_default_lane_to_the_urgent_lane():
    text = "se ha caido el abuelo en el patio"
    assert lane_for(text) == Lane.default.value
    assert lane_for(text, reader=_reader_of("abuelo")) == Lane.urgent.value
    assert LanePicker(_reader_of("abuelo"))(text) == Lane.urgent.value
    assert lane_for("hace calor hoy", reader=_reader_of("abuelo")) == Lane.default.value


def test_a_retweet_the_reader_rates_critical_waits_in_default_not_with_the_bulk():
    reader = _reader_of("abuelo")
    assert lane_for("RT @ana: se ha caido el abuelo en el patio", reader=reader) == Lane.default.value
    assert lane_for("RT @ana: hace calor hoy", reader=reader) == Lane.bulk.value


def test_the_reader_only_ever_raises_a_post():
    never = LaneModel(weight=np.zeros(N_FEATURES, dtype=np.float32), bias=-30.0, threshold=0.5)
    for text in ("my mum can't breathe, 4 Oak Road", "praying for everyone", "is the 42 bus late"):
        assert lane_for(text, reader=never) == lane_for(text)


def test_weights_round_trip(tmp_path):
    model = _reader_of("ahoga", threshold=0.3)
    save_lane_model(model, {"threshold": 0.3}, tmp_path)
    loaded = load_lane_model(tmp_path)
    assert loaded.threshold == pytest.approx(0.3) and loaded.bias == pytest.approx(-5.0)
    assert loaded.p_critical("se ahoga") == pytest.approx(model.p_critical("se ahoga"), abs=1e-3)
    assert lane_info(tmp_path) == {"threshold": 0.3}
    assert load_lane_model(tmp_path / "missing") is None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400), st.booleans())
def test_any_text_gets_a_lane_with_the_trained_reader(text, is_dm):
    assert LanePicker(load_lane_model(WEIGHTS_DIR))(text, is_dm) in {lane.value for lane in Lane}


RAISED = {Lane.critical.value, Lane.urgent.value}


def test_keyword_threats_stay_in_the_critical_lane_whatever_the_reader_says():
    always = LaneModel(weight=np.zeros(N_FEATURES, dtype=np.float32), bias=30.0, threshold=0.5)
    assert lane_for("my mum can't breathe, 4 Oak Road", reader=always) == Lane.critical.value
    assert lane_for("people injured near the station", reader=always) == Lane.critical.value
    assert lane_for("is the 42 bus late", reader=always) == Lane.urgent.value


def _critical_in_lane(name: str, reader: LaneModel | None) -> float:
    rows = [json.loads(line) for line in (WEIGHTS_DIR.parent / "data" / f"handle_{name}.jsonl").open()]
    critical = [normalise_text(r["text"])[0] for r in rows if r["urgency"] == "critical"]
    return sum(lane_for(t, reader=reader) in RAISED for t in critical) / len(critical)


@pytest.mark.parametrize("name,floor", [("test2", 0.95), ("multilingual_test2", 0.7), ("multilingual_test6", 0.7)])
def test_the_trained_reader_puts_held_out_critical_posts_in_the_critical_lane(name, floor):
    """Sets no lane reader was fitted or tuned on: with the keywords alone, 58 %, 0 % and 28 % of
    their critical posts waited in the critical lane; with the reader, the rest of those above
    the floor wait in the urgent lane, ahead of the default one."""
    reader = load_lane_model(WEIGHTS_DIR)
    assert reader is not None and 0.0 < reader.threshold < 1.0
    assert _critical_in_lane(name, reader) >= floor > _critical_in_lane(name, None)


def test_the_trained_reader_is_a_small_share_of_a_crisis_streams_chatter():
    reader = load_lane_model(WEIGHTS_DIR)
    chatter = ["praying for everyone caught up in the flooding tonight", "roads closed around the stadium, avoid the area",
               "this traffic is killing me", "new video of the fire on the news", "donate to the red cross appeal"]
    assert [t for t in chatter if reader.reads_critical(fold(t))] == []
