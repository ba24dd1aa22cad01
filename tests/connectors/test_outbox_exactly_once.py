"""The outbox sends each message once across lost answers, crashes and platform faults.

Real PostgreSQL/Redis (or the embedded pair) and the platform sandbox's real clients: an
attempt whose answer was lost, or a worker killed after the platform accepted the message,
is resolved by looking the message up on the platform, never by sending it again blindly.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from connectors.intake import persist_posts
from connectors.reddit import thing_to_raw
from connectors.sandbox.reddit_api import thing_json
from connectors.sandbox.x_api import x_user_id
from flows.context import AppContext, set_process_context
from flows import sending
from models.domain import OutboundRequest
from evidence.chain import check_events
from models.enums import DeliveryStatus, EventKind, MessageKind, MessagePurpose
from models.events import session_chain_key
from models.tables import Incident, IncidentEvent, OutboundMessage
from models.types import utcnow

ACK = "A dispatcher has seen your message."


@pytest.fixture
def ctx(platform_settings, tmp_path):
    c = AppContext.build(platform_settings.model_copy(update={"data_dir": tmp_path / "data"}))
    set_process_context(c)
    yield c
    set_process_context(None)
    c.close()


def _dm(ctx: AppContext, key: str, recipient: str, text: str = ACK) -> int:
    with Session(ctx.engine) as s:
        msg = OutboundMessage(dedupe_key=key, platform="x", kind=MessageKind.dm.value,
                              purpose=MessagePurpose.acknowledged.value, recipient_id=recipient, text=text)
        s.add(msg)
        s.commit()
        return msg.id


def _reddit_reply(ctx: AppContext, state, key: str) -> int:
    item = state.add_post("reddit", "u/flare999 there is a fire on Mill Lane", "rob")
    [stored] = persist_posts(ctx.engine, [thing_to_raw(thing_json(item, state.handle))], lambda _r: "default")
    with Session(ctx.engine) as s:
        msg = OutboundMessage(dedupe_key=key, platform="reddit", kind=MessageKind.public_reply.value,
                              purpose=MessagePurpose.receipt.value, post_id=stored.post_id, text="Received.")
        s.add(msg)
        s.commit()
        return msg.id


def _make_due(ctx: AppContext, message_id: int, **changes) -> None:
    """What time does for a claim or a retry: the message is due again now."""
    with Session(ctx.engine) as s:
        msg = s.get(OutboundMessage, message_id)
        msg.next_attempt_at = utcnow() - timedelta(seconds=2)
        for name, value in changes.items():
            setattr(msg, name, value)
        s.add(msg)
        s.commit()


def _row(ctx: AppContext, message_id: int) -> OutboundMessage:
    with Session(ctx.engine) as s:
        return s.exec(select(OutboundMessage).where(OutboundMessage.id == message_id)).one()


def _sent(state, platform: str) -> list:
    return [s for s in state.outbox if s.platform == platform]


def test_a_lost_answer_is_resolved_by_a_lookup_not_a_second_send(ctx, sandbox):
    state, _ = sandbox
    state.add_post("x", "help", "xena", is_dm=True)
    message_id = _dm(ctx, "ack:1", x_user_id("xena"))
    state.set_faults("x", {"lose_response_next": 1})

    first = sending.send_messages([message_id], ctx)
    row = _row(ctx, message_id)
    assert first == {message_id: "retrying"} and row.uncertain_since is not None
    assert (row.next_attempt_at - utcnow()).total_seconds() > sending.UNCERTAIN_SETTLE_SECONDS - 5
    _make_due(ctx, message_id)
    second = sending.send_messages([message_id], ctx)

    row = _row(ctx, message_id)
    [on_platform] = _sent(state, "x")
    assert second == {message_id: "sent"} and row.platform_message_id == on_platform.message_id
    assert row.uncertain_since is None and "found on the platform" in row.last_error
    assert state.path_counts["POST /2/dm_conversations/with/{}/messages".format(x_user_id("xena"))] == 1


def test_a_worker_killed_after_the_platform_accepted_does_not_send_again(ctx, sandbox):
    state, _ = sandbox
    message_id = _reddit_reply(ctx, state, "receipt:1")
    msg, earlier = sending.PageClaim.take_page(ctx, [message_id]).take()
    assert earlier is None
    post = sending._posts_replied_to(ctx, [message_id])[message_id]
    assert ctx.repliers["reddit"].send(OutboundRequest(
        platform="reddit", kind=msg.kind, text=msg.text, in_reply_to_external_id=post.external_id)).ok
    # ...and the worker dies before recording the outcome; a fresh process takes over.
    ctx.repliers = None
    _make_due(ctx, message_id)

    assert sending.send_messages([message_id], ctx) == {message_id: "sent"}
    assert len(_sent(state, "reddit")) == 1
    assert _row(ctx, message_id).platform_message_id == _sent(state, "reddit")[0].message_id


def test_a_worker_killed_before_the_send_left_sends_it_once(ctx, sandbox):
    state, _ = sandbox
    message_id = _reddit_reply(ctx, state, "receipt:2")
    sending.PageClaim.take_page(ctx, [message_id])  # claimed, then killed before the request left
    _make_due(ctx, message_id)

    assert sending.send_messages([message_id], ctx) == {message_id: "sent"}
    assert sending.send_messages([message_id], ctx) == {}  # a duplicated job finds nothing to do
    assert len(_sent(state, "reddit")) == 1


def test_the_same_words_to_the_same_person_are_two_messages(ctx, sandbox):
    """The lookup must not take an earlier identical message of ours for the lost one."""
    state, _ = sandbox
    state.add_post("x", "help", "yan", is_dm=True)
    first, second = _dm(ctx, "ack:a", x_user_id("yan")), _dm(ctx, "ack:b", x_user_id("yan"))
    assert sending.send_messages([first], ctx) == {first: "sent"}
    state.set_faults("x", {"lose_response_next": 1})
    sending.send_messages([second], ctx)
    state.set_faults("x", {})
    _make_due(ctx, second, uncertain_since=utcnow() - timedelta(minutes=1))  # the window covers both

    assert sending.send_messages([second], ctx) == {second: "sent"}
    ids = [s.message_id for s in _sent(state, "x")]
    assert len(ids) == 2 and {_row(ctx, first).platform_message_id, _row(ctx, second).platform_message_id} == set(ids)


def test_platform_errors_are_retried_within_the_window_then_fail(ctx, sandbox):
    state, _ = sandbox
    state.add_post("x", "help", "zed", is_dm=True)
    message_id = _dm(ctx, "ack:z", x_user_id("zed"))
    state.set_faults("x", {"error_rate": 1.0})
    for _ in range(10):  # more attempts than the old limit of 8
        assert sending.send_messages([message_id], ctx) == {message_id: "retrying"}
        _make_due(ctx, message_id)
    assert _row(ctx, message_id).status == DeliveryStatus.queued.value
    _make_due(ctx, message_id, created_at=utcnow() - sending.SEND_WINDOW - timedelta(seconds=1))

    assert sending.send_messages([message_id], ctx) == {message_id: DeliveryStatus.failed.value}
    assert state.outbox == []


def test_a_send_reads_its_message_only_through_its_claim(ctx, sandbox):
    """The claim's UPDATE returns the message and the outcome is written on it: the only other
    read that touches the message is the page's one read of the posts its messages answer."""
    state, _ = sandbox
    state.add_post("x", "help", "yara", is_dm=True)
    message_id = _dm(ctx, "ack:reads", x_user_id("yara"))
    statements: list[str] = []

    def seen(conn, cursor, statement, params, context, executemany):
        statements.append(" ".join(statement.split()))

    event.listen(ctx.engine, "before_cursor_execute", seen)
    try:
        assert sending.send_messages([message_id], ctx) == {message_id: "sent"}
    finally:
        event.remove(ctx.engine, "before_cursor_execute", seen)
    reads = [s for s in statements if s.startswith("SELECT") and "outbound_messages" in s]
    assert len(reads) == 1 and "JOIN posts" in reads[0], statements
    row = _row(ctx, message_id)
    [on_platform] = _sent(state, "x")
    assert row.status == DeliveryStatus.sent.value and row.attempts == 1 and row.uncertain_since is None
    assert row.platform_message_id == on_platform.message_id and row.next_attempt_at is None


