"""Behind the proxy in deploy/, each caller keeps their own address: sign-in throttling counts
failures per address, and with every request seeming to come from the proxy one person's twenty
wrong passwords would lock every dispatcher of the service out of signing in."""
from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"


def _services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_the_dashboard_trusts_the_proxys_forwarded_address():
    web = _services()["flare-web"]
    # uvicorn reads FORWARDED_ALLOW_IPS; its default (127.0.0.1) is not the proxy's container.
    assert web["environment"].get("FORWARDED_ALLOW_IPS")
    # ... and still gets every setting the other Flare processes get.
    assert {"FLARE_DATABASE_URL", "FLARE_REDIS_URL", "FLARE_DATA_DIR"} <= set(web["environment"])


def test_only_the_proxy_can_reach_the_dashboard_so_no_one_else_can_forge_an_address():
    services = _services()
    assert "ports" not in services["flare-web"]  # reachable inside the compose network only
    assert "flare-web:8000" in (COMPOSE.parent / "Caddyfile").read_text()
