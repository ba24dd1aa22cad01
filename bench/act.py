"""Acting benchmark: what acting on decided posts costs, apart from the model and the platforms.

A scenario's posts (--scenario, default bench/scenarios/burst.py; with their platforms, DMs and
reply threads) are stored and decided once by the real
triage pipeline; then, on a fresh database for each measurement, they are acted on as an act job
does (flows/triage_batch.py: ACT_TAKE_POSTS taken, most urgent first, in groups of
ACT_GROUP_POSTS, each group one grouping transaction and its Redis half), in one process with
nothing else running in it. Group sizes given with --groups are measured alternately, --repeat
times each, so their ratio comes from one run on one machine.

Reported per group size (medians over the repeats): wall and CPU milliseconds per post acted on,
SQL statements and transactions per post, and the incidents the posts made (grouping must not
change with the group size by more than a few incidents); and CPU milliseconds per post acted on
by how many incidents were open when its group began (OPEN_BINS: the two-events scenario has
hundreds open at once, and what a post costs must not grow with them).

Usage: flare bench act [--posts 4000] [--groups 64] [--repeat 3] [--scenario PATH] [--database-server URL]
                       [--output PATH]
"""
from __future__ import annotations

import argparse
import copy
import json
import runpy
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import redis
from sqlalchemy import create_engine, event, func, text
from sqlmodel import Session, select

from config import Settings
from connectors.intake import persist_posts
from flows import triage_batch
from flows.context import AppContext, set_process_context
from models import GeoPoint, RawPost
from models.db import upgrade
from models.enums import IncidentStatus, TriageState
from models.tables import Incident, Post

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "results" / "act.json"
BURST = runpy.run_path(str(HERE / "burst.py"), run_name="bench_burst_services")
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
OPEN_BINS = (0, 100, 300, 600)  # open incidents when a group began: CPU per post is reported per bin
_OPEN = [s.value for s in IncidentStatus if s.is_open]


def _scenario(path: Path, posts: int) -> list:
    return BURST["load_scenario"](path)["burst_scenario"](posts, 20, 60.0 * posts / 16_000, 999)


def _fresh_database(server: str) -> str:
    name = f"flare_act_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = f"{server}/{name}"
    upgrade(url)
    return url


def _drop_database(server: str, url: str) -> None:
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def _context(data_dir: Path, database_url: str, redis_url: str, model_cache: str) -> AppContext:
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=database_url, redis_url=redis_url,
                        triage={"model_cache_dir": model_cache} if model_cache else {})
    ctx = AppContext.build(settings)
    # No platform: acting queues messages, nothing sends them, and a DM is possible only where
    # the post came as one (AppContext.dm_possible without a replier).
    ctx.repliers = {}
    return ctx


def _store(ctx: AppContext, entries: list) -> list[Post]:
    """The entries as stored posts, in order: a reply names the post it answers and its thread's
    first post, as the connectors store them."""
    by_author = {e.author: n for n, e in enumerate(entries)}
    roots: dict[int, int] = {}
    raws = []
    for n, e in enumerate(entries):
        parent = by_author.get(getattr(e, "reply_to", ""))
        roots[n] = n if parent is None else roots[parent]
        raws.append(RawPost(
            platform=getattr(e, "platform", "x"), external_id=f"act{n}", text=e.text, raw_payload="{}",
            author_id=e.author, author_handle=e.author, is_dm=getattr(e, "is_dm", False),
            reply_to_external_id=f"act{parent}" if parent is not None else "",
            conversation_id=f"act{roots[n]}" if parent is not None else "",
            geo=GeoPoint(e.lat, e.lon) if e.lat is not None else None))
    persist_posts(ctx.engine, raws)
    with Session(ctx.engine, expire_on_commit=False) as s:
        return list(s.exec(select(Post).order_by(Post.id)).all())


def _open_bin(open_incidents: int) -> str:
    low = max(b for b in OPEN_BINS if b <= open_incidents)
    higher = [b for b in OPEN_BINS if b > low]
    return f"{low}-{higher[0] - 1}" if higher else f"{low}+"


