"""The act transaction does not read its claimed posts again: what acting decides about each post
(disposition, who set it and when, the drill mark) is written in one statement, with the values
escalation.service.apply_triage set on the post, for every kind of outcome."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event
from sqlmodel import Session, select

from connectors.intake import persist_posts
from flows import triage_batch
from flows.context import AppContext
from flows.drill import DRILL_MARK
from models import LocationMention, Post, RawPost, TriageOutput

CASES = [  # text, author, urgency, needs review, what acting makes of it
    ("my neighbour collapsed, 4 Elm Road", "a1", "critical", False, "escalated"),
    ("smoke from a bin on Mill Lane", "a2", "medium", False, "monitoring"),
    ("my car was keyed overnight", "a3", "low", False, "redirected"),
    ("lovely sunset tonight", "a4", "none", False, "not_emergency"),
    ("is anyone else hearing sirens?", "a5", "low", True, "needs_review"),
    ("he is still not breathing, 4 Elm Road", "a1", "high", False, "attached"),  # a1's reply
    (f"{DRILL_MARK} drill: help at 9 Oak Road", "drill", "critical", False, "escalated"),
]


def test_acting_writes_every_posts_disposition_in_one_statement(settings):
    settings = settings.model_copy(update={"drill_author": "drill"})
    ctx = AppContext.build(settings)
    try:
        raws = [RawPost(platform="x", external_id=f"d{n}", text=text, raw_payload="{}", author_id=author,
                        author_handle=author, posted_at=datetime.now(UTC))
                for n, (text, author, *_rest) in enumerate(CASES)]
        ids = [p.post_id for p in persist_posts(ctx.engine, raws)]
        with Session(ctx.engine, expire_on_commit=False) as s:
            posts = {p.id: p for p in s.exec(select(Post).where(Post.id.in_(ids))).all()}
        decided = [(posts[post_id], TriageOutput(  # each from a place of its own, far from the others
            urgency=urgency, category="medical", confidence=0.9, language="en", needs_review=review,
            locations=[LocationMention(f"{n} Elm Road", "address", "text", 50.0 + n, -4.0 + n, 0.9)]))
            for n, (post_id, (_, _, urgency, review, _)) in enumerate(zip(ids, CASES, strict=True))]
        statements: list[str] = []
        listen = lambda conn, cursor, statement, *args: statements.append(statement)  # noqa: E731
        event.listen(ctx.engine, "before_cursor_execute", listen)
        try:
            # In arrival order: the reply comes after its reporter's incident is opened.
            for pair in decided:
                assert triage_batch._act(ctx, [pair], dict.fromkeys(ids, 1.0)) == 1
        finally:
            event.remove(ctx.engine, "before_cursor_execute", listen)
        with Session(ctx.engine) as s:
            stored = {p.id: p for p in s.exec(select(Post).where(Post.id.in_(ids))).all()}
    finally:
        ctx.close()
    for (post, _), (_, _, _, _, disposition) in zip(decided, CASES, strict=True):
        row = stored[post.id]
        assert (row.disposition, row.disposition_by, row.triage_state) == (disposition, "triage", "done")
        # What was set on the post in memory is what was stored.
        assert (row.disposition, row.disposition_by, row.disposition_at, row.is_test) == (
            post.disposition, post.disposition_by, post.disposition_at, post.is_test)
    assert [stored[i].is_test for i in ids] == [False] * 6 + [True]
    updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE POSTS")]
    assert len(updates) == 2 * len(CASES), "each group: its claim and one write of its dispositions"
    assert not [s for s in statements if "FROM posts" in s and "posts.raw_payload" in s], \
        "the claimed posts are not read again"
