"""Near-duplicate text: MinHash signatures over character shingles, and a bounded LSH index of
recent incident posts that scores a new post against each incident's posts (grouping.rules reads
the score as "text overlap"; grouping.finder keeps one index per worker)."""
from __future__ import annotations

import re
from collections import OrderedDict
from functools import lru_cache

from datasketch import MinHash, MinHashLSH

from triage.prescreen import fold

RETWEET_PREFIX = re.compile(r"^(?:rt|qt)\s+@?\w+\s*:?\s*", re.I)
_HANDLES_AND_LINKS = re.compile(r"(?:https?://\S+|www\.\S+|@\w+)")
SHINGLE_CHARS = 5
NUM_PERM = 64


def shingles(text: str) -> set[bytes]:
    """Character 5-grams of the folded text without the retweet prefix, handles and links."""
    body = _HANDLES_AND_LINKS.sub(" ", RETWEET_PREFIX.sub("", text.strip()))
    folded = fold(body)
    if len(folded) < SHINGLE_CHARS:
        return {folded.encode("utf-8")} if folded else set()
    return {folded[i:i + SHINGLE_CHARS].encode("utf-8") for i in range(len(folded) - SHINGLE_CHARS + 1)}


@lru_cache(maxsize=1)
def _shared() -> dict:
    """Permutations drawn once per process, on first use: drawing them costs more than hashing
    a post. datasketch 2 also wants the hashing scheme they belong to; 1.x has no such argument."""
    template = MinHash(num_perm=NUM_PERM)
    shared = {"permutations": template.permutations}
    if hasattr(template, "scheme"):
        shared["scheme"] = template.scheme
    return shared


@lru_cache(maxsize=8192)
def minhash(text: str) -> MinHash | None:
    """The text's signature. Cached by text: a burst repeats itself word for word, and a
    signature is never changed once made (the index only reads it)."""
    grams = shingles(text)
    if not grams:
        return None
    m = MinHash(num_perm=NUM_PERM, **_shared())
    m.update_batch(list(grams))
    return m


@lru_cache(maxsize=8)
def _lsh_params(threshold: float) -> tuple[int, int]:
    """The LSH's bands and rows for a threshold, worked out once (datasketch integrates for them
    on every index it makes: milliseconds, and every act transaction makes one for its own posts)."""
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    return lsh.b, lsh.r


class NearDuplicateIndex:
    """MinHash LSH over recent incident posts (post → incident), bounded to `capacity` entries,
    the most recently seen kept.

    A query costs one Jaccard estimate per indexed post in its LSH buckets, and a burst's posts
    share their buckets. So a post whose text has the signature of one already indexed for its
    incident (a retweet, a copied report) is not indexed again: that entry counts as seen now.
    No answer changes, since `best_by_incident` reads the best Jaccard per incident and the two
    posts score the same. (Keeping only an incident's latest texts would
    bound a query further, but an incident's best scores would then fall as it grew.)"""

    def __init__(self, capacity: int = 20_000, threshold: float = 0.5) -> None:
        self.capacity = capacity
        self.lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM, params=_lsh_params(threshold))
        self.entries: dict[int, tuple[int, MinHash]] = {}  # post id → (incident id, signature)
        self.order: OrderedDict[int, None] = OrderedDict()  # post ids, least recently seen first
        self.by_signature: dict[tuple[int, bytes], int] = {}  # (incident id, signature) → post id
        self.version = 0  # changes whenever an answer of best_by_incident may change
        self.touched: dict[int, int] = {}  # incident id → version its entries last changed at

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, post_id: int, incident_id: int, text: str, signature: MinHash | None = None) -> None:
        if post_id in self.entries:
            return
        signature = signature or minhash(text)
        if signature is None:
            return
        key = (incident_id, signature.hashvalues.tobytes())
        same = self.by_signature.get(key)
        if same is not None:  # seen now; every answer stays as it was
            self.order.move_to_end(same)
            return
        while len(self.order) >= self.capacity:
            self._remove(next(iter(self.order)))
        self.version += 1
        self.touched[incident_id] = self.version
        self.lsh.insert(post_id, signature)
        self.entries[post_id] = (incident_id, signature)
        self.order[post_id] = None
        self.by_signature[key] = post_id

    def _remove(self, post_id: int) -> None:
        incident_id, signature = self.entries.pop(post_id)
        self.version += 1
        self.touched[incident_id] = self.version
        self.lsh.remove(post_id)
        del self.order[post_id]
        key = (incident_id, signature.hashvalues.tobytes())
        if self.by_signature.get(key) == post_id:
            del self.by_signature[key]

    def changed_since(self, version: int) -> set[int]:
        """Incidents whose indexed posts changed after `version` (their scores may differ now)."""
        return {incident_id for incident_id, at in self.touched.items() if at > version}

    def best_by_incident(self, signature: MinHash | None, only: set[int] | None = None) -> dict[int, float]:
        """Incident id → best Jaccard estimate among its indexed posts similar to `signature`
        (`only`: for these incidents alone; each incident's score depends on its posts alone)."""
        if signature is None:
            return {}
        best: dict[int, float] = {}
        for key in self.lsh.query(signature):
            incident_id, other = self.entries[key]
            if only is not None and incident_id not in only:
                continue
            jaccard = float(signature.jaccard(other))
            if jaccard > best.get(incident_id, 0.0):
                best[incident_id] = jaccard
        return best

    def move(self, from_incident: int, to_incident: int) -> None:
        """Officer merges: posts of the merged-away incident now count for the survivor."""
        self.version += 1
        self.touched[from_incident] = self.touched[to_incident] = self.version
        for post_id, (incident_id, signature) in list(self.entries.items()):
            if incident_id != from_incident:
                continue
            self.entries[post_id] = (to_incident, signature)
            key = signature.hashvalues.tobytes()
            if self.by_signature.get((from_incident, key)) == post_id:
                del self.by_signature[(from_incident, key)]
            self.by_signature.setdefault((to_incident, key), post_id)
