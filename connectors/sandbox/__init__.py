"""An offline imitation of X, Bluesky and Reddit for demos, tests and benchmarks."""
from connectors.sandbox.app import SandboxServer, create_sandbox_app, run_sandbox
from connectors.sandbox.scenario import DEMO_SCENARIO, load_scenario, parse_scenario, play_scenario
from connectors.sandbox.state import SandboxState

__all__ = [
    "DEMO_SCENARIO", "SandboxServer", "SandboxState", "create_sandbox_app", "load_scenario",
    "parse_scenario", "play_scenario", "run_sandbox",
]
