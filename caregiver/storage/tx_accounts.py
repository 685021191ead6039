"""A transaction's operations on user accounts, their devices and login sessions.

One of the parts :class:`caregiver.storage.store.Transaction` is made of (one per area of
the schema); it holds no state of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from caregiver.storage.records import Account, LoginSession, Role
from caregiver.storage.rows import _role
from caregiver.storage.tx_base import _TxBase


class TxAccounts(_TxBase):
    """A transaction's operations on user accounts, their devices and login sessions."""

    def add_user(
        self, username: str, password_hash: str, now: float, role: Role | None = None
    ) -> None:
        """Create the account (a caregiver unless ``role`` says), or set its password (and its
        role when ``role`` is given; otherwise the account keeps its own)."""
        self._db.execute(
            "INSERT INTO users (username, password_hash, created_at, role) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash",
            (username, password_hash, now, (role or Role.CAREGIVER).value),
        )
        if role is not None:
            self.set_role(username, role)

    def set_role(self, username: str, role: Role) -> bool:
        """False if there is no such account. Its open logins have the new role at once."""
        return (
            self._db.execute(
                "UPDATE users SET role = ? WHERE username = ?", (role.value, username)
            ).rowcount
            > 0
        )

    def password_hash(self, username: str) -> str | None:
        row = self._db.execute(
            "SELECT password_hash FROM users WHERE username = ?", (username,)
        ).fetchone()
        return str(row[0]) if row else None

    def start_login_session(
        self, token_hash: str, username: str, csrf: str, expires_at: float, now: float
    ) -> None:
        """Store a new login (by its token's hash) and forget the expired ones."""
        self._db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
        self._db.execute(
            "INSERT INTO sessions (token_hash, username, csrf, expires_at) VALUES (?, ?, ?, ?)",
            (token_hash, username, csrf, expires_at),
        )

    def login_session(self, token_hash: str, now: float) -> LoginSession | None:
        """The login with this token's hash, while it lasts and its account exists."""
        row = self._db.execute(
            "SELECT s.username, s.csrf, u.role FROM sessions s "
            "JOIN users u ON u.username = s.username "
            "WHERE s.token_hash = ? AND s.expires_at >= ?",
            (token_hash, now),
        ).fetchone()
        if row is None:
            return None
        return LoginSession(row[0], row[1], self._user_devices(row[0]), _role(row[2]))

    def end_login_session(self, token_hash: str) -> None:
        self._db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    def _user_devices(self, username: str) -> frozenset[str] | None:
        rows = self._db.execute(
            "SELECT device_id FROM user_devices WHERE username = ?", (username,)
        ).fetchall()
        return frozenset(r[0] for r in rows) if rows else None

    def users(self, now: float) -> list[Account]:
        """Every account, by name, with its device limit and how many logins it has open."""
        rows = self._db.execute(
            "SELECT u.username, u.created_at, (SELECT COUNT(*) FROM sessions s "
            "WHERE s.username = u.username AND s.expires_at >= ?), u.role FROM users u "
            "ORDER BY u.username",
            (now,),
        ).fetchall()
        accounts = []
        for username, created_at, sessions, role in rows:
            devices = self._user_devices(username)
            accounts.append(
                Account(
                    username,
                    created_at,
                    tuple(sorted(devices)) if devices is not None else None,
                    int(sessions),
                    _role(role),
                )
            )
        return accounts

    def remove_user(self, username: str) -> bool:
        """Delete the account, its logins and its device limit; False if there was none."""
        self._db.execute("DELETE FROM sessions WHERE username = ?", (username,))
        self._db.execute("DELETE FROM user_devices WHERE username = ?", (username,))
        return self._db.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount > 0

    def set_user_devices(self, username: str, devices: Sequence[str] | None) -> bool:
        """Limit the account to ``devices`` (None: every device; never empty, which would read
        as every device); False if there is no such account."""
        if devices is not None and not devices:
            raise ValueError("an account limited to no device at all: remove it instead")
        if self.password_hash(username) is None:
            return False
        self._db.execute("DELETE FROM user_devices WHERE username = ?", (username,))
        if devices is not None:
            for device_id in sorted(set(devices)):
                self._db.execute(
                    "INSERT INTO user_devices (username, device_id) VALUES (?, ?)",
                    (username, device_id),
                )
        return True
