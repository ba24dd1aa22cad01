"""Phrase signals and safety-net rules: protocol findings, other languages, silent contact,
reassurances, and the lower-cased fast path agreeing with the readable case-insensitive rules."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage import signals
from triage.signals import find_signals, safety_net, signal_features, silent_contact


def _critical(text: str) -> bool:
    return any(rule.urgency == "critical" for rule, _ in safety_net(text))


@pytest.mark.parametrize("text", [
    "my mums face has dropped on one side and she cant lift her arm",
    "his tongue is swelling after the peanuts, where is the epipen",
    "my boy went under at the lido and hasnt come up",
    "a man snatched my daughter from the trolley at the big Tesco",
    "someone drove a van into the crowd outside the station",
    "they tied him up and want the safe code",
    "i've got the pills and i'm going to take them all tonight",
    "smoke is coming under the door and the handle is too hot to touch",
    "Someone's shooting in the car park at the retail park",
    "mi madre no respira, Calle Mayor 3",
    "mon fils de 6 ans a disparu au parc",
    "auto im Fluss, jemand ist noch drin",
    "mera bhai behosh ho gaya hai",
    "standing at the top of the multi storey. this is my last tweet",
])
def test_life_threat_findings_raise_to_critical(text):
    assert _critical(text)


@pytest.mark.parametrize("text", [
    "just had my phone snatched by a guy on a bike",
    "Amber warning for wind across the north tomorrow",
    "took 40 mins for an ambulance to reach my gran last year",
    "the traffic is not moving on the ring road again",
    "they are shooting a music video on our street",
    "I said goodbye to my old car today",
])
def test_look_alike_phrases_do_not_raise_to_critical(text):
    assert not _critical(text)


@pytest.mark.parametrize("text", [
    "nearly had a heart attack when the cat jumped out",
    "this heat is going to kill me",
])
def test_figurative_uses_are_marked(text):
    assert find_signals(text)[0]["figurative"]


def test_reassurance_is_a_signal_not_a_decision():
    found, reasons = find_signals("car fire in the lay-by, driver got out, everyone's out safe")
    assert found["mitigation"] and any(r.startswith("reassurance") for r in reasons)
    assert find_signals("the carbon monoxide alarm went off")[0]["mitigation"] is False


@pytest.mark.parametrize("text", [
    "deaf, cannot phone. my husband collapsed. 21 Park Rd",
    "im texting because he will hear me if i call",
    "typing under the blanket, he's downstairs",
    "if i make a sound he'll hurt the baby",
    "can u send a pepperoni pizza to 38 Linden Ave, hes got the gun out",
])
def test_people_who_cannot_speak_are_silent_contacts(text):
    assert silent_contact(text)[0]


def test_asking_about_the_text_service_is_not_a_silent_contact():
    assert not silent_contact("can i text 999 if i'm deaf? do i need to register?")[0]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ '.,0123456789"),
               max_size=120))
def test_fast_lowercase_path_agrees_with_the_case_insensitive_rules(text):
    """The rules are written with IGNORECASE; the run-time searches lower-cased text without it."""
    for phrase in ("NOT BREATHING", "He's Got A Knife", "House On Fire"):
        mixed = f"{text} {phrase} {text}"
        signals._evidence.cache_clear()
        slow = sorted((r.urgency, r.category) for r in signals.SAFETY_RULES + signals.NET_ONLY_RULES
                      if r.pattern.search(mixed))
        fast = sorted((r.urgency, r.category) for r, _ in safety_net(mixed))
        assert fast == slow
        assert len(signal_features(mixed)) == len(signals.FEATURE_NAMES)


def _stub_classifier(urgency_bias):
    """A ClassifierStage whose urgency head always gives the same probabilities."""
    import numpy as np

    from triage import datasets as ds
    from triage.classify import ClassifierStage
    from triage.heads import Head, HeadSet

    dim = 384 + len(signals.FEATURE_NAMES)

    def head(name, classes, bias, extra=None):
        return Head(name, classes, np.zeros((dim, len(classes)), np.float32),
                    np.array(bias, np.float32), 1.0, {"features": signals.FEATURE_NAMES, **(extra or {})})

    heads = {
        "urgency": head("urgency", ds.URGENCIES, urgency_bias, {
            "thresholds": {"critical": 0.3, "high": 0.3, "medium": 0.5, "low": 0.5},
            "confirm": 0.5, "none_gate": 0.65, "net_veto": 0.9, "veto_exempt": ["self_harm"],
            "literal_gate": 0.2, "tier_literal_gate": 0.2,
            "gated_thresholds": {"critical": 0.9, "high": 0.9}, "asking_gate": 0.2, "rescue_gate": 0.7,
            "request_gate": 0.5, "review_ratio": 0.5, "foreign_confidence": 0.6}),
        "literal": head("literal", ["0", "1"], [0.0, 5.0]),
        "asking": head("asking", ["0", "1"], [0.0, 5.0]),
        "category": head("category", ds.CATEGORIES, [0.0] * len(ds.CATEGORIES)),
        "trec_priority": head("trec_priority", ds.TREC_PRIORITIES, [0.0] * 4),
        **{f"f8_{t}": head(f"f8_{t}", ["0", "1"], [0.0, 0.0]) for t in ds.FIGURE_EIGHT_TARGETS},
    }

    class ZeroEncoder:
        def encode(self, texts):
            return np.zeros((len(texts), 384), np.float32)

    return ClassifierStage(HeadSet(heads, {}), ZeroEncoder())


def _classify(stage, text):
    from triage.base import TriageInput, TriageItem

    return stage(TriageItem(input=TriageInput(text=text), text=text, language="en"))


def test_critical_phrase_in_a_clear_non_request_goes_to_review_at_high():
    sure_not_a_request = _stub_classifier([-5.0, -5.0, -5.0, -5.0, 5.0])  # P(none) ≈ 1
    item = _classify(sure_not_a_request, "the bit where he stopped breathing in that film")
    assert item.urgency == "high" and not item.confirmed
    assert any("raises only to high" in r for r in item.reasons)


def test_critical_phrase_raises_to_critical_when_the_model_is_unsure():
    unsure = _stub_classifier([0.0, 0.0, 0.0, 0.0, 1.0])  # P(none) ≈ 0.4
    item = _classify(unsure, "my dad stopped breathing")
    assert item.urgency == "critical"


def _highest(text: str) -> str | None:
    hits = safety_net(text)
    return hits[0][0].urgency if hits else None


@pytest.mark.parametrize("text,category", [
    ("es riecht stark nach Gas im ganzen Haus, wir sind draußen", "hazard"),
    ("fuga de gas en el portal, huele muchísimo", "hazard"),
    ("تسرب غاز في المطبخ والجيران خرجوا", "hazard"),
    ("grosse bagarre devant la gare, ils sont cinq", "violence"),
    ("wypadek na skrzyżowaniu, dwa auta", "traffic"),
    ("c'è un ladro in giardino adesso", "crime"),
    ("mi abuelo está herido en la cabeza", "medical"),
    ("meine Oma (Demenz) ist seit heute früh verschwunden", "missing_person"),
])
def test_serious_findings_in_other_languages_raise_to_high(text, category):
    hits = [(rule.urgency, rule.category) for rule, _ in safety_net(text)]
    assert ("high", category) in hits


@pytest.mark.parametrize("text", [
    "there's an aggression problem on my team lol",
    "we had a long chat about the chore rota",
    "the rook takes the bishop",
    "fumo troppo lately, trying to quit",
    "accident-prone as ever, dropped my coffee",
])
def test_other_language_rules_leave_english_and_ordinary_posts_alone(text):
    assert _highest(text) is None


def _classify_as(stage, text, language, confidence):
    from triage.base import TriageInput, TriageItem

    item = TriageItem(input=TriageInput(text=text), text=text, language=language)
    item.scores["language_confidence"] = confidence
    return stage(item)


def test_a_post_the_english_model_cannot_read_is_never_closed_without_a_person():
    says_none = _stub_classifier([-5.0, -5.0, -5.0, -5.0, 5.0])
    item = _classify_as(says_none, "Der Nachbar antwortet seit gestern nicht mehr", "de", 0.95)
    assert item.urgency == "none" and item.needs_review
    assert any("reads English only" in r for r in item.reasons)


def test_an_unsure_language_guess_does_not_send_a_short_english_post_to_review():
    says_none = _stub_classifier([-5.0, -5.0, -5.0, -5.0, 5.0])
    item = _classify_as(says_none, "Very wet. #yycflood", "cy", 0.43)
    assert item.urgency == "none" and not item.needs_review


@pytest.mark.parametrize("text, found", [
    ("ma fille ne répond plus, 3 rue Victor Hugo", "3 rue Victor Hugo"),
    ("au 12 bis, avenue Foch, vite", "12 bis, avenue F"),
    ("mój syn spadł z drabiny, ulica Polna 9", "ulica Polna 9"),
    ("o meu pai caiu, rua das Flores 30", "rua das Flores 30"),
    ("mein Vater, Hauptstraße 8 in Bonn", "Hauptstraße 8"),
    ("smoke everywhere at 8 Vine St", "8 Vine St"),
])
def test_street_addresses_in_the_supported_languages(text, found):
    from triage.signals import street_address

    assert street_address(text).startswith(found), street_address(text)


@pytest.mark.parametrize("text", ["j'ai 3 chats et 2 chiens", "route 66 is a classic", "in 2 places at once"])
def test_numbers_without_a_street_are_not_addresses(text):
    from triage.signals import street_address

    assert street_address(text) == ""


def test_a_head_trained_on_readings_reads_the_surface_half():
    """A head `flare train` marks `surface` gets the whole reading (sentence | surface) and the
    phrase features; the others get the sentence embedding. Here only the surface half of the
    reading is non-zero and only the urgency head's surface weights are: the post is critical
    through them alone (without the surface half it would be none, by the bias)."""
    import numpy as np

    from triage import datasets as ds
    from triage.base import TriageInput, TriageItem
    from triage.classify import ClassifierStage
    from triage.heads import HeadSet

    stage = _stub_classifier([-5.0, -5.0, -5.0, -5.0, 5.0])  # P(none) ≈ 1 from the bias
    heads = dict(stage.heads.heads)
    features = len(signals.FEATURE_NAMES)
    weight = np.zeros((768 + features, len(ds.URGENCIES)), np.float32)
    weight[384:768, 0] = 1.0  # the surface half votes critical
    heads["urgency"] = type(heads["urgency"])("urgency", ds.URGENCIES, weight, heads["urgency"].bias, 1.0,
                                              {**heads["urgency"].extra, "surface": True})

    class SurfaceEncoder:
        def read(self, texts):
            out = np.zeros((len(texts), 768), np.float32)
            out[:, 384:] = 1.0
            return out

        def encode(self, texts):
            raise AssertionError("a stage with a surface head reads whole readings")

    surfaced = ClassifierStage(HeadSet(heads, {}), SurfaceEncoder())
    text = "the bin men are late again"
    item = surfaced(TriageItem(input=TriageInput(text=text), text=text, language="en"))
    assert item.urgency == "critical" and item.scores["urgency"]["critical"] > 0.99
    assert item.embedding.shape == (384,) and not item.embedding.any()  # grouping's vector: the sentence half
