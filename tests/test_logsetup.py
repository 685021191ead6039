"""The monitor's loop never waits for stderr: its records go to a writer thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from core.logsetup import logging_off_this_thread
from tests.mqtt_helpers import WAIT


class StalledStderr(logging.Handler):
    """A stand-in for journald's socket that stopped taking lines until ``go`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()
        self.lines: list[str] = []
        self.threads: set[int] = set()

    def emit(self, record: logging.LogRecord) -> None:
        assert self.go.wait(WAIT), "the test never let the writer go"
        self.threads.add(threading.get_ident())
        self.lines.append(self.format(record))


@pytest.fixture
def stalled() -> Iterator[StalledStderr]:
    root = logging.getLogger()
    before, level = root.handlers[:], root.level
    handler = StalledStderr()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        handler.go.set()
        root.handlers[:] = before
        root.setLevel(level)


def test_the_loop_logs_on_while_stderr_is_stalled_and_nothing_queued_is_lost(
    stalled: StalledStderr,
) -> None:
    log = logging.getLogger("firmware.safety")
    with logging_off_this_thread(capacity=5) as queued:
        # Written synchronously, the first of these would wait for ``go`` (WAIT seconds and a
        # failed assertion in emit); queued, all 8 return: 5 wait (the writer thread holds a
        # sixth, stalled in emit, or not yet: 5 or 6 kept) and the rest are dropped.
        for n in range(8):
            log.warning("reset refused %d", n)
        assert stalled.lines == []  # nothing written: stderr is stalled
        dropped = queued.dropped
        assert dropped in (2, 3)
        stalled.go.set()
    kept = [f"reset refused {n}" for n in range(8 - dropped)]
    assert stalled.lines[: len(kept)] == kept  # in order, none of the kept ones lost
    assert stalled.lines[len(kept) :] == [
        f"{dropped} log records were dropped: stderr did not take them fast enough"
    ]
    assert len(stalled.threads) == 2  # the writer thread, then this one for the count


def test_records_keep_their_level_and_exception_text(stalled: StalledStderr) -> None:
    stalled.go.set()
    stalled.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    with logging_off_this_thread():
        try:
            raise ValueError("bad sample")
        except ValueError:
            logging.getLogger("firmware.monitor").exception("detector failed")
        logging.getLogger("firmware.monitor").debug("below the level: not written")
    (line,) = stalled.lines
    assert line.startswith("ERROR detector failed\nTraceback")
    assert "ValueError: bad sample" in line
    assert threading.get_ident() not in stalled.threads


def test_the_writer_runs_below_the_loop_and_formats_tracebacks_itself(
    stalled: StalledStderr,
) -> None:
    """The writer is a LoopHelperThread (one step below a real-time loop, a plain thread
    here), and a traceback is formatted there, not on the logging thread."""
    from core.realtime import LoopHelperThread

    formatted_on: list[int] = []

    class Formatter(logging.Formatter):
        def formatException(self, ei: Any) -> str:
            formatted_on.append(threading.get_ident())
            return super().formatException(ei)

    stalled.setFormatter(Formatter("%(message)s"))
    stalled.go.set()
    with logging_off_this_thread():
        try:
            raise ValueError("bad")
        except ValueError:
            logging.getLogger("firmware.monitor").exception("detector failed %d", 7)
        writers = [t for t in threading.enumerate() if t.name == "log-writer"]
    assert len(writers) == 1 and isinstance(writers[0], LoopHelperThread)
    assert formatted_on and threading.get_ident() not in formatted_on
    (line,) = stalled.lines
    assert line.startswith("detector failed 7\nTraceback") and "ValueError: bad" in line
