"""Sign-in is throttled per account and per address: guessing stops, with a clear message."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import redis
from fastapi.testclient import TestClient

from dashboard.security import LoginThrottle
from tests.dashboard.conftest import PASSWORDS, csrf_from, wall_key


def _attempt(client: TestClient, username: str, password: str):
    token = csrf_from(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def _all_at_once(server: str, path: str, fields: list[dict]) -> list[int]:
    """Each form posted to `path` from its own client (with that client's CSRF token), all
    released at one instant; the status codes, in order."""
    clients = [httpx.Client(base_url=server, follow_redirects=False, timeout=60) for _ in fields]
    forms = [{**form, "csrf_token": csrf_from(c.get(path).text)} for form, c in zip(fields, clients, strict=True)]
    start = threading.Barrier(len(clients))

    def guess(n: int) -> int:
        start.wait()
        return clients[n].post(path, data=forms[n]).status_code

    try:
        with ThreadPoolExecutor(len(clients)) as pool:
            return list(pool.map(guess, range(len(clients))))
    finally:
        for c in clients:
            c.close()


def _passwords_at_once(server: str, guesses: list[tuple[str, str]]) -> list[int]:
    return _all_at_once(server, "/login", [{"username": user, "password": password} for user, password in guesses])


def _enter_wall(app, address: str, key: str) -> int:
    client = TestClient(app, follow_redirects=False, client=(address, 50000))
    return client.post("/wall/enter", data={"key": key, "csrf_token": csrf_from(client.get("/wall/enter").text)}).status_code


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


def test_guesses_sent_all_at_once_are_counted_before_any_password_is_checked(server, users):
    """Twenty wrong passwords for one account sent in parallel: no more are checked than the
    account's limit allows, however the requests interleave (the count is not read-then-written)."""
    codes = _passwords_at_once(server, [("dispatcher", f"guess-{n}") for n in range(20)])
    assert codes.count(401) <= 5 and codes.count(401) + codes.count(429) == len(codes), codes


def test_guesses_across_many_accounts_sent_at_once_stop_at_the_address_limit(server, users):
    """Thirty wrong passwords for thirty accounts from one address, sent in parallel: no more
    passwords are checked than the address's limit (20 a minute), however the requests interleave
    (attempts in flight count against the address, not only finished failures)."""
    codes = _passwords_at_once(server, [(f"nobody{n}", "guess") for n in range(30)])
    assert codes.count(401) <= 20 and codes.count(401) + codes.count(429) == len(codes), codes


def test_an_attempt_leaves_the_address_count_when_it_ends(app, users):
    """Successes are not charged to the address: a room signing in one after another is never
    locked out, and a finished attempt no longer counts as in flight."""
    throttle = app.state.login_throttle
    for n in range(30):
        attempt = throttle.begin(f"dispatcher{n}", "10.0.0.9")
        assert attempt.wait == 0
        throttle.succeeded(f"dispatcher{n}", "10.0.0.9", attempt)
    assert throttle.redis.zcard(throttle._in_flight_key("10.0.0.9")) == 0
    held = [throttle.begin(f"guesser{n}", "10.0.0.10") for n in range(20)]
    assert all(a.wait == 0 for a in held)
    assert throttle.begin("one-more", "10.0.0.10").wait > 0  # twenty in flight fill the window
    throttle.ended("10.0.0.10", held[0])
    assert throttle.begin("one-more", "10.0.0.10").wait == 0


def test_an_attempt_that_fails_on_our_side_leaves_the_address_count(app, users, monkeypatch):
    """A sign-in that fails because the database does (an error page, not a wrong password) is
    neither charged to the address nor left in flight: retries through an outage do not lock the
    address out for a minute after it."""
    from dashboard.routes import pages

    def refused(*args, **kwargs):
        raise RuntimeError("the database refused the connection")

    monkeypatch.setattr(pages, "authenticate", refused)
    client = TestClient(app, follow_redirects=False, raise_server_exceptions=False)
    for n in range(25):  # more than the address's 20 a minute, each account tried once
        assert _attempt(client, f"someone{n}", "a password").status_code == 500
    throttle = app.state.login_throttle
    assert throttle.redis.zcard(throttle._in_flight_key("testclient")) == 0
    monkeypatch.undo()
    assert _attempt(client, "nobody", "guess").status_code == 401  # the address may still sign in


def test_sign_in_says_it_is_unavailable_while_its_throttle_store_does_not_answer(app, users):
    """Never let through uncounted: with the throttle's Redis refusing, a sign-in (even with the
    right password) is refused with a page that says what is wrong and what to do."""
    answering = app.state.login_throttle
    app.state.login_throttle = LoginThrottle("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        client = TestClient(app, follow_redirects=False)
        refused = _attempt(client, "dispatcher", PASSWORDS["dispatcher"])
        assert refused.status_code == 503
        assert "Sign-in is unavailable for a moment" in refused.text and "Try again in a few seconds" in refused.text
    finally:
        app.state.login_throttle = answering
    assert _attempt(TestClient(app, follow_redirects=False), "dispatcher", PASSWORDS["dispatcher"]).status_code == 303


def test_the_throttle_gives_up_on_a_silent_redis_in_seconds():
    throttle = LoginThrottle("redis://127.0.0.1:6379/0")
    options = throttle.redis.connection_pool.connection_kwargs
    assert options["socket_timeout"] == options["socket_connect_timeout"] == LoginThrottle.REDIS_TIMEOUT_SECONDS
    storage_options = throttle.limiter.storage.storage.connection_pool.connection_kwargs
    assert storage_options["socket_timeout"] == LoginThrottle.REDIS_TIMEOUT_SECONDS


def test_wall_keys_guessed_at_once_stop_at_the_address_limit(server, users):
    """Thirty wrong wall keys from one address sent in parallel: no more keys are checked than
    the address's limit (20 a minute), however the requests interleave (attempts in flight count,
    not only finished failures)."""
    codes = _all_at_once(server, "/wall/enter", [{"key": f"guess-{n}-" + "x" * 40} for n in range(30)])
    assert codes.count(401) <= 20 and codes.count(401) + codes.count(429) == len(codes), codes


def test_wrong_wall_keys_from_one_address_lock_out_no_wall_elsewhere(app, users):
    """Guessing is charged to the guesser's address alone: a wall at another address still signs
    in with its key (wrong keys used to count against every wall at once, five a minute)."""
    for _ in range(20):
        assert _enter_wall(app, "203.0.113.7", "not-a-key") == 401
    assert _enter_wall(app, "203.0.113.7", "not-a-key") == 429
    key = wall_key(app)
    assert _enter_wall(app, "203.0.113.7", key) == 429  # the guessing address waits, even with a key
    assert _enter_wall(app, "198.51.100.20", key) == 303
    throttle = app.state.login_throttle
    assert throttle.redis.zcard(throttle._in_flight_key("198.51.100.20")) == 0  # the success left no ticket


def test_wall_sign_in_says_it_is_unavailable_while_its_throttle_store_does_not_answer(app, users, monkeypatch):
    def refuse(address):
        raise redis.ConnectionError("refused")

    monkeypatch.setattr(app.state.login_throttle, "begin_address", refuse)
    r = TestClient(app, follow_redirects=False)
    page = r.post("/wall/enter", data={"key": wall_key(app), "csrf_token": csrf_from(r.get("/wall/enter").text)})
    assert page.status_code == 503 and "unavailable for a moment" in page.text
    assert r.get("/wall").status_code == 303  # not signed in
