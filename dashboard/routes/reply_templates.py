"""Canned replies a dispatcher can start from.

Every template is generic on purpose: none may carry the reporter's words, location or any
detail of the incident, because a reply can end up public when a DM is impossible.
"""
from __future__ import annotations

from dataclasses import dataclass

from config import ServiceSettings


@dataclass(frozen=True, slots=True)
class ReplyTemplate:
    key: str
    label: str
    text: str


_TEMPLATES = [
    ("help_coming", "Help is on the way",
     "Help is on the way. Stay where you are if it is safe to do so, and keep your phone with you."),
    ("ask_location", "Ask for location",
     "We need to know where you are. A street name, a landmark, a postcode or what you can see "
     "around you all help. Reply here when it is safe."),
    ("are_you_safe", "Are you safe?",
     "Are you safe right now? Reply YES or NO. You do not need to say anything else."),
    ("call_if_you_can", "Call if you can",
     "If you can, call {number} now. If you cannot speak, keep messaging us here."),
    ("still_working", "Still working on it",
     "We are still working on your report. Reply here if anything changes."),
]


def reply_templates(service: ServiceSettings) -> list[ReplyTemplate]:
    return [ReplyTemplate(key, label, text.format(number=service.emergency_number, service=service.name))
            for key, label, text in _TEMPLATES]
