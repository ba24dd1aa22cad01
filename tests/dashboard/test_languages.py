"""Reply templates, the share page and the link message in the reporter's language."""
from __future__ import annotations

import re
import string
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session, select

from dashboard.routes.reply_templates import LANGUAGE_NAMES, _TEXTS, reply_language, reply_templates
from dashboard.share import links, texts
from escalation.messages import default_templates, read_answer
from escalation.service import open_incident
from models import OutboundMessage
from models.domain import TriageOutput
from models.media import ShareLink
from models.tables import Post, TriageRecord
from tests.dashboard import test_dashboard_browser as base
from tests.dashboard.test_dashboard_browser import CHROMIUM, SHOTS, sign_in

browser = base.browser

REPORTS = {
    "es": "ayuda por favor hay un incendio en mi casa y estamos atrapados en el segundo piso",
    "ar": "النجدة يوجد حريق في المبنى ونحن محاصرون في الطابق الثاني",
    "de": "Hilfe, es brennt in unserem Haus und wir sind im zweiten Stock eingeschlossen",
}


def reporter_incident(ctx, language: str, ext: str) -> tuple[int, int]:
    """An open incident whose one report triage read as `language`."""
    with Session(ctx.engine, expire_on_commit=False) as s:
        post = Post(platform="x", external_id=ext, author_id=f"a-{ext}", author_handle=f"@rep_{ext}",
                    text=REPORTS[language], is_dm=True)
        s.add(post)
        s.flush()
        out = TriageOutput(urgency="critical", category="fire", confidence=0.9, language=language)
        s.add(TriageRecord(post_id=post.id, urgency="critical", category="fire", confidence=0.9, language=language))
        incident = open_incident(s, post, out)
        s.commit()
        return incident.id, post.id


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_language_has_every_text_with_the_same_placeholders():
    for table in (texts.TEXTS, _TEXTS):
        english = table["en"]
        for lang, block in table.items():
            assert set(block) == set(english), lang
            for key, text in block.items():
                assert text.strip() and _placeholders(text) == _placeholders(english[key]), (lang, key)
                if lang != "en":
                    assert text != english[key] or key == "title", (lang, key)  # translated, not copied
    assert set(texts.TEXTS) == set(_TEXTS) == set(LANGUAGE_NAMES) == set(default_templates().languages)
    assert {"es", "fr", "de", "ar", "ur"} <= set(_TEXTS)


@pytest.mark.parametrize("lang", sorted(_TEXTS))
def test_the_yes_no_questions_are_answerable_in_their_own_language(lang):
    """'Reply YES or NO' names answer words Flare reads as yes and no (templates and automatic replies)."""
    auto = default_templates().languages[lang]
    for question in (_TEXTS[lang]["are_you_safe"], auto["receipt_silent"], auto["acknowledged_silent"]):
        words = re.findall(r"[^\W\d_]+", question)
        assert any(read_answer(w) == "yes" for w in words), (lang, question)
        assert any(read_answer(w) == "no" for w in words), (lang, question)


def test_unknown_or_regional_codes_fall_back_sensibly():
    assert reply_language("es-MX") == "es" and reply_language("und") == "en" and reply_language("") == "en"
    assert texts.page_language("pt") == "en" and texts.direction("ar") == "rtl" and texts.direction("fr") == "ltr"


def test_templates_carry_the_service_number_and_no_reporter_detail(settings):
    for t in reply_templates(settings.service):
        for lang, text in t.texts.items():
            assert "{" not in text, (t.key, lang)
        assert t.text_in("es") == t.texts["es"] and t.text_in("pt") == t.texts["en"]
    call = next(t for t in reply_templates(settings.service) if t.key == "call_if_you_can")
    assert all(settings.service.emergency_number in text for text in call.texts.values())


def test_link_message_and_consent_are_in_the_reporters_language(ctx, users):
    incident_id, post_id = reporter_incident(ctx, "es", "l-es")
    with Session(ctx.engine, expire_on_commit=False) as s:
        created = links.create_link(s, ctx.settings, incident_id, "dispatcher", lambda p: True)
        s.commit()
        message = s.exec(select(OutboundMessage).where(OutboundMessage.id == created.message.id)).one()
        assert message.text.startswith(f"{ctx.settings.service.name} le pregunta si puede compartir")
        assert created.url in message.text and "No se comparte nada sin su permiso" in message.text
        link = s.get(ShareLink, created.link.id)
        links.record_consent(s, ctx.settings, link, "Mozilla/5.0 (Android)")
        assert s.get(ShareLink, created.link.id).consent_text.startswith("Acepto compartir con")


@pytest.mark.browser
@pytest.mark.timeout(120)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")
def test_templates_and_share_page_follow_the_reporter_in_chromium(ctx, users, server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    es_incident, _ = reporter_incident(ctx, "es", "b-es")
    ar_incident, _ = reporter_incident(ctx, "ar", "b-ar")

    # The dispatcher's reply templates start in the reporter's language; English is one click away.
    context, page = sign_in(browser, server, "dispatcher")
    page.goto(f"/incidents/{es_incident}")
    assert page.locator("#reply-language").input_value() == "es"
    page.select_option("#reply-template", "ask_location")
    assert page.locator("#reply-text").input_value().startswith("Necesitamos saber dónde está.")
    page.select_option("#reply-language", "en")
    assert page.locator("#reply-text").input_value().startswith("We need to know where you are.")
    page.fill("#reply-text", "Mi propio mensaje")
    page.select_option("#reply-language", "fr")
    assert page.locator("#reply-text").input_value() == "Mi propio mensaje"  # their own words are kept
    context.close()

    with Session(ctx.engine, expire_on_commit=False) as s:
        es_url = links.create_link(s, ctx.settings, es_incident, "dispatcher", lambda p: True).url
        ar_url = links.create_link(s, ctx.settings, ar_incident, "dispatcher", lambda p: True).url
        s.commit()
    es_url, ar_url = (server + urlsplit(u).path for u in (es_url, ar_url))  # the test server's address

    # The Spanish reporter's page is in Spanish, agreement included; the script's lines too.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True)
    p = phone.new_page()
    p.goto(es_url)
    assert p.locator("html").get_attribute("lang") == "es"
    assert "No se comparte nada hasta que usted acepte." in p.inner_text("#consent")
    assert p.locator("blockquote.agreement").inner_text().startswith("Acepto compartir con")
    p.click("#agree")
    p.locator("#btn-location").wait_for()
    assert p.locator("#btn-stop").inner_text() == "Dejar de compartir"
    p.click("#btn-stop")
    p.locator("#stopped h1", has_text="Ha dejado de compartir").wait_for()
    phone.close()

    # Arabic reads right to left, at phone size and at 200 % zoom, without sideways scrolling (one
    # device: the link binds to the first device that opens it).
    device = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    p = device.new_page()
    p.goto(ar_url)
    for name, viewport in (("share-ar-phone.png", {"width": 390, "height": 844}),
                           ("share-ar-zoom200.png", {"width": 640, "height": 400})):
        p.set_viewport_size(viewport)
        assert p.locator("html").get_attribute("dir") == "rtl" and p.locator("html").get_attribute("lang") == "ar"
        assert "لا تتم مشاركة أي شيء قبل موافقتك." in p.inner_text("#consent")
        width = p.evaluate("document.documentElement.clientWidth")
        assert p.evaluate("document.documentElement.scrollWidth") <= width + 1
        box = p.locator("#agree").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1
        p.screenshot(path=str(SHOTS / name), full_page=True)
    device.close()
