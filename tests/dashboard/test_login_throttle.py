"""Sign-in is throttled per account and per address: guessing stops, with a clear message."""
from __future__ import annotations

from fastapi.testclient import TestClient

from tests.dashboard.conftest import PASSWORDS, csrf_from


def _attempt(client: TestClient, username: str, password: str):
    token = csrf_from(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def test_wrong_passwords_lock_the_account_even_against_the_right_one(app, users):
    client = TestClient(app, follow_redirects=False)
    for _ in range(5):
        assert _attempt(client, "dispatcher", "guess").status_code == 401
    refused = _attempt(client, "dispatcher", PASSWORDS["dispatcher"])
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.text and "Try again in 1 minute" in refused.text
    # Another account is not locked by someone guessing this one's password.
    assert _attempt(client, "officer", PASSWORDS["officer"]).status_code == 303


def test_a_success_clears_the_account_count(app, users):
    client = TestClient(app, follow_redirects=False)
    for _ in range(4):
        assert _attempt(client, "officer", "guess").status_code == 401
    assert _attempt(client, "officer", PASSWORDS["officer"]).status_code == 303
    other = TestClient(app, follow_redirects=False)
    for _ in range(4):
        assert _attempt(other, "officer", "guess").status_code == 401
    assert _attempt(other, "officer", PASSWORDS["officer"]).status_code == 303


def test_one_address_guessing_many_accounts_is_stopped(app, users):
    client = TestClient(app, follow_redirects=False)
    for n in range(20):
        assert _attempt(client, f"nobody{n}", "guess").status_code == 401
    assert _attempt(client, "supervisor", PASSWORDS["supervisor"]).status_code == 429
