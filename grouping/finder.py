"""Which open incident does a triaged post join? The per-worker candidate index and its finder.

`BatchFinder` answers escalation.service.apply_triage, for each post of
a page: does this triaged post join an open incident? Two rules, in order:
  1. a follow-up from the same reporter on the same platform within 12 hours joins their
     open incident;
  2. otherwise grouping.rules decides, over open incidents updated within its window (of those,
     the ones the post could join: grouping.candidates), with reply/retweet links from platform
     ids, near-duplicate text (a per-process MinHash LSH index seeded from the database) and
     cosine over incident centroid embeddings (kept in Redis, so every worker shares them and a
     restarted worker finds them again).
On a join the incident's location becomes the confidence-weighted mean of its reports.
`after_triage_many` records a page's texts and embeddings for the incidents they ended up in.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import redis
from sqlalchemy import and_, or_
from sqlmodel import Session, select

from grouping import rules
from grouping.candidates import CandidateIndex
from grouping.near_duplicates import MinHash, NearDuplicateIndex, minhash
from models.domain import PossibleDuplicate, TriageOutput, TriageRow
from models.enums import IncidentStatus, Urgency
from models.events import held
from models.tables import Incident, IncidentPost, Post
from models.types import utcnow

log = logging.getLogger("flare.grouping")

# One conversation per reporter: a later message joins the reporter's open incident.
FOLLOW_UP_WINDOW = timedelta(hours=12)
RULES = rules.ClusterRules()
MAX_CANDIDATES = 200  # most recently updated open incidents considered per post
SEED_POSTS_PER_INCIDENT = 20  # texts indexed for an incident this process has not seen yet
SHARED_CACHE_SECONDS = 5.0  # how stale another worker's centroid update may be here
STATE_TTL_SECONDS = int(RULES.window.total_seconds()) * 3
_OPEN = [s.value for s in IncidentStatus if s.is_open]
_CANDIDATE_COLUMNS = (Incident.id, Incident.category, Incident.updated_at, Incident.silent,
                      Incident.lat, Incident.lon, Incident.location_confidence, Incident.report_count)


def state_key(incident_id: int) -> str:
    return f"flare:cluster:{incident_id}"


def places_key(incident_id: int) -> str:
    return f"flare:cluster:{incident_id}:places"


def named_places(out: TriageOutput) -> frozenset[str]:
    """Places named in the post's text (streets, landmarks, towns), whether or not geocoded."""
    return frozenset(m.text.strip().lower() for m in out.locations
                     if m.source == "text" and m.kind not in ("latlon", "profile") and m.text.strip())


