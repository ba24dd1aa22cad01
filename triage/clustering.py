"""Does a triaged post report an event we already have an incident for? Pure decisions, no I/O.

A post joins an incident when it is linked to it (a reply, quote or retweet of one of its posts),
or when it reports the same event: the same place (geotag or geocoded location within a radius),
the same time window, and the same kind of emergency or wording that says the same thing
(near-duplicate text by MinHash, or semantic similarity by cosine over triage embeddings).

What must never happen is a lone cry for help being absorbed into a big public event because it
shares a word like "help". So:
  * a silent contact never joins a public incident, and a silent incident never absorbs others;
  * a different place keeps a post separate, whatever its wording;
  * a personal, first-person request ("my mum can't breathe") joins an event only where it says
    it is: a precise location near the event, or (when nothing could be placed on the map) the
    same named place with related wording — wording alone is never enough.
Every decision carries a reason for people, stored with the membership and in the event log.
"""
from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from datasketch import MinHash, MinHashLSH

from triage.prescreen import fold, life_threat

# First-person or family/household words: the writer (or someone they are with) needs help.
_PERSONAL = re.compile(
    r"\b(i|i'm|im|i've|me|my|mine|we|we're|us|our|ours|mum|mom|dad|son|daughter|"
    r"wife|husband|partner|baby|brother|sister|grandma|grandad|nan|friend|flatmate|neighbour)\b")
_RETWEET_PREFIX = re.compile(r"^(?:rt|qt)\s+@?\w+\s*:?\s*", re.I)
_HANDLES_AND_LINKS = re.compile(r"(?:https?://\S+|www\.\S+|@\w+)")
SHINGLE_CHARS = 5
NUM_PERM = 64


@dataclass(frozen=True, slots=True)
class ClusterRules:
    window: timedelta = timedelta(hours=2)  # since the incident's latest report
    precise_radius_km: float = 1.5  # both locations street-level or better
    area_radius_km: float = 8.0  # either location only town-level
    precise_confidence: float = 0.7  # geotags 0.9, addresses 0.85, towns 0.55
    # Someone's own emergency joins an event only at its very spot: two callers a kilometre
    # apart are two emergencies, however alike their words.
    personal_radius_km: float = 0.5
    near_duplicate: float = 0.6  # MinHash Jaccard over character shingles
    retweet_duplicate: float = 0.8
    # Same place and time: wording need only be related (reports of one explosion score 0.4–0.9
    # against each other with the MiniLM encoder, unrelated emergencies 0.1–0.5).
    cosine_nearby: float = 0.3
    cosine_named_place: float = 0.45  # same street/area named, neither placed on the map
    cosine_unlocated: float = 0.65  # no place to compare: wording must say the same thing
    # An incident with this many reports is a surge: an unplaced, impersonal report with related
    # wording most likely concerns it (onlookers rarely say where they are).
    surge_reports: int = 20
    cosine_surge: float = 0.5


@dataclass(slots=True)
class PostFacts:
    """What clustering needs to know about one triaged post."""

    post_id: int
    text: str
    at: datetime
    category: str
    silent: bool = False
    lat: float | None = None
    lon: float | None = None
    location_confidence: float = 0.0
    embedding: np.ndarray | None = None
    place_names: frozenset[str] = frozenset()  # places named in the text, lower case

    @property
    def located(self) -> bool:
        return self.lat is not None and self.lon is not None

    @property
    def retweet(self) -> bool:
        return bool(_RETWEET_PREFIX.match(self.text.strip()))


@dataclass(slots=True)
class Candidate:
    """An open incident the post might belong to, with what the caller found out about it."""

    incident_id: int
    category: str
    last_report_at: datetime
    silent: bool = False
    lat: float | None = None
    lon: float | None = None
    location_confidence: float = 0.0
    centroid: np.ndarray | None = None
    link: str = ""  # e.g. "reply to post 12 in this incident": set by the caller from platform ids
    near_duplicate: float = 0.0  # best MinHash Jaccard against this incident's posts
    place_names: frozenset[str] = frozenset()  # places its reports named, lower case
    report_count: int = 1

    @property
    def located(self) -> bool:
        return self.lat is not None and self.lon is not None


