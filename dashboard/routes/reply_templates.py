"""Canned replies a dispatcher can start from, in the reporter's language.

Every template is generic on purpose: none may carry the reporter's words, location or any
detail of the incident, because a reply can end up public when a DM is impossible. The languages
are those Flare replies in (the automatic replies and the share page): the reporter's, as triage
read their post, is offered first; English is always there.
"""
from __future__ import annotations

from dataclasses import dataclass

from config import ServiceSettings

LANGUAGE_NAMES = {"en": "English", "es": "Español", "fr": "Français", "de": "Deutsch", "ar": "العربية",
                  "ur": "اردو"}
RTL = {"ar", "ur"}


@dataclass(frozen=True, slots=True)
class ReplyTemplate:
    key: str
    label: str
    texts: dict[str, str]  # language code -> text

    @property
    def text(self) -> str:
        return self.texts["en"]

    def text_in(self, language: str) -> str:
        return self.texts.get(reply_language(language), self.texts["en"])


_LABELS = {"help_coming": "Help is on the way", "ask_location": "Ask for location",
           "are_you_safe": "Are you safe?", "call_if_you_can": "Call if you can",
           "still_working": "Still working on it"}

# The YES/NO answers asked for are words escalation.messages.read_answer understands.
_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "help_coming": "Help is on the way. Stay where you are if it is safe to do so, and keep your phone with you.",
        "ask_location": "We need to know where you are. A street name, a landmark, a postcode or what you can see "
                        "around you all help. Reply here when it is safe.",
        "are_you_safe": "Are you safe right now? Reply YES or NO. You do not need to say anything else.",
        "call_if_you_can": "If you can, call {number} now. If you cannot speak, keep messaging us here.",
        "still_working": "We are still working on your report. Reply here if anything changes.",
    },
    "es": {
        "help_coming": "La ayuda está en camino. Quédese donde está si es seguro hacerlo y tenga su teléfono con usted.",
        "ask_location": "Necesitamos saber dónde está. Nos sirve el nombre de una calle, un lugar conocido, un "
                        "código postal o lo que ve a su alrededor. Responda aquí cuando sea seguro.",
        "are_you_safe": "¿Está a salvo ahora mismo? Responda SÍ o NO. No necesita decir nada más.",
        "call_if_you_can": "Si puede, llame ahora al {number}. Si no puede hablar, siga escribiéndonos aquí.",
        "still_working": "Seguimos atendiendo su aviso. Responda aquí si algo cambia.",
    },
    "fr": {
        "help_coming": "Les secours sont en route. Restez où vous êtes si vous pouvez le faire sans danger, et "
                       "gardez votre téléphone avec vous.",
        "ask_location": "Nous devons savoir où vous êtes. Un nom de rue, un point de repère, un code postal ou ce "
                        "que vous voyez autour de vous : tout nous aide. Répondez ici quand vous pouvez le faire "
                        "sans danger.",
        "are_you_safe": "Êtes-vous en sécurité en ce moment ? Répondez OUI ou NON. Vous n'avez rien d'autre à dire.",
        "call_if_you_can": "Si vous le pouvez, appelez le {number} maintenant. Si vous ne pouvez pas parler, "
                           "continuez à nous écrire ici.",
        "still_working": "Nous traitons toujours votre signalement. Répondez ici si quelque chose change.",
    },
    "de": {
        "help_coming": "Hilfe ist unterwegs. Bleiben Sie, wo Sie sind, wenn es sicher ist, und behalten Sie Ihr "
                       "Telefon bei sich.",
        "ask_location": "Wir müssen wissen, wo Sie sind. Ein Straßenname, ein bekannter Ort, eine Postleitzahl "
                        "oder was Sie um sich herum sehen – alles hilft. Antworten Sie hier, sobald es sicher ist.",
        "are_you_safe": "Sind Sie gerade in Sicherheit? Antworten Sie JA oder NEIN. Mehr müssen Sie nicht schreiben.",
        "call_if_you_can": "Wenn Sie können, rufen Sie jetzt {number} an. Wenn Sie nicht sprechen können, "
                           "schreiben Sie uns weiter hier.",
        "still_working": "Wir kümmern uns weiter um Ihre Meldung. Antworten Sie hier, wenn sich etwas ändert.",
    },
    "ar": {
        "help_coming": "المساعدة في الطريق إليك. ابقَ في مكانك إن كان ذلك آمنًا، واحتفظ بهاتفك معك.",
        "ask_location": "نحتاج أن نعرف مكانك. اسم شارع أو معلم قريب أو رمز بريدي أو ما تراه حولك، كل ذلك "
                        "يساعدنا. ردّ هنا عندما يكون ذلك آمنًا.",
        "are_you_safe": "هل أنت بأمان الآن؟ ردّ بكلمة نعم أو لا. لا تحتاج أن تقول أي شيء آخر.",
        "call_if_you_can": "إن استطعت، اتصل الآن بالرقم {number}. إن لم تستطع الكلام، واصل مراسلتنا هنا.",
        "still_working": "ما زلنا نتابع بلاغك. ردّ هنا إذا تغيّر أي شيء.",
    },
    "ur": {
        "help_coming": "مدد آ رہی ہے۔ اگر محفوظ ہو تو جہاں ہیں وہیں رہیں، اور اپنا فون اپنے پاس رکھیں۔",
        "ask_location": "ہمیں جاننا ہے کہ آپ کہاں ہیں۔ گلی کا نام، کوئی مشہور جگہ، پوسٹ کوڈ یا آپ کے آس پاس جو "
                        "نظر آ رہا ہے، سب سے مدد ملتی ہے۔ جب محفوظ ہو تو یہاں جواب دیں۔",
        "are_you_safe": "کیا آپ اس وقت محفوظ ہیں؟ ہاں یا نہیں میں جواب دیں۔ آپ کو اور کچھ کہنے کی ضرورت نہیں۔",
        "call_if_you_can": "اگر ممکن ہو تو ابھی {number} پر کال کریں۔ اگر آپ بول نہیں سکتے تو یہیں ہمیں پیغام "
                           "بھیجتے رہیں۔",
        "still_working": "ہم ابھی بھی آپ کی اطلاع پر کام کر رہے ہیں۔ اگر کچھ بدلے تو یہاں جواب دیں۔",
    },
}


def reply_language(language: str | None) -> str:
    """The template language for a triage language code ("es", "pt-BR", "und"...): English if none."""
    code = (language or "").split("-")[0].lower()
    return code if code in _TEXTS else "en"


def reply_templates(service: ServiceSettings) -> list[ReplyTemplate]:
    return [ReplyTemplate(key, label, {lang: texts[key].format(number=service.emergency_number, service=service.name)
                                       for lang, texts in _TEXTS.items()})
            for key, label in _LABELS.items()]
