"""The live feed: every open dashboard (SSE, dashboard/routes/live.py) hears what changed."""
from __future__ import annotations

import json
import logging

import redis

from flows.context import AppContext

log = logging.getLogger("flare.live")
ALERT_CHANNEL = "flare:live"


def live_channel(conn: redis.Redis) -> str:
    """The live feed's channel for the Redis database `conn` uses. Pub/sub channels belong to the
    whole server, not to a database: two installations (a live one and a training one, or two test
    sessions) on one Redis server with databases of their own would otherwise hear each other's
    feeds, alarms included."""
    return f"{ALERT_CHANNEL}:{conn.connection_pool.connection_kwargs.get('db', 0)}"


def _channels(conn: redis.Redis) -> tuple[str, str]:
    """Where a change is published: the database's channel, and the single channel of the release
    before it (ALERT_CHANNEL), which its dashboards still listen on while a rolling upgrade
    replaces the workers first (docs/production.md, Releases). Nothing else listens there."""
    return live_channel(conn), ALERT_CHANNEL


def publish_live(ctx: AppContext, payload: dict) -> None:
    """Tell every open dashboard that something changed. Raises redis.RedisError when Redis is away."""
    message = json.dumps(payload, default=str)
    with ctx.redis.pipeline(transaction=False) as pipe:
        for channel in _channels(ctx.redis):
            pipe.publish(channel, message)
        pipe.execute()


def publish_live_many(ctx: AppContext, payloads: list[dict]) -> None:
    """Many changes in one round trip. Never raises: open screens re-read the database when their
    stream comes back."""
    if not payloads:
        return
    try:
        channels = _channels(ctx.redis)
        with ctx.redis.pipeline(transaction=False) as pipe:
            for payload in payloads:
                message = json.dumps(payload, default=str)
                for channel in channels:
                    pipe.publish(channel, message)
            pipe.execute()
    except redis.RedisError as exc:
        log.debug("live feed not told of %d changes: %s", len(payloads), exc)
