"""Share links are built from the address the dashboard is really served on, or the configured
public URL (never from a settings port the server is not on, nor a 0.0.0.0 bind)."""
from __future__ import annotations

from config import Settings
from dashboard.share.links import link_url, public_base


def _settings(public: str = "", host: str = "0.0.0.0", port: int = 8000) -> Settings:
    s = Settings()
    s.dashboard.public_base_url, s.dashboard.host, s.dashboard.port = public, host, port
    return s


def test_the_address_the_request_reached_wins_over_the_settings_port():
    assert link_url(_settings(), "tok", "http://127.0.0.1:8100/") == "http://127.0.0.1:8100/s/tok"


def test_a_configured_public_url_wins_over_everything():
    settings = _settings(public="https://flare.example.org/")
    assert public_base(settings, "http://10.0.0.5:8100/") == "https://flare.example.org"


def test_without_a_request_the_settings_address_is_used():
    assert public_base(_settings(host="127.0.0.1", port=8100)) == "http://127.0.0.1:8100"
