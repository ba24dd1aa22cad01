"""Small trained heads on top of sentence embeddings, run in numpy (no sklearn at run time).

Each head is a (temperature-scaled) softmax/logistic layer stored in triage/weights/heads.npz,
with its classes, temperature and decision thresholds in triage/weights/heads.json.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

WEIGHTS_DIR = Path(__file__).parent / "weights"
HEADS_NPZ = "heads.npz"
HEADS_JSON = "heads.json"


@dataclass(slots=True)
class Head:
    name: str
    classes: list[str]
    weight: np.ndarray  # (dim, k) or (dim, 1) for a binary head
    bias: np.ndarray
    temperature: float = 1.0
    extra: dict = field(default_factory=dict)  # thresholds and notes from training

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, len(classes)) calibrated probabilities; binary heads give [p(0), p(1)]."""
        logits = (embeddings @ self.weight + self.bias) / self.temperature
        if logits.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-np.clip(logits[:, 0], -50, 50)))
            return np.stack([1.0 - p1, p1], axis=1)
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


@dataclass(slots=True)
class HeadSet:
    heads: dict[str, Head]
    meta: dict

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "unknown"))

    def __getitem__(self, name: str) -> Head:
        return self.heads[name]


def save_heads(heads: list[Head], meta: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays, described = {}, {}
    for h in heads:
        arrays[f"{h.name}__weight"] = h.weight.astype(np.float32)
        arrays[f"{h.name}__bias"] = h.bias.astype(np.float32)
        described[h.name] = {"classes": h.classes, "temperature": h.temperature, **h.extra}
    np.savez_compressed(out_dir / HEADS_NPZ, **arrays)
    (out_dir / HEADS_JSON).write_text(json.dumps({**meta, "heads": described}, indent=1))


def heads_available(weights_dir: Path = WEIGHTS_DIR) -> bool:
    return (weights_dir / HEADS_NPZ).exists() and (weights_dir / HEADS_JSON).exists()


def load_heads(weights_dir: Path = WEIGHTS_DIR) -> HeadSet:
    meta = json.loads((weights_dir / HEADS_JSON).read_text())
    with np.load(weights_dir / HEADS_NPZ) as arrays:
        heads = {}
        for name, desc in meta["heads"].items():
            extra = {k: v for k, v in desc.items() if k not in ("classes", "temperature")}
            heads[name] = Head(name, list(desc["classes"]), arrays[f"{name}__weight"],
                               arrays[f"{name}__bias"], float(desc["temperature"]), extra)
    return HeadSet(heads, {k: v for k, v in meta.items() if k != "heads"})
