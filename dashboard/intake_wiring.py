"""Intake wiring moved to flows/intake.py and flows/drill.py; these names stay for callers."""
from __future__ import annotations

from flows.drill import DRILL_MARK, is_drill
from flows.intake import choose_lane, ingest

__all__ = ["DRILL_MARK", "choose_lane", "ingest", "is_drill"]
