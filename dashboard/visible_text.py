"""Invisible characters made visible wherever the dashboard shows text from outside.

A right-to-left override (U+202E) makes a browser draw "call 999 at 12 High St" from characters
stored in another order, and a zero-width space inside "he\u200blp" looks like "help" while triage
read two words. The dispatcher must see what triage read, so every bidirectional control and
invisible character is replaced by a visible marker (⟨RLO⟩, ⟨ZWSP⟩, or ⟨U+XXXX⟩). One function,
`visible`, does it: the dashboard's templates apply it to everything they output (a Jinja
finalize), and the JSON the map draws its popups from passes through it too.

Kept as they are, because real writing needs them and they hide nothing: a zero-width joiner or
non-joiner between two characters neither of which is a Latin, Greek or Cyrillic letter or a digit
(emoji sequences, Arabic and Indic scripts), and tag characters inside a flag emoji sequence.
"""
from __future__ import annotations

import re
import unicodedata

from markupsafe import Markup

NAMES = {
    "\u202a": "LRE", "\u202b": "RLE", "\u202c": "PDF", "\u202d": "LRO", "\u202e": "RLO",
    "\u2066": "LRI", "\u2067": "RLI", "\u2068": "FSI", "\u2069": "PDI",
    "\u200e": "LRM", "\u200f": "RLM", "\u061c": "ALM",
    "\u200b": "ZWSP", "\u200c": "ZWNJ", "\u200d": "ZWJ", "\u2060": "WJ", "\ufeff": "ZWNBSP",
    "\u00ad": "SHY", "\u180e": "MVS", "\u034f": "CGJ",
}
# Other characters that draw nothing: invisible operators, Hangul fillers, interlinear annotation,
# deprecated format characters, tags.
OTHER_INVISIBLE = "\u2061-\u2064\u206a-\u206f\u115f\u1160\u3164\uffa0\ufff9-\ufffb\U000e0000-\U000e007f"
JOINERS = {"\u200c", "\u200d"}
FLAG_SEQUENCE = re.compile("\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f")
HIDDEN = re.compile("[" + "".join(NAMES) + OTHER_INVISIBLE + "]")
CONFUSABLE_SCRIPTS = ("LATIN", "GREEK", "CYRILLIC", "DIGIT", "FULLWIDTH LATIN")


def _hides_a_word(text: str, at: int) -> bool:
    """A joiner next to a Latin/Greek/Cyrillic letter or a digit only splits a word invisibly."""
    for i in (at - 1, at + 1):
        if i < 0 or i >= len(text):
            return True
        if unicodedata.name(text[i], "").startswith(CONFUSABLE_SCRIPTS) or text[i].isspace():
            return True
    return False


def marker(ch: str) -> str:
    name = NAMES.get(ch)
    return f"⟨{name}⟩" if name else f"⟨U+{ord(ch):04X}⟩"


def visible(text: str) -> str:
    """`text` with every bidirectional control and invisible character shown as a marker."""
    if not text or HIDDEN.search(text) is None:
        return text
    flags = {i for m in FLAG_SEQUENCE.finditer(text) for i in range(m.start() + 1, m.end())}
    out = []
    for i, ch in enumerate(text):
        if HIDDEN.fullmatch(ch) and i not in flags and (ch not in JOINERS or _hides_a_word(text, i)):
            out.append(marker(ch))
        else:
            out.append(ch)
    return "".join(out)


def finalize(value):
    """Jinja finalize: every `{{ … }}` output goes through `visible`. Markup (a macro's HTML) stays
    Markup: the markers contain no HTML-special character."""
    if isinstance(value, Markup):
        return Markup(visible(str(value)))
    if isinstance(value, str):
        return visible(value)
    return value
