"""Does a triaged post report an event we already have an incident for? Pure decisions, no I/O.

Grouping must never hide a new emergency: two reports are one incident only when they say they
are at the same place. When that cannot be told, the post opens its own incident marked "possible
duplicate of #N" for a person to confirm (the CAD convention) instead of being merged.

The decisions, in order (first that applies wins; "join" = same event):

  | case                                                                 | decision            |
  |----------------------------------------------------------------------|---------------------|
  | silent contact, or a silent incident                                  | different           |
  | reply / quote / thread link to a post of the incident, both placed    |                     |
  |     more than the town radius (8 km) apart                            | uncertain           |
  | reply / quote / thread link to a post of the incident, a critical     |                     |
  |     report of another category, wording not the same (cos < 0.65)     | uncertain           |
  | reply / quote / thread link to a post of the incident                 | same event          |
  |     (a placed reply to an unplaced incident: unless another incident  |                     |
  |     at the place it gives takes it by place, which wins)              |                     |
  | last report older than the window                                     | different           |
  | retweet, text overlap >= 0.8                                          | same event          |
  | a copy: text overlap >= 0.8, 12 words or more, impersonal, not at     |                     |
  |     another street address                                            | same event          |
  | both name a street address, and no address in common                  | different           |
  | both placed, more than the town radius (8 km) apart                   | different           |
  | both placed street-level, 1.5-8 km apart, a surge (>= 20 reports) of  |                     |
  |     a fire/blast/hazard, an impersonal report of that family without  |                     |
  |     an address, wording that says the same (cos >= 0.65, overlap)     | same event          |
  | both placed street-level (conf >= 0.7), more than 1.5 km apart        | different           |
  | personal request ("my dad ...") not at the incident's very spot       |                     |
  |     (street-level within 0.5 km, or the same address)                 |   related: uncertain|
  |                                                                       |   else: different   |
  | both street-level within 1.5 km, same category or kind, or wording     |                     |
  |     that says the same (cos >= 0.45, overlap >= 0.6)                  | same event          |
  | same street address, same kind or related wording                     | same event          |
  | same street address otherwise                                         | uncertain           |
  | same specific named place (a street, station, square, not a town),    |                     |
  |     same kind or wording that says the same (cos >= 0.45, overlap)    | same event          |
  | same town / area only (town-level geocode, a shared town or district  |                     |
  |     name), no street address in the post, the incident not at one,     |                     |
  |     an impersonal report of a                                          |                     |
  |     fire/blast or of a surging incident: both fire/blast with related  |                     |
  |     wording (a critical report: wording that says the same), or        |                     |
  |     wording that says the same, or related wording and the report      |                     |
  |     itself not critical/high                                           | same event          |
  |     a report in another language (wording not compared) naming the    |                     |
  |     area of a surge of the same kind, impersonal, without an address  | same event (loose)  |
  |     otherwise same kind or related wording                             | uncertain           |
  | post names only places not on the map (not placed), incident a surge  |                     |
  |     not at one address, wording that says the same (cos >= 0.65,     |                     |
  |     overlap), impersonal, no address, not another kind of emergency   | same event (loose)  |
  | post names or is placed somewhere, incident elsewhere / unplaced,     |                     |
  |     wording that says the same thing                                  | uncertain           |
  | post without any place, impersonal: near-duplicate text (>= 0.6) or   |                     |
  |     same wording (cos >= 0.65), or related wording (cos >= 0.5) to a  |                     |
  |     surging incident (>= 20 reports)                                  | same event (loose   |
  |                                                                       |   when only related)|
  | anything else                                                         | different           |

A join marked loose rests on wording to a surge alone. It is held back (uncertain, a possible
duplicate) when the post reads within 0.1 as close to another surge whose reports read otherwise
(centroids below 0.65): two events at once, and the post could be either.

Place names are shared when spelt alike, or but for one letter of a word of 7 letters or more
(grouping.places.name_keys): "Morristn" is Morriston, "Oat Lane" is not Oak Lane. A surge whose reports gave
several street addresses is spread over an area, not at one of them: an area report may join it.

"Same kind" is the same specific category ("other" is no kind at all); fire, hazard and traffic
count as one family, since reports of one blast are classified any of them, except for a critical
report of another category than the incident's (`another_emergency`): for it the family does
not count, so it joins only on wording alike (cos >= 0.45), and where only an area is shared on
wording that says the same thing (cos >= 0.65), since a critical crash or stroke beside a fire is
another emergency, and inside the fire's incident nobody would see it; in the incident's thread,
such a report (wording not the same, cos < 0.65) is uncertain (a person is asked) instead of
joining. Wording (cosine
over sentence embeddings) is compared only for posts in English or of unknown language: the
encoder is English, and grouping.finder.wording_vector gives other posts no embedding. Every decision
carries a reason for people, stored with the membership and in the event log.
"""
from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import numpy as np

