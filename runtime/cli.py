"""`flare`: the command line. Each command builds what it needs from Settings and nothing more."""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from config import Settings
from models.db import PRIVATE_UMASK

app = typer.Typer(help="Flare: emergency intake from social media.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database migrations.")
users_app = typer.Typer(help="Dashboard users.")
evidence_app = typer.Typer(help="Tamper-evident records and evidence bundles.")
cad_app = typer.Typer(help="Hand-off to computer-aided dispatch (EIDO JSON).")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(evidence_app, name="evidence")
app.add_typer(cad_app, name="cad")
console = Console(stderr=True)

REPO_ROOT = Path(__file__).resolve().parent.parent
# A worker or connectors process started during an outage retries this often until it can start.
START_RETRY_MIN_S, START_RETRY_MAX_S = 0.25, 1.0


# Room above one live frame in a WebSocket message: the kind byte, and the channel's JSON text
# messages (a reporter's typed text, at most a few KiB of UTF-8).
WS_MESSAGE_OVERHEAD = 64 * 1024


def _settings() -> Settings:
    return Settings()


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _configure_logging(level: str) -> None:
    try:
        from runtime.logging_setup import configure_logging
    except ImportError:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return
    configure_logging(level)


def _context(settings: Settings, wait: bool = False, database_required: bool = True, redis_required: bool = True):
    """The process's context. A long-running service (`wait`) started while Redis or the database
    is down waits for them, retrying every second or two, instead of exiting: a supervisor that
    restarts it in the middle of an outage would otherwise see it die again and again, and it
    would come up seconds after the store does instead of at once. `database_required=False`
    (the connectors) starts without waiting for the database, `redis_required=False` without
    waiting for Redis."""
    from flows.context import AppContext, DatabaseUnavailable
    from flows.context import RedisUnavailable
    from runtime.embedded import EmbeddedRedis

    delay, waited = START_RETRY_MIN_S, 0.0
    while True:
        try:
            url = settings.redis_url
            if not url:  # embedded: reuse the server a supervisor started for this data dir, or start one
                url = EmbeddedRedis(Path(settings.data_dir)).start()
            return AppContext.build(settings, redis_url=url, database_required=database_required,
                                    redis_required=redis_required)
        except (RedisUnavailable, DatabaseUnavailable) as exc:
            if not wait:
                _fail(str(exc))
            logging.getLogger("flare").warning("%s (waited %.0f s; retrying in %.1f s)", exc, waited, delay)
            time.sleep(delay)
            waited += delay
            delay = min(START_RETRY_MAX_S, delay * 2)


# ----------------------------------------------------------------------------- database / users
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations."""
    from models.db import upgrade

    settings = _settings()
    try:
        upgrade(settings.resolved_database_url)
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a driver traceback
        _fail(f"migration failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    console.print("database is up to date")


@users_app.command("create")
def users_create(username: str, role: Annotated[str, typer.Option(help="officer|dispatcher|supervisor|admin|field")],
                 password: Annotated[str, typer.Option(prompt=True, hide_input=True)]) -> None:
    """Create a user and print their API token (shown once)."""
    from sqlmodel import Session

    from dashboard.security import create_user
    from models.db import make_engine

    engine = make_engine(_settings().resolved_database_url)
    with Session(engine) as s:
        try:
            _, token = create_user(s, username, password, role)
            s.commit()
        except ValueError as exc:
            _fail(str(exc))
    print(json.dumps({"username": username, "role": role, "api_token": token}))


# ----------------------------------------------------------------------------- processes
@app.command()
def worker(burst: bool = False) -> None:
    """Run an RQ worker (triage, messages, escalation steps, sweeps)."""
    from runtime.worker import run_worker

    settings = _settings()
    _configure_logging(settings.log_level)
    run_worker(_context(settings, wait=not burst), burst=burst)


@app.command()
def sender() -> None:
    """Send replies to reporters (run one per machine beside the workers; while none runs, the
    workers send them)."""
    from runtime.worker import run_sender

    settings = _settings()
    _configure_logging(settings.log_level)
    run_sender(_context(settings, wait=True))


@app.command()
def web(host: str | None = None, port: int | None = None) -> None:
    """Serve the dashboard and API."""
    import uvicorn

    from dashboard.app import create_app

    settings = _settings()
    _configure_logging(settings.log_level)
    ctx = _context(settings)
    uvicorn.run(create_app(settings, ctx), host=host or settings.dashboard.host,
                port=port or settings.dashboard.port, **web_server_options(settings))


def web_server_options(settings: Settings) -> dict:
    """How `flare web` runs uvicorn. A WebSocket message is refused by the server past the largest
    one the share channel accepts (one live still frame, plus its kind byte), instead of being
    buffered up to uvicorn's default of 16 MiB per message before the app can refuse it."""
    return {"log_level": "warning", "access_log": False,
            "ws_max_size": settings.share.max_frame_bytes + WS_MESSAGE_OVERHEAD}


