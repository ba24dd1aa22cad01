"""What a queue row says about an incident, like a line on a CAD screen: what, where, how many.

For every open incident, in three queries whatever the queue length: the first words of the
latest report, the best place the reporters named (even when it could not be put on a map), and
whether any external page for it failed. Nothing here is marked safe: the template escapes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, select

from models.enums import EventKind
from models.tables import IncidentEvent, IncidentPost, Post, TriageRecord

FIRST_WORDS = 14
FIRST_CHARS = 110
# Place kinds from the most to the least useful to someone sending a unit.
PLACE_RANK = {"latlon": 0, "what3words": 0, "address": 1, "postcode": 2, "zip": 2, "junction": 2,
              "landmark": 3, "place": 4, "geotag": 5, "profile": 9}


@dataclass
class CadLine:
    first_words: str = ""
    post_id: int | None = None  # the report the first words come from
    words_truncated: bool = False
    place: str = ""
    place_on_map: bool = False
    failed_pages: list[dict] = field(default_factory=list)


def first_words(text: str, words: int = FIRST_WORDS, chars: int = FIRST_CHARS) -> tuple[str, bool]:
    """The opening of a post on one line: at most `words` words and `chars` characters."""
    parts = text.split()
    cut = " ".join(parts[:words])
    truncated = len(parts) > words
    if len(cut) > chars:
        cut, truncated = cut[:chars].rstrip(), True
    return cut, truncated


def best_place(mentions: list[dict]) -> tuple[str, bool]:
    """The most specific place named (a street before a town; profile text last), and whether it
    was geocoded. Profile locations say where someone lives, not where help is needed: skipped."""
    usable = [m for m in mentions if isinstance(m, dict) and str(m.get("text") or "").strip()
              and m.get("kind") != "profile"]
    if not usable:
        return "", False
    usable.sort(key=lambda m: (PLACE_RANK.get(str(m.get("kind")), 6), -float(m.get("confidence") or 0)))
    top = usable[0]
    return " ".join(str(top["text"]).split()), top.get("lat") is not None


def cad_lines(db: Session, incident_ids: list[int]) -> dict[int, CadLine]:
    if not incident_ids:
        return {}
    out = {i: CadLine() for i in incident_ids}
    members = db.exec(select(IncidentPost.incident_id, Post.id, Post.text, Post.received_at)
                      .join(Post, Post.id == IncidentPost.post_id)
                      .where(IncidentPost.incident_id.in_(incident_ids))).all()
    latest: dict[int, tuple] = {}
    post_incident: dict[int, int] = {}
    for incident_id, post_id, text, received_at in members:
        post_incident[post_id] = incident_id
        if incident_id not in latest or (received_at, post_id) > latest[incident_id][:2]:
            latest[incident_id] = (received_at, post_id, text)
    for incident_id, (_, post_id, text) in latest.items():
        out[incident_id].first_words, out[incident_id].words_truncated = first_words(text or "")
        out[incident_id].post_id = post_id
    # Newest report first: a later, more precise address wins over an earlier vague one of equal rank.
    mentions: dict[int, list[dict]] = {}
    for post_id, locations in db.exec(select(TriageRecord.post_id, TriageRecord.locations)
                                      .where(TriageRecord.post_id.in_(list(post_incident)))
                                      .order_by(TriageRecord.post_id.desc())).all():
        mentions.setdefault(post_incident[post_id], []).extend(locations or [])
    for incident_id, found in mentions.items():
        out[incident_id].place, out[incident_id].place_on_map = best_place(found)
    for incident_id, data in db.exec(select(IncidentEvent.incident_id, IncidentEvent.data).where(
            IncidentEvent.kind == EventKind.notification.value,
            IncidentEvent.incident_id.in_(incident_ids)).order_by(IncidentEvent.seq)).all():
        if data and not data.get("ok"):
            out[incident_id].failed_pages.append(data)
    return out


def failed_page_counts(db: Session, incident_ids: list[int] | None = None) -> dict[int, int]:
    """Incident id -> failed external pages (for screens that only need the number)."""
    query = select(IncidentEvent.incident_id, IncidentEvent.data).where(
        IncidentEvent.kind == EventKind.notification.value)
    if incident_ids is not None:
        query = query.where(IncidentEvent.incident_id.in_(incident_ids or [-1]))
    counts: dict[int, int] = {}
    for incident_id, data in db.exec(query).all():
        if data and not data.get("ok"):
            counts[incident_id] = counts.get(incident_id, 0) + 1
    return counts


__all__ = ["CadLine", "best_place", "cad_lines", "failed_page_counts", "first_words"]
