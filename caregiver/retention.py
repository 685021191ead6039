"""The retention sweep: what the database no longer keeps goes, and the disk gets it back.

Run from the service's ticker thread once at start and then every
``retention.sweep_hours`` (monotonic time). Ages are measured on the service's
clock, the same one that stamps ``received_at``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from caregiver.config import RetentionConfig
from caregiver.storage import Pruned, StorageFault, Store

log = logging.getLogger(__name__)

_DAY = 86400.0


class RetentionSweeper:
    def __init__(
        self,
        store: Store,
        retention: RetentionConfig,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        """``stopping``: whether the service is stopping, asked between the sweep's chunks
        (:meth:`caregiver.storage.Store.prune`): a sweep ends at the next one, quietly."""
        self.store = store
        self.retention = retention
        self.clock = clock
        self.monotonic = monotonic
        self.stopping = stopping
        self._next: float | None = None

    def sweep(self) -> Pruned:
        now = self.clock()
        r = self.retention

        def before(days: float) -> float | None:
            return now - days * _DAY if days > 0 else None

        pruned = self.store.prune(
            recordings_before=before(r.recordings_days),
            notifications_before=before(r.notifications_days),
            routine_before=before(r.routine_events_days),
            now=now,
            stopping=self.stopping,
        )
        if pruned.stopped is not None:
            # a long first sweep cut by the service's stop: nothing failed, and nothing the
            # committed chunks removed is lost (each chunk is its own transaction)
            log.info(
                "retention sweep stopped with the service while removing %s (so far: %s); "
                "the next start goes on from there",
                pruned.stopped,
                pruned.words(),
            )
        else:
            log.info("retention sweep: %s", pruned.words())
        return pruned

    def tick(self) -> Pruned | None:
        """Sweep if it is time (the first call sweeps); a storage fault is logged and retried at
        the next interval, never raised into the ticker."""
        t = self.monotonic()
        if self._next is not None and t < self._next:
            return None
        self._next = t + self.retention.sweep_hours * 3600.0
        try:
            return self.sweep()
        except StorageFault as fault:
            # The fault says what is wrong in words (a damaged file names itself and what to
            # do): a traceback of the storage package's internals said nothing more.
            log.error(
                "retention sweep failed: %s; the next one is in %.0f h",
                fault,
                self.retention.sweep_hours,
            )
            return None
