"""Burst benchmark: an explosion's worth of posts in a minute, with lone cries for help mixed in.

The sandbox (in this process) replays the generated scenario (bench/scenarios/burst.py) in real
time; the real system runs as processes — N `flare worker`s and `flare connectors` polling the
sandbox — against embedded Redis + SQLite, or PostgreSQL (a throwaway database) + a Redis server
over TCP with AOF. Every second it samples queue depths and the triage backlog.

Reported: intake and triage rates, queue depth over time, for each unrelated critical post the
time from its arrival (sandbox post time) to its incident entering the dispatch queue
(Incident.queued_at), how many incidents the burst produced, peak RSS per worker, posts lost
and work done twice (messages sent twice, incidents published twice); then a verdict on each
target (`targets`): MET, MISSED, or NOT SHOWN where the arrival rate cannot show it (a rate
above the arrivals: run again with fewer --seconds). The exit status is 1 if any is missed.

A scenario (--scenario PATH, default bench/scenarios/burst.py) is a standard-library module
with `burst_scenario(n_burst, n_unrelated, seconds, seed)` returning entries sorted by offset
(`at`, `platform`, `text`, a unique `author`; optionally `lat`/`lon`, `is_dm`, `reply_to` — the
author of an earlier entry it replies to in its thread — and `event`), and the author prefixes
`UNRELATED_AUTHOR` and `QUIET_AUTHOR` of its two sets of lone cries. An entry without `event`
belongs to the one event of the scenario; with it, "" is a post of no single event (kept out of
the count of incidents that mix events). Only the platforms its entries use are polled.

Usage: flare bench burst [--posts 16000] [--unrelated 20] [--seconds 60] [--workers 1]
                         [--backend embedded|services] [--drain-seconds 120] [--output PATH]
                         [--scenario PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import runpy
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, text
from sqlmodel import Session, select

from config import Settings
from connectors.sandbox import SandboxServer, SandboxState
from flows.context import SENDERS_KEY, WORKER_QUEUES
from runtime.demo import sandbox_client_env
from runtime.processes import Supervisor
from flows.decisions import STATS_KEY as DECISION_STATS_KEY
from flows.live import live_channel
from models.db import make_engine
from models.enums import DeliveryStatus, TriageState
from models.tables import OutboundMessage, Post

HERE = Path(__file__).resolve().parent
DEFAULT_SCENARIO = HERE / "scenarios" / "burst.py"
SCENARIO = runpy.run_path(str(DEFAULT_SCENARIO))
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# The targets and the verdict on each (bench/_burst_targets.py, standard library only).
TARGETS = runpy.run_path(str(HERE / "_burst_targets.py"))
TARGET_QUEUE_SECONDS = TARGETS["TARGET_QUEUE_SECONDS"]
# Reading back what the run left behind (bench/_burst_outcome.py, loaded by path).
OUTCOME = runpy.run_path(str(HERE / "_burst_outcome.py"))
post_key, events_of, count_incidents, sandbox_answers, _set_summary = (
    OUTCOME[name] for name in ("post_key", "events_of", "count_incidents", "sandbox_answers", "set_summary"))
targets = TARGETS["targets"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Services:
    """A throwaway PostgreSQL database and a TCP redis-server with AOF, removed afterwards."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.db_name = f"flare_bench_{uuid.uuid4().hex[:8]}"
        self.redis_proc: subprocess.Popen | None = None
        self.admin = None

    def start(self) -> tuple[str, str]:
        import redis
        import sqlalchemy

        from runtime.embedded import redis_server_binary

        self.admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.db_name}"'))
        port = _free_port()
        self.redis_proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(url, socket_timeout=1).ping():
                    break
            except redis.RedisError:
                time.sleep(0.05)
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.db_name}", url

    def stop(self) -> None:
        if self.redis_proc and self.redis_proc.poll() is None:
            self.redis_proc.terminate()
            self.redis_proc.wait(timeout=10)
        if self.admin is not None:
            with self.admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
            self.admin.dispose()


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _cpu_snapshot(roles: dict[str, list[int]]) -> dict | None:
    """CPU seconds so far: the machine's busy time, each role's processes, and every postgres
    and redis-server process on the machine (their work for this run cannot be told apart from
    other users'). None where /proc cannot be read (not Linux)."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    snap = {"wall": time.monotonic(), "busy": (sum(ticks[:8]) - ticks[3] - ticks[4]) / hz,
            "postgres": 0.0, "redis": 0.0}
    for role, pids in roles.items():
        snap[role] = sum(_cpu_s(pid) for pid in pids)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm in ("postgres", "redis-server"):
                snap["postgres" if comm == "postgres" else "redis"] += _cpu_s(int(entry.name))
    return snap


def _cpu_window(first: dict | None, last: dict | None) -> dict | None:
    """Cores used on average between two snapshots, by role; `other` is the machine's busy time
    that is none of them: other work on the machine, which makes a run's figures say more about
    that load than about the code."""
    if not first or not last:
        return None
    seconds = max(0.001, last["wall"] - first["wall"])
    # max(0, ...): a process that ended in between (a database connection) takes its time with it
    used = {k: round(max(0.0, last[k] - first[k]) / seconds, 2) for k in first if k != "wall"}
    used["other"] = round(max(0.0, used["busy"] - sum(v for k, v in used.items() if k != "busy")), 2)
    used["cores"] = os.cpu_count()
    return used


def _sample(engine, conn, started: float, worker_pids: list[int]) -> dict:
    pipe = conn.pipeline(transaction=False)
    for name in WORKER_QUEUES:
        pipe.llen(f"rq:queue:{name}")
    depths = dict(zip(WORKER_QUEUES, pipe.execute()))
    with Session(engine) as s:
        stored = s.exec(select(func.count(Post.id))).one()
        pending = s.exec(select(func.count(Post.id)).where(
            Post.triage_state == TriageState.pending.value)).one()
        replies = s.exec(select(func.count(OutboundMessage.id)).where(
            OutboundMessage.status == DeliveryStatus.queued.value)).one()
    return {"t": round(time.monotonic() - started, 2), "stored": int(stored), "pending": int(pending),
            "replies_waiting": int(replies),
            "depths": {k: int(v) for k, v in depths.items()},
            "worker_rss_mb": [round(_rss_mb(p), 1) for p in worker_pids]}


def _listen_decisions(url: str, decided: dict[int, float], stop: threading.Event) -> None:
    """When each post's model decision reached the live feed (the "decided" message every open
    monitoring screen gets): post id → wall-clock time it was heard."""
    import redis

    conn = redis.Redis.from_url(url)
    pubsub = conn.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(live_channel(conn))
    while not stop.is_set():
        msg = pubsub.get_message(timeout=0.5)
        if msg and b'"decided"' in msg["data"]:
            payload = json.loads(msg["data"])
            decided.setdefault(int(payload["post_id"]), time.time())
    pubsub.close()


def _duplicates(conn, state: SandboxState) -> dict:
    """Work done twice: the same message sent twice through a platform (same kind, target and
    text), or one incident published to a dispatch stream more than once. A post triaged or
    grouped twice cannot be stored (one triage record and one membership per post, both unique)."""
    from collections import Counter

    sent = Counter((m.platform, m.kind, m.in_reply_to, m.recipient, m.text) for m in state.outbox)
    published: Counter = Counter()
    for key in conn.scan_iter("flare:dispatch:*"):
        if conn.type(key) in (b"stream", "stream"):
            published.update((key, f[b"incident_id"]) for _, f in conn.xrange(key))
    return {"messages_sent": len(state.outbox),
            "messages_sent_twice": sum(n - 1 for n in sent.values() if n > 1),
            "stream_entries": sum(published.values()),
            "incidents_published_twice": sum(1 for n in published.values() if n > 1)}


def _standalone_rate(texts: list[str], processes: int, model_cache: str) -> float:
    """The bare triage pipeline on the same posts, as `processes` single-thread processes side by
    side (like `bench triage`), measured in this run before the system starts: posts/s."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")  # the target runs in the child as is (this module is run by path)
    results = ctx.Queue()
    procs = [ctx.Process(target=_standalone_worker, args=(texts[i::processes], model_cache, results))
             for i in range(processes)]
    for proc in procs:
        proc.start()
    done = [results.get(timeout=900) for _ in procs]
    for proc in procs:
        proc.join()
    return round(sum(n for n, _ in done) / max(seconds for _, seconds in done), 1)


