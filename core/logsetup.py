"""Logging to stderr in a form journald understands.

Under systemd (``JOURNAL_STREAM`` is set) each line starts with the
sd-daemon priority prefix (``<3>`` error … ``<7>`` debug) and carries no
timestamp, because journald adds its own; on a terminal it gets a short
monotonic-free wall-clock time for the reader.

The monitor's real-time loop logs too (a refused reset, a help request, a state it stays
in), and a write to stderr can block: journald's stream socket full while journald is busy
writing to the SD card, a terminal scrolled back and paused. :func:`logging_off_this_thread`
hands the records to a writer thread (as the standard library's ``QueueListener`` would), so
the loop only puts a record on a bounded queue, and drops (and later counts) what does not fit
rather than wait.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import queue
import sys
import threading
from collections.abc import Iterator

_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())


class StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time of each record.

    A plain ``StreamHandler(sys.stderr)`` keeps the stream it was given; when
    that stream is replaced and closed (pytest's capture, a daemon's
    redirection) every later record from a worker thread fails to print.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def setup_logging(level: str = "info", verbose: bool = False) -> None:
    handler = StderrHandler()
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else getattr(logging, level.upper()))


LOG_QUEUE_RECORDS = 1000
"""Records waiting for the writer thread before new ones are dropped (and counted)."""


class DroppingQueueHandler(logging.Handler):
    """A queue handler that never waits: a record that does not fit is counted, not put.

    It merges the message with its arguments and nothing more: a traceback is formatted by
    the writer (the standard ``QueueHandler.prepare`` formats it on the logging thread,
    reading source lines from the SD card for every frame). The queue stays in this process,
    so the record keeps its ``exc_info`` as it is. Not ``logging.handlers.QueueHandler``:
    that module brings ``pickle`` and the network handlers (0.5 MB of the monitor's memory)
    for the few lines used here."""

    def __init__(self, records: queue.Queue[logging.LogRecord | None]) -> None:
        super().__init__()
        self.queue = records
        self.dropped = 0

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        prepared = copy.copy(record)
        prepared.msg, prepared.args = record.getMessage(), None
        return prepared

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.enqueue(self.prepare(record))
        except Exception:
            self.handleError(record)


LOG_DRAIN_S = 5.0
"""On the way out, how long to wait for the writer to write what is queued: a stderr stalled
for good must not hold up the process's exit (the relay is released before it)."""


class _Writer:
    """What the standard library's ``QueueListener`` does (each record to each handler whose
    level it reaches), on a :class:`core.realtime.LoopHelperThread` (one step below the
    loop's real-time priority: at a normal one, a busy machine could preempt it while it
    holds the GIL the loop needs), with an end that gives up on a stalled stderr."""

    def __init__(
        self, records: queue.Queue[logging.LogRecord | None], *handlers: logging.Handler
    ) -> None:
        self.queue = records
        self.handlers = handlers
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from core.realtime import LoopHelperThread

        self._thread = LoopHelperThread(self._write, "log-writer")
        self._thread.start()

    def _write(self) -> None:
        while (record := self.queue.get()) is not None:
            for handler in self.handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        try:
            self.queue.put(None, timeout=LOG_DRAIN_S)  # the end
        except queue.Full:
            return  # the writer never took its queue: leave it (a daemon thread)
        thread.join(LOG_DRAIN_S)
        self._thread = None


@contextlib.contextmanager
def logging_off_this_thread(capacity: int = LOG_QUEUE_RECORDS) -> Iterator[DroppingQueueHandler]:
    """While inside, the root logger's handlers write on a thread of their own; the logging
    thread only queues (a record is formatted into its message there, as ``QueueHandler``
    does). On the way out the writer writes what is queued, and how many records were
    dropped if any were."""
    root = logging.getLogger()
    handlers = root.handlers[:]
    records: queue.Queue[logging.LogRecord | None] = queue.Queue(capacity)
    handler = DroppingQueueHandler(records)
    listener = _Writer(records, *handlers)
    listener.start()
    root.handlers[:] = [handler]
    try:
        yield handler
    finally:
        root.handlers[:] = handlers
        listener.stop()  # writes what is queued, then ends the thread (or gives up on it)
        if handler.dropped:
            logging.getLogger(__name__).warning(
                "%d log records were dropped: stderr did not take them fast enough",
                handler.dropped,
            )
