"""Bad input never crashes a stage; results say what could not be decided."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triage.base import TriageInput, TriageItem
from triage.language import LanguageStage
from triage.locations.stage import LocationStage
from triage.normalise import NormaliseStage, normalise_text

NASTY = [
    "",
    "x" * 100_000,
    "\x00\x01\x02\xff\ufffd" * 500,
    "😂🔥💀🙏" * 50,
    "help مساعدة помогите 救命 fire at 12 Oak St",
    "\u202eerif\u202c on the \u200bstab\u200bbed\u200b man",
    "\u200b\u200c\u200d\ufeff",
    "\ud800 lone surrogate",
    "@a @b @c https://x.y/z www.example.com",
    "51.5, -0.1 /// ///.. ///a.b. LS1 M6 J99",
]


@pytest.mark.parametrize("text", NASTY)
def test_nasty_inputs_through_the_full_pipeline(model_pipeline, text):
    out = model_pipeline(TriageInput(text=text))
    assert out.urgency in {"critical", "high", "medium", "low", "none"}
    assert not any("failed" in r for r in out.reasons), out.reasons
    if not normalise_text(text)[0].strip():
        assert out.needs_review and any(r.startswith("undecided:") for r in out.reasons)


def test_bidi_and_zero_width_are_stripped():
    assert normalise_text("sta\u200bbbed \u202eman")[0] == "stabbed man"


def test_handles_are_removed_whole_on_every_platform():
    assert normalise_text("@flare999.bsky.social my dad collapsed")[0] == "my dad collapsed"
    assert normalise_text("🔁 @bd8-2422.bsky.social: the roof has caved in")[0] == ": the roof has caved in"
    assert normalise_text("@news.example.org says a fire at the mill")[0] == "says a fire at the mill"
    # X handles; a full stop or a hyphen after one is the sentence's, not the handle's.
    assert normalise_text("thanks @Flare_999. we're safe")[0] == "thanks . we're safe"
    assert normalise_text("on @660NEWS- a fire")[0] == "on - a fire"
    assert normalise_text("mail me at jo@example.org")[0] == "mail me at jo@example.org"


def test_huge_text_is_truncated_and_said():
    item = NormaliseStage()(TriageItem(input=TriageInput(text="help " * 30_000)))
    assert len(item.text) <= 5000
    assert any("truncated" in u for u in item.undecided)


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_cheap_stages_never_raise(text):
    item = TriageItem(input=TriageInput(text=text))
    for stage in (NormaliseStage(), LanguageStage(), LocationStage(use_ner=False)):
        item = stage(item)
    for m in item.locations:
        if m.start is not None:
            assert item.text[m.start:m.end] == m.text


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=300), max_size=6))
def test_full_pipeline_batches_never_raise(model_pipeline, texts):
    outs = model_pipeline.many([TriageInput(text=t) for t in texts])
    assert len(outs) == len(texts)
    assert not any(any("failed" in r for r in o.reasons) for o in outs)
