"""The sandbox web app: three imitated platforms, a page for playing the public, JSON helpers."""
from __future__ import annotations

import html
import threading
import time
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from connectors.sandbox import bluesky_api, reddit_api, x_api
from connectors.sandbox.middleware import FaultMiddleware
from connectors.sandbox.scenario import ScenarioEntry, parse_scenario, play_scenario
from connectors.sandbox.state import PLATFORMS, Item, SandboxState


def _optional_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def _create_item(state: SandboxState, data: dict[str, Any]) -> Item:
    platform = str(data.get("platform", ""))
    text = data.get("text")
    if platform not in PLATFORMS or not isinstance(text, str) or not text.strip():
        raise ValueError("platform (x, bluesky, reddit) and non-empty text are required")
    return state.add_post(
        platform, text, str(data.get("author") or "member_of_public"),
        is_dm=bool(data.get("is_dm", False)), lat=_optional_float(data.get("lat")),
        lon=_optional_float(data.get("lon")), place_only=bool(data.get("place_only", False)),
        malformed=bool(data.get("malformed", False)), dms_closed=bool(data.get("dms_closed", False)),
        author_location=str(data.get("author_location") or ""), subreddit=str(data.get("subreddit") or ""),
    )


def create_sandbox_app(state: SandboxState) -> FastAPI:
    app = FastAPI(title="Flare platform sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(x_api.build_router(state))
    app.include_router(bluesky_api.build_router(state))
    app.include_router(reddit_api.build_router(state))
    app.add_middleware(FaultMiddleware, state=state)
    app.state.sandbox = state

    @app.post("/_sandbox/post")
    async def sandbox_post(request: Request) -> JSONResponse:
        try:
            item = _create_item(state, await request.json())
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(asdict(item), status_code=201)

    @app.get("/_sandbox/items")
    async def sandbox_items() -> JSONResponse:
        with state.lock:
            return JSONResponse([asdict(i) for i in state.items])

    @app.get("/_sandbox/outbox")
    async def sandbox_outbox() -> JSONResponse:
        return JSONResponse(state.outbox_json())

    @app.get("/_sandbox/faults")
    async def get_faults() -> JSONResponse:
        with state.lock:
            return JSONResponse({p: c.as_json() for p, c in state.faults.items()})

    @app.post("/_sandbox/faults")
    async def set_faults(request: Request) -> JSONResponse:
        """Body: {"x": {...FaultConfig fields...}, "reddit": {...}}; a platform left out is unchanged."""
        body = await request.json()
        try:
            for platform, settings in body.items():
                if platform not in PLATFORMS:
                    raise ValueError(f"unknown platform {platform!r}")
                state.set_faults(platform, settings or {})
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return await get_faults()

    @app.post("/_sandbox/scenario")
    async def scenario(request: Request) -> JSONResponse:
        try:
            entries = parse_scenario((await request.body()).decode("utf-8"))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        speed = float(request.query_params.get("speed", "1"))
        play_scenario(state, entries, speed=speed)
        return JSONResponse({"scheduled": len(entries)}, status_code=202)

    @app.post("/_sandbox/form")
    async def form_post(request: Request):
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8")).items()}
        form["is_dm"] = form.get("is_dm") == "on"
        try:
            _create_item(state, form)
        except (ValueError, TypeError) as exc:
            return HTMLResponse(f"<p>{html.escape(str(exc))}</p><a href='/'>back</a>", status_code=400)
        return RedirectResponse("/", status_code=303)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(render_page(state))

    return app


def render_page(state: SandboxState) -> str:
    """Everything shown is escaped: posts are arbitrary text from anyone."""
    e = html.escape
    with state.lock:
        posted = list(reversed(state.items[-50:]))
        sent = list(reversed(state.outbox[-50:]))
    posted_rows = "".join(
        f"<tr><td>{e(i.platform)}</td><td>{'DM' if i.is_dm else 'post'}</td><td>{e(i.author)}</td>"
        f"<td>{e(i.text)}</td><td><code>{e(i.external_id)}</code></td></tr>" for i in posted)
    sent_rows = "".join(
        f"<tr><td>{e(s.platform)}</td><td>{e(s.kind)}</td><td>{e(s.in_reply_to or s.recipient)}</td>"
        f"<td>{e(s.text)}</td></tr>" for s in sent)
    options = "".join(f"<option>{p}</option>" for p in PLATFORMS)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Flare sandbox</title><style>body{{font-family:sans-serif;max-width:70em;margin:1em auto}}
td,th{{border-bottom:1px solid #ddd;padding:.3em;text-align:left;vertical-align:top}}</style></head><body>
<h1>Flare platform sandbox</h1>
<p>Post to <strong>@{e(state.handle)}</strong> as a member of the public. Nothing leaves this machine.</p>
<form method="post" action="/_sandbox/form">
<label>Platform <select name="platform">{options}</select></label>
<label>Your name <input name="author" value="member_of_public" required></label><br>
<label>Message <textarea name="text" rows="3" cols="60" required></textarea></label><br>
<label><input type="checkbox" name="is_dm"> private message (DM)</label>
<label>lat <input name="lat" size="8"></label> <label>lon <input name="lon" size="8"></label> (X only)
<button type="submit">Send</button></form>
<h2>What Flare sent back</h2><table><tr><th>platform</th><th>kind</th><th>to</th><th>text</th></tr>{sent_rows}</table>
<h2>What the public posted</h2>
<table><tr><th>platform</th><th>kind</th><th>author</th><th>text</th><th>id</th></tr>{posted_rows}</table>
</body></html>"""


class SandboxServer:
    """A uvicorn server in a background thread (tests, bench, `flare demo`)."""

    def __init__(self, state: SandboxState, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(create_sandbox_app(state), host=host, port=port, log_level="warning",
                                access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="sandbox-http", daemon=True)
        self.state = state

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; returns the base URL (the real port when 0 was asked for)."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("sandbox server did not start")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def run_sandbox(
    host: str = "127.0.0.1",
    port: int = 8765,
    state: SandboxState | None = None,
    *,
    scenario: list[ScenarioEntry] | None = None,
    speed: float = 1.0,
) -> None:
    """Serve the sandbox in the foreground until interrupted (`flare sandbox`, `flare demo`).

    With `scenario`, its posts start arriving (at their offsets / `speed`) as the server starts.
    """
    state = state or SandboxState()
    if scenario:
        play_scenario(state, scenario, speed=speed)
    uvicorn.run(create_sandbox_app(state), host=host, port=port, log_level="info")