from grouping.near_duplicates import RETWEET_PREFIX, minhash
from grouping.places import address_keys, place_address_keys, shared_places, specific_place, text_address_keys
from triage.prescreen import fold, life_threat

# First-person or family/household words: the writer (or someone they are with) needs help.
_PERSONAL = re.compile(
    r"\b(i|i'm|im|i've|me|my|mine|we|we're|us|our|ours|mum|mom|dad|son|daughter|"
    r"wife|husband|partner|baby|brother|sister|grandma|grandad|nan|friend|flatmate|neighbour)\b")
_NO_KIND = ("other", "none", "")
# Families of categories whose reports of one event are classified either way.
_FAMILY = {"fire": "blast", "hazard": "blast", "traffic": "blast", "violence": "violence",
           "crime": "violence"}


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
    # A post this long whose text overlaps a report's by retweet_duplicate is a copy of it, as a
    # retweet is: people paste an appeal; two writers do not word twelve words alike by chance.
    copy_words: int = 12
    # Same place and time: wording need only be related (reports of one explosion score 0.4–0.9
    # against each other with the MiniLM encoder, unrelated emergencies 0.1–0.5).
    cosine_nearby: float = 0.3
    cosine_named_place: float = 0.45  # same street/area named, neither placed on the map
    cosine_unlocated: float = 0.65  # no place to compare: wording must say the same thing
    # An incident with this many reports is a surge: an unplaced, impersonal report with related
    # wording most likely concerns it (onlookers rarely say where they are).
    surge_reports: int = 20
    cosine_surge: float = 0.5
    # A report joined to a surge on wording alone is held back (a possible duplicate) when it reads
    # within this much as close to another surge that reads otherwise: two events at once.
    surge_margin: float = 0.1
    # Rule out a candidate that cannot match (`_may_match_unplaced`) before matching it in full;
    # False runs the full table for every candidate (the answers are the same: tests compare).
    shortcut: bool = True


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
    addresses: frozenset[str] = frozenset()  # street addresses ("12 high"); also read from the text
    urgency: str = ""  # triage's; a critical or high report is never joined on loose evidence

    @property
    def located(self) -> bool:
        return self.lat is not None and self.lon is not None

    @property
    def address_keys(self) -> frozenset[str]:
        return self.addresses | address_keys(self.place_names, self.text)

    @property
    def retweet(self) -> bool:
        return bool(RETWEET_PREFIX.match(self.text.strip()))


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
    addresses: frozenset[str] = frozenset()  # street addresses its reports gave ("12 high")

    @property
    def located(self) -> bool:
        return self.lat is not None and self.lon is not None

    @property
    def address_keys(self) -> frozenset[str]:
        # Asked for every post against every candidate: the places' keys are cached (a surge's
        # incidents name the same few places for thousands of posts).
        return self.addresses | place_address_keys(self.place_names)


