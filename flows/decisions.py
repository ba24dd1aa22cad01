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
Each caller gets its own copy of an output (acting adds reasons and flags to it).
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from models.domain import TriageOutput
from triage.base import TriageInput

CACHE_SIZE = 20_000  # outputs remembered per worker (~3 kB each with the embedding)


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
        self._outputs: OrderedDict[Hashable, TriageOutput] = OrderedDict()
        self._lock = threading.Lock()

    def many(self, inputs: Sequence[TriageInput]) -> list[TriageOutput]:
        return self.decide(inputs)[0]

    def decide(self, inputs: Sequence[TriageInput]) -> tuple[list[TriageOutput], int]:
        """The outputs, and how many distinct inputs ran through the pipeline."""
        results: list[TriageOutput | None] = [None] * len(inputs)
        todo: dict[Hashable, list[int]] = {}
        with self._lock:
            for n, inp in enumerate(inputs):
                key = input_key(inp)
                known = self._outputs.get(key)
                if known is not None:
                    self._outputs.move_to_end(key)
                    results[n] = copy.deepcopy(known)
                else:
                    todo.setdefault(key, []).append(n)
        if todo:
            outs = self.pipeline.many([inputs[rows[0]] for rows in todo.values()])
            with self._lock:
                for (key, rows), out in zip(todo.items(), outs, strict=True):
                    if _remembered(out):
                        self._outputs[key] = copy.deepcopy(out)
                        self._outputs.move_to_end(key)
                    results[rows[0]] = out
                    for n in rows[1:]:
                        results[n] = copy.deepcopy(out)
                while len(self._outputs) > self.size:
                    self._outputs.popitem(last=False)
        with self._lock:
            self.stats.posts += len(inputs)
            self.stats.computed += len(todo)
        return results, len(todo)  # type: ignore[return-value]


STATS_KEY = "flare:stats:decisions"  # posts decided, and how many of them ran the pipeline


def count(redis_conn, posts: int, computed: int) -> None:
    """Add a page's figures to the shared counters (what `flare bench burst` reports)."""
    with redis_conn.pipeline(transaction=False) as pipe:
        pipe.hincrby(STATS_KEY, "posts", posts)
        pipe.hincrby(STATS_KEY, "computed", computed)
        pipe.execute()