class ClusterState:
    """Per-process view of the open incidents: near-duplicate index and centroid cache, and the
    grouping rules this process decides by."""

    def __init__(self, conn: redis.Redis, cluster_rules: rules.ClusterRules = RULES) -> None:
        self.redis = conn
        self.rules = cluster_rules
        self.index = NearDuplicateIndex()
        self.seeded: set[int] = set()  # incidents whose recent posts are in the index
        # incident id → (fetched at, centroid, named places)
        self.shared: dict[int, tuple[float, np.ndarray | None, frozenset[str]]] = {}
        self.lock = threading.Lock()

    # -- near-duplicates
    def seed(self, session: Session, incident_ids: list[int]) -> None:
        """Index recent posts of incidents first seen here (opened by another worker, or before
        this worker started)."""
        new = [i for i in incident_ids if i not in self.seeded]
        if not new:
            return
        rows = session.exec(
            select(IncidentPost.incident_id, Post.id, Post.text)
            .join(Post, Post.id == IncidentPost.post_id)
            .where(IncidentPost.incident_id.in_(new)).order_by(Post.id.desc())
            .limit(SEED_POSTS_PER_INCIDENT * len(new))).all()
        for incident_id, post_id, text in rows:
            self.index.add(post_id, incident_id, text or "")
        self.seeded.update(new)

    # -- centroids and named places (shared through Redis)
    def shared_for(self, incident_ids: list[int]) -> dict[int, tuple[np.ndarray | None, frozenset[str]]]:
        """Centroid embedding and named places of each incident, at most a few seconds stale."""
        now = time.monotonic()
        stale = [i for i in incident_ids
                 if i not in self.shared or now - self.shared[i][0] >= SHARED_CACHE_SECONDS]
        if stale:
            pipe = self.redis.pipeline(transaction=False)
            for i in stale:
                pipe.hget(state_key(i), "centroid")
                pipe.smembers(places_key(i))
            replies = pipe.execute()
            for n, i in enumerate(stale):
                raw, places = replies[2 * n], replies[2 * n + 1]
                vector = np.frombuffer(raw, dtype=np.float32).copy() if raw else None
                names = frozenset(p.decode("utf-8", "replace") for p in places or ())
                self.shared[i] = (now, vector, names)
        return {i: self.shared[i][1:] for i in incident_ids}

    def record_many(self, incident_id: int, embeddings: list[np.ndarray], places: frozenset[str]) -> None:
        """Running mean of member embeddings, and the places they named. Two workers updating
        one incident at the same instant may lose one report's contribution to the mean; the
        centroid only steers later decisions."""
        key = state_key(incident_id)
        pipe = self.redis.pipeline(transaction=False)
        if embeddings:
            current = self.redis.hmget(key, "centroid", "n")
            vector = np.sum(embeddings, axis=0, dtype=np.float32)
            n = int(current[1] or 0)
            if current[0] and n > 0:
                old = np.frombuffer(current[0], dtype=np.float32)
                if old.shape == vector.shape:
                    vector = old * n + vector
            vector = vector / (n + len(embeddings))
            norm = float(np.linalg.norm(vector))
            if norm > 0:
                vector = vector / norm
            pipe.hset(key, mapping={"centroid": vector.astype(np.float32).tobytes(), "n": n + len(embeddings)})
            pipe.expire(key, STATE_TTL_SECONDS)
        if places:
            pipe.sadd(places_key(incident_id), *sorted(places))
            pipe.expire(places_key(incident_id), STATE_TTL_SECONDS)
        pipe.execute()
        self.shared.pop(incident_id, None)


def post_location(post: Post, out: TriageOutput) -> tuple[float, float, float] | None:
    """The best placed location of a post: (lat, lon, confidence). Same choice as open_incident."""
    best = next((m for m in out.locations if m.lat is not None and m.lon is not None), None)
    if best is not None:
        return best.lat, best.lon, float(best.confidence)
    if post.geo_lat is not None and post.geo_lon is not None:
        return post.geo_lat, post.geo_lon, 0.9
    return None


def post_facts(post: Post, out: TriageOutput) -> rules.PostFacts:
    where = post_location(post, out)
    return rules.PostFacts(
        post_id=post.id, text=post.text or "", at=post.received_at or utcnow(), category=out.category,
        silent=out.silent, lat=where[0] if where else None, lon=where[1] if where else None,
        location_confidence=where[2] if where else 0.0, embedding=wording_vector(out),
        place_names=named_places(out), urgency=out.urgency)


# The embedding triage attaches to a post (out.embedding) is all-MiniLM-L6-v2's, an English
# sentence encoder: it reads text in another language as noise, and two such posts land close
# together whatever they say ("ammi gir gayi hai, hosh nahi aa raha" and "bhai ne chuha maar dawa
# pee li" would join as "same wording"). Wording is compared only for posts triage read as English
# or could not tell; the others are grouped by place, links and text overlap, never by cosine, and
# their vectors are kept out of incident centroids.
WORDING_LANGUAGES = frozenset({"en", "und"})


def wording_vector(out: TriageOutput):
    """The post's embedding where cosine over it compares wording, else None."""
    return out.embedding if out.language in WORDING_LANGUAGES else None


def _link_refs(post: Post) -> dict[str, str]:
    """Platform ids this post points at (the post it replies to or quotes, its thread's root)."""
    refs = {post.reply_to_external_id: "reply to or quote of a post in this incident"}
    if post.conversation_id and post.conversation_id != post.external_id:
        refs.setdefault(post.conversation_id, "same conversation thread as a post in this incident")
    refs.pop("", None)
    return refs


