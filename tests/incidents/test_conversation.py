"""Incidents a dispatcher can trust: a new report after an acknowledgement, one conversation per
reporter (answers to our questions), review-flagged posts and possible duplicates.

Posts go through escalation.service.apply_triage with the batch path's own finder
(grouping.finder.BatchFinder), against real PostgreSQL/SQLite and Redis."""
from __future__ import annotations

import json
import time

from esc_helpers import drain, make_user, new_post
from sqlmodel import Session, select

from flows import publish
from flows.live import live_channel
from flows import actions
from grouping import finder as grouping_finder
from escalation import messages, service
from escalation.policy import load_policies
from models import TriageOutput
from models.tables import Incident, IncidentPost, OutboundMessage, Post


class _StandIn:
    """The real finder's follow-up rule; a fixed answer in place of the grouping rules."""

    def __init__(self, real: grouping_finder.BatchFinder, join: int | None,
                 possible_duplicate: service.PossibleDuplicate | None) -> None:
        self.real, self.join, self.possible_duplicate = real, join, possible_duplicate

    def reporter(self, session, post):
        return self.real.reporter(session, post)

    def find(self, session, post, out):
        if self.join is not None:
            return session.get(Incident, self.join), "same event (test)", 0.9
        return self.possible_duplicate


def _apply(ctx, post_id: int, urgency: str, *, category: str = "medical", silent: bool = False,
           needs_review: bool = False, join: int | None = None,
           possible_duplicate: service.PossibleDuplicate | None = None) -> service.Outcome:
    """Triage a post as the batch job does; `join`/`possible_duplicate` stand in for grouping."""
    out = TriageOutput(urgency=urgency, category=category, confidence=0.9, silent=silent,
                       needs_review=needs_review)
    policies = load_policies(ctx.settings.escalation_policy_file)
    with Session(ctx.engine, expire_on_commit=False) as s:
        post = s.get(Post, post_id)
        record = service.store_triage(s, post, out, 1.0)
        s.flush()
        finder = _StandIn(grouping_finder.BatchFinder(ctx.cluster_state, s, [post], {post.id: record}),
                          join, possible_duplicate)
        outcome = service.apply_triage(s, post, out, ctx.settings.service, ctx.dm_possible,
                                       policy_for=policies.snapshot, finder=finder)
        s.commit()
    publish.dispatch_outcome(ctx, outcome)
    return outcome


def _incident(ctx, incident_id: int) -> Incident:
    with Session(ctx.engine) as s:
        return s.get(Incident, incident_id)


def _sent(ctx, post_id: int) -> list[tuple[str, str]]:
    with Session(ctx.engine) as s:
        return [(m.purpose, m.text) for m in s.exec(
            select(OutboundMessage).where(OutboundMessage.post_id == post_id).order_by(OutboundMessage.id))]


def test_a_new_critical_report_after_an_acknowledgement_puts_the_incident_back_in_front(ctx):
    alice, _ = make_user(ctx, "alice")
    first = new_post(ctx, "my dad collapsed not breathing", author="reporter_a")
    incident_id = _apply(ctx, first, "critical").incident_id
    entry = _incident(ctx, incident_id).stream_entry_id
    assert entry, "in the dispatch queue"
    actions.acknowledge(ctx, incident_id, alice)
    assert [p for p, _ in _sent(ctx, first)] == ["receipt", "acknowledged"]

    later = new_post(ctx, "woman collapsed outside, not breathing", author="reporter_b")
    outcome = _apply(ctx, later, "critical", join=incident_id)
    assert outcome.incident_id == incident_id and outcome.needs_queue
    again = _incident(ctx, incident_id)
    assert again.status == "queued" and again.acknowledged_at is None
    assert again.stream_entry_id and again.stream_entry_id != entry, "a fresh dispatch-queue entry"
    assert again.flags["new_report"]["post_id"] == later
    # Reporter B was not seen yet: only the receipt. Nobody is told twice.
    assert [p for p, _ in _sent(ctx, later)] == ["receipt"]

    actions.acknowledge(ctx, incident_id, alice)
    assert [p for p, _ in _sent(ctx, later)] == ["receipt", "acknowledged"]
    assert [p for p, _ in _sent(ctx, first)] == ["receipt", "acknowledged"]
    assert "new_report" not in _incident(ctx, incident_id).flags


