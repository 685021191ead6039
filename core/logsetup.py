"""Logging to stderr in a form journald understands.

Under systemd (``JOURNAL_STREAM`` is set) each line starts with the
sd-daemon priority prefix (``<3>`` error … ``<7>`` debug) and carries no
timestamp, because journald adds its own; on a terminal it gets a short
monotonic-free wall-clock time for the reader.
"""

from __future__ import annotations

import logging
import os
import sys

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