def on_platform(column, keys: set[tuple[str, str]]):
    """`(Post.platform, column)` is one of `keys`, written so that the index led by platform
    answers it: one `platform = ? AND column IN (...)` per platform. (A row-value IN makes SQLite
    scan the whole index; `column IN (...)` alone cannot use an index led by platform.)"""
    by_platform: dict[str, list[str]] = {}
    for platform, value in keys:
        by_platform.setdefault(platform, []).append(value)
    return or_(*(and_(Post.platform == platform, column.in_(values)) for platform, values in by_platform.items()))


def follow_up_incidents(session: Session, posts: list[Post]) -> dict[tuple[str, str], int]:
    """(platform, author) → their most recent open incident opened within the window.

    Two statements, each led by an index whatever the planner knows of the tables: the
    authors' posts that are in an incident, then which of those incidents are open and recent.
    As one join, a planner without statistics (SQLite, and PostgreSQL before its first ANALYZE)
    may start from the open incidents instead, and walk every report of a burst's incident for
    each page: a cost that grew with the incident (tests/burst/test_follow_up_plan.py)."""
    authors = {(p.platform, p.author_id) for p in posts if p.author_id}
    if not authors:
        return {}
    memberships = session.exec(
        select(Post.platform, Post.author_id, IncidentPost.incident_id)
        .join(IncidentPost, IncidentPost.post_id == Post.id)
        .where(on_platform(Post.author_id, authors))).all()
    if not memberships:
        return {}
    live = set(session.exec(select(Incident.id).where(
        Incident.id.in_({incident_id for _, _, incident_id in memberships}), Incident.status.in_(_OPEN),
        Incident.created_at >= utcnow() - FOLLOW_UP_WINDOW)).all())
    return {(platform, author): incident_id
            for platform, author, incident_id in sorted(memberships, key=lambda row: row[2]) if incident_id in live}


def _candidate(row, shared: dict, more_places: frozenset = frozenset(), **extra) -> rules.Candidate:
    """A grouping candidate from an incident row and its clustering state shared in Redis."""
    centroid, places = shared.get(row.id, (None, frozenset()))
    return rules.Candidate(
        incident_id=row.id, category=row.category, last_report_at=row.updated_at, silent=row.silent,
        lat=row.lat, lon=row.lon, location_confidence=row.location_confidence,
        centroid=centroid, place_names=places | more_places, report_count=row.report_count, **extra)


def _candidate_rows(session: Session, *where) -> dict:
    """Open, non-silent incidents matching `where`, most recently updated first, by id. Only the
    columns the decision reads: whole rows (policy snapshot, summary, JSON) for up to 200
    incidents on every triaged post were a large share of a burst's cost."""
    rows = session.exec(
        select(*_CANDIDATE_COLUMNS).where(Incident.status.in_(_OPEN), Incident.silent.is_(False), *where)
        .order_by(Incident.updated_at.desc()).limit(MAX_CANDIDATES)).all()
    return {row.id: row for row in rows}


@dataclass
class Plan:
    """A page's grouping worked out ahead of its transaction (`plan`), outside the grouping lock:
    for each post, what the grouping rules answered about each candidate incident
    (rules.Matches) and its near-duplicate scores against this worker's index. The finder
    in the transaction decides again against what the database says then, and reuses an answer
    only where everything it was computed from is unchanged; so the decisions are those made
    without a plan, and the lock is held for the incidents that changed in between."""

    matches: dict[int, rules.Matches] = field(default_factory=dict)  # post id → its answers
    near: dict[int, tuple[int, dict[int, float]]] = field(default_factory=dict)  # post id → (index version, scores)

    def reuse_counts(self) -> tuple[int, int]:
        """(answers reused, answers computed) over the plan's posts: the latest decision of each."""
        return (sum(m.reused for m in self.matches.values()), sum(m.computed for m in self.matches.values()))


class _Planned:
    """An incident as a plan sees it: one the page itself would open (a negative id, never
    written), or an existing one named by its id only."""

    def __init__(self, incident_id: int, status: str = IncidentStatus.new.value, **facts) -> None:
        self.id, self.status = incident_id, status
        for name, value in facts.items():
            setattr(self, name, value)


