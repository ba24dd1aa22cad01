"""`flare drill`: a test call through the real system, as emergency centres run them.

A clearly marked test post goes in through a platform (the sandbox, or a real drill account),
and the drill follows it: stored → triaged → incident in the dispatch queue → acknowledged by
the drill user through the API → "a dispatcher has seen your message" delivered to the platform.
Each stage's latency is printed; the exit code is 0 only if every stage passed.
"""
from __future__ import annotations

import secrets
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
from sqlmodel import Session, select

from config import Settings
from flows.drill import DRILL_MARK
from dashboard.security import create_user, token_digest
from models.db import make_engine
from models.enums import DeliveryStatus, IncidentStatus, MessagePurpose, Role, TriageState
from models.tables import Incident, IncidentPost, OutboundMessage, Post, User
from runtime.demo import sandbox_client_env
from runtime.processes import Child, Supervisor, wait_http


@dataclass
class Stage:
    name: str
    ok: bool = False
    seconds: float | None = None
    detail: str = ""

    def line(self) -> str:
        took = f"{self.seconds * 1000:8.0f} ms" if self.seconds is not None else "         -"
        return f"  {'PASS' if self.ok else 'FAIL'}  {self.name:<28} {took}  {self.detail}"


@dataclass
class DrillReport:
    stages: list[Stage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.stages) and all(s.ok for s in self.stages)

    def print(self) -> None:
        for s in self.stages:
            print(s.line(), flush=True)
        print(f"drill {'PASSED' if self.ok else 'FAILED'}", flush=True)


