"""Errors a person meets in the browser: a readable page instead of a JSON body.

API clients, the dashboard's own fetch calls and anything not asking for HTML keep FastAPI's
JSON answer, so scripts and tests see exactly what they saw before.
"""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException

from dashboard.routes.common import home_for, render, wants_json

TITLES = {401: "Please sign in", 403: "Not available to your role", 404: "Not found"}


def wants_page(request: Request) -> bool:
    return (request.method == "GET" and not request.url.path.startswith("/api/") and not wants_json(request)
            and "text/html" in request.headers.get("accept", ""))


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _readable(request: Request, exc: StarletteHTTPException):
        if exc.status_code not in TITLES or not wants_page(request):
            return await http_exception_handler(request, exc)
        user = None
        ctx = request.app.state.ctx
        user_id = request.session.get("user_id")
        if user_id is not None:
            from sqlmodel import Session

            from models.tables import User

            with Session(ctx.engine) as db:
                user = db.get(User, user_id)
        return render(request, "error.html", user=user, status_code=exc.status_code,
                      title=TITLES[exc.status_code], detail=str(exc.detail),
                      home=home_for(user.role) if user else "/login")