@dataclass(frozen=True, slots=True)
class Decision:
    incident_id: int | None  # None: open a new incident
    reason: str
    similarity: float | None = None
    # A new incident that may report the same event as this one: a person confirms or merges.
    possible_duplicate_of: int | None = None


@dataclass(slots=True)
class _Scored:
    score: float  # the best-scoring candidate wins
    decision: Decision
    # Joined on wording to a surge alone, with no place in common: held back when the post reads
    # as much like another surge that reports something else (`_ambiguous`).
    loose: bool = False


def copied(text: str, rules: ClusterRules) -> bool:
    """Long enough to be a copy when it overlaps another post as a retweet does (`copy_words`)."""
    return len(text.split()) >= rules.copy_words


@lru_cache(maxsize=8192)
def personal_request(text: str) -> bool:
    """A first-person or family request for help ("my mum can't breathe", "we're trapped").
    Cached by text, like `minhash`: a burst repeats itself word for word."""
    folded = fold(text)
    return bool(_PERSONAL.search(folded)) and life_threat(folded)


def prepare(texts: list[str]) -> None:
    """Work out what a decision needs from each text alone (its MinHash signature, whether it is
    a personal request, the street addresses it gives), once per distinct text, into the caches
    `decide` and the near-duplicate index read. Called before the grouping lock is taken, so the
    decisions under it find that work done; the answers are the same either way."""
    for text in dict.fromkeys(texts):
        minhash(text)
        personal_request(text)
        text_address_keys(text)


def same_kind(a: str, b: str) -> bool:
    """The same specific category, or one family (fire/hazard/traffic); "other" is no kind."""
    if a in _NO_KIND or b in _NO_KIND:
        return False
    return a == b or (a in _FAMILY and _FAMILY.get(a) == _FAMILY.get(b))


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


class Matches:
    """What one post's decision found about each candidate, remembered for a later decision of the
    same post: `decide` reuses a candidate's answer only when everything that answer was computed
    from (the candidate's facts, its near-duplicate score and link, and the post's cosine with its
    centroid, to the last bit) is equal now, and computes it again otherwise. So a decision made
    with these matches is the decision made without them, only cheaper when little changed.

    Grouping decides a page against a snapshot before its transaction (flows/triage_batch.py) and
    again, under the grouping lock, against what the database says then: only the incidents that
    were opened or changed in between are matched again."""

    __slots__ = ("post", "embedding", "by_incident", "reused", "computed")

    def __init__(self) -> None:
        self.post: tuple | None = None  # the post's facts the answers below were computed for
        self.embedding: np.ndarray | None = None
        self.by_incident: dict[int, tuple[tuple, float | None, tuple[float, Decision] | None]] = {}
        self.reused = 0
        self.computed = 0

    def for_post(self, post: PostFacts) -> dict[int, tuple[tuple, float | None, tuple[float, Decision] | None]]:
        """The remembered answers, forgotten if the post's own facts are not what they were."""
        facts = (post.post_id, post.text, post.at, post.category, post.silent, post.lat, post.lon,
                 post.location_confidence, post.place_names, post.addresses, post.urgency)
        if facts != self.post or post.embedding is not self.embedding:
            self.post, self.embedding = facts, post.embedding
            self.by_incident.clear()
        return self.by_incident


def _facts_of(cand: Candidate) -> tuple:
    """Everything `_match` reads of a candidate, apart from the cosine (passed beside it)."""
    return (cand.category, cand.last_report_at, cand.silent, cand.lat, cand.lon, cand.location_confidence,
            cand.link, cand.near_duplicate, cand.place_names, cand.report_count, cand.addresses)


