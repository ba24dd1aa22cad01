"""FastAPI app factory: `create_app(settings)`. Nothing happens at import time."""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from config import Settings
from dashboard import visible_text
from flows.context import AppContext, impatient_client
from dashboard.deps import OPENAPI_PATH, CurrentUser, LoginRequired
from dashboard.security import LoginThrottle, secret_key
from dashboard import degraded
from dashboard.sessions import ServerSessions, SessionCopies
from dashboard.share.ws import LinkRateLimits
from dashboard.routes import (
    admin,
    api,
    backlog,
    errors,
    evidence,
    feed,
    field,
    health,
    incidents,
    live,
    map,
    media,
    pages,
    supervisor,
    wall,
)
from dashboard.routes.common import login_redirect
from dashboard.share import routes as share
from dashboard.timefmt import make_clock

HERE = Path(__file__).parent


HSTS = b"max-age=31536000"


class SecurityHeaders:
    """Pure ASGI (not BaseHTTPMiddleware): live streams pass through without an extra task and
    memory stream per chunk, which dominated the cost of fanning events out to many viewers."""

    HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
               (b"referrer-policy", b"no-referrer")]

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        static = scope.get("path", "").startswith("/static/")
        # Served over HTTPS (directly, or behind the proxy that says so): browsers keep to HTTPS
        # for this host from then on, so a dispatcher's sign-in is never sent in clear on a
        # hostile network that strips the redirect.
        https = scope.get("scheme") == "https"

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.HEADERS if k not in present]
                if https and b"strict-transport-security" not in present:
                    extra.append((b"strict-transport-security", HSTS))
                # Pages and API answers carry reporters' words and places: no browser or proxy
                # keeps a copy. Only the vendored static assets may be cached.
                if b"cache-control" not in present and not static:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuses a request body over its limit before reading it: at once on a declared
    Content-Length, and by counting as it streams in otherwise (chunked uploads). Pure ASGI, so
    nothing upstream has buffered the body. `limit_for(path)` gives each path's limit."""

    def __init__(self, app, limit_for) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(send, limit)
            return
        seen = 0
        started = False

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send, limit)

    @staticmethod
    async def _refuse(send, limit: int) -> None:
        body = (b'{"detail":"Request body too large (limit %d bytes)."}' % limit)
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def body_limits(settings: Settings):
    """Each path's body limit: photo uploads through a share link, and everything else."""
    upload = settings.share.max_upload_bytes + 64 * 1024  # multipart framing around one photo
    default = settings.dashboard.max_body_bytes

    def limit_for(path: str) -> int:
        return upload if path.startswith("/s/") and path.endswith("/photo") else default

    return limit_for


def create_app(settings: Settings, ctx: AppContext | None = None) -> FastAPI:
    ctx = ctx or AppContext.build(settings)
    # No interactive docs: Swagger UI and ReDoc load scripts from a CDN, outside the CSP. The
    # description itself is served below, to signed-in users and API token holders only.
    app = FastAPI(title="Flare", version="0.1.0", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ctx = ctx
    app.state.login_throttle = LoginThrottle(ctx.redis_url)
    app.state.link_limits = LinkRateLimits(ctx.redis_url)
    app.state.settings = settings
    # Copies of credentials' last checks, what authorises the degraded queue while the database
    # refuses (dashboard/degraded.py); a Redis that does not answer costs a request half a second.
    app.state.session_copies = SessionCopies(impatient_client(ctx.redis, 0.5, hold_s=1.0))
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    # Everything a page outputs shows bidirectional controls and invisible characters as markers,
    # so a dispatcher sees the characters triage read (set before any template is compiled).
    app.state.templates.env.finalize = visible_text.finalize
    app.state.templates.env.globals["clock"] = make_clock(settings.service.timezone)
    app.state.templates.env.globals["service_tz"] = settings.service.timezone  # the browser's clocks too
    # Sessions live in the database; the cookie carries only a random id (revocable on sign-out).
    app.add_middleware(ServerSessions, engine=ctx.engine, secret=secret_key(settings),
                       https_only=settings.dashboard.public_base_url.startswith("https"),
                       copies=app.state.session_copies)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, exc: LoginRequired):
        return login_redirect(request)

    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, limit_for=body_limits(settings))  # outermost: before anything reads
    errors.install(app)
    degraded.install(app)
    for module in (health, api, backlog, pages, share, feed, incidents, media, map, field, supervisor, admin, live,
                   evidence, wall):
        app.include_router(module.router)

    @app.get(OPENAPI_PATH, include_in_schema=False)
    def openapi_description(user: CurrentUser) -> JSONResponse:
        return JSONResponse(app.openapi())

    return app