class BatchFinder:
    """`find_incident` for a batch of triaged posts in one transaction, with the database asked
    once per batch instead of several times per post.

    Built after the batch's posts are marked triaged (so the transaction holds the write lock
    on SQLite). Joined incidents are locked (FOR UPDATE where the database has it) before
    anything is appended to them, so two workers never fork an incident's event chain.
    Incidents opened or joined by earlier posts of the batch count for later ones at once.

    With a `plan` made for these posts before the transaction, each decision reuses the plan's
    answers for candidates unchanged since (see Plan). `dry`: the finder `plan` runs, outside
    any transaction that writes: it locks nothing and changes no row.
    """

    def __init__(self, state: ClusterState, session: Session, posts: list[Post],
                 records: dict[int, TriageRow], plan: Plan | None = None, dry: bool = False) -> None:
        self.state, self.session, self.records = state, session, records
        self.plan = plan if plan is not None else Plan()
        self.dry = dry
        # Answers are remembered for a later decision of the same post: while planning, and
        # when deciding again with a plan. A post decided once under the lock needs none.
        self.remember = dry or plan is not None
        self.planned: dict[int, _Planned] = {}  # dry: incidents the page would open
        # The batch's own posts, by the incident they were placed in: this worker's index learns
        # them after the commit (after_triage_many), so a group rolled back leaves nothing there.
        self.own_index = NearDuplicateIndex()
        self.candidates = _candidate_rows(session, Incident.updated_at >= utcnow() - state.rules.window)
        self.follow_ups = follow_up_incidents(session, posts)
        self.links = self._links(posts)
        self.extra: dict[int, rules.Candidate] = {}  # incidents opened by this batch
        self.centroids: dict[int, np.ndarray] = {}  # of the incidents this batch opened
        self.places: dict[int, frozenset[str]] = {}
        self.locked: set[int] = set()
        self.weights: dict[int, float] = {}  # location weight of each joined incident
        self.known: dict[int, rules.Candidate] | None = None  # see _known
        self.known_list: list[rules.Candidate] = []
        self.index: CandidateIndex | None = None  # of the known candidates, built with them
        self.index_seeded = False  # this worker's near-duplicate index holds the candidates' recent posts
        self.shared_places: dict[int, frozenset[str]] = {}
        self.signatures: dict[int, MinHash | None] = {}  # post id → its MinHash, computed once

    def _links(self, posts: list[Post]) -> dict[int, dict[int, str]]:
        """post id → {incident id: why} for replies, quotes and threads of incident posts."""
        refs: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for post in posts:
            for external_id, why in _link_refs(post).items():
                refs.setdefault((post.platform, external_id), []).append((post.id, why))
        if not refs:
            return {}
        rows = self.session.exec(
            select(IncidentPost.incident_id, Post.platform, Post.external_id)
            .join(Post, Post.id == IncidentPost.post_id)
            .where(on_platform(Post.external_id, set(refs)))).all()
        found: dict[int, dict[int, str]] = {}
        for incident_id, platform, external_id in rows:
            for post_id, why in refs.get((platform, external_id), ()):
                found.setdefault(post_id, {})[incident_id] = why
        if unseen := {i for links in found.values() for i in links} - self.candidates.keys():
            self.candidates.update(_candidate_rows(self.session, Incident.id.in_(list(unseen))))
        return found

    def _known(self) -> list[rules.Candidate]:
        """The open incidents of the database as grouping candidates, built once per batch with
        their shared centroids and places (the places this batch's posts named are added as
        they are placed), and their index; only a post's near-duplicate score and links are its
        own. (An incident the batch opens is never among them: it is an `extra`.)"""
        if self.known is None:
            ids = list(self.candidates)
            try:
                shared = self.state.shared_for(ids)
            except redis.RedisError:  # without centroids, place, links and near-duplicates still decide
                log.warning("clustering state unavailable in Redis; deciding without embeddings")
                shared = {}
            self.known = {i: _candidate(self.candidates[i], shared) for i in ids}
            self.known_list = list(self.known.values())
            self.index = CandidateIndex(self.known_list, self.state.rules)
            self.shared_places = {i: cand.place_names for i, cand in self.known.items()}
        return self.known_list

    def _lock(self, incident_id: int) -> Incident:
        if self.dry:
            if incident_id in self.planned:
                return self.planned[incident_id]
            if incident_id in self.candidates:
                return _Planned(incident_id)
            return self.session.get(Incident, incident_id)
        incident = self.session.get(Incident, incident_id, with_for_update=incident_id not in self.locked)
        if incident_id not in self.locked:
            self.locked.add(incident_id)
            held(self.session, (incident_id,))
        return incident

    def _near(self, post_id: int, signature) -> dict[int, float]:
        """Near-duplicate scores against this worker's index (the plan's, if the index has not
        changed since) and against the batch's own placed posts. Under state.lock."""
        index = self.state.index
        seen = self.plan.near.get(post_id)
        if seen is not None and seen[0] == index.version:
            near = seen[1]
        elif seen is not None:  # only the incidents whose indexed posts changed are scored again
            changed = index.changed_since(seen[0])
            near = {i: score for i, score in seen[1].items() if i not in changed}
            near.update(index.best_by_incident(signature, only=changed))
            self.plan.near[post_id] = (index.version, near)
        else:
            near = index.best_by_incident(signature)
            self.plan.near[post_id] = (index.version, near)
        own = self.own_index.best_by_incident(signature)
        if not own:
            return near
        merged = dict(near)
        for incident_id, score in own.items():
            if score > merged.get(incident_id, 0.0):
                merged[incident_id] = score
        return merged

    def opened(self, post: Post, out: TriageOutput) -> _Planned:
        """dry: the incident this post would open (as escalation.service.open_incident fills it)."""
        where = next((m for m in out.locations if m.lat is not None), None)
        planned = _Planned(
            -1 - len(self.planned), category=out.category, updated_at=utcnow(), silent=out.silent,
            lat=where.lat if where else post.geo_lat, lon=where.lon if where else post.geo_lon,
            location_confidence=where.confidence if where else (0.9 if post.geo_lat is not None else 0.0),
            report_count=1)
        self.planned[planned.id] = planned
        return planned

    def find(self, session: Session, post: Post, out: TriageOutput):
        record = self.records.get(post.id)
        follow_up = self.follow_ups.get((post.platform, post.author_id))
        if follow_up is not None and post.author_id:
            return self._lock(follow_up), "follow-up from the same reporter", None
        facts = post_facts(post, out)
        if facts.silent:
            _note(record, "clustering: new incident — silent contact, kept apart")
            return None
        if not self.candidates and not self.extra:
            _note(record, "clustering: new incident — no open incident to join")
            return None
        signature = self.signatures[post.id] = minhash(facts.text)
        with self.state.lock:
            # Once per batch (its candidates do not change). A plan reads the index as it is:
            # seeding waits for the transaction.
            if not self.dry and not self.index_seeded:
                self.state.seed(session, list(self.candidates))
                self.index_seeded = True
            near = self._near(post.id, signature)
        links = self.links.get(post.id, {})
        known = self._known()
        everything = [*known, *self.extra.values()]
        cosines = rules.centroid_cosines(facts.embedding, everything)
        # Only the candidates the post could join (grouping.candidates); the incidents this batch
        # opened, a page's worth at most, are all matched.
        chosen = [*self.index.chosen(facts, cosines[:len(known)], near, links), *range(len(known), len(everything))]
        candidates = []
        for n in chosen:
            cand = everything[n]
            cand.near_duplicate = near.get(cand.incident_id, 0.0)
            cand.link = links.get(cand.incident_id, "")
            candidates.append(cand)
        matches = self.plan.matches.setdefault(post.id, rules.Matches()) if self.remember else None
        decision = rules.decide(facts, candidates, self.state.rules, matches, [cosines[n] for n in chosen])
        if decision.incident_id is None:
            _note(record, f"clustering: new incident — {decision.reason}")
            return _possible_duplicate(decision)
        incident = self._lock(decision.incident_id)
        if not self.dry:
            self._merge_location(incident, post_location(post, out))
        return incident, decision.reason, decision.similarity

    def reporter(self, session: Session, post: Post) -> Incident | None:
        """The open incident this post's reporter is already in (one conversation per reporter)."""
        incident_id = self.follow_ups.get((post.platform, post.author_id)) if post.author_id else None
        return self._lock(incident_id) if incident_id is not None else None

    def _merge_location(self, incident: Incident, where: tuple[float, float, float] | None) -> None:
        """The incident's location becomes the weighted mean of its reports' (weight: confidence
        squared, accumulated in Redis); each incident's weight is read once per batch."""
        if where is None:
            return
        if incident.id not in self.weights:
            try:
                stored = self.state.redis.hget(state_key(incident.id), "location_weight")
            except redis.RedisError:  # the join stands; the estimate restarts from the incident's own
                stored = None
            placed = incident.lat is not None and incident.lon is not None
            self.weights[incident.id] = float(stored) if stored else (
                incident.location_confidence ** 2 if placed else 0.0)
        old = None
        if incident.lat is not None and incident.lon is not None:
            old = (incident.lat, incident.lon, incident.location_confidence)
        merged, weight = rules.merged_location(old, self.weights[incident.id], where)
        if merged is not None:
            incident.lat, incident.lon, incident.location_confidence = merged
            self.weights[incident.id] = weight

    def save_locations(self) -> None:
        """After the commit: the merged location weights, for the next batch on any worker."""
        if not self.weights:
            return
        try:
            pipe = self.state.redis.pipeline(transaction=False)
            for incident_id, weight in self.weights.items():
                pipe.hset(state_key(incident_id), "location_weight", weight)
                pipe.expire(state_key(incident_id), STATE_TTL_SECONDS)
            pipe.execute()
        except redis.RedisError:  # only steers later location estimates
            log.warning("could not save location weights of %d incidents", len(self.weights))

    def placed(self, post: Post, out: TriageOutput, incident: Incident | None) -> None:
        """After apply_triage: the post now counts for its incident within this batch."""
        if incident is None:
            return
        if post.author_id:
            self.follow_ups.setdefault((post.platform, post.author_id), incident.id)
        if out.silent:
            return
        self.own_index.add(post.id, incident.id, post.text or "", self.signatures.pop(post.id, None))
        places = named_places(out)
        self.places[incident.id] = self.places.get(incident.id, frozenset()) | places
        if self.known is not None and incident.id in self.known:
            self.known[incident.id].place_names = self.shared_places[incident.id] | self.places[incident.id]
            self.index.add_places(incident.id, places)
        if wording_vector(out) is not None and incident.id not in self.candidates:
            vector = np.asarray(out.embedding, dtype=np.float32)
            old = self.centroids.get(incident.id)
            if old is not None and old.shape == vector.shape:
                vector = old + vector
                vector = vector / (float(np.linalg.norm(vector)) or 1.0)
            self.centroids[incident.id] = vector
        cand = self.extra.get(incident.id)
        if cand is None and incident.id not in self.candidates:
            self.extra[incident.id] = rules.Candidate(
                incident_id=incident.id, category=incident.category, last_report_at=incident.updated_at,
                silent=incident.silent, lat=incident.lat, lon=incident.lon,
                location_confidence=incident.location_confidence, centroid=self.centroids.get(incident.id),
                place_names=self.places[incident.id], report_count=incident.report_count)
        elif cand is not None:
            cand.centroid, cand.place_names = self.centroids.get(incident.id), self.places[incident.id]
            cand.report_count, cand.lat, cand.lon = incident.report_count, incident.lat, incident.lon


