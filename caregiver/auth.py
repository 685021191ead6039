"""Caregiver accounts, sessions, CSRF tokens and the login rate limit.

* Passwords are hashed with Argon2id (``argon2-cffi``'s defaults); a login for an
  unknown user still runs one verification so timing does not reveal names.
* A session is a random 256-bit token in an HttpOnly, SameSite=Lax cookie; the
  database keeps only its SHA-256, so a copied database holds no usable session.
* Each session has its own CSRF token, required on every state-changing request
  (form field ``csrf`` or header ``X-CSRF-Token``); the login form uses a
  double-submit cookie since there is no session yet.
* Failed logins are limited per user name and per client address (sliding window).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from caregiver.storage import LoginSession, Store

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_username(username: str) -> str | None:
    if not 1 <= len(username) <= 64 or not username.isprintable() or username != username.strip():
        return "user names are 1-64 printable characters without leading or trailing spaces"
    return None


def check_password(password: str) -> str | None:
    if len(password) < 10:
        return "use at least 10 characters"
    return None


Session = LoginSession
"""A caregiver's login: ``username`` and the session's ``csrf`` token."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def add_user(self, username: str, password: str) -> None:
        problem = check_username(username) or check_password(password)
        if problem:
            raise ValueError(problem)
        self.store.add_user(username, hash_password(password), self.clock())

    def verify(self, username: str, password: str) -> bool:
        stored = self.store.password_hash(username)
        try:
            _hasher.verify(stored or _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return stored is not None

    def create_session(self, username: str, hours: float) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self.clock()
        self.store.start_login_session(_digest(token), username, csrf, now + hours * 3600.0, now)
        return token, Session(username, csrf)

    def session(self, token: str | None) -> Session | None:
        if not token:
            return None
        return self.store.login_session(_digest(token), self.clock())

    def end_session(self, token: str | None) -> None:
        if token:
            self.store.end_login_session(_digest(token))


def same_token(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


class LoginLimiter:
    """At most ``attempts`` failures per key within ``window_s``; then refuse until they age out."""

    def __init__(
        self, attempts: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        cutoff = self.clock() - self.window_s
        while q and q[0] < cutoff:
            q.popleft()
        return q

    def blocked(self, *keys: str) -> bool:
        return any(len(self._recent(k)) >= self.attempts for k in keys)

    def failed(self, *keys: str) -> None:
        for key in keys:
            self._recent(key).append(self.clock())
        if len(self._failures) > 10000:  # bound memory against a spray of names
            for key in [k for k, q in self._failures.items() if not q]:
                del self._failures[key]

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
