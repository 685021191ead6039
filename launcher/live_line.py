"""A live status line at the bottom of a terminal that log records and printed lines share.

The demo redraws one line in place (``\\r``, erase to the end) while the monitor logs
to stderr and its printers write to stdout, all on one terminal. Written as they come, a log
record lands on the end of the status line ("...buzzer: quiet13:35:01 INFO ..."). Here every
writer goes through one lock: the status line is erased, the record or line is written, and
the status line is drawn again below it. On anything but a terminal there is no live line:
a log file gets whole lines only.

The demo's other processes (the courier, the dashboard) log to the same terminal through the
stderr they inherit, which no handler of this process sees: :func:`stderr_above` makes file
descriptor 2 a pipe for as long as the live line is up, and a thread writes each line that
comes through it above the status line (one step below the demo's real-time loop).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

from core.realtime import LoopHelperThread, SchedulingPolicy

ERASE = "\r\x1b[K"
"""Back to the start of the line and erase it."""


class LiveLine:
    """The status line of ``out`` (a terminal), and writing whole lines above it."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._lock = threading.Lock()
        self._shown = ""

    def show(self, line: str) -> None:
        """Draw ``line`` as the status line (nothing when ``out`` is not a terminal)."""
        if not self.tty:
            return
        with self._lock:
            self._shown = line
            self.out.write(ERASE + line)
            self.out.flush()

    def above(self, text: str, stream: TextIO | None = None) -> None:
        """Write ``text`` (whole lines) to ``stream`` (default ``out``) above the status line."""
        target = stream if stream is not None else self.out
        with self._lock:
            if self._shown:
                self.out.write(ERASE)
                self.out.flush()
            target.write(text)
            target.flush()
            if self._shown:
                self.out.write(self._shown)
                self.out.flush()

    def end(self) -> None:
        """Leave the last status line as a line of its own; nothing is redrawn after this."""
        with self._lock:
            if self._shown:
                self.out.write("\n")
                self.out.flush()
            self._shown = ""


class LinesAbove(io.TextIOBase):
    """A text stream whose lines go above ``line``'s status line (printers write to it)."""

    def __init__(self, line: LiveLine) -> None:
        self._line = line
        self._partial = ""

    def write(self, text: str) -> int:
        whole, newline, rest = (self._partial + text).rpartition("\n")
        self._partial = rest
        if newline:
            self._line.above(whole + "\n")
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self._line.above(self._partial + "\n")
            self._partial = ""


class AboveLiveLine(logging.Handler):
    """Hands each record, formatted by ``inner`` (the handler it stands in for), to ``line``
    to write above its status line on ``stream``."""

    def __init__(self, inner: logging.Handler, line: LiveLine, stream: TextIO) -> None:
        super().__init__(inner.level)
        self.inner = inner
        self._line = line
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._line.above(self.inner.format(record) + "\n", self._stream)
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def logging_above(line: LiveLine, stream: TextIO) -> Iterator[None]:
    """While inside, the root logger's records are written above ``line`` on ``stream`` (the
    terminal's stderr), formatted as before; its handlers are put back after."""
    root = logging.getLogger()
    before = root.handlers[:]
    if not line.tty:
        yield
        return
    inner = before or ([logging.lastResort] if logging.lastResort is not None else [])
    root.handlers[:] = [AboveLiveLine(h, line, stream) for h in inner]
    try:
        yield
    finally:
        root.handlers[:] = before


RELAY_JOIN_S = 2.0
"""At the end, how long the relay waits for the pipe's other writers (children) to finish."""


@contextlib.contextmanager
def stderr_above(line: LiveLine, loop: SchedulingPolicy | None = None) -> Iterator[TextIO]:
    """While inside, whatever this process and the processes it starts write to file
    descriptor 2 goes above ``line``, line by line; yields the terminal's stderr (for this
    process's own log records, written at once: :func:`logging_above`). Off a terminal it
    changes nothing and yields ``sys.stderr``.

    ``loop``: the policy the process's real-time loop will run at, inside this (the demo's
    ``SCHED_FIFO`` 20): the relay thread, made before that loop's real-time section and
    outliving it, runs one step below it throughout
    (:class:`~core.realtime.LoopHelperThread`). At normal priority, preempted by a busy
    host while it held the GIL, it could keep the loop waiting past the relay's hold time."""
    if not line.tty:
        yield sys.stderr
        return
    sys.stderr.flush()
    saved = os.dup(2)
    terminal = open(saved, "w", buffering=1, errors="replace", closefd=False)  # noqa: SIM115
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)  # inheritable: the children started from now on write here too
    os.close(write_end)
    relay = LoopHelperThread(lambda: _relay(read_end, line, terminal), "demo-stderr", beside=loop)
    relay.start()
    try:
        yield terminal
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe stays open only in children still running
        relay.join(RELAY_JOIN_S)
        terminal.flush()
        os.close(saved)


def _relay(read_end: int, line: LiveLine, terminal: TextIO) -> None:
    """Lines from the pipe, above the status line; a last line without its newline too."""
    pending = b""
    try:
        while chunk := os.read(read_end, 65536):
            *whole, pending = (pending + chunk).split(b"\n")
            if whole:
                text = "".join(w.decode(errors="replace") + "\n" for w in whole)
                line.above(text, terminal)
        if pending:
            line.above(pending.decode(errors="replace") + "\n", terminal)
    finally:
        os.close(read_end)
