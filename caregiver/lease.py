"""Which instance runs the escalation timers and sends the notifications.

Several instances of the service on one PostgreSQL database all ingest, but paging a
contact must happen once: the instance holding the ``escalation`` lease (a row in the
database, renewed on every escalation tick and delivery round) escalates due alerts and
sends due notifications; the others skip both. An instance that dies stops renewing, and
another takes the lease over once it has seen it stand still for ``ttl_s``, continuing from
the alerts' and notifications' rows where the first left off. On SQLite the one instance
holds it (a service restarted after a crash takes it over from its dead predecessor so).

No wall clock decides (schema 27): each renewal counts one in the row (``renewals``), and an
instance that does not hold the lease notes, on its own monotonic clock, when it first saw
the holder and count it sees now; seen unchanged for ``ttl_s``, it takes the lease over with
one conditional UPDATE naming that holder and count (:meth:`caregiver.storage.Transaction.
hold_lease`): the database is the one arbiter, and a renewal that came meanwhile, or another
instance quicker to take over, leaves the lease where it is. What is watched is the row's
holder, count and ``expires_at`` together: a holder of a release before schema 27 (a rolling
upgrade) renews by writing ``expires_at`` only, and its live lease must not be taken over
either (``expires_at`` is compared only with what was read of it, never with a clock). The
instances' clocks need not agree, and a step of any wall clock moves nothing: before, the
lease ran until a wall time (``expires_at``), and a holder that died without a clean stop
kept it for the step on top of ``ttl_s`` after NTP set the clock back (an hour: nobody
paged, nothing escalated, for an hour). A lost renewal costs at most one ``ttl_s`` of
escalation delay, never an alert: the rows wait.

Why this is safe against two holders: the holder acts right after a renewal that counted
(the tick or round in hand), and a contender's ``ttl_s`` starts only when it has seen that
count, after the renewal's commit, so the holder had its ``ttl_s`` from the renewal on its
own clock first (the clocks' rates agree; their readings need not). A holder paused for
longer than ``ttl_s`` (a tick held that long) can act once more after a take-over, as
before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from caregiver.outbox import ESCALATION as ESCALATION
from caregiver.storage import LeaseSeen, StorageFault, Store

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
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock``: the wall clock, only for ``expires_at`` (what people read);
        ``monotonic``: what a take-over is timed on."""
        self.store = store
        self.holder = holder
        self.clock = clock
        self.monotonic = monotonic
        self.name = name
        self.ttl_s = ttl_s
        self._held = False
        self._seen: tuple[LeaseSeen, float] | None = None
        """Another holder's lease as last seen changed, and when (``monotonic``) it was."""
        self._lock = threading.Lock()
        """The escalation ticker and the notifier's rounds ask at once (two threads)."""

    def held(self) -> bool:
        """Take or renew the lease; whether this instance may act now. A database failure
        means no: the caller's own work would fail on it too."""
        with self._lock:
            seen = self._seen
            # seen standing still for ttl_s: its holder stopped renewing, take it over
            stood_still = seen[0] if seen and self.monotonic() - seen[1] >= self.ttl_s else None
            try:
                row = self.store.hold_lease(
                    self.name, self.holder, stood_still, self.clock() + self.ttl_s
                )
            except StorageFault as exc:  # what was seen stands: the take-over is conditional
                log.warning("could not renew the %s lease: %s", self.name, exc)
                held = False
            else:
                held = row is not None and row.holder == self.holder
                if held or row is None:
                    self._seen = None
                elif seen is None or seen[0] != row:  # renewed, or another holder: watch anew
                    # timed after the look: the holder's renewal had committed by then
                    self._seen = (row, self.monotonic())
            if held != self._held:
                said = "took" if held else "lost (another instance holds)"
                log.info("%s the %s lease", said, self.name)
                self._held = held
            return held

    def release(self) -> None:
        """Give the lease up (a clean stop), so that the next instance takes it at once
        rather than after watching it stand still for ``ttl_s``."""
        with self._lock:
            try:
                self.store.release_lease(self.name, self.holder)
            except StorageFault as exc:
                log.warning("could not release the %s lease: %s", self.name, exc)
            self._held = False
