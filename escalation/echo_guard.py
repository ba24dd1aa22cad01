"""The public-reply echo guard: a public reply must never repeat what the reporter told us.

A public reply is read by everyone who follows the thread. Repeating the reporter's words, the
place they gave or a phone number they wrote tells the world who called and where they are (an
abuser reading the reply, a crowd going to the scene). `echoes_reporter` says why a reply would
do that, and `post_actions.reply` refuses such a public reply; private messages are not checked.

What counts as a repeat:
- four consecutive words of any of the reporter's posts;
- a place the reporter gave (from triage or the platform's geotag): the whole place, or any two
  consecutive words of it that are not both generic ("Baker Street" in "12 Baker Street, Leeds");
  street-type and direction abbreviations match their full words ("Baker St", "Station Rd",
  "5th Ave", "St Mary's" for "Saint Mary's");
- a phone number written in the reporter's posts, in any format (+44 7700 900123, 07700-900-123,
  (555) 010-9999, tel:+1-555-010-9999, digits spaced apart): numbers are found with the
  `phonenumbers` library (and any run of seven or more digits), and compared by their digits.

Words are compared after Unicode normalisation (NFKC, case folded) with invisible characters
removed, so punctuation, case, full-width letters or a zero-width space inside a word does not
slip a repeat through.
"""
from __future__ import annotations

import re
import unicodedata

import phonenumbers

QUOTE_WORDS = 4  # this many consecutive words of a reporter's post in a public reply is an echo
PHONE_REGIONS = ("GB", "US")  # how numbers without a country code are read
MIN_PHONE_DIGITS = 7  # no phone number (without its country code) is shorter

# Abbreviation (or variant) -> the word it stands for. "St" is both Street and Saint: both map to
# one token, so either spelling of either matches (a guard errs towards refusing).
ABBREVIATIONS = {
    "st": "street", "str": "street", "saint": "street", "rd": "road", "ave": "avenue", "av": "avenue",
    "avn": "avenue", "ln": "lane", "dr": "drive", "drv": "drive", "ct": "court", "crt": "court",
    "pl": "place", "sq": "square", "cres": "crescent", "cresc": "crescent", "blvd": "boulevard",
    "hwy": "highway", "tce": "terrace", "ter": "terrace", "terr": "terrace", "cl": "close",
    "gdns": "gardens", "gdn": "gardens", "pk": "park", "pkwy": "parkway", "mt": "mount", "apt": "apartment",
    "bldg": "building", "ctr": "centre", "center": "centre", "jct": "junction", "hts": "heights",
    "n": "north", "s": "south", "e": "east", "w": "west", "ne": "northeast", "nw": "northwest",
    "se": "southeast", "sw": "southwest", "mkt": "market", "stn": "station", "sta": "station",
}
# Words that name no particular place on their own (street types, directions, small words): a
# pair of them from an address ("the road") is no echo; a pair with any other word is.
STREET_TYPES = {"street", "road", "avenue", "lane", "drive", "court", "place", "square", "crescent", "boulevard",
                "highway", "terrace", "close", "gardens", "way", "parkway", "row", "walk", "mews", "yard"}
DIRECTIONS = {"north", "south", "east", "west", "northeast", "northwest", "southeast", "southwest"}
GENERIC = STREET_TYPES | DIRECTIONS | {
    "the", "a", "an", "at", "on", "in", "of", "to", "near", "by", "and", "off", "from", "outside", "opposite",
    "behind", "corner",
}
_WORD = re.compile(r"\w+", re.UNICODE)
_DIGIT_RUN = re.compile(r"\+?\d(?:[\d\s().\-/]*\d)?")


def _normal(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "")
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf").casefold()


def words(text: str) -> list[str]:
    return [ABBREVIATIONS.get(w, w) for w in _WORD.findall(_normal(text))]


def _contains_run(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


def _digit_runs(text: str) -> list[str]:
    return [re.sub(r"\D", "", m.group()) for m in _DIGIT_RUN.finditer(_normal(text))]


def phone_numbers(text: str) -> set[str]:
    """The digits of every phone number in `text`: national numbers as `phonenumbers` reads them
    (in each region Flare serves) and any run of MIN_PHONE_DIGITS or more digits as written."""
    text = _normal(text)
    if sum(c.isdigit() for c in text) < MIN_PHONE_DIGITS:
        return set()
    found = {run for run in _digit_runs(text) if len(run) >= MIN_PHONE_DIGITS}
    for region in PHONE_REGIONS:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.POSSIBLE):
            national = str(match.number.national_number)
            if len(national) >= MIN_PHONE_DIGITS:
                found.add(national)
    return found


def _repeats_number(reply_text: str, numbers: set[str]) -> bool:
    if not numbers:
        return False
    runs = _digit_runs(reply_text)
    joined = "".join(runs)  # digits split by words ("07700 then 900123") still spell the number
    return any(number in run for number in numbers for run in runs + [joined])


def _names_place(reply: list[str], location: str) -> bool:
    place = words(location)
    if _contains_run(reply, place):
        return True
    pairs = {(a, b) for a, b in zip(place, place[1:]) if not (a in GENERIC and b in GENERIC)}
    return any((a, b) in pairs for a, b in zip(reply, reply[1:]))


def echoes_reporter(reply_text: str, post_texts: list[str], locations: list[str]) -> str | None:
    """Why a public reply would repeat the reporter (None when it does not)."""
    reply = words(reply_text)
    shingles = {tuple(reply[i:i + QUOTE_WORDS]) for i in range(len(reply) - QUOTE_WORDS + 1)}
    for text in post_texts:
        said = words(text)
        for i in range(len(said) - QUOTE_WORDS + 1):
            if tuple(said[i:i + QUOTE_WORDS]) in shingles:
                return f"it quotes the reporter's words (\"{' '.join(said[i:i + QUOTE_WORDS])}…\")"
    for location in locations:
        if location and _names_place(reply, location):
            return "it names the location the reporter gave"
    numbers = set().union(*(phone_numbers(text) for text in post_texts)) if post_texts else set()
    if _repeats_number(reply_text, numbers):
        return "it repeats a phone number the reporter wrote"
    return None
