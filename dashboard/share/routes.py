"""Every share route in one router, so the app factory includes the feature with one line."""
from __future__ import annotations

from fastapi import APIRouter

from dashboard.share import dispatch, reporter, ws

router = APIRouter()
for part in (reporter.router, ws.router, dispatch.router, dispatch.api_router):
    router.include_router(part)
