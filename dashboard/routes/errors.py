"""Errors a person meets in the browser: a readable page instead of a JSON body.

API clients, the dashboard's own fetch calls and anything not asking for HTML keep FastAPI's
JSON answer, so scripts and tests see exactly what they saw before.
"""
from __future__ import annotations

import redis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException

from dashboard.routes.common import home_for, render, wants_json

TITLES = {401: "Please sign in", 403: "Not available to your role", 404: "Not found"}


def wants_page(request: Request) -> bool:
    return (request.method == "GET" and not request.url.path.startswith("/api/") and not wants_json(request)
            and "text/html" in request.headers.get("accept", ""))


REDIS_DOWN = ("The live queue store (Redis) cannot be reached, so this view is unavailable for now. "
              "Nothing is lost: incidents and acknowledgements are in the database, and the queue "
              "catches up as soon as Redis is back. Retry in a few seconds.")


def install(app: FastAPI) -> None:
    @app.exception_handler(redis.ConnectionError)
    @app.exception_handler(redis.TimeoutError)
    async def _redis_down(request: Request, exc: redis.RedisError):
        # A read that needs Redis (the dispatch queue, live counters) during an outage: a clear
        # 503 that tells the dispatcher what still works, not a 500.
        if wants_page(request):
            response = _page(request, 503, "Temporarily unavailable", REDIS_DOWN)
            response.headers["retry-after"] = "5"
            return response
        return JSONResponse({"detail": REDIS_DOWN}, status_code=503, headers={"retry-after": "5"})

    @app.exception_handler(StarletteHTTPException)
    async def _readable(request: Request, exc: StarletteHTTPException):
        if exc.status_code not in TITLES or not wants_page(request):
            return await http_exception_handler(request, exc)
        return _page(request, exc.status_code, TITLES[exc.status_code], str(exc.detail))


def _page(request: Request, status_code: int, title: str, detail: str):
    user = None
    ctx = request.app.state.ctx
    user_id = request.session.get("user_id")
    if user_id is not None:
        from sqlmodel import Session

        from models.tables import User

        with Session(ctx.engine) as db:
            user = db.get(User, user_id)
    return render(request, "error.html", user=user, status_code=status_code, title=title, detail=detail,
                  home=home_for(user.role) if user else "/login")