def test_a_medium_report_joining_an_acknowledged_incident_does_not_requeue_it(ctx):
    alice, _ = make_user(ctx, "alice")
    incident_id = _apply(ctx, new_post(ctx, "fire at the mill", author="a1"), "critical", category="fire").incident_id
    actions.acknowledge(ctx, incident_id, alice)
    outcome = _apply(ctx, new_post(ctx, "smoke over the mill", author="a2"), "medium", category="fire",
                     join=incident_id)
    assert not outcome.needs_queue and _incident(ctx, incident_id).status == "acknowledged"


def test_a_silent_reporters_yes_lands_on_their_incident_and_they_only_get_silent_texts(ctx):
    alice, _ = make_user(ctx, "alice")
    cry = new_post(ctx, "he is here i cant talk", author="silent_1")
    incident_id = _apply(ctx, cry, "critical", category="domestic_abuse", silent=True).incident_id
    actions.acknowledge(ctx, incident_id, alice)
    question = _sent(ctx, cry)[-1]
    assert question[0] == "acknowledged" and messages.QUESTION_IN_DANGER in question[1]

    yes = new_post(ctx, "YES", author="silent_1")
    outcome = _apply(ctx, yes, "none", category="none")  # triaged alone, it is nothing
    assert outcome.incident_id == incident_id
    with Session(ctx.engine) as s:
        assert s.exec(select(IncidentPost.incident_id).where(IncidentPost.post_id == yes)).one() == incident_id
    incident = _incident(ctx, incident_id)
    assert incident.flags["answers"][-1]["answer"] == "yes"
    assert incident.flags["answers"][-1]["question"] == messages.QUESTION_IN_DANGER
    assert incident.flags["reporter_replied"]["post_id"] == yes
    assert incident.status == "queued", "a reply is put in front of a dispatcher"
    replies = _sent(ctx, yes)
    assert [p for p, _ in replies] == ["receipt"]
    assert ctx.settings.service.emergency_number not in replies[0][1], "never asked to call"


def test_any_later_message_from_the_reporter_joins_their_incident_whatever_its_triage(ctx):
    incident_id = _apply(ctx, new_post(ctx, "my nan fell and is bleeding", author="r9"), "high").incident_id
    for text, urgency in [("thank you", "none"), ("the door is blue", "low"), ("she is worse now", "critical")]:
        post_id = new_post(ctx, text, author="r9")
        assert _apply(ctx, post_id, urgency).incident_id == incident_id
    incident = _incident(ctx, incident_id)
    assert incident.report_count == 4 and incident.urgency == "critical"
    assert "answers" not in incident.flags  # no question was asked of a non-silent reporter


def test_a_review_flagged_medium_post_reaches_the_dispatch_queue(ctx):
    outcome = _apply(ctx, new_post(ctx, "not sure what is happening next door, screaming"), "medium",
                     category="other", needs_review=True)
    incident = _incident(ctx, outcome.incident_id)
    assert incident.stream_entry_id and incident.status == "queued"
    assert incident.flags["needs_review"] is True


def test_an_uncertain_grouping_opens_a_new_incident_marked_as_a_possible_duplicate(ctx):
    first = _apply(ctx, new_post(ctx, "man unconscious in town", author="u1"), "critical").incident_id
    maybe = service.PossibleDuplicate(first, f"possible duplicate of #{first} (same town only)")
    second = _apply(ctx, new_post(ctx, "someone collapsed in the centre", author="u2"), "critical",
                    possible_duplicate=maybe)
    assert second.created and second.incident_id != first
    incident = _incident(ctx, second.incident_id)
    assert incident.flags == {"possible_duplicate_of": first}
    assert incident.stream_entry_id, "queued on its own: a person confirms"
    drain(ctx)


class ClosedDMs:
    """A platform double whose DMs are closed (403, not retryable); public replies go through."""

    platform = "x"

    def __init__(self) -> None:
        self.sent: list = []

    def supports_dm(self, request) -> bool:
        return True

    def send(self, request):
        from models import DeliveryReceipt

        self.sent.append(request)
        if request.kind == "dm":
            return DeliveryReceipt(ok=False, error="403 not allowed (DMs closed)", retryable=False)
        return DeliveryReceipt(ok=True, platform_message_id=f"m{len(self.sent)}")


