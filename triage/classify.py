"""Urgency and category from sentence embeddings + trained heads, then signals and the safety net.

Decision rule (why it is not argmax): missing a critical post is far worse than a false alarm, so
each level is chosen when P(at least this urgent) passes a threshold picked in training to keep
out-of-fold recall at the target (critical 0.98, high 0.97). A probability close to a threshold
sends the post to human review. Safety-net phrases can raise the level, never lower it.
"""
from __future__ import annotations

import numpy as np

from triage.base import TriageItem
from triage.datasets import URGENCIES
from triage.heads import HeadSet
from triage.signals import (FEATURE_NAMES, find_signals, safety_net, signal_features,
                             silent_contact)

_RANK = {u: i for i, u in enumerate(URGENCIES)}
# lingua's confidence above which a post is taken to be in another language: below it, short
# English posts ("Very wet. #yycflood") are sometimes named Welsh or French.
FOREIGN_REVIEW_CONFIDENCE = 0.6


def decide_urgency(probs: np.ndarray, thresholds: dict[str, float], band: float,
                   none_gate: float = 0.5) -> tuple[str, bool, float]:
    """(urgency, near a boundary?, P(at least that urgent)).

    When the model's own best guess is "not a request" (P(none) >= none_gate), the low
    recall-biased thresholds may not raise the post; the argmax stands and, if a threshold was
    passed, the post goes to human review instead."""
    cumulative = np.cumsum(probs)
    gated = probs[-1] >= none_gate
    for k, level in enumerate(URGENCIES[:4]):
        if cumulative[k] >= thresholds[level]:
            if gated and level != URGENCIES[int(np.argmax(probs))]:
                best = URGENCIES[int(np.argmax(probs))]
                return best, True, float(probs[int(np.argmax(probs))])
            near = cumulative[k] - thresholds[level] < band and level != "low"
            if k > 0:  # also uncertain when the next more urgent level only just missed
                more = URGENCIES[k - 1]
                near = near or thresholds[more] - cumulative[k - 1] < band
            return level, bool(near), float(cumulative[k])
    near = thresholds["low"] - cumulative[3] < band
    return "none", bool(near), float(1.0 - cumulative[3])


def decision_score(probs: np.ndarray, urgency: str) -> float:
    """P(at least this urgent) for urgent levels, P(none) for none: what the decision rests on."""
    if urgency == "none":
        return float(probs[-1])
    return float(np.cumsum(probs)[_RANK[urgency]])


def calibrated_confidence(probs: np.ndarray, urgency: str, confidence_map: dict | None) -> float:
    score = decision_score(probs, urgency)
    if not confidence_map:
        return score
    curve = confidence_map.get(urgency) or confidence_map["all"]
    return float(np.interp(score, curve["x"], curve["y"]))