@app.command()
def connectors(standby: Annotated[bool, typer.Option(
        help="load everything, then wait for a line on stdin before polling (a supervisor's warm standby)")] = False,
        keep_standby: Annotated[bool, typer.Option(
            help="run the connectors with a warm standby beside them that takes over at once should they die "
                 "(as `flare run` does)")] = False,
) -> None:
    """Poll every configured platform and store what arrives."""
    settings = _settings()
    if keep_standby:  # this process only watches the two: it loads no connector itself
        from runtime.processes import keep_connectors

        keep_connectors(settings)
        return
    from runtime.connector_loop import run_connectors, wait_for_go

    _configure_logging(settings.log_level)
    go = stop = None
    if standby:
        go, stop = threading.Event(), threading.Event()
        threading.Thread(target=wait_for_go, args=(sys.stdin, go, stop), daemon=True, name="standby").start()
    # Without waiting for the database: a connectors process restarted into an outage reads the
    # platforms ahead through it and stores what it read the moment it answers
    # (connectors.runner._store_read_ahead). Nor for Redis: posts are stored in the database,
    # and handed on to triage once it answers (workers triage them from there meanwhile).
    run_connectors(_context(settings, wait=True, database_required=False, redis_required=False), stop=stop, go=go)


@app.command()
def sandbox(port: int = 8765, host: str = "127.0.0.1",
            scenario: Annotated[Path | None, typer.Option(help="JSON lines to replay")] = None) -> None:
    """Serve the local platform sandbox (X, Bluesky and Reddit wire protocols)."""
    from runtime.demo import serve_sandbox

    serve_sandbox(host, port, scenario, Path(_settings().data_dir))


@app.command()
def sweep() -> None:
    """Re-drive anything overdue once (the workers also do this continuously)."""
    from flows.sweep import sweep as run_sweep

    print(json.dumps(run_sweep(_context(_settings()))))


@app.command()
def run(workers: int = 2) -> None:
    """Run everything (workers, dashboard, connectors) on the configured or embedded services."""
    from runtime.demo import run_system

    run_system(_settings(), workers=workers, demo=False)


@app.command()
def demo(workers: int = 1, port: int = 8000, sandbox_port: int = 8765, paging_port: int = 8025,
         fresh: Annotated[bool, typer.Option(help="forget earlier demo runs (queue, posts, pages) first")] = False,
         ) -> None:
    """Start the whole system on embedded defaults with the sandbox and a scripted scenario."""
    from runtime.demo import FreshRefused, fresh_start, run_system

    settings = _settings()
    settings.dashboard.port = port
    if fresh:
        try:
            removed = fresh_start(settings)
        except FreshRefused as exc:
            _fail(str(exc))
        print(f"fresh demo: removed {', '.join(removed) or 'nothing (no earlier run)'}", flush=True)
    run_system(settings, workers=workers, demo=True, sandbox_port=sandbox_port, paging_port=paging_port)


@app.command("paging-inbox")
def paging_inbox(port: int = 8025, host: str = "127.0.0.1") -> None:
    """A local SMTP server that keeps every page it receives (the demo's duty supervisor and manager)."""
    from runtime.paging_inbox import INBOX_DIR, serve_inbox

    serve_inbox(host, port, Path(_settings().data_dir) / INBOX_DIR)


@app.command()
def drill(embedded: Annotated[bool, typer.Option(help="start a whole temporary system for the drill")] = False,
          timeout: float = 90.0, sandbox_url: str = "http://127.0.0.1:8765",
          dashboard_url: str = "") -> None:
    """End-to-end health check: test post → triage → incident → queue → acknowledge → reply."""
    from runtime.drill import embedded_drill, run_drill

    if embedded:
        ok = embedded_drill(timeout=timeout).ok
    else:
        settings = _settings()
        url = dashboard_url or f"http://{settings.dashboard.host}:{settings.dashboard.port}"
        ok = run_drill(settings, sandbox_url, url, timeout).ok
    raise typer.Exit(0 if ok else 1)


# ----------------------------------------------------------------------------- evidence
def _report(result: tuple[int, list[str]]) -> None:
    code, lines = result
    for line in lines:
        print(line)
    raise typer.Exit(code)


