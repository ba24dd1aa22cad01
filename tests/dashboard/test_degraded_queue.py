"""While the database refuses: posts the connectors held reach the dispatchers as provisional
entries (flows/dbless.py), the queue page and GET /api/v1/queue show them under a banner,
authorised from the copy of the credential's last check and audited through a buffered record
(dashboard/degraded.py); once the database answers the post becomes one incident the usual way and
the provisional entry goes."""
from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from dashboard.app import create_app
from dashboard.sessions import COPY_PREFIX, SessionCopies
from flows import dbless
from flows.context import AppContext, set_process_context
from flows.held import STREAM, hold_for_dispatch
from models.enums import TriageState
from models.tables import AuditEntry, Incident, IncidentPost, OutboundMessage, Post, User
from tests.dashboard.conftest import PASSWORDS, RecordingReplier, csrf_from, drain, ingest, raw_post
from tests.tcp_proxy import TcpProxy
from triage.factory import build_pipeline

CRITICAL = "my dad collapsed and is not breathing at 12 Station Road Leeds <script>alert(1)</script> please help"
FILLER = "what time does the recycling centre open on Sunday"


def _held(ext: str, text: str, **extra):
    return raw_post(ext, text, author=f"a{ext}", posted_at=datetime.now(UTC), **extra)


def _decide(ctx: AppContext, consumer: str = "w1") -> int:
    entries = dbless.take(ctx.redis, consumer, block_ms=10)
    return dbless.triage_entries(ctx, ctx.redis, entries, threading.Lock())


def test_held_critical_is_provisional_until_its_post_is_triaged_once(ctx, redis_conn):
    """A critical and a filler held during the outage (the critical read twice): one provisional
    entry, the critical's, with what triage read; the filler none. When the database answers the
    posts are stored and triaged the usual way: one incident, one receipt, and reconcile drops
    the entry."""
    critical, filler = _held("c1", CRITICAL), _held("f1", FILLER)
    hold_for_dispatch(redis_conn, [critical, filler])
    hold_for_dispatch(redis_conn, [critical])  # a restarted connector read it again
    assert _decide(ctx) == 1
    entries = dbless.provisional_entries(redis_conn)
    assert [(e["key"], e["urgency"], e["platform"]) for e in entries] == [("x:c1", "critical", "x")]
    assert entries[0]["text"] == CRITICAL and entries[0]["reasons"]
    assert redis_conn.xpending(STREAM, dbless.GROUP)["pending"] == 0  # every entry acknowledged
    assert redis_conn.xlen(STREAM) == 0  # and deleted

    assert dbless.reconcile(ctx.engine, redis_conn) == 0  # not triaged yet: it stays
    ingest(ctx, [critical, filler])  # the database answered: the connector stores what it held
    drain(ctx)
    assert dbless.reconcile(ctx.engine, redis_conn) == 1
    assert dbless.provisional_entries(redis_conn) == []
    with Session(ctx.engine) as s:
        post = s.exec(select(Post).where(Post.external_id == "c1")).one()
        incidents = s.exec(select(Incident)).all()
        assert post.triage_state == TriageState.done.value
        assert [i.urgency for i in incidents] == ["critical"]
        assert len(s.exec(select(IncidentPost)).all()) == 1
        receipts = s.exec(select(OutboundMessage).where(OutboundMessage.post_id == post.id)).all()
        assert len(receipts) <= 1


def test_a_post_already_acted_on_is_not_shown_again(ctx, redis_conn):
    """A connectors process started into the outage reads from the platform's newest: a critical
    already triaged and queued is read again, and is not shown beside its incident."""
    critical = _held("c2", CRITICAL)
    ingest(ctx, [critical])
    drain(ctx)
    assert redis_conn.exists(dbless.TRIAGED_PREFIX + "x:c2")  # the usual triage marked it
    hold_for_dispatch(redis_conn, [critical])
    assert _decide(ctx) == 0
    assert dbless.provisional_entries(redis_conn) == []


