"""What we say back to the public, and how (DM or minimal public reply).

Privacy rule: a public reply never repeats the reporter's words or location. Silent contacts
(the person says they cannot speak) never get a public reply and never a "call us" line.

Texts live in config/messages.yaml (per language, optionally per service) and are validated
when loaded: every key present, only known placeholders, no phone number in a silent text.
"""
from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from config import ServiceSettings
from models.enums import MessageKind, MessagePurpose

DEFAULT_TEMPLATES_FILE = Path(__file__).resolve().parent.parent / "config" / "messages.yaml"
KEYS = ("receipt", "receipt_silent", "acknowledged", "acknowledged_silent", "redirect", "dm_closed")
PLACEHOLDERS = {"service", "time", "number", "non_number", "non_url"}
# A silent contact may be hiding from someone: never ask them to phone anyone.
SILENT_FORBIDDEN = {"number", "non_number"}


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _check_texts(texts: dict[str, str], where: str, complete: bool) -> None:
    missing = [k for k in KEYS if k not in texts]
    if complete and missing:
        raise ValueError(f"{where}: missing {missing}")
    for key, text in texts.items():
        if key not in KEYS:
            raise ValueError(f"{where}: unknown message {key!r}")
        names = _placeholders(text)
        if names - PLACEHOLDERS:
            raise ValueError(f"{where}.{key}: unknown placeholder(s) {sorted(names - PLACEHOLDERS)}")
        if key.endswith("_silent") and names & SILENT_FORBIDDEN:
            raise ValueError(f"{where}.{key}: a silent contact must not be asked to call")


class Templates(BaseModel):
    model_config = ConfigDict(extra="forbid")

    languages: dict[str, dict[str, str]] = Field(min_length=1)
    services: dict[str, dict[str, dict[str, str]]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid(self) -> Templates:
        if "en" not in self.languages:
            raise ValueError("messages must include English (en): it is the fallback")
        for lang, texts in self.languages.items():
            _check_texts(texts, f"languages.{lang}", complete=True)
        for handle, langs in self.services.items():
            for lang, texts in langs.items():
                _check_texts(texts, f"services.{handle}.{lang}", complete=False)
        return self

    def text(self, service_handle: str, language: str, key: str) -> str:
        lang = (language or "en").split("-")[0].lower()
        override = self.services.get(service_handle, {})
        for candidate in (lang, "en"):
            if key in override.get(candidate, {}):
                return override[candidate][key]
            if candidate in self.languages:
                return self.languages[candidate][key]
        return self.languages["en"][key]


def load_templates(path: Path | None = None) -> Templates:
    """Read and validate a messages file; raises ValueError with the reason when it is invalid."""
    path = Path(path or DEFAULT_TEMPLATES_FILE)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read messages file {path}: {exc}") from exc
    return Templates.model_validate(data)


@lru_cache(maxsize=1)
def default_templates() -> Templates:
    return load_templates()


@dataclass(frozen=True, slots=True)
class Reply:
    purpose: str
    kind: str
    text: str


def render(service: ServiceSettings, key: str, language: str, when: datetime,
           templates: Templates | None = None) -> str:
    templates = templates or default_templates()
    local = when.astimezone(ZoneInfo(service.timezone))
    return templates.text(service.handle, language, key).format(
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
            dm_possible: bool, templates: Templates | None = None) -> Reply | None:
    kind = choose_kind(dm_possible, silent)
    if kind is None:
        return None
    key = "receipt_silent" if silent else "receipt"
    return Reply(MessagePurpose.receipt.value, kind, render(service, key, language, when, templates))


def acknowledged(service: ServiceSettings, language: str, when: datetime, silent: bool,
                 dm_possible: bool, templates: Templates | None = None) -> Reply | None:
    kind = choose_kind(dm_possible, silent)
    if kind is None:
        return None
    key = "acknowledged_silent" if silent else "acknowledged"
    return Reply(MessagePurpose.acknowledged.value, kind, render(service, key, language, when, templates))


def dm_closed(service: ServiceSettings, language: str, when: datetime, silent: bool,
              templates: Templates | None = None) -> Reply | None:
    """The public fallback when a private message could not be delivered: asks the reporter to
    open their DMs or call, and says nothing else. Never for a silent contact."""
    if silent:
        return None
    return Reply(MessagePurpose.receipt.value, MessageKind.public_reply.value,
                 render(service, "dm_closed", language, when, templates))


def redirect(service: ServiceSettings, language: str, when: datetime, dm_possible: bool,
             templates: Templates | None = None) -> Reply:
    """Non-emergency channels, said kindly: DM where possible, else a short public reply."""
    kind = MessageKind.dm.value if dm_possible else MessageKind.public_reply.value
    return Reply(MessagePurpose.redirect.value, kind, render(service, "redirect", language, when, templates))


# ---------------------------------------------------------------- the reporter's answers
# The silent texts ask YES/NO questions; a reporter's reply to one is read as the answer.
QUESTION_READ_SAFELY = "can you read messages safely?"
QUESTION_IN_DANGER = "are you still in danger?"
_QUESTION_KEYS = {"receipt": ("receipt_silent", QUESTION_READ_SAFELY),
                  "acknowledged": ("acknowledged_silent", QUESTION_IN_DANGER)}
_YES = {"yes", "y", "yeah", "yep", "yea", "ya", "si", "sí", "oui", "ja", "tak", "sim", "haan", "han", "ha",
        "ie", "do", "نعم", "ايوه", "ہاں", "हाँ", "हां"}
_NO = {"no", "n", "nope", "nah", "non", "nein", "nie", "nao", "não", "nahi", "nahin", "na", "nage", "naddo",
       "لا", "نہیں", "नहीं"}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def question_asked(purpose: str, text: str, templates: Templates | None = None) -> str:
    """The YES/NO question a message we sent asked, or "" (only the silent texts ask one)."""
    key, question = _QUESTION_KEYS.get(purpose, ("", ""))
    if not key:
        return ""
    templates = templates or default_templates()
    variants = [texts[key] for texts in templates.languages.values()]
    variants += [texts[key] for langs in templates.services.values() for texts in langs.values() if key in texts]
    for template in variants:
        tail = template.rsplit("}", 1)[-1].strip()  # the part after the last placeholder
        if tail and text.strip().endswith(tail):
            return question
    return ""


def read_answer(text: str, language: str = "en") -> str | None:
    """"yes" / "no" when a short reply starts with (or is) an answer word in any supported
    language ("YES", "si, todavía", "non merci", "نعم"), else None. `language` is kept for callers
    that know it; the word lists are shared because a frightened reporter mixes languages."""
    del language
    folded = unicodedata.normalize("NFKC", text or "").lower()
    words = _WORD.findall(folded)
    if not words or len(words) > 8:
        return None
    first = words[0]
    if first in _YES:
        return "yes"
    if first in _NO:
        return "no"
    return None
