"""Model decisions for a page of posts, each distinct input decided once per worker.

A burst repeats itself: retweets, copied warnings, "stay safe Manchester" posted by hundreds.
The triage pipeline scores every post alone (the encoder never pads a batch; see
triage/encoder.py), so its output is a function of the post's input and nothing else: the same
text, platform, DM flag, geotag and profile location get the same decision whether it is
computed now or was computed a second ago. `Decisions.many` therefore runs the pipeline once per
distinct input of a page, and remembers recent outputs (least recently used first out) so a copy
of a post decided earlier costs a dictionary look-up, not a model run.

Exact inputs only: no normalisation of the key (the stages read the raw text too), so a hit is
always the decision the pipeline would have made. An output the pipeline could not fully decide
(a stage failed, the rules fallback answered) is never remembered: the next copy is decided again.
Each caller gets its own copy of an output (acting adds reasons and flags to it): an output is
remembered as its pickle, and every copy is read from it (a third of the cost of a deepcopy).

Workers share what they decided: given a Redis client, a page's inputs this worker has not
decided are looked up in Redis first (one MGET per page), and what the pipeline computes is
written there (one pipelined SET per page) for SHARED_TTL_S, under its model version. With N
workers, a copy of a post one of them decided a moment ago is not decided again by each of the
others, so the model runs once per distinct input however many workers share the burst: on the
burst benchmark's 16,044 posts (10,583 distinct inputs) in pages of 32 dealt to the workers in
turn, 11,055 model runs with two workers and 11,373 with four, against 10,583 with the decisions
shared (the share decided without a model run 0.311 and 0.291, against 0.340). Redis unreachable
or slow costs only the sharing: the worker decides on its own, as before.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import redis

from models.domain import TriageOutput
from triage.base import TriageInput

log = logging.getLogger("flare.triage")
CACHE_SIZE = 20_000  # outputs remembered per worker (~3 kB each with the embedding)
# How long a decision stays shared between workers: copies of a post arrive within minutes of
# each other, and at 16,000 distinct posts a minute this keeps Redis to ~100 MB of decisions.
SHARED_TTL_S = 120
SHARED_PREFIX = "flare:decided:"


def shared_key(model_version: str, key: bytes) -> str:
    """Where a decision is shared: under the model version that made it, so workers on another
    version (a rolling upgrade) never read it."""
    return f"{SHARED_PREFIX}{model_version}:{key.hex()}"


def input_key(inp: TriageInput) -> Hashable:
    """Everything the pipeline reads of a post, as a digest: a key holds 32 bytes whatever the
    post's length (texts run to 20,000 characters), so the memory is bounded by CACHE_SIZE."""
    geo = (inp.geo.lat, inp.geo.lon, inp.geo.place) if inp.geo is not None else None
    fields = (inp.text, inp.platform, bool(inp.is_dm), geo, inp.author_location or "")
    return hashlib.sha256(repr(fields).encode("utf-8", "surrogatepass")).digest()


def _remembered(out: TriageOutput) -> bool:
    """False when a stage failed on the post (triage.base.Pipeline notes "undecided: <stage>
    failed (<error>)") or the rules answered for the model: such a failure may not recur. What
    the post itself leaves undecided ("undecided: location (no place named)") is its decision."""
    return not any(reason.startswith("rules fallback") or (reason.startswith("undecided:") and " failed (" in reason) for reason in out.reasons)


@dataclass
class CacheStats:
    posts: int = 0  # posts decided through the cache
    computed: int = 0  # of them, run through the pipeline


