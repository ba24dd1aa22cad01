"""Dispatcher and officer actions: valid transitions, event log who/when, Redis half, messages."""
from __future__ import annotations

import threading

import pytest
from esc_helpers import drain, make_user, new_post, open_critical, triage
from sqlmodel import Session, select

from flows import actions
from escalation.service import ActionError
from evidence.chain import verify_all
from models.events import verify_chain
from models.tables import AuditEntry, Incident, IncidentEvent, IncidentPost, OutboundMessage, Post


def log(ctx, incident_id: int) -> list[IncidentEvent]:
    with Session(ctx.engine) as s:
        return list(s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                           .order_by(IncidentEvent.seq)))


def incident(ctx, incident_id: int) -> Incident:
    with Session(ctx.engine) as s:
        return s.get(Incident, incident_id)


def purposes(ctx, incident_id: int | None = None, post_id: int | None = None) -> list[str]:
    with Session(ctx.engine) as s:
        q = select(OutboundMessage).order_by(OutboundMessage.id)
        if incident_id is not None:
            q = q.where(OutboundMessage.incident_id == incident_id)
        if post_id is not None:
            q = q.where(OutboundMessage.post_id == post_id)
        return [m.purpose for m in s.exec(q)]


@pytest.fixture
def alice(ctx):
    return make_user(ctx, "alice")[0]


@pytest.fixture
def bob(ctx):
    return make_user(ctx, "bob")[0]


def test_acknowledge_xacks_tells_reporter_and_is_idempotent(ctx, alice):
    incident_id = open_critical(ctx)
    assert [e.incident_id for e in ctx.dispatch.read("console")] == [incident_id]
    actions.acknowledge(ctx, incident_id, alice)
    actions.acknowledge(ctx, incident_id, alice)
    assert ctx.dispatch.pending() == []
    assert purposes(ctx, incident_id) == ["receipt", "acknowledged"]
    [ack] = [e for e in log(ctx, incident_id) if e.kind == "acknowledged"]
    assert ack.actor == "alice" and ack.at is not None
    drain(ctx)
    assert [r.text for r in ctx.repliers["x"].sent][-1] == "A dispatcher has seen your message."


def _acknowledge_at_once(ctx, incident_id, user, start: threading.Barrier, errors: list) -> None:
    start.wait()
    try:
        actions.acknowledge(ctx, incident_id, user)
    except ActionError as exc:  # the other one got there first: a clear answer, not a failure
        assert "claimed by" in str(exc)
    except Exception as exc:  # noqa: BLE001 - collected and asserted by the test
        errors.append(exc)