def decide(post: PostFacts, candidates: list[Candidate], rules: ClusterRules = ClusterRules(),
           matches: Matches | None = None, cosines: list[float | None] | None = None) -> Decision:
    """Join the best-matching candidate, or open a new incident (incident_id None), marked as a
    possible duplicate of the closest uncertain candidate if there is one. With `matches` (one
    per post), candidates unchanged since the post's last decision are not matched again.
    `cosines`: the post's with each candidate's centroid, when the caller worked them out
    (`centroid_cosines`, over the longer list it chose these candidates from)."""
    if post.silent:
        return Decision(None, "silent contact: kept apart from public incidents")
    personal = personal_request(post.text)
    post_addresses = post.address_keys
    retweet = post.retweet
    if cosines is None:
        cosines = _cosines(post.embedding, candidates)
    best: _Scored | None = None
    best_cand: Candidate | None = None
    unsure: _Scored | None = None
    loose: list[Candidate] = []  # candidates joined on wording to a surge alone
    known = matches.for_post(post) if matches is not None else None
    for cand, cos in zip(candidates, cosines, strict=True):
        if known is None:
            scored = _match(post, cand, personal, post_addresses, cos, rules, retweet)
        else:
            facts = _facts_of(cand)
            seen = known.get(cand.incident_id)
            if seen is not None and seen[1] == cos and seen[0] == facts:
                matches.reused += 1
                scored = _Scored(*seen[2]) if seen[2] is not None else None
            else:
                matches.computed += 1
                scored = _match(post, cand, personal, post_addresses, cos, rules, retweet)
                known[cand.incident_id] = (
                    facts, cos, (scored.score, scored.decision, scored.loose) if scored is not None else None)
        if scored is None:
            continue
        if scored.decision.incident_id is None:
            if unsure is None or scored.score > unsure.score:
                unsure = scored
            continue
        # Among incidents that match, lean towards the established one, so reports of one event
        # gather in one incident instead of spreading over several that opened side by side.
        scored.score += min(0.2, 0.05 * math.log2(max(1, cand.report_count)))
        if scored.loose:
            loose.append(cand)
        if best is None or scored.score > best.score:
            best, best_cand = scored, cand
    if best is not None:
        if best.loose and (rival := _ambiguous(post, best_cand, loose, candidates, cosines, rules)) is not None:
            return Decision(None, f"possible duplicate of #{best_cand.incident_id} (its wording is as close to "
                            f"#{rival.incident_id}, a surge that reads otherwise): a person confirms",
                            best.decision.similarity, possible_duplicate_of=best_cand.incident_id)
        return best.decision
    if unsure is not None:
        return unsure.decision
    why = "personal request for help: joins an event only at its very spot" \
        if personal else "no open incident at the same place and time with similar reports"
    return Decision(None, why)


def _area_wide(post: PostFacts, cand: Candidate, personal: bool, post_addresses: frozenset[str],
               cos: float | None, rules: ClusterRules) -> bool:
    """Both placed street-level, further apart than one spot but within the town radius: the same
    event only for a surge of a fire, blast or hazard (a flood, a fire, a storm spread over
    kilometres), reported in its words by someone who gives no street address of their own and
    asks nothing for themselves."""
    return (cand.report_count >= rules.surge_reports and not personal and not post_addresses
            and _FAMILY.get(post.category) == "blast" and _FAMILY.get(cand.category) == "blast"
            and (cand.near_duplicate >= rules.near_duplicate or (cos is not None and cos >= rules.cosine_unlocated)))


def _ambiguous(post: PostFacts, chosen: Candidate, loose: list[Candidate], candidates: list[Candidate],
               cosines: list[float | None], rules: ClusterRules) -> Candidate | None:
    """For a post joined to a surge on wording alone: another surge it could as well belong to,
    whose reports read otherwise than the chosen one's (centroids less alike than
    `cosine_unlocated`): two events at once. A rival is a surge the post was also joined to on
    wording alone, or one whose centroid is within `surge_margin` of the chosen one's cosine.
    None when every such surge reads like the chosen one (one event whose reports opened several
    incidents side by side)."""
    chosen_cos = next((c for cand, c in zip(candidates, cosines) if cand is chosen), None)
    rivals = [cand for cand in loose if cand is not chosen]
    if chosen_cos is not None:
        rivals += [cand for cand, c in zip(candidates, cosines)
                   if cand is not chosen and c is not None and cand.report_count >= rules.surge_reports
                   and c >= chosen_cos - rules.surge_margin and not cand.silent
                   and post.at - cand.last_report_at <= rules.window]
    for cand in rivals:
        alike = cosine(cand.centroid, chosen.centroid)
        if alike is None or alike < rules.cosine_unlocated:
            return cand
    return None


