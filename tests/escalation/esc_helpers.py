"""Helpers for escalation tests: a recording replier, fast policies, and functions that open
incidents through the same service path the triage job uses."""
from __future__ import annotations

from datetime import timedelta

from runtime.worker import FlareWorker
from sqlmodel import Session

from connectors.intake import persist_posts
from flows import publish
from flows.context import WORKER_QUEUES, AppContext
from dashboard.security import create_user
from escalation import runner, service
from escalation.policy import load_policies
from models import DeliveryReceipt, LocationMention, RawPost, TriageOutput, User
from models.types import utcnow


class RecordingReplier:
    """A platform double: records every request; DMs possible unless told otherwise."""

    platform = "x"

    def __init__(self, dm: bool = True) -> None:
        self.sent: list = []
        self.dm = dm

    def supports_dm(self, request) -> bool:
        return self.dm

    def send(self, request) -> DeliveryReceipt:
        self.sent.append(request)
        return DeliveryReceipt(ok=True, platform_message_id=f"m{len(self.sent)}")


FAST_POLICY = {
    "critical": {"steps": [{"after": 0, "action": "alert", "targets": ["dispatchers"]},
                           {"after": 2, "action": "realert", "sound": True, "targets": ["dispatchers"]},
                           {"after": 4, "action": "notify_external", "targets": ["duty_manager"]}],
                 "repeat_every": 0, "ack_sla": 3, "remind_after_ack": 0},
    "high": {"steps": [{"after": 0, "action": "alert", "targets": ["dispatchers"]}], "ack_sla": 0},
    "medium": {"steps": [{"after": 0, "action": "alert", "targets": ["officers"]}]},
}


class AheadClock:
    """The step runner's clock (and that of the other `modules`), `ahead` seconds ahead of the
    real one: a test moves it on for a step to fall due instead of sleeping until it does."""

    def __init__(self, monkeypatch, *modules) -> None:
        self.ahead = 0.0
        for module in (runner, *modules):
            monkeypatch.setattr(module, "utcnow", self)

    def __call__(self):
        return utcnow() + timedelta(seconds=self.ahead)


def drain(ctx: AppContext) -> None:
    FlareWorker([ctx.queues[q] for q in WORKER_QUEUES], connection=ctx.redis).work(burst=True)


def make_user(ctx: AppContext, username: str, role: str = "dispatcher") -> tuple[User, str]:
    with Session(ctx.engine, expire_on_commit=False) as s:
        user, token = create_user(s, username, f"pw-{username}-123456", role)
        s.commit()
    return user, token


_counter = iter(range(1, 10**9))


def new_post(ctx: AppContext, text: str = "please help", author: str = "") -> int:
    n = next(_counter)
    raw = RawPost(platform="x", external_id=f"p{n}", text=text, raw_payload="{}",
                  author_id=author or f"a{n}", author_handle=f"@a{n}")
    [stored] = persist_posts(ctx.engine, [raw])
    return stored.post_id


def triage(ctx: AppContext, post_id: int, urgency: str, category: str = "medical", silent: bool = False,
           location: str = "", language: str = "en") -> service.Outcome:
    """Store a triage decision for a post and apply it, as the triage job would."""
    from models.tables import Post

    locations = [LocationMention(location, "address", "text", 53.8, -1.55, 0.9)] if location else []
    out = TriageOutput(urgency=urgency, category=category, confidence=0.9, language=language, silent=silent,
                       locations=locations)
    policies = load_policies(ctx.settings.escalation_policy_file)
    with Session(ctx.engine, expire_on_commit=False) as s:
        post = s.get(Post, post_id)
        service.store_triage(s, post, out, 1.0)
        outcome = service.apply_triage(s, post, out, ctx.settings.service, ctx.dm_possible,
                                       policy_for=policies.snapshot)
        s.add(post)
        s.commit()
    publish.dispatch_outcome(ctx, outcome)
    return outcome


def open_critical(ctx: AppContext, text: str = "help my dad collapsed", **kw) -> int:
    outcome = triage(ctx, new_post(ctx, text), "critical", **kw)
    assert outcome.incident_id is not None
    return outcome.incident_id
