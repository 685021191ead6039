"""What a logger said, for tests: the monitor's and the service's logging set-ups replace
pytest's capture (``caplog`` hears nothing once they have run), and some records come from
other threads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class LogLines(logging.Handler):
    """Each record's message as it is logged, from any thread, at ``level`` or above;
    ``heard`` is set by the first that contains ``words`` (when given)."""

    def __init__(self, level: int = logging.NOTSET, words: str | None = None) -> None:
        super().__init__(level)
        self.words = words
        self.heard = threading.Event()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        self.lines.append(line)
        if self.words is not None and self.words in line:
            self.heard.set()


@contextmanager
def lines_of(
    logger: str, level: int = logging.NOTSET, words: str | None = None
) -> Iterator[LogLines]:
    """A :class:`LogLines` on ``logger`` for the ``with`` block, taken off after it."""
    lines = LogLines(level, words)
    log = logging.getLogger(logger)
    log.addHandler(lines)
    try:
        yield lines
    finally:
        log.removeHandler(lines)
