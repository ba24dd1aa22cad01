"""Text clean-up before any pattern or model sees the post.

Location offsets reported downstream refer to this normalised text (TriageItem.text), which is
what officers see highlighted; the raw post is kept unchanged elsewhere.
"""
from __future__ import annotations

import re
import unicodedata

from triage.base import TriageItem

MAX_CHARS = 5_000  # a 100 KB post is spam or a paste; the ask is in the first few thousand chars
# Bidi overrides/isolates and zero-width characters hide words from patterns ("sta\u200bbbed").
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.I)
# An @handle: X's and Reddit's (letters, digits, underscore) or a Bluesky handle, a domain name
# ("@jo.bsky.social", "@news.example.org"): its labels would otherwise stay in the text, and every
# post naming a Bluesky account would read alike. A trailing full stop is not part of it.
_HANDLE = re.compile(r"(?<![\w/])@(?:(?:[\w-]+\.)+[a-z][a-z0-9-]*[a-z0-9]|\w{1,30})")
_EMOJI = re.compile(
    "[\U0001F000-\U0001FAFF\U00002600-\U000027BF\U0001F1E6-\U0001F1FF\uFE0E\uFE0F\u20E3"
    "\U000E0020-\U000E007F]+")
# Laughing emoji are the commonest marker of a joke; counted before emoji are removed.
_LAUGH = re.compile("[\U0001F602\U0001F923\U0001F606\U0001F639\U0001F480\U0001F605\U0001F62D]")
_SPACES = re.compile(r"[ \t\u00a0]+")


def normalise_text(raw: str) -> tuple[str, dict[str, int]]:
    """Return (clean text, counts of what was removed) for reasons and signals."""
    text = raw[: MAX_CHARS * 2]
    text = unicodedata.normalize("NFKC", text)
    removed = {"laugh_emoji": len(_LAUGH.findall(text))}
    for name, pattern in (("invisible", _INVISIBLE), ("control", _CONTROL)):
        text, n = pattern.subn("", text)
        removed[name] = n
    # URLs, @handles and emoji become a space so neighbouring words do not merge.
    for name, pattern in (("url", _URL), ("handle", _HANDLE), ("emoji", _EMOJI)):
        text, n = pattern.subn(" ", text)
        removed[name] = n
    text = _SPACES.sub(" ", text).strip()
    if len(text) > MAX_CHARS:
        removed["truncated_chars"] = len(text) - MAX_CHARS
        text = text[:MAX_CHARS]
    # Lone surrogates cannot be encoded and would break tokenizers downstream.
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text, {k: v for k, v in removed.items() if v}


class NormaliseStage:
    name = "normalise"

    def __call__(self, item: TriageItem) -> TriageItem:
        item.text, removed = normalise_text(item.input.text or "")
        if removed:
            item.signals["normalised"] = removed
        if "truncated_chars" in removed:
            item.undecided.append(f"text truncated to {MAX_CHARS} characters")
        if not item.text.strip():
            item.undecided.append("no text left after clean-up (empty, emoji-only or links only)")
        return item
