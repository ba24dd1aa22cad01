"""What we say back to the public, and how (DM or minimal public reply).

Privacy rule: a public reply never repeats the reporter's words or location. Silent contacts
(the person says they cannot speak) never get a public reply and never a "call us" line.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from config import ServiceSettings
from models.enums import MessageKind, MessagePurpose

TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "receipt": "Your message to {service} was received at {time}. If you can, call {number}.",
        "receipt_silent": "We have your message ({time}) and help is being arranged. "
                          "You do not need to call. If it is safe, reply YES or NO: are you able to read messages?",
        "acknowledged": "A dispatcher has seen your message.",
        "redirect": "Thanks for contacting {service}. For non-emergencies please use {non_number} "
                    "or {non_url}. In an emergency call {number}.",
    },
    "es": {
        "receipt": "Su mensaje a {service} se recibió a las {time}. Si puede, llame al {number}.",
        "receipt_silent": "Tenemos su mensaje ({time}) y se está organizando ayuda. No necesita llamar. "
                          "Si es seguro, responda SÍ o NO: ¿puede leer mensajes?",
        "acknowledged": "Un operador ha visto su mensaje.",
        "redirect": "Gracias por contactar con {service}. Para asuntos no urgentes use {non_number} "
                    "o {non_url}. En una emergencia llame al {number}.",
    },
}


@dataclass(frozen=True, slots=True)
class Reply:
    purpose: str
    kind: str
    text: str


def render(service: ServiceSettings, key: str, language: str, when: datetime) -> str:
    lang = language if language in TEMPLATES else "en"
    local = when.astimezone(ZoneInfo(service.timezone))
    return TEMPLATES[lang][key].format(
        service=service.name, time=local.strftime("%H:%M"), number=service.emergency_number,
        non_number=service.non_emergency_number, non_url=service.non_emergency_url,
    )


def choose_kind(dm_possible: bool, silent: bool) -> str | None:
    """DM first; public reply only when no DM is possible and the person is not silent."""
    if dm_possible:
        return MessageKind.dm.value
    if silent:
        return None  # never answer a silent contact in public; the dispatcher decides how to reach them
    return MessageKind.public_reply.value


def receipt(service: ServiceSettings, language: str, when: datetime, silent: bool,
            dm_possible: bool) -> Reply | None:
    kind = choose_kind(dm_possible, silent)
    if kind is None:
        return None
    key = "receipt_silent" if silent else "receipt"
    return Reply(MessagePurpose.receipt.value, kind, render(service, key, language, when))


def acknowledged(service: ServiceSettings, language: str, when: datetime, silent: bool,
                 dm_possible: bool) -> Reply | None:
    kind = choose_kind(dm_possible, silent)
    if kind is None:
        return None
    return Reply(MessagePurpose.acknowledged.value, kind, render(service, "acknowledged", language, when))


def redirect(service: ServiceSettings, language: str, when: datetime, dm_possible: bool) -> Reply:
    kind = MessageKind.dm.value if dm_possible else MessageKind.public_reply.value
    return Reply(MessagePurpose.redirect.value, kind, render(service, "redirect", language, when))
