"""What fitting every head shares: how much the external data weighs against the handle set, the
logistic-regression fit, phrase features beside the embedding, temperature scaling, softmax."""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from triage import datasets as ds
from triage.encoder import SENTENCE_DIM
from triage.heads import Head
from triage.signals import signal_features

# External data is weakly labelled and off-domain (disaster-time tweets, not posts to a handle):
# each source together weighs this fraction of the handle set.
# For urgency, out-of-fold critical precision on the handle set falls as external data weighs
# more (2,296 posts: 0.51 at 0.05, 0.50 at 0.1, 0.47 at 0.2), but with none at all the head
# flagged a quarter of ordinary disaster tweets (TREC-IS Low: news, commentary) as critical. At
# 0.05 about 4% of a TREC-IS sample comes out critical (3% at 0.2), so the external `none`/weak
# examples stay in at that small weight.
URGENCY_EXTERNAL_WEIGHT = 0.05
# Real tweets that use emergency words without an emergency (the disaster-tweets tuning half,
# target 0: jokes, lyrics, adverts) are urgency `none` examples weighing this fraction of the
# handle set: the model route (P(critical) past its low threshold), not the phrases, sent most
# of them to a dispatcher. Real relayed and third-person requests for rescue (the rescue set's
# tuning half) are urgency `high` examples at 0.05 of the handle set (72 posts): before, the head
# never saw one, and only R6 could raise them. Chosen on the tuning halves and the handle set:
# at weight 0.25 for the disaster tweets, 2.7 % of the tuning half's non-disaster tweets reached
# a dispatcher, at 1.5 1.7 % (out-of-fold critical precision on the handle set 0.464, from
# 0.471; the thresholds are re-chosen out of fold for the recall targets). Rescue rows at 0.1
# tipped a first-person "he stabbed me last night and i'm bleeding heavily" to P(none) 0.90
# (the net's veto); at 0.05 it stays critical, and without them "Please come save me. We are
# in <place>" read P(none) 0.94 (0.64 with them).
# Those tuning-half shares are in-sample (the tuning half is in the head's training data).
# Cross-fitted instead (five folds of the tuning half by a hash of the id, the urgency and
# literal heads refit without the fold, the fold decided by the run-time table), 3.3 % of its
# non-disaster tweets reach a dispatcher at 1.5, as on the report half (3.2 %); at 3.0 3.1 % and
# at 6.0 3.0 %, while out-of-fold critical recall on the handle set falls from 0.978 to 0.971 and
# 0.964: more weight is not the way to the 2 % target (DATA.md, "Tried and not kept").
SOURCE_WEIGHTS = {"disaster_tweets": 1.5, "rescue_requests": 0.05}
EXTERNAL_WEIGHT = 0.5
C_HANDLE = 2.0
C_EXTERNAL = 1.0


def balanced(labels: list[str], classes: list[str]) -> np.ndarray:
    counts = {c: max(1, labels.count(c)) for c in classes}
    return np.array([len(labels) / (len(classes) * counts[y]) for y in labels])


def fit_head(x: np.ndarray, y: list[str], classes: list[str], weights: np.ndarray, c: float) -> Head:
    model = LogisticRegression(C=c, max_iter=2000)
    y_idx = np.array([classes.index(v) for v in y])
    model.fit(x, y_idx, sample_weight=weights)
    weight = np.zeros((x.shape[1], len(classes)), dtype=np.float32)
    bias = np.full(len(classes), -30.0, dtype=np.float32)  # classes absent from the data: never
    if len(model.classes_) == 2 and len(classes) == 2:
        return Head("", classes, model.coef_.T.astype(np.float32), model.intercept_.astype(np.float32))
    for row, cls in enumerate(model.classes_):
        weight[:, cls] = model.coef_[row]
        bias[cls] = model.intercept_[row]
    return Head("", classes, weight, bias)


def weighted_set(handle: list[ds.LabelledText], external: list[ds.LabelledText], attr: str,
                  classes: list[str], emb: dict[str, np.ndarray], external_weight: float = EXTERNAL_WEIGHT,
                  surface: bool = True):
    rows_h = [r for r in handle if getattr(r, attr) is not None]
    y_h = [getattr(r, attr) for r in rows_h]
    w = list(balanced(y_h, classes))
    rows_x, y_x = [], []
    for source in sorted({r.source for r in external}):
        part = [r for r in external if r.source == source and getattr(r, attr) in classes]
        rows_x += part
        y_x += [getattr(r, attr) for r in part]
        weight = SOURCE_WEIGHTS.get(source, external_weight)
        w += [weight * len(rows_h) / max(1, len(part))] * len(part)
    x = with_signal_features([r.text for r in rows_h + rows_x], emb, surface)
    return x, y_h + y_x, np.array(w), len(rows_h)


def sentence_only(emb: dict[str, np.ndarray], texts: list[str]) -> np.ndarray:
    """The sentence embeddings of `texts` (the first half of each cached reading)."""
    return np.stack([emb[t][:SENTENCE_DIM] for t in texts])


def with_signal_features(texts: list[str], emb: dict[str, np.ndarray], surface: bool = True) -> np.ndarray:
    """What a head with phrase features reads: the whole reading (sentence and surface vectors;
    `surface=False`: the sentence embedding only), then the phrase features."""
    return np.hstack([np.stack([emb[t] for t in texts]) if surface else sentence_only(emb, texts),
                      np.array([signal_features(t) for t in texts], dtype=np.float32)])


def cumulative(probs: np.ndarray) -> np.ndarray:
    """P(at least this urgent) for critical, high, medium, low (classes ordered most urgent first)."""
    return np.cumsum(probs, axis=1)[:, :4]


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    best_t, best_nll = 1.0, np.inf
    for t in np.arange(0.3, 5.01, 0.05):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll = -logp[np.arange(len(y)), y].mean()
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def softmax(z: np.ndarray) -> np.ndarray:
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)
