"""Caregiver accounts, sessions, CSRF tokens and the login rate limit.

* Passwords are hashed with Argon2id at the lowest-memory of OWASP's equally
  strong minimum configurations (7 MiB, 5 passes, 1 lane; the others trade
  memory for passes, e.g. 19 MiB and 2): argon2-cffi's default (64 MiB, 4 lanes)
  made every login touch 64 MiB, more than the whole service otherwise holds,
  and on a Pi memory, not time, is what is short. A password hashed with other
  parameters (an older release's) is re-hashed at its next login. At most
  :data:`HASHES_AT_ONCE` hashes run at once (a burst of logins queues instead of
  taking 7 MiB each), never on the event loop: callers run
  :meth:`Accounts.verify` and :meth:`Accounts.add_user` in a worker thread.
  Nothing is hashed at import: a login for an unknown user checks against a
  dummy hash made at the first such login, so timing still does not reveal names.
* A session is a random 256-bit token in an HttpOnly, SameSite=Lax cookie; the
  database keeps only its SHA-256, so a copied database holds no usable session.
  Removing an account ends its sessions at once.
* Each session has its own CSRF token, required on every state-changing request
  (form field ``csrf`` or header ``X-CSRF-Token``); the login form uses a
  double-submit cookie since there is no session yet.
* An account may be limited to some devices (:meth:`Accounts.limit`).
* An account has a role (:class:`~caregiver.storage.Role`): only a physio sets plans and
  progressions; a caregiver sees them read-only. New accounts are caregivers unless
  given the physio role; accounts from before roles were made physios by the upgrade.
* Failed logins are limited per user name and per client address (sliding window).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from caregiver.storage import Account, LoginSession, Role, Store

HASHES_AT_ONCE = 2
"""Argon2 computations running at the same time (each holds 7 MiB while it runs)."""

_hasher = PasswordHasher(time_cost=5, memory_cost=7 * 1024, parallelism=1)
_hashing = threading.BoundedSemaphore(HASHES_AT_ONCE)


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """An Argon2id hash (slow on purpose: call it from a worker thread, never the loop)."""
    with _hashing:
        return _hasher.hash(password)


def _matches(stored: str, password: str) -> bool:
    with _hashing:
        try:
            return _hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
"""A user name: 1-64 of the ASCII letters and digits and ``. _ - @`` (an e-mail address
fits), starting with a letter or digit. Names show in logs, in commands a person types
(``remove-user NAME``) and in the ``by`` of a plan sent to a device: none of these characters
needs quoting, none is a path separator or a control character, and no two names look alike."""


def check_username(username: str) -> str | None:
    """Why ``username`` cannot be a new account's name (an account created before this rule
    keeps its name and still logs in)."""
    if USERNAME.fullmatch(username) is None:
        return (
            "a user name is 1-64 of the letters a-z and A-Z, the digits and . _ - @, "
            "starting with a letter or a digit"
        )
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

    def add_user(self, username: str, password: str, role: Role | None = None) -> None:
        """Create the account (a caregiver unless ``role`` says), or set its password (its
        device limit stays, and its role unless ``role`` is given)."""
        problem = check_username(username) or check_password(password)
        if problem:
            raise ValueError(problem)
        self.store.add_user(username, hash_password(password), self.clock(), role)

    def set_role(self, username: str, role: Role) -> bool:
        """Make the account a caregiver or a physio (its open logins too, from their next
        request); False if there is no such account."""
        return self.store.set_role(username, role)

    def verify(self, username: str, password: str) -> bool:
        """The password is the account's (an older release's hash is replaced on success)."""
        stored = self.store.password_hash(username)
        if stored is None:
            _matches(_dummy_hash(), password)  # as long as a real check: names stay secret
            return False
        if not _matches(stored, password):
            return False
        if _hasher.check_needs_rehash(stored):
            self.store.add_user(username, hash_password(password), self.clock())
        return True

    def users(self) -> list[Account]:
        return self.store.users(self.clock())

    def remove_user(self, username: str) -> bool:
        """Delete the account and end its logins; False if there is no such account."""
        return self.store.remove_user(username)

    def limit(self, username: str, devices: Sequence[str] | None) -> bool:
        """Let the account see only ``devices`` (None: every device); False if no such
        account. :class:`ValueError` for an empty list (remove the account instead)."""
        return self.store.set_user_devices(username, devices)

    def create_session(self, username: str, hours: float) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self.clock()
        self.store.start_login_session(_digest(token), username, csrf, now + hours * 3600.0, now)
        # read back: the account's device limit and role, as every later request sees them
        return token, self.store.login_session(_digest(token), now) or Session(username, csrf)

    def session(self, token: str | None) -> Session | None:
        if not token:
            return None
        return self.store.login_session(_digest(token), self.clock())

    def end_session(self, token: str | None) -> None:
        if token:
            self.store.end_login_session(_digest(token))


def same_token(a: str | None, b: str | None) -> bool:
    """Whether two tokens match, in constant time; either may be anything a client sent.

    Compared as bytes: :func:`hmac.compare_digest` raises ``TypeError`` for a ``str`` with a
    character outside ASCII, so a form whose ``csrf`` field was ``é`` (or a login cookie
    so edited) answered 500 Internal Server Error instead of being refused as forged."""
    if not a or not b:
        return False
    return hmac.compare_digest(
        str(a).encode("utf-8", "surrogatepass"), str(b).encode("utf-8", "surrogatepass")
    )


class LoginThrottle:
    """Back-off on failed logins, per account *and* address, so nobody else is locked out.

    A shared lockout (five wrong passwords lock the account, and the address,
    for everyone) lets anyone on a care home's network lock every caregiver
    out of an alert, and lets anyone who knows a user name lock that user out
    from anywhere. Instead:

    * each (account, address) pair gets ``free`` failures, then waits
      1 s, 2 s, 4 s ... (at most ``max_delay_s``) before each next attempt;
      the right password from another address, or another account from the
      same address, is not slowed at all;
    * an account that fails from many addresses at once (a distributed
      guess) is slowed for everyone, but at most ``account_delay_s``: a
      caregiver is never shut out of an alert for minutes.

    Failures are forgotten after ``window_s``; memory is bounded.
    """

    def __init__(
        self,
        free: int = 3,
        window_s: float = 900.0,
        *,
        max_delay_s: float = 300.0,
        account_failures: int = 20,
        account_delay_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = free
        self.window_s = window_s
        self.max_delay_s = max_delay_s
        self.account_failures = account_failures
        self.account_delay_s = account_delay_s
        self.clock = clock
        self._pairs: dict[tuple[str, str], tuple[int, float]] = {}
        """(account, address) -> (failures, when the last one was)."""
        self._accounts: dict[str, deque[float]] = {}

    def wait_s(self, account: str, address: str) -> float:
        """Seconds before this account may try again from this address (0: now)."""
        now = self.clock()
        wait = 0.0
        failures, last = self._pairs.get((account, address), (0, -math.inf))
        if now - last > self.window_s:
            failures = 0
        if failures >= self.free:
            # the exponent capped: 2.0 ** 1024 raises (a guess every max_delay_s for days
            # keeps the pair's failures growing), and 2 ** 30 s is past any max_delay_s
            delay = min(self.max_delay_s, 2.0 ** min(failures - self.free, 30))
            wait = max(wait, last + delay - now)
        recent = self._recent(account, now)
        if len(recent) >= self.account_failures:
            wait = max(wait, min(self.account_delay_s, recent[-1] + self.account_delay_s - now))
        return max(0.0, wait)

    def failed(self, account: str, address: str) -> None:
        now = self.clock()
        failures, last = self._pairs.get((account, address), (0, -math.inf))
        if now - last > self.window_s:
            failures = 0
        self._pairs[(account, address)] = (failures + 1, now)
        self._recent(account, now).append(now)
        if len(self._pairs) > 10000 or len(self._accounts) > 10000:  # a spray of names
            self._forget_old(now)

    def succeeded(self, account: str, address: str) -> None:
        self._pairs.pop((account, address), None)

    def _recent(self, account: str, now: float) -> deque[float]:
        recent = self._accounts.setdefault(account, deque(maxlen=self.account_failures * 2))
        while recent and now - recent[0] > self.window_s:
            recent.popleft()
        return recent

    def _forget_old(self, now: float) -> None:
        for pair in [k for k, (_, last) in self._pairs.items() if now - last > self.window_s]:
            del self._pairs[pair]
        for account in [a for a, q in self._accounts.items() if not q or now - q[-1] > 60]:
            del self._accounts[account]
        if len(self._pairs) > 10000:  # all recent: keep the newest half
            newest = sorted(self._pairs.items(), key=lambda kv: kv[1][1])[-5000:]
            self._pairs = dict(newest)
