"""The act transaction writes a group's receipts as plain rows in one statement
(escalation.service.flush_deferred_messages), not one ORM object each: every row must be the
message the ORM path writes (OutboundMessage's defaults for a message not yet sent), its
message_queued event must carry the digest of the row as stored, and every incident's event
chain must verify (the appends that skip a second row lock read the right chain head)."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, select

from burst_helpers import load_burst_module, triage_context
from flows import triage_batch
from flows.intake import ingest
from models import OutboundMessage, Post, RawPost
from models.domain import GeoPoint
from models.enums import EventKind
from models.events import MESSAGE_FIELDS, message_sha256, verify_chain
from models.tables import IncidentEvent

GROUP = 32


def test_a_groups_messages_are_the_rows_the_orm_writes(settings):
    entries = load_burst_module().burst_scenario(150, 6, 60.0, 11)
    raws = [RawPost(platform=e.platform, external_id=str(n), text=e.text, raw_payload=e.text,
                    author_id=e.author, author_handle=e.author, posted_at=datetime.now(UTC),
                    geo=GeoPoint(e.lat, e.lon, "") if e.lat is not None else None)
            for n, e in enumerate(entries)]
    with triage_context(settings) as ctx:
        ids = [p.post_id for p in ingest(ctx, raws)]
        for queue in ctx.queues.values():
            queue.empty()
        with Session(ctx.engine, expire_on_commit=False) as s:
            posts = {p.id: p for p in s.exec(select(Post).where(Post.id.in_(ids))).all()}
        decided = [(posts[i], out) for i, out in
                   zip(ids, ctx.pipeline.many([triage_batch._input(posts[i]) for i in ids]), strict=True)]
        durations = dict.fromkeys(ids, 1.0)
        for n in range(0, len(decided), GROUP):
            assert triage_batch._act(ctx, triage_batch._ranked(decided[n:n + GROUP]), durations) > 0
        with Session(ctx.engine) as s:
            stored = list(s.exec(select(OutboundMessage)).all())
            events = list(s.exec(select(IncidentEvent)).all())
        key = ctx.evidence_keys.hmac_key

    assert len(stored) > 50, "the groups queued receipts"
    unsent = [name for name in OutboundMessage.__table__.columns.keys() if name != "id" and name not in MESSAGE_FIELDS]
    for msg in stored:
        orm = OutboundMessage(**{name: getattr(msg, name) for name in MESSAGE_FIELDS})
        assert {name: getattr(msg, name) for name in unsent} == {name: getattr(orm, name) for name in unsent}
    queued = {e.data["message_id"]: e for e in events if e.kind == EventKind.message_queued.value}
    assert set(queued) == {msg.id for msg in stored if msg.incident_id}
    for msg in stored:
        if msg.incident_id:
            assert queued[msg.id].incident_id == msg.incident_id
            assert queued[msg.id].data["message_sha256"] == message_sha256(msg)
    by_incident: dict[int, list[IncidentEvent]] = {}
    for e in events:
        by_incident.setdefault(e.incident_id, []).append(e)
    assert len(by_incident) > 3
    assert all(verify_chain(evs, key) is None for evs in by_incident.values())
