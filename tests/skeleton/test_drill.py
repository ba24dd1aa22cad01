"""`flare drill --embedded`: the whole system as separate processes on embedded defaults."""
from __future__ import annotations

import pytest

from runtime.drill import embedded_drill
from tests.demo_pipeline import MODEL_CACHE

STAGE_BUDGET = 240  # seconds each stage may take before the drill itself reports it failed


@pytest.mark.slow
@pytest.mark.timeout(STAGE_BUDGET * 3 + 300)  # the drill fails on its own, with every process's log
def test_embedded_drill_survives_a_worker_killed_mid_drill():
    # The replacement worker loads its models before it can pick the post up again: on a loaded
    # 2-core machine that alone has taken over a minute. What is asserted is that nothing is lost:
    # the post killed with its worker still goes the whole way. The worker reads the encoder the
    # test suite builds, so a fresh machine's first drill does not also export it.
    report = embedded_drill(timeout=STAGE_BUDGET, kill_worker_on_store=True, model_cache_dir=MODEL_CACHE)
    stages = {s.name: s for s in report.stages}
    assert stages["worker killed on store"].ok
    for name in ("system up, models loaded", "stored (connector → DB)", "triaged", "in dispatch queue",
                 "acknowledged by drill user", "reply delivered to reporter"):
        assert name in stages and stages[name].ok, f"{name}: {stages[name].detail if name in stages else 'not run'}"
    assert report.ok