def test_a_post_the_database_has_triaged_goes_at_the_next_reconcile(ctx, redis_conn):
    critical = _held("c5", CRITICAL)
    hold_for_dispatch(redis_conn, [critical])  # read during an outage that ended as it was decided
    assert _decide(ctx) == 1
    ingest(ctx, [critical])
    drain(ctx)
    assert dbless.reconcile(ctx.engine, redis_conn) == 1
    assert dbless.provisional_entries(redis_conn) == []


def test_an_entry_a_worker_took_and_did_not_finish_is_taken_over(ctx, redis_conn):
    hold_for_dispatch(redis_conn, [_held("c3", CRITICAL)])
    taken = dbless.take(redis_conn, "dead-worker", block_ms=10)
    assert [post["external_id"] for _, post in taken] == ["c3"]  # then the worker died
    assert dbless.take(redis_conn, "w2", block_ms=10, claim_idle_ms=60_000) == []  # still its claim
    again = dbless.take(redis_conn, "w2", block_ms=10, claim_idle_ms=0)
    assert [post["external_id"] for _, post in again] == ["c3"]
    dbless.triage_entries(ctx, redis_conn, again, threading.Lock())
    assert [e["key"] for e in dbless.provisional_entries(redis_conn)] == ["x:c3"]


def test_stale_entries_are_dropped(ctx, redis_conn):
    hold_for_dispatch(redis_conn, [_held("c4", CRITICAL)])
    _decide(ctx)
    assert dbless.reconcile(ctx.engine, redis_conn, now=datetime.now(UTC).timestamp() + 1.0) == 0
    later = datetime.now(UTC).timestamp() + dbless.PROVISIONAL_MAX_AGE_S + 60
    assert dbless.reconcile(ctx.engine, redis_conn, now=later) == 1


