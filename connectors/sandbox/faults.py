"""Fault injection for the sandbox, configured per platform at runtime.

Faults are decided per request before the platform handler runs, so an injected 429/5xx/
outage means "the platform did nothing" — exactly what a well-behaved API promises and what
lets a replier retry those safely. Dropped connections and slow responses are the ambiguous
cases a connector must treat with care.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(slots=True)
class FaultConfig:
    rate_limit_rate: float = 0.0  # probability of a 429
    rate_limit_next: int = 0  # the next N requests get a 429 (deterministic)
    rate_limit_reset_seconds: float = 2.0  # advertised in the platform's reset header
    error_rate: float = 0.0  # probability of a 5xx
    error_next: int = 0
    error_status: int = 503
    slow_rate: float = 0.0
    slow_next: int = 0  # the next N requests are held back slow_seconds (deterministic)
    slow_seconds: float = 0.0
    drop_rate: float = 0.0  # connection dropped mid-response
    drop_next: int = 0
    # A write the platform carries out whose answer never arrives (the connection breaks after
    # the handler ran): the ambiguous case where a blind retry would send twice.
    lose_response_rate: float = 0.0
    lose_response_next: int = 0
    outage_start: float = 0.0  # epoch seconds; every request in [start, end) gets a 503
    outage_end: float = 0.0
    duplicate_rate: float = 0.0  # probability that a list response repeats one of its items
    out_of_order: bool = False  # list pages are shuffled instead of newest-first
    garbage_rate: float = 0.0  # probability that a list response body is truncated JSON
    affect_writes: bool = True  # whether POSTs (replies, DMs) get the faults too
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)
    # Until when this platform is rate limited (set when a 429 is served, honoured afterwards).
    limited_until: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultConfig:
        known = {f.name for f in fields(cls)} - {"rng", "limited_until"}
        unknown = set(data) - known - {"outage_for_seconds", "outage_in_seconds"}
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        config = cls(**{k: v for k, v in data.items() if k in known})
        if "outage_for_seconds" in data:
            start = time.time() + float(data.get("outage_in_seconds", 0.0))
            config.outage_start, config.outage_end = start, start + float(data["outage_for_seconds"])
        config.rng = random.Random(config.seed)
        return config

    def as_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "rng"}


@dataclass(frozen=True, slots=True)
class FaultDecision:
    kind: str  # "", "rate_limit", "error", "outage", "drop", "lose_response"
    status: int = 0
    reset_at: float = 0.0
    delay: float = 0.0


def decide(config: FaultConfig, is_write: bool, now: float | None = None) -> FaultDecision:
    """What happens to one request. Mutates the deterministic counters in `config`."""
    now = time.time() if now is None else now
    if config.slow_next > 0:
        config.slow_next -= 1
        delay = config.slow_seconds
    else:
        delay = config.slow_seconds if config.slow_rate and config.rng.random() < config.slow_rate else 0.0
    if config.outage_start <= now < config.outage_end:
        return FaultDecision("outage", 503, reset_at=config.outage_end, delay=delay)
    if is_write and not config.affect_writes:
        return FaultDecision("", delay=delay)
    if is_write and config.lose_response_next > 0:  # "the next write": before any random fault
        config.lose_response_next -= 1
        return FaultDecision("lose_response", delay=delay)
    if now < config.limited_until:
        return FaultDecision("rate_limit", 429, reset_at=config.limited_until, delay=delay)
    if config.rate_limit_next > 0 or (config.rate_limit_rate and config.rng.random() < config.rate_limit_rate):
        config.rate_limit_next = max(0, config.rate_limit_next - 1)
        config.limited_until = now + config.rate_limit_reset_seconds
        return FaultDecision("rate_limit", 429, reset_at=config.limited_until, delay=delay)
    if config.error_next > 0 or (config.error_rate and config.rng.random() < config.error_rate):
        config.error_next = max(0, config.error_next - 1)
        return FaultDecision("error", config.error_status, delay=delay)
    if config.drop_next > 0 or (config.drop_rate and config.rng.random() < config.drop_rate):
        config.drop_next = max(0, config.drop_next - 1)
        return FaultDecision("drop", delay=delay)
    if is_write and config.lose_response_rate and config.rng.random() < config.lose_response_rate:
        return FaultDecision("lose_response", delay=delay)
    return FaultDecision("", delay=delay)


def shape_listing(config: FaultConfig, items: list[Any]) -> list[Any]:
    """Duplicate and reorder a page of results the way flaky feeds do."""
    out = list(items)
    if out and config.duplicate_rate and config.rng.random() < config.duplicate_rate:
        out.insert(config.rng.randrange(len(out) + 1), config.rng.choice(out))
    if config.out_of_order:
        config.rng.shuffle(out)
    return out


def wants_garbage(config: FaultConfig) -> bool:
    return bool(config.garbage_rate) and config.rng.random() < config.garbage_rate
