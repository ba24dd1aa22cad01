"""One-time share links: signing, sending, binding to one device, consent, stop and revoke.

A token is `URLSafeTimedSerializer(secret).dumps({"l": link_id, "n": nonce})`. The signature
proves we issued it; the nonce must match the live database row, so revoking or deleting the row
voids every copy of the token. The first device that opens the link gets a random cookie whose
SHA-256 is stored on the row; any other device is told the link was already used.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import update
from sqlmodel import Session, select

from config import Settings
from dashboard.security import secret_key
from dashboard.share import texts
from escalation import messages
from escalation.service import post_language, queue_message, reporter_posts
from models.enums import EventKind, IncidentStatus, MessageKind, MessagePurpose
from models.events import append_event
from models.media import ShareLink
from models.tables import Incident, OutboundMessage, Post
from models.types import utcnow

TOKEN_SALT = "flare.share-link.v1"
DEVICE_COOKIE = "flare_share_device"
# What the reporter agrees to, item by item; the page shows exactly these lines.
CONSENT_SCOPE = ["location", "photos", "camera", "text"]

# Link-preview fetchers open every URL in a DM; they must not use up the reporter's link.
_PREVIEW_AGENTS = re.compile(
    r"bot|crawler|spider|preview|facebookexternalhit|slack|discord|whatsapp|telegram|cardyb|embedly|"
    r"skypeuripreview|curl|wget|python-requests", re.I)


class LinkProblem(StrEnum):
    invalid = "invalid"  # bad signature, unknown nonce: tampered or never issued
    expired = "expired"
    revoked = "revoked"
    used = "used"  # bound to another device
    declined = "declined"
    ended = "ended"  # the reporter stopped sharing


class LinkError(Exception):
    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass
class CreatedLink:
    link: ShareLink
    url: str
    message: OutboundMessage | None


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(settings), salt=TOKEN_SALT)


def make_token(settings: Settings, link: ShareLink) -> str:
    return _serializer(settings).dumps({"l": link.id, "n": link.nonce})


def public_base(settings: Settings, served_at: str = "") -> str:
    """Where reporters reach the dashboard: the configured public URL, else the address the
    dispatcher's own request reached it on (`flare demo --port 8100` serves on 8100, whatever the
    settings' port says; a 0.0.0.0 bind is no address to send anyone), else host:port."""
    base = settings.dashboard.public_base_url or served_at \
        or f"http://{settings.dashboard.host}:{settings.dashboard.port}"
    return base.rstrip("/")


def link_url(settings: Settings, token: str, served_at: str = "") -> str:
    return f"{public_base(settings, served_at)}/s/{token}"


_LINK_IN_TEXT = re.compile(r"https?://\S+?/s/[A-Za-z0-9_.\-]+")


def url_in(text: str) -> str:
    """The share link a message carries ("" if none): what the reporter was actually sent."""
    match = _LINK_IN_TEXT.search(text or "")
    return match.group(0) if match else ""


# What people who may not send links see in place of a link a message carried: the link is a
# bearer credential, and whoever opens it first binds it to their device (locking the reporter out).
LINK_HIDDEN = "[one-time share link, shown only to people who can send links]"


def hide_links(text: str) -> str:
    """The message text with every share link replaced by LINK_HIDDEN."""
    return _LINK_IN_TEXT.sub(LINK_HIDDEN, text or "")


def device_digest(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode()).hexdigest()


def new_device_cookie() -> str:
    return secrets.token_urlsafe(32)


def is_preview_agent(user_agent: str) -> bool:
    return bool(_PREVIEW_AGENTS.search(user_agent or ""))


def link_message_text(settings: Settings, url: str, kind: str, language: str | None = None) -> str:
    """The message carrying the link, in the reporter's language. Public replies must fit the
    platforms' short post limits."""
    minutes = max(1, math.ceil(settings.share.link_ttl_minutes))
    return texts.link_message(settings, language, url, minutes, public=kind == MessageKind.public_reply.value)


