"""The reporter's side: the page behind a one-time link, consent, photo uploads and stop.

No login and no app: the signed token in the URL plus the device cookie set on first open are
the only credentials. Every response carries a strict same-origin Content-Security-Policy, and the
page asks for nothing but location and camera (no microphone, no contacts, no files but photos).
"""
from __future__ import annotations

import math
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile

from flows.context import AppContext
from flows.live import publish_live
from dashboard.share import links, storage, texts
from dashboard.share.links import DEVICE_COOKIE, LinkError, LinkProblem
from dashboard.timefmt import make_clock
from models.media import ShareLink
from models.types import utcnow

router = APIRouter(include_in_schema=False)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "media-src 'self' blob: mediastream:; connect-src 'self'; font-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
PERMISSIONS = "geolocation=(self), camera=(self), microphone=(), payment=(), usb=(), bluetooth=()"

_PROBLEM_STATUS = {LinkProblem.invalid: 404, LinkProblem.expired: 410, LinkProblem.revoked: 410,
                   LinkProblem.used: 403, LinkProblem.declined: 200, LinkProblem.ended: 200}


def api_status(problem: LinkProblem) -> int:
    """For JSON callers a link that cannot take media is an error, even when the page says so calmly."""
    return {LinkProblem.declined: 409, LinkProblem.ended: 409}.get(problem, _PROBLEM_STATUS[problem])


def share_headers(response: Response, request: Request | None = None) -> Response:
    csp = CSP
    if request is not None:
        # Some mobile browsers do not let 'self' cover the page's own ws:/wss: origin; name it.
        scheme = "wss" if request.url.scheme == "https" else "ws"
        csp = CSP.replace("connect-src 'self'", f"connect-src 'self' {scheme}://{request.url.netloc}")
    response.headers["Content-Security-Policy"] = csp
    response.headers["Permissions-Policy"] = PERMISSIONS
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _ctx(request: Request) -> AppContext:
    return request.app.state.ctx


def same_origin(headers, url_netloc: str) -> bool:
    """Refuse cross-site POSTs and WebSocket handshakes.

    Browsers label every request with Sec-Fetch-Site; older ones at least send Origin. Under our
    no-referrer policy a same-origin form POST carries `Origin: null`, so the fetch-metadata header
    is the one to trust when present. Clients sending neither (not a browser) are judged by the
    SameSite=Strict device cookie alone.
    """
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = headers.get("origin")
    if origin is None:
        return True
    return origin != "null" and urlsplit(origin).netloc == (headers.get("host") or url_netloc)


def closed_page(request: Request, problem: LinkProblem, language: str = "en") -> HTMLResponse:
    """The page for a link that cannot be used (any more). An invalid link names no reporter, so it
    is in English; a known link's page is in its reporter's language."""
    settings = _ctx(request).settings
    response = request.app.state.templates.TemplateResponse(
        request, "share_closed.html",
        {"problem": problem.value, "service": settings.service, "lang": texts.page_language(language),
         "dir": texts.direction(language), "t": texts.page_texts(language)},
        status_code=_PROBLEM_STATUS[problem])
    return share_headers(response)