class Decisions:
    """A triage pipeline's `many`, with repeated inputs decided once (per page and per worker)."""

    def __init__(self, pipeline, size: int = CACHE_SIZE) -> None:
        self.pipeline = pipeline
        self.size = size
        self.stats = CacheStats()
        self._outputs: OrderedDict[Hashable, bytes] = OrderedDict()  # each output's pickle
        self._lock = threading.Lock()

    def many(self, inputs: Sequence[TriageInput]) -> list[TriageOutput]:
        return self.decide(inputs)[0]

    def decide(self, inputs: Sequence[TriageInput],
               shared: redis.Redis | None = None) -> tuple[list[TriageOutput], int]:
        """The outputs, and how many distinct inputs ran through the pipeline. With `shared`,
        decisions other workers made are used, and those made here are shared."""
        results: list[TriageOutput | None] = [None] * len(inputs)
        todo: dict[Hashable, list[int]] = {}
        with self._lock:
            for n, inp in enumerate(inputs):
                key = input_key(inp)
                known = self._outputs.get(key)
                if known is not None:
                    self._outputs.move_to_end(key)
                    results[n] = pickle.loads(known)
                else:
                    todo.setdefault(key, []).append(n)
        version = getattr(self.pipeline, "model_version", "")
        if todo and shared is not None and version:
            self._place(results, todo, self._shared(shared, version, list(todo)))
            todo = {key: rows for key, rows in todo.items() if results[rows[0]] is None}
        if todo:
            outs = self.pipeline.many([inputs[rows[0]] for rows in todo.values()])
            blobs = self._place(results, todo, dict(zip(todo, outs, strict=True)))
            if shared is not None and version:
                self._share(shared, version, blobs)
        with self._lock:
            self.stats.posts += len(inputs)
            self.stats.computed += len(todo)
        return results, len(todo)  # type: ignore[return-value]

    def _place(self, results: list, todo: dict[Hashable, list[int]],
               outs: dict[Hashable, TriageOutput]) -> dict[Hashable, bytes]:
        """Each output to the posts of its input (copies to all but the first), remembered here.
        Returns the pickles of the outputs remembered (what `_share` writes)."""
        remembered: dict[Hashable, bytes] = {}
        with self._lock:
            for key, out in outs.items():
                rows = todo[key]
                blob = pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
                if _remembered(out):
                    remembered[key] = self._outputs[key] = blob
                    self._outputs.move_to_end(key)
                results[rows[0]] = out
                for n in rows[1:]:
                    results[n] = pickle.loads(blob)
            while len(self._outputs) > self.size:
                self._outputs.popitem(last=False)
        return remembered

    @staticmethod
    def _shared(conn: redis.Redis, version: str, keys: list[Hashable]) -> dict[Hashable, TriageOutput]:
        """Decisions other workers shared, for these inputs (one round trip)."""
        try:
            found = conn.mget([shared_key(version, key) for key in keys])
        except redis.RedisError as exc:
            log.debug("shared decisions unavailable (%s); deciding here", exc)
            return {}
        outs: dict[Hashable, TriageOutput] = {}
        for key, blob in zip(keys, found, strict=True):
            if blob is None:
                continue
            try:
                out = pickle.loads(blob)  # written by workers of this deployment, as RQ's job arguments are
            except Exception:  # noqa: BLE001 - an unreadable entry is decided again here
                continue
            if isinstance(out, TriageOutput) and out.model_version == version and _remembered(out):
                outs[key] = out
        return outs

    @staticmethod
    def _share(conn: redis.Redis, version: str, blobs: dict[Hashable, bytes]) -> None:
        """Share these pickled outputs (one pipelined SET)."""
        if not blobs:
            return
        try:
            with conn.pipeline(transaction=False) as pipe:
                for key, blob in blobs.items():
                    pipe.set(shared_key(version, key), blob, ex=SHARED_TTL_S, nx=True)
                pipe.execute()
        except redis.RedisError as exc:
            log.debug("could not share %d decisions (%s)", len(blobs), exc)


STATS_KEY = "flare:stats:decisions"  # posts decided, and how many of them ran the pipeline


def count(redis_conn, posts: int, computed: int) -> None:
    """Add a page's figures to the shared counters (what `flare bench burst` reports)."""
    with redis_conn.pipeline(transaction=False) as pipe:
        pipe.hincrby(STATS_KEY, "posts", posts)
        pipe.hincrby(STATS_KEY, "computed", computed)
        pipe.execute()
