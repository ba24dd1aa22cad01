"""Rules baseline and the fallback when models are unavailable."""
from __future__ import annotations

import logging

from triage.base import TriageInput
from triage.factory import LazyClassifierStage, build_pipeline


def test_rules_kind_is_the_baseline():
    pipeline = build_pipeline(None, kind="rules")
    assert pipeline.model_version.startswith("rules")
    assert pipeline(TriageInput(text="he has a knife")).urgency == "critical"


def test_auto_without_weights_falls_back_with_reason(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        pipeline = build_pipeline(None, kind="auto", weights_dir=tmp_path)
    assert "falling back to rules" in caplog.text
    out = pipeline.many([TriageInput(text="house on fire")])[0]
    assert out.model_version.startswith("rules")
    assert any("rules fallback" in r for r in out.reasons)


def test_models_kind_refuses_to_fall_back(tmp_path):
    import pytest

    with pytest.raises(RuntimeError):
        build_pipeline(None, kind="models", weights_dir=tmp_path)


def test_encoder_that_cannot_load_uses_rules_per_post(tmp_path):
    (tmp_path / "models").write_text("a file where a directory should be")
    stage = LazyClassifierStage(tmp_path / "models" / "nested", threads=1, weights_dir=tmp_path)
    from triage.base import TriageItem

    item = TriageItem(input=TriageInput(text="not breathing"), text="not breathing")
    item = stage(item)
    assert item.urgency == "critical" and item.needs_review
    assert any("rules fallback" in r for r in item.reasons)


def test_failing_stage_does_not_lose_the_post():
    from triage.base import Pipeline

    class Broken:
        name = "broken"

        def __call__(self, item):
            raise ValueError("boom")

        def batch(self, items):
            raise ValueError("boom")

    outs = Pipeline([Broken()], model_version="t").many([TriageInput(text="x"), TriageInput(text="y")])
    assert len(outs) == 2 and all(o.needs_review for o in outs)
    assert all("undecided: broken failed (ValueError)" in o.reasons for o in outs)


def test_batch_failing_half_way_leaves_no_duplicate_reasons():
    from triage.base import Pipeline

    class FailsInBatch:
        name = "flaky"

        def __call__(self, item):
            item.reasons.append("seen")
            return item

        def batch(self, items):
            for it in items:
                it.reasons.append("seen")
            raise RuntimeError("batch broke after touching the items")

    outs = Pipeline([FailsInBatch()], model_version="t").many([TriageInput(text="a"), TriageInput(text="b")])
    assert [o.reasons.count("seen") for o in outs] == [1, 1]


def test_rules_fallback_leans_to_recall_and_reads_the_one_vocabulary():
    pipeline = build_pipeline(None, kind="rules")
    urgency = {t: pipeline(TriageInput(text=t)).urgency for t in (
        "help there is a fire", "someone is trapped in the lift", "my friend is unconscious",
        "mi marido no respira", "this exam is killing me lol")}
    assert urgency["help there is a fire"] in ("critical", "high", "medium")
    assert urgency["someone is trapped in the lift"] in ("critical", "high")
    assert urgency["my friend is unconscious"] == "critical"  # signals.SAFETY_RULES
    assert urgency["mi marido no respira"] == "critical"  # other_languages.OTHER_LANGUAGE_RULES
    assert urgency["this exam is killing me lol"] in ("low", "none")