class _Stacked:
    """The centroids of the candidates last asked about, stacked (float64) with their norms.

    A batch asks about the same candidates for post after post, so they are stacked once, not
    once per post; the arithmetic is the same as stacking them anew. Keyed by the centroid
    arrays themselves (held here, so their ids cannot be reused): centroids are never changed in
    place, a changed centroid is a new array."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.centroids: tuple = ()
        self.dim: tuple[int, ...] = ()
        self.shaped: list[int] = []
        self.matrix: np.ndarray | None = None
        self.norms: list[float] = []

    def get(self, centroids: tuple, dim: tuple[int, ...]) -> tuple[list[int], np.ndarray | None, list[float]]:
        with self.lock:
            if dim != self.dim or len(centroids) != len(self.centroids) or any(
                    a is not b for a, b in zip(centroids, self.centroids)):
                shaped = [n for n, c in enumerate(centroids) if c is not None and np.shape(c) == dim]
                matrix = np.stack([np.asarray(centroids[n], dtype=np.float64) for n in shaped]) if shaped else None
                self.centroids, self.dim, self.shaped, self.matrix = centroids, dim, shaped, matrix
                self.norms = np.linalg.norm(matrix, axis=1).tolist() if matrix is not None else []
            return self.shaped, self.matrix, self.norms


_STACKED = _Stacked()


def _cosines(embedding: np.ndarray | None, candidates: list[Candidate]) -> list[float | None]:
    """`cosine` of the post against every candidate's centroid, in one matrix product."""
    if embedding is None:
        return [None] * len(candidates)
    post = np.asarray(embedding, dtype=np.float64).ravel()
    post_norm = float(np.linalg.norm(post))
    out: list[float | None] = [None] * len(candidates)
    if post_norm == 0.0:
        return out
    shaped, matrix, norms = _STACKED.get(tuple(c.centroid for c in candidates), post.shape)
    if matrix is None:
        return out
    dots = matrix @ post
    for n, dot, norm in zip(shaped, dots.tolist(), norms, strict=True):
        if norm != 0.0:
            out[n] = dot / (norm * post_norm)
    return out


def centroid_cosines(embedding: np.ndarray | None, candidates: list[Candidate]) -> list[float | None]:
    """The post's cosine with each candidate's centroid (None where there is none), as `decide`
    reads them: for a caller that chooses the candidates to decide over by them
    (grouping.candidates), then passes the chosen ones' to `decide`."""
    return _cosines(embedding, candidates)


def _uncertain(cand: Candidate, why: str, similarity: float) -> _Scored:
    return _Scored(similarity, Decision(
        None, f"possible duplicate of #{cand.incident_id} ({why}): a person confirms", round(similarity, 4),
        possible_duplicate_of=cand.incident_id))


def another_emergency(post: PostFacts, cand: Candidate, cos: float | None, rules: ClusterRules) -> bool:
    """A critical report of another category than the incident's (a crash or a stroke beside a
    wildfire, whatever family the crash is of) whose wording does not say the same thing as the
    incident's reports: another emergency, which inside that incident nobody would see. It may
    still be the same event, so it is kept apart as a possible duplicate, for a person to say.
    Where only an area is shared (a town, a district named, no street-level match) it joins on
    wording that says the same thing alone; at a spot or a named street, wording alike (cos >= 0.45)
    still joins it, as it joins a medical report of a blast: requiring wording that says the same
    there too split the Manchester burst's blast into 16 incidents instead of 6, its critical
    reports come in every category.
    Only critical: the reports of one flood or blast come as hazard, traffic or fire, many of them
    high, and kept apart by their category they split the event (two events at once, 3,000
    posts: 240 -> 303 incidents when high counted too)."""
    return (post.urgency == "critical" and post.category not in _NO_KIND
            and post.category != cand.category and cand.near_duplicate < rules.near_duplicate
            and (cos is None or cos < rules.cosine_unlocated))


