"""Language identification over the restricted set."""
from __future__ import annotations

import pytest

from triage.language import detect_language


@pytest.mark.parametrize("text, code", [
    ("help my dad is not breathing please send an ambulance", "en"),
    ("au secours il y a un incendie dans notre immeuble", "fr"),
    ("hilfe ein mann mit einem messer in der station", "de"),
    ("النار في المنزل ساعدونا", "ar"),
    # Hindi/Urdu in Latin script: lingua has no model for it and called these English.
    ("bhai ne chuha maar dawa pee li, ulti kar raha hai aur aankhen band ho rahi hain", "hi"),
    ("ammi gir gayi hai aur hosh nahi aa raha, jaldi koi bhejo", "hi"),
    # English with a word that is also Hindustani ("main", "ho", "se") stays English.
    ("the main road is flooded and the car is stuck, we are on the roof", "en"),
    ("ho ho ho merry christmas to all the paramedics on shift tonight", "en"),
])
def test_detects_language(text, code):
    assert detect_language(text)[0] == code


@pytest.mark.parametrize("text", ["", "😂😂", "12 34", "ok"])
def test_too_little_text_is_undetermined(text):
    assert detect_language(text)[0] == "und"
