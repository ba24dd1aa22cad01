"""The demo's own scenario through the whole path (full triage pipeline, batch grouping): every
emergency in it is a different event from a different person, so no incident may gather reports
from two reporters (it once put "someone's been following me, I'm scared" into a cardiac arrest)."""
from __future__ import annotations

import pytest
from sqlmodel import Session, select

from esc_helpers import RecordingReplier, drain
from models import IncidentPost, Post
from tests.demo_pipeline import demo_context, ingest_demo


@pytest.fixture
def ctx(settings, redis_conn):
    with demo_context(settings, RecordingReplier) as c:
        yield c


def test_no_incident_of_the_demo_scenario_gathers_two_reporters(ctx):
    ingest_demo(ctx)
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