def create_link(session: Session, settings: Settings, incident_id: int, username: str,
                dm_possible: Callable[[Post], bool], post_id: int | None = None,
                now: datetime | None = None, served_at: str = "") -> CreatedLink:
    """Create a link for one of the incident's reporters and queue the message carrying it.

    The message goes by DM when the platform allows it. A silent contact with no private channel
    gets no message at all (never a public reply): the dispatcher gets the URL to pass on another way.
    """
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise LookupError(f"incident {incident_id} not found")
    if not IncidentStatus(incident.status).is_open:
        raise ValueError(f"incident {incident_id} is {incident.status}: reopen it before asking the reporter to share")
    posts = reporter_posts(session, incident_id)
    post: Post | None = next((p for p in posts if p.id == post_id), None) if post_id else (posts[0] if posts else None)
    if post_id and post is None:
        raise LookupError(f"post {post_id} is not a report of incident {incident_id}")
    now = now or utcnow()
    link = ShareLink(incident_id=incident_id, post_id=post.id if post else None,
                     nonce=secrets.token_urlsafe(16), created_by=username, created_at=now,
                     expires_at=now + timedelta(minutes=settings.share.link_ttl_minutes))
    session.add(link)
    session.flush()
    url = link_url(settings, make_token(settings, link), served_at)
    message = None
    if post is not None:
        kind = messages.choose_kind(dm_possible(post), incident.silent)
        if kind is not None:
            text = link_message_text(settings, url, kind, post_language(session, post.id))
            reply = messages.Reply(MessagePurpose.share_link.value, kind, text)
            message = queue_message(session, post, incident_id, reply, dedupe_key=f"share_link:{link.id}",
                                    created_by=username)
            link.message_id = message.id if message else None
    append_event(session, incident_id, EventKind.note, username,
                 {"share": "link_created", "link_id": link.id, "expires_at": link.expires_at,
                  "message_id": link.message_id, "post_id": link.post_id})
    return CreatedLink(link=link, url=url, message=message)


def _decode(settings: Settings, token: str) -> tuple[int, str]:
    # The row's expires_at is authoritative; the signature's own age limit is a second lock that
    # holds even if a row were edited.
    max_age = math.ceil(settings.share.link_ttl_minutes * 60) + 1
    try:
        payload = _serializer(settings).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise LinkError(LinkProblem.expired) from exc
    except BadSignature as exc:
        raise LinkError(LinkProblem.invalid) from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("l"), int) or not isinstance(payload.get("n"), str):
        raise LinkError(LinkProblem.invalid)
    return payload["l"], payload["n"]


def load_link(session: Session, settings: Settings, token: str, now: datetime | None = None) -> ShareLink:
    """The live link behind a token, or LinkError saying why it cannot be used (device not checked)."""
    link_id, nonce = _decode(settings, token)
    link = session.get(ShareLink, link_id)
    if link is None or not hmac.compare_digest(link.nonce, nonce):
        raise LinkError(LinkProblem.invalid)
    if link.revoked_at is not None:
        raise LinkError(LinkProblem.revoked)
    if (now or utcnow()) >= link.expires_at:
        raise LinkError(LinkProblem.expired)
    # A link serves an open incident only: once it is resolved, closed or merged away, nobody is
    # watching what arrives, so the link ends with it (as if the dispatcher had cancelled it).
    incident = session.get(Incident, link.incident_id)
    if incident is None or not IncidentStatus(incident.status).is_open:
        raise LinkError(LinkProblem.revoked)
    return link


def check_device(link: ShareLink, cookie_value: str | None) -> None:
    if not link.device_hash:
        return
    if not cookie_value or not hmac.compare_digest(link.device_hash, device_digest(cookie_value)):
        raise LinkError(LinkProblem.used)


def check_open_for_sharing(link: ShareLink) -> None:
    """Media may only arrive after consent and before the reporter stopped or declined."""
    if link.declined_at is not None:
        raise LinkError(LinkProblem.declined)
    if link.ended_at is not None:
        raise LinkError(LinkProblem.ended)
    if link.consent_at is None:
        raise LinkError(LinkProblem.declined)


