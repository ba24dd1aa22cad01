"""Builders for evidence tests: a real incident made through the escalation service."""
from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session

from config.settings import ServiceSettings
from escalation import service
from models.domain import LocationMention, TriageOutput
from models.enums import EventKind
from models.events import append_event
from models.media import SharedItem, ShareLink
from models.tables import Post
from models.types import utcnow

PAYLOAD_A = '{"id":"a1","text":"help! fire at 12 High Street, Leeds LS1 4AP call 07700 900123","lang":"en"}'
PAYLOAD_B = '{"id":"b2","text":"smoke everywhere near the flats, mail me at jo@example.com"}'


def triage_output(urgency: str = "critical", category: str = "fire") -> TriageOutput:
    return TriageOutput(
        urgency=urgency, category=category, confidence=0.93, language="en",
        locations=[LocationMention(text="12 High Street, Leeds", kind="address", source="text",
                                   lat=53.7997, lon=-1.5492, confidence=0.8)],
        reasons=["phrase 'fire' (fire)", "urgency cue 'help!'"],
    )


def make_post(session: Session, external_id: str, payload: str, text: str = "help") -> Post:
    post = Post(platform="x", external_id=external_id, author_id=f"u{external_id}",
                author_handle=f"@u{external_id}", text=text, raw_payload=payload)
    session.add(post)
    session.flush()
    return post


def make_incident(engine, media_root: Path | None = None) -> int:
    """An incident with two posts, triage records, a queued message and (optionally) one media file."""
    with Session(engine, expire_on_commit=False) as s:
        first = make_post(s, "a1", PAYLOAD_A, "help! fire at 12 High Street")
        second = make_post(s, "b2", PAYLOAD_B, "smoke everywhere")
        out = triage_output()
        service.store_triage(s, first, out, 12.5)
        outcome = service.apply_triage(s, first, out, ServiceSettings(), lambda _p: True, policy_for=lambda _u: {})
        incident = s.get(service.Incident, outcome.incident_id)
        service.store_triage(s, second, out, 9.0)
        service.attach_post(s, incident, second, "triage", "same place", similarity=0.91)
        if media_root is not None:
            add_shared_media(s, incident.id, media_root)
        s.commit()
        return incident.id


PHOTO = b"\x89PNG\r\n\x1a\nfake-but-binary-image-bytes\x00\x01\x02"
LOCATION = {"lat": 53.80012, "lon": -1.54903, "accuracy_m": 8.0}


def add_shared_media(s: Session, incident_id: int, media_root: Path) -> None:
    """A photo file and a location fix shared through a link, recorded as share-link storage does."""
    link = ShareLink(incident_id=incident_id, nonce=f"n{incident_id}", created_by="disp",
                     expires_at=utcnow() + timedelta(hours=1))
    s.add(link)
    s.flush()
    rel = f"{incident_id}/link-{link.id}/photo-1.png"
    (media_root / rel).parent.mkdir(parents=True, exist_ok=True)
    (media_root / rel).write_bytes(PHOTO)
    photo = SharedItem(link_id=link.id, incident_id=incident_id, kind="photo", path=rel,
                       content_type="image/png", size=len(PHOTO), sha256=hashlib.sha256(PHOTO).hexdigest())
    where = SharedItem(link_id=link.id, incident_id=incident_id, kind="location", data=LOCATION,
                       sha256=hashlib.sha256(json.dumps(LOCATION, sort_keys=True, separators=(",", ":"))
                                             .encode()).hexdigest())
    for item in (photo, where):
        s.add(item)
        s.flush()
        append_event(s, incident_id, EventKind.media_received, f"reporter:link-{link.id}",
                     {"item_id": item.id, "link_id": link.id, "kind": item.kind, "sha256": item.sha256})


def photo_path(media_root: Path) -> Path:
    return next(media_root.rglob("photo-1.png"))
