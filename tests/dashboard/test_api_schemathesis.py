"""Property-based API test (schemathesis) against /openapi.json with every role's API token: no
5xx and no status code the description does not document, on every JSON API operation.

Bounded in time: a fixed number of generated requests per operation and role, and a deadline for
the whole run (it runs in the normal test command)."""
from __future__ import annotations

import time

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as run_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance
from sqlmodel import Session

from dashboard.app import create_app
from dashboard.security import create_user
from models import GeoPoint
from models.enums import Role
from tests.dashboard.conftest import drain, ingest, raw_post

EXAMPLES_PER_OPERATION = 10
TIME_BUDGET_S = 60.0


@pytest.fixture
def tokens(ctx) -> dict[str, str]:
    out = {}
    with Session(ctx.engine) as s:
        for role in Role:
            _, out[role.value] = create_user(s, f"st-{role.value}", f"pw-{role.value}-schemathesis", role.value)
        s.commit()
    return out


@pytest.fixture
def world(ctx):
    ingest(ctx, [raw_post("s1", "help my dad collapsed not breathing 12 High St", geo=GeoPoint(51.5, -0.12)),
                 raw_post("s2", "house fire people trapped", author="u2", geo=GeoPoint(51.51, -0.13))])
    drain(ctx)


def exercise(operation, auth: dict, role: str, failures: list[str]) -> None:
    @run_settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case):
        response = case.call(headers=auth)
        try:
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance])
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected, reported together at the end
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            failures.append(f"{role} {operation.method.upper()} {operation.path}: {response.status_code} {first}")

    run()


@pytest.mark.timeout(180)
def test_the_json_api_answers_only_documented_statuses_and_never_5xx(settings, ctx, tokens, world):
    app = create_app(settings, ctx)
    started = time.monotonic()
    failures: list[str] = []
    ran = 0
    # A wall display's account opens the wall only: its token is no API credential at all.
    wall = TestClient(app).get("/openapi.json", headers={"Authorization": f"Bearer {tokens.pop(Role.wall.value)}"})
    assert wall.status_code == 401
    for role, token in tokens.items():
        auth = {"Authorization": f"Bearer {token}"}
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=auth)
        for result in schema.get_all_operations():
            operation = result.ok()
            if not operation.path.startswith("/api/"):
                continue

            exercise(operation, auth, role, failures)
            ran += 1
    elapsed = time.monotonic() - started
    assert ran >= len(tokens) * 15, ran  # every API role against every JSON API operation
    assert failures == [], "\n".join(sorted(set(failures)))
    assert elapsed < TIME_BUDGET_S, f"schemathesis run took {elapsed:.1f} s"