def bind_device(session: Session, link: ShareLink, cookie_value: str, now: datetime | None = None) -> None:
    """Bind the link to this device. A conditional update, so two phones racing cannot both win."""
    if link.device_hash:
        check_device(link, cookie_value)
        return
    digest = device_digest(cookie_value)
    won = session.execute(update(ShareLink).where(ShareLink.id == link.id, ShareLink.device_hash == "")
                          .values(device_hash=digest, bound_at=now or utcnow())).rowcount
    session.commit()
    session.refresh(link)
    if won != 1:
        check_device(link, cookie_value)


def consent_text(settings: Settings, language: str | None = None) -> str:
    """The exact words the reporter agrees to (stored with the consent record), in their language."""
    return texts.consent_text(settings, language)


def link_language(session: Session, link: ShareLink) -> str:
    """The language of the report the link answered (as triage read it), else the incident's first."""
    post_id = link.post_id
    if post_id is None:
        posts = reporter_posts(session, link.incident_id)
        post_id = posts[0].id if posts else None
    return texts.page_language(post_language(session, post_id) if post_id else "en")


def record_consent(session: Session, settings: Settings, link: ShareLink, user_agent: str,
                   now: datetime | None = None) -> None:
    if link.declined_at is not None:
        raise LinkError(LinkProblem.declined)
    if link.ended_at is not None:
        raise LinkError(LinkProblem.ended)
    if link.consent_at is not None:
        return
    now = now or utcnow()
    link.consent_at = now
    link.consent_scope = list(CONSENT_SCOPE)
    link.consent_text = consent_text(settings, link_language(session, link))
    link.consent_user_agent = (user_agent or "")[:500]
    session.add(link)
    digest = hashlib.sha256(f"{now.isoformat()}|{link.consent_text}|{link.consent_user_agent}".encode()).hexdigest()
    append_event(session, link.incident_id, EventKind.note, f"reporter:link-{link.id}",
                 {"share": "consent_given", "link_id": link.id, "scope": link.consent_scope,
                  "consent_sha256": digest})
    session.commit()


def record_decline(session: Session, link: ShareLink, now: datetime | None = None) -> None:
    """The person said no: remember only that and when (no user agent, nothing else)."""
    if link.consent_at is not None or link.declined_at is not None:
        return
    link.declined_at = now or utcnow()
    session.add(link)
    append_event(session, link.incident_id, EventKind.note, f"reporter:link-{link.id}",
                 {"share": "consent_declined", "link_id": link.id})
    session.commit()


def end_sharing(session: Session, link: ShareLink, now: datetime | None = None) -> bool:
    if link.ended_at is not None:
        return False
    link.ended_at = now or utcnow()
    session.add(link)
    append_event(session, link.incident_id, EventKind.note, f"reporter:link-{link.id}",
                 {"share": "stopped_by_reporter", "link_id": link.id})
    session.commit()
    return True


def revoke(session: Session, incident_id: int, link_id: int, username: str,
           now: datetime | None = None) -> ShareLink:
    link = session.get(ShareLink, link_id)
    if link is None or link.incident_id != incident_id:
        raise LookupError(f"share link {link_id} not found on incident {incident_id}")
    if link.revoked_at is None:
        link.revoked_at = now or utcnow()
        link.revoked_by = username
        session.add(link)
        append_event(session, incident_id, EventKind.note, username, {"share": "link_revoked", "link_id": link.id})
    return link


def link_status(link: ShareLink, now: datetime | None = None, incident_open: bool = True) -> str:
    if link.revoked_at or not incident_open:
        return "revoked"
    if link.ended_at:
        return "ended"
    if link.declined_at:
        return "declined"
    if (now or utcnow()) >= link.expires_at:
        return "expired"
    if link.consent_at:
        return "sharing"
    if link.device_hash:
        return "opened"
    return "sent"


def links_for(session: Session, incident_id: int) -> list[ShareLink]:
    return list(session.exec(select(ShareLink).where(ShareLink.incident_id == incident_id).order_by(ShareLink.id)))