def _standalone_worker(texts: list[str], model_cache: str, results) -> None:
    from triage import build_pipeline
    from triage.base import TriageInput

    settings = Settings(_env_file=None, triage={"model_cache_dir": model_cache} if model_cache else {})
    pipeline = build_pipeline(settings)
    pipeline.many([TriageInput(text=t) for t in texts[:64]])  # load models, warm caches
    started = time.perf_counter()
    for i in range(0, len(texts), 64):
        pipeline.many([TriageInput(text=t) for t in texts[i:i + 64]])
    results.put((len(texts), time.perf_counter() - started))


def load_scenario(path: Path) -> dict:
    """The scenario module at `path`, run by path like the default one (bench/ is no package)."""
    return SCENARIO if Path(path).resolve() == DEFAULT_SCENARIO else runpy.run_path(str(path))


def platform_env(sandbox_env: dict[str, str], platforms: set[str], poll_seconds: float) -> dict[str, str]:
    """The connectors' settings for the sandbox, for the platforms the scenario posts on only (a
    platform with no settings is not polled), each polled every `poll_seconds`."""
    prefixes = tuple(f"FLARE_{p.upper()}__" for p in sorted(platforms))
    env = {k: v for k, v in sandbox_env.items() if k.startswith(prefixes)}
    for prefix in prefixes:
        env[f"{prefix}POLL_SECONDS"] = str(poll_seconds)
    return env


