"""The demo's scripted scenario through the full triage pipeline (shared by the tests that need it)."""
from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from connectors.intake import persist_posts
from flows import intake
from flows.context import AppContext, set_process_context
from models import GeoPoint, RawPost
from triage.prescreen import lane_for

DEMO = Path(__file__).resolve().parents[1] / "connectors" / "sandbox" / "scenarios" / "demo.jsonl"
MODEL_CACHE = Path(tempfile.gettempdir()) / "flare-triage-test-models"  # shared with the triage tests


@contextmanager
def demo_context(settings, replier: Callable[[], object]) -> Iterator[AppContext]:
    """A process context with the full model (not the rules-only one most UI tests use) and a
    recording replier per platform."""
    settings.triage.model_cache_dir = MODEL_CACHE
    c = AppContext.build(settings)
    c.repliers = {p: replier() for p in ("x", "bluesky", "reddit")}
    set_process_context(c)
    try:
        yield c
    finally:
        set_process_context(None)
        c.close()


def ingest_demo(ctx: AppContext) -> None:
    """Store every post of the demo scenario and queue it for triage (the caller drains)."""
    lines = [json.loads(line) for line in DEMO.read_text().splitlines() if line.strip()]
    raws = [RawPost(platform=e["platform"], external_id=f"demo{n}", text=e["text"], raw_payload=json.dumps(e),
                    author_id=e["author"], author_handle=e["author"], is_dm=bool(e.get("is_dm")),
                    author_location=e.get("author_location", ""), malformed=bool(e.get("malformed")),
                    geo=GeoPoint(e["lat"], e["lon"]) if "lat" in e else None)
            for n, e in enumerate(lines)]
    intake.on_persisted(ctx, persist_posts(ctx.engine, raws, lambda r: lane_for(r.text, r.is_dm)))
