"""Fixtures for escalation tests: a real AppContext (DB + Redis) with a recording replier."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from esc_helpers import FAST_POLICY, RecordingReplier

from flows.context import AppContext, set_process_context


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policies.yaml"
    path.write_text(yaml.safe_dump(FAST_POLICY))
    return path


@pytest.fixture
def ctx(settings, policy_file, redis_conn) -> Iterator[AppContext]:
    settings = settings.model_copy(update={"escalation_policy_file": policy_file})
    c = AppContext.build(settings)
    c.repliers = {"x": RecordingReplier()}
    set_process_context(c)
    yield c
    set_process_context(None)
    c.close()
