"""Privacy and input defaults: private data directory, no cached pages, bounded limits, real passwords."""
from __future__ import annotations

import stat

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from config import Settings
from dashboard.app import create_app
from dashboard.security import MIN_PASSWORD_LENGTH, create_user, secret_key
from models.db import make_engine, private_dir


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_directory_is_private(tmp_path):
    data = tmp_path / "data"
    make_engine(f"sqlite:///{data / 'flare.db'}").dispose()
    assert _mode(data) == 0o700
    data.chmod(0o755)  # an existing, too-open directory is tightened
    secret_key(Settings(_env_file=None, data_dir=data))
    assert _mode(data) == 0o700 and _mode(data / "secret_key") == 0o600


def test_short_passwords_are_refused(engine):
    with Session(engine) as s:
        with pytest.raises(ValueError, match=str(MIN_PASSWORD_LENGTH)):
            create_user(s, "kim", "x", "dispatcher")


@pytest.fixture
def api(settings, engine):
    with Session(engine) as s:
        _, token = create_user(s, "olga", "officer-password-1", "officer")
        s.commit()
    client = TestClient(create_app(settings))
    client.headers["authorization"] = f"Bearer {token}"
    return client


def test_pages_and_answers_are_not_cached_but_static_assets_may_be(api):
    assert api.get("/api/v1/posts").headers["cache-control"] == "no-store"
    assert api.get("/login").headers["cache-control"] == "no-store"
    assert "no-store" not in api.get("/static/flare.css").headers.get("cache-control", "")


@pytest.mark.parametrize("limit", ["-1", "0", "501", "99999999999999999999"])
def test_post_list_limit_out_of_range_is_a_client_error(api, limit):
    assert api.get(f"/api/v1/posts?limit={limit}").status_code == 422


def test_users_create_refuses_a_short_password_and_creates_none(settings, engine, monkeypatch):
    from typer.testing import CliRunner

    from runtime.cli import app as cli
    from models.tables import User

    monkeypatch.setenv("FLARE_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("FLARE_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    short = runner.invoke(cli, ["users", "create", "kim", "--role", "dispatcher", "--password", "x"])
    assert short.exit_code == 2 and str(MIN_PASSWORD_LENGTH) in short.output
    assert "api_token" not in short.output
    with Session(engine) as s:
        assert s.query(User).count() == 0
    ok = runner.invoke(cli, ["users", "create", "kim", "--role", "dispatcher", "--password", "a-long-enough-pass"])
    assert ok.exit_code == 0 and '"api_token"' in ok.output


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_no_interactive_docs_page_loads_scripts_from_a_cdn(api, path):
    r = api.get(path)
    assert r.status_code == 404
    assert "cdn" not in r.text.lower() and "swagger" not in r.text.lower()


def test_the_api_description_is_for_authenticated_users_only(settings, api):
    anonymous = TestClient(create_app(settings), follow_redirects=False)
    r = anonymous.get("/openapi.json")
    assert r.status_code == 401 and "openapi" not in r.text
    described = api.get("/openapi.json")
    assert described.status_code == 200 and described.headers["cache-control"] == "no-store"
    paths = described.json()["paths"]
    assert "/api/v1/posts" in paths and "/openapi.json" not in paths


def _world_or_group_accessible(root) -> list[str]:
    return [f"{p} {oct(_mode(p))}" for p in [root, *root.rglob("*")]
            if not p.is_symlink() and _mode(p) & 0o077]


@pytest.fixture
def open_umask():
    """The usual umask (022), under which files are created world-readable unless Flare says otherwise."""
    import os

    old = os.umask(0o022)
    yield
    os.umask(old)


def test_everything_in_the_data_directory_is_private_whatever_the_umask(tmp_path, open_umask, monkeypatch):
    import redis as redis_client
    from sqlalchemy import text

    from runtime.embedded import EmbeddedRedis
    from runtime.processes import Supervisor
    from dashboard.share.storage import write_file

    data = tmp_path / "data"
    # Database, with its WAL and shared-memory files.
    engine = make_engine(f"sqlite:///{data / 'flare.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT)"))
        conn.execute(text("INSERT INTO t VALUES ('12 High Street')"))
    assert (data / "flare.db-wal").exists()
    # Embedded Redis: AOF and log.
    server = EmbeddedRedis(data)
    try:
        client = redis_client.Redis.from_url(server.start())
        client.set("reporter", "12 High Street")
        client.bgrewriteaof()
    finally:
        server.stop()
    assert list(data.rglob("*.aof")) and (data / "redis.log").exists()
    # Media, several directories deep.
    settings = Settings(_env_file=None, data_dir=data)
    stored = write_file(settings, 7, 3, "photo", "jpg", b"\xff\xd8 not really a jpeg")
    assert (settings.resolved_media_dir / stored.relpath).exists()
    # Logs of the processes the supervisor starts.
    supervisor = Supervisor(settings, log_dir=private_dir(data / "logs"))
    child = supervisor.spawn("help", "--help")
    child.process.wait(timeout=60)
    assert (data / "logs" / "help.log").stat().st_size > 0
    engine.dispose()
    assert _mode(data) == 0o700
    assert _world_or_group_accessible(data) == []


def test_an_older_too_open_data_directory_is_tightened_at_start(tmp_path, open_umask):
    from runtime.embedded import EmbeddedRedis

    data = tmp_path / "data"
    (data / "media" / "1").mkdir(parents=True, mode=0o755)
    (data / "media" / "1" / "photo.jpg").write_bytes(b"x")
    (data / "flare.db").write_bytes(b"")
    data.chmod(0o755)
    assert _world_or_group_accessible(data)
    server = EmbeddedRedis(data)
    server.start()
    try:
        assert _world_or_group_accessible(data) == []
    finally:
        server.stop()


def test_the_readiness_probe_says_how_connectors_are_but_not_their_error_text(settings, redis_conn):
    """/readyz answers anyone (the proxy, the orchestrator): a connector's last error can quote the
    request it failed on, platform credentials in its query string included, so only the state
    and the time of the failure are shown there (signed-in supervisors see the rest)."""
    from connectors.health import record_failure

    record_failure(redis_conn, "x-mentions", "x", "401 for url 'https://api.x.example/2/search?access_token=s3cr3t'", 3)
    r = TestClient(create_app(settings)).get("/readyz")
    assert r.status_code == 200
    [connector] = r.json()["connectors"]
    assert connector["name"] == "x-mentions" and connector["consecutive_failures"] == 3 and connector["last_error_at"]
    assert "s3cr3t" not in r.text and "access_token" not in r.text