def _wait_for(sup: Supervisor, since: float, failure: str, ready) -> None:
    """Wait until `ready()`; a child that died, or ten minutes since `since`, is an error."""
    while not ready():
        if time.monotonic() - since > 600 or sup.dead_children():
            raise RuntimeError(f"{failure}; logs in {sup.log_dir}")
        time.sleep(0.2)


def run(args: argparse.Namespace) -> dict:
    scenario = load_scenario(args.scenario)
    entries = scenario["burst_scenario"](args.posts, args.unrelated, args.seconds, args.seed)
    lone_prefix, quiet_prefix = scenario["UNRELATED_AUTHOR"], scenario["QUIET_AUTHOR"]
    event_of = events_of(entries, (lone_prefix, quiet_prefix))
    platforms = {e.platform for e in entries}
    standalone = _standalone_rate([e.text for e in entries[::max(1, len(entries) // args.standalone_posts)]],
                                  args.workers, args.model_cache) if args.standalone_posts else None
    if standalone:
        print(f"standalone pipeline ({args.workers} process(es)) on the scenario's posts: {standalone} posts/s",
              flush=True)
    with tempfile.TemporaryDirectory(prefix="flare-burst-") as tmp:
        data_dir = Path(tmp)
        services = Services(data_dir) if args.backend == "services" else None
        database_url, redis_url = services.start() if services else ("", "")
        settings = Settings(_env_file=None, data_dir=data_dir, database_url=database_url, redis_url=redis_url)
        sup = Supervisor(settings)
        state = SandboxState()
        sandbox = SandboxServer(state)
        try:
            url = sandbox.start()
            client_env = platform_env(sandbox_client_env(url, settings.service.handle), platforms, args.poll_seconds)
            if args.model_cache:
                client_env["FLARE_TRIAGE__MODEL_CACHE_DIR"] = args.model_cache
            if redis_url:
                client_env["FLARE_REDIS_URL"] = redis_url
            sup.env.update(client_env)
            env = sup.start_infrastructure()
            engine = make_engine(env["FLARE_DATABASE_URL"])
            import redis

            conn = redis.Redis.from_url(env["FLARE_REDIS_URL"])
            workers = [sup.spawn(f"worker-{n + 1}", "worker") for n in range(args.workers)]
            t_boot = time.monotonic()
            _wait_for(sup, t_boot, "workers did not become ready",
                      lambda: sum(1 for _ in conn.scan_iter("flare:worker-alive:*")) >= args.workers)
            # Replies go out from sender processes, as `flare run` and the compose file lay it out;
            # with none, the workers send them on threads of their own.
            senders = [sup.spawn(f"sender-{n + 1}", "sender") for n in range(args.senders)]
            if args.senders:
                _wait_for(sup, t_boot, "sender did not start", lambda: conn.exists(SENDERS_KEY))
            connectors = sup.spawn("connectors", "connectors")
            time.sleep(2.0)  # first (empty) poll done, so the replay is what we measure
            print(f"system up ({args.backend}, {args.workers} worker(s)) in {time.monotonic() - t_boot:.1f} s; "
                  f"replaying {len(entries)} posts over {args.seconds:.0f} s", flush=True)
            arrivals: dict[str, float] = {}
            roles = {"workers": [w.process.pid for w in workers], "connectors": [connectors.process.pid],
                     "senders": [sender.process.pid for sender in senders],
                     "benchmark": [os.getpid()]}
            cpu = [_cpu_snapshot(roles)]
            started, started_wall = time.monotonic(), time.time()
            stop = threading.Event()
            samples: list[dict] = []
            pids = [w.process.pid for w in workers]

            def sampler() -> None:
                while not stop.is_set():
                    samples.append(_sample(engine, conn, started, pids))
                    stop.wait(1.0)

            threading.Thread(target=sampler, daemon=True).start()
            heard: dict[int, float] = {}
            threading.Thread(target=_listen_decisions, args=(env["FLARE_REDIS_URL"], heard, stop),
                             daemon=True).start()
            labels: dict[tuple[str, str], str] = {}  # (platform, external id) → the entry's author
            posted: dict[str, str] = {}  # entry author → its item's external id (replies name it)
            for e in entries:
                delay = e.at - (time.monotonic() - started)
                if delay > 0:
                    time.sleep(delay)
                parent = getattr(e, "reply_to", "")
                item = state.add_post(e.platform, e.text, e.author, is_dm=getattr(e, "is_dm", False),
                                      lat=e.lat, lon=e.lon, reply_to=posted[parent] if parent else "")
                arrivals[e.author] = item.created_at
                posted[e.author] = item.external_id
                labels[post_key(item)] = e.author
            replay_s = time.monotonic() - started
            cpu.append(_cpu_snapshot(roles))
            deadline = time.monotonic() + args.drain_seconds
            while time.monotonic() < deadline:
                last = samples[-1] if samples else None
                if last and last["stored"] >= len(entries) and last["pending"] == 0:
                    break
                time.sleep(1.0)
            stop.set()
            cpu.append(_cpu_snapshot(roles))
            time.sleep(1.1)
            final = _sample(engine, conn, started, pids)
            samples.append(final)
            lone = {a: t for a, t in arrivals.items() if a.startswith(lone_prefix)}
            quiet = {a: t for a, t in arrivals.items() if a.startswith(quiet_prefix)}
            latencies = OUTCOME["lone_latencies"](engine, lone, labels)
            quiet_latencies = OUTCOME["lone_latencies"](engine, quiet, labels)
            decisions = OUTCOME["decision_latencies"](engine, arrivals, heard, labels)
            counts = OUTCOME["incident_counts"](engine, set(lone) | set(quiet), labels, event_of)
            duplicates = _duplicates(conn, state)
            sandbox_served = sandbox_answers(list(state.trace), started_wall)
            intake = OUTCOME["intake_by_platform"](engine, entries, arrivals, labels)
            cache = {k.decode(): int(v) for k, v in conn.hgetall(DECISION_STATS_KEY).items()}
            engine.dispose()
            conn.close()
        finally:
            sup.stop()
            sandbox.stop()
            if services:
                services.stop()
    result = _report(args, entries, samples, replay_s, latencies, counts)
    result["scenario"] = str(args.scenario)
    result["platforms"] = sorted(platforms)
    result["quiet_critical"] = _set_summary(quiet_latencies)
    result["model_decision"] = decisions
    # Decisions heard on the live feed per second, from the first to the last (acted-on rate:
    # triage_posts_per_second, from the pending count).
    result["decided_posts_per_second"] = round(len(heard) / max(0.001, max(heard.values()) - min(heard.values())), 1) \
        if len(heard) > 1 else None
    result["duplicates"] = duplicates
    result["sandbox_answers"] = sandbox_served
    result["intake_by_platform"] = intake
    # Where the machine's CPU went, during the replay and the drain after it.
    result["cpu_cores"] = {"replay": _cpu_window(cpu[0], cpu[1]), "drain": _cpu_window(cpu[1], cpu[2])}
    # What the workers spent per post over the replay and the drain: CPU seconds, which another
    # user of the machine slows down but does not add to (a rate on a loaded machine says little).
    if cpu[0] and cpu[2]:
        result["worker_cpu_ms_per_post"] = round(
            (cpu[2]["workers"] - cpu[0]["workers"]) * 1000 / max(1, result["stored"]), 2)
        result["sender_cpu_ms_per_post"] = round(
            (cpu[2]["senders"] - cpu[0]["senders"]) * 1000 / max(1, result["stored"]), 2)
    # Posts decided from a worker's memory of an identical input (flows/decisions.py); how much
    # of the scenario repeats itself word for word is said beside it.
    posts_decided, computed = cache.get("posts", 0), cache.get("computed", 0)
    result["decision_cache"] = {
        "posts": posts_decided, "model_runs": computed,
        "hit_rate": round(1 - computed / posts_decided, 3) if posts_decided else None,
        "scenario_distinct_texts": len({e.text for e in entries})}
    result["standalone_pipeline_posts_per_second"] = standalone
    result["in_system_to_standalone"] = round(result["triage_posts_per_second"] / standalone, 3) if standalone else None
    return result


def _report(args, entries, samples, replay_s, latencies, counts) -> dict:
    final = samples[-1]
    during = [s for s in samples if s["t"] <= replay_s + 0.5] or samples
    stored_by_end_of_replay = during[-1]["stored"]
    triaged = [(s["t"], s["stored"] - s["pending"]) for s in samples]
    busy = [t for t, s in zip(triaged, samples) if s["pending"] > 0] or triaged
    rate = (busy[-1][1] - busy[0][1]) / max(0.001, busy[-1][0] - busy[0][0]) if len(busy) > 1 else 0.0
    return {
        "backend": args.backend, "workers": args.workers, "senders": args.senders, "posts": len(entries),
        "replay_seconds": round(replay_s, 1), "poll_seconds": args.poll_seconds,
        "intake_posts_per_second": round(stored_by_end_of_replay / max(0.001, replay_s), 1),
        "triage_posts_per_second": round(rate, 1),
        "stored": final["stored"], "posts_lost": len(entries) - final["stored"],
        "pending_triage_at_end": final["pending"],
        "replies_waiting_at_end": final["replies_waiting"],
        "lone_critical": _set_summary(latencies),
        **counts,
        "peak_rss_mb_per_worker": [max(s["worker_rss_mb"][i] for s in samples) for i in range(args.workers)],
        "queue_depth_per_second": [{"t": s["t"], **s["depths"], "pending": s["pending"]} for s in samples],
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _print(result: dict) -> None:
    print(f"\n{result['backend']} backend, {result['workers']} worker(s): {result['posts']} posts replayed "
          f"in {result['replay_seconds']} s")
    print(f"  intake {result['intake_posts_per_second']} posts/s, model decisions "
          f"{result['decided_posts_per_second']} posts/s, acted on {result['triage_posts_per_second']} posts/s;"
          f" pending at end {result['pending_triage_at_end']}; lost {result['posts_lost']}")
    for label, key in (("lone critical posts (keyword pre-screen)", "lone_critical"),
                       ("lone critical posts the pre-screen misses", "quiet_critical")):
        one = result[key]
        print(f"  {label}: {one['queued']}/{one['count']} in the dispatch queue; arrival → queued "
              f"max {one['max_s']} s, p99 {one['p99_s']} s, median {one['median_s']} s "
              f"({one['within_target']} within {TARGET_QUEUE_SECONDS:.0f} s); triaged below high: "
              f"{len(one['triaged_below_high'])}; hidden in another incident: "
              f"{', '.join(one.get('hidden_in_other_incidents', [])) or 'none'}; waited in lanes: "
              f"{', '.join(f'{lane} {n}' for lane, n in one.get('lanes', {}).items())}")
    d = result["model_decision"]
    print(f"  model decision after arrival, every post: p50 {d['p50_s']} s, p90 {d['p90_s']} s, p99 {d['p99_s']} s, "
          f"max {d['max_s']} s; undecided at end {d['undecided']}")
    a = d["acted"]
    print(f"  acted on (triage record stored) after arrival: p50 {a['p50_s']} s, p90 {a['p90_s']} s, "
          f"p99 {a['p99_s']} s, max {a['max_s']} s")
    c = result["decision_cache"]
    print(f"  decisions from a worker's memory of an identical post: {c['hit_rate']} ({c['posts']} posts, "
          f"{c['model_runs']} model runs; the scenario has {c['scenario_distinct_texts']} distinct texts "
          f"in {result['posts']})")
    if result["standalone_pipeline_posts_per_second"]:
        print(f"  in-system triage / standalone pipeline in this run: {result['triage_posts_per_second']} / "
              f"{result['standalone_pipeline_posts_per_second']} = {result['in_system_to_standalone']}")
    print(f"  burst: {result['burst_reports_in_incidents']} reports in {result['burst_incidents']} incident(s) "
          f"(largest {result['largest_burst_incidents']}; single-report personal requests kept apart "
          f"{result['burst_single_report_personal_requests']}); lone incidents {result['lone_incidents']}, "
          f"shared with burst {result['lone_shared_with_burst']}")
    for name, one in (result.get("events") or {}).items():
        print(f"    event {name}: {one['reports_in_incidents']} reports in {one['incidents']} incident(s) (largest "
              f"{one['largest']}; single-report personal requests kept apart {one['single_report_personal_requests']})")
        if one.get("opened_because"):
            print("      opened apart because: " + "; ".join(f"{n} {why}" for why, n in one["opened_because"]))
    if result.get("mixed_incidents") is not None:
        mixed = result["mixed_incidents"]
        print(f"  incidents holding two emergencies (reports of two events, or a lone cry with others): {mixed['count']}")
        for example in mixed["examples"][:3]:
            print(f"    #{example['incident']}: {example['reports']}, lone cries {example['lone']}")
            for post in example.get("minority", [])[:2]:
                print(f"      {post['author']}: {post['text'][:90]!r} <- {post['why']}")
    for platform, one in (result.get("intake_by_platform") or {}).items():
        print(f"  intake {platform}: {one['stored']}/{one['posts']} stored, arrival → stored p50 {one['p50_s']} s, "
              f"p99 {one['p99_s']} s")
    for platform, answers in (result.get("sandbox_answers") or {}).items():
        print(f"  sandbox answers to {platform}: {answers['requests']} requests, p50 {answers['p50_s']} s, "
              f"p99 {answers['p99_s']} s, max {answers['max_s']} s")
    dup = result["duplicates"]
    print(f"  replies to reporters: {dup['messages_sent']} sent, {result['replies_waiting_at_end']} waiting to be sent at the end")
    print(f"  done twice: {dup['messages_sent_twice']} of {dup['messages_sent']} messages sent, "
          f"{dup['incidents_published_twice']} incidents published twice ({dup['stream_entries']} stream entries)")
    print(f"  peak RSS per worker {result['peak_rss_mb_per_worker']} MB")
    if result.get("worker_cpu_ms_per_post") is not None:
        print(f"  workers' CPU per post (replay and drain; every post decided, "
              f"{result['pending_triage_at_end']} not yet acted on): {result['worker_cpu_ms_per_post']} ms"
              + (f", and {result['sender_cpu_ms_per_post']} ms in the sender processes"
                 if result.get("senders") else " (replies sent from the workers' threads)"))
    for window, used in (result.get("cpu_cores") or {}).items():
        if used:
            print(f"  CPU in the {window} (cores of {used['cores']}): machine busy {used['busy']}; workers "
                  f"{used['workers']}, senders {used['senders']}, connectors {used['connectors']}, this benchmark (sandbox, samplers) "
                  f"{used['benchmark']}, PostgreSQL {used['postgres']}, Redis {used['redis']} (all such processes "
                  f"on the machine), other processes {used['other']}"
                  + ("  <- not a quiet machine" if used["other"] > 0.2 else ""))
    for s in result["queue_depth_per_second"][:: max(1, len(result["queue_depth_per_second"]) // 12)]:
        print(f"    t={s['t']:6.1f}s  critical={s['critical']:5d} urgent={s.get('urgent', 0):5d} default={s['default']:5d} "
              f"bulk={s['bulk']:5d} pending={s['pending']:6d}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="flare bench burst", description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=16_000)
    parser.add_argument("--unrelated", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--backend", choices=("embedded", "services"), default="embedded")
    parser.add_argument("--poll-seconds", type=float, default=0.25)
    parser.add_argument("--drain-seconds", type=float, default=120.0,
                        help="after the replay, wait this long at most for triage to catch up")
    parser.add_argument("--model-cache", default=os.environ.get(
                            "FLARE_TRIAGE__MODEL_CACHE_DIR",
                            str(Path(tempfile.gettempdir()) / "flare-triage-test-models")),
                        help="directory of the exported ONNX encoder (re-exported if empty)")
    parser.add_argument("--senders", type=int, default=1,
                        help="`flare sender` processes beside the workers (0: the workers send replies themselves)")
    parser.add_argument("--seed", type=int, default=999)
    parser.add_argument("--standalone-posts", type=int, default=3000,
                        help="posts for the standalone pipeline rate measured first (0: skip)")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO,
                        help="the scenario module to replay (bench/scenarios/*.py)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    result = run(args)
    _print(result)
    named = "" if args.scenario.resolve() == DEFAULT_SCENARIO else f"{args.scenario.stem}-"
    output = args.output or HERE / "results" / f"burst-{named}{args.backend}-{args.workers}w.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))
    print(f"  written to {output}")
    verdicts = targets(result)
    print("  targets:")
    for name, measured, verdict in verdicts:
        print(f"    {verdict:9s} {name}: {measured}")
    missed = sum(1 for _, _, verdict in verdicts if verdict == "MISSED")
    print(f"  targets {'MET' if not missed else 'MISSED'} ({len(verdicts) - missed} of {len(verdicts)} met or not "
          f"shown at this arrival rate)")
    return 0 if not missed else 1