def _dm_for(ctx: AppContext, state, name: str, incident_id: int) -> int:
    state.add_post("x", "help", name, is_dm=True)
    with Session(ctx.engine) as s:
        msg = OutboundMessage(dedupe_key=f"receipt:{name}", platform="x", kind=MessageKind.dm.value,
                              purpose=MessagePurpose.receipt.value, recipient_id=x_user_id(name), text=ACK,
                              incident_id=incident_id)
        s.add(msg)
        s.commit()
        return msg.id


def test_a_page_writes_its_outcomes_once_per_incident(ctx, sandbox):
    """A page is claimed by one statement and its outcomes are written together, one transaction
    per incident: each incident's chain head is read once and its events go in one INSERT, and
    the chains stay unbroken."""
    state, _ = sandbox
    with Session(ctx.engine) as s:
        incidents = [Incident(urgency="high"), Incident(urgency="high")]
        s.add_all(incidents)
        s.commit()
        incident_ids = [i.id for i in incidents]
    page = [_dm_for(ctx, state, f"pager{n}", incident_ids[n % 2]) for n in range(6)]
    statements: list[str] = []

    def seen(conn, cursor, statement, params, context, executemany):
        statements.append(" ".join(statement.split()))

    event.listen(ctx.engine, "before_cursor_execute", seen)
    try:
        assert sending.send_messages(page, ctx) == {m: "sent" for m in page}
    finally:
        event.remove(ctx.engine, "before_cursor_execute", seen)
    head_reads = [s for s in statements if s.startswith("SELECT") and "FROM incident_events" in s]
    inserts = [s for s in statements if s.startswith("INSERT INTO incident_events")]
    claims = [s for s in statements if s.startswith("UPDATE outbound_messages SET attempts")]
    assert len(head_reads) == 2 and len(inserts) == 2 and len(claims) == 1, statements
    assert len(_sent(state, "x")) == 6
    with Session(ctx.engine) as s:
        for incident_id in incident_ids:
            events = list(s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                                 .order_by(IncidentEvent.seq)))
            assert [e.kind for e in events] == [EventKind.message_sent.value] * 3
            assert check_events(incident_id, events, session_chain_key(s)) is None


