"""Reading cache for training and evaluation: each distinct text is read once per machine.

Stored next to the ONNX encoder (never committed), one directory per encoding mode: a dict of
sha1(text) → row in one .npy.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from triage.encoder import SentenceEncoder

CHUNK = 512


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()


class EmbeddingCache:
    def __init__(self, cache_dir: Path, encoder: SentenceEncoder) -> None:
        self.dir = Path(cache_dir) / f"embeddings-{encoder.mode}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.encoder = encoder
        self.index: dict[str, int] = {}
        self.matrix = np.zeros((0, encoder.reading_dim), dtype=np.float32)
        index_path, matrix_path = self.dir / "index.json", self.dir / "matrix.npy"
        if index_path.exists() and matrix_path.exists():
            self.index = json.loads(index_path.read_text())
            self.matrix = np.load(matrix_path)
            if len(self.index) != len(self.matrix):  # torn write: start again rather than misalign
                self.index, self.matrix = {}, np.zeros((0, encoder.reading_dim), dtype=np.float32)

    def embed(self, texts: list[str], advance: Callable[[int], None] | None = None) -> np.ndarray:
        keys = [_key(t) for t in texts]
        missing = list(dict.fromkeys(k_t for k_t in zip(keys, texts) if k_t[0] not in self.index))
        new_rows = []
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start:start + CHUNK]
            new_rows.append(self.encoder.read([t for _, t in chunk]))
            if advance:
                advance(len(chunk))
        if new_rows:
            base = len(self.matrix)
            self.matrix = np.concatenate([self.matrix, *new_rows])
            for offset, (k, _) in enumerate(missing):
                self.index[k] = base + offset
            self._save()
        return self.matrix[[self.index[k] for k in keys]] if keys else self.matrix[:0]

    def count_missing(self, texts: list[str]) -> int:
        return len({_key(t) for t in texts} - self.index.keys())

    def _save(self) -> None:
        tmp = self.dir / "matrix.tmp.npy"
        np.save(tmp, self.matrix)
        tmp.replace(self.dir / "matrix.npy")
        (self.dir / "index.json").write_text(json.dumps(self.index))
