"""Place names and street addresses as grouping compares them (grouping.rules decides with them).

Two reports name the same place when the names are spelt alike, or but for one letter of a
word of 7 letters or more (`name_keys`): "Morristn" is Morriston, "Oat Lane" is not Oak Lane. A
street address is "<number> <first word of the street>" ("12 high" for "12 High St, Leeds"),
from an extracted place mention or, followed by a street type, from running text. A specific
place is a street, building or landmark, not a town or district. Everything is cached by its
text: a burst names the same few places thousands of times.
"""
from __future__ import annotations

import re
from functools import lru_cache

from triage.prescreen import fold

# "12 High St", "40 Park Row", "5 Briggate" as extracted place mentions; in running text the
# number must be followed by a street type within three words ("22 Kirkgate Road").
_STREET_TYPES = (r"street|st|road|rd|lane|ln|avenue|ave|row|square|sq|place|pl|close|drive|dr|way|"
                 r"terrace|crescent|gardens|court|grove|walk|hill|parade|mews|calle|avenida|rue|strasse|"
                 r"strase|ulica|ul|via|heol|stryd|weg|gasse|platz|plaza")
_ADDRESS_MENTION = re.compile(r"^(?:flat\s+\w+,?\s+)?(\d{1,4}[a-z]?)\b[\s,\-]+([a-z][a-z'\-]+)")
_ADDRESS_IN_TEXT = re.compile(
    r"\b(\d{1,4}[a-z]?)[\s,]+([a-z][a-z'\-]+)(?:\s+[a-z][a-z'\-]+){0,2}?\s+(?:" + _STREET_TYPES + r")\b")
# A named place at street level: a street, building or landmark, not a town or district.
_SPECIFIC_PLACE = re.compile(
    r"\d|\b(?:" + _STREET_TYPES + r"|station|bridge|hospital|school|college|university|church|mosque|"
    r"temple|synagogue|centre|center|mall|market|stadium|arena|tower|hotel|pub|bar|club|park|library|"
    r"airport|estacion|gare|bahnhof|dworzec|stazione|plac|piazza|plaza)\b")
FUZZY_WORD = 7  # a word this long may be misspelt by one letter and still name the same place


def address_keys(place_names: frozenset[str] | set[str], text: str = "") -> frozenset[str]:
    """Street addresses as "<number> <first word of the street>" ("12 high" for "12 High St,
    Leeds"), from extracted place mentions and, with a street type, from running text."""
    keys = place_address_keys(frozenset(place_names))
    return keys | text_address_keys(text) if text else keys


@lru_cache(maxsize=8192)
def text_address_keys(text: str) -> frozenset[str]:
    """The street addresses running text gives (a number, then a street type within three words)."""
    return frozenset(f"{m[1]} {m[2]}" for m in _ADDRESS_IN_TEXT.finditer(fold(text)))


@lru_cache(maxsize=8192)
def place_address_keys(place_names: frozenset[str]) -> frozenset[str]:
    """The street addresses extracted place mentions give ("12 High St")."""
    return frozenset().union(*(_name_address_key(name) for name in place_names))


@lru_cache(maxsize=16384)
def _name_address_key(name: str) -> frozenset[str]:
    m = _ADDRESS_MENTION.match(fold(name))
    return frozenset((f"{m[1]} {m[2]}",)) if m else frozenset()


@lru_cache(maxsize=16384)
def name_keys(name: str) -> frozenset[str]:
    """Keys under which a place name matches the same name misspelt by one letter: the folded
    name, and for each word of at least `FUZZY_WORD` letters the name with one letter of that word
    dropped (never its first). Two names share a key when they are the same words but for one
    letter dropped, added, changed or two swapped in one long word ("Morriston", "Morristn",
    "Morrsiton"); short words ("Oak", "12") must be spelt alike, so "Oak Lane" is not "Oat Lane"."""
    words = fold(name).split()
    keys = {" ".join(words)}
    for n, word in enumerate(words):
        if len(word) >= FUZZY_WORD:
            for i in range(1, len(word)):
                keys.add(" ".join([*words[:n], word[:i] + word[i + 1:], *words[n + 1:]]))
    return frozenset(keys)


# An incident's places change with each report that names a new one: only the candidates of the
# latest batches are asked about again, and a surge's set of keys is large.
@lru_cache(maxsize=256)
def names_keys(place_names: frozenset[str]) -> frozenset[str]:
    """The keys of all these place names (`name_keys`): two sets of names have one in common
    when their keys meet."""
    return frozenset().union(*(name_keys(name) for name in place_names))


_NO_PLACES: frozenset[str] = frozenset()


def shared_places(post_names: frozenset[str], cand_names: frozenset[str]) -> frozenset[str]:
    """The post's place names that the candidate's reports named too, spelt alike or but for one
    letter (`name_keys`)."""
    if not post_names or not cand_names:
        return _NO_PLACES
    keys = names_keys(cand_names)
    if names_keys(post_names).isdisjoint(keys):  # most candidates: not a name in common
        return _NO_PLACES
    return frozenset(n for n in post_names if not name_keys(n).isdisjoint(keys))


@lru_cache(maxsize=16384)
def specific_place(name: str) -> bool:
    """A street, building or landmark; a bare town, district or river name is not."""
    return bool(_SPECIFIC_PLACE.search(fold(name)))
