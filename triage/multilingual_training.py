"""Fits the multilingual urgency head (`urgency_multilingual`, classify's T3).

The same rows and weights as the English urgency head (the handle training set, balanced, and
the external urgency rows at their small source weights), embedded with multilingual-e5-small
instead of MiniLM, no phrase features (they name English words). The handle set is almost all
English: what the head learns about a scene carries over to the same scene in another language
because e5 puts translations close together. Of the external `none` rows, which outnumber the
rest 25 to 1, every sixth (by a hash of the text) is kept, so embedding them with the slower
encoder takes minutes, not an hour; their total weight is unchanged.

Regularisation (C) is chosen by out-of-fold accuracy on the handle training set; the thresholds
on P(at least this urgent) by the same recall-biased bootstrap as the English head, with no
safety-net floor (T3 only ever raises a post, the rules still run after it).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from triage import datasets as ds
from triage.corpus import Corpus
from triage.heads import Head
from triage.multilingual import ENCODER_NAME, HEAD_NAME, MultilingualReader
from triage.training_fit import (SOURCE_WEIGHTS, URGENCY_EXTERNAL_WEIGHT, balanced, fit_head,
                                 fit_temperature, softmax)
from triage.training_urgency import NONE_GATE, confirm_threshold, stable_thresholds

# Out-of-fold accuracy still rose at 16, the top of the first grid (lr-11: 0.669 / 0.701 / 0.715 /
# 0.719 for 2-16), so the grid goes on until it falls (lr-16, 2,572 rows: 0.673 / 0.699 / 0.711 /
# 0.715 / 0.717 / 0.712 for 2-64).
C_CHOICES = (2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
NONE_KEEP_EVERY = 6


class _CacheableReader(MultilingualReader):
    """The reader as EmbeddingCache wants an encoder: a mode naming the vectors (the reader's),
    and their size."""

    dim = reading_dim = 384

    def read(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)


def _kept(row: ds.LabelledText) -> bool:
    if row.urgency != "none" or row.source == "disaster_tweets":
        return True
    return int(hashlib.sha1(row.text.encode("utf-8")).hexdigest()[:8], 16) % NONE_KEEP_EVERY == 0


def external_rows(corpus: Corpus) -> list[ds.LabelledText]:
    return [r for r in corpus.external_urgency if _kept(r)]


def embed(texts: list[str], cache_dir: Path, progress: bool) -> dict[str, np.ndarray]:
    from rich.progress import Progress

    from triage.embedcache import EmbeddingCache

    cache = EmbeddingCache(cache_dir, _CacheableReader(cache_dir))
    with Progress(disable=not progress, transient=False) as bar:
        task = bar.add_task("embedding texts (multilingual)",
                            total=max(1, cache.count_missing(texts)))
        matrix = cache.embed(texts, lambda n: bar.advance(task, n))
    return dict(zip(texts, matrix))


def _fit(rows: list[ds.LabelledText], external: list[ds.LabelledText],
         emb: dict[str, np.ndarray], c: float) -> Head:
    y_h = [r.urgency for r in rows]
    weights = list(balanced(y_h, ds.URGENCIES))
    x_rows, y_x = [], []
    for source in sorted({r.source for r in external}):
        part = [r for r in external if r.source == source]
        x_rows += part
        y_x += [r.urgency for r in part]
        weight = SOURCE_WEIGHTS.get(source, URGENCY_EXTERNAL_WEIGHT)
        weights += [weight * len(rows) / len(part)] * len(part)
    x = np.stack([emb[r.text] for r in rows + x_rows])
    return fit_head(x, y_h + y_x, ds.URGENCIES, np.array(weights), c)


def _oof(handle: list[ds.LabelledText], translated: list[tuple[int, ds.LabelledText]],
         external: list[ds.LabelledText], emb: dict[str, np.ndarray], c: float) -> np.ndarray:
    """Out-of-fold logits for the handle rows, then the translated rows; a translation is in
    the fold of the row it translates, so no head has seen a scene it is scored on."""
    y = np.array([ds.URGENCIES.index(r.urgency) for r in handle])
    logits = np.zeros((len(handle) + len(translated), len(ds.URGENCIES)))
    for fit_idx, test_idx in StratifiedKFold(5, shuffle=True, random_state=7).split(
            np.zeros(len(handle)), y):
        held = set(test_idx.tolist())
        fit_rows = [handle[i] for i in fit_idx] + [r for i, r in translated if i not in held]
        test_rows = ([len(handle) + k for k, (i, _) in enumerate(translated) if i in held],
                     [r for i, r in translated if i in held])
        head = _fit(fit_rows, external, emb, c)
        for index, rows in ((test_idx, [handle[i] for i in test_idx]), test_rows):
            if rows:
                x = np.stack([emb[r.text] for r in rows])
                logits[np.asarray(index)] = x @ head.weight + head.bias
    return logits


def multilingual_head(corpus: Corpus, cache_dir: Path, progress: bool = True
                      ) -> tuple[Head, dict]:
    handle, external = corpus.handle_train, external_rows(corpus)
    translated = corpus.handle_translated
    rows = handle + [r for _, r in translated]
    emb = embed(list(dict.fromkeys(r.text for r in rows + external)), cache_dir, progress)
    y = np.array([ds.URGENCIES.index(r.urgency) for r in rows])
    oof = {c: _oof(handle, translated, external, emb, c) for c in C_CHOICES}
    accuracy = {c: float((logits.argmax(1) == y).mean()) for c, logits in oof.items()}
    c_best = max(C_CHOICES, key=lambda c: accuracy[c])
    temperature = fit_temperature(oof[c_best], y)
    probs = softmax(oof[c_best] / temperature)
    no_floor = np.full(len(y), len(ds.URGENCIES) - 1)
    thresholds = stable_thresholds(probs, y, no_floor, probs[:, -1] >= NONE_GATE)
    # C1b: the English head's rule for "critical — confirmed" (the lowest P(critical) on the grid
    # whose out-of-fold precision reaches the target), on this head's out-of-fold rows: the
    # handle training set and the translations, each in its source row's fold.
    confirm, confirm_precision, confirm_coverage = confirm_threshold(probs, y)
    head = _fit(rows, external, emb, c_best)
    head.name, head.temperature = HEAD_NAME, temperature
    head.extra = {"encoder": ENCODER_NAME, "thresholds": thresholds, "C": c_best,
                  "confirm": confirm, "oof_confirmed_precision": confirm_precision,
                  "oof_confirmed_coverage": confirm_coverage,
                  "external_rows": len(external), "translated_rows": len(translated),
                  "oof_accuracy_by_C": {str(c): round(a, 4) for c, a in accuracy.items()}}
    return head, {"multilingual_thresholds": thresholds, "multilingual_C": c_best,
                  "multilingual_confirm": confirm,
                  "multilingual_oof_accuracy": round(accuracy[c_best], 4)}


def add_multilingual_head(datasets_dir: Path | str, weights_dir: Path, cache_dir: Path,
                          progress: bool = True) -> dict:
    """Fit the multilingual head and store it beside the heads already in weights_dir (the
    English heads do not depend on it, so they need not be refitted)."""
    from triage.corpus import build_corpus
    from triage.heads import load_heads, save_heads

    heads = load_heads(weights_dir)
    head, summary = multilingual_head(build_corpus(Path(datasets_dir)), cache_dir, progress)
    kept = [h for name, h in heads.heads.items() if name != HEAD_NAME]
    save_heads(kept + [head], {**heads.meta, **summary}, weights_dir)
    return summary
