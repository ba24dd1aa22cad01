"""Bias-only encoder tuning: what is trained, how it is applied, and that heads and encoder match."""
from __future__ import annotations

import numpy as np
import pytest

from triage import finetune
from triage.encoder import encoder_identity, ensure_encoder_files, source_model_dir

TEXTS = ["help my dad collapsed and is not breathing", "there is a fire in our flat we are trapped",
         "my car was broken into last night", "is the bridge closed today",
         "this exam is killing me lol", "someone is following me i am scared"] * 2
LABELS = [0, 0, 2, 3, 4, 1] * 2


@pytest.fixture(scope="module")
def tuned_params():
    original = finetune.EPOCHS
    finetune.EPOCHS = 1
    try:
        return finetune.tune(source_model_dir(), TEXTS, LABELS, 5)
    finally:
        finetune.EPOCHS = original


def test_only_bias_and_layernorm_vectors_are_trained(tuned_params):
    from transformers import AutoModel

    base = dict(AutoModel.from_pretrained(str(source_model_dir())).named_parameters())
    assert tuned_params and all(finetune.is_tuned_parameter(n) for n in tuned_params)
    assert all(v.ndim == 1 for v in tuned_params.values()), "no weight matrix is shipped"
    assert sum(v.size for v in tuned_params.values()) < 50_000  # a small committed file
    moved = [n for n, v in tuned_params.items() if not np.allclose(v, base[n].detach().numpy())]
    assert len(moved) > len(tuned_params) // 2, "training changed the vectors"


def test_identity_follows_content(tuned_params, tmp_path):
    path = tmp_path / "tuned.npz"
    finetune.save_tuned(tuned_params, path)
    assert finetune.load_tuned(path).keys() == tuned_params.keys()
    assert encoder_identity(path) == finetune.tuned_identity(tuned_params)
    changed = dict(tuned_params)
    name = next(iter(changed))
    changed[name] = changed[name] + 0.01
    assert finetune.tuned_identity(changed) != finetune.tuned_identity(tuned_params)
    assert encoder_identity(None) == "base"


def test_mismatched_tuned_file_is_refused_with_a_clear_error():
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(source_model_dir()))
    with pytest.raises(ValueError, match="does not match the installed model"):
        finetune.apply_tuned(model, {"encoder.layer.99.output.dense.bias": np.zeros(384)})
    name = "encoder.layer.0.output.dense.bias"
    with pytest.raises(ValueError, match="shape"):
        finetune.apply_tuned(model, {name: np.zeros(7, dtype=np.float32)})


def test_tuned_build_is_separate_and_changes_the_vectors(tuned_params, tmp_path):
    from triage.embedcache import EmbeddingCache
    from triage.encoder import SentenceEncoder

    path = tmp_path / "tuned.npz"
    finetune.save_tuned(tuned_params, path)
    tuned_onnx = ensure_encoder_files(tmp_path / "cache", path)
    assert finetune.tuned_identity(tuned_params) in tuned_onnx.name
    base = SentenceEncoder(tmp_path / "cache")
    tuned = SentenceEncoder(tmp_path / "cache", tuned=path)
    assert tuned.model_path != base.model_path and tuned.identity != base.identity
    a, b = base.encode(TEXTS[:3]), tuned.encode(TEXTS[:3])
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-3)
    assert not np.allclose(a, b, atol=1e-3)
    # Torch fp32 (training) and the int8 ONNX graph (run time) agree on the tuned encoder.
    reference = finetune.embed_with(source_model_dir(), tuned_params, TEXTS[:3])
    assert (reference * b).sum(axis=1).min() > 0.97
    # Each build caches its vectors apart: no stale base vector is served for the tuned one.
    assert EmbeddingCache(tmp_path / "cache", tuned).dir != EmbeddingCache(tmp_path / "cache", base).dir


def test_heads_refuse_an_encoder_they_were_not_trained_with():
    from triage.classify import ClassifierStage
    from triage.heads import load_heads

    heads = load_heads()

    class OtherEncoder:
        identity = "0123456789ab"

    with pytest.raises(ValueError, match="rebuild with `flare train`"):
        ClassifierStage(heads, OtherEncoder())
