"""Is a worker alive? What the sweep asks before it re-drives the posts of a job a worker started.

A worker beats every HEARTBEAT_S: it sets its liveness key (`context.liveness_key`) to expire
after PAUSE_TOLERATED_S, on a Redis connection of its own named after it (CLIENT SETNAME). The
key's remaining time, read on the Redis server (no clocks compared), says how long ago it last
beat; the connection says whether its process still exists: the kernel closes a killed process's
sockets at once, while a paused one (a long garbage collection, a starved CPU, SIGSTOP) keeps
them open. So a worker is

- alive if it beat within FRESH_S (this also covers its heartbeat reconnecting after a Redis restart);
- alive, only paused, if it beat longer ago but its connection is still there, for up to PAUSE_TOLERATED_S;
- dead if it beat longer ago than FRESH_S and its connection is gone: killed, its work is re-driven now;
- dead once it has not beaten for PAUSE_TOLERATED_S (the key is gone), connection or not: a host
  that froze or lost the network keeps its socket open on the Redis side until TCP gives up.

A killed worker's started job is re-driven within FRESH_S of its last beat, as before; a pause of
a few seconds no longer makes a live worker's job look lost (re-driven, its posts decided twice).
"""
from __future__ import annotations

import redis

from flows.context import impatient_client, liveness_key

HEARTBEAT_S = 0.5
FRESH_S = 2.0  # a worker that beat this recently is alive, whatever its connection
PAUSE_TOLERATED_S = 15.0  # a worker paused this long with its connection open still counts as alive
_TIMEOUT_S = 1.0


def client_name(worker_name: str) -> str:
    """The name a worker's heartbeat connection goes by in CLIENT LIST."""
    return f"flare-alive:{worker_name}"


def heartbeat_client(conn: redis.Redis, worker_name: str) -> redis.Redis:
    """One connection to `conn`'s server, named for `worker_name` (set again on every reconnect),
    with short timeouts and no retries: a beat that cannot go out is simply the next one."""
    return impatient_client(conn, _TIMEOUT_S, name=client_name(worker_name), single_connection=True)


def beat(client: redis.Redis, worker_name: str) -> None:
    client.set(liveness_key(worker_name), "1", px=int(PAUSE_TOLERATED_S * 1000))


def worker_alive(conn: redis.Redis, worker_name: str) -> bool:
    """Whether `worker_name` still runs (see the module's docstring)."""
    remaining = conn.pttl(liveness_key(worker_name))
    if remaining == -2:  # no key: never beat, exited, or silent for PAUSE_TOLERATED_S
        return False
    if remaining == -1 or PAUSE_TOLERATED_S * 1000 - remaining <= FRESH_S * 1000:
        return True
    try:
        names = {client.get("name") for client in conn.client_list()}
    except redis.ResponseError:  # CLIENT LIST not allowed to this user: only a fresh beat counts
        return False
    return client_name(worker_name) in names
