"""Is this post a reporter's follow-up? Asked for every page of a burst, the answer must cost the
same with a 9,000-report incident open as with none: each statement starts from the page's
authors (an index led by platform), never from the open incidents and all their reports."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, insert, text
from sqlmodel import Session, select

from grouping import finder
from models.tables import Incident, IncidentPost, Post
from models.types import utcnow

BURST = 2_000


def _incident(conn, status: str = "queued", age: timedelta = timedelta(0)) -> int:
    conn.execute(insert(Incident), [{"urgency": "critical", "category": "fire", "status": status,
                                     "created_at": utcnow() - age}])
    return conn.execute(text("SELECT max(id) FROM incidents")).scalar()


def _reports(conn, incident_id: int, rows: list[tuple[str, str, str]]) -> None:
    conn.execute(insert(Post), [{"platform": platform, "external_id": external_id, "author_id": author,
                                 "text": "smoke everywhere"} for platform, external_id, author in rows])
    ids = conn.execute(select(Post.id).where(Post.external_id.in_([e for _, e, _ in rows]))).scalars().all()
    conn.execute(insert(IncidentPost), [{"incident_id": incident_id, "post_id": post_id} for post_id in ids])


def _scene(engine) -> dict[str, int]:
    with engine.begin() as conn:
        burst = _incident(conn)
        _reports(conn, burst, [("x", f"b{i}", f"witness{i}") for i in range(BURST)])
        mine = _incident(conn)
        _reports(conn, mine, [("x", "m1", "reporter"), ("bluesky", "m2", "did:plc:reporter")])
        later = _incident(conn)  # the same reporter's more recent open incident wins
        _reports(conn, later, [("x", "m3", "reporter")])
        closed = _incident(conn, status="closed")
        _reports(conn, closed, [("x", "c1", "closed_reporter")])
        old = _incident(conn, age=finder.FOLLOW_UP_WINDOW + timedelta(hours=1))
        _reports(conn, old, [("x", "o1", "old_reporter")])
    return {"burst": burst, "mine": mine, "later": later}


def _page(authors: list[tuple[str, str]]) -> list[Post]:
    return [Post(platform=platform, external_id=f"new-{platform}-{author}", author_id=author, text="help")
            for platform, author in authors]


def test_follow_ups_are_the_authors_latest_open_recent_incident(engine):
    ids = _scene(engine)
    page = _page([("x", "reporter"), ("bluesky", "did:plc:reporter"), ("x", "witness7"),
                  ("x", "closed_reporter"), ("x", "old_reporter"), ("x", "stranger"),
                  ("bluesky", "witness8")])  # the same id on another platform is someone else
    with Session(engine) as s:
        found = finder.follow_up_incidents(s, page)
    assert found == {("x", "reporter"): ids["later"], ("bluesky", "did:plc:reporter"): ids["mine"],
                     ("x", "witness7"): ids["burst"]}


def _plans(engine, statements: list[tuple[str, tuple]]) -> list[list[str]]:
    with engine.connect() as conn:
        return [[row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()]
                for sql, params in statements]


def _recorded(engine, work) -> list[tuple[str, tuple]]:
    seen: list[tuple[str, tuple]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_no_statement_walks_the_open_incidents_reports(engine):
    """SQLite plans without statistics: as one join, a page of 16 authors or more made it start
    from the open incidents and read every report of the burst's incident (11-16 ms a page at
    9,000 reports, and growing with them; 0.2 ms as two statements). Pages fill up when a worker
    falls behind, so it fell further behind."""
    if engine.dialect.name != "sqlite":
        return  # PostgreSQL's plan follows its statistics (tests/burst/test_planner_statistics.py)
    _scene(engine)
    page = _page([("x", f"witness{i}") for i in range(0, 640, 10)] + [("x", "reporter")])
    with Session(engine) as s:
        statements = _recorded(engine, lambda: finder.follow_up_incidents(s, page))
        refs = {("x", f"b{i}") for i in range(64)}
        links = select(IncidentPost.incident_id).join(Post, Post.id == IncidentPost.post_id).where(
            finder.on_platform(Post.external_id, refs))
        statements += _recorded(engine, lambda: s.exec(links).all())
    memberships, incidents, linked = _plans(engine, statements)
    # Each starts from what the page names: its authors' or linked posts, or incidents by id.
    assert memberships[0] == "SEARCH posts USING COVERING INDEX ix_posts_platform_author (platform=? AND author_id=?)"
    assert incidents[0] == "SEARCH incidents USING INTEGER PRIMARY KEY (rowid=?)"
    assert linked[0].startswith("SEARCH posts USING COVERING INDEX") and "(platform=? AND external_id=?)" in linked[0]
    assert not [step for plan in (memberships, incidents, linked) for step in plan if step.startswith("SCAN")]
