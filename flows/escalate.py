"""Escalation wired to this deployment: steps run as RQ jobs on the escalation queue, and a fired
step alerts open screens, counts itself and pages people (escalation/runner.py has the rules)."""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import redis

from escalation import runner
from escalation.policy import Action, PolicySet, load_policies
from flows import metrics
from flows.context import ESCALATION_QUEUE, AppContext, process_context
from flows.live import publish_live_many
from flows.notify import notify_many
from models.tables import Incident
from models.types import utcnow

log = logging.getLogger("flare.escalation")
STEP_FUNCTION = "flows.escalate.escalation_step"
PAGING_ACTIONS = ("notify_external", "notify_supervisor")


@lru_cache(maxsize=4)
def policies(path: str | None) -> PolicySet:
    """The escalation policies file, read once (an admin's save clears this cache)."""
    return load_policies(Path(path) if path else None)


def policy_for(ctx: AppContext) -> Callable[[str], dict]:
    """The policy snapshot a new incident of each urgency takes."""
    path = ctx.settings.escalation_policy_file
    return policies(str(path) if path else None).snapshot


class Effects:
    """runner.StepEffects for one context."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def schedule(self, incident_id: int, token: str, due_at: datetime) -> None:
        job_id = f"esc-{incident_id}-{token}"
        q = self.ctx.queues[ESCALATION_QUEUE]
        if due_at <= utcnow():
            q.enqueue(STEP_FUNCTION, incident_id, token, job_id=job_id, job_timeout=60)
        else:
            q.enqueue_at(due_at, STEP_FUNCTION, incident_id, token, job_id=job_id, job_timeout=60)

    def fired(self, actions: Sequence[tuple[Incident, Action]]) -> None:
        """Live alerts and counters of every action in one round trip each, then paging: a page to
        a person goes out even while Redis (counters, live screens) is unreachable."""
        steps: Counter[str] = Counter()
        breaches: Counter[str] = Counter()
        live: list[dict] = []
        pages: list[tuple[Incident, dict]] = []
        for incident, action in actions:
            name = str(action.step.get("action"))
            if action.kind == "sla_breach":
                breaches[incident.urgency] += 1
                live.append({"type": "sla_breach", "incident_id": incident.id, "urgency": incident.urgency})
                continue
            steps[name] += 1
            live.append({"type": "escalation", "incident_id": incident.id, "action": name, "kind": action.kind,
                         "sound": action.step.get("sound", False), "targets": action.step.get("targets", []),
                         "urgency": incident.urgency})
            if name in PAGING_ACTIONS:
                pages.append((incident, action.step))
        try:
            metrics.count_escalations(self.ctx, steps, breaches)
        except redis.RedisError as exc:  # the steps are recorded; screens re-read them when Redis is back
            log.warning("%d escalation actions not counted (%s)", len(actions), exc)
        publish_live_many(self.ctx, live)
        if pages:
            try:
                notify_many(self.ctx, pages)
            except Exception:  # noqa: BLE001 - a broken notifier must not stop the chain
                log.exception("paging failed for incidents %s", [incident.id for incident, _ in pages])


def schedule(ctx: AppContext, incident_id: int, token: str, due_at: datetime) -> None:
    Effects(ctx).schedule(incident_id, token, due_at)


def start_chain(ctx: AppContext, incident_id: int) -> None:
    runner.start_chain(ctx.engine, Effects(ctx), incident_id)


def start_chains(ctx: AppContext, incident_ids: list[int]) -> int:
    """The first steps of chains their transaction made due (service.queue_now), in one go."""
    return runner.fire_many(ctx.engine, Effects(ctx), incident_ids)


def escalation_step(incident_id: int, token: str, ctx: AppContext | None = None) -> str:
    """The RQ job: fire what is due for this incident, then schedule its next step."""
    ctx = ctx or process_context()
    return runner.step(ctx.engine, Effects(ctx), incident_id, token)


def fire_due_steps(ctx: AppContext, limit: int = 200) -> int:
    """The worker's step timer."""
    return runner.fire_due(ctx.engine, Effects(ctx), limit)


# Every worker runs a step timer, but one round per STEP_ROUND_MS is enough for all of them:
# each round asks the database for every due step, so with N workers polling on their own the
# same query ran N times as often and found the same rows (which the token then made the others
# give up on). A worker polls only if it takes this key, which lapses by itself: no owner, so a
# worker that dies holds nothing up for longer than one round.
STEP_ROUND_KEY = "flare:step-timer:round"


def step_timer_round(ctx: AppContext, probe: redis.Redis, silent: AppContext, round_ms: int) -> int | None:
    """One round of a worker's step timer: fire what is due, unless another worker's step timer
    polled within `round_ms` (None then). `probe` (a client that gives up at once on a silent
    Redis) takes the round; while Redis does not answer, every worker polls, through `silent`
    (a context whose Redis calls fail at once), as it did before the round was shared."""
    try:
        if not probe.set(STEP_ROUND_KEY, "1", nx=True, px=max(1, round_ms)):
            return None
    except redis.RedisError:
        return fire_due_steps(silent)
    return fire_due_steps(ctx)


def redrive_overdue(ctx: AppContext, grace_seconds: float = 1.0) -> int:
    """Sweep: schedulers lose timers on restart; re-enqueue every incident whose step is overdue."""
    rows = runner.overdue(ctx.engine, grace_seconds)
    effects = Effects(ctx)
    for incident_id, token in rows:
        effects.schedule(incident_id, token, utcnow())
    return len(rows)