@evidence_app.command("verify")
def evidence_verify(target: Annotated[str | None, typer.Argument(
        help="an incident id, a bundle path, or nothing for every chain in the database")] = None,
        public_key: Annotated[Path | None, typer.Option(help="PEM public key, for a bundle")] = None) -> None:
    """Check the keyed chains, audit log and checkpoints (first broken entry named), or a bundle."""
    from evidence.commands import check_bundle, verify_chains

    if target and not target.isdigit():
        _report(check_bundle(_settings(), Path(target), public_key))
    _report(verify_chains(_settings(), int(target) if target else None))


@evidence_app.command("verify-bundle")
def evidence_verify_bundle(bundle: Path, public_key: Annotated[Path, typer.Option(
        help="the installation's PEM public key (`flare evidence public-key`)")]) -> None:
    """Verify a bundle offline: nothing but the bundle and the public key is read."""
    from evidence.commands import check_bundle

    _report(check_bundle(None, bundle, public_key))


@evidence_app.command("checkpoint")
def evidence_checkpoint() -> None:
    """Seal the audit log and append a signed checkpoint now (workers do this every interval)."""
    from evidence.commands import checkpoint

    _report(checkpoint(_settings()))


@evidence_app.command("public-key")
def evidence_public_key() -> None:
    """Print the PEM public key that verifies this installation's bundles and checkpoints."""
    from evidence.commands import public_key

    _report(public_key(_settings()))


@evidence_app.command("export")
def evidence_export(incident: int, out: Annotated[Path | None, typer.Option(help="bundle path (.zip)")] = None,
                    actor: str = "cli") -> None:
    """Write an evidence bundle: raw payloads, media, triage, event log, SHA-256 manifest."""
    from evidence.commands import export_bundle

    _report(export_bundle(_settings(), incident, out or Path(f"incident-{incident}-evidence.zip"), actor))


@app.command()
def purge() -> None:
    """Apply the retention policy now (workers also run it daily); legal holds are never purged."""
    from evidence.commands import run_purge

    _report(run_purge(_settings()))


@cad_app.command("export")
def cad_export(incident: int, send: bool = False) -> None:
    """Print an incident as EIDO JSON; --send delivers it to the configured CAD webhook."""
    from evidence.commands import cad_export as run_cad_export

    _report(run_cad_export(_settings(), incident, send=send))


# ----------------------------------------------------------------------------- triage
@app.command()
def triage(rules: Annotated[bool, typer.Option(help="use the rule baseline only")] = False,
           batch: int = 64) -> None:
    """Batch triage: JSON lines on stdin → one JSON result line per input line."""
    from runtime.triage_cli import triage_stream

    settings = _settings()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    triage_stream(settings, sys.stdin, sys.stdout, kind="rules" if rules else "auto", batch=batch)


@app.command()
def train(datasets: Path = REPO_ROOT.parent / "shared" / "datasets",
          out: Path = REPO_ROOT / "triage" / "weights",
          locations: Annotated[bool, typer.Option(
              help="also re-tune the location NER on IDRISI-R train (about 20 minutes)")] = False,
          lane_only: Annotated[bool, typer.Option(
              help="refit only the intake lane reader (seconds; no encoder)")] = False) -> None:
    """Rebuild the triage heads from the datasets (progress bar)."""
    from triage.corpus import build_corpus
    from triage.lane_training import train_lane
    from triage.locations.learned_ner import train_location_ner
    from triage.training import train as run_train

    if lane_only:
        typer.echo(json.dumps(train_lane(build_corpus(datasets), out), indent=1))
        return
    run_train(datasets, out, progress=True)
    if locations:
        train_location_ner(datasets, out / "location_ner", progress=True)


@app.command("eval")
def evaluate(datasets: Path = REPO_ROOT.parent / "shared" / "datasets",
             out: Path = REPO_ROOT / "triage" / "reports") -> None:
    """Evaluate triage on the dev sets; writes a markdown + JSON report."""
    from triage.evaluation import evaluate as run_eval

    report = run_eval(datasets, out)
    print(json.dumps(report, indent=2, default=str)[:20000])


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context, name: Annotated[str, typer.Argument(help="triage|ingest|escalation|burst|dashboard")]) -> None:
    """Run a benchmark from bench/ and print its figures."""
    from runtime.benches import run_bench

    raise typer.Exit(run_bench(name, list(ctx.args)))


def main() -> None:
    # Everything a Flare process (and the Redis server, workers and logs it starts) creates is
    # for its owner only: the database, AOF, logs and media hold reporters' words and places.
    os.umask(PRIVATE_UMASK)
    app()
