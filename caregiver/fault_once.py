"""A storage fault met by work that repeats every second, said once until the work succeeds.

The service's ticker checkpoints the write-ahead log and runs the escalation tick every
second. While the database refuses (a full disk, a lock held past its timeout, a damaged
page), each of those failed every second, and the escalation tick logged a full traceback of
the storage package's internals each time: sixty a minute, burying the one line a person
needs. The fault's own words say what is wrong; this says them when the fault starts and when
it ends, and a programming error (anything not a :class:`StorageFault`) still goes to the log
with its traceback, every time, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from caregiver.storage import StorageFault

T = TypeVar("T")


class FaultOnce:
    """One repeating piece of work's storage faults, logged on ``log`` at their start (with
    what ``failing`` says the consequence is) and their end (``working_again``)."""

    def __init__(self, log: logging.Logger, failing: str, working_again: str) -> None:
        self._log = log
        self._failing = failing
        self._working_again = working_again
        self.fault: str | None = None
        """The words of the fault under way, or None while the work succeeds."""

    def run(self, work: Callable[[], T]) -> T | None:
        """``work()``, or None when it met a storage fault (said if it is a new one)."""
        try:
            result = work()
        except StorageFault as fault:
            if self.fault is None:
                self._log.warning("%s: %s", self._failing, fault)
            self.fault = str(fault)
            return None
        if self.fault is not None:
            self._log.info("%s", self._working_again)
            self.fault = None
        return result
