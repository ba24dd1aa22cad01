"""Shared by the burst tests: the scenario generator (loaded from bench/) and a platform double."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tests.demo_pipeline import demo_context
from tests.fakes import AcceptingReplier

SCENARIO_PATH = Path(__file__).resolve().parents[2] / "bench" / "scenarios" / "burst.py"


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


def triage_context(settings):
    """A worker's process context with the full model and a platform that accepts every receipt
    at once (the demo tests' context, with this replier)."""
    return demo_context(settings, AcceptingReplier)