def _one_incidents_page(ctx: AppContext, state, prefix: str, size: int = 3) -> list[int]:
    """A page of DMs to `size` reporters of one incident."""
    with Session(ctx.engine) as s:
        incident = Incident(urgency="high")
        s.add(incident)
        s.commit()
        incident_id = incident.id
    return [_dm_for(ctx, state, f"{prefix}{n}", incident_id) for n in range(size)]


def test_a_slow_page_writes_each_outcome_before_the_next_send(ctx, sandbox, monkeypatch):
    """No outcome waits for the rest of its page longer than RECORD_AFTER_SECONDS: with the bound
    at zero, each message is recorded sent before the next one leaves."""
    state, _ = sandbox
    page = _one_incidents_page(ctx, state, "slow")
    replier = ctx.repliers["x"]
    recorded_before_send: list[list[str]] = []

    def send(request):
        recorded_before_send.append([_row(ctx, m).status for m in page])
        return type(replier).send(replier, request)

    monkeypatch.setattr(replier, "send", send)
    monkeypatch.setattr(sending, "RECORD_AFTER_SECONDS", 0.0)
    assert sending.send_messages(page, ctx) == {m: "sent" for m in page}
    sent, queued = DeliveryStatus.sent.value, DeliveryStatus.queued.value
    assert recorded_before_send == [[queued, queued, queued], [sent, queued, queued], [sent, sent, queued]]


def test_a_slow_page_renews_its_claim_and_never_sends_on_a_lapsed_one(ctx, sandbox, monkeypatch):
    """A page whose claim ages renews it for its unsent messages before each send; a message
    whose claim lapsed and was taken by another worker meanwhile is left to that worker."""
    state, _ = sandbox
    page = _one_incidents_page(ctx, state, "renew")
    replier = ctx.repliers["x"]
    claimed_until: list = []
    other: list = []

    def send(request):
        claimed_until.append([_row(ctx, m).next_attempt_at for m in page])
        if not other:  # the last message's claim lapses and another worker takes it
            _make_due(ctx, page[2])
            other.append(sending.PageClaim.take_page(ctx, [page[2]]))
        return type(replier).send(replier, request)

    monkeypatch.setattr(replier, "send", send)
    monkeypatch.setattr(sending, "RENEW_AFTER_SECONDS", 0.0)
    assert sending.send_messages(page, ctx) == {page[0]: "sent", page[1]: "sent"}
    assert len(_sent(state, "x")) == 2
    # The second send went out on a renewed claim, later than the first.
    assert claimed_until[1][1] > claimed_until[0][1]
    [(msg, _)] = other[0].waiting
    row = _row(ctx, page[2])
    assert msg.id == page[2] and row.status == DeliveryStatus.queued.value and row.attempts == 2
