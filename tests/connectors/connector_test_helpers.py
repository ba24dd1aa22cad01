"""Small helpers shared by the connector tests."""
from __future__ import annotations

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