GROUPED_URGENCIES = (Urgency.critical.value, Urgency.high.value, Urgency.medium.value)  # as apply_triage


def plan(state: ClusterState, session: Session, decided: list[tuple[Post, TriageOutput]]) -> Plan:
    """Work out a page's grouping before its transaction, against what the database says now
    and without taking any lock: the posts in order, as escalation.service.apply_triage and the
    act transaction place them (a reporter's open incident first; critical, high and medium
    posts grouped; incidents the page opens counting for its later posts). Run in a session
    that writes nothing. What it decides is only ever reused where it still holds (Plan)."""
    batch = BatchFinder(state, session, [post for post, _ in decided], {}, dry=True)
    with session.no_autoflush:
        for post, out in decided:
            own = batch.reporter(session, post)
            if own is not None and IncidentStatus(own.status).is_open:
                batch.placed(post, out, own)
                continue
            if out.urgency not in GROUPED_URGENCIES:
                continue
            match = batch.find(session, post, out)
            if match and not isinstance(match, PossibleDuplicate):
                incident = match[0]
                if isinstance(incident, _Planned) and incident.id in batch.planned:
                    incident.report_count += 1
            else:
                incident = batch.opened(post, out)
            batch.placed(post, out, incident)
    return batch.plan


def prepare(posts: list[Post]) -> None:
    """Before the grouping lock: what grouping reads of each post's text alone (rules.prepare),
    worked out once per distinct text, so the decisions under the lock find it done."""
    rules.prepare([post.text or "" for post in posts])


