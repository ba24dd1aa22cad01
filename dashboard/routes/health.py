"""Liveness, readiness (database, Redis, connectors) and Prometheus metrics."""
from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from dashboard.deps import Ctx
from connectors.health import read_health
from flows.metrics import refresh_gauges

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(ctx: Ctx) -> JSONResponse:
    checks: dict[str, dict] = {}
    try:
        with ctx.engine.connect() as c:
            c.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        ctx.redis.ping()
        checks["redis"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = {"ok": False, "error": type(exc).__name__}
    # Anyone may ask (no sign-in): a connector's error text can quote the request it failed on,
    # credentials in its query string included, so only its state and timing are shown here.
    connectors = [{k: v for k, v in row.items() if k != "last_error"}
                  for row in (read_health(ctx.redis) if checks["redis"]["ok"] else [])]
    ready = checks["database"]["ok"] and checks["redis"]["ok"]
    # A platform in outage degrades readiness information but not the service itself:
    # the rest of Flare keeps working and officers see which feed is down.
    body = {"ready": ready, "checks": checks, "connectors": connectors}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics")
def metrics(ctx: Ctx) -> Response:
    refresh_gauges(ctx)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
