"""Ingest benchmark: sandbox → connectors → database, per platform.

Two measurements:
- backlog: N posts per platform are waiting; each platform's sources are polled back to back
  until every post is stored → posts/s.
- live: posts arrive at a steady rate while the connector loop runs on its normal schedule →
  lag from the sandbox's post time to the stored row (p50/p99).

Usage: flare bench ingest [--posts N] [--live-seconds S] [--database-url URL] [--output PATH]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlmodel import Session, SQLModel, select

import models.tables  # noqa: F401 - registers the tables for create_all
from config import Settings
from config.settings import BlueskySettings, RedditSettings, XSettings
from connectors.registry import build_sources
from connectors.runner import DbCheckpointStore, poll_once, run_forever
from connectors.sandbox import SandboxServer, SandboxState
from models.db import make_engine
from models.tables import Post

PLATFORMS = ("x", "bluesky", "reddit")
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "ingest.json"


def _settings(url: str, data_dir: Path, database_url: str, poll_seconds: float) -> Settings:
    return Settings(
        _env_file=None, data_dir=data_dir, database_url=database_url,
        x=XSettings(bearer_token="bench", consumer_key="ck", consumer_secret="cs", access_token="at",
                    access_token_secret="ats", user_id="1000", base_url=url, poll_seconds=poll_seconds),
        bluesky=BlueskySettings(handle="flare999.bsky.social", app_password="bench", base_url=url,
                                poll_seconds=poll_seconds),
        reddit=RedditSettings(client_id="bench", client_secret="bench", username="flare999", password="bench",
                              base_url=url, poll_seconds=poll_seconds),
    )


def _count(engine, platform: str) -> int:
    with Session(engine) as session:
        return len(session.exec(select(Post.id).where(Post.platform == platform)).all())


def _post_many(state: SandboxState, platform: str, count: int, tag: str) -> None:
    for n in range(count):
        state.add_post(platform, f"{tag} report {n}: smoke seen near the station", f"{tag}{n % 50}",
                       is_dm=n % 5 == 0)


def _backlog(state, settings, engine, posts: int) -> dict[str, dict[str, float]]:
    results = {}
    sources = build_sources(settings)
    store = DbCheckpointStore(engine)
    for platform in PLATFORMS:
        _post_many(state, platform, posts, f"backlog-{platform}")
        mine = [s for s in sources if s.platform == platform]
        before = _count(engine, platform)
        started = time.perf_counter()
        while _count(engine, platform) - before < posts:
            for source in mine:
                poll_once(source, engine, lambda _p: None, store)
            if time.perf_counter() - started > 300:
                raise RuntimeError(f"{platform}: backlog not drained in 300 s")
        elapsed = time.perf_counter() - started
        results[platform] = {"posts": posts, "seconds": round(elapsed, 3), "posts_per_second": round(posts / elapsed, 1)}
    return results


def _live(state, settings, engine, seconds: float, rate_per_platform: float) -> dict[str, dict[str, float]]:
    sources = build_sources(settings)
    stop = threading.Event()
    loop = threading.Thread(target=run_forever, args=(sources, engine, lambda _p: None, DbCheckpointStore(engine),
                                                      None, stop), daemon=True)
    loop.start()
    first_seq = state.next_seq()
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < seconds:
        for platform in PLATFORMS:
            state.add_post(platform, f"live report {sent}", f"live{sent % 30}", is_dm=sent % 5 == 0)
        sent += 1
        time.sleep(max(0.0, started + sent / rate_per_platform - time.monotonic()))
    items = [i for i in state.items if i.seq > first_seq]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum(_count(engine, p) for p in PLATFORMS) < len(state.items):
        time.sleep(0.1)
    stop.set()
    loop.join(timeout=30)
    return _lags(engine, items)


def _lags(engine, items) -> dict[str, dict[str, float]]:
    created = {(i.platform, i.external_id): i.created_at for i in items}
    lags: dict[str, list[float]] = {p: [] for p in PLATFORMS}
    with Session(engine) as session:
        for post in session.exec(select(Post)).all():
            key = (post.platform, post.external_id.removeprefix("dm:"))
            if key in created:
                lags[post.platform].append(post.received_at.timestamp() - created[key])
    out = {}
    for platform, values in lags.items():
        values.sort()
        expected = sum(1 for (p, _) in created if p == platform)
        out[platform] = {
            "posts": expected, "stored": len(values),
            "lag_p50_ms": round(statistics.median(values) * 1000, 1) if values else None,
            "lag_p99_ms": round(values[min(len(values) - 1, int(len(values) * 0.99))] * 1000, 1) if values else None,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flare bench ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=500, help="backlog posts per platform")
    parser.add_argument("--live-seconds", type=float, default=10.0)
    parser.add_argument("--live-rate", type=float, default=10.0, help="posts per second per platform (live)")
    parser.add_argument("--poll-seconds", type=float, default=0.5, help="connector poll interval (live)")
    parser.add_argument("--database-url", default="", help="default: a throwaway SQLite file")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="flare-bench-") as tmp:
        database_url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(database_url)
        SQLModel.metadata.create_all(engine)
        state = SandboxState()
        server = SandboxServer(state)
        url = server.start()
        try:
            settings = _settings(url, Path(tmp) / "data", database_url, args.poll_seconds)
            backlog = _backlog(state, settings, engine, args.posts)
            live = _live(state, settings, engine, args.live_seconds, args.live_rate)
        finally:
            server.stop()
            engine.dispose()
    result = {"database": database_url.split(":", 1)[0], "poll_seconds": args.poll_seconds,
              "backlog": backlog, "live": live}
    _print_table(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"\nwritten to {args.output}")
    return 0


def _print_table(result: dict) -> None:
    print(f"{'platform':<10}{'backlog posts':>14}{'posts/s':>10}{'live posts':>12}{'lag p50 ms':>12}{'lag p99 ms':>12}")
    for platform in PLATFORMS:
        b, live = result["backlog"][platform], result["live"][platform]
        print(f"{platform:<10}{b['posts']:>14}{b['posts_per_second']:>10}{live['stored']:>12}"
              f"{str(live['lag_p50_ms']):>12}{str(live['lag_p99_ms']):>12}")
    print(f"(database: {result['database']}, live poll interval {result['poll_seconds']} s)")


if __name__ == "__main__":
    sys.exit(main())
