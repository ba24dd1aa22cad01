"""Encoder build-once under a lock, and the urgency decision rule."""
from __future__ import annotations

import threading

import numpy as np

from triage.classify import decide_urgency
from triage.encoder import INT8_FILE, MANIFEST_FILE, ensure_encoder_files, shared_encoder


def test_two_concurrent_builders_build_once(tmp_path):
    paths, errors = [], []

    def build():
        try:
            paths.append(ensure_encoder_files(tmp_path))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert paths[0] == paths[1] == tmp_path / INT8_FILE
    assert (tmp_path / MANIFEST_FILE).exists()
    assert not list(tmp_path.glob("*.tmp")), "no half-written files left behind"


def test_encoder_gives_unit_vectors(model_pipeline, triage_settings):
    from triage.encoder import default_cache_dir

    vectors = shared_encoder(default_cache_dir(triage_settings)).encode(["help", "", "a" * 3000])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)


THRESHOLDS = {"critical": 0.2, "high": 0.4, "medium": 0.5, "low": 0.5}


def test_recall_biased_thresholds_pick_the_more_urgent_level():
    # argmax is high, but P(critical) passes its low threshold → critical.
    level, _, _ = decide_urgency(np.array([0.3, 0.5, 0.1, 0.05, 0.05]), THRESHOLDS, 0.1)
    assert level == "critical"


def test_near_boundary_goes_to_review():
    level, near, _ = decide_urgency(np.array([0.15, 0.5, 0.2, 0.1, 0.05]), THRESHOLDS, 0.1)
    assert level == "high" and near


def test_model_sure_of_none_is_not_raised_by_threshold_but_reviewed():
    level, near, _ = decide_urgency(np.array([0.21, 0.0, 0.0, 0.0, 0.79]), THRESHOLDS, 0.1, 0.65)
    assert level == "none" and near
