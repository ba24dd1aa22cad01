"""The demo's own scenario through the whole path (full triage pipeline, batch grouping): every
emergency in it is a different event from a different person, so no incident may gather reports
from two reporters (it once put "someone's been following me, I'm scared" into a cardiac arrest)."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from sqlmodel import Session, select

from connectors.intake import persist_posts
from dashboard import jobs
from dashboard.context import AppContext, set_process_context
from esc_helpers import RecordingReplier, drain
from models import GeoPoint, IncidentPost, Post, RawPost
from triage.prescreen import lane_for

DEMO = Path(__file__).resolve().parents[2] / "connectors" / "sandbox" / "scenarios" / "demo.jsonl"
MODEL_CACHE = Path(tempfile.gettempdir()) / "flare-triage-test-models"  # shared with the triage tests


@pytest.fixture
def ctx(settings, redis_conn):
    settings.triage.model_cache_dir = MODEL_CACHE
    c = AppContext.build(settings)
    c._repliers = {p: RecordingReplier() for p in ("x", "bluesky", "reddit")}
    set_process_context(c)
    yield c
    set_process_context(None)
    c.close()


def test_no_incident_of_the_demo_scenario_gathers_two_reporters(ctx):
    lines = [json.loads(line) for line in DEMO.read_text().splitlines() if line.strip()]
    raws = [RawPost(platform=e["platform"], external_id=f"demo{n}", text=e["text"], raw_payload=json.dumps(e),
                    author_id=e["author"], author_handle=e["author"], is_dm=bool(e.get("is_dm")),
                    author_location=e.get("author_location", ""), malformed=bool(e.get("malformed")),
                    geo=GeoPoint(e["lat"], e["lon"]) if "lat" in e else None)
            for n, e in enumerate(lines)]
    stored = persist_posts(ctx.engine, raws, lambda r: lane_for(r.text, r.is_dm))
    jobs.on_persisted(ctx, stored)
    drain(ctx)
    with Session(ctx.engine) as s:
        rows = s.exec(select(IncidentPost.incident_id, Post.author_id, Post.text)
                      .join(Post, Post.id == IncidentPost.post_id)).all()
    by_incident: dict[int, set[str]] = {}
    for incident_id, author, _ in rows:
        by_incident.setdefault(incident_id, set()).add(author)
    assert len(by_incident) >= 6, "the scenario's emergencies open incidents"
    shared = {i: authors for i, authors in by_incident.items() if len(authors) > 1}
    assert not shared, [(i, [t for j, _, t in rows if j == i]) for i in shared]
