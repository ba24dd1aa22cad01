"""Passwords (argon2), API tokens, sessions with idle timeout, CSRF, login throttling (roles and audit: models/access.py)."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlmodel import Session, select

from config import Settings
from models.db import private_dir
from models.enums import Role
from models.tables import User

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 12

def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, username: str, password: str, role: str,
                display_name: str = "") -> tuple[User, str]:
    """Create a user and return it with a fresh API bearer token (shown once, stored hashed)."""
    Role(role)  # validate
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    token = secrets.token_urlsafe(32)
    user = User(username=username, display_name=display_name or username, role=role,
                password_hash=hash_password(password), api_token_hash=token_digest(token))
    session.add(user)
    session.flush()
    return user, token


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.exec(select(User).where(User.username == username, User.active == True)).first()  # noqa: E712
    if user is None:
        _hasher.hash(password)  # same cost whether or not the user exists
        return None
    return user if verify_password(user.password_hash, password) else None


@dataclass(frozen=True)
class SignInAttempt:
    """What `LoginThrottle.begin` answers: how long to wait (0: go ahead) and, when it may go
    ahead, the attempt's place among those in flight from its address (released at its end)."""

    wait: float
    ticket: str = ""


class LoginThrottle:
    """Failed sign-ins counted per account and per address in Redis (the `limits` library's
    moving windows, shared by every web process). Past a limit, sign-in is refused, even with the
    right password, until the window has room again; a success clears the account's count.

    An address is charged only for failures, so a control room signing in together behind one
    address is not locked out at a change of shift. Its attempts still in flight are counted too
    (a sorted set of tickets, one per attempt, added atomically before the password is checked),
    so guesses sent in parallel across many accounts cannot all pass before any has failed: an
    attempt goes ahead only if the address's failures in the window plus its attempts in flight,
    itself included, stay within the limit."""

    PER_USER = (parse("5/minute"), parse("20/hour"))
    PER_ADDRESS = (parse("20/minute"), parse("100/hour"))
    IN_FLIGHT_SECONDS = 60  # a ticket whose request died without releasing it stops counting
    # A Redis that does not answer fails a sign-in in seconds (the page says to try again), not
    # after the clients' default of waiting for ever.
    REDIS_TIMEOUT_SECONDS = 3.0

    def __init__(self, redis_url: str) -> None:
        # `limits` names Redis over a unix socket redis+unix://; Flare's own URLs say unix://.
        uri = "redis+" + redis_url if redis_url.startswith("unix://") else redis_url
        timeouts = {"socket_timeout": self.REDIS_TIMEOUT_SECONDS, "socket_connect_timeout": self.REDIS_TIMEOUT_SECONDS}
        self.limiter = MovingWindowRateLimiter(storage_from_string(uri, **timeouts))
        self.redis = redis.Redis.from_url(redis_url, **timeouts)

    @staticmethod
    def _user(username: str) -> str:
        return username.strip().lower()[:150]

    @staticmethod
    def _in_flight_key(address: str) -> str:
        return f"flare:login-in-flight:{address}"

    def _keys(self, username: str, address: str) -> list[tuple[RateLimitItem, str, str]]:
        user = self._user(username)
        return ([(item, "login-user", user) for item in self.PER_USER]
                + [(item, "login-address", address) for item in self.PER_ADDRESS])

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until a sign-in may be tried again (0: it may be tried now)."""
        return self._wait(self._keys(username, address))

    def address_retry_after(self, address: str) -> float:
        """Seconds until a sign-in naming no account (a wall key) may be tried from this address."""
        return self._wait([(item, "login-address", address) for item in self.PER_ADDRESS])

    def _wait(self, keys: list[tuple[RateLimitItem, str, str]]) -> float:
        now = time.time()
        waits = [self.limiter.get_window_stats(item, scope, key).reset_time - now
                 for item, scope, key in keys if not self.limiter.test(item, scope, key)]
        return max(waits, default=0.0)

    def _take_ticket(self, address: str) -> tuple[str, int]:
        """Add this attempt to the address's attempts in flight; (its ticket, how many are in flight)."""
        ticket, now = secrets.token_hex(8), time.time()
        key = self._in_flight_key(address)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now - self.IN_FLIGHT_SECONDS)
            pipe.zadd(key, {ticket: now})
            pipe.zcard(key)
            pipe.expire(key, self.IN_FLIGHT_SECONDS)
            _, _, in_flight, _ = pipe.execute()
        return ticket, int(in_flight)

    def _release(self, address: str, ticket: str) -> None:
        if ticket:
            self.redis.zrem(self._in_flight_key(address), ticket)

    def ended(self, address: str, attempt: SignInAttempt) -> None:
        """The attempt ended neither as a success nor as a wrong password (a refused role)."""
        self._release(address, attempt.ticket)

    def begin(self, username: str, address: str) -> SignInAttempt:
        """Count a sign-in attempt before the password is checked, and say how long to wait (0: go
        ahead). The account's count is one atomic check-and-add in Redis; the address's is its
        failures plus its attempts in flight (the class docstring). The attempt then ends with
        `succeeded` (clears the account's count) or `failed_address` (adds to the address's)."""
        wait = self.retry_after(username, address)
        if wait > 0:
            return SignInAttempt(wait)
        user = self._user(username)
        if not all(self.limiter.hit(item, "login-user", user) for item in self.PER_USER):
            return SignInAttempt(max(self.retry_after(username, address), 1.0))
        return self._admit(address, lambda: self.retry_after(username, address))

    def begin_address(self, address: str) -> SignInAttempt:
        """`begin` for a sign-in that names no account (a wall key): counted against its address
        alone, its failures plus its attempts in flight, so keys guessed in parallel cannot all be
        checked before any has failed, and guesses from one address never lock out a wall
        signing in from another. It ends with `failed_address` or `ended`."""
        wait = self.address_retry_after(address)
        if wait > 0:
            return SignInAttempt(wait)
        return self._admit(address, lambda: self.address_retry_after(address))

    def _admit(self, address: str, wait: Callable[[], float]) -> SignInAttempt:
        """Take the attempt's ticket; give it back and say how long to wait if the address's
        failures in a window plus its attempts in flight, this one included, pass the limit."""
        ticket, in_flight = self._take_ticket(address)
        for item in self.PER_ADDRESS:
            failures = item.amount - self.limiter.get_window_stats(item, "login-address", address).remaining
            if failures + in_flight > item.amount:
                self._release(address, ticket)
                return SignInAttempt(max(wait(), 1.0))
        return SignInAttempt(0.0, ticket)

    def failed_address(self, address: str, attempt: SignInAttempt) -> None:
        """A wrong password: the address is charged, then the attempt leaves the in-flight set
        (in that order, so it is never counted in neither)."""
        for item in self.PER_ADDRESS:
            self.limiter.hit(item, "login-address", address)
        self._release(address, attempt.ticket)

    def succeeded(self, username: str, address: str, attempt: SignInAttempt) -> None:
        for item in self.PER_USER:
            self.limiter.clear(item, "login-user", self._user(username))
        self._release(address, attempt.ticket)


def user_for_token(session: Session, token: str) -> User | None:
    digest = token_digest(token)
    user = session.exec(select(User).where(User.api_token_hash == digest, User.active == True)).first()  # noqa: E712
    if user and hmac.compare_digest(user.api_token_hash, digest):
        return user
    return None


def secret_key(settings: Settings) -> str:
    """The signing key for share links and signed-out sessions: configured, or generated once into the data dir."""
    configured = settings.dashboard.secret_key.get_secret_value()
    if configured:
        return configured
    path = private_dir(Path(settings.data_dir)) / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def session_expired(last_seen: float | None, idle_minutes: int, now: float | None = None) -> bool:
    if last_seen is None:
        return True
    return (now or time.time()) - last_seen > idle_minutes * 60
