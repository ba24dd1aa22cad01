"""Repeated posts are decided once per worker, and a copy's decision is the one it gets alone."""

from __future__ import annotations


import numpy as np
import pytest

from config import Settings
from flows.decisions import Decisions, input_key
from models.domain import GeoPoint, TriageOutput
from triage.base import TriageInput
from tests.demo_pipeline import MODEL_CACHE
from triage.factory import build_pipeline

CRY = "my dad collapsed and isnt breathing, 7 Rowan Close"
COPIES = [
    CRY,
    "stay safe Manchester",
    CRY,
    "huge explosion near Piccadilly, windows blown out",
    "stay safe Manchester",
    CRY,
    "went blue and slid off his chair, 3 Elm Road",
]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    settings = Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("decisions"), triage={"model_cache_dir": str(MODEL_CACHE), "threads": 1})
    return build_pipeline(settings, kind="models")


def _same(a: TriageOutput, b: TriageOutput) -> None:
    assert (a.urgency, a.category, a.confirmed, a.needs_review, a.silent, a.language, a.reasons) == (
        b.urgency,
        b.category,
        b.confirmed,
        b.needs_review,
        b.silent,
        b.language,
        b.reasons,
    )
    assert [m.as_dict() for m in a.locations] == [m.as_dict() for m in b.locations]
    for name in ("urgency", "category"):
        for key, value in a.scores[name].items():
            assert abs(value - b.scores[name][key]) < 1e-5
    assert np.abs(np.asarray(a.embedding) - np.asarray(b.embedding)).max() < 1e-5


@pytest.mark.slow
def test_copies_get_the_decision_each_gets_alone_and_run_the_model_once(pipeline):
    decisions = Decisions(pipeline)
    outs, computed = decisions.decide([TriageInput(text=t) for t in COPIES])
    assert computed == len(set(COPIES)), "each distinct post once"
    for text, out in zip(COPIES, outs, strict=True):
        _same(out, pipeline(TriageInput(text=text)))
    again, computed = decisions.decide([TriageInput(text=t) for t in reversed(COPIES)])
    assert computed == 0, "every one of them decided before, on this worker"
    for text, out in zip(reversed(COPIES), again, strict=True):
        _same(out, pipeline(TriageInput(text=text)))
    assert decisions.stats.posts == 2 * len(COPIES) and decisions.stats.computed == len(set(COPIES))


@pytest.mark.slow
def test_the_same_words_with_another_place_or_platform_are_decided_apart(pipeline):
    decisions = Decisions(pipeline)
    inputs = [
        TriageInput(text=CRY),
        TriageInput(text=CRY, platform="bluesky"),
        TriageInput(text=CRY, is_dm=True),
        TriageInput(text=CRY, geo=GeoPoint(53.48, -2.23, "Manchester")),
        TriageInput(text=CRY, author_location="Leeds"),
        TriageInput(text=CRY + " "),
    ]
    outs, computed = decisions.decide(inputs)
    assert computed == len(inputs)
    for inp, out in zip(inputs, outs, strict=True):
        _same(out, pipeline(inp))


class _Counting:
    """A pipeline double: counts the posts it runs; one text always fails a stage."""

    REASONS = {
        "broken": "undecided: classify failed (RuntimeError)",
        "fallback": "rules fallback: model load failed",
        "nowhere": "undecided: location (no geotag and no place named in the text)",
    }

    def __init__(self) -> None:
        self.ran: list[str] = []

    def many(self, inputs):
        self.ran.extend(i.text for i in inputs)
        return [
            TriageOutput(
                urgency="low",
                category="none",
                confidence=0.5,
                reasons=[self.REASONS.get(i.text, "ok")],
                embedding=np.ones(4, dtype=np.float32),
            )
            for i in inputs
        ]


def test_each_caller_gets_its_own_copy():
    decisions = Decisions(_Counting())
    first, _ = decisions.decide([TriageInput(text="a"), TriageInput(text="a")])
    first[0].reasons.append("payload malformed")
    first[0].needs_review = True
    first[1].embedding[0] = 9.0
    later, computed = decisions.decide([TriageInput(text="a")])
    assert computed == 0
    assert later[0].reasons == ["ok"] and not later[0].needs_review and later[0].embedding[0] == 1.0
    assert first[1].reasons == ["ok"]


def test_a_post_not_fully_decided_is_decided_again_next_time():
    pipeline = _Counting()
    decisions = Decisions(pipeline)
    texts = ["broken", "fallback", "nowhere", "fine"]
    decisions.decide([TriageInput(text=t) for t in texts])
    decisions.decide([TriageInput(text=t) for t in texts])
    assert pipeline.ran == [*texts, "broken", "fallback"], "a post's own undecided place is its decision"


def test_the_least_recently_used_outputs_go_first():
    pipeline = _Counting()
    decisions = Decisions(pipeline, size=2)
    decisions.decide([TriageInput(text="a"), TriageInput(text="b")])
    decisions.decide([TriageInput(text="a")])  # "a" used again: "b" is now the oldest
    decisions.decide([TriageInput(text="c")])
    decisions.decide([TriageInput(text="a"), TriageInput(text="b")])
    assert pipeline.ran == ["a", "b", "c", "b"]


def test_a_remembered_input_costs_a_digest_not_its_text():
    from_text = [TriageInput(text="x" * 20_000), TriageInput(text="help"), TriageInput(text="help", is_dm=True),
                 TriageInput(text="help", geo=GeoPoint(51.5, -0.1, "")), TriageInput(text="help", author_location="Leeds")]
    keys = [input_key(inp) for inp in from_text]
    assert all(isinstance(k, bytes) and len(k) == 32 for k in keys)
    assert len(set(keys)) == len(keys)  # every field the pipeline reads tells inputs apart
    assert input_key(TriageInput(text="help")) == keys[1]


class _Versioned(_Counting):
    """A pipeline double of one model version, whose outputs differ per text."""

    def __init__(self, version: str = "test-1") -> None:
        super().__init__()
        self.model_version = version

    def many(self, inputs):
        outs = super().many(inputs)
        for inp, out in zip(inputs, outs, strict=True):
            out.confidence = len(inp.text) / 100
            out.embedding = np.random.default_rng(len(inp.text)).random(4).astype(np.float32)
            out.model_version = self.model_version
        return outs


def test_workers_share_what_they_decided(redis_conn):
    from flows.context import unanswering_client

    texts = ["stay safe Manchester", "my dad collapsed, 7 Rowan Close", "broken", "stay safe Manchester"]
    first, second = _Versioned(), _Versioned()
    decided, _ = Decisions(first).decide([TriageInput(text=t) for t in texts], shared=redis_conn)
    again, computed = Decisions(second).decide([TriageInput(text=t) for t in texts], shared=redis_conn)
    # The other worker runs only what the first could not decide (a stage failed on it).
    assert second.ran == ["broken"] and computed == 1
    for a, b in zip(decided, again, strict=True):
        assert (a.reasons, a.confidence, a.model_version) == (b.reasons, b.confidence, b.model_version)
        assert np.array_equal(a.embedding, b.embedding)
    # Another model version never reads them; an unreachable Redis costs only the sharing.
    upgraded = _Versioned("test-2")
    Decisions(upgraded).decide([TriageInput(text=t) for t in texts], shared=redis_conn)
    alone = _Versioned()
    outs, computed = Decisions(alone).decide([TriageInput(text=t) for t in texts], shared=unanswering_client())
    assert upgraded.ran == alone.ran == texts[:3] and computed == 3
    assert [o.confidence for o in outs] == [o.confidence for o in decided]
