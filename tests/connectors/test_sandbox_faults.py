"""The sandbox's deterministic faults happen when asked, whatever the random ones do."""
from __future__ import annotations

from connectors.sandbox.faults import FaultConfig, decide


def test_the_next_write_loses_its_answer_even_inside_a_rate_limited_window():
    config = FaultConfig.from_json({"rate_limit_next": 1, "rate_limit_reset_seconds": 30, "rate_limit_rate": 1.0,
                                    "error_rate": 1.0, "lose_response_next": 1, "seed": 1})
    assert decide(config, is_write=False, now=100.0).kind == "rate_limit"  # the window opens
    assert decide(config, is_write=True, now=101.0).kind == "lose_response"  # asked for: it happens
    assert decide(config, is_write=True, now=102.0).kind == "rate_limit"  # once only
    assert config.lose_response_next == 0


def test_reads_never_lose_a_write_answer():
    config = FaultConfig.from_json({"lose_response_next": 1})
    assert decide(config, is_write=False, now=1.0).kind == ""
    assert decide(config, is_write=True, now=2.0).kind == "lose_response"


def test_writes_spared_by_the_platform_spare_them_all():
    config = FaultConfig.from_json({"lose_response_next": 1, "affect_writes": False})
    assert decide(config, is_write=True, now=1.0).kind == ""
