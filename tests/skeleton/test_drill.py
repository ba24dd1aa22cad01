"""`flare drill --embedded`: the whole system as separate processes on embedded defaults."""
from __future__ import annotations

import pytest

from runtime.drill import embedded_drill


@pytest.mark.slow
def test_embedded_drill_survives_a_worker_killed_mid_drill(capsys):
    # The replacement worker loads its models before it can pick the post up again: on a loaded
    # 2-core machine that alone has taken over a minute, so each stage gets the same bound the
    # drill gives the first worker to start (what is asserted is that nothing is lost).
    assert embedded_drill(timeout=300, kill_worker_on_store=True)
    out = capsys.readouterr().out
    assert "(chaos) post stored: SIGKILL the worker" in out
    assert "drill PASSED" in out
    for stage in ("stored", "triaged", "in dispatch queue", "acknowledged by drill user",
                  "reply delivered to reporter"):
        assert f"PASS  {stage}" in out
