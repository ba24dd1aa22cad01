"""Cheap intake pre-screen (no model): routes possible life-threat posts to the critical lane.

It only chooses a queue. Every post still gets the full triage; a miss here costs latency,
never the post, so it leans towards recall.
"""
from __future__ import annotations

import re

from models.enums import Lane

_LIFE_THREAT = re.compile(
    r"\b(help|sos|999|911|112|emergency|ambulance|can'?t breathe|cant breathe|not breathing|"
    r"unconscious|collaps\w*|bleed\w*|stab\w*|shot|shoot\w*|gun|knife|fire|burning|smoke|trapped|"
    r"drown\w*|overdose|suicid\w*|kill (?:myself|me)|attack\w*|heart attack|stroke|seizure|"
    r"choking|crash\w*|hit by|kidnap\w*|intruder|break(?:ing)? in|hurt\w*|injur\w*|dying|"
    r"cant talk|can'?t talk|can'?t speak|hiding|he'?s got a|threaten\w*|hostage|explosion|bomb)\b",
    re.IGNORECASE,
)


def lane_for(text: str, is_dm: bool = False) -> str:
    if _LIFE_THREAT.search(text or ""):
        return Lane.critical.value
    # DMs to the handle are more likely to be personal requests for help than commentary.
    return Lane.default.value if is_dm else Lane.bulk.value