class ClassifierStage:
    name = "classify"

    def __init__(self, heads: HeadSet, encoder) -> None:
        self.heads = heads
        self.encoder = encoder
        urgency = heads["urgency"]
        for head in heads.heads.values():
            if "features" in head.extra and head.extra["features"] != FEATURE_NAMES:
                raise ValueError(f"head {head.name!r} was trained on other phrase features than "
                                 "this code computes: rebuild the heads with `flare train`")
        self.thresholds = urgency.extra["thresholds"]
        self.band = float(urgency.extra.get("review_band", 0.1))
        self.none_gate = float(urgency.extra.get("none_gate", 0.5))
        self.net_veto = float(urgency.extra.get("net_veto", 1.01))
        self.veto_exempt = tuple(urgency.extra.get("veto_exempt", ()))

    def __call__(self, item: TriageItem) -> TriageItem:
        return self.batch([item])[0]

    def batch(self, items: list[TriageItem]) -> list[TriageItem]:
        embeddings = self.encoder.encode([it.text for it in items])
        features = np.array([signal_features(it.text) for it in items], dtype=np.float32)
        with_features = np.hstack([embeddings, features.reshape(len(items), -1)])
        probs = {name: head.probabilities(with_features if "features" in head.extra else embeddings)
                 for name, head in self.heads.heads.items()}
        for i, item in enumerate(items):
            item.embedding = embeddings[i]
            self._decide(item, {name: p[i] for name, p in probs.items()})
        return items

    def _decide(self, item: TriageItem, p: dict[str, np.ndarray]) -> None:
        urgency_probs, category_probs = p["urgency"], p["category"]
        categories = self.heads["category"].classes
        item.scores["urgency"] = {u: round(float(v), 4) for u, v in zip(URGENCIES, urgency_probs)}
        top_categories = np.argsort(-category_probs)[:3]
        item.scores["category"] = {categories[j]: round(float(category_probs[j]), 4)
                                   for j in top_categories}
        item.scores["trec_priority"] = {c: round(float(v), 4) for c, v in zip(
            self.heads["trec_priority"].classes, p["trec_priority"])}
        for name in ("f8_request", "f8_medical_help", "f8_search_and_rescue"):
            item.scores[name] = round(float(p[name][1]), 4)

        if not item.text.strip():
            item.urgency, item.category, item.confidence = "none", "none", 0.0
            item.needs_review = True  # nothing to read is not the same as nothing wrong
            item.reasons.append("no text to classify → human review")
            return

        urgency, near, _ = decide_urgency(urgency_probs, self.thresholds, self.band,
                                                    self.none_gate)
        item.reasons.append(
            f"model: P(critical)={urgency_probs[0]:.2f}, P(≥high)={urgency_probs[:2].sum():.2f}, "
            f"P(none)={urgency_probs[4]:.2f} → {urgency}")
        if near:
            item.needs_review = True
            item.reasons.append(f"model close to a decision boundary at {urgency} → human review")

        laughs = int(item.signals.get("normalised", {}).get("laugh_emoji", 0))
        signals, signal_reasons = find_signals(item.text, laughs)
        item.signals.update(signals)
        item.reasons.extend(signal_reasons)
        silent, why = silent_contact(item.text)
        item.silent = silent
        if silent:
            item.reasons.append(why)

        rule_category = None
        for rule, phrase in safety_net(item.text):
            if _RANK[rule.urgency] >= _RANK[urgency]:
                continue
            if signals["figurative"] and urgency_probs[4] >= 0.5:
                item.reasons.append(f"phrase '{phrase}' not raised: figurative and model says none "
                                    f"(P={urgency_probs[4]:.2f})")
                item.needs_review = item.needs_review or rule.urgency == "critical"
                continue
            raised_to = rule.urgency
            if (raised_to == "critical" and urgency_probs[4] >= self.net_veto
                    and rule.category not in self.veto_exempt):
                # "my boss is going to kill me": the phrase is there, but everything else reads
                # as not a request. Raised, not to the top, and a person decides.
                raised_to = "high"
                item.needs_review = True
                item.reasons.append(f"phrase '{phrase}' raises only to high: the model reads a "
                                    f"non-request (P(none)={urgency_probs[4]:.2f}) → human review")
                if _RANK[raised_to] >= _RANK[urgency]:
                    continue
            item.reasons.append(f"safety net: '{phrase}' raises {urgency} → {raised_to}")
            if urgency in ("none", "low"):  # the model and the phrase disagree: a person decides
                item.needs_review = True
            urgency, rule_category = raised_to, rule.category
        if item.language not in ("en", "und"):
            if rule_category or _RANK[urgency] <= _RANK["medium"]:
                item.needs_review = True
                item.reasons.append(f"language {item.language}: the text model is English-only → human review")
            elif item.scores.get("language_confidence", 0.0) >= FOREIGN_REVIEW_CONFIDENCE:
                # The English-only model's "low" or "none" says little about a post it cannot
                # read (it gave a gas leak in German P(none) > 0.5): a person reads it before it
                # is closed. Not raised: in an international incident, foreign-language commentary
                # would otherwise open incidents and draw automatic replies by the hundred.
                item.needs_review = True
                item.reasons.append(f"language {item.language}: the text model reads English only, "
                                    f"so its '{urgency}' is weak evidence → human review")
        if silent and _RANK[urgency] > _RANK["high"]:
            item.reasons.append(f"silent contact raises {urgency} → high")
            urgency = "high"
            item.needs_review = True
        if signals["weapon"] and signals["timing"] == "ongoing" and urgency in ("high", "medium"):
            item.needs_review = True
            item.reasons.append("weapon mentioned in an ongoing incident → human review")

        item.urgency = urgency
        item.confidence = round(calibrated_confidence(
            urgency_probs, urgency, self.heads["urgency"].extra.get("confidence_map")), 4)
        item.category = self._category(urgency, category_probs, categories, rule_category)
        item.reasons.append(f"category {item.category} (model P={category_probs.max():.2f}, "
                            f"top: {', '.join(f'{k} {v:.2f}' for k, v in item.scores['category'].items())})")

    @staticmethod
    def _category(urgency: str, probs: np.ndarray, classes: list[str], rule_category: str | None
                  ) -> str:
        if urgency == "none":
            return "none"
        ranked = [classes[j] for j in np.argsort(-probs)]
        best = next(c for c in ranked if c != "none")
        p_best = float(probs[classes.index(best)])
        # The phrase that raised urgency names the kind of emergency, unless the model is sure
        # of another ("not breathing" in a house fire is still a fire).
        if rule_category and rule_category != "other" and p_best < 0.5:
            return rule_category
        # A help request whose kind the model cannot tell is "other", not a forced guess.
        return best if p_best >= 0.2 else "other"
