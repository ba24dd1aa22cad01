"""The per-test TRUNCATE (tests/db_cleanup.py) never hangs on a connection left open in a
transaction: it ends the leftover, names it, and empties the tables within a bound."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from models.db import make_engine
from tests.db_cleanup import LeftoverTransaction, truncate_all

LOCK_TIMEOUT_MS = 300
BOUND_S = 5.0  # two lock timeouts and the termination, with room for a loaded machine


@pytest.fixture
def pg_url(backend, database_url):
    if backend != "services":
        pytest.skip("TRUNCATE and backends to end are PostgreSQL's")
    return database_url


def _in_thread(fn, bound_s: float):
    """fn() in a thread: its result, or a failure (not a hang) if it takes longer than `bound_s`."""
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test below
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(bound_s)
    assert not thread.is_alive(), f"the cleanup still waits after {bound_s} s"
    if "error" in out:
        raise out["error"]
    return out["value"], time.monotonic() - started


def test_a_connection_left_idle_in_a_transaction_is_ended_and_named(pg_url):
    engine, cleaner = make_engine(pg_url), make_engine(pg_url)
    leftover = engine.connect()
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO connector_checkpoints (name, cursor, updated_at) VALUES ('x:dms', '{}', now())"))
        # What an unclosed session does: read, then sit idle with the transaction (and its lock) open.
        leftover.execute(text("SELECT count(*) FROM connector_checkpoints WHERE name = 'left open'"))
        leftover_pid = leftover.connection.dbapi_connection.info.backend_pid

        with pytest.warns(LeftoverTransaction, match="left open") as warned:
            ended, took = _in_thread(lambda: truncate_all(cleaner, lock_timeout_ms=LOCK_TIMEOUT_MS), BOUND_S)

        assert took < BOUND_S
        assert [b.pid for b in ended] == [leftover_pid]
        assert ended[0].state == "idle in transaction" and "connector_checkpoints" in ended[0].tables
        message = str(warned[0].message)
        assert f"pid {leftover_pid}" in message and "connector_checkpoints" in message
        assert "test_a_connection_left_idle_in_a_transaction_is_ended_and_named" in message, \
            "named by where its connection was checked out"
        with cleaner.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM connector_checkpoints")).scalar() == 0
        with pytest.raises(DBAPIError):
            leftover.execute(text("SELECT 1"))  # its backend was ended
    finally:
        leftover.invalidate()
        leftover.close()
        engine.dispose()
        cleaner.dispose()


def test_a_clean_database_is_emptied_without_ending_anything(pg_url, recwarn):
    cleaner = make_engine(pg_url)
    idle = cleaner.connect()  # idle, not in a transaction: it holds nothing
    idle.execute(text("SELECT 1"))
    idle.commit()
    try:
        ended, took = _in_thread(lambda: truncate_all(cleaner, lock_timeout_ms=LOCK_TIMEOUT_MS), BOUND_S)
        assert ended == [] and not [w for w in recwarn if w.category is LeftoverTransaction]
        idle.execute(text("SELECT 1"))  # still alive
    finally:
        idle.close()
        cleaner.dispose()


def test_a_lock_held_by_a_running_query_fails_the_cleanup_naming_it_instead_of_waiting(pg_url):
    engine, cleaner = make_engine(pg_url), make_engine(pg_url)
    busy = engine.connect()
    busy_pid = busy.connection.dbapi_connection.info.backend_pid
    busy.execute(text("LOCK TABLE posts IN ACCESS SHARE MODE"))
    sleeper = threading.Thread(target=lambda: _quietly(busy, "SELECT pg_sleep(30)"), daemon=True)
    sleeper.start()
    try:
        time.sleep(0.2)  # the sleep is running: an active backend, which is not ended
        with pytest.raises(RuntimeError, match=rf"(?s)still waits for a lock.*pid {busy_pid} \(active.*pg_sleep"):
            _in_thread(lambda: truncate_all(cleaner, lock_timeout_ms=LOCK_TIMEOUT_MS), BOUND_S)
    finally:
        with cleaner.connect() as conn:
            conn.execute(text("SELECT pg_cancel_backend(:pid)"), {"pid": busy_pid})
        sleeper.join(5)
        busy.invalidate()
        busy.close()
        engine.dispose()
        cleaner.dispose()


def _quietly(conn, sql: str) -> None:
    try:
        conn.execute(text(sql))
    except DBAPIError:
        pass  # cancelled by the test