def _possible_duplicate(decision: rules.Decision) -> PossibleDuplicate | None:
    """An uncertain grouping opens a new incident marked "possible duplicate of #N"."""
    if decision.possible_duplicate_of is None:
        return None
    return PossibleDuplicate(decision.possible_duplicate_of, decision.reason)


def _note(record: TriageRow | None, reason: str) -> None:
    if record is not None:
        record.reasons = [*(record.reasons or []), reason]


def after_triage_many(state: ClusterState, placed: list[tuple[Post, TriageOutput, int]]) -> None:
    """After the batch's commit: its posts' embeddings and places count for their incidents, for
    every worker (one Redis round trip per incident, not per post)."""
    by_incident: dict[int, list[tuple[Post, TriageOutput]]] = {}
    for post, out, incident_id in placed:
        if incident_id and not out.silent:
            by_incident.setdefault(incident_id, []).append((post, out))
    for incident_id, members in by_incident.items():
        with state.lock:
            for post, _ in members:
                state.index.add(post.id, incident_id, post.text or "")
        vectors = [np.asarray(o.embedding, dtype=np.float32) for _, o in members if wording_vector(o) is not None]
        places = frozenset().union(*(named_places(o) for _, o in members))
        try:
            state.record_many(incident_id, vectors, places)
        except redis.RedisError:  # clustering state only steers later joins; triage is done
            log.exception("could not record %d posts for incident %s clustering", len(members), incident_id)