def _wait(check: Callable[[], object], timeout: float, interval: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    return None


def drill_token(engine) -> str:
    """A fresh API token for the drill user (a dispatcher account used only by drills)."""
    token = secrets.token_urlsafe(32)
    with Session(engine) as s:
        user = s.exec(select(User).where(User.username == "drill")).first()
        if user is None:
            user, _ = create_user(s, "drill", secrets.token_urlsafe(24), Role.dispatcher.value,
                                  display_name="Drill")
        user.api_token_hash = token_digest(token)
        s.add(user)
        s.commit()
    return token


def run_drill(settings: Settings, sandbox_url: str, dashboard_url: str, timeout: float = 90.0) -> DrillReport:
    report = DrillReport()
    engine = make_engine(settings.resolved_database_url)
    token = drill_token(engine)
    marker = uuid.uuid4().hex[:8]
    text = (f"{DRILL_MARK} {marker}] TEST ONLY, NOT A REAL EMERGENCY: a person has collapsed and is "
            "not breathing")
    t0 = time.monotonic()

    def stage(name: str, check: Callable[[], object], budget: float, detail: Callable[[object], str]) -> object:
        value = _wait(check, budget)
        st = Stage(name, ok=bool(value), seconds=(time.monotonic() - t0) if value else None)
        st.detail = detail(value) if value else f"not reached within {budget:.0f} s"
        report.stages.append(st)
        print(st.line(), flush=True)
        return value

    try:
        r = httpx.post(f"{sandbox_url}/_sandbox/post", json={
            "platform": "x", "text": text, "author": settings.drill_author, "is_dm": True}, timeout=10)
        r.raise_for_status()
        external_id = str(r.json()["external_id"])
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        report.stages.append(Stage("inject test post", detail=f"sandbox refused: {exc}"))
        report.print()
        return report
    report.stages.append(Stage("inject test post", ok=True, seconds=0.0, detail=f"x DM {external_id}"))

    def post_row():
        with Session(engine) as s:
            # Found by the drill's unique marker: connectors may namespace ids (e.g. DMs).
            return s.exec(select(Post).where(Post.platform == "x", Post.text.contains(marker))).first()

    post = stage("stored (connector → DB)", post_row, timeout, lambda p: f"post #{p.id}")
    if not post:
        return _finish(report, engine)
    post_id = post.id

    def triaged():
        with Session(engine) as s:
            p = s.get(Post, post_id)
            return p if p.triage_state == TriageState.done.value else None

    if not stage("triaged", triaged, timeout, lambda p: f"disposition {p.disposition}"):
        return _finish(report, engine)

    def queued():
        with Session(engine) as s:
            inc = s.exec(select(Incident).join(IncidentPost, IncidentPost.incident_id == Incident.id)
                         .where(IncidentPost.post_id == post_id)).first()
            return inc if inc and inc.stream_entry_id else None

    incident = stage("in dispatch queue", queued, timeout, lambda i: f"incident #{i.id} ({i.urgency})")
    if not incident:
        return _finish(report, engine)

    def acknowledge():
        try:
            r = httpx.post(f"{dashboard_url}/api/v1/incidents/{incident.id}/acknowledge",
                           headers={"authorization": f"Bearer {token}"}, timeout=10)
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        with Session(engine) as s:
            inc = s.get(Incident, incident.id)
            return inc if inc.status == IncidentStatus.acknowledged.value else None

    if not stage("acknowledged by drill user", acknowledge, timeout, lambda i: f"by {i.acknowledged_by}"):
        return _finish(report, engine)

    def reply_delivered():
        with Session(engine) as s:
            msg = s.exec(select(OutboundMessage).where(
                OutboundMessage.post_id == post_id,
                OutboundMessage.purpose == MessagePurpose.acknowledged.value)).first()
            return msg if msg and msg.status == DeliveryStatus.sent.value else None

    stage("reply delivered to reporter", reply_delivered, timeout,
          lambda m: f"{m.kind} {m.platform_message_id}")
    return _finish(report, engine)


def _finish(report: DrillReport, engine) -> DrillReport:
    engine.dispose()
    print(f"drill {'PASSED' if report.ok else 'FAILED'}", flush=True)
    return report


def embedded_drill(timeout: float = 90.0, kill_worker_on_store: bool = False,
                   model_cache_dir: Path | None = None) -> DrillReport:
    """Start a whole temporary system (embedded Redis, SQLite, sandbox, worker, web, connectors),
    run the drill against it, and tear it all down.

    Start-up is the report's first stage, so a drill that fails says where: the system, its
    models, or a stage of the post's path (with the tail of every process's log). With
    `kill_worker_on_store` the worker is SIGKILLed the moment the post is stored and a new one
    started (the chaos drill); `model_cache_dir` points the worker at an encoder already built."""
    with tempfile.TemporaryDirectory(prefix="flare-drill-") as tmp:
        port, sandbox_port = _free_port(), _free_port()
        settings = Settings(_env_file=None, data_dir=Path(tmp), database_url="", redis_url="")
        settings.dashboard.port = port
        sup = Supervisor(settings)
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        sup.env.update(sandbox_client_env(sandbox_url, settings.service.handle))
        sup.env["FLARE_DASHBOARD__PORT"] = str(port)
        if model_cache_dir is not None:
            sup.env["FLARE_TRIAGE__MODEL_CACHE_DIR"] = str(model_cache_dir)
        try:
            t0 = time.monotonic()
            env = sup.start_infrastructure()
            sup.spawn("sandbox", "sandbox", "--port", str(sandbox_port))
            worker = sup.spawn("worker", "worker")
            sup.spawn("web", "web", "--port", str(port))
            sup.spawn("connectors", "connectors")
            dash = f"http://127.0.0.1:{port}"
            up = Stage("system up, models loaded")
            if not (wait_http(f"{sandbox_url}/_sandbox/items", 60) and wait_http(f"{dash}/healthz", 90)):
                up.detail = "sandbox or web did not answer"
            elif not _wait_worker_ready(env["FLARE_REDIS_URL"], 300):
                up.detail = "no worker became ready within 300 s (models failed to load?)"
            else:
                up.ok, up.seconds = True, time.monotonic() - t0
                up.detail = f"embedded Redis + SQLite in {tmp}"
            print(up.line(), flush=True)
            if not up.ok:
                _dump_logs(sup.log_dir)
                return DrillReport([up])
            run_settings = Settings(_env_file=None, data_dir=Path(tmp), database_url=env["FLARE_DATABASE_URL"],
                                    redis_url=env["FLARE_REDIS_URL"])
            chaos = _kill_worker_when_post_stored(sup, worker, env["FLARE_DATABASE_URL"], timeout) \
                if kill_worker_on_store else None
            report = run_drill(run_settings, sandbox_url, dash, timeout)
            report.stages.insert(0, up)
            if chaos is not None:
                report.stages.insert(1, chaos)
            if not report.ok:
                _dump_logs(sup.log_dir)
            return report
        finally:
            sup.stop()


def _kill_worker_when_post_stored(sup: Supervisor, worker: Child, database_url: str, timeout: float) -> Stage:
    """Chaos for tests: SIGKILL the worker the moment the drill post lands, then start a new one.
    The returned stage passes once that has happened."""
    done = Stage("worker killed on store", detail="the post was never stored")

    def chaos() -> None:
        engine = make_engine(database_url)

        def stored():
            with Session(engine) as s:
                return s.exec(select(Post.id).where(Post.text.contains(DRILL_MARK))).first()

        if _wait(stored, timeout, 0.02):
            print("  (chaos) post stored: SIGKILL the worker and start a new one", flush=True)
            sup.restart(worker)
            done.ok, done.detail = True, "SIGKILL, and a new worker started"
        engine.dispose()

    threading.Thread(target=chaos, daemon=True, name="drill-chaos").start()
    return done


def _wait_worker_ready(redis_url: str, timeout: float) -> bool:
    """A worker sets its liveness key only once its models are loaded."""
    conn = redis.Redis.from_url(redis_url)
    try:
        return bool(_wait(lambda: next(conn.scan_iter("flare:worker-alive:*", count=100), None), timeout, 0.2))
    finally:
        conn.close()


def _dump_logs(log_dir: Path | None) -> None:
    if log_dir is None:
        return
    for path in sorted(log_dir.glob("*.log")):
        tail = path.read_text(errors="replace").splitlines()[-15:]
        print(f"--- {path.name} (last lines)")
        print("\n".join(tail))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
