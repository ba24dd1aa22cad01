"""The dispatch stream against a real Redis: pending until XACK, reclaim, restart, safe trimming."""
from __future__ import annotations

import time

import pytest

from escalation.queue import GROUP, DispatchQueue


@pytest.fixture
def queue(redis_conn) -> DispatchQueue:
    return DispatchQueue(redis_conn, desk="test")


def test_entry_stays_pending_until_acknowledged(queue):
    entry = queue.publish(1, "critical")
    [seen] = queue.read("alice")
    assert (seen.entry_id, seen.incident_id) == (entry, 1)
    assert [p["entry_id"] for p in queue.pending()] == [entry]
    # Reading again (a page refresh) shows it again: it is not gone until acknowledged.
    assert [e.entry_id for e in queue.read("alice")] == [entry]
    assert queue.ack(entry) is True
    assert queue.pending() == []
    assert queue.read("alice") == []
    assert queue.ack(entry) is False  # a second acknowledgement is harmless


def test_restarted_console_rereads_its_own_pending_entries(queue, redis_conn):
    first, second = queue.publish(1, "high"), queue.publish(2, "critical")
    assert {e.entry_id for e in queue.read("console-1")} == {first, second}
    restarted = DispatchQueue(redis_conn, desk="test")  # a fresh process, same console name
    assert {e.entry_id for e in restarted.read("console-1")} == {first, second}
    assert restarted.read("console-2") == []  # another console does not steal them by reading


def test_console_that_goes_away_has_entries_reclaimed(queue):
    entry = queue.publish(7, "critical")
    queue.read("gone")
    assert queue.reclaim("bob", min_idle_ms=60_000) == []  # not idle long enough yet
    time.sleep(0.06)
    [taken] = queue.reclaim("bob", min_idle_ms=50)
    assert (taken.entry_id, taken.incident_id) == (entry, 7)
    [p] = queue.pending()
    assert p["consumer"] == "bob" and p["deliveries"] == 2
    assert [e.entry_id for e in queue.read("bob")] == [entry]


def test_board_orders_by_priority_then_age(queue):
    ids = {}
    for incident_id, urgency in [(1, "high"), (2, "critical"), (3, "high"), (4, "critical"), (5, "medium")]:
        ids[incident_id] = queue.publish(incident_id, urgency)
    assert [e.incident_id for e in queue.board("alice")] == [2, 4, 1, 3, 5]


def test_board_includes_reclaimed_entries_without_duplicates(queue):
    queue.publish(1, "high")
    queue.read("gone")
    queue.publish(2, "critical")
    time.sleep(0.06)
    board = queue.board("alice", reclaim_idle_ms=50)
    assert [e.incident_id for e in board] == [2, 1]


def _xack_only(redis_conn, queue, entry_id):
    """An acknowledgement that left its entry in the stream (one made before acknowledging
    deleted the entry): the sweep's trim is what removes those."""
    redis_conn.xack(queue.key, GROUP, entry_id)


def test_acknowledging_removes_the_entry_from_the_stream(queue, redis_conn):
    first, second = queue.publish(1, "critical"), queue.publish(2, "high")
    queue.read("alice")
    assert queue.ack(first) is True
    assert [eid.decode() for eid, _ in redis_conn.xrange(queue.key)] == [second]
    assert queue.trim_acknowledged() == 0


def test_trim_never_passes_an_unacknowledged_entry(queue, redis_conn):
    entries = [queue.publish(i, "high") for i in range(1, 7)]
    queue.read("alice", count=4)  # 1-4 delivered, 5-6 undelivered
    for e in entries[:4]:
        if e != entries[1]:
            _xack_only(redis_conn, queue, e)
    trimmed = queue.trim_acknowledged()
    assert trimmed == 1  # only the entry before the oldest pending one (entries[1])
    remaining = [eid.decode() for eid, _ in redis_conn.xrange(queue.key)]
    assert remaining == entries[1:]
    assert {p["entry_id"] for p in queue.pending()} == {entries[1]}


