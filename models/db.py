"""Engine, sessions and migrations. Callers pass the URL in; nothing is global."""
from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event, inspect, text, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine, select

from models.events import set_chain_key

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


PRIVATE_UMASK = 0o077  # files and directories Flare creates: the owner only


def private_dir(path: Path) -> Path:
    """Create a directory only its owner can read (reporters' words and places live there), and
    any missing parent likewise, and tighten one that exists: 0700."""
    path = Path(path)
    for directory in reversed([p for p in [path, *path.parents] if not p.exists()]):
        directory.mkdir(mode=0o700, exist_ok=True)
        directory.chmod(0o700)
    path.chmod(0o700)
    return path


def private_opener(path: str, flags: int) -> int:
    """`open(..., opener=private_opener)`: a file created 0600, whatever the process umask."""
    return os.open(path, flags, 0o600)


def write_private(final: Path, data: bytes) -> Path:
    """Write `data` to `final` (0600) so that a reader sees all of it or nothing: a hidden
    temporary file, synced, then renamed into place."""
    tmp = final.with_name(f".{final.name}.part")
    with open(tmp, "wb", opener=private_opener) as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return final


def private_tree(path: Path) -> Path:
    """`path` made 0700 (created if missing), and everything already in it tightened: no group or
    other access to any file or directory (an older install, or files copied in, may have it)."""
    private_dir(path)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            entry = Path(root) / name
            mode = entry.lstat().st_mode
            if stat.S_ISLNK(mode) or not mode & PRIVATE_UMASK:
                continue
            entry.chmod(stat.S_IMODE(mode) & ~PRIVATE_UMASK)
    return path


def private_file(path: Path) -> Path:
    """Create an empty file 0600 (in a private directory) if missing; tighten it if it exists."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    path.chmod(0o600)
    return path


def make_engine(url: str, chain_key: bytes | None = None, **kwargs) -> Engine:
    """Create an engine tuned for Flare's access pattern (many short transactions).

    `chain_key` is the evidence key events are chained with (evidence.keys); an engine without it
    can read everything but refuses to append events."""
    engine = _make_engine(url, **kwargs)
    if chain_key is not None:
        set_chain_key(engine, chain_key)
    return engine


def _make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not path.startswith("file:"):
            # Created 0600 before SQLite opens it: its WAL and shared-memory files take the
            # database file's mode.
            private_file(Path(path))
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # WAL lets the dashboard read while workers write
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)


def get_locked(session: Session, model, row_id: int):
    """The row, held against other writers until the transaction ends (None if there is none).

    PostgreSQL: SELECT ... FOR UPDATE. SQLite ignores FOR UPDATE, so a no-op UPDATE of the row
    takes the database's write lock first: the read that follows sees the last commit, and no
    other writer changes the row before this transaction ends. Call it first in its transaction
    on SQLite (a read before it would pin an older snapshot)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(model).where(model.id == row_id).values(id=model.id))
    return session.get(model, row_id, with_for_update=True, populate_existing=True)



def get_locked_many(session: Session, model, row_ids: list[int]) -> list:
    """`get_locked` for many rows in one statement, in id order (two transactions locking
    overlapping sets queue on the first row they share instead of deadlocking)."""
    if not row_ids:
        return []
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(model).where(model.id.in_(row_ids)).values(id=model.id))
    return list(session.exec(select(model).where(model.id.in_(row_ids)).order_by(model.id)
                             .with_for_update().execution_options(populate_existing=True)).all())


def database_answers(engine: Engine) -> bool:
    """Whether the database answers now. Any failure is a no (a refused connection, an exhausted
    pool): callers ask from inside their error handling, where a raise would end their thread."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except (SQLAlchemyError, OSError):
        return False


# PostgreSQL plans a query from statistics that autovacuum gathers at most once a minute per
# database (autovacuum_naptime), and only after a tenth of a table has changed. A surge grows
# posts and memberships from nothing to tens of thousands of rows inside that minute; with no
# statistics the planner takes every `IN (...)` lookup of 64 authors for a third of the table.
# A reply check then walked every member of every open incident: 17 ms a page with a
# 4,000-report incident, growing with it, much of it under the grouping lock.
ANALYZE_MIN_CHANGES = 500  # rows inserted, updated or deleted since the table's last ANALYZE...
ANALYZE_CHANGED_SHARE = 0.2  # ...and at least this share of its live rows
ANALYZE_LOCK_TIMEOUT_MS = 200  # a table autovacuum is analyzing now is left to it


def refresh_statistics(engine: Engine) -> list[str]:
    """ANALYZE the tables of the current schema that changed a lot since they were last analyzed
    (PostgreSQL; SQLite plans from its indexes without statistics). Returns the tables analyzed.

    What autovacuum would do a minute or more later: the planner's estimates follow a burst
    while it happens. A table another session is analyzing is skipped (lock timeout)."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        stale = [name for name, live, changed in conn.execute(text(
            "SELECT relname, n_live_tup, n_mod_since_analyze FROM pg_stat_user_tables "
            "WHERE schemaname = current_schema()"))
            if changed >= max(ANALYZE_MIN_CHANGES, ANALYZE_CHANGED_SHARE * live)]
    analyzed = []
    for name in sorted(stale):
        with engine.connect() as conn:
            try:
                conn.execute(text(f"SET lock_timeout = {ANALYZE_LOCK_TIMEOUT_MS}"))
                conn.execute(text('ANALYZE "{}"'.format(name.replace('"', '""'))))
                conn.commit()
                analyzed.append(name)
            except OperationalError:  # lock timeout: autovacuum (or another worker) has it
                conn.rollback()
    return analyzed


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on error."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations (what `flare db upgrade` runs)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def is_migrated(engine: Engine) -> bool:
    return inspect(engine).has_table("alembic_version")
