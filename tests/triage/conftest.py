"""Triage fixtures: models load once per test session (the ONNX encoder is built on first use
into a per-machine temp cache, so later sessions start in seconds)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from config import Settings

MODEL_CACHE = Path(tempfile.gettempdir()) / "flare-triage-test-models"


@pytest.fixture(scope="session")
def triage_settings(tmp_path_factory) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("triage-data"),
                    triage={"model_cache_dir": str(MODEL_CACHE), "threads": 1})


@pytest.fixture(scope="session")
def model_pipeline(triage_settings):
    from triage.factory import build_pipeline

    pipeline = build_pipeline(triage_settings, kind="models")
    pipeline.many([])  # nothing loads until the first real post
    return pipeline


@pytest.fixture(scope="session")
def triage_text(model_pipeline):
    """Triage one text with the full model pipeline."""
    from triage.base import TriageInput

    def run(text: str, **kwargs):
        return model_pipeline(TriageInput(text=text, **kwargs))

    return run