def test_trim_keeps_undelivered_entries_when_nothing_is_pending(queue, redis_conn):
    entries = [queue.publish(i, "high") for i in range(1, 5)]
    delivered = queue.read("alice", count=2)
    for e in delivered:
        _xack_only(redis_conn, queue, e.entry_id)
    assert queue.trim_acknowledged() == 2
    assert [eid.decode() for eid, _ in redis_conn.xrange(queue.key)] == entries[2:]
    # The undelivered ones are still handed out afterwards.
    assert [e.incident_id for e in queue.read("bob")] == [3, 4]


def test_trim_of_fully_acknowledged_stream_empties_it_and_new_entries_survive(queue, redis_conn):
    for i in range(3):
        queue.publish(i, "high")
    for e in queue.read("alice"):
        _xack_only(redis_conn, queue, e.entry_id)
    assert queue.trim_acknowledged() == 3
    assert redis_conn.xlen(queue.key) == 0
    later = queue.publish(9, "critical")
    assert queue.trim_acknowledged() == 0
    assert [e.entry_id for e in queue.read("bob")] == [later]


def test_trim_on_an_empty_new_stream_is_a_no_op(queue):
    assert queue.trim_acknowledged() == 0


def test_trim_keeps_entry_delivered_between_reads(queue, redis_conn, monkeypatch):
    """The race trim_acknowledged guards against: a console reads between trim's two queries."""
    entries = [queue.publish(i, "high") for i in range(1, 4)]
    for e in queue.read("alice", count=1):
        queue.ack(e.entry_id)
    real_xpending = redis_conn.xpending

    def xpending_after_a_read(*args, **kwargs):
        summary = real_xpending(*args, **kwargs)
        queue.read("bob", count=1)  # entries[1] is handed out right now
        return summary

    monkeypatch.setattr(redis_conn, "xpending", xpending_after_a_read)
    queue.trim_acknowledged()
    monkeypatch.undo()
    remaining = [eid.decode() for eid, _ in redis_conn.xrange(queue.key)]
    assert entries[1] in remaining and entries[2] in remaining
    assert {p["entry_id"] for p in queue.pending()} == {entries[1]}


def test_pending_entry_whose_data_was_deleted_is_skipped_not_fatal(queue, redis_conn):
    entry = queue.publish(1, "critical")
    queue.read("alice")
    redis_conn.xdel(queue.key, entry)
    assert queue.read("alice") == []
    assert [p["entry_id"] for p in queue.pending()] == [entry]


def test_undelivered_counts_entries_no_console_was_handed(queue, redis_conn):
    # Redis 7 reports the group's lag; the embedded Redis 6.2 does not: both must give the same count.
    assert queue.undelivered_count() == 0
    first = queue.publish(1, "critical")
    queue.publish(2, "high")
    queue.publish(3, "medium")
    assert queue.undelivered_count() == 3
    assert [e.entry_id for e in queue.read("alice", count=1)] == [first]
    assert queue.undelivered_count() == 2
    queue.ack(first)
    assert queue.undelivered_count() == 2  # acknowledging a delivered entry does not change it
    queue.read("bob")
    assert queue.undelivered_count() == 0


def test_a_stream_lost_under_a_running_process_is_made_again_not_an_error(queue, redis_conn):
    queue.publish(1, "critical")
    assert [e.incident_id for e in queue.board("console")] == [1]
    redis_conn.delete(queue.key)  # Redis restarted without its data, or the key was removed
    assert queue.board("console", reclaim_idle_ms=1) == []
    assert queue.pending() == [] and queue.ack("1-0") is False
    queue.publish(2, "high")
    assert [e.incident_id for e in queue.board("console")] == [2]


def test_an_incident_acknowledged_before_any_console_read_it_no_longer_counts_as_waiting(queue):
    first = queue.publish(1, "critical")
    queue.publish(2, "high")
    assert queue.ack(first) is False  # acknowledged from its own page: no console held it
    assert queue.undelivered_count() == 1
    assert [e.incident_id for e in queue.read("alice")] == [2]
