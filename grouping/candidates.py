"""Which of a group's open incidents could a post join? The per-group candidate index.

grouping.finder.BatchFinder reads the open incidents once per act group (up to MAX_CANDIDATES,
the most recently updated) and, before this index, matched every post of the group against every
one of them (grouping.rules.decide): during two events at once (bench/scenarios/two_events.py)
hundreds of incidents are open, and a post was matched against ~200 of them, of which it could
join or be unsure about 2 to 5. Acting cost grew with the number of open incidents.

The index passes over a candidate only where the decision table (grouping.rules, its module
docstring) answers "different" whatever else holds, so `decide` over the candidates it keeps
decides exactly as over all of them:
  - a reply/quote/thread link is always kept, and so is near-duplicate text (a retweet of one of
    its reports joins wherever either is placed), and a surge (>= surge_reports reports): it
    may be joined across a town (`rules._area_wide`), and may be the rival that holds a loose
    join back (`rules._ambiguous`);
  - both placed on the map: kept unless further apart than the town radius, or both street-level
    and further apart than the precise radius;
  - not both placed (the table's shortcut, `rules._may_match_unplaced`): kept only with a street
    address in the post, a cosine at least the lowest an unplaced match reads, or a place name
    in common (spelt alike or but for one letter: `places.names_keys`).
Everything else (the window, the kinds, the wording, the addresses) is left to `decide`.
Distances are worked out at once for every candidate (numpy; a candidate within a metre of a
radius is kept, so rounding can only keep one the table then rules out, never drop one), place
names are looked up by key, so a post's cost hardly grows with the candidates.

Measured on the two-events scenario's first 12,000 posts, decided once and acted on as act jobs do
(686 incidents; every post in the same incident for the same reason, every incident the same,
with and without the index; also on 8,000 posts of bench/scenarios/burst.py): with ~200
candidates a post kept 28 on average, of which 2 to 5 answered anything but "different". CPU
per grouped post of choosing and deciding (the mean of two alternated runs, a shared machine):
0.31 -> 0.19 ms with 50-100 incidents open, 0.63 -> 0.30 ms with 200-300, 0.78 -> 0.42 ms with
600-800. What still grows: the candidates kept (surges, and the unplaced incidents of the
post's own event, whose wording is close), the cosines over every candidate's centroid (one
matrix product, the arithmetic `decide` always used, so no cosine changes by a bit), the
near-duplicate index and the group's read of the candidates' centroids. Acting as a whole (`flare bench act --scenario
bench/scenarios/two_events.py --posts 12000`) costs 2.1-2.6 ms CPU a post either way, within
the noise of the machine: most of it is writing the group.
"""
from __future__ import annotations

import numpy as np

from grouping import places, rules

# Kept when within this much of a radius: numpy's distance may differ from rules.distance_km's in
# the last bits, and only the table's own arithmetic decides a candidate that close.
ROUNDING_KM = 0.001
EARTH_KM = 6371.0  # as rules.distance_km


class CandidateIndex:
    """The open incidents a group's posts are decided against, read once per group, in order;
    `chosen` gives, for one post, the positions of those it could join (in that order)."""

    def __init__(self, candidates: list[rules.Candidate], cluster_rules: rules.ClusterRules) -> None:
        self.rules = cluster_rules
        self.size = len(candidates)
        self.position = {cand.incident_id: n for n, cand in enumerate(candidates)}
        self.located = np.array([cand.located for cand in candidates], dtype=bool)
        self.lat = np.radians(np.array([cand.lat if cand.located else np.nan for cand in candidates], dtype=np.float64))
        self.lon = np.radians(np.array([cand.lon if cand.located else np.nan for cand in candidates], dtype=np.float64))
        self.street = np.array([cand.location_confidence >= cluster_rules.precise_confidence for cand in candidates],
                               dtype=bool)
        self.kept = np.array([cand.report_count >= cluster_rules.surge_reports for cand in candidates], dtype=bool)
        self.by_name_key: dict[str, set[int]] = {}
        for cand in candidates:
            self.add_places(cand.incident_id, cand.place_names)

    def add_places(self, incident_id: int, place_names: frozenset[str]) -> None:
        """The incident's reports named these places (an incident's places only grow)."""
        position = self.position[incident_id]
        for key in places.names_keys(place_names):
            self.by_name_key.setdefault(key, set()).add(position)

    def _apart(self, post: rules.PostFacts) -> np.ndarray:
        """Placed candidates the placed post is too far from to join (the table's two radii)."""
        lat, lon = np.radians(post.lat), np.radians(post.lon)
        with np.errstate(invalid="ignore"):
            a = np.sin((self.lat - lat) / 2) ** 2 + np.cos(lat) * np.cos(self.lat) * np.sin((self.lon - lon) / 2) ** 2
            km = 2 * EARTH_KM * np.arcsin(np.minimum(1.0, np.sqrt(a)))
            apart = km > self.rules.area_radius_km + ROUNDING_KM
            if post.location_confidence >= self.rules.precise_confidence:
                apart |= self.street & (km > self.rules.precise_radius_km + ROUNDING_KM)
        return apart

    def chosen(self, post: rules.PostFacts, cosines: list[float | None], near: dict[int, float],
               links: dict[int, str]) -> list[int]:
        """Positions of the candidates the post could join, or be unsure about, or that could
        hold its join back. `cosines`: the post's with each candidate's centroid, in order
        (rules.centroid_cosines); `near` and `links`: incident id → its near-duplicate score, link."""
        r = self.rules
        keep = self.kept.copy()
        if post.located:
            keep |= self.located & ~self._apart(post)
            unplaced = ~self.located
        else:
            unplaced = np.ones(self.size, dtype=bool)
        if not r.shortcut or post.address_keys:
            keep |= unplaced
        else:
            lowest = min(r.cosine_unlocated, r.cosine_surge)
            keep |= unplaced & np.array([c is not None and c >= lowest for c in cosines], dtype=bool)
            named = [n for key in places.names_keys(post.place_names) for n in self.by_name_key.get(key, ())]
            keep[named] |= unplaced[named]
        overlap = min(r.near_duplicate, r.retweet_duplicate)
        keep[[self.position[i] for i, score in near.items() if score >= overlap and i in self.position]] = True
        keep[[self.position[i] for i in links if i in self.position]] = True
        return np.flatnonzero(keep).tolist()
