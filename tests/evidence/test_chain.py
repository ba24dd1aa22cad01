"""Any change to a stored event, post payload or media byte is reported by verification."""
from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session, select

from evidence.chain import verify_all, verify_incident
from evidence.hashes import post_digest
from models.enums import EventKind
from models.media import SharedItem
from models.tables import IncidentEvent, Post
from evidence_test_helpers import make_incident, photo_path


def test_intact_incident_verifies(engine, tmp_path):
    incident_id = make_incident(engine, tmp_path / "media")
    report = verify_all(engine, tmp_path / "media")
    assert report.ok and report.incidents_checked == 1 and report.events_checked >= 5
    with Session(engine) as s:
        assert verify_incident(s, incident_id, tmp_path / "media") is None


def test_attach_records_payload_hash(engine):
    incident_id = make_incident(engine)
    with Session(engine) as s:
        attached = s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id,
                                                      IncidentEvent.kind == EventKind.post_attached.value)).all()
        assert len(attached) == 2
        for ev in attached:
            assert ev.data["payload_sha256"] == post_digest(s.get(Post, ev.data["post_id"]))


def test_edited_event_data_is_detected_at_its_seq(engine):
    incident_id = make_incident(engine)
    with Session(engine) as s:
        ev = s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id,
                                                IncidentEvent.seq == 2)).one()
        ev.data = {**ev.data, "reason": "rewritten later"}
        s.add(ev)
        s.commit()
    first = verify_all(engine).first
    assert first is not None and (first.incident_id, first.seq) == (incident_id, 2)
    assert "hash" in first.reason


def test_edited_actor_with_recomputed_hash_breaks_the_next_link(engine, evidence_keys):
    from models.events import event_hash

    incident_id = make_incident(engine)
    with Session(engine) as s:
        ev = s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id,
                                                IncidentEvent.seq == 1)).one()
        ev.actor = "someone-else"
        ev.hash = event_hash(evidence_keys.hmac_key, ev.prev_hash, ev.incident_id, ev.seq, ev.kind, ev.actor,
                             ev.at, ev.data)
        s.add(ev)
        s.commit()
    first = verify_all(engine).first
    assert (first.seq, first.reason) == (2, "prev_hash does not match the previous entry's hash")


def test_deleted_event_is_a_sequence_gap(engine):
    incident_id = make_incident(engine)
    with Session(engine) as s:
        s.exec(text("DELETE FROM incident_events WHERE incident_id = :i AND seq = 3").bindparams(i=incident_id))
        s.commit()
    first = verify_all(engine).first
    assert first.seq == 4 and "sequence gap" in first.reason


def test_one_changed_payload_byte_is_detected(engine):
    incident_id = make_incident(engine)
    with Session(engine) as s:
        post = s.exec(select(Post).where(Post.external_id == "b2")).one()
        post.raw_payload = post.raw_payload.replace("smoke", "smokf")
        s.add(post)
        s.commit()
        post_id = post.id
    first = verify_all(engine).first
    assert first.incident_id == incident_id
    assert f"post {post_id} raw payload differs" in first.reason


def test_one_changed_media_byte_is_detected(engine, tmp_path):
    media = tmp_path / "media"
    make_incident(engine, media)
    assert verify_all(engine, media).ok
    photo = photo_path(media)
    data = bytearray(photo.read_bytes())
    data[-1] ^= 0x01
    photo.write_bytes(bytes(data))
    first = verify_all(engine, media).first
    assert first is not None and "differs from the recorded SHA-256" in first.reason
    assert first.reason.startswith("media item ")


def test_deleted_media_file_is_detected(engine, tmp_path):
    media = tmp_path / "media"
    make_incident(engine, media)
    photo_path(media).unlink()
    assert "is missing" in verify_all(engine, media).first.reason


def test_media_row_and_file_replaced_together_is_caught_by_the_chain(engine, tmp_path):
    import hashlib

    media = tmp_path / "media"
    make_incident(engine, media)
    forged = b"\x89PNG\r\n\x1a\nsomething else"
    photo_path(media).write_bytes(forged)
    with Session(engine) as s:
        item = s.exec(select(SharedItem).where(SharedItem.kind == "photo")).one()
        item.sha256 = hashlib.sha256(forged).hexdigest()
        s.add(item)
        s.commit()
    assert "differs from the recorded SHA-256" in verify_all(engine, media).first.reason


def test_edited_shared_location_and_deleted_item_are_detected(engine, tmp_path):
    media = tmp_path / "media"
    make_incident(engine, media)
    with Session(engine) as s:
        where = s.exec(select(SharedItem).where(SharedItem.kind == "location")).one()
        where.data = {**where.data, "lat": 51.5}
        s.add(where)
        s.commit()
        assert "data differs" in verify_all(engine, media).first.reason
        s.delete(where)
        s.commit()
    assert verify_all(engine, media).first.reason.endswith("is missing")
