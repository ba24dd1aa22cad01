"""Shared by the burst tests: the scenario generator (loaded from bench/) and a platform double."""
from __future__ import annotations

import importlib.util
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dashboard.context import AppContext, set_process_context
from models import DeliveryReceipt

SCENARIO_PATH = Path(__file__).resolve().parents[2] / "bench" / "scenarios" / "burst.py"
# Shared with the triage tests: the ONNX encoder is exported once per machine, not per test.
MODEL_CACHE = Path(tempfile.gettempdir()) / "flare-triage-test-models"


def load_burst_module():
    """bench/ is not an installed package: load the generator from the source tree."""
    name = "flare_bench_burst_scenario"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCENARIO_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class AcceptingReplier:
    """Accepts every receipt instantly, so message jobs cost nothing in these tests."""

    platform = "x"

    def __init__(self) -> None:
        self.sent = 0

    def supports_dm(self, request) -> bool:
        return True

    def send(self, request) -> DeliveryReceipt:
        self.sent += 1
        return DeliveryReceipt(ok=True, platform_message_id=f"m{self.sent}")


@contextmanager
def triage_context(settings) -> Iterator[AppContext]:
    """The process context a worker has, with the shared model cache and a platform that accepts
    every receipt at once."""
    settings.triage.model_cache_dir = MODEL_CACHE
    c = AppContext.build(settings)
    c._repliers = {"x": AcceptingReplier()}
    set_process_context(c)
    try:
        yield c
    finally:
        set_process_context(None)
        c.close()
