"""Fits the intake lane reader (triage/lane.py): P(critical) from hashed words, for the lane only.

Rows: the handle training set and its hand translations (critical or not), class-balanced, and
the external urgency rows (real disaster streams, disaster-tweets negatives, rescue requests;
none of them critical), whose total weight equals the handle rows' (EXTERNAL_SHARE): they teach
the reader what a crisis stream's chatter looks like, so it does not fill the critical lane in a
burst.

The threshold is chosen out of fold (5 folds over the handle rows; a translation sits in its
source row's fold): the highest P(critical) at which the lane the intake picks (the keyword
pre-screen, or the reader at or above the threshold) holds at least LANE_RECALL of the critical
training rows. Its cost, the share of the external rows the lane then sends to the critical lane,
is reported beside it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold

from models.enums import Lane
from triage.corpus import Corpus
from triage.lane import N_FEATURES, LaneModel, features, save_lane_model
from triage.prescreen import fold, lane_for
from triage.training_fit import balanced

C = 4.0
EXTERNAL_SHARE = 1.0
LANE_RECALL = 0.95
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.05, 0.951, 0.05))


def matrix(texts: list[str]) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for i, text in enumerate(texts):
        feats = features(fold(text))
        rows += [i] * len(feats)
        cols += list(feats)
        vals += list(feats.values())
    return sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), N_FEATURES), dtype=np.float64)


def _fit(x_handle, y_handle: np.ndarray, x_external) -> LogisticRegression:
    weights = np.concatenate([balanced(y_handle.tolist(), [True, False]),
                              np.full(x_external.shape[0], EXTERNAL_SHARE * len(y_handle) / x_external.shape[0])])
    y = np.concatenate([y_handle, np.zeros(x_external.shape[0], dtype=bool)])
    return LogisticRegression(C=C, max_iter=3000, solver="liblinear").fit(
        sp.vstack([x_handle, x_external]), y, sample_weight=weights)


def lane_model(corpus: Corpus) -> tuple[LaneModel, dict]:
    handle = corpus.handle_train
    rows = handle + [r for _, r in corpus.handle_translated]
    source = list(range(len(handle))) + [i for i, _ in corpus.handle_translated]
    external = corpus.external_urgency
    y = np.array([r.urgency == "critical" for r in rows])
    x_rows, x_ext = matrix([r.text for r in rows]), matrix([r.text for r in external])

    oof, oof_ext = np.zeros(len(rows)), np.zeros(len(external))
    ext_folds = list(KFold(5, shuffle=True, random_state=7).split(np.zeros(len(external))))
    y_handle = y[: len(handle)]
    for k, (_, held_idx) in enumerate(StratifiedKFold(5, shuffle=True, random_state=7).split(
            np.zeros(len(handle)), y_handle)):
        held = set(held_idx.tolist())
        fit = [j for j, s in enumerate(source) if s not in held]
        test = [j for j, s in enumerate(source) if s in held]
        ext_fit, ext_test = ext_folds[k]
        model = _fit(x_rows[fit], y[fit], x_ext[ext_fit])
        oof[test] = model.predict_proba(x_rows[test])[:, 1]
        oof_ext[ext_test] = model.predict_proba(x_ext[ext_test])[:, 1]

    keyword = np.array([lane_for(r.text) == Lane.critical.value for r in rows])
    keyword_ext = np.array([lane_for(r.text) == Lane.critical.value for r in external])
    recall = {t: float((keyword | (oof >= t))[y].mean()) for t in THRESHOLDS}
    threshold = max((t for t in THRESHOLDS if recall[t] >= LANE_RECALL), default=THRESHOLDS[0])
    foreign = np.arange(len(rows)) >= len(handle)
    lane = keyword | (oof >= threshold)
    lane_ext = keyword_ext | (oof_ext >= threshold)
    not_critical = np.array([r.urgency in ("none", "low", "medium") for r in rows])
    info = {
        "C": C, "external_share": EXTERNAL_SHARE, "threshold": threshold, "lane_recall_target": LANE_RECALL,
        "oof_critical_in_lane": round(float(lane[y].mean()), 4),
        "oof_critical_in_lane_english": round(float(lane[y & ~foreign].mean()), 4),
        "oof_critical_in_lane_translated": round(float(lane[y & foreign].mean()), 4),
        "keyword_only_critical_in_lane": round(float(keyword[y].mean()), 4),
        "oof_medium_or_below_in_lane": round(float(lane[not_critical].mean()), 4),
        "keyword_only_medium_or_below_in_lane": round(float(keyword[not_critical].mean()), 4),
        "oof_external_in_lane": round(float(lane_ext.mean()), 4),
        "keyword_only_external_in_lane": round(float(keyword_ext.mean()), 4),
        "rows": {"handle": len(handle), "translated": len(rows) - len(handle), "external": len(external)},
    }
    final = _fit(x_rows, y, x_ext)
    return LaneModel(weight=final.coef_[0].astype(np.float32), bias=float(final.intercept_[0]),
                     threshold=threshold), info


def train_lane(corpus: Corpus, weights_dir: Path) -> dict:
    model, info = lane_model(corpus)
    save_lane_model(model, info, weights_dir)
    return {"lane": info}
