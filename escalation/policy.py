"""Escalation policies and the pure step runner.

`next_action(snapshot, events, now)` looks only at its arguments: the chain frozen into the
incident and the incident's own event log. The job that executes a step and the sweep that
re-drives overdue steps both ask it what is due, so a lost timer can never skip or repeat a step.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator, model_validator

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent.parent / "config" / "policies.yaml"


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo in the policy file must fail loudly

    after: float = Field(ge=0, description="seconds since the incident was queued")
    action: Literal["alert", "realert", "notify_supervisor", "notify_external"]
    targets: list[str] = Field(default_factory=list)
    sound: bool = False

    @model_validator(mode="after")
    def _paging_has_someone_to_page(self) -> Step:
        if self.action.startswith("notify_") and not self.targets:
            raise ValueError(f"a {self.action} step needs at least one target")
        return self


class Chain(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[Step] = Field(min_length=1)
    repeat_every: float = Field(default=0, ge=0)
    remind_after_ack: float = Field(default=0, ge=0)
    ack_sla: float = Field(default=0, ge=0, description="seconds unacknowledged before an SLA breach")

    @field_validator("steps")
    @classmethod
    def _ordered(cls, steps: list[Step]) -> list[Step]:
        afters = [s.after for s in steps]
        if afters != sorted(afters):
            raise ValueError("steps must be in order of `after`")
        return steps

    @field_validator("repeat_every", "remind_after_ack")
    @classmethod
    def _no_paging_storm(cls, seconds: float) -> float:
        # A sub-second repeat would page people in a tight loop; 0 means "do not repeat".
        if 0 < seconds < 1:
            raise ValueError("repeats and reminders must be 0 (off) or at least 1 second apart")
        return seconds


class PolicySet(RootModel[dict[str, Chain]]):
    @model_validator(mode="after")
    def _known_urgencies(self) -> PolicySet:
        unknown = set(self.root) - {"critical", "high", "medium", "low"}
        if unknown:
            raise ValueError(f"unknown urgency in policy: {sorted(unknown)}")
        # Without a chain for these, an urgent incident would sit in the queue with nobody paged.
        missing = {"critical", "high"} - set(self.root)
        if missing:
            raise ValueError(f"policy must define a chain for: {sorted(missing)}")
        return self

    def ack_sla(self, urgency: str) -> float:
        chain = self.root.get(urgency)
        return chain.ack_sla if chain else 0.0

    def snapshot(self, urgency: str) -> dict[str, Any]:
        chain = self.root.get(urgency)
        return {"urgency": urgency, **chain.model_dump()} if chain else {}


def load_policies(path: Path | None = None) -> PolicySet:
    """Read and validate a policy file; raises ValueError with the reason when it is invalid."""
    path = path or DEFAULT_POLICY_FILE
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read escalation policy {path}: {exc}") from exc
    return PolicySet.model_validate(data)


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    at: datetime
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Action:
    kind: Literal["step", "reminder", "sla_breach"]
    number: int  # how many steps (or reminders) have fired before this one
    step: dict[str, Any]
    due_at: datetime


# The only event kinds next_action reads. Callers may pass just these: a large incident has
# thousands of "triaged"/"post_attached" events that never change what is due.
POLICY_EVENT_KINDS = ("queued", "acknowledged", "escalation_step", "sla_breach", "resolved",
                      "closed", "false_alarm", "reopened")


def next_action(snapshot: dict[str, Any], events: list[Event], now: datetime) -> Action | None:
    """What is due next for this incident, or None when nothing more will ever be due.

    `now` is accepted for symmetry with callers' clocks but never moves a due time: a step is
    due relative to the incident's own events, so clock skew between workers cannot fire it twice.
    """
    del now
    if not snapshot or not snapshot.get("steps"):
        return None
    kinds = [e.kind for e in events]
    if any(k in ("resolved", "closed", "false_alarm") for k in kinds[_last_reopen(kinds):]):
        return None
    queued = next((e for e in events if e.kind == "queued"), None)
    if queued is None:
        return None
    acks = [e for e in events if e.kind == "acknowledged"]
    if acks:
        remind = float(snapshot.get("remind_after_ack") or 0)
        if remind <= 0:
            return None
        ack = acks[-1]
        reminders = [e for e in events if e.kind == "escalation_step" and e.data.get("kind") == "reminder"
                     and e.at >= ack.at]
        due = ack.at + timedelta(seconds=remind * (len(reminders) + 1))
        return Action("reminder", len(reminders), {"action": "remind", "targets": ["assignee"]}, due)
    step = _next_step(snapshot, events, queued.at)
    sla = float(snapshot.get("ack_sla") or 0)
    if sla > 0 and not any(e.kind == "sla_breach" for e in events):
        breach = Action("sla_breach", 0, {"action": "sla_breach", "targets": []},
                        queued.at + timedelta(seconds=sla))
        if step is None or breach.due_at < step.due_at:  # on a tie the page goes out first
            return breach
    return step


def _next_step(snapshot: dict[str, Any], events: list[Event], queued_at: datetime) -> Action | None:
    steps = snapshot["steps"]
    fired = [e for e in events if e.kind == "escalation_step" and e.data.get("kind") == "step"]
    n = len(fired)
    if n < len(steps):
        return Action("step", n, steps[n], queued_at + timedelta(seconds=float(steps[n]["after"])))
    repeat = float(snapshot.get("repeat_every") or 0)
    if repeat <= 0:
        return None
    return Action("step", n, steps[-1], fired[-1].at + timedelta(seconds=repeat))


def _last_reopen(kinds: list[str]) -> int:
    for i in range(len(kinds) - 1, -1, -1):
        if kinds[i] == "reopened":
            return i
    return 0