def _act(ctx: AppContext, posts: list[Post], outputs: dict[str, object], group: int) -> dict:
    """Act on every post as act jobs do, counting statements and commits; wall and CPU time."""
    statements, commits = Counter(), Counter()
    by_open: dict[str, list[float]] = {}  # open incidents' bin → [posts, CPU seconds]
    counting = [False]

    def count(conn, cursor, statement, params, context, executemany):
        if not counting[0]:
            statements["n"] += 1

    def committed(conn):
        commits["n"] += 1

    event.listen(ctx.engine, "before_cursor_execute", count)
    event.listen(ctx.engine, "commit", committed)
    durations = dict.fromkeys((p.id for p in posts), 5.0)
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(posts), triage_batch.ACT_TAKE_POSTS):
        # each post gets its own copy of its output, as an act job unpickles its own
        taken = triage_batch._ranked((p, copy.deepcopy(outputs[p.external_id]))
                                     for p in posts[start:start + triage_batch.ACT_TAKE_POSTS])
        for i in range(0, len(taken), group):
            counting[0] = True
            with Session(ctx.engine) as s:
                open_now = s.exec(select(func.count(Incident.id)).where(Incident.status.in_(_OPEN))).one()
            counting[0] = False
            began = time.process_time()
            triage_batch._act_on(ctx, taken[i:i + group], durations)
            tally = by_open.setdefault(_open_bin(int(open_now)), [0, 0.0])
            tally[0] += len(taken[i:i + group])
            tally[1] += time.process_time() - began
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    event.remove(ctx.engine, "before_cursor_execute", count)
    event.remove(ctx.engine, "commit", committed)
    with Session(ctx.engine) as s:
        pending = s.exec(select(func.count(Post.id)).where(Post.triage_state == TriageState.pending.value)).one()
        incidents = s.exec(select(func.count(Incident.id))).one()
    n = len(posts)
    return {"wall_ms_per_post": round(1000 * wall / n, 3), "cpu_ms_per_post": round(1000 * cpu / n, 3),
            "statements_per_post": round(statements["n"] / n, 3), "commits_per_post": round(commits["n"] / n, 4),
            "incidents": int(incidents), "left_pending": int(pending),
            "cpu_ms_per_post_by_open_incidents": {b: round(1000 * c / n, 3) for b, (n, c) in by_open.items()}}


def run(args: argparse.Namespace) -> dict:
    entries = _scenario(args.scenario, args.posts)
    groups = [int(g) for g in args.groups.split(",")]
    with tempfile.TemporaryDirectory(prefix="flare-act-") as tmp:
        data_dir = Path(tmp)
        # A throwaway Redis server and the database the posts are decided on (once: every
        # measurement acts on the same outputs), as `bench burst` makes them.
        services = BURST["Services"](data_dir)
        decide_url, redis_url = services.start()
        try:
            upgrade(decide_url)
            ctx = _context(data_dir, decide_url, redis_url, args.model_cache)
            set_process_context(ctx)
            posts = _store(ctx, entries)
            outputs: dict[str, object] = {}
            started = time.perf_counter()
            for i in range(0, len(posts), 64):
                page = posts[i:i + 64]
                outs, _ = ctx.decisions.decide([triage_batch._input(p) for p in page])
                outputs.update((p.external_id, o) for p, o in zip(page, outs, strict=True))
            print(f"{len(posts)} posts decided in {time.perf_counter() - started:.1f} s", flush=True)
            set_process_context(None)
            ctx.close()
            runs: dict[int, list[dict]] = {g: [] for g in groups}
            for _ in range(args.repeat):
                for group in groups:
                    redis.Redis.from_url(redis_url).flushdb()
                    url = _fresh_database(args.database_server)
                    ctx = _context(data_dir, url, redis_url, args.model_cache)
                    set_process_context(ctx)
                    try:
                        fresh = _store(ctx, entries)
                        measured = _act(ctx, fresh, outputs, group)
                    finally:
                        set_process_context(None)
                        ctx.close()
                        _drop_database(args.database_server, url)
                    runs[group].append(measured)
                    print(f"  group {group}: {measured}", flush=True)
        finally:
            services.stop()
    summary = {str(g): {k: statistics.median(r[k] for r in rs) for k in rs[0] if not isinstance(rs[0][k], dict)}
               for g, rs in runs.items()}
    for g, rs in runs.items():
        bins = sorted({b for r in rs for b in r["cpu_ms_per_post_by_open_incidents"]}, key=lambda b: int(b.split("-")[0].rstrip("+")))
        summary[str(g)]["cpu_ms_per_post_by_open_incidents"] = {
            b: statistics.median(r["cpu_ms_per_post_by_open_incidents"][b] for r in rs if b in r["cpu_ms_per_post_by_open_incidents"])
            for b in bins}
    return {"posts": len(entries), "scenario": str(args.scenario), "repeat": args.repeat, "groups": summary,
            "runs": {str(g): rs for g, rs in runs.items()},
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flare bench act", description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=4000, help="burst posts to act on (and 20 lone cries)")
    parser.add_argument("--groups", default=str(triage_batch.ACT_GROUP_POSTS),
                        help="posts per grouping transaction; several, comma-separated, are measured alternately")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scenario", type=Path, default=HERE / "scenarios" / "burst.py",
                        help="scenario module (bench/scenarios/two_events.py: hundreds of incidents open at once)")
    parser.add_argument("--database-server", default=PG_SERVER,
                        help="PostgreSQL server URL (no database): a throwaway database is made per measurement")
    parser.add_argument("--model-cache", default="", help="triage model cache dir (default: the settings')")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    result = run(args)
    print(f"\nacting on {result['posts']} decided posts (medians of {result['repeat']}):")
    for group, s in result["groups"].items():
        print(f"  groups of {group}: {s['wall_ms_per_post']} ms/post wall, {s['cpu_ms_per_post']} ms/post CPU, "
              f"{s['statements_per_post']} statements and {s['commits_per_post']} commits a post; "
              f"{s['incidents']} incidents; left pending {s['left_pending']}")
        print("    CPU ms/post by incidents open when the group began: " + ", ".join(
            f"{b}: {ms}" for b, ms in s["cpu_ms_per_post_by_open_incidents"].items()))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(f"  written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
