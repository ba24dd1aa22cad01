"""Scenario files: JSON lines of posts the public makes, each at an offset in seconds.

`{"at": 12.5, "platform": "x", "text": "...", "author": "sam", "is_dm": false, "lat": 51.5, "lon": -0.1}`
Optional keys: "malformed" (served in a broken wire shape), "dms_closed", "place_only",
"author_location", "subreddit".
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from connectors.sandbox.state import PLATFORMS, SandboxState

DEMO_SCENARIO = Path(__file__).parent / "scenarios" / "demo.jsonl"


@dataclass(frozen=True, slots=True)
class ScenarioEntry:
    at: float
    platform: str
    text: str
    author: str
    is_dm: bool = False
    lat: float | None = None
    lon: float | None = None
    malformed: bool = False
    dms_closed: bool = False
    place_only: bool = False
    author_location: str = ""
    subreddit: str = ""


def parse_scenario(text: str) -> list[ScenarioEntry]:
    """Parse JSON lines; a bad line raises ValueError naming its line number."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            data = json.loads(line)
            if data["platform"] not in PLATFORMS:
                raise ValueError(f"unknown platform {data['platform']!r}")
            entries.append(ScenarioEntry(
                at=float(data.get("at", 0.0)), platform=data["platform"], text=str(data["text"]),
                author=str(data.get("author") or "anon"), is_dm=bool(data.get("is_dm", False)),
                lat=_float_or_none(data.get("lat")), lon=_float_or_none(data.get("lon")),
                malformed=bool(data.get("malformed", False)), dms_closed=bool(data.get("dms_closed", False)),
                place_only=bool(data.get("place_only", False)),
                author_location=str(data.get("author_location", "")), subreddit=str(data.get("subreddit", "")),
            ))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"scenario line {number}: {exc}") from exc
    return sorted(entries, key=lambda e: e.at)


def load_scenario(path: Path) -> list[ScenarioEntry]:
    return parse_scenario(path.read_text(encoding="utf-8"))


def _float_or_none(value: object) -> float | None:
    return None if value is None or value == "" else float(value)  # type: ignore[arg-type]


def post_entry(state: SandboxState, entry: ScenarioEntry) -> None:
    state.add_post(
        entry.platform, entry.text, entry.author, entry.is_dm, entry.lat, entry.lon,
        place_only=entry.place_only, malformed=entry.malformed, dms_closed=entry.dms_closed,
        author_location=entry.author_location, subreddit=entry.subreddit,
    )


def play_scenario(
    state: SandboxState,
    entries: list[ScenarioEntry],
    speed: float = 1.0,
    stop: threading.Event | None = None,
) -> threading.Thread:
    """Post each entry at its offset (divided by `speed`) from a background thread."""
    stop = stop or threading.Event()

    def run() -> None:
        started = time.monotonic()
        for entry in entries:
            delay = entry.at / max(speed, 1e-6) - (time.monotonic() - started)
            if delay > 0 and stop.wait(delay):
                return
            post_entry(state, entry)

    thread = threading.Thread(target=run, name="sandbox-scenario", daemon=True)
    thread.start()
    return thread
