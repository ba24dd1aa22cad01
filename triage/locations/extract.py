"""Location-mention extraction: regex patterns + pyap addresses + spaCy NER (ner component only).

Spans are merged so each character belongs to at most one mention; on overlap the more specific
kind wins (a lat/long beats a postcode beats an address beats a bare place name), then the
longer span. Geocoding happens in a later stage.
"""
from __future__ import annotations

import re
import threading
from functools import lru_cache

from triage.locations.learned_ner import load_location_ner, load_stock_ner
from triage.locations.patterns import NUMBERED_ADDRESS, Span, find_pattern_spans

NER_LABELS = {"GPE": "place", "LOC": "place", "FAC": "landmark"}
# Lower number = more specific; decides which of two overlapping spans is kept.
# A gazetteer/NER place beats the "near the X" landmark regex: the name is known to be a place.
SPECIFICITY = {"latlon": 0, "what3words": 1, "postcode": 2, "address": 3, "junction": 4,
               "corner": 5, "zip": 6, "street": 7, "place": 8, "landmark": 9, "road": 10}
_CAPITALISED_AFTER_START = re.compile(r"(?<=.)\b[A-Z][A-Za-z]")
_STORM_NAME = re.compile(r"\b(?:hurricane|storm|cyclone|typhoon|tropical storm)\s+$", re.I)
# Storms named in the post: "Hurricane Florence", "#HurricaneIrma", "Cyclone Idai's". Every other
# bare use of that name in the same post is the storm too ("damage from Florence").
_NAMED_STORM = re.compile(r"(?:\b|#)(?:hurricane|cyclone|typhoon|(?:tropical\s*)?storm)\s*"
                          r"([A-Z][a-z]+)\b", re.I)
# Events, not places: "the Camp Fire", "Hurricane Harvey", "Tsunami"; "RT" is the retweet marker.
_EVENT_SPAN = re.compile(r"^(?:(?:hurricane|cyclone|typhoon|tropical storm|storm)\b.*"
                         r"|.*\b(?:fires?|wildfires?|earthquakes?|quakes?|tsunamis?|floods?|flooding)"
                         r"|tsunami|hurricane|cyclone|earthquake|rt|magnitude.*)$", re.I)
# "Northern California" → "California": the region word only qualifies the place (this is also
# how location-mention datasets mark it); fixed names such as "Northern Ireland" keep it.
_REGION_WORD = re.compile(r"^(?:northern|southern|eastern|western|central|"
                          r"north-?eastern|north-?western|south-?eastern|south-?western|"
                          r"northeast|northwest|southeast|southwest)\s+", re.I)
_KEEP_REGION_WORD = re.compile(r"^(?:northern (?:ireland|territory|cape|mariana)|central (?:america|"
                               r"african|asia|europe|park|valley)|"
                               r"western (?:australia|sahara|cape|isles)|"
                               r"eastern (?:cape|europe)|southern (?:africa|ocean))", re.I)
_LEADING_THE = re.compile(r"^the\s+", re.I)
# "U.S." and "N.C." keep their final full stop.
_DOTTED_ABBREVIATION = re.compile(r"(?:^|[^A-Za-z])(?:[A-Za-z]\.)+[A-Za-z]\.$")
_lock = threading.Lock()
_nlp = None


def get_nlp():
    """The location NER: the stock NER component tuned on IDRISI-R train (learned_ner; label
    LOC for every kind of location mention), or the stock one where the tuned weights are
    missing. NER only: about twice the speed of the full model."""
    global _nlp
    with _lock:
        if _nlp is None:
            _nlp = load_location_ner() or load_stock_ner()
    return _nlp


def needs_ner(text: str) -> bool:
    """The NER finds nothing in all-lowercase text, so skip it there (it is the slow part)."""
    return bool(_CAPITALISED_AFTER_START.search(text[:2000]))


def ner_spans(doc) -> list[Span]:
    spans = []
    for ent in doc.ents:
        kind = NER_LABELS.get(ent.label_)
        if kind is None:
            continue
        if _STORM_NAME.search(doc.text[max(0, ent.start_char - 20):ent.start_char]):
            continue  # "Hurricane Florence" names a storm, not the city
        if "@" in ent.text or ent.text.startswith("RT "):
            continue  # a user handle
        spans.append((ent.start_char, ent.end_char, kind, 0.6))
    return spans


_PYAP_COUNTRIES = ("GB", "US")


@lru_cache(maxsize=None)
def _pyap_pattern(country: str) -> re.Pattern[str]:
    """pyap's full-address pattern for a country, compiled once. pyap.parse hands the pattern's
    text to `re` on every call, and once other work has cycled re's cache of compiled patterns
    it compiled the pattern again: about 30 ms for each country, on every post that names a
    numbered street."""
    import pyap.parser
    import pyap.utils

    return re.compile(pyap.parser.AddressParser(country=country).rules, pyap.utils.DEFAULT_FLAGS)


