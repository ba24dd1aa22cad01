"""Triage: reads each post and decides urgency, category, location, language and why."""
from triage.base import Pipeline, Stage, TriageInput, TriageItem
from triage.factory import build_pipeline

__all__ = ["Pipeline", "Stage", "TriageInput", "TriageItem", "build_pipeline"]