MAX_SURGES = 10  # incidents a decided post is previewed against
_RANK = {u.value: u.rank for u in Urgency}


class SurgePreview:
    """Would this decided post only add a report to an incident that already waits, unacknowledged,
    in the dispatch queue with many reports (a surge)? Asked before the post is acted on, so such
    posts can wait while posts that may open a new incident go first. The same grouping rules
    decide (rules.decide), against the few surging incidents only and without locks: an
    answer steers the order of work, never the post's incident, which is decided when it is
    acted on. A post more urgent than the incident raises it, so it is never an echo."""

    def __init__(self, state: ClusterState, session: Session) -> None:
        rows = session.exec(
            select(*_CANDIDATE_COLUMNS, Incident.urgency)
            .where(Incident.status == IncidentStatus.queued.value, Incident.silent.is_(False),
                   Incident.report_count >= state.rules.surge_reports,
                   Incident.updated_at >= utcnow() - state.rules.window)
            .order_by(Incident.report_count.desc()).limit(MAX_SURGES)).all()
        self.urgency = {row.id: row.urgency for row in rows}
        try:
            shared = state.shared_for(list(self.urgency)) if rows else {}
        except redis.RedisError:  # without centroids nothing is previewed: every post goes first
            shared, rows = {}, []
        self.candidates = [_candidate(i, shared) for i in rows]
        self.rules = state.rules

    def echo(self, post: Post, out: TriageOutput) -> bool:
        if not self.candidates:
            return False
        decision = rules.decide(post_facts(post, out), self.candidates, self.rules)
        if decision.incident_id is None:
            return False
        return _RANK.get(out.urgency, 9) >= _RANK.get(self.urgency[decision.incident_id], 9)
