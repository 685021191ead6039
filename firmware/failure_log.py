"""One journal line for a failure that repeats at every wake, not a hundred a second.

A part the loop calls at every wake can fail at every wake: the detector with a bug that a
posture or a sensor reading sets off keeps raising for as long as the state lasts, 100 times a
second. Logged each time, with its traceback, that is megabytes of journal a minute on the
Pi's SD card, the lines that matter (the FAULT, what the walker did next) lost among them once
journald's rate limit drops messages, and the traceback formatted on the loop itself at every
wake (the log queue's handler formats records in the thread that logs them).

So the first failure is logged with its traceback, and so is a failure that is not the last
one over again (another exception type or message). The same failure again is counted, and
the count logged, without a traceback, at most once every :data:`REPEAT_REPORT_S`. When the
part works again, one line says so and how often it failed. The state, its reason and the
FAULT event say the rest, as they did.
"""

from __future__ import annotations

import logging
import math

REPEAT_REPORT_S = 60.0
"""At most one "still failing" line this often while the same failure repeats."""


def describe(exc: BaseException) -> str:
    """``"Type: message"`` for a reason or a log line, whatever the exception's ``__str__`` does.

    A failure is reported from an ``except`` block on the loop; an exception whose ``__str__``
    raises (a bug in a third-party class, a half-built object) would raise again there and
    turn a fault the loop handles (the detector's, the loop's own) into one it cannot report.
    """
    try:
        message = str(exc)
    except Exception as inner:  # whatever __str__ raised, the report must go on
        message = f"(its message could not be read: {type(inner).__name__})"
    return f"{type(exc).__name__}: {message}"


class RepeatedFailureLog:
    """Logs a repeating failure of ``what`` once, then as a count (see the module)."""

    def __init__(self, what: str, logger: logging.Logger) -> None:
        self._what = what
        self._log = logger
        self._last: tuple[type[BaseException], str] | None = None
        self._unreported = 0
        """Failures since the last line about them."""
        self._total = 0
        """Failures since the part last worked."""
        self._report_at = math.inf
        self.failing = False
        """Whether the part's last call failed (and :meth:`worked` has not been told since):
        an attribute, which the loop reads after every batch, not a property's call."""

    def failed(self, exc: BaseException, now: float) -> None:
        """The part raised ``exc`` at monotonic time ``now``; call from its ``except`` block."""
        self._total += 1
        self.failing = True
        key = (type(exc), describe(exc))
        if key != self._last:
            if self._unreported:
                self._still_failing()
            self._last = key
            self._log.error("%s failed", self._what, exc_info=exc)
            self._report_at = now + REPEAT_REPORT_S
            return
        self._unreported += 1
        if now >= self._report_at:
            self._still_failing()
            self._report_at = now + REPEAT_REPORT_S

    def worked(self) -> None:
        """The part worked again after failing: one line, and the count starts over."""
        if self._last is None:
            return
        self._log.warning("%s works again, after failing %d times", self._what, self._total)
        self._last = None
        self.failing = False
        self._unreported = self._total = 0
        self._report_at = math.inf

    def _still_failing(self) -> None:
        assert self._last is not None
        self._log.error(
            "%s still failing: %s (%d more times)", self._what, self._last[1], self._unreported
        )
        self._unreported = 0
