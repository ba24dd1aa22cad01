"""deploy/compose.yaml cannot be run here (no container engine): check it parses and agrees with
the CLI and with docs/production.md."""
from __future__ import annotations

from pathlib import Path

import yaml
from typer.main import get_command

from runtime.cli import app

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _cli_commands() -> dict:
    return get_command(app).commands  # name → click command (groups included)


def test_compose_has_the_production_layout():
    services = _compose()["services"]
    assert {"postgres", "redis", "flare-migrate", "flare-web", "flare-worker", "flare-connectors",
            "proxy"} <= services.keys()
    redis_cmd = services["redis"]["command"]
    assert "--appendonly" in redis_cmd and redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"
    assert services["flare-web"]["deploy"]["replicas"] >= 2
    assert services["flare-worker"]["deploy"]["replicas"] >= 2
    assert services["flare-connectors"]["deploy"]["replicas"] == 1
    assert services["flare-migrate"]["restart"] == "no"
    for name in ("flare-web", "flare-worker", "flare-connectors"):
        needs = services[name]["depends_on"]
        assert needs["flare-migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["FLARE_REDIS_URL"].startswith("redis://redis:")
        assert services[name]["environment"]["FLARE_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_compose_commands_exist_in_the_cli():
    commands = _cli_commands()
    services = _compose()["services"]
    for name in ("flare-migrate", "flare-web", "flare-worker", "flare-connectors"):
        args = services[name]["command"]
        command = commands[args[0]]
        if len(args) > 1 and hasattr(command, "commands"):  # a group: `flare db upgrade`
            assert args[1] in command.commands, f"{name}: flare {args[0]} has no {args[1]}"
            command, args = command.commands[args[1]], args[1:]
        options = {opt for p in command.params for opt in getattr(p, "opts", [])}
        for arg in args[1:]:
            if arg.startswith("--"):
                assert arg in options, f"{name}: flare {args[0]} has no option {arg}"


def test_proxy_config_points_at_the_web_service():
    services = _compose()["services"]
    mounts = " ".join(services["proxy"]["volumes"])
    assert "./Caddyfile" in mounts
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    port = services["flare-web"]["command"][services["flare-web"]["command"].index("--port") + 1]
    assert f"flare-web:{port}" in caddyfile
    assert "/healthz" in caddyfile


def test_production_doc_names_the_same_commands():
    doc = (ROOT / "docs" / "production.md").read_text()
    for command in ("flare web", "flare worker", "flare connectors", "flare db upgrade", "appendonly"):
        assert command in doc
