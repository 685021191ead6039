"""Which instance runs the escalation timers and sends the notifications.

Several instances of the service on one PostgreSQL database all ingest, but paging a
contact must happen once: the instance holding the ``escalation`` lease (a row in the
database, renewed on every escalation tick and delivery round) escalates due alerts and
sends due notifications; the others skip both. An instance that dies stops renewing, and
another takes the lease over once it has run out (``ttl_s``), continuing from the alerts'
and notifications' rows where the first left off. On SQLite the one instance always holds
it.

The lease runs on the instances' wall clocks (``clock``), which must agree to well within
``ttl_s`` (NTP does); a lost renewal costs at most one ``ttl_s`` of escalation delay, never
an alert: the rows wait.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from caregiver.outbox import ESCALATION as ESCALATION
from caregiver.storage import StorageFault, Store

log = logging.getLogger(__name__)

LEASE_TTL_S = 10.0
"""How long a lease lasts unrenewed: the longest escalation pause when its holder dies."""


class Lease:
    """One named lease, as this instance (``holder``) sees it."""

    def __init__(
        self,
        store: Store,
        holder: str,
        clock: Callable[[], float],
        name: str = ESCALATION,
        ttl_s: float = LEASE_TTL_S,
    ) -> None:
        self.store = store
        self.holder = holder
        self.clock = clock
        self.name = name
        self.ttl_s = ttl_s
        self._held = False

    def held(self) -> bool:
        """Take or renew the lease; whether this instance may act now. A database failure
        means no: the caller's own work would fail on it too."""
        now = self.clock()
        try:
            held = self.store.hold_lease(self.name, self.holder, now, now + self.ttl_s)
        except StorageFault as exc:
            log.warning("could not renew the %s lease: %s", self.name, exc)
            held = False
        if held != self._held:
            log.info(
                "%s the %s lease", "took" if held else "lost (another instance holds)", self.name
            )
            self._held = held
        return held

    def release(self) -> None:
        """Give the lease up (a clean stop), so that the next instance takes it at once.

        Why not let it run out: it runs on the wall clock, and one stepped back while the
        service was stopped (NTP's first setting as it restarts) kept the stopped instance's
        lease for the step on top of ``ttl_s``: a restart after a step back of an hour sent no
        page and escalated nothing for an hour. (A holder that dies without stopping still
        holds it so; see docs/caregiver.md.)"""
        try:
            self.store.release_lease(self.name, self.holder)
        except StorageFault as exc:
            log.warning("could not release the %s lease: %s", self.name, exc)
        self._held = False
