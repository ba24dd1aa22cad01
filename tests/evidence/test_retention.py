"""Retention removes exactly what policy allows: never anything younger than its limit or on hold."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlmodel import Session, SQLModel, select

from evidence.bundle import export_incident, verify_bundle
from evidence.chain import verify_all
from evidence.media import MEDIA_PURGED
from evidence.retention import RetentionPolicy, purge
from evidence_test_helpers import make_incident, photo_path
from models.enums import Disposition, EventKind, IncidentStatus
from models.events import append_event
from models.media import SharedItem
from models.tables import AuditEntry, Incident, IncidentEvent, IncidentPost, OutboundMessage, Post, TriageRecord

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
POLICY = RetentionPolicy(unattached_post_days=30, incident_days=90, media_days=60)


def _wipe(engine) -> None:
    with engine.begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(table.delete())


def _post(s: Session, ext: str, received_at: datetime, hold: bool = False,
          disposition: str = Disposition.not_emergency.value) -> Post:
    post = Post(platform="x", external_id=ext, text="t", raw_payload="{}", received_at=received_at,
                legal_hold=hold, disposition=disposition)
    s.add(post)
    s.flush()
    return post


def _incident(s: Session, status: str, finished_at: datetime, hold: bool = False,
              post_hold: bool = False) -> int:
    incident = Incident(status=status, urgency="high", created_at=finished_at - timedelta(days=1),
                        updated_at=finished_at, legal_hold=hold,
                        resolved_at=finished_at if status != IncidentStatus.queued.value else None)
    s.add(incident)
    s.flush()
    post = _post(s, f"i{incident.id}", finished_at - timedelta(days=1), hold=post_hold,
                 disposition=Disposition.escalated.value)
    s.add(IncidentPost(incident_id=incident.id, post_id=post.id))
    append_event(s, incident.id, EventKind.opened, "triage", {"post_id": post.id})
    s.add(OutboundMessage(dedupe_key=f"m{incident.id}", incident_id=incident.id, post_id=post.id,
                          platform="x", kind="dm", purpose="receipt", text="received"))
    return incident.id


post_case = st.tuples(st.integers(min_value=-2000, max_value=2000), st.booleans())  # age (hours vs limit), hold
incident_case = st.tuples(st.integers(min_value=-2000, max_value=2000), st.booleans(), st.booleans(),
                          st.sampled_from([IncidentStatus.resolved.value, IncidentStatus.closed.value,
                                           IncidentStatus.queued.value]))


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(posts=st.lists(post_case, max_size=6), incidents=st.lists(incident_case, max_size=4))
def test_purge_respects_holds_and_limits(engine, posts, incidents):
    _wipe(engine)
    post_limit = NOW - timedelta(days=POLICY.unattached_post_days)
    incident_limit = NOW - timedelta(days=POLICY.incident_days)
    expect_posts_kept, expect_incidents_kept = set(), set()
    with Session(engine) as s:
        for n, (offset_h, hold) in enumerate(posts):
            # offset 0 is exactly at the limit: not older than it, so kept.
            p = _post(s, f"p{n}", post_limit - timedelta(hours=offset_h), hold)
            if offset_h <= 0 or hold:
                expect_posts_kept.add(p.id)
        for offset_h, hold, post_hold, status in incidents:
            iid = _incident(s, status, incident_limit - timedelta(hours=offset_h), hold, post_hold)
            if offset_h <= 0 or hold or post_hold or status == IncidentStatus.queued.value:
                expect_incidents_kept.add(iid)
        s.commit()
    counts = purge(engine, NOW, POLICY, None)
    with Session(engine) as s:
        kept_incidents = set(s.exec(select(Incident.id)))
        kept_unattached = set(s.exec(select(Post.id).where(~Post.external_id.startswith("i"))))
        assert kept_incidents == expect_incidents_kept
        assert kept_unattached == expect_posts_kept
        # Everything of a purged incident went with it; everything of a kept one stayed.
        assert set(s.exec(select(IncidentEvent.incident_id))) == kept_incidents
        assert set(s.exec(select(OutboundMessage.incident_id))) == kept_incidents
        assert set(s.exec(select(IncidentPost.incident_id))) == kept_incidents
        audit = s.exec(select(AuditEntry).where(AuditEntry.action == "purge")).one()
        assert audit.detail["counts"] == counts
    assert counts["incidents"] == len(incidents) - len(expect_incidents_kept)
    assert counts["posts"] == (len(posts) - len(expect_posts_kept)) + counts["incidents"]


def test_unattached_post_goes_with_its_triage_and_messages(engine):
    old = NOW - timedelta(days=31)
    with Session(engine) as s:
        post = _post(s, "old", old, disposition=Disposition.redirected.value)
        s.add(TriageRecord(post_id=post.id, urgency="low", category="other", confidence=0.7))
        s.add(OutboundMessage(dedupe_key="redirect-old", post_id=post.id, platform="x", kind="dm",
                              purpose="redirect", text="please call 101"))
        s.commit()
    counts = purge(engine, NOW, POLICY, None)
    assert (counts["posts"], counts["triage_results"], counts["outbound_messages"]) == (1, 1, 1)
    with Session(engine) as s:
        assert s.exec(select(Post)).all() == [] and s.exec(select(OutboundMessage)).all() == []


def test_unfinished_posts_are_never_purged(engine):
    ancient = NOW - timedelta(days=3650)
    with Session(engine) as s:
        _post(s, "pending", ancient, disposition=Disposition.awaiting_triage.value)
        _post(s, "review", ancient, disposition=Disposition.needs_review.value)
        s.commit()
    assert purge(engine, NOW, POLICY, None)["posts"] == 0


def test_old_media_is_removed_from_a_kept_incident_and_verification_still_passes(engine, tmp_path, evidence_keys):
    media = tmp_path / "media"
    incident_id = make_incident(engine, media)
    photo = photo_path(media)
    assert purge(engine, utcnow_plus(days=59), POLICY, media)["media_files"] == 0 and photo.exists()
    counts = purge(engine, utcnow_plus(days=61), POLICY, media)
    assert counts["media_files"] == 1 and counts["shared_items"] == 1 and not photo.exists()
    with Session(engine) as s:
        notes = s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id,
                                                   IncidentEvent.kind == EventKind.note.value)).all()
        assert [n.data["retention"] for n in notes] == [MEDIA_PURGED]
        assert [i.kind for i in s.exec(select(SharedItem))] == ["location"]  # no file: kept with the incident
    assert verify_all(engine, media).ok  # a recorded purge is not tampering
    assert verify_bundle(export_incident(engine, incident_id, tmp_path / "b.zip", media, evidence_keys).path, evidence_keys.public_key, engine).ok


def utcnow_plus(days: int) -> datetime:
    from models.types import utcnow

    return utcnow() + timedelta(days=days)


def test_media_of_held_incident_is_kept(engine, tmp_path):
    media = tmp_path / "media"
    incident_id = make_incident(engine, media)
    with Session(engine) as s:
        incident = s.get(Incident, incident_id)
        incident.legal_hold = True
        s.add(incident)
        s.commit()
    assert purge(engine, utcnow_plus(days=400), POLICY, media)["media_files"] == 0
    assert photo_path(media).exists()


def test_purged_incident_takes_its_posts_links_media_files_and_cad_log(engine, tmp_path):
    from models.cad import CadDelivery
    from models.media import ShareLink

    media = tmp_path / "media"
    incident_id = make_incident(engine, media)
    photo = photo_path(media)
    with Session(engine) as s:
        incident = s.get(Incident, incident_id)
        incident.status = IncidentStatus.closed.value
        incident.closed_at = NOW - timedelta(days=91)
        s.add(incident)
        s.add(CadDelivery(incident_id=incident_id, url="http://cad", attempt=1, ok=True, status_code=200))
        s.commit()
    counts = purge(engine, NOW, POLICY, media)
    assert (counts["incidents"], counts["posts"], counts["media_files"]) == (1, 2, 1)
    assert not photo.exists()
    with Session(engine) as s:
        for model in (Incident, Post, IncidentEvent, IncidentPost, TriageRecord, OutboundMessage,
                      SharedItem, ShareLink, CadDelivery):
            assert s.exec(select(model)).all() == [], model.__name__
        detail = s.exec(select(AuditEntry).where(AuditEntry.action == "purge")).one().detail
        assert detail["counts"]["shared_items"] == 2 and "text" not in str(detail)


def test_a_held_post_holds_its_incident(engine, tmp_path):
    incident_id = make_incident(engine)
    with Session(engine) as s:
        incident = s.get(Incident, incident_id)
        incident.status = IncidentStatus.resolved.value
        incident.resolved_at = NOW - timedelta(days=400)
        post = s.exec(select(Post).where(Post.external_id == "b2")).one()
        post.legal_hold = True
        s.add_all([incident, post])
        s.commit()
    assert purge(engine, NOW, POLICY, None)["incidents"] == 0
    with Session(engine) as s:
        assert len(s.exec(select(Post)).all()) == 2


def test_purging_a_post_keeps_another_incidents_share_link_that_names_it(engine, tmp_path, evidence_keys):
    from models.media import ShareLink

    media = tmp_path / "media"
    kept_id = make_incident(engine, media)  # its share link answers post "a1"
    with Session(engine) as s:
        post = s.exec(select(Post).where(Post.external_id == "a1")).one()
        link = s.exec(select(ShareLink)).one()
        link.post_id = post.id
        # The post was later split off into an incident that is now closed and old.
        moved = Incident(status=IncidentStatus.closed.value, urgency="high", closed_at=NOW - timedelta(days=200))
        s.add_all([link, moved])
        s.flush()
        membership = s.exec(select(IncidentPost).where(IncidentPost.post_id == post.id)).one()
        membership.incident_id = moved.id
        s.add(membership)
        append_event(s, moved.id, EventKind.opened, "disp", {})
        s.commit()
    counts = purge(engine, NOW, POLICY, media)
    assert (counts["incidents"], counts["posts"]) == (1, 1)
    with Session(engine) as s:
        link = s.exec(select(ShareLink)).one()
        assert link.incident_id == kept_id and link.post_id is None
        assert len(s.exec(select(SharedItem)).all()) == 2
    assert photo_path(media).exists()
    assert verify_all(engine, media).ok  # the kept chain notes that the post it named was purged
    bundle = export_incident(engine, kept_id, tmp_path / "kept.zip", media, evidence_keys)
    assert verify_bundle(bundle.path, evidence_keys.public_key, engine).ok


def test_large_purges_are_batched(engine):
    with Session(engine) as s:
        for n in range(1203):
            s.add(Post(platform="x", external_id=f"bulk{n}", raw_payload="{}", received_at=NOW - timedelta(days=40),
                       disposition=Disposition.not_emergency.value))
        s.commit()
    assert purge(engine, NOW, POLICY, None)["posts"] == 1203


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ages=st.lists(st.integers(min_value=-500, max_value=500), min_size=1, max_size=5), hold=st.booleans())
def test_media_purge_boundary(engine, tmp_path_factory, ages, hold):
    import hashlib

    from models.media import ShareLink

    _wipe(engine)
    media = tmp_path_factory.mktemp("media")
    limit = NOW - timedelta(days=POLICY.media_days)
    with Session(engine) as s:
        incident = Incident(status=IncidentStatus.acknowledged.value, urgency="high", legal_hold=hold)
        s.add(incident)
        s.flush()
        append_event(s, incident.id, EventKind.opened, "triage", {})
        link = ShareLink(incident_id=incident.id, nonce="n", created_by="d", expires_at=NOW)
        s.add(link)
        s.flush()
        expected_left = set()
        for n, offset_h in enumerate(ages):
            body = f"image-{n}".encode()
            (media / f"{n}.png").write_bytes(body)
            item = SharedItem(link_id=link.id, incident_id=incident.id, kind="photo", path=f"{n}.png",
                              sha256=hashlib.sha256(body).hexdigest(), received_at=limit - timedelta(hours=offset_h))
            s.add(item)
            s.flush()
            append_event(s, incident.id, EventKind.media_received, "reporter",
                         {"item_id": item.id, "sha256": item.sha256, "kind": "photo"})
            if offset_h <= 0 or hold:
                expected_left.add(f"{n}.png")
        s.commit()
    purge(engine, NOW, POLICY, media)
    assert {p.name for p in media.iterdir()} == expected_left
    assert verify_all(engine, media).ok
