"""The monitoring officers' feed: every post, newest first, with what triage made of it.

Nothing is filtered out silently: malformed payloads, failed triage and "not an emergency"
posts all stay on the feed with their disposition, so an officer can overrule the machine.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, or_
from sqlmodel import Session, select

from flows import actions
from dashboard.deps import CSRF, DB, Ctx, RowId, require, row_id
from dashboard.routes.common import BACKGROUND, action_done, action_failed, render, safe_next
from dashboard.routes.media import AttachedMedia, attached_media
from models.access import audit
from escalation.service import ActionError
from models.enums import Category, Disposition, IncidentStatus, Platform, Urgency
from models.tables import Incident, IncidentPost, Post, TriageRecord, User
from models.types import utcnow

router = APIRouter(include_in_schema=False)

FEED_LIMIT = 100
TIME_WINDOWS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "6h": timedelta(hours=6),
                "24h": timedelta(hours=24)}
# What an officer may decide about a post from the feed (escalation has its own action).
OFFICER_DISPOSITIONS = {Disposition.not_emergency.value: "marked not an emergency",
                        Disposition.redirected.value: "redirected to non-emergency channels",
                        Disposition.reviewed.value: "marked reviewed"}


@dataclass
class FeedFilters:
    platform: str = ""
    urgency: str = ""
    category: str = ""
    q: str = ""
    window: str = ""
    review: bool = False  # only posts flagged for a person's review that nobody has dealt with yet

    @classmethod
    def from_request(cls, request: Request) -> FeedFilters:
        p = request.query_params
        f = cls(platform=p.get("platform", ""), urgency=p.get("urgency", ""),
                category=p.get("category", ""), q=p.get("q", "")[:200], window=p.get("window", ""),
                review=p.get("review", "") == "1")
        # Unknown values are ignored rather than trusted into the query.
        f.platform = f.platform if f.platform in set(Platform) else ""
        f.urgency = f.urgency if f.urgency in set(Urgency) else ""
        f.category = f.category if f.category in set(Category) else ""
        f.window = f.window if f.window in TIME_WINDOWS else ""
        return f


@dataclass
class FeedRow:
    post: Post
    triage: TriageRecord | None
    incident: Incident | None
    media: list[AttachedMedia]


def feed_rows(db: Session, f: FeedFilters, limit: int = FEED_LIMIT) -> list[FeedRow]:
    q = (select(Post, TriageRecord, Incident)
         .join(TriageRecord, TriageRecord.post_id == Post.id, isouter=True)
         .join(IncidentPost, IncidentPost.post_id == Post.id, isouter=True)
         .join(Incident, Incident.id == IncidentPost.incident_id, isouter=True))
    if f.platform:
        q = q.where(Post.platform == f.platform)
    if f.urgency:
        q = q.where(TriageRecord.urgency == f.urgency)
    if f.category:
        q = q.where(TriageRecord.category == f.category)
    if f.q:
        # Searched literally: "_" and "%" are common in handles, not wildcards.
        like = "%" + f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        q = q.where(or_(Post.text.ilike(like, escape="\\"), Post.author_handle.ilike(like, escape="\\")))
    if f.window:
        q = q.where(Post.received_at >= utcnow() - TIME_WINDOWS[f.window])
    if f.review:
        q = q.where(Post.disposition == Disposition.needs_review.value)
    rows = db.exec(q.order_by(Post.id.desc()).limit(limit)).all()
    return [FeedRow(p, t, i, attached_media(p)) for p, t, i in rows]


def review_count(db: Session) -> int:
    """Posts flagged for review that no incident or person has dealt with: the review list."""
    return int(db.exec(select(func.count(Post.id)).where(Post.disposition == Disposition.needs_review.value)).one())


def _open_incidents(db: Session) -> list[Incident]:
    return list(db.exec(select(Incident).where(
        Incident.status.in_([s.value for s in IncidentStatus if s.is_open])).order_by(Incident.id.desc()).limit(50)))


def _context(request: Request, db: Session, user: User, refresh: bool = False) -> dict:
    f = FeedFilters.from_request(request)
    rows = feed_rows(db, f)
    newest = max((r.post.id for r in rows), default=0)
    seen_upto = int(request.session.get("feed_seen_upto", 0))
    # A page load is always recorded. A live refresh is recorded when it shows posts this person
    # had not been shown yet: every view is on record without one row per event in a storm.
    if not refresh or newest > seen_upto:
        audit(db, user.username, "view_feed", "post", "",
              {"count": len(rows), "newest": newest or None, "refresh": refresh,
               "new_from": seen_upto + 1 if refresh else None})
        db.commit()
        request.session["feed_seen_upto"] = max(newest, seen_upto)
    return {"rows": rows, "filters": f, "open_incidents": _open_incidents(db),
            "platforms": list(Platform), "urgencies": list(Urgency), "categories": list(Category),
            "windows": list(TIME_WINDOWS), "review_count": review_count(db)}


@router.get("/feed")
def feed_page(request: Request, db: DB, user: User = require("feed")) -> HTMLResponse:
    return render(request, "feed.html", user=user, **_context(request, db, user))


@router.get("/feed/rows", dependencies=[BACKGROUND])
def feed_fragment(request: Request, db: DB, user: User = require("feed")) -> HTMLResponse:
    return render(request, "_feed_rows.html", user=user, fragment=True, **_context(request, db, user, refresh=True))


@router.post("/posts/{post_id}/escalate", dependencies=[CSRF])
def escalate(request: Request, post_id: RowId, ctx: Ctx, user: User = require("escalate_post"),
             urgency: str = Form("high"), next: str = Form("/feed")):
    back = safe_next(next, "/feed")
    if urgency not in (Urgency.critical.value, Urgency.high.value):
        return action_failed(request, "Escalate as critical or high.", back, 422)
    try:
        incident_id = actions.escalate_post(ctx, post_id, user, urgency=urgency)
    except ActionError as exc:
        return action_failed(request, str(exc), back)
    return action_done(request, f"Post escalated to incident #{incident_id}.", back, incident_id=incident_id)


@router.post("/posts/{post_id}/dispose", dependencies=[CSRF])
def dispose(request: Request, post_id: RowId, ctx: Ctx, user: User = require("dispose_post"),
            disposition: str = Form(...), next: str = Form("/feed")):
    back = safe_next(next, "/feed")
    if disposition not in OFFICER_DISPOSITIONS:
        return action_failed(request, "That is not a decision an officer can record here.", back, 422)
    try:
        actions.dispose_post(ctx, post_id, user, disposition)
    except ActionError as exc:
        return action_failed(request, str(exc), back)
    return action_done(request, f"Post {OFFICER_DISPOSITIONS[disposition]}.", back)


@router.post("/posts/{post_id}/attach", dependencies=[CSRF])
def attach(request: Request, post_id: RowId, ctx: Ctx, user: User = require("dispose_post"),
           incident_id: str = Form(""), next: str = Form("/feed")):
    back = safe_next(next, "/feed")
    target = row_id(incident_id)
    if target is None:  # nothing is preselected: a misclick attaches nothing
        return action_failed(request, "Choose the incident to attach this post to.", back, status_code=422)
    try:
        actions.attach_post(ctx, post_id, target, user)
    except ActionError as exc:
        return action_failed(request, str(exc), back)
    return action_done(request, f"Post attached to incident #{target}.", back, incident_id=target)
