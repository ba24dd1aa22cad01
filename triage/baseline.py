"""Rule-based baseline stage: a transparent fallback when model files are unavailable.

Used as kind="rules" and as the fallback when the encoder or heads cannot load: triage still
runs and says so in its reasons rather than failing. It reads the same life-threat vocabulary
as the model pipeline's safety net (triage.signals, with triage.other_languages): one list, not
a second copy that drifts. Text clean-up is triage.normalise.
"""
from __future__ import annotations

import re

from models.enums import Urgency
from triage.base import TriageItem
from triage.prescreen import fold, life_threat
from triage.signals import find_signals, plea_with_address, safety_net, silent_contact

# Without a model the fallback leans to recall: words that only say "something may be wrong"
# open a medium incident (a person looks), and the pre-screen's danger hints make it high.
_EVENT_WORDS = re.compile(r"\b(help|emergency|fire|flood\w*|explosion|police|ambulance|injured|"
                          r"hurt|smoke|crash)\b", re.I)


class RuleClassifierStage:
    name = "rules"

    def __call__(self, item: TriageItem) -> TriageItem:
        laughs = int(item.signals.get("normalised", {}).get("laugh_emoji", 0))
        signals, _ = find_signals(item.text, laughs)
        urgency, category = Urgency.none, "none"
        if item.text.strip():
            urgency = Urgency.low
            item.reasons.append("rules: no model; low unless a phrase says more")
        for rule, phrase in safety_net(item.text):  # most urgent first
            level = Urgency(rule.urgency)
            if signals["figurative"]:
                item.reasons.append(f"phrase '{phrase}' not raised: figurative marker")
                break
            if level.rank < urgency.rank:
                urgency, category = level, rule.category
                item.reasons.append(f"phrase '{phrase}' → {level.value}/{rule.category}")
        if not signals["figurative"] and urgency.rank > Urgency.high.rank and life_threat(fold(item.text)):
            urgency, category = Urgency.high, "other"
            item.reasons.append("rules: a danger word the pre-screen knows → high")
        elif (not signals["figurative"] and urgency.rank > Urgency.medium.rank
              and (m := _EVENT_WORDS.search(item.text))):
            urgency, category = Urgency.medium, "other"
            item.reasons.append(f"rules: '{m.group(0)}' → medium, a person looks")
        silent, why = silent_contact(item.text)
        if silent:
            item.silent = True
            item.reasons.append(why)
        if (silent or plea_with_address(item.text)) and urgency.rank > Urgency.high.rank:
            urgency, category = Urgency.high, "other" if category == "none" else category
        item.urgency, item.category = urgency.value, category
        item.signals.update(signals)
        item.confidence = 0.5
        item.scores["rules"] = True
        return item
