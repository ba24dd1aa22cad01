"""A small learned reader that picks the intake lane: is this post likely critical?

The intake runs before the model (triage/pipeline) and in the connectors process, which never
loads the triage side's numerics (sklearn, scipy, the encoders): so this reader is a logistic
regression over hashed word, word-pair and word-piece features, scored with numpy alone in
tens of microseconds a post. It is trained with the heads (`flare train`,
triage/lane_training.py) on the same rows as the urgency head (the handle training set, its hand
translations into other languages, and the external rows), and it reads any language those rows
hold, where the keyword pre-screen (triage/prescreen.py) knows only English words.

It only chooses a queue (a post it rates likely critical waits in the `urgent` lane): the model
still decides every post's urgency. A post it misses waits in the default lane as before; a post
it raises wrongly is triaged a little sooner than its turn.
"""
from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LANE_FILE = "lane.npz"
N_FEATURES = 2**18
PIECE = 4  # a word's first and last PIECE characters: "drowning" and "drowned" share "drow"
MAX_WORDS = 400  # a Reddit post can run to 10,000 characters: the start says what it is about


def features(folded: str) -> dict[int, float]:
    """Hashed features of folded text (triage.prescreen.fold): words, neighbouring word pairs and
    the start and end of longer words, L2-normalised counts."""
    words = folded.split()[:MAX_WORDS]
    keys = [f"w {w}" for w in words]
    keys += [f"b {a} {b}" for a, b in zip(words, words[1:])]
    keys += [f"p {w[:PIECE]}" for w in words if len(w) > PIECE]
    keys += [f"s {w[-PIECE:]}" for w in words if len(w) > PIECE]
    counts: dict[int, float] = {}
    for key in keys:
        index = zlib.crc32(key.encode("utf-8")) % N_FEATURES
        counts[index] = counts.get(index, 0.0) + 1.0
    norm = sum(v * v for v in counts.values()) ** 0.5 or 1.0
    return {i: v / norm for i, v in counts.items()}


@dataclass(frozen=True)
class LaneModel:
    weight: np.ndarray  # (N_FEATURES,) float32
    bias: float
    threshold: float  # P(critical) at or above which the intake raises a post (triage.prescreen)

    def p_critical(self, folded: str) -> float:
        feats = features(folded)
        score = self.bias
        if feats:
            index = np.fromiter(feats.keys(), dtype=np.int64, count=len(feats))
            value = np.fromiter(feats.values(), dtype=np.float32, count=len(feats))
            score += float(self.weight[index] @ value)
        return 0.5 * (1.0 + math.tanh(score / 2.0))  # the logistic function, with no overflow

    def reads_critical(self, folded: str) -> bool:
        return self.p_critical(folded) >= self.threshold


def save_lane_model(model: LaneModel, info: dict, weights_dir: Path) -> None:
    weights_dir = Path(weights_dir)
    np.savez_compressed(weights_dir / LANE_FILE, weight=model.weight.astype(np.float16),
                        bias=np.array([model.bias]), threshold=np.array([model.threshold]),
                        info=np.array(json.dumps(info, sort_keys=True)))


def load_lane_model(weights_dir: Path) -> LaneModel | None:
    """The trained lane reader, or None where no weights were trained (the keyword pre-screen
    then chooses alone)."""
    path = Path(weights_dir) / LANE_FILE
    if not path.exists():
        return None
    with np.load(path) as data:
        weight = data["weight"].astype(np.float32)
        if weight.shape != (N_FEATURES,):
            raise ValueError(f"{path}: expected {N_FEATURES} weights, found {weight.shape}")
        return LaneModel(weight=weight, bias=float(data["bias"][0]), threshold=float(data["threshold"][0]))


def lane_info(weights_dir: Path) -> dict:
    path = Path(weights_dir) / LANE_FILE
    with np.load(path) as data:
        return json.loads(str(data["info"]))

