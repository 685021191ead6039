"""The query planner's statistics, kept fresh by the service's housekeeping thread.

SQLite plans a query from ``sqlite_stat1`` when it has rows, and from its own guesses when it
has none; nothing wrote them before (the service never ran ``ANALYZE``), so every plan was a
guess that a history a year long could make slow. SQLite's advice for a long-lived
connection is ``PRAGMA optimize`` now and then and at close
(https://sqlite.org/lang_analyze.html#req): :meth:`caregiver.storage.Store.optimize`, run
here every :data:`caregiver.storage.OPTIMIZE_EVERY_S` of monotonic time (the first an
interval after start: on SQLite before 3.46 a connection looks only at the tables its own
queries used) and by :meth:`caregiver.storage.Store.close`. On PostgreSQL autovacuum
analyzes the tables and this does nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from caregiver.fault_once import FaultOnce
from caregiver.storage import OPTIMIZE_EVERY_S, Store

log = logging.getLogger(__name__)


class PlannerStatistics:
    """Runs :meth:`Store.optimize` every ``every_s``; a storage fault is said once (a WARNING,
    as the checkpoint's are) until a refresh works again, and never raised: the statistics
    only make reads quicker, and the old ones (or none) still answer every read."""

    def __init__(
        self,
        store: Store,
        monotonic: Callable[[], float] = time.monotonic,
        every_s: float = OPTIMIZE_EVERY_S,
    ) -> None:
        self.store = store
        self.monotonic = monotonic
        self.every_s = every_s
        self._last = monotonic()
        self.faults = FaultOnce(
            log,
            "could not refresh the query planner's statistics (reads are planned from the "
            "ones it has)",
            "the query planner's statistics are refreshed again",
        )

    def tick(self) -> bool:
        """Refresh if it is time; whether a refresh ran (and worked)."""
        now = self.monotonic()
        if now - self._last < self.every_s:
            return False
        self._last = now
        self.faults.run(self.store.optimize)
        return self.faults.fault is None
