"""Bias-only fine-tuning of the MiniLM encoder on the handle training set (train time only).

The frozen sentence embedding reads "threat to life now" and "serious, no threat to life" as
near neighbours. Tuning only the encoder's bias and LayerNorm vectors (BitFit) moves them apart
while the 22M weight matrices stay those shipped in the PyPI package: the trained part is
~31k numbers (~120 KB), committed beside the heads and applied when the ONNX graph is built.

Because the tuned encoder has seen the training posts, their embeddings are no longer honest
inputs for the heads' out-of-fold thresholds. `cross_fitted_embeddings` therefore embeds each
training post with an encoder tuned without it (same folds as the heads' out-of-fold fit).

torch is imported inside functions: it is needed to train, never to run.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

EPOCHS = 3
BATCH = 32
LEARNING_RATE = 1e-3  # bias/LayerNorm vectors need a larger step than full fine-tuning's ~3e-5
HEAD_LEARNING_RATE = 1e-2
LOGIT_SCALE = 10.0  # unit-length embeddings: a scale lets the throwaway head reach confident logits
SEED = 7


def recipe_key(texts: Sequence[str], labels: Sequence[int],
               folds: list[tuple[np.ndarray, np.ndarray]]) -> str:
    """Names one tuning run: same posts, labels, folds and recipe give the same vectors (fixed
    seed), so `flare train` can reuse them when only the heads change."""
    digest = hashlib.sha256(repr((EPOCHS, BATCH, LEARNING_RATE, HEAD_LEARNING_RATE, LOGIT_SCALE,
                                  SEED)).encode())
    for text, label in zip(texts, labels):
        digest.update(f"{label}\t{text}\n".encode("utf-8", "replace"))
    for _, held in folds:
        digest.update(np.asarray(held, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def is_tuned_parameter(name: str) -> bool:
    return name.endswith(".bias") or "LayerNorm" in name


def tuned_identity(params: dict[str, np.ndarray]) -> str:
    """Short content hash of a tuned parameter set: names the ONNX build and embedding cache."""
    digest = hashlib.sha256()
    for name in sorted(params):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(params[name], dtype=np.float32).tobytes())
    return digest.hexdigest()[:12]


def load_tuned(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def save_tuned(params: dict[str, np.ndarray], path: Path) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **params)
    os.replace(tmp, path)


def _pool(model, batch):
    import torch

    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


def _load_base(model_dir: Path):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # six loads per `flare train`: keep its own bar readable
    return AutoTokenizer.from_pretrained(str(model_dir)), AutoModel.from_pretrained(str(model_dir))


def tune(model_dir: Path, texts: Sequence[str], labels: Sequence[int], n_classes: int,
         advance: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Tune bias/LayerNorm vectors with a throwaway linear head (class-balanced cross-entropy).

    Returns the tuned vectors by parameter name; deterministic for the same inputs."""
    import torch

    torch.manual_seed(SEED)
    tokenizer, model = _load_base(model_dir)
    for name, p in model.named_parameters():
        p.requires_grad = is_tuned_parameter(name)
    head = torch.nn.Linear(model.config.hidden_size, n_classes)
    optimiser = torch.optim.AdamW(
        [{"params": [p for p in model.parameters() if p.requires_grad], "lr": LEARNING_RATE},
         {"params": head.parameters(), "lr": HEAD_LEARNING_RATE}], weight_decay=0.01)
    y = np.asarray(labels)
    counts = np.maximum(np.bincount(y, minlength=n_classes), 1)
    loss_fn = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(len(y) / (n_classes * counts), dtype=torch.float32))
    rng = np.random.default_rng(SEED)
    model.train()
    for _ in range(EPOCHS):
        order = rng.permutation(len(texts))
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                              max_length=128, return_tensors="pt")
            loss = loss_fn(head(_pool(model, batch) * LOGIT_SCALE), torch.tensor(y[idx]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if advance:
                advance(len(idx))
    return {name: p.detach().numpy().copy() for name, p in model.named_parameters()
            if is_tuned_parameter(name)}


def embed_with(model_dir: Path, params: dict[str, np.ndarray], texts: Sequence[str]) -> np.ndarray:
    """fp32 torch embeddings of `texts` under tuned `params` (training only; runs use ONNX)."""
    import torch

    tokenizer, model = _load_base(model_dir)
    apply_tuned(model, params)
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), 64):
            batch = tokenizer(list(texts[start:start + 64]), padding=True, truncation=True,
                              max_length=128, return_tensors="pt")
            out.append(_pool(model, batch).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.hidden_size), np.float32)


def apply_tuned(model, params: dict[str, np.ndarray]) -> None:
    """Overwrite the named bias/LayerNorm vectors of a loaded transformers model in place."""
    import torch

    state = dict(model.named_parameters())
    unknown = sorted(set(params) - set(state))
    if unknown:
        raise ValueError(f"tuned encoder file does not match the installed model: {unknown[:3]}")
    with torch.no_grad():
        for name, value in params.items():
            if tuple(state[name].shape) != value.shape:
                raise ValueError(f"tuned parameter {name} has shape {value.shape}, "
                                 f"model has {tuple(state[name].shape)}")
            state[name].copy_(torch.from_numpy(np.asarray(value, dtype=np.float32)))


def cross_fitted_embeddings(model_dir: Path, texts: Sequence[str], labels: Sequence[int],
                            n_classes: int, folds: list[tuple[np.ndarray, np.ndarray]],
                            advance: Callable[[int], None] | None = None) -> np.ndarray:
    """Embed every text with an encoder tuned on the other folds only."""
    out = np.zeros((len(texts), 0), dtype=np.float32)
    for train_idx, held_idx in folds:
        params = tune(model_dir, [texts[i] for i in train_idx], [labels[i] for i in train_idx],
                      n_classes, advance)
        vectors = embed_with(model_dir, params, [texts[i] for i in held_idx])
        if out.shape[1] == 0:
            out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        out[held_idx] = vectors
    return out