def _live_feed(ctx):
    """A subscription to the live feed, confirmed by Redis before anything is published."""
    feed = ctx.redis.pubsub()
    feed.subscribe(live_channel(ctx.redis))
    confirmed = feed.get_message(timeout=5.0)
    assert confirmed is not None and confirmed["type"] == "subscribe", confirmed
    return feed


def _announced(feed, incident_id: int, timeout: float = 5.0) -> dict | None:
    """The live feed's "dm_unreachable" announcement of this incident (published before the
    drain returned: the bound only covers reading it). Other processes on this Redis may publish
    too: theirs are skipped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = feed.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message is not None:
            payload = json.loads(message["data"])
            if payload.get("type") == "dm_unreachable" and payload.get("incident_id") == incident_id:
                return payload
    return None


def test_closed_dms_are_flagged_and_get_a_public_fallback_that_reveals_nothing(ctx):
    replier = ClosedDMs()
    ctx.repliers = {"x": replier}
    text = "my dad collapsed at 12 High St, not breathing"
    incident_id = _apply(ctx, new_post(ctx, text, author="closed_1"), "critical").incident_id
    with _live_feed(ctx) as feed:
        drain(ctx)
        # An open queue that refreshed before the send job's commit hears of the flag.
        assert _announced(feed, incident_id), "the flag is announced on the live feed"
    assert _incident(ctx, incident_id).flags["dm_unreachable"]["error"].startswith("403")
    public = [r for r in replier.sent if r.kind == "public_reply"]
    assert len(public) == 1
    assert "open your DMs" in public[0].text and "High St" not in public[0].text and "dad" not in public[0].text


def test_a_silent_contact_with_closed_dms_is_flagged_but_never_answered_in_public(ctx):
    replier = ClosedDMs()
    ctx.repliers = {"x": replier}
    incident_id = _apply(ctx, new_post(ctx, "he is here cant talk", author="closed_2"), "critical",
                         category="domestic_abuse", silent=True).incident_id
    with _live_feed(ctx) as feed:
        drain(ctx)
        assert _announced(feed, incident_id), "the flag is announced though no fallback is queued"
    assert "dm_unreachable" in _incident(ctx, incident_id).flags
    assert [r.kind for r in replier.sent] == ["dm"]


def test_a_shared_gps_fix_becomes_the_incidents_location_with_its_accuracy(ctx):
    incident_id = _apply(ctx, new_post(ctx, "my dad collapsed", author="gps_1"), "critical").incident_id
    with Session(ctx.engine) as s:
        service.shared_fix(s, incident_id, 53.80123, -1.54987, 12.0)
        s.commit()
    incident = _incident(ctx, incident_id)
    assert (incident.lat, incident.lon) == (53.80123, -1.54987)
    assert incident.location_confidence > 0.99 - 1e-9 and "±12 m" in incident.location_text
    fix = incident.flags["shared_fix"]
    assert fix["accuracy_m"] == 12.0 and "mlat=53.801230" in fix["maps_url"]


def test_a_reporter_with_several_messages_hears_seen_once_for_what_a_person_has_seen(ctx):
    alice, _ = make_user(ctx, "alice")
    first = new_post(ctx, "my nan fell and is bleeding", author="r10")
    incident_id = _apply(ctx, first, "high").incident_id
    more = [new_post(ctx, text, author="r10") for text in ("she is on the kitchen floor", "please hurry")]
    for post_id in more:
        _apply(ctx, post_id, "high")
    actions.acknowledge(ctx, incident_id, alice)
    seen = [post_id for post_id in (first, *more) if "acknowledged" in [p for p, _ in _sent(ctx, post_id)]]
    assert seen == [more[-1]], "one 'seen' for the three messages, on the latest"

    later = new_post(ctx, "she has stopped talking", author="r10")
    _apply(ctx, later, "critical")
    assert _incident(ctx, incident_id).status == "queued", "back in front of a dispatcher"
    assert [p for p, _ in _sent(ctx, later)] == ["receipt"], "not seen by a person yet"
    actions.acknowledge(ctx, incident_id, alice)
    assert [p for p, _ in _sent(ctx, later)] == ["receipt", "acknowledged"]
    assert sum("acknowledged" in [p for p, _ in _sent(ctx, post_id)] for post_id in (first, *more, later)) == 2
