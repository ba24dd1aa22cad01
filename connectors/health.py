"""Connector health in Redis, one hash per source, read by /readyz and the Prometheus exporter.

Key `flare:connector:health:<source name>`. Values are plain strings; `read_health` turns them
back into typed dicts and adds `seconds_since_success`.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis

log = logging.getLogger(__name__)

HEALTH_KEY_PREFIX = "flare:connector:health:"
# This many failed polls in a row and the platform is considered to be in an outage.
OUTAGE_AFTER_FAILURES = 3


@dataclass(slots=True)
class ConnectorHealth:
    name: str
    platform: str
    last_success_at: float = 0.0  # epoch seconds of the last poll that completed
    last_attempt_at: float = 0.0
    lag_seconds: float = 0.0  # post time → stored, for the oldest new post of the last batch
    last_error: str = ""
    last_error_at: float = 0.0
    rate_limited_until: float = 0.0
    consecutive_failures: int = 0
    in_outage: bool = False
    posts_stored_total: int = 0


def health_key(name: str) -> str:
    return HEALTH_KEY_PREFIX + name


def _write(conn: redis.Redis | None, name: str, fields: dict[str, Any]) -> None:
    if conn is None:
        return
    mapping = {k: (int(v) if isinstance(v, bool) else v) for k, v in fields.items()}
    try:
        conn.hset(health_key(name), mapping={k: str(v) for k, v in mapping.items()})
    except redis.RedisError as exc:  # health is for humans; it must never stop intake
        log.warning("connector health not written for %s: %s", name, exc)


def record_success(conn: redis.Redis | None, name: str, platform: str, stored: int, lag_seconds: float) -> None:
    now = time.time()
    _write(conn, name, {"name": name, "platform": platform, "last_success_at": now, "last_attempt_at": now,
                        "lag_seconds": round(lag_seconds, 3), "consecutive_failures": 0, "in_outage": False})
    if conn is not None and stored:
        try:
            conn.hincrby(health_key(name), "posts_stored_total", stored)
        except redis.RedisError as exc:
            log.warning("connector health counter not written for %s: %s", name, exc)


def record_failure(conn: redis.Redis | None, name: str, platform: str, error: str, failures: int) -> None:
    now = time.time()
    _write(conn, name, {"name": name, "platform": platform, "last_attempt_at": now, "last_error": error[:500],
                        "last_error_at": now, "consecutive_failures": failures,
                        "in_outage": failures >= OUTAGE_AFTER_FAILURES})


def record_rate_limited(conn: redis.Redis | None, name: str, platform: str, until: float) -> None:
    _write(conn, name, {"name": name, "platform": platform, "last_attempt_at": time.time(),
                        "rate_limited_until": until})


def read_health(conn: redis.Redis) -> list[dict[str, Any]]:
    """Every source's health as a dict (ConnectorHealth fields + seconds_since_success)."""
    out = []
    now = time.time()
    for key in sorted(conn.scan_iter(match=HEALTH_KEY_PREFIX + "*")):
        raw = {_text(k): _text(v) for k, v in conn.hgetall(key).items()}
        health = ConnectorHealth(name=raw.get("name", _text(key)[len(HEALTH_KEY_PREFIX):]),
                                 platform=raw.get("platform", ""))
        for field, default in asdict(health).items():
            if field in raw and field not in ("name", "platform"):
                setattr(health, field, _typed(raw[field], default))
        row = asdict(health)
        row["seconds_since_success"] = round(now - health.last_success_at, 3) if health.last_success_at else None
        row["rate_limited"] = health.rate_limited_until > now
        out.append(row)
    return out


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _typed(value: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            return value in ("1", "True", "true")
        if isinstance(default, int):
            return int(float(value))
        if isinstance(default, float):
            return float(value)
    except ValueError:
        return default
    return value
