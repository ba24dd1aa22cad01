"""Heads that read the public datasets' own labels: category (handle set plus weak external
labels), TREC-IS priority and the Figure Eight request / medical / search-and-rescue heads."""
from __future__ import annotations

import numpy as np

from triage import datasets as ds
from triage.corpus import Corpus
from triage.heads import Head
from triage.metrics import macro_f1, per_class
from triage.signals import FEATURE_NAMES
from triage.training_fit import C_EXTERNAL, C_HANDLE, balanced, fit_head, sentence_only, weighted_set

TREC_BALANCE_POWERS = (0.0, 0.5, 1.0)  # 0: raw class frequencies, 1: fully balanced


def category_head(corpus: Corpus, emb: dict[str, np.ndarray]) -> Head:
    x, y, w, _ = weighted_set(corpus.handle_train, corpus.external_category, "category",
                               ds.CATEGORIES, emb, surface=False)
    head = fit_head(x, y, ds.CATEGORIES, w, C_HANDLE)
    head.name, head.extra = "category", {"features": FEATURE_NAMES}
    return head


def trec_head(corpus: Corpus, emb: dict[str, np.ndarray]) -> tuple[Head, dict]:
    """Class-weight strength chosen on whole held-out training events (every 4th event), never
    on the test events; then refit on all training events."""
    texts = [t for t, _ in corpus.trec_train]
    y = [p for _, p in corpus.trec_train]
    x = sentence_only(emb, texts)
    events = corpus.trec_train_events
    held = set(sorted(set(events))[::4])
    fit_idx = [i for i, e in enumerate(events) if e not in held]
    val_idx = [i for i, e in enumerate(events) if e in held]
    scores = {}
    for power in TREC_BALANCE_POWERS:
        y_fit = [y[i] for i in fit_idx]
        head = fit_head(x[fit_idx], y_fit, ds.TREC_PRIORITIES,
                    balanced(y_fit, ds.TREC_PRIORITIES) ** power, C_EXTERNAL)
        pred = [ds.TREC_PRIORITIES[k] for k in head.probabilities(x[val_idx]).argmax(1)]
        scores[power] = macro_f1(per_class([y[i] for i in val_idx], pred, ds.TREC_PRIORITIES))
    power = max(scores, key=scores.get)
    head = fit_head(x, y, ds.TREC_PRIORITIES, balanced(y, ds.TREC_PRIORITIES) ** power, C_EXTERNAL)
    head.name = "trec_priority"
    head.extra = {"trained_on": "TREC-IS 2018-2019 excluding the trecis2019A_test events",
                  "class_weight_power": power, "validation_events": sorted(held),
                  "validation_macro_f1_by_power": {str(k): v for k, v in scores.items()}}
    return head, {"trec_class_weight_power": power}


def figure_eight_head(corpus: Corpus, emb: dict[str, np.ndarray], target: str) -> Head:
    train = corpus.f8["train"]
    x = sentence_only(emb, [r["message"] for r in train])
    y = [str(r[target]) for r in train]
    head = fit_head(x, y, ["0", "1"], balanced(y, ["0", "1"]), C_EXTERNAL)
    head.name = f"f8_{target}"
    # Threshold for F1 chosen on the official validation split, never on test.
    val = corpus.f8["validation"]
    p = head.probabilities(sentence_only(emb, [r["message"] for r in val]))[:, 1]
    truth = np.array([r[target] for r in val])
    best = (0.0, 0.5)
    for t in np.arange(0.1, 0.96, 0.025):
        pred = p >= t
        tp = float((pred & (truth == 1)).sum())
        f1 = 2 * tp / max(1.0, pred.sum() + truth.sum())
        best = max(best, (f1, float(t)))
    head.extra = {"threshold": round(best[1], 3), "validation_f1": round(best[0], 4)}
    return head
