"""Emptying the PostgreSQL test database between tests, without ever waiting forever on a lock.

TRUNCATE needs each table to itself. A connection an earlier test left idle inside an open
transaction (a request of a live app under test whose session was never closed, say) keeps a lock
on every table it read, and a plain TRUNCATE waits for it for as long as the connection lives: the
test run hangs. Here the TRUNCATE waits at most `lock_timeout_ms`; then the database's other
backends that sit idle in a transaction are ended (each named in a warning: what it last ran, the
tables it held, and where this process last checked its connection out) and it is tried again.

The test database belongs to this pytest process alone (tests/conftest.py creates one per
session), so every other backend on it is one of this process's own leftovers.
"""
from __future__ import annotations

import gc
import logging
import threading
import traceback
import warnings
from dataclasses import dataclass

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import Pool
from sqlmodel import SQLModel

log = logging.getLogger("flare.tests.db")

LOCK_TIMEOUT_MS = 5000  # a clean TRUNCATE of the test tables takes milliseconds
ATTEMPTS = 3
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock_timeout


class LeftoverTransaction(UserWarning):
    """A connection was left idle in a transaction, holding the tables a TRUNCATE needed."""


@dataclass(frozen=True, slots=True)
class Backend:
    pid: int
    state: str
    application_name: str
    query: str
    tables: str
    seconds_idle: float

    def describe(self) -> str:
        checked_out = CHECKOUTS.get(self.pid)
        where = f"; last checked out by thread {checked_out[0]!r} at\n{checked_out[1]}" if checked_out else ""
        return (f"pid {self.pid} ({self.state} for {self.seconds_idle:.1f} s, application_name "
                f"{self.application_name!r}, holding {self.tables or 'no table'}), last query: {self.query!r}{where}")


# Backend pid -> (thread name, stack) of this process's latest checkout of that connection: a
# leftover is named by the code that opened its transaction, not only by its last query.
CHECKOUTS: dict[int, tuple[str, str]] = {}
_tracking = threading.Lock()
_tracked = False


def track_checkouts() -> None:
    """Remember, for every pooled PostgreSQL connection of this process, who checked it out last."""
    global _tracked
    with _tracking:
        if _tracked:
            return
        _tracked = True
    event.listen(Pool, "checkout", _remember_checkout)


def _remember_checkout(dbapi_conn, record, proxy) -> None:
    pid = getattr(getattr(dbapi_conn, "info", None), "backend_pid", None)
    if not isinstance(pid, int):
        return  # SQLite
    frames = [f for f in traceback.extract_stack(limit=40)[:-1]
              if "site-packages" not in f.filename and "/lib/python3" not in f.filename]
    CHECKOUTS[pid] = (threading.current_thread().name, "".join(traceback.format_list(frames[-8:])))


def release_abandoned_sessions() -> None:
    """Call after stopping an app served in a thread of this process (uvicorn in a test).

    A request still running when the server stops is cancelled once its grace period is over, and
    uvicorn (then asyncio.run) cancels it again while FastAPI's shielded clean-up of the request's
    dependencies waits for a worker thread: the `get_db` session is then never closed. It sits in
    the frames of the logged CancelledError, idle in its transaction and holding its tables' locks,
    until the cycle collector frees it; and the collector does not run while the next test's
    TRUNCATE blocks the main thread on those locks. Collecting now closes such sessions (their
    generators are finalized, the pool rolls their connections back) before the next test."""
    gc.collect()


def table_names() -> str:
    return ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)


def truncate_all(engine: Engine, *, lock_timeout_ms: int = LOCK_TIMEOUT_MS, attempts: int = ATTEMPTS) -> list[Backend]:
    """TRUNCATE every table (ids restart at 1). Returns the leftover backends it had to end (none
    on the usual path); raises, naming the lock holders, if the tables are still locked after
    `attempts` tries."""
    ended: list[Backend] = []
    for attempt in range(1, attempts + 1):
        try:
            with engine.begin() as conn:
                conn.execute(text(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}"))
                conn.execute(text(f"TRUNCATE {table_names()} RESTART IDENTITY CASCADE"))
            return ended
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            others = other_backends(engine)
            idle = [b for b in others if b.state.startswith("idle in transaction")]
            if attempt == attempts or not idle:
                held = "\n".join(b.describe() for b in others) or "no other backend is left"
                raise RuntimeError(f"TRUNCATE of the test tables still waits for a lock after {attempt} "
                                   f"tries of {lock_timeout_ms} ms; the database's other backends:\n{held}") from exc
            for backend in idle:
                message = f"TRUNCATE waited {lock_timeout_ms} ms for a lock: ending a leftover connection, {backend.describe()}"
                log.warning(message)
                warnings.warn(message, LeftoverTransaction, stacklevel=2)
            terminate(engine, [b.pid for b in idle])
            ended += idle
    return ended


def other_backends(engine: Engine) -> list[Backend]:
    """Every other client connection to this database, with the tables it holds locks on."""
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT a.pid, coalesce(a.state, ''), coalesce(a.application_name, ''), coalesce(a.query, ''),
                   coalesce((SELECT string_agg(DISTINCT c.relname, ', ')
                             FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                             WHERE l.pid = a.pid AND l.granted AND c.relkind IN ('r', 'p')
                               AND c.relnamespace = 'public'::regnamespace), ''),
                   extract(epoch FROM now() - a.state_change)
            FROM pg_stat_activity a
            WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
            ORDER BY a.pid""")).all()
    return [Backend(int(pid), state, app, query[:300], tables, float(idle or 0.0))
            for pid, state, app, query, tables, idle in rows]


def terminate(engine: Engine, pids: list[int]) -> None:
    with engine.connect() as conn:
        for pid in pids:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        conn.commit()