def _match(post: PostFacts, cand: Candidate, personal: bool, post_addresses: frozenset[str],
           cos: float | None, rules: ClusterRules, retweet: bool) -> _Scored | None:
    """A join (incident_id set), an uncertain match (incident_id None, possible_duplicate_of set),
    or None for a different event. See the table in the module docstring."""
    if cand.silent:
        return None
    if cand.link:
        # A thread is no place: a reply that says it is in another town reports another emergency
        # (during two events at once, people answer one's posts with news of the other). It opens
        # its own incident, marked as a possible duplicate for a person to confirm. A placed reply
        # in the thread of an incident with no place yet still joins: it may be the first to say
        # where the emergency is; but an incident that is at the place it gives, and takes it
        # there, is the likelier one (a reply with news of the other event, where that event is).
        if post.located and cand.located:
            km = distance_km(post.lat, post.lon, cand.lat, cand.lon)
            if km > rules.area_radius_km:
                return _uncertain(cand, f"a reply in its thread, placed {km:.0f} km away", 0.0)
        if another_emergency(post, cand, cos, rules):
            # "yiayia can't get her words out" in answer to a post about the fire is a stroke:
            # inside the fire's incident nobody would see it.
            return _uncertain(cand, f"{cand.link}, but a critical report of another kind of emergency", 0.0)
        if post.located and not cand.located:
            return _Scored(0.5, Decision(cand.incident_id, f"{cand.link}, the first to say where", 1.0))
        return _Scored(3.0, Decision(cand.incident_id, cand.link, 1.0))
    if post.at - cand.last_report_at > rules.window:
        return None
    if retweet and cand.near_duplicate >= rules.retweet_duplicate:
        return _Scored(2.0 + cand.near_duplicate, Decision(
            cand.incident_id, f"retweet of a report in this incident (text overlap {cand.near_duplicate:.2f})",
            round(cand.near_duplicate, 4)))
    if cand.near_duplicate >= rules.retweet_duplicate and copied(post.text, rules) and not personal and not (
            post.address_keys and cand.address_keys and not post.address_keys & cand.address_keys):
        # A copied appeal ("PLEASE SHARE: a 6 year old went missing on the seafront ...") is the
        # same report wherever the person who copies it is: long enough that two people could
        # not have written it alike, and not at another street address. Someone's own plea
        # ("my grandad has fallen ...") keeps its own rule: two callers may send the same words.
        return _Scored(1.9 + cand.near_duplicate, Decision(
            cand.incident_id, f"a copy of a report in this incident (text overlap {cand.near_duplicate:.2f})",
            round(cand.near_duplicate, 4)))
    # The two tests that rule a candidate out (too far apart, two street addresses) come first,
    # in either order: both answer "different".
    km: float | None = None
    street_level = spread = False
    shared: frozenset[str] | None = None  # the place names in common, worked out once
    if post.located and cand.located:
        km = distance_km(post.lat, post.lon, cand.lat, cand.lon)
        street_level = min(post.location_confidence, cand.location_confidence) >= rules.precise_confidence
        spread = street_level and km > rules.precise_radius_km
        if km > rules.area_radius_km or (spread and not _area_wide(post, cand, personal, post_addresses, cos, rules)):
            return None
    elif rules.shortcut:
        shared = shared_places(post.place_names, cand.place_names)
        if not _may_match_unplaced(post, cand, post_addresses, cos, rules, shared):
            return None
    cand_addresses = cand.address_keys
    if post_addresses and cand_addresses and not post_addresses & cand_addresses:
        return None  # two street addresses: two emergencies unless a person merges them
    similarity = max(cand.near_duplicate, cos or 0.0)
    if spread:
        return _Scored(0.4 + similarity, Decision(
            cand.incident_id, f"{km:.1f} km from a {cand.category} surge of {cand.report_count} reports spread over "
            f"an area, in its words{f' (cosine {cos:.2f})' if cos is not None else ''}", round(similarity, 4)))
    related = cand.near_duplicate >= rules.near_duplicate or (cos is not None and cos >= rules.cosine_nearby)
    urgent = post.urgency in ("critical", "high")
    # A critical report of another category is not of the incident's kind by its family alone
    # (fire, hazard, traffic: the reports of one blast classified either way): its wording must be
    # alike (says_the_same) for it to join.
    other_emergency = another_emergency(post, cand, cos, rules)
    says_the_same = cand.near_duplicate >= rules.near_duplicate \
        or (cos is not None and cos >= rules.cosine_named_place)
    kind = same_kind(post.category, cand.category) and not other_emergency
    same_address = post_addresses & cand_addresses
    if shared is None:
        shared = shared_places(post.place_names, cand.place_names)
    specific = sorted(n for n in shared if specific_place(n))
    if personal:
        # Someone's own emergency joins an event only at its very spot. Wording alone never.
        at_spot = bool(same_address) or (
            street_level and km is not None and km <= rules.personal_radius_km
            and post.location_confidence >= rules.precise_confidence)
        if not at_spot:
            if not street_level and (km is not None or shared) and (kind or says_the_same):
                return _uncertain(cand, "a personal request near it, not at its spot", similarity)
            return None
    if street_level:
        # One spot: the same category, or wording that says the same thing (one blast's reports
        # come as fire, hazard, medical); a different kind with merely related words is not enough.
        if not (post.category == cand.category or kind or says_the_same):
            return None
        how = "same category" if post.category == cand.category else "related wording"
        return _Scored(1.0 + similarity - km / (rules.precise_radius_km * 4), Decision(
            cand.incident_id, f"same place ({km:.1f} km), time and {how}"
            f"{f' (cosine {cos:.2f})' if cos is not None else ''}", round(similarity, 4)))
    if same_address:
        if kind or related:
            return _Scored(1.0 + similarity, Decision(
                cand.incident_id, f"same address ({', '.join(sorted(same_address)[:2])}) and time"
                f"{f', cosine {cos:.2f}' if cos is not None else ''}", round(similarity, 4)))
        return _uncertain(cand, "same address, another kind of emergency", similarity)
    if specific and (kind or says_the_same):
        return _Scored(0.8 + similarity, Decision(
            cand.incident_id, f"same named place ({', '.join(specific[:3])}) and time"
            f"{f', cosine {cos:.2f}' if cos is not None else ''}", round(similarity, 4)))
    surge = cand.report_count >= rules.surge_reports
    # An incident whose reports gave one street address is at that spot; a surge whose reports
    # gave several is spread over an area (a flood's streets), and an area report may join it.
    at_a_spot = bool(cand_addresses) and not (surge and len(cand_addresses) > 1)
    if km is not None or shared:
        where = f"{km:.1f} km apart at town level" if km is not None else \
            f"same area named ({', '.join(sorted(shared)[:2])})"
        # A fire or blast is seen and heard across a town; a collapse or a stabbing is at one spot.
        same_words = cand.near_duplicate >= rules.near_duplicate or (cos is not None and cos >= rules.cosine_unlocated)
        post_blast, cand_blast = _FAMILY.get(post.category) == "blast", _FAMILY.get(cand.category) == "blast"
        # A critical report (a life at risk now: "the lad isn't moving") needs wording alike
        # (says_the_same) even of the fire/blast family: merely related (cosine_nearby), it is
        # another emergency as likely as the same one.
        blast_family = post_blast and cand_blast and (says_the_same if post.urgency == "critical" else related)
        if not personal and not post_addresses and not at_a_spot and (post_blast or cand_blast or surge) and (
                blast_family or (says_the_same and not other_emergency) or same_words
                or (surge and cos is not None and cos >= rules.cosine_surge and not other_emergency)
                or (not urgent and related)):
            return _Scored(0.6 + similarity, Decision(
                cand.incident_id, f"{where}, the same fire or blast in other words"
                f"{f' (cosine {cos:.2f})' if cos is not None else ''}", round(similarity, 4)))
        if (shared and surge and kind and post.embedding is None and not personal and not post_addresses
                and not at_a_spot):
            # A report in a language the wording cannot be compared in: the place its surge's
            # reports named, and the same kind of emergency.
            return _Scored(0.4 + similarity, Decision(
                cand.incident_id, f"{where}, the same kind of emergency as its {cand.report_count} reports "
                f"(wording in another language, not compared)", round(similarity, 4)), loose=True)
        if kind or related:
            return _uncertain(cand, f"{where}, no street-level match", similarity)
        return None
    placed = post.located or bool(post.place_names) or bool(post_addresses)
    same_wording = cand.near_duplicate >= rules.near_duplicate or (cos is not None and cos >= rules.cosine_unlocated)
    if placed:
        # Named somewhere the map does not know, by a report that says what a surge's reports say
        # (a flood's streets and districts): of that surge unless it is another kind of emergency,
        # at a street address of its own, or someone's own request.
        other_kind = post.category not in _NO_KIND and cand.category not in _NO_KIND and not kind
        if (same_wording and surge and not personal and not post.located and not post_addresses
                and not at_a_spot and not other_kind):
            names = ", ".join(sorted(post.place_names)[:2])
            return _Scored(0.4 + similarity, Decision(
                cand.incident_id, f"same wording{f' (cosine {cos:.2f})' if cos is not None else ''} as an "
                f"incident with {cand.report_count} reports, at a place not on the map ({names})",
                round(similarity, 4)), loose=True)
        # Somewhere the incident is not known to be: wording alone never merges it.
        if same_wording and not personal:
            return _uncertain(cand, "same wording, placed where the incident is not known to be", similarity)
        return None
    if cand.near_duplicate >= rules.near_duplicate:
        return _Scored(0.5 + cand.near_duplicate, Decision(
            cand.incident_id, f"near-duplicate of a report in this incident (text overlap "
            f"{cand.near_duplicate:.2f}), no place given", round(cand.near_duplicate, 4)))
    if cos is not None and cos >= rules.cosine_unlocated:
        return _Scored(0.5 + cos, Decision(
            cand.incident_id, f"same wording (cosine {cos:.2f}) within "
            f"{int(rules.window.total_seconds() // 60)} min, no place given", round(cos, 4)))
    if (cos is not None and cos >= rules.cosine_surge and cand.report_count >= rules.surge_reports
            and not other_emergency):
        return _Scored(0.3 + cos, Decision(
            cand.incident_id, f"related wording (cosine {cos:.2f}) to an incident with "
            f"{cand.report_count} reports, no place given", round(cos, 4)), loose=True)
    return None


def _may_match_unplaced(post: PostFacts, cand: Candidate, post_addresses: frozenset[str],
                        cos: float | None, rules: ClusterRules, shared: frozenset[str]) -> bool:
    """For a post and a candidate not both placed on the map, past the link, window and retweet
    rows of the table: can `_match` answer anything but "different"? Only with a street address
    in the post (a shared address), a place name in common (`shared`), near-duplicate text, or a cosine at
    least the lowest one an unplaced match reads (same wording, or related to a surge); every
    other row needs a distance between the two. Far cheaper than matching: most candidates of
    a burst fail it (an incident without a location against a placed post, and the reverse)."""
    return bool(post_addresses) or cand.near_duplicate >= rules.near_duplicate \
        or (cos is not None and cos >= min(rules.cosine_unlocated, rules.cosine_surge)) \
        or bool(shared)


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
