"""`flare drill --embedded`: the whole system as separate processes on embedded defaults."""
from __future__ import annotations

import pytest

from dashboard.drill import embedded_drill


@pytest.mark.slow
def test_embedded_drill_survives_a_worker_killed_mid_drill(capsys):
    assert embedded_drill(timeout=120, kill_worker_on_store=True)
    out = capsys.readouterr().out
    assert "(chaos) post stored: SIGKILL the worker" in out
    assert "drill PASSED" in out
    for stage in ("stored", "triaged", "in dispatch queue", "acknowledged by drill user",
                  "reply delivered to reporter"):
        assert f"PASS  {stage}" in out
