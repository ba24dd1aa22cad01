"""`flare run` and `flare demo`: the whole system as child processes of one supervisor."""
from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import uvicorn
from sqlmodel import Session, select

from connectors.sandbox.app import create_sandbox_app
from connectors.sandbox.scenario import DEMO_SCENARIO, load_scenario, play_scenario
from connectors.sandbox.state import X_SERVICE_USER_ID, SandboxState

from config import Settings
from runtime.embedded import EmbeddedRedis
from runtime.paging_inbox import INBOX_DIR, paging_env
from runtime.processes import Supervisor, wait_http
from dashboard.security import create_user, token_digest
from models.db import make_engine
from models.enums import Role
from models.tables import User

DEMO_PASSWORD_FILE = "demo-logins.txt"
# What `flare demo --fresh` removes: the incidents, posts and queues of earlier runs. The demo
# logins and the signing key stay, so bookmarks and the printed passwords keep working.
FRESH_REMOVES = ("flare.db", "flare.db-wal", "flare.db-shm", "flare.db-journal", "appendonlydir",
                 "appendonly.aof", "dump.rdb", "sandbox-state.json", INBOX_DIR, "media")


class FreshRefused(RuntimeError):
    pass


def fresh_start(settings: Settings) -> list[str]:
    """Forget every earlier demo run in the data dir; returns what was removed."""
    if settings.database_url or settings.redis_url:
        raise FreshRefused("--fresh only resets the embedded demo data; FLARE_DATABASE_URL or "
                           "FLARE_REDIS_URL is set, and Flare never wipes a configured service")
    data_dir = Path(settings.data_dir)
    if EmbeddedRedis(data_dir)._alive():
        raise FreshRefused(f"another Flare is still running on {data_dir.resolve()}: stop it first")
    removed = []
    for name in FRESH_REMOVES:
        path = data_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(name)
    # The signed checkpoints describe the chains just removed: kept, they would name every new
    # chain a rewrite and hold back every later checkpoint. The keys stay.
    checkpoints = settings.resolved_checkpoint_file
    if checkpoints.exists():
        checkpoints.unlink()
        removed.append(checkpoints.name)
    return removed


def sandbox_client_env(base_url: str, handle: str) -> dict[str, str]:
    """Settings that point the real client libraries at the local sandbox."""
    return {
        "FLARE_X__BASE_URL": base_url, "FLARE_X__BEARER_TOKEN": "sandbox-bearer",
        "FLARE_X__USER_ID": X_SERVICE_USER_ID, "FLARE_X__CONSUMER_KEY": "sandbox-ck",
        "FLARE_X__CONSUMER_SECRET": "sandbox-cs", "FLARE_X__ACCESS_TOKEN": "sandbox-at",
        "FLARE_X__ACCESS_TOKEN_SECRET": "sandbox-ats", "FLARE_X__POLL_SECONDS": "1",
        "FLARE_BLUESKY__BASE_URL": base_url, "FLARE_BLUESKY__HANDLE": f"{handle}.bsky.social",
        "FLARE_BLUESKY__APP_PASSWORD": "sandbox-app-password", "FLARE_BLUESKY__POLL_SECONDS": "1",
        "FLARE_REDDIT__BASE_URL": base_url, "FLARE_REDDIT__CLIENT_ID": "sandbox-client",
        "FLARE_REDDIT__CLIENT_SECRET": "sandbox-secret", "FLARE_REDDIT__USERNAME": handle,
        "FLARE_REDDIT__PASSWORD": "sandbox-password", "FLARE_REDDIT__POLL_SECONDS": "1",
    }


def serve_sandbox(host: str, port: int, scenario: Path | None, data_dir: Path, speed: float = 1.0) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    state = SandboxState(path=data_dir / "sandbox-state.json")
    if scenario is not None:
        play_scenario(state, load_scenario(scenario), speed=speed)
    uvicorn.run(create_sandbox_app(state), host=host, port=port, log_level="warning", access_log=False)


def ensure_demo_users(database_url: str, data_dir: Path) -> dict[str, str]:
    """One user per role with a random password, written to the data dir (created once)."""
    path = data_dir / DEMO_PASSWORD_FILE
    engine = make_engine(database_url)
    logins: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, pw = line.partition(" ")
            logins[name] = pw
    with Session(engine) as s:
        for role in Role:
            name = role.value
            if s.exec(select(User).where(User.username == name)).first():
                continue
            pw = logins.get(name) or f"{name}-{secrets.token_hex(6)}"
            created, _token = create_user(s, name, pw, role.value, display_name=name.title())
            if role is Role.wall:
                created.api_token_hash = token_digest(pw)  # the wall signs in with this key at /wall/enter
            logins[name] = pw
        s.commit()
    engine.dispose()
    path.write_text("".join(f"{k} {v}\n" for k, v in logins.items()))
    path.chmod(0o600)
    return logins


def run_system(settings: Settings, workers: int = 2, demo: bool = False, sandbox_port: int = 8765,
               paging_port: int = 8025) -> None:
    sup = Supervisor(settings)
    data_dir = Path(settings.data_dir).resolve()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    if demo:
        sup.env.update(sandbox_client_env(sandbox_url, settings.service.handle))
        if not settings.notifiers.smtp_host:  # a configured relay wins over the demo inbox
            sup.env.update(paging_env("127.0.0.1", paging_port))
    env = sup.start_infrastructure()
    try:
        logins = ensure_demo_users(env["FLARE_DATABASE_URL"], data_dir) if demo else {}
        if demo:
            sup.spawn("sandbox", "sandbox", "--port", str(sandbox_port), "--scenario", str(DEMO_SCENARIO))
            wait_http(f"{sandbox_url}/_sandbox/items", 30)
            if not settings.notifiers.smtp_host:
                sup.spawn("paging-inbox", "paging-inbox", "--port", str(paging_port))
        for n in range(workers):
            sup.spawn(f"worker-{n + 1}", "worker")
        sup.spawn("sender", "sender")
        sup.spawn("web", "web", "--port", str(settings.dashboard.port))
        sup.spawn("connectors", "connectors", standby=True)
        url = f"http://{settings.dashboard.host}:{settings.dashboard.port}"
        up = wait_http(f"{url}/healthz", 60)
        print(f"\nFlare is {'running' if up else 'starting (dashboard slow to answer)'}: {url}", flush=True)
        if demo:
            print(f"  Sign in as dispatcher / {logins.get('dispatcher')}   (all demo logins: "
                  f"{data_dir / DEMO_PASSWORD_FILE})")
            print(f"  Wall display: {url}/wall/enter with the wall key {logins.get('wall')}")
            print(f"  Post as a member of the public: {sandbox_url}/")
            if not settings.notifiers.smtp_host:
                print(f"  Pages to the duty supervisor and duty manager arrive by e-mail in "
                      f"{data_dir / INBOX_DIR} (SMTP on 127.0.0.1:{paging_port})")
        print(f"  Logs: {data_dir / 'logs'}   Stop with Ctrl-C.\n", flush=True)
        sup.wait_forever()
    finally:
        print("stopping…", flush=True)
        sup.stop()
        print("stopped.", flush=True)

