"""A restarted `flare connectors` is polling again within moments: its process imports what
stores and queues posts, never the triage side it does not run (the model, grouping, their
numerics), which took seconds to import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NEVER = ["torch", "transformers", "spacy", "sklearn", "scipy", "datasketch", "flows.triage_batch", "grouping.finder"]
# Each platform's client library loads in that platform's own thread, as its sources are built
# (connectors.registry.source_builders): X and Reddit poll while atproto is still loading.
PER_PLATFORM = ["atproto", "atproto_client", "tweepy", "praw", "connectors.bluesky", "connectors.x", "connectors.reddit"]


def test_the_connectors_process_never_imports_the_triage_side():
    code = "import sys, json; import runtime.cli, runtime.connector_loop; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={"PYTHONPATH": str(ROOT)}, capture_output=True, text=True, check=True, timeout=120)
    loaded = set(json.loads(out.stdout))
    assert "flows.triage_queue" in loaded and "connectors.runner" in loaded
    assert [name for name in NEVER if name in loaded] == []
    assert [name for name in PER_PLATFORM if name in loaded] == []