def _set_device_cookie(request: Request, response: Response, link: ShareLink, value: str) -> None:
    seconds = max(60, math.ceil((link.expires_at - utcnow()).total_seconds()))
    response.set_cookie(DEVICE_COOKIE, value, max_age=seconds, path="/s/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def _page_state(link: ShareLink) -> str:
    if link.consent_at is None:
        return "consent"
    return "sharing"


@router.api_route("/s/{token}", methods=["GET", "HEAD"])
def share_page(token: str, request: Request) -> Response:
    ctx = _ctx(request)
    cookie = request.cookies.get(DEVICE_COOKIE)
    new_cookie = None
    language = "en"
    with Session(ctx.engine, expire_on_commit=False) as s:
        try:
            link = links.load_link(s, ctx.settings, token)
            language = links.link_language(s, link)
            links.check_device(link, cookie)
            if link.declined_at is not None or link.ended_at is not None:
                raise LinkError(LinkProblem.declined if link.declined_at else LinkProblem.ended)
            # Link-preview fetchers see the page but never take the link for themselves.
            if (not link.device_hash and request.method == "GET"
                    and not links.is_preview_agent(request.headers.get("user-agent", ""))):
                new_cookie = cookie or links.new_device_cookie()
                links.bind_device(s, link, new_cookie)
        except LinkError as exc:
            return closed_page(request, exc.problem, language)
    settings = ctx.settings
    response = request.app.state.templates.TemplateResponse(request, "share.html", {
        "state": _page_state(link), "token": token, "service": settings.service,
        "lang": language, "dir": texts.direction(language), "t": texts.page_texts(language),
        "script_texts": texts.script_texts(language), "clock": make_clock(settings.service.timezone),
        "consent_text": links.consent_text(settings, language), "scope": links.CONSENT_SCOPE,
        "expires_at": link.expires_at, "retention_days": settings.retention.media_days,
        "frame_interval_ms": settings.share.frame_interval_ms,
        "max_upload_mb": max(1, settings.share.max_upload_bytes // (1024 * 1024)),
    })
    if new_cookie and new_cookie != cookie:
        _set_device_cookie(request, response, link, new_cookie)
    return share_headers(response, request)


def _link_for_post(request: Request, s: Session, token: str) -> tuple[ShareLink, str | None]:
    """The link for a reporter POST: same origin, live, and this device's (binding it if unbound)."""
    if not same_origin(request.headers, request.url.netloc):
        raise LinkError(LinkProblem.invalid)
    ctx = _ctx(request)
    link = links.load_link(s, ctx.settings, token)
    cookie = request.cookies.get(DEVICE_COOKIE)
    links.check_device(link, cookie)
    fresh = None
    if not link.device_hash:
        fresh = cookie or links.new_device_cookie()
        links.bind_device(s, link, fresh)
    return link, fresh


@router.post("/s/{token}/consent")
def consent(token: str, request: Request, answer: str = Form(...)) -> Response:
    ctx = _ctx(request)
    language = "en"
    with Session(ctx.engine, expire_on_commit=False) as s:
        try:
            link, fresh = _link_for_post(request, s, token)
            language = links.link_language(s, link)
            if answer == "agree":
                links.record_consent(s, ctx.settings, link, request.headers.get("user-agent", ""))
            elif answer == "decline":
                links.record_decline(s, link)
            else:
                return share_headers(JSONResponse({"detail": "answer must be agree or decline"}, 422))
        except LinkError as exc:
            return closed_page(request, exc.problem, language)
    if answer == "decline":
        response = closed_page(request, LinkProblem.declined, language)
    else:
        publish_live(ctx, {"type": "share_update", "incident_id": link.incident_id, "link_id": link.id,
                           "kind": "consent"})
        response = RedirectResponse(f"/s/{token}", status_code=303)
    if fresh:
        _set_device_cookie(request, response, link, fresh)
    return share_headers(response)


def _link_taking_media(request: Request, token: str) -> tuple[ShareLink | None, Response | None]:
    """The link an upload is for, if it may take media now; else the refusal to answer with."""
    ctx = _ctx(request)
    with Session(ctx.engine, expire_on_commit=False) as s:
        try:
            link, _ = _link_for_post(request, s, token)
            links.check_open_for_sharing(link)
        except LinkError as exc:
            return None, JSONResponse({"detail": exc.problem.value}, api_status(exc.problem))
    return link, None


@router.post("/s/{token}/photo")
async def upload_photo(token: str, request: Request) -> Response:
    ctx = _ctx(request)
    # The link is checked before a byte of the body is read: a forged, used or unconsented link
    # costs no upload (the form is parsed here, not by a declared parameter, for that reason).
    _, refusal = await run_in_threadpool(_link_taking_media, request, token)
    if refusal is not None:
        refusal.headers["connection"] = "close"  # the unread body is not worth reading to reuse the line
        return share_headers(refusal)
    limit = ctx.settings.share.max_upload_bytes
    form = await request.form(max_files=1, max_fields=0)
    photo = form.get("photo")
    if not isinstance(photo, StarletteUploadFile):
        return share_headers(JSONResponse({"detail": "no photo in the upload"}, 422))
    data = await photo.read(limit + 1)
    if len(data) > limit:
        return share_headers(JSONResponse({"detail": f"photo larger than {limit // (1024 * 1024)} MB"}, 413))

    def store() -> Response:
        link, refusal = _link_taking_media(request, token)  # again: it may have ended meanwhile
        if refusal is not None:
            return refusal
        try:
            item = storage.store_photo(ctx.engine, ctx.settings, link, data)
        except storage.NotAnImage as exc:
            return JSONResponse({"detail": str(exc)}, 415)
        publish_live(ctx, {"type": "share_update", "incident_id": link.incident_id, "link_id": link.id,
                           "kind": "photo", "item_id": item.id})
        return JSONResponse({"ok": True, "item_id": item.id, "sha256": item.sha256, "size": item.size})

    return share_headers(await run_in_threadpool(store))


@router.post("/s/{token}/stop")
def stop(token: str, request: Request) -> Response:
    ctx = _ctx(request)
    with Session(ctx.engine, expire_on_commit=False) as s:
        try:
            link, _ = _link_for_post(request, s, token)
            language = links.link_language(s, link)
            changed = links.end_sharing(s, link)
        except LinkError as exc:
            if exc.problem in (LinkProblem.ended, LinkProblem.declined):
                return share_headers(JSONResponse({"ok": True, "state": exc.problem.value}))
            return share_headers(JSONResponse({"detail": exc.problem.value}, api_status(exc.problem)))
    if changed:
        publish_live(ctx, {"type": "share_update", "incident_id": link.incident_id, "link_id": link.id,
                           "kind": "stopped"})
    if "form" in request.headers.get("content-type", ""):
        return closed_page(request, LinkProblem.ended, language)
    return share_headers(JSONResponse({"ok": True, "state": "ended"}))
