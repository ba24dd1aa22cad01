"""Passwords (argon2), API tokens, sessions with idle timeout, CSRF, login throttling (roles and audit: models/access.py)."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from pathlib import Path

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


class LoginThrottle:
    """Failed sign-ins counted per account and per address in Redis (the `limits` library's
    moving windows, shared by every web process). Past a limit, sign-in is refused, even with the
    right password, until the window has room again; a success clears the account's count."""

    PER_USER = (parse("5/minute"), parse("20/hour"))
    PER_ADDRESS = (parse("20/minute"), parse("100/hour"))

    def __init__(self, redis_url: str) -> None:
        # `limits` names Redis over a unix socket redis+unix://; Flare's own URLs say unix://.
        uri = "redis+" + redis_url if redis_url.startswith("unix://") else redis_url
        self.limiter = MovingWindowRateLimiter(storage_from_string(uri))

    @staticmethod
    def _user(username: str) -> str:
        return username.strip().lower()[:150]

    def _keys(self, username: str, address: str) -> list[tuple[RateLimitItem, str, str]]:
        user = self._user(username)
        return ([(item, "login-user", user) for item in self.PER_USER]
                + [(item, "login-address", address) for item in self.PER_ADDRESS])

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until a sign-in may be tried again (0: it may be tried now)."""
        now = time.time()
        waits = [self.limiter.get_window_stats(item, scope, key).reset_time - now
                 for item, scope, key in self._keys(username, address)
                 if not self.limiter.test(item, scope, key)]
        return max(waits, default=0.0)

    def begin(self, username: str, address: str) -> float:
        """Count a sign-in attempt against its account before the password is checked, and say how
        long to wait (0: go ahead). Each count is one atomic check-and-add in Redis, so guesses sent
        in parallel cannot all pass the check before any of them is counted. A success then clears
        the account's count (`succeeded`); a failure adds to the address's (`failed_address`)."""
        wait = self.retry_after(username, address)
        if wait > 0:
            return wait
        user = self._user(username)
        if all(self.limiter.hit(item, "login-user", user) for item in self.PER_USER):
            return 0.0
        return max(self.retry_after(username, address), 1.0)

    def failed_address(self, address: str) -> None:
        for item in self.PER_ADDRESS:
            self.limiter.hit(item, "login-address", address)

    def failed(self, username: str, address: str) -> None:
        for item, scope, key in self._keys(username, address):
            self.limiter.hit(item, scope, key)

    def succeeded(self, username: str) -> None:
        for item in self.PER_USER:
            self.limiter.clear(item, "login-user", self._user(username))


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