def pyap_spans(text: str) -> list[Span]:
    """Full postal addresses ("12 High Street, Leeds LS1 4AP") that our street regex cuts short:
    pyap's patterns, on the text as pyap normalises it. Only run where a numbered street is present."""
    if not NUMBERED_ADDRESS.search(text):
        return []
    import pyap.parser

    clean = pyap.parser.AddressParser._normalize_string(text)
    spans = []
    for country in _PYAP_COUNTRIES:
        for match in _pyap_pattern(country).finditer(clean):
            end = min(match.end(), len(text))  # offsets are the normalised text's: one can fall past the end
            if end > match.start() >= 0:
                spans.append((match.start(), end, "address", 0.9))
    return spans


def merge_spans(spans: list[Span]) -> list[Span]:
    ranked = sorted(set(spans), key=lambda s: (SPECIFICITY.get(s[2], 99), -(s[1] - s[0]), s[0]))
    kept: list[Span] = []
    for span in ranked:
        start, end = span[0], span[1]
        if any(start < k[1] and k[0] < end for k in kept):
            # An address that fully contains a kept street/place span replaces it.
            inner = [k for k in kept if start <= k[0] and k[1] <= end]
            overlapping = [k for k in kept if start < k[1] and k[0] < end]
            if span[2] == "address" and inner and inner == overlapping and all(
                    SPECIFICITY.get(k[2], 99) > SPECIFICITY["postcode"] for k in inner):
                kept = [k for k in kept if k not in inner] + [span]
            continue
        kept.append(span)
    return sorted(kept)


_TRAILING_JUNK = re.compile(r"(?:['’]s|\s+w/|\s+[-–—]+)$")


def _trim(text: str, span: Span) -> Span:
    start, end, kind, conf = span
    if kind in ("place", "landmark"):
        m = _TRAILING_JUNK.search(text, start, end)
        if m and m.start() > start:
            end = m.start()
    while end > start and text[end - 1] in " ,.;:!?":
        if text[end - 1] == "." and _DOTTED_ABBREVIATION.search(text[start:end]):
            break
        end -= 1
    while start < end and text[start] in " ,.;:":
        start += 1
    return start, end, kind, conf


def extract_spans(text: str, ner: list[Span] | None = None, extra: list[Span] | None = None,
                  pattern_spans: list[Span] | None = None) -> list[Span]:
    """All location spans in `text`; `ner` gives the NER's places (ner_spans of a spaCy Doc of
    the text); `extra` adds gazetteer finds (places, local landmarks); `pattern_spans` passes
    regex finds already computed for this text."""
    if pattern_spans is None:
        pattern_spans = list(find_pattern_spans(text))
    spans = pattern_spans + pyap_spans(text) + list(extra or [])
    if ner is not None:
        known = [(s[0], s[1]) for s in (extra or []) if s[2] == "place"]
        for span in ner:
            # "Paradise California", "Houston Texas": two known places, not one.
            if sum(span[0] <= a and b <= span[1] for a, b in known) < 2:
                spans.append(span)
    spans = [_tidy(text, s) for s in spans]
    if extra:
        # "Port St. Lucie" is a town, not "Port St" (street).
        places = [(s[0], s[1]) for s in extra if s[2] == "place"]
        spans = [s for s in spans if s[2] != "street" or not any(
            a <= s[0] and s[1] <= b and (a, b) != (s[0], s[1]) for a, b in places)]
    storms = set()
    if _STORM_WORD.search(text):
        storms = {m.group(1).lower() for m in _NAMED_STORM.finditer(text)}
    spans = [s for s in spans if s[1] > s[0] and not (
        s[2] in ("place", "landmark") and _is_event(text[s[0]:s[1]], storms))]
    kept = [s for s in (_trim(text, s) for s in merge_spans(spans)) if s[1] > s[0]]
    return _repeat_mentions(text, kept)


def _repeat_mentions(text: str, kept: list[Span]) -> list[Span]:
    """A name the NER recognised once is a place wherever else the post repeats it ("Kerala
    floods ... #Kerala")."""
    names = {text[s:e] for s, e, kind, _ in kept if kind == "place" and e - s >= 4}
    added: list[Span] = []
    for name in names:
        start = text.find(name)
        while start >= 0:
            end = start + len(name)
            if (not (start and (text[start - 1].isalnum() or text[start - 1] in "_@/."))
                    and not (end < len(text) and (text[end].isalnum() or text[end] == "_"))
                    and not any(start < k[1] and k[0] < end for k in kept + added)):
                added.append((start, end, "place", 0.5))
            start = text.find(name, end)
    return sorted(kept + added) if added else kept


_STORM_WORD = re.compile(r"hurricane|cyclone|typhoon|storm", re.I)


def _is_event(name: str, storms: set[str]) -> bool:
    if _EVENT_SPAN.match(name):
        return True
    if storms:
        bare = re.sub(r"(?:['’]s|s['’])$", "", name).lower()
        return bare in storms
    return False


def _tidy(text: str, span: Span) -> Span:
    """Drop a leading "the" and a region word ("Northern California" → "California")."""
    start, end, kind, conf = span
    if kind not in ("place", "landmark"):
        return span
    name = text[start:end]
    m = _LEADING_THE.match(name)
    if m and m.end() < len(name):
        start += m.end()
        name = name[m.end():]
    m = _REGION_WORD.match(name)
    if m and m.end() < len(name) and name[m.end()].isupper() and not _KEEP_REGION_WORD.match(name):
        start += m.end()
    return start, end, kind, conf
