"""Builds the triage pipeline from settings (explicit registry, no import-time loading)."""
from __future__ import annotations

from config import Settings
from triage.base import Pipeline
from triage.baseline import NormaliseStage, RuleClassifierStage


def build_pipeline(settings: Settings | None = None, kind: str = "auto") -> Pipeline:
    """kind: "rules" (baseline) or "auto" (the best pipeline available)."""
    return Pipeline([NormaliseStage(), RuleClassifierStage()], model_version="rules-0.1")
