"""Rule-based baseline stages: a transparent fallback when model files are unavailable.

Used as kind="rules" and as the fallback when the encoder or heads cannot load: triage still
runs and says so in its reasons rather than failing. Text clean-up is triage.normalise.
"""
from __future__ import annotations

import re

from triage.base import TriageItem

_RULES: list[tuple[str, str, re.Pattern[str]]] = [
    # (urgency, category, pattern) — first match wins for category; urgency takes the max.
    ("critical", "medical", re.compile(r"\b(not breathing|can'?t breathe|cant breathe|unconscious|collapsed|heart attack|overdosed?|choking|seizure|stroke|bleeding (?:badly|heavily|out))\b", re.I)),
    ("critical", "self_harm", re.compile(r"\b(kill myself|end it all|suicid\w*|want to die|took (?:all )?(?:my |the )?pills)\b", re.I)),
    ("critical", "violence", re.compile(r"\b(stabbed|stabbing|been shot|shooting|gunman|has a (?:gun|knife)|attacking|being attacked)\b", re.I)),
    ("critical", "fire", re.compile(r"\b(trapped|house (?:is )?on fire|building (?:is )?on fire|flat (?:is )?on fire|fire)\b", re.I)),
    ("critical", "domestic_abuse", re.compile(r"\b(he'?s going to hurt me|he hit me|hitting me|cant talk he|can'?t talk he'?s)\b", re.I)),
    ("high", "crime", re.compile(r"\b(break(?:ing)? in|burglar\w*|intruder|robbery|robbed|mugged|someone in my house)\b", re.I)),
    ("high", "traffic", re.compile(r"\b(crash|collision|car accident|hit by a car|rta|pile-?up)\b", re.I)),
    ("high", "missing_person", re.compile(r"\b(missing|can'?t find my (?:son|daughter|child|mum|dad|kid))\b", re.I)),
    ("high", "hazard", re.compile(r"\b(gas leak|smell of gas|flood\w*|power line|explosion|chemical)\b", re.I)),
    ("medium", "other", re.compile(r"\b(help|emergency|police|ambulance|injured|hurt)\b", re.I)),
]
_NONE_HINTS = re.compile(r"\b(lol|lmao|killing me|dying to|praying|thoughts and prayers|joke)\b", re.I)
_SILENT = re.compile(r"\b(can'?t (?:talk|speak|call)|cant (?:talk|speak|call)|unable to (?:talk|speak|call)|hiding)\b", re.I)
_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "none": 4}


class RuleClassifierStage:
    name = "rules"

    def __call__(self, item: TriageItem) -> TriageItem:
        urgency, category = "none", "none"
        for level, cat, pattern in _RULES:
            m = pattern.search(item.text)
            if m and _ORDER[level] < _ORDER[urgency]:
                urgency, category = level, cat
                item.reasons.append(f"phrase '{m.group(0)}' → {level}/{cat}")
        if urgency == "none" and item.text.strip():
            urgency = "low"
            item.reasons.append("no emergency phrase found → low")
        if _NONE_HINTS.search(item.text) and urgency not in ("critical",):
            urgency, category = "none", "none"
            item.reasons.append("figurative/commentary phrase → none")
        if m := _SILENT.search(item.text):
            item.silent = True
            item.reasons.append(f"'{m.group(0)}' → silent contact")
            if _ORDER[urgency] > _ORDER["high"]:
                urgency = "high"
        item.urgency, item.category = urgency, category
        item.confidence = 0.5
        item.scores["rules"] = True
        return item
