"""Plain metric helpers (no sklearn needed at evaluation time for these small computations)."""
from __future__ import annotations

import numpy as np


def prf(tp: float, fp: float, fn: float) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4),
            "support": int(tp + fn)}


def per_class(gold: list[str], pred: list[str], classes: list[str]) -> dict[str, dict]:
    out = {}
    for c in classes:
        tp = sum(g == c and p == c for g, p in zip(gold, pred))
        fp = sum(g != c and p == c for g, p in zip(gold, pred))
        fn = sum(g == c and p != c for g, p in zip(gold, pred))
        out[c] = prf(tp, fp, fn)
    return out


def macro_f1(report: dict[str, dict]) -> float:
    values = [v["f1"] for v in report.values() if v["support"] > 0]
    return round(float(np.mean(values)), 4) if values else 0.0


def confusion(gold: list[str], pred: list[str], classes: list[str]) -> list[list[int]]:
    """rows = gold, columns = predicted, in `classes` order."""
    index = {c: i for i, c in enumerate(classes)}
    matrix = [[0] * len(classes) for _ in classes]
    for g, p in zip(gold, pred):
        if g in index and p in index:
            matrix[index[g]][index[p]] += 1
    return matrix


def binary(gold: list[bool], pred: list[bool]) -> dict[str, float]:
    tp = sum(g and p for g, p in zip(gold, pred))
    fp = sum((not g) and p for g, p in zip(gold, pred))
    fn = sum(g and not p for g, p in zip(gold, pred))
    return prf(tp, fp, fn)


def expected_calibration_error(confidence: list[float], correct: list[bool], bins: int = 10) -> float:
    conf, ok = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    if not len(conf):
        return 0.0
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if mask.any():
            total += mask.mean() * abs(conf[mask].mean() - ok[mask].mean())
    return round(float(total), 4)


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
