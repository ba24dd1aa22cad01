"""What the web server refuses before the app sees it, and what every HTTPS answer tells browsers."""
from __future__ import annotations

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from config import Settings
from dashboard.app import SecurityHeaders
from runtime.cli import web_server_options


def test_a_websocket_message_is_bounded_by_the_largest_live_frame_not_uvicorns_16_mib():
    settings = Settings()
    limit = web_server_options(settings)["ws_max_size"]
    assert settings.share.max_frame_bytes < limit <= settings.share.max_frame_bytes + 64 * 1024
    assert limit < 16 * 1024 * 1024


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/")
    def root() -> dict:
        return {}

    app.add_middleware(SecurityHeaders)
    return app


def test_https_answers_ask_browsers_to_stay_on_https_plain_http_ones_do_not():
    secure = TestClient(_app(), base_url="https://flare.example").get("/")
    assert secure.headers["strict-transport-security"].startswith("max-age=")
    assert int(secure.headers["strict-transport-security"].split("=")[1]) >= 180 * 86400
    plain = TestClient(_app(), base_url="http://flare.example").get("/")
    assert "strict-transport-security" not in plain.headers


def test_uvicorn_takes_the_options_as_they_are():
    config = uvicorn.Config(app=_app(), **web_server_options(Settings()))
    assert config.ws_max_size == web_server_options(Settings())["ws_max_size"]
