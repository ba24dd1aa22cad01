"""Grouping compares wording only where the sentence encoder reads the language (grouping.finder)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from grouping import rules
from grouping.finder import post_facts
from models.domain import TriageOutput
from models.tables import Post

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
# What the English encoder makes of two unrelated posts it cannot read: nearly the same vector.
NOISE = np.array([0.6, 0.8, 0.0], dtype=np.float32)


def _facts(text: str, language: str) -> rules.PostFacts:
    post = Post(id=7, platform="x", external_id="7", author_id="a7", text=text, received_at=NOW)
    out = TriageOutput(urgency="critical", category="other", confidence=0.4, language=language, embedding=NOISE)
    return post_facts(post, out)


def _unplaced_incident() -> rules.Candidate:
    return rules.Candidate(incident_id=1, category="other", last_report_at=NOW - timedelta(minutes=2),
                           centroid=NOISE, report_count=1)


def test_two_emergencies_in_another_language_are_not_joined_by_the_english_encoders_noise():
    # A mother who collapsed, then a brother who drank rat poison: no place, no link, different words.
    facts = _facts("bhai ne chuha maar dawa pee li, ulti kar raha hai aur aankhen band ho rahi hain", "hi")
    assert facts.embedding is None
    decision = rules.decide(facts, [_unplaced_incident()])
    assert decision.incident_id is None


def test_english_posts_are_still_compared_by_wording():
    facts = _facts("there was a loud bang and smoke is pouring out everywhere", "en")
    assert facts.embedding is NOISE
    assert rules.decide(facts, [_unplaced_incident()]).incident_id == 1