# ----------------------------------------------------------------------------- the dashboard
@pytest.fixture
def cut(settings, redis_conn):
    """An app whose database sits behind a proxy the test cuts, and one signed-in person per role."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("cutting the database needs PostgreSQL behind a proxy")
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    c = AppContext.build(settings.model_copy(update={"database_url": proxied}))
    c.repliers = {"x": RecordingReplier()}
    c.pipeline = build_pipeline(settings, kind="rules")
    set_process_context(c)
    from dashboard.security import create_user
    tokens = {}
    with Session(c.engine, expire_on_commit=False) as s:
        for role in ("dispatcher", "admin"):
            _, tokens[role] = create_user(s, role, PASSWORDS[role], role)
        s.commit()
    app = create_app(c.settings, c)
    yield c, app, proxy, tokens
    set_process_context(None)
    proxy.close()
    c.close()


def _login(app, role: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    token = csrf_from(client.get("/login").text)
    r = client.post("/login", data={"username": role, "password": PASSWORDS[role], "csrf_token": token})
    assert r.status_code == 303, r.text
    return client


def test_the_queue_answers_from_redis_while_the_database_refuses(cut, redis_conn):
    ctx, app, proxy, tokens = cut
    dispatcher, other = _login(app, "dispatcher"), _login(app, "dispatcher")
    api = TestClient(app, headers={"Authorization": f"Bearer {tokens['dispatcher']}"})
    assert dispatcher.get("/queue").status_code == 200  # a check that leaves its copy
    assert api.get("/api/v1/queue").status_code == 200
    never_checked = TestClient(app, follow_redirects=False)
    never_checked.get("/login")
    # An admin signs the other dispatcher session out everywhere before the outage...
    admin = _login(app, "admin")
    admin.get("/admin")
    admin_csrf = csrf_from(admin.get("/admin").text)
    with Session(ctx.engine) as s:
        other_id = s.exec(select(User.id).where(User.username == "dispatcher")).one()
    assert other.get("/queue").status_code == 200
    hold_for_dispatch(redis_conn, [_held("c9", CRITICAL), _held("f9", FILLER)])
    _decide(ctx)

    proxy.refuse()
    try:
        page = dispatcher.get("/queue", headers={"accept": "text/html"})
        assert page.status_code == 200
        assert "DATABASE UNAVAILABLE" in page.text and "PROVISIONAL" in page.text
        assert "12 Station Road Leeds" in page.text
        assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text  # escaped
        # It refreshes its rows in place (flare.js: what is new alerts), with the person's sound choice.
        assert 'data-refresh="/queue/rows"' in page.text and 'data-muted="0"' in page.text
        assert FILLER not in page.text
        rows = dispatcher.get("/queue/rows", headers={"x-requested-with": "flare"})
        assert rows.status_code == 200 and 'data-provisional="x:c9"' in rows.text
        answer = api.get("/api/v1/queue")
        assert answer.status_code == 503 and answer.json()["degraded"] == "database"
        assert [(p["key"], p["urgency"], p["platform"]) for p in answer.json()["provisional"]] == \
            [("x:c9", "critical", "x")]
        assert answer.json()["provisional"][0]["age_s"] >= 0
        # No copy, no queue: a browser never signed in, a forged token, a role without the queue.
        refused = never_checked.get("/queue", headers={"accept": "text/html"})  # not signed in: to sign-in
        assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
        signing_in = never_checked.post("/login", data={"username": "dispatcher", "password": PASSWORDS["dispatcher"],
                                                        "csrf_token": csrf_from(never_checked.get("/login").text)})
        assert signing_in.status_code == 503 and "12 Station Road" not in signing_in.text
        assert TestClient(app, headers={"Authorization": "Bearer forged"}).get("/api/v1/queue").status_code == 401
        # Other pages: a 503 that says what is wrong, not a 500.
        feed = dispatcher.get("/feed", headers={"accept": "text/html"})
        assert feed.status_code == 503 and "database" in feed.text.lower()
        assert 'http-equiv="refresh"' in feed.text and "data-refresh=" not in feed.text  # reloads itself
        # The views that showed the report are audited (buffered: page, api; the refresh showed
        # nothing new to this session after its page load).
        buffered = [json.loads(v) for v in redis_conn.lrange(dbless.AUDIT_PENDING, 0, -1)]
        assert [(b["username"], b["detail"]["via"], b["detail"]["posts"]) for b in buffered] == \
            [("dispatcher", "page", ["x:c9"]), ("dispatcher", "api", ["x:c9"])]
    finally:
        proxy.accept()

    # Revocation deletes the copies: signed out everywhere, the session opens nothing degraded.
    r = admin.post(f"/admin/users/{other_id}/sign-out", data={"csrf_token": admin_csrf})
    assert r.status_code in (200, 303), r.text
    assert not [k for k in redis_conn.keys(COPY_PREFIX + "*")
                if json.loads(redis_conn.get(k))["username"] == "dispatcher"]
    proxy.refuse()
    try:
        assert other.get("/queue", headers={"accept": "text/html"}).status_code == 503
        assert api.get("/api/v1/queue").status_code == 401  # its token's copy went too
    finally:
        proxy.accept()

    assert dbless.flush_audit(ctx.engine, redis_conn) == 2
    with Session(ctx.engine) as s:
        rows = s.exec(select(AuditEntry).where(AuditEntry.action == "view_queue_degraded")).all()
    assert [(a.username, a.detail["via"]) for a in rows] == [("dispatcher", "page"), ("dispatcher", "api")]
    assert redis_conn.llen(dbless.AUDIT_PENDING) == 0


def test_a_changed_alert_sound_choice_reaches_the_copy_at_once(redis_conn):
    """A copy is written at most every WRITE_EVERY_S, but at once when who the person is changed:
    a dispatcher who mutes the alert sound just before an outage is muted on the degraded queue."""
    copies = SessionCopies(redis_conn)
    person = User(id=7, username="d", role="dispatcher", password_hash="x", muted_alerts=False)
    copies.remember("k", person)
    assert copies.recall("k")["muted_alerts"] is False
    redis_conn.delete(COPY_PREFIX + "k")
    copies.remember("k", person)  # unchanged, within WRITE_EVERY_S: not written again
    assert copies.recall("k") is None
    person.muted_alerts = True
    copies.remember("k", person)
    assert copies.recall("k")["muted_alerts"] is True
