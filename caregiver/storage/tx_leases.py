"""A transaction's operations on leases (which instance holds a named duty).

One of the parts :class:`caregiver.storage.store.Transaction` is made of (one per area of
the schema); it holds no state of its own.
"""

from __future__ import annotations

from caregiver import outbox
from caregiver.storage.records import LeaseSeen
from caregiver.storage.tx_base import _TxBase


class TxLeases(_TxBase):
    """A transaction's operations on leases (which instance holds a named duty)."""

    def hold_lease(
        self, name: str, holder: str, take_over: LeaseSeen | None, until: float
    ) -> LeaseSeen | None:
        """Take or renew the lease ``name`` for ``holder``, counting one renewal; the row as it
        is after (None: nobody holds it). ``holder`` has it when the row names it.

        It is taken when nobody holds it, or over from ``take_over``: the holder, count and
        ``expires_at`` the caller saw stand still for the lease's length on its own monotonic
        clock (:class:`caregiver.lease.Lease`), and only while the row still says so, in the one
        conditional statement: a renewal that came meanwhile (this release's, which counts, or
        an earlier release's, which only writes ``expires_at``), or another instance that took
        it over first, leaves it as it is, and the caller sees who holds it now. No wall time
        decides: ``until`` (the wall clock plus the lease's length) is written to ``expires_at``
        for people reading the row, and for an instance of a release before schema 27 during a
        rolling upgrade, which still goes by it (``expires_at`` is only ever compared with what
        was read of it, never with a clock). Before, the lease was taken over once
        ``expires_at`` had passed, and a holder that died without a clean stop kept it for an
        hour more after NTP set the clock back an hour: nobody was paged meanwhile."""
        seen = (
            (take_over.holder, take_over.renewals, take_over.expires_at)
            if take_over is not None
            else ("", -1, 0.0)  # no holder is named ""
        )
        row = self._db.execute(
            "INSERT INTO leases (name, holder, expires_at, renewals) VALUES (?, ?, ?, 1) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "expires_at = excluded.expires_at, renewals = leases.renewals + 1 "
            "WHERE leases.holder = excluded.holder OR (leases.holder = ? "
            "AND leases.renewals = ? AND leases.expires_at = ?) "
            "RETURNING holder, renewals, expires_at",
            (name, holder, until, *seen),
        ).fetchone()
        if row is None:  # another holds it: whom, and how far its renewals have come
            row = self._db.execute(
                "SELECT holder, renewals, expires_at FROM leases WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else LeaseSeen(str(row[0]), int(row[1]), float(row[2]))

    def release_lease(self, name: str, holder: str) -> None:
        self._db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    def lease_holder(self, name: str) -> str | None:
        row = self._db.execute(outbox.LEASE_HOLDER, (name,)).fetchone()
        return str(row[0]) if row else None