def test_two_dispatchers_acknowledging_at_once_get_clear_answers_and_it_is_acknowledged_once(ctx, alice, bob):
    """The incident is locked before it is read, on SQLite too: the second acknowledgement waits
    for the first and is told who has it, instead of failing on a stale snapshot."""
    for _ in range(6):
        incident_id = open_critical(ctx)
        start, errors = threading.Barrier(2), []

        threads = [threading.Thread(target=_acknowledge_at_once, args=(ctx, incident_id, u, start, errors))
                   for u in (alice, bob)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        assert [e.kind for e in log(ctx, incident_id)].count("acknowledged") == 1
        assert purposes(ctx, incident_id).count("acknowledged") == 1


def test_claim_acknowledges_and_blocks_others(ctx, alice, bob):
    incident_id = open_critical(ctx)
    actions.claim(ctx, incident_id, alice)
    i = incident(ctx, incident_id)
    assert (i.status, i.claimed_by, i.acknowledged_by) == ("acknowledged", "alice", "alice")
    with pytest.raises(ActionError, match="already claimed by alice"):
        actions.claim(ctx, incident_id, bob)
    with pytest.raises(ActionError, match="claimed by alice, not you"):
        actions.release(ctx, incident_id, bob)
    actions.release(ctx, incident_id, alice)
    assert incident(ctx, incident_id).claimed_by == ""
    with pytest.raises(ActionError, match="not claimed"):
        actions.release(ctx, incident_id, alice)
    actions.claim(ctx, incident_id, bob)
    kinds = [(e.kind, e.actor) for e in log(ctx, incident_id) if e.kind in ("acknowledged", "claimed", "released")]
    assert kinds == [("acknowledged", "alice"), ("claimed", "alice"), ("released", "alice"), ("claimed", "bob")]


def test_reassign_needs_the_claimant_or_a_supervisor(ctx, alice, bob):
    make_user(ctx, "olga", role="officer")
    sup, _ = make_user(ctx, "sam", role="supervisor")
    incident_id = open_critical(ctx)
    actions.claim(ctx, incident_id, alice)
    with pytest.raises(ActionError, match="only they or a supervisor"):
        actions.reassign(ctx, incident_id, bob, "bob")
    with pytest.raises(ActionError, match="cannot take incidents"):
        actions.reassign(ctx, incident_id, alice, "olga")
    with pytest.raises(ActionError, match="no active user"):
        actions.reassign(ctx, incident_id, alice, "nobody")
    actions.reassign(ctx, incident_id, alice, "bob")
    assert incident(ctx, incident_id).claimed_by == "bob"
    actions.reassign(ctx, incident_id, sup, "alice")
    moves = [(e.actor, e.data) for e in log(ctx, incident_id) if e.kind == "reassigned"]
    assert moves == [("alice", {"from": "alice", "to": "bob"}), ("sam", {"from": "bob", "to": "alice"})]


def test_resolve_then_close_and_invalid_transitions(ctx, alice):
    incident_id = open_critical(ctx)
    actions.resolve(ctx, incident_id, alice, note="crew on scene")
    i = incident(ctx, incident_id)
    assert i.status == "resolved" and i.acknowledged_by == "alice" and i.next_step_at is None
    assert ctx.dispatch.pending() == [] or all(p["entry_id"] != i.stream_entry_id for p in ctx.dispatch.pending())
    with pytest.raises(ActionError, match="already resolved"):
        actions.resolve(ctx, incident_id, alice)
    with pytest.raises(ActionError, match="already resolved"):
        actions.false_alarm(ctx, incident_id, alice)
    actions.close(ctx, incident_id, alice, note="report filed")
    with pytest.raises(ActionError, match="already closed"):
        actions.close(ctx, incident_id, alice)
    kinds = [e.kind for e in log(ctx, incident_id)]
    assert kinds.index("acknowledged") < kinds.index("resolved") < kinds.index("closed")
    assert [e.data["note"] for e in log(ctx, incident_id) if e.kind in ("resolved", "closed")] == [
        "crew on scene", "report filed"]
    assert verify_chain(log(ctx, incident_id), ctx.evidence_keys.hmac_key) is None
    assert verify_all(ctx.engine).ok, verify_all(ctx.engine).breaks  # state and messages match the chain


def test_false_alarm_closes_without_telling_the_reporter_help_is_coming(ctx, alice):
    incident_id = open_critical(ctx)
    ctx.dispatch.read("console")
    actions.false_alarm(ctx, incident_id, alice, note="prank")
    assert incident(ctx, incident_id).status == "closed"
    assert purposes(ctx, incident_id) == ["receipt"]
    assert ctx.dispatch.pending() == []
    assert "false_alarm" in [e.kind for e in log(ctx, incident_id)]


def test_unknown_incident_is_an_action_error(ctx, alice):
    with pytest.raises(ActionError, match="not found"):
        actions.acknowledge(ctx, 999_999, alice)


def test_officer_escalates_a_low_post_by_hand(ctx):
    olga, _ = make_user(ctx, "olga", role="officer")
    post_id = new_post(ctx, "hmm is that smoke coming from the school roof")
    triage(ctx, post_id, "none", category="none")
    with Session(ctx.engine) as s:
        assert s.get(Post, post_id).disposition == "not_emergency"
    incident_id = actions.escalate_post(ctx, post_id, olga, urgency="critical")
    i = incident(ctx, incident_id)
    assert (i.status, i.urgency) == ("queued", "critical") and i.policy_snapshot["urgency"] == "critical"
    with Session(ctx.engine) as s:
        post = s.get(Post, post_id)
        assert (post.disposition, post.disposition_by) == ("escalated", "olga")
        assert s.exec(select(AuditEntry).where(AuditEntry.username == "olga")).first() is not None
    opened = log(ctx, incident_id)[0]
    assert opened.kind == "opened" and opened.actor == "olga"
    assert purposes(ctx, incident_id) == ["receipt"]
    assert actions.escalate_post(ctx, post_id, olga, urgency="high") == incident_id  # already there
    with pytest.raises(ActionError, match="escalate as one of"):
        actions.escalate_post(ctx, post_id, olga, urgency="low")


def test_low_and_none_posts_are_never_dropped(ctx):
    low = new_post(ctx, "my bins were not collected again")
    none = new_post(ctx, "this exam is killing me lol")
    review = new_post(ctx, "???")
    triage(ctx, low, "low", category="other")
    triage(ctx, none, "none", category="none")
    from models import TriageOutput

    with Session(ctx.engine) as s:
        from escalation import service

        post = s.get(Post, review)
        out = TriageOutput(urgency="low", category="other", confidence=0.2, needs_review=True)
        service.store_triage(s, post, out, 1.0)
        service.apply_triage(s, post, out, ctx.settings.service, ctx.dm_possible, policy_for=lambda _u: {})
        s.commit()
    with Session(ctx.engine) as s:
        got = {p.id: p.disposition for p in s.exec(select(Post))}
        assert got == {low: "redirected", none: "not_emergency", review: "needs_review"}
        assert s.exec(select(Incident)).all() == []
    assert purposes(ctx, post_id=low) == ["redirect"]
    assert purposes(ctx, post_id=none) == [] and purposes(ctx, post_id=review) == []


def test_dispose_post_records_who_and_queues_redirect(ctx):
    olga, _ = make_user(ctx, "olga", role="officer")
    post_id = new_post(ctx, "where do I report a pothole")
    actions.dispose_post(ctx, post_id, olga, "redirected")
    with Session(ctx.engine) as s:
        post = s.get(Post, post_id)
        assert (post.disposition, post.disposition_by) == ("redirected", "olga")
        [msg] = s.exec(select(OutboundMessage).where(OutboundMessage.post_id == post_id)).all()
    assert msg.purpose == "redirect" and "pothole" not in msg.text
    actions.dispose_post(ctx, post_id, olga, "reviewed")
    with pytest.raises(ActionError, match="disposition must be one of"):
        actions.dispose_post(ctx, post_id, olga, "deleted")
    incident_id = open_critical(ctx)
    [member] = [p.id for p in _posts(ctx, incident_id)]
    with pytest.raises(ActionError, match="open incident"):
        actions.dispose_post(ctx, member, olga, "not_emergency")


def _posts(ctx, incident_id: int) -> list[Post]:
    from escalation.service import reporter_posts

    with Session(ctx.engine) as s:
        return reporter_posts(s, incident_id)


def test_attach_post_sends_receipt_and_ack_to_the_new_reporter(ctx, alice):
    incident_id = open_critical(ctx)
    actions.acknowledge(ctx, incident_id, alice)
    other = new_post(ctx, "I can see it too, man on the ground")
    actions.attach_post(ctx, other, incident_id, alice)
    assert purposes(ctx, post_id=other) == ["receipt", "acknowledged"]
    assert incident(ctx, incident_id).report_count == 2
    actions.attach_post(ctx, other, incident_id, alice)  # idempotent
    second = open_critical(ctx, text="different thing")
    with pytest.raises(ActionError, match="already part of incident"):
        actions.attach_post(ctx, other, second, alice)


def test_reply_privacy_rules(ctx, alice):
    incident_id = open_critical(ctx, text="Help my dad collapsed at 12 High Street Leeds, not breathing",
                               location="12 High Street")
    [post] = _posts(ctx, incident_id)
    with pytest.raises(ActionError, match="quotes the reporter"):
        actions.reply(ctx, incident_id, post.id, alice, "We know your DAD COLLAPSED at 12... help", kind="public_reply")
    with pytest.raises(ActionError, match="location"):
        actions.reply(ctx, incident_id, post.id, alice, "Crew heading to 12 High Street now", kind="public_reply")
    message_id = actions.reply(ctx, incident_id, post.id, alice, "Help is on the way. Please check your DMs.",
                               kind="public_reply")
    dm_id = actions.reply(ctx, incident_id, post.id, alice, "Is he breathing now? Reply yes or no.")
    assert message_id != dm_id
    with pytest.raises(ActionError, match="empty"):
        actions.reply(ctx, incident_id, post.id, alice, "   ")
    other = new_post(ctx, "unrelated")
    with pytest.raises(ActionError, match="not part of incident"):
        actions.reply(ctx, incident_id, other, alice, "hello")
    queued = [e for e in log(ctx, incident_id) if e.kind == "message_queued"]
    assert [e.actor for e in queued][-2:] == ["alice", "alice"]


def test_public_replies_repeating_a_phone_number_or_abbreviated_address_are_blocked_dms_are_not(ctx, alice):
    incident_id = open_critical(ctx, text="fire in the flat above, ring me on 07700 900123, 221B Baker Street",
                               location="221B Baker Street")
    [post] = _posts(ctx, incident_id)
    before = purposes(ctx, incident_id)
    with pytest.raises(ActionError, match="phone number"):
        actions.reply(ctx, incident_id, post.id, alice, "We will ring +44 7700-900-123 shortly", kind="public_reply")
    with pytest.raises(ActionError, match="location"):
        actions.reply(ctx, incident_id, post.id, alice, "Crews are heading to Baker St.", kind="public_reply")
    assert purposes(ctx, incident_id) == before  # nothing was queued for the blocked replies
    # The same words in a private message reach only the reporter: allowed.
    actions.reply(ctx, incident_id, post.id, alice, "We will ring +44 7700-900-123; crews heading to Baker St.")
    assert purposes(ctx, incident_id) == before + ["manual"]


def test_silent_incident_gets_dm_only(ctx, alice):
    ctx.repliers["x"].dm = False
    incident_id = open_critical(ctx, text="cant talk he is in the house", silent=True)
    assert purposes(ctx, incident_id) == []  # no DM possible and silent: never a public receipt
    [post] = _posts(ctx, incident_id)
    with pytest.raises(ActionError, match="only a private message"):
        actions.reply(ctx, incident_id, post.id, alice, "Help is coming", kind="public_reply")
    with pytest.raises(ActionError, match="private message cannot reach"):
        actions.reply(ctx, incident_id, post.id, alice, "Help is coming", kind="dm")


def test_merge_keeps_the_most_urgent_and_moves_reports(ctx, alice):
    high = triage(ctx, new_post(ctx, "car crash on the bypass"), "high", category="traffic").incident_id
    crit = open_critical(ctx, text="people trapped in the crash on the bypass")
    ctx.dispatch.read("console")
    actions.acknowledge(ctx, high, alice)
    survivor = actions.merge(ctx, [high, crit], alice)
    assert survivor == crit
    s_inc, gone = incident(ctx, crit), incident(ctx, high)
    assert (s_inc.report_count, s_inc.status) == (2, "acknowledged")
    assert gone.status == "closed" and gone.next_step_at is None
    assert ctx.dispatch.pending() == []
    with Session(ctx.engine) as s:
        assert {r.incident_id for r in s.exec(select(IncidentPost))} == {crit}
    [merged] = [e.data for e in log(ctx, high) if e.kind == "merged"]
    assert merged["into"] == crit and merged["incident_state"]["status"] == "closed"
    assert [e.data for e in log(ctx, crit) if e.kind == "merged"] == [{"from": [high]}]
    # Every reporter hears "seen" exactly once, whichever incident they started in.
    assert purposes(ctx, crit).count("acknowledged") == 1 and purposes(ctx, high).count("acknowledged") == 1
    with pytest.raises(ActionError, match="at least two"):
        actions.merge(ctx, [crit], alice)
    with pytest.raises(ActionError, match="already closed"):
        actions.merge(ctx, [crit, high], alice)


def test_split_makes_a_new_queued_incident(ctx, alice):
    incident_id = open_critical(ctx, text="fire in the flats")
    extra = [new_post(ctx, "fire in the flats too"), new_post(ctx, "and a crash outside")]
    for p in extra:
        actions.attach_post(ctx, p, incident_id, alice)
    with pytest.raises(ActionError, match="leave at least one"):
        actions.split(ctx, incident_id, [p.id for p in _posts(ctx, incident_id)], alice)
    with pytest.raises(ActionError, match="not part of"):
        actions.split(ctx, incident_id, [999_999], alice)
    new_id = actions.split(ctx, incident_id, [extra[1]], alice)
    new = incident(ctx, new_id)
    assert new.status == "queued" and new.report_count == 1 and incident(ctx, incident_id).report_count == 2
    assert [p.id for p in _posts(ctx, new_id)] == [extra[1]]
    assert [e.data["from"] for e in log(ctx, new_id) if e.kind == "split"] == [incident_id]
    assert [e.data["into"] for e in log(ctx, incident_id) if e.kind == "split"] == [new_id]
    assert any(e.kind == "escalation_step" for e in log(ctx, new_id))  # its own chain started


def test_escalating_a_medium_incident_gives_it_the_critical_chain(ctx):
    olga, _ = make_user(ctx, "olga", role="officer")
    post_id = new_post(ctx, "strong smell of gas in the stairwell")
    incident_id = triage(ctx, post_id, "medium", category="hazard").incident_id
    assert incident(ctx, incident_id).status == "new"  # on the board, not paged
    assert actions.escalate_post(ctx, post_id, olga, urgency="critical") == incident_id
    raised = incident(ctx, incident_id)
    assert (raised.status, raised.urgency) == ("queued", "critical")
    assert raised.policy_snapshot["urgency"] == "critical" and len(raised.policy_snapshot["steps"]) == 3
    assert [e.data["urgency_raised"] for e in log(ctx, incident_id) if e.kind == "note"] == [
        {"from": "medium", "to": "critical"}]
    assert [e.data["number"] for e in log(ctx, incident_id) if e.kind == "escalation_step"] == [0]


def test_a_post_of_a_closed_incident_can_be_escalated_again(ctx, alice):
    olga, _ = make_user(ctx, "olga", role="officer")
    first = open_critical(ctx, text="smoke from the flats")
    [post] = _posts(ctx, first)
    actions.false_alarm(ctx, first, alice, note="bonfire")
    again = actions.escalate_post(ctx, post.id, olga, urgency="high")
    assert again != first
    assert (incident(ctx, again).status, incident(ctx, again).urgency) == ("queued", "high")
    assert [p.id for p in _posts(ctx, again)] == [post.id] and _posts(ctx, first) == []
    assert [e.data["into"] for e in log(ctx, first) if e.kind == "split"] == [again]
    assert "after incident" in log(ctx, again)[0].data["reason"]
    assert verify_chain(log(ctx, first), ctx.evidence_keys.hmac_key) is None
    assert verify_all(ctx.engine).ok, verify_all(ctx.engine).breaks
