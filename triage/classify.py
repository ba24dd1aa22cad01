"""Urgency and category from sentence embeddings + trained heads, decided by one table.

The decision, top to bottom (`decide`; every number comes from `DecisionNumbers`, which is
loaded with the heads from triage/weights/heads.json):

TIER — from the model
  T1  no text                                            → none, review
  T2  first level whose P(at least this urgent) passes its threshold (recall-biased, chosen
      out of fold in training); when P(none) ≥ none_gate, or when the post plainly does not
      read as literal (P(literal) < tier_literal_gate) and P(critical) < confirm, the thresholds may not
      raise the post above the model's own best guess (argmax): a person reviews it instead
  T2c ...unless the model's reading is strongly urgent in a post that reads as literal (P(literal)
      ≥ literal_gate, no figurative marker: R1's test): when T2's gate fires there, the first
      level whose P(at least this urgent) passes its gated threshold (gated_thresholds, a
      multiple of the level's threshold chosen out of fold: critical and high only) stands if
      more urgent than the argmax ("my sister slit her wrists in the bath, theres so much
      blood": P(critical) 0.24, twelve times the critical threshold, P(none) 0.67 → critical,
      check, not none)
  T2b a post confidently in another language (V3's test) that the multilingual head reads as a
      non-request (its P(none) ≥ none_gate): the English-only model's reading of it is noise
      ("Ce prof va me tuer", "Esse calor está me matando": P(critical) 0.5-0.7), so neither its
      thresholds nor its confidence stand: the level is the multilingual head's own (its
      argmax), never confirmed, and a person reviews it if not urgent; the rules still run
  T3  a post confidently in another language (V3's test): the multilingual head's level
      (multilingual-e5-small, its own out-of-fold thresholds, T2's P(none) gate, no literal
      gate: the literal head reads English only), when more urgent than T2's, unless the post
      carries a figurative marker (laughing emoji, "jaja": R1's, in any language). Neither reader
      alone is enough there: the English-only model reads such a post as near-noise (a Welsh
      father fallen on the stairs, not responding: none), and the 4-bit multilingual one misses some the other
      catches, so the more urgent of the two stands (on the handle training set's 81 urgent
      posts in other languages, out of fold, the multilingual head alone reaches high for 98.8 %)
RAISES — from rules; they raise, never lower
  R1  a safety-net phrase in a post that does not read as literal: P(literal) < literal_gate
      (the learned literal head; not for self-harm phrases, whose plain first-person intent
      the head, trained on hyperbole, may doubt), or a figurative marker ("lol", laughing emoji, a quoted
      line) while the model reads a non-request (P(none) ≥ none_gate) → no raise, review
  R1b the same for a post in another language that the multilingual head reads as a
      non-request (T2b's test, its P(none) ≥ none_gate; not self-harm phrases): the literal
      head reads English only, and "me tuer", "matando", "ratunku" are hyperbole there as often
      as in English, "wypadek", "pożar", "laapata" news or a memory as often as a report: the
      post's own reader's non-request stands against a phrase as it does against the English
      model (T2b); silent contact, an address and R6-R7 still raise it
                                                         → no raise, review
  R2  a critical phrase (not self-harm) in a post the model reads as a clear non-request
      (P(none) ≥ net_veto)                               → high
  R3  any other safety-net phrase                        → the phrase's level
  R4  silent contact (cannot speak, covert request)      → at least high
  R5  an address plus a plea, in any supported language  → at least high
  R5b an address in a post confidently in another language (V3): the English-only model cannot
      read what happens there, so a dispatcher does        → at least high
  R6  a literal post that the search-and-rescue head scores ≥ rescue_gate and the request head
      ≥ request_gate (relayed and third-person pleas: "35 ppl trapped in X, need rescuing";
      not news of rescue efforts)                        → at least high
  R7  a literal post (P(literal) ≥ literal_gate) naming a threat-to-life cue a call-taker asks
      about ("not answering me", "not moving") or people trapped, unless the asking head reads
      it as a report about an event (P(asking) < asking_gate: "film about trapped miners
      released")                                         → at least high
REVIEW — a person decides the disposition of a post left at low or none
  V1  the model is near the next level up: P(at least that level) ≥ review_ratio × its
      threshold
  V2  T1, T2's gate (without T2c), T2b or R1 fired
  V3  the post is confidently (≥ foreign_confidence) in another language: the English-only
      model's low/none is weak evidence
  (Urgent posts go to a person anyway, so `needs_review` is only ever set on low/none.)
CONFIRMED — critical only
  C1  P(critical) ≥ confirm (the English model's), unless T2b or T3 read the post in another
      language                                           → confirmed: page at once
  C1b a post confidently in another language whose multilingual P(critical) ≥ multilingual_confirm
      (that head's own level, chosen out of fold like confirm), unless T2b read it as a
      non-request or it carries a figurative marker      → confirmed: page at once
  C2  any other critical (threshold or phrase)           → "critical — check": same queue, same
                                                           priority, a human check first
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from models.enums import Urgency
from triage.base import TriageItem
from triage.datasets import URGENCIES
from triage.encoder import SENTENCE_DIM
from triage.heads import HeadSet
from triage.multilingual import HEAD_NAME as MULTILINGUAL
from triage.signals import (FEATURE_NAMES, evidence_words, find_signals, plea_with_address,
                            safety_net, signal_features, silent_contact, street_address)

LEVELS = [Urgency(u) for u in URGENCIES]  # most urgent first; index == Urgency.rank
URGENT = (Urgency.critical, Urgency.high, Urgency.medium)


@dataclass(frozen=True, slots=True)
class DecisionNumbers:
    """Every number the decision uses, in one place (the urgency head's entry in heads.json)."""

    thresholds: dict[str, float]  # P(at least this urgent) for critical, high, medium, low
    confirm: float  # P(critical) at or above which a critical decision is confirmed
    none_gate: float  # P(none) at or above which thresholds alone may not raise the post (T2;
    # with the multilingual head's P(none): T2b, R1b)
    net_veto: float  # P(none) at or above which a critical phrase raises only to high
    veto_exempt: tuple[str, ...]  # phrase categories R2 never caps (self-harm)
    literal_gate: float  # P(literal) below which a phrase may not raise (R1, R6)
    tier_literal_gate: float  # P(literal) below which thresholds alone may not raise (T2)
    # T2c: P(at least this urgent), for critical and high, at or above which a post stands at
    # that level although T2's gate fired (a strong reading is not sent below high)
    gated_thresholds: dict[str, float]
    asking_gate: float  # P(asking) below which a threat-to-life cue does not raise (R7)
    rescue_gate: float  # P(search and rescue) at or above which a literal request is high (R6)
    request_gate: float  # P(request) a post needs for R6
    review_ratio: float  # V1: fraction of the next level's threshold that sends low/none to review
    foreign_confidence: float  # V3: lingua confidence that a post is in another language
    # T3: the multilingual head's thresholds on P(at least this urgent); empty without that head
    multilingual_thresholds: dict[str, float] = field(default_factory=dict)
    # C1b: its P(critical) at or above which a critical post in another language is confirmed
    # (above 1, never: heads fitted before it had a confirm level)
    multilingual_confirm: float = 2.0

    @classmethod
    def from_extra(cls, extra: dict, multilingual: dict | None = None) -> DecisionNumbers:
        return cls(multilingual_thresholds=dict((multilingual or {}).get("thresholds", {})),
                   multilingual_confirm=float((multilingual or {}).get("confirm", 2.0)),
                   thresholds=dict(extra["thresholds"]), confirm=float(extra["confirm"]),
                   none_gate=float(extra["none_gate"]), net_veto=float(extra["net_veto"]),
                   veto_exempt=tuple(extra["veto_exempt"]),
                   literal_gate=float(extra["literal_gate"]),
                   tier_literal_gate=float(extra["tier_literal_gate"]),
                   gated_thresholds=dict(extra["gated_thresholds"]),
                   asking_gate=float(extra["asking_gate"]),
                   rescue_gate=float(extra["rescue_gate"]),
                   request_gate=float(extra["request_gate"]),
                   review_ratio=float(extra["review_ratio"]),
                   foreign_confidence=float(extra["foreign_confidence"]))


@dataclass(frozen=True, slots=True)
class Phrase:
    """A safety-net hit: the level it asks for, the kind of emergency, the words."""

    level: Urgency
    category: str
    words: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the rules read in the post, next to the model's probabilities."""

    phrases: tuple[Phrase, ...] = ()  # most urgent first
    figurative: bool = False
    p_literal: float = 1.0
    p_asking: float = 1.0  # the asking head: a request to a responder, not a report about an event
    p_rescue: float = 0.0  # the Figure Eight search-and-rescue head
    p_request: float = 0.0  # the Figure Eight request head
    threat_cue: str = ""  # the words, when the post names a threat-to-life cue or people trapped
    silent: str = ""  # why, when the post is a silent contact
    plea_with_address: str = ""  # the plea, when the post gives an address and asks for help
    address: str = ""  # the street address, when the post gives one
    foreign: str = ""  # language code, when confidently not English
    p_multilingual: np.ndarray | None = None  # T3: the multilingual urgency head, foreign posts
    empty: bool = False


@dataclass(slots=True)
class Decision:
    urgency: Urgency
    confirmed: bool = False
    needs_review: bool = False
    category: str | None = None  # the kind named by the phrase that raised the post
    reasons: list[str] = field(default_factory=list)


def model_tier(probs: np.ndarray, n: DecisionNumbers, p_literal: float = 1.0,
               figurative: bool = False) -> tuple[Urgency, str]:
    """T2 and T2c: (level, how) from the urgency head's probabilities (most urgent first); how is
    "" (the thresholds), "gated" (T2's gate held the post to the argmax) or "strong" (T2c)."""
    cumulative = np.cumsum(probs)
    best = LEVELS[int(np.argmax(probs))]
    gate = probs[-1] >= n.none_gate or (p_literal < n.tier_literal_gate and probs[0] < n.confirm)
    for k, level in enumerate(LEVELS[:4]):
        if cumulative[k] >= n.thresholds[level.value]:
            if gate and level.rank < best.rank:
                literal = p_literal >= n.literal_gate and not figurative
                strong = next((lv for j, lv in enumerate(LEVELS[:2])
                               if literal and lv.value in n.gated_thresholds
                               and cumulative[j] >= n.gated_thresholds[lv.value]), None)
                if strong is not None and strong.rank < best.rank:
                    return strong, "strong"
                return best, "gated"
            return level, ""
    return Urgency.none, ""


def decide(probs: np.ndarray, ev: Evidence, n: DecisionNumbers) -> Decision:
    """The decision table in the module docstring, in the same order."""
    why: list[str] = []
    review = False
    if ev.empty:  # T1
        return Decision(Urgency.none, needs_review=True,
                        reasons=["no text to classify → human review"])
    level, how = model_tier(probs, n, ev.p_literal, ev.figurative)  # T2, T2c
    why.append(f"model: P(critical)={probs[0]:.2f}, P(≥high)={probs[:2].sum():.2f}, "
               f"P(none)={probs[4]:.2f} → {level.value}")
    if how == "gated":
        review = True
        why.append(f"model reads a non-request (P(none)={probs[4]:.2f}, P(literal)="
                   f"{ev.p_literal:.2f}) although a threshold was passed → human review if not urgent")
    elif how == "strong":  # T2c
        why.append(f"model reads a non-request (P(none)={probs[4]:.2f}, P(literal)="
                   f"{ev.p_literal:.2f}) but its {level.value} reading passes the gated threshold "
                   f"{n.gated_thresholds[level.value]:.2f} → {level.value} stands")
    read_elsewhere = non_request_elsewhere = False
    if (ev.p_multilingual is not None and n.multilingual_thresholds  # T2b
            and ev.p_multilingual[-1] >= n.none_gate):
        non_request_elsewhere = True
        read = LEVELS[int(np.argmax(ev.p_multilingual))]
        review = True
        why.append(f"multilingual model ({ev.foreign}) reads a non-request (P(none)="
                   f"{ev.p_multilingual[-1]:.2f}): the English model's {level.value} on a post in "
                   f"another language does not stand → {read.value}, human review if not urgent")
        level, read_elsewhere = read, True
    elif ev.p_multilingual is not None and n.multilingual_thresholds:  # T3
        read, _ = model_tier(ev.p_multilingual, replace(n, thresholds=n.multilingual_thresholds,
                                                        gated_thresholds={}))
        if read.rank < level.rank and ev.figurative:
            review = True
            why.append(f"multilingual model ({ev.foreign}) reads {read.value}, not raised: a "
                       f"figurative marker (laughing emoji, 'jaja') → human review")
        elif read.rank < level.rank:
            why.append(f"multilingual model ({ev.foreign}): P(critical)={ev.p_multilingual[0]:.2f}, "
                       f"P(≥high)={ev.p_multilingual[:2].sum():.2f} raises {level.value} → "
                       f"{read.value}")
            level, read_elsewhere = read, True
    category = None
    for phrase in ev.phrases:
        if phrase.level.rank >= level.rank:
            continue
        foreign_figure = ev.p_multilingual is not None and ev.p_multilingual[-1] >= n.none_gate
        unliteral = ((ev.p_literal < n.literal_gate or foreign_figure)
                     and phrase.category not in n.veto_exempt)
        if (ev.figurative and probs[4] >= n.none_gate) or unliteral:  # R1
            review = True
            marker = ("figurative marker" if ev.figurative else
                      f"multilingual P(none)={ev.p_multilingual[-1]:.2f}" if foreign_figure else
                      f"P(literal)={ev.p_literal:.2f}")
            why.append(f"phrase '{phrase.words}' not raised: the post does not read as literal "
                       f"({marker}) → human review")
            continue
        target = phrase.level
        if (target is Urgency.critical and probs[4] >= n.net_veto  # R2
                and phrase.category not in n.veto_exempt):
            target = Urgency.high
            why.append(f"phrase '{phrase.words}' raises only to high: the model reads a "
                       f"non-request (P(none)={probs[4]:.2f})")
            if target.rank >= level.rank:
                continue
        why.append(f"safety net: '{phrase.words}' raises {level.value} → {target.value}")  # R3
        level, category = target, phrase.category
    if ev.silent and level.rank > Urgency.high.rank:  # R4
        why.append(f"silent contact ({ev.silent}) raises {level.value} → high")
        level = Urgency.high
    if ev.plea_with_address and level.rank > Urgency.high.rank:  # R5
        why.append(f"a plea ('{ev.plea_with_address}') with an address raises {level.value} → high")
        level = Urgency.high
    if ev.foreign and ev.address and level.rank > Urgency.high.rank:  # R5b
        why.append(f"an address ('{ev.address}') in a post in {ev.foreign}, which the text model "
                   f"cannot read, raises {level.value} → high")
        level = Urgency.high
    if (ev.p_rescue >= n.rescue_gate and ev.p_request >= n.request_gate  # R6
            and ev.p_literal >= n.literal_gate and level.rank > Urgency.high.rank):
        why.append(f"a request for rescue (P={ev.p_rescue:.2f}) raises {level.value} → high")
        level = Urgency.high
    if (ev.threat_cue and ev.p_literal >= n.literal_gate and ev.p_asking >= n.asking_gate  # R7
            and level.rank > Urgency.high.rank):
        why.append(f"'{ev.threat_cue}' in a literal post that asks for help (P(asking)="
                   f"{ev.p_asking:.2f}) raises {level.value} → high")
        level = Urgency.high
    if level.rank >= Urgency.low.rank:
        following = LEVELS[level.rank - 1]  # V1
        p_following = float(np.cumsum(probs)[following.rank])
        if p_following >= n.review_ratio * n.thresholds[following.value]:
            review = True
            why.append(f"model close to {following.value} (P={p_following:.2f}) → human review")
        if ev.foreign:  # V3
            review = True
            why.append(f"language {ev.foreign}: the text model reads English only, so its "
                       f"'{level.value}' is weak evidence → human review")
    confirmed = bool(level is Urgency.critical and probs[0] >= n.confirm  # C1/C2
                     and not read_elsewhere)
    confirmed_elsewhere = bool(level is Urgency.critical and ev.p_multilingual is not None  # C1b
                               and n.multilingual_thresholds and not non_request_elsewhere
                               and not ev.figurative
                               and ev.p_multilingual[0] >= n.multilingual_confirm)
    if confirmed_elsewhere:
        confirmed = True
        why.append(f"critical — confirmed (a post in another language: multilingual "
                   f"P(critical)={ev.p_multilingual[0]:.2f}, confirmed at ≥ "
                   f"{n.multilingual_confirm:.2f})")
    elif level is Urgency.critical and read_elsewhere:
        why.append("critical — check (a post in another language, read by the multilingual "
                   f"model below its confirm level {n.multilingual_confirm:.2f})")
    elif level is Urgency.critical:
        why.append(f"critical — {'confirmed' if confirmed else 'check'} "
                   f"(P(critical)={probs[0]:.2f}, confirmed at ≥ {n.confirm:.2f})")
    return Decision(level, confirmed=confirmed,
                    needs_review=review and level.rank >= Urgency.low.rank,
                    category=category, reasons=why)


def decision_score(probs: np.ndarray, urgency: str) -> float:
    """P(at least this urgent) for urgent levels, P(none) for none: what the decision rests on."""
    if urgency == "none":
        return float(probs[-1])
    return float(np.cumsum(probs)[Urgency(urgency).rank])


def calibrated_confidence(probs: np.ndarray, urgency: str, confidence_map: dict | None) -> float:
    score = decision_score(probs, urgency)
    if not confidence_map:
        return score
    curve = confidence_map.get(urgency) or confidence_map["all"]
    return float(np.interp(score, curve["x"], curve["y"]))


def phrases_in(text: str) -> tuple[Phrase, ...]:
    return tuple(Phrase(Urgency(rule.urgency), rule.category, words)
                 for rule, words in safety_net(text))


class ClassifierStage:
    name = "classify"

    def __init__(self, heads: HeadSet, encoder, multilingual_reader=None) -> None:
        self.heads = heads
        self.encoder = encoder
        # T3 needs both the head and the reader; without either, foreign posts keep T2's level
        # and V3's review, as before.
        self.multilingual = (heads.heads.get(MULTILINGUAL), multilingual_reader)
        for head in heads.heads.values():
            if "features" in head.extra and head.extra["features"] != FEATURE_NAMES:
                raise ValueError(f"head {head.name!r} was trained on other phrase features than "
                                 "this code computes: rebuild the heads with `flare train`")
        # Heads trained on whole readings (sentence and surface vectors: `flare train` marks them)
        # get one; the others, the sentence embedding alone.
        self.reads_surface = any(h.extra.get("surface") for h in heads.heads.values())
        ml_head = heads.heads.get(MULTILINGUAL)
        self.numbers = DecisionNumbers.from_extra(heads["urgency"].extra,
                                                  ml_head.extra if ml_head else None)

    def __call__(self, item: TriageItem) -> TriageItem:
        return self.batch([item])[0]

    def batch(self, items: list[TriageItem]) -> list[TriageItem]:
        texts = [it.text for it in items]
        readings = self.encoder.read(texts) if self.reads_surface else self.encoder.encode(texts)
        embeddings = readings[:, :SENTENCE_DIM]
        features = np.array([signal_features(it.text) for it in items], dtype=np.float32).reshape(len(items), -1)
        with_features = np.hstack([embeddings, features])
        reading_with_features = np.hstack([readings, features]) if self.reads_surface else None

        def head_input(extra: dict) -> np.ndarray:
            if extra.get("surface"):
                return reading_with_features
            return with_features if "features" in extra else embeddings

        probs = {name: head.probabilities(head_input(head.extra))
                 for name, head in self.heads.heads.items() if name != MULTILINGUAL}
        multilingual = self._read_other_languages(items)
        for i, item in enumerate(items):
            item.embedding = embeddings[i]
            self._decide(item, {name: p[i] for name, p in probs.items()}, multilingual.get(i))
        return items

    def _foreign(self, item: TriageItem) -> bool:
        """V3 and T3's test: the post is confidently in a language other than English."""
        return (item.language not in ("en", "und") and
                item.scores.get("language_confidence", 0.0) >= self.numbers.foreign_confidence)

    def _read_other_languages(self, items: list[TriageItem]) -> dict[int, np.ndarray]:
        """T3's input: the multilingual head's probabilities, for foreign posts only (English
        posts never pay for the slower encoder)."""
        head, reader = self.multilingual
        foreign = [i for i, it in enumerate(items) if self._foreign(it) and it.text.strip()]
        if head is None or reader is None or not foreign:
            return {}
        probs = head.probabilities(reader.encode([items[i].text for i in foreign]))
        return dict(zip(foreign, probs))

    def _evidence(self, item: TriageItem, p_literal: float, p_rescue: float, p_request: float,
                  p_asking: float, p_multilingual: np.ndarray | None = None) -> Evidence:
        laughs = int(item.signals.get("normalised", {}).get("laugh_emoji", 0))
        signals, signal_reasons = find_signals(item.text, laughs)
        item.signals.update(signals)
        item.reasons.extend(signal_reasons)
        silent, why = silent_contact(item.text)
        item.silent = silent
        if silent:
            item.reasons.append(why)
        foreign = self._foreign(item)
        found = evidence_words(item.text)
        return Evidence(phrases=phrases_in(item.text), figurative=bool(signals["figurative"]),
                        threat_cue=found["threat_cue"] or found["people_trapped"] or "",
                        p_literal=p_literal, p_rescue=p_rescue, p_request=p_request,
                        p_asking=p_asking, silent=why if silent else "",
                        plea_with_address=plea_with_address(item.text),
                        address=street_address(item.text),
                        foreign=item.language if foreign else "", p_multilingual=p_multilingual,
                        empty=not item.text.strip())

    def _decide(self, item: TriageItem, p: dict[str, np.ndarray],
                p_multilingual: np.ndarray | None = None) -> None:
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
        p_literal = float(p["literal"][1])
        item.scores["literal"] = round(p_literal, 4)
        p_asking = float(p["asking"][1])
        item.scores["asking"] = round(p_asking, 4)

        if p_multilingual is not None:
            item.scores[MULTILINGUAL] = {u: round(float(v), 4)
                                         for u, v in zip(URGENCIES, p_multilingual)}
        evidence = self._evidence(item, p_literal, float(p["f8_search_and_rescue"][1]),
                                  float(p["f8_request"][1]), p_asking, p_multilingual)
        decision = decide(urgency_probs, evidence, self.numbers)
        item.reasons.extend(decision.reasons)
        item.urgency = decision.urgency.value
        item.confirmed = decision.confirmed
        item.needs_review = item.needs_review or decision.needs_review
        if decision.urgency is Urgency.critical:
            item.scores["confirmed"] = decision.confirmed  # stored with the triage result
        if not item.text.strip():
            item.category, item.confidence = "none", 0.0
            return
        item.confidence = round(calibrated_confidence(
            urgency_probs, item.urgency, self.heads["urgency"].extra.get("confidence_map")), 4)
        item.category = self._category(item.urgency, category_probs, categories, decision.category)
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
