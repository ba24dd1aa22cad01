"""The human-acknowledged dispatch queue: one Redis Stream per desk, one consumer group.

An entry handed to a dispatcher's console (XREADGROUP) stays pending until that dispatcher
acknowledges it (XACK). A console that goes away has its entries reclaimed by others
(XAUTOCLAIM). A restarted console first re-reads its own pending entries (id "0").
Trimming never passes the oldest unacknowledged entry.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis

from models.enums import Urgency

GROUP = "dispatchers"
UNDELIVERED_COUNT_CAP = 100_000  # a count past this is "at least" (a queue that long is already a red screen)


def _stream_age_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _urgency_rank(urgency: str) -> int:
    try:
        return Urgency(urgency).rank
    except ValueError:
        return 0  # an unknown urgency is shown first: better a false alarm than a missed call


@dataclass(frozen=True, slots=True)
class QueueEntry:
    entry_id: str
    incident_id: int
    urgency: str
    delivery_count: int = 1


def _decode(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class DispatchQueue:
    def __init__(self, conn: redis.Redis, desk: str = "main") -> None:
        self.conn = conn
        self.desk = desk
        self.key = f"flare:dispatch:{desk}"
        self._group_ready = False

    def ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.conn.xgroup_create(self.key, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _grouped(self, call):
        """Run a group command; if the stream or its group has gone (Redis restarted without its
        data, or the key was deleted since this process created it), make it again and retry once,
        rather than failing every read until the process restarts."""
        self.ensure_group()
        try:
            return call()
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False
            self.ensure_group()
            return call()

    def publish(self, incident_id: int, urgency: str) -> str:
        self.ensure_group()
        entry_id = self.conn.xadd(self.key, {"incident_id": str(incident_id), "urgency": urgency})
        return _decode(entry_id)

    def publish_many(self, incidents: list[tuple[int, str]]) -> list[str]:
        """`publish` for many (incident id, urgency), in order, in one round trip."""
        self.ensure_group()
        with self.conn.pipeline(transaction=False) as pipe:
            for incident_id, urgency in incidents:
                pipe.xadd(self.key, {"incident_id": str(incident_id), "urgency": urgency})
            return [_decode(entry_id) for entry_id in pipe.execute()]

    def _entries(self, rows) -> list[QueueEntry]:
        out = []
        for entry_id, fields in rows:
            if not fields:  # deleted entry still pending: nothing to show
                continue
            f = {_decode(k): _decode(v) for k, v in fields.items()}
            out.append(QueueEntry(_decode(entry_id), int(f["incident_id"]), f.get("urgency", "")))
        return out

    def read(self, consumer: str, count: int = 100) -> list[QueueEntry]:
        """This console's pending entries first (after a restart), then new ones."""
        return self._grouped(lambda: self._read(consumer, count))

    def _read(self, consumer: str, count: int) -> list[QueueEntry]:
        own = self.conn.xreadgroup(GROUP, consumer, {self.key: "0"}, count=count)
        entries = self._entries(own[0][1]) if own else []
        new = self.conn.xreadgroup(GROUP, consumer, {self.key: ">"}, count=count)
        if new:
            entries += self._entries(new[0][1])
        return entries

    def board(self, consumer: str, reclaim_idle_ms: int = 0, count: int = 100) -> list[QueueEntry]:
        """What a console shows: its own entries (and, if asked, those of consoles idle for
        `reclaim_idle_ms`), most urgent first, oldest first within an urgency."""
        entries = self.read(consumer, count=count)
        if reclaim_idle_ms > 0:
            entries += self.reclaim(consumer, reclaim_idle_ms, count=count)
        unique = {e.entry_id: e for e in entries}
        return sorted(unique.values(), key=lambda e: (_urgency_rank(e.urgency), _stream_age_key(e.entry_id)))

    def ack(self, entry_id: str) -> bool:
        """The incident was acknowledged: its entry leaves the stream, whether or not a console
        was handed it (one acknowledged from its own page may never have been), so nothing
        counts it as waiting. True when a console held it."""
        return bool(self._grouped(lambda: self._ack_and_delete(entry_id)))

    def _ack_and_delete(self, entry_id: str) -> int:
        with self.conn.pipeline(transaction=True) as pipe:
            pipe.xack(self.key, GROUP, entry_id)
            pipe.xdel(self.key, entry_id)
            acked, _ = pipe.execute()
        return acked

    def reclaim(self, consumer: str, min_idle_ms: int, count: int = 100) -> list[QueueEntry]:
        """Take over entries another console has held without acknowledging for min_idle_ms."""
        result = self._grouped(lambda: self.conn.xautoclaim(self.key, GROUP, consumer, min_idle_time=min_idle_ms,
                                                            start_id="0-0", count=count))
        # Redis 6.2 answers [next, entries]; 7.x adds a list of deleted ids.
        return self._entries(result[1])

    def pending(self) -> list[dict]:
        rows = self._grouped(lambda: self.conn.xpending_range(self.key, GROUP, min="-", max="+", count=10_000))
        return [{"entry_id": _decode(r["message_id"]), "consumer": _decode(r["consumer"]),
                 "idle_ms": int(r["time_since_delivered"]), "deliveries": int(r["times_delivered"])}
                for r in rows]

    def undelivered_count(self) -> int:
        """Entries no console has been handed yet.

        Redis 7 reports the group's lag; Redis 6.2 (the embedded server) does not, and 7 leaves
        it empty after deletions, so then the entries after the last delivered id are counted.
        """
        self.ensure_group()
        for g in self.conn.xinfo_groups(self.key):
            if _decode(g["name"]) != GROUP:
                continue
            if g.get("lag") is not None:
                return int(g["lag"])
            last = _decode(g["last-delivered-id"])
            return len(self.conn.xrange(self.key, min=f"({last}", max="+", count=UNDELIVERED_COUNT_CAP))
        return 0

    def trim_acknowledged(self) -> int:
        """Drop entries older than the oldest pending one (and older than anything undelivered).

        The last-delivered id is read *before* the pending summary: an entry delivered between
        the two reads is newer than that id, so it stays; reading them the other way round
        could trim an entry handed to a console a moment earlier and never acknowledged.
        """
        self.ensure_group()
        info = [g for g in self.conn.xinfo_groups(self.key) if _decode(g["name"]) == GROUP]
        last = _decode(info[0]["last-delivered-id"]) if info else "0-0"
        ms, seq = _stream_age_key(last)
        floor = (ms, seq + 1)  # everything up to last-delivered was delivered; keep the rest
        summary = self.conn.xpending(self.key, GROUP)
        if summary and summary.get("pending"):
            floor = min(floor, _stream_age_key(_decode(summary["min"])))
        return int(self.conn.xtrim(self.key, minid=f"{floor[0]}-{floor[1]}", approximate=False))
