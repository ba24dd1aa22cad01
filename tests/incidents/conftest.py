"""Fixtures for incident tests: a real AppContext (DB + Redis) with a recording replier, as the
escalation tests use (their helpers are shared from tests/escalation)."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "escalation"))

from esc_helpers import FAST_POLICY, RecordingReplier  # noqa: E402

from flows.context import AppContext, set_process_context  # noqa: E402


@pytest.fixture
def ctx(settings, tmp_path: Path, redis_conn) -> Iterator[AppContext]:
    policy_file = tmp_path / "policies.yaml"
    policy_file.write_text(yaml.safe_dump(FAST_POLICY))
    c = AppContext.build(settings.model_copy(update={"escalation_policy_file": policy_file}))
    c.repliers = {"x": RecordingReplier()}
    set_process_context(c)
    yield c
    set_process_context(None)
    c.close()
