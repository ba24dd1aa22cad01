"""Grouping asks about the same candidates post after post: their centroids are stacked once, and
every decision is the one a fresh computation gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from grouping import rules as clustering


def _unit(rng, dim=384):
    v = rng.normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _candidates(rng, n):
    now = datetime.now(UTC)
    return [
        clustering.Candidate(
            incident_id=i,
            category="fire",
            last_report_at=now - timedelta(minutes=i % 7),
            lat=53.48 + 0.001 * i,
            lon=-2.23,
            location_confidence=0.6,
            centroid=_unit(rng) if i % 5 else None,
            report_count=1 + i,
        )
        for i in range(n)
    ]


def test_cosines_with_the_stack_kept_are_those_computed_afresh():
    rng = np.random.default_rng(7)
    cands = _candidates(rng, 40)
    posts = [_unit(rng) for _ in range(12)]
    for step, post in enumerate(posts):
        if step == 4:
            cands[3].centroid = _unit(rng)  # a joined incident's centroid is replaced, never changed in place
        if step == 8:
            cands = cands[:30]  # fewer candidates
        if step == 10:
            cands[0].centroid = np.ones(8, dtype=np.float32)  # another shape is left out
        kept = clustering._cosines(post, cands)
        clustering._STACKED = clustering._Stacked()
        fresh = clustering._cosines(post, cands)
        assert kept == fresh
        expected = [
            None
            if c.centroid is None or np.shape(c.centroid) != post.shape
            else float(np.dot(c.centroid.astype(np.float64), post) / (np.linalg.norm(c.centroid.astype(np.float64)) * np.linalg.norm(post.astype(np.float64))))
            for c in cands
        ]
        for got, want in zip(kept, expected, strict=True):
            assert (got is None and want is None) or abs(got - want) < 1e-12


def test_a_signature_is_made_once_per_text_and_reads_the_same():
    text = "huge explosion near Piccadilly, windows blown out"
    first, again = clustering.minhash(text), clustering.minhash(text)
    assert first is again
    assert first.jaccard(clustering.minhash("huge explosion near Piccadilly, windows blown out!")) > 0.8
    assert clustering.minhash("") is None
