"""Two publishers of one new incident while Redis is down (a triage batch and the sweep, or two
workers' database threads) queue it once, on SQLite too, where FOR UPDATE does nothing."""
from __future__ import annotations

import threading
import time

import redis
from sqlmodel import Session, SQLModel, select

from escalation import service
from flows import publish
from models.db import make_engine
from models.tables import Incident, IncidentEvent


class _RedisDown:
    def set(self, *args, **kwargs):
        raise redis.ConnectionError("down")

    def delete(self, *args, **kwargs):
        raise redis.ConnectionError("down")


class _Ctx:
    def __init__(self, engine) -> None:
        self.engine, self.redis, self.dispatch = engine, _RedisDown(), None


def test_two_publishers_queue_a_new_incident_once(tmp_path, monkeypatch):
    engine = make_engine(f"sqlite:///{tmp_path / 'race.db'}", chain_key=b"k" * 32)
    SQLModel.metadata.create_all(engine)
    with Session(engine) as s:
        incident = Incident(urgency="critical")
        s.add(incident)
        s.commit()
        incident_id = incident.id
    chains: list[int] = []
    monkeypatch.setattr(publish.escalate, "start_chain", lambda ctx, i: chains.append(i))
    mark_queued = service.mark_queued

    def slow_mark_queued(session, inc, entry_id):  # both publishers are past their read by now
        time.sleep(0.3)
        mark_queued(session, inc, entry_id)

    monkeypatch.setattr(service, "mark_queued", slow_mark_queued)
    ctx, errors = _Ctx(engine), []

    def publish_it():
        try:
            publish.publish_incident(ctx, incident_id)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=publish_it) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    with Session(engine) as s:
        kinds = list(s.exec(select(IncidentEvent.kind).where(IncidentEvent.incident_id == incident_id)))
        assert s.get(Incident, incident_id).status == "queued"
    assert errors == []
    assert kinds.count("queued") == 1 and chains == [incident_id]
    engine.dispose()
