"""Small helpers shared by the connector tests."""
from __future__ import annotations

import time

from sqlmodel import Session, select

from connectors.intake import Persisted
from connectors.runner import DbCheckpointStore, PollResult, poll_once
from models.tables import Post


class Recorder:
    """An on_persisted callback that remembers what it was given."""

    def __init__(self) -> None:
        self.calls: list[list[Persisted]] = []

    def __call__(self, persisted: list[Persisted]) -> None:
        self.calls.append(list(persisted))

    @property
    def created(self) -> int:
        return sum(p.created for call in self.calls for p in call)


def poll(source, engine, recorder: Recorder | None = None) -> PollResult:
    return poll_once(source, engine, recorder or Recorder(), DbCheckpointStore(engine))


def stored_posts(engine, platform: str | None = None) -> list[Post]:
    with Session(engine) as session:
        query = select(Post).order_by(Post.id)
        if platform:
            query = query.where(Post.platform == platform)
        return list(session.exec(query).all())


def db_external_id(item) -> str:
    """The external id a connector stores for a sandbox item."""
    if item.is_dm and item.platform in ("x", "bluesky"):
        return f"dm:{item.external_id}"
    return item.external_id


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")

class RecordingStop:
    """A stop event that records every wait the runner asks for, and stops it after `waits` of them."""

    def __init__(self, waits: int) -> None:
        self.asked: list[float] = []
        self.waits = waits

    def is_set(self) -> bool:
        return len(self.asked) >= self.waits

    def wait(self, seconds: float | None = None) -> bool:
        self.asked.append(seconds)
        return self.is_set()


class PagedSource:
    """A source read a page at a time: two pages waiting, then nothing."""

    name, platform, poll_seconds = "fake:dms", "fake", 2.0

    def __init__(self) -> None:
        self.pages = 2
        self.more_to_read = False

    def fetch(self, cursor):
        self.more_to_read = self.pages > 0
        self.pages = max(0, self.pages - 1)
        return [], cursor

    def after_commit(self, posts) -> None:
        pass
