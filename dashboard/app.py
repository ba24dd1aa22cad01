"""FastAPI app factory: `create_app(settings)`. Nothing happens at import time."""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from config import Settings
from dashboard.context import AppContext
from dashboard.deps import LoginRequired
from dashboard.security import secret_key

HERE = Path(__file__).parent


def create_app(settings: Settings, ctx: AppContext | None = None) -> FastAPI:
    ctx = ctx or AppContext.build(settings)
    app = FastAPI(title="Flare", version="0.1.0", docs_url="/docs", openapi_url="/openapi.json")
    app.state.ctx = ctx
    app.state.settings = settings
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.add_middleware(
        SessionMiddleware, secret_key=secret_key(settings), session_cookie="flare_session",
        same_site="strict", https_only=settings.dashboard.public_base_url.startswith("https"),
        max_age=12 * 3600,
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, exc: LoginRequired):
        return RedirectResponse("/login", status_code=303)

    @app.middleware("http")
    async def _security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    from dashboard.routes import admin, api, evidence, feed, field, health, incidents, live, map, media, pages, supervisor
    from dashboard.share import routes as share

    for module in (health, api, pages, share, feed, incidents, media, map, field, supervisor, admin, live, evidence):
        app.include_router(module.router)
    return app