@dataclass(frozen=True, slots=True)
class Decision:
    incident_id: int | None  # None: open a new incident
    reason: str
    similarity: float | None = None


@dataclass(slots=True)
class _Scored:
    score: float  # the best-scoring candidate wins
    decision: Decision


def personal_request(text: str) -> bool:
    """A first-person or family request for help ("my mum can't breathe", "we're trapped")."""
    folded = fold(text)
    return bool(_PERSONAL.search(folded)) and life_threat(folded)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


def cosine(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    if a is None or b is None:
        return None
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return None
    return float(np.dot(a, b) / (na * nb))


def decide(post: PostFacts, candidates: list[Candidate], rules: ClusterRules = ClusterRules()) -> Decision:
    """Join the best-matching candidate, or open a new incident (incident_id None)."""
    if post.silent:
        return Decision(None, "silent contact: kept apart from public incidents")
    personal = personal_request(post.text)
    best: _Scored | None = None
    for cand in candidates:
        scored = _match(post, cand, personal, rules)
        if scored is None:
            continue
        # Among incidents that match, lean towards the established one, so reports of one event
        # gather in one incident instead of spreading over several that opened side by side.
        scored.score += min(0.2, 0.05 * math.log2(max(1, cand.report_count)))
        if best is None or scored.score > best.score:
            best = scored
    if best is None:
        why = "personal request for help: joins an event only at a precise nearby location" \
            if personal else "no open incident at the same place and time with similar reports"
        return Decision(None, why)
    return best.decision


def _match(post: PostFacts, cand: Candidate, personal: bool, rules: ClusterRules) -> _Scored | None:
    if cand.silent:
        return None
    if cand.link:
        return _Scored(3.0, Decision(cand.incident_id, cand.link, 1.0))
    if post.at - cand.last_report_at > rules.window:
        return None
    if post.retweet and cand.near_duplicate >= rules.retweet_duplicate:
        return _Scored(2.0 + cand.near_duplicate, Decision(
            cand.incident_id, f"retweet of a report in this incident (text overlap {cand.near_duplicate:.2f})",
            round(cand.near_duplicate, 4)))
    cos = cosine(post.embedding, cand.centroid)
    # The classifier's category varies between reports of one event ("fire", "hazard", "other"),
    # so it supports a join but is never required when the wording agrees.
    same_kind = post.category == cand.category or "other" in (post.category, cand.category)
    if post.located and cand.located:
        km = distance_km(post.lat, post.lon, cand.lat, cand.lon)
        precise = min(post.location_confidence, cand.location_confidence) >= rules.precise_confidence
        radius = rules.precise_radius_km if precise else rules.area_radius_km
        if km > radius:
            return None
        if personal and not (post.location_confidence >= rules.precise_confidence
                             and km <= rules.personal_radius_km):
            return None
        related = same_kind or cand.near_duplicate >= rules.near_duplicate \
            or (cos is not None and cos >= rules.cosine_nearby)
        if not related:
            return None
        similarity = max(cand.near_duplicate, cos or 0.0)
        kind = "same kind" if post.category == cand.category else "related wording"
        return _Scored(1.0 + similarity - km / (radius * 4), Decision(
            cand.incident_id, f"same place ({km:.1f} km), time and {kind}"
            f"{f' (cosine {cos:.2f})' if cos is not None else ''}", round(similarity, 4)))
    shared = post.place_names & cand.place_names
    if personal:
        # Someone's own emergency joins an event only where they say they are: the same named
        # place (and related wording) when nothing could be placed on the map. Wording alone never.
        if not (shared and not post.located and cos is not None and cos >= rules.cosine_named_place):
            return None
    if shared and (same_kind or cand.near_duplicate >= rules.near_duplicate
                   or (cos is not None and cos >= rules.cosine_named_place)):
        similarity = max(cand.near_duplicate, cos or 0.0)
        return _Scored(0.8 + similarity, Decision(
            cand.incident_id, f"same named place ({', '.join(sorted(shared)[:3])}) and time"
            f"{f', cosine {cos:.2f}' if cos is not None else ''}", round(similarity, 4)))
    if cand.near_duplicate >= rules.near_duplicate:
        return _Scored(0.5 + cand.near_duplicate, Decision(
            cand.incident_id, f"near-duplicate of a report in this incident (text overlap "
            f"{cand.near_duplicate:.2f}), no location to compare", round(cand.near_duplicate, 4)))
    if cos is not None and cos >= rules.cosine_unlocated:
        return _Scored(0.5 + cos, Decision(
            cand.incident_id, f"same wording (cosine {cos:.2f}) within "
            f"{int(rules.window.total_seconds() // 60)} min, no location to compare", round(cos, 4)))
    if cos is not None and cos >= rules.cosine_surge and cand.report_count >= rules.surge_reports:
        return _Scored(0.3 + cos, Decision(
            cand.incident_id, f"related wording (cosine {cos:.2f}) to an incident with "
            f"{cand.report_count} reports, no location to compare", round(cos, 4)))
    return None


# ------------------------------------------------------------------ near-duplicate text index
def shingles(text: str) -> set[bytes]:
    """Character 5-grams of the folded text without the retweet prefix, handles and links."""
    body = _HANDLES_AND_LINKS.sub(" ", _RETWEET_PREFIX.sub("", text.strip()))
    folded = fold(body)
    if len(folded) < SHINGLE_CHARS:
        return {folded.encode("utf-8")} if folded else set()
    return {folded[i:i + SHINGLE_CHARS].encode("utf-8") for i in range(len(folded) - SHINGLE_CHARS + 1)}


# Permutations are drawn once: drawing them costs more than hashing a post. datasketch 2 also
# wants the hashing scheme they belong to; 1.x has no such argument.
_TEMPLATE = MinHash(num_perm=NUM_PERM)
_SHARED = {"permutations": _TEMPLATE.permutations}
if hasattr(_TEMPLATE, "scheme"):
    _SHARED["scheme"] = _TEMPLATE.scheme


def minhash(text: str) -> MinHash | None:
    grams = shingles(text)
    if not grams:
        return None
    m = MinHash(num_perm=NUM_PERM, **_SHARED)
    m.update_batch(list(grams))
    return m


class NearDuplicateIndex:
    """MinHash LSH over recent incident posts (post → incident), bounded to `capacity` entries."""

    def __init__(self, capacity: int = 20_000, threshold: float = 0.5) -> None:
        self.capacity = capacity
        self.lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        self.entries: dict[int, tuple[int, MinHash]] = {}  # post id → (incident id, signature)
        self.order: deque[int] = deque()

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, post_id: int, incident_id: int, text: str, signature: MinHash | None = None) -> None:
        if post_id in self.entries:
            return
        signature = signature or minhash(text)
        if signature is None:
            return
        while len(self.order) >= self.capacity:
            old = self.order.popleft()
            if old in self.entries:
                del self.entries[old]
                self.lsh.remove(old)
        self.lsh.insert(post_id, signature)
        self.entries[post_id] = (incident_id, signature)
        self.order.append(post_id)

    def best_by_incident(self, signature: MinHash | None) -> dict[int, float]:
        """Incident id → best Jaccard estimate among its indexed posts similar to `signature`."""
        if signature is None:
            return {}
        best: dict[int, float] = {}
        for key in self.lsh.query(signature):
            incident_id, other = self.entries[key]
            jaccard = float(signature.jaccard(other))
            if jaccard > best.get(incident_id, 0.0):
                best[incident_id] = jaccard
        return best

    def move(self, from_incident: int, to_incident: int) -> None:
        """Officer merges: posts of the merged-away incident now count for the survivor."""
        for key, (incident_id, sig) in list(self.entries.items()):
            if incident_id == from_incident:
                self.entries[key] = (to_incident, sig)


def merged_location(old: tuple[float, float, float] | None, old_weight: float,
                    new: tuple[float, float, float] | None) -> tuple[tuple[float, float, float] | None, float]:
    """Weighted mean of (lat, lon, confidence) estimates; weight is confidence squared so one
    geotag outweighs several town-level guesses. Returns (estimate, accumulated weight)."""
    if new is None:
        return old, old_weight
    weight = new[2] ** 2
    if old is None or old_weight <= 0:
        return new, weight
    total = old_weight + weight
    lat = (old[0] * old_weight + new[0] * weight) / total
    lon = (old[1] * old_weight + new[1] * weight) / total
    return (lat, lon, max(old[2], new[2])), total
