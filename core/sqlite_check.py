"""``PRAGMA quick_check`` of an SQLite database, optionally within a time budget.

A file damaged past its first pages (a power cut mid-write, a failing SD card) opens: SQLite
reads only the header and the schema to open it, and says "database disk image is
malformed" only when a statement reaches a damaged page, perhaps weeks later. The device's
database (:mod:`firmware.storage.damage`) and the caregiver's (``caregiver.storage``) both
check the whole file when they open it; shared here because the caregiver may not import the
firmware.

``quick_check`` reads every page of every table and index (it skips only the cross-check of
index entries against their rows that ``integrity_check`` adds, which doubles the time):
measured on a caregiver database of a year of 8 treadmills (12 MB) about 10 ms from the page
cache and 0.2 s from disk, ten years (120 MB) 80 ms and 2 s (x86, Dec 2026; docs/caregiver.md,
Database). A Pi's SD card is slower, and a database keeps growing: ``within_s`` bounds the
check, and :class:`Checked` says when only part of the file was read.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

PROGRESS_STEPS = 10_000
"""SQLite virtual-machine steps between looks at the clock (a look costs nothing beside them:
a step is a fraction of a microsecond)."""
AGAIN_S = 0.001
"""Past the deadline, how often the watcher interrupts again until the check has stopped
(:func:`quick_check`): an interrupt that lands before the pragma's first step is forgotten
when it starts."""


@dataclass(frozen=True, slots=True)
class Checked:
    """What ``PRAGMA quick_check`` found."""

    findings: str | None
    """Its first findings, joined ("*** in database main *** Page 1964: ..."); None when it
    found nothing wrong."""
    finished: bool
    """It read the whole file; False when ``within_s`` ran out first (then only the pages it
    reached were checked, and :attr:`findings` None says nothing of the rest)."""


def quick_check(
    conn: sqlite3.Connection,
    *,
    within_s: float | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> Checked:
    """Run ``PRAGMA quick_check(3)`` on ``conn``, stopped after ``within_s`` seconds if given.

    A damaged page can also make the pragma itself raise ``sqlite3.DatabaseError``
    (SQLITE_CORRUPT, "database disk image is malformed") instead of listing findings: that
    is raised to the caller, who knows the file's name and what to do."""
    if within_s is None:
        return _checked(conn.execute("PRAGMA quick_check(3)").fetchall())
    deadline = monotonic() + within_s
    # Two stops. The progress handler is called between the virtual machine's steps; but
    # the walk of every b-tree's pages, most of the check's time, is one step (OP_IntegrityCk),
    # and SQLite before 3.43 (Raspberry Pi OS bookworm's 3.40.1) calls no progress handler
    # inside it: measured on 3.40.1, a 61 MB file checked to its end with its time already
    # spent. It does look at sqlite3_interrupt's flag there, so a watcher thread interrupts
    # at the deadline.
    conn.set_progress_handler(lambda: 1 if monotonic() > deadline else 0, PROGRESS_STEPS)
    done = threading.Event()
    guard = threading.Lock()  # no interrupt once the pragma has returned: it would stop the next

    def watch() -> None:
        while not done.wait(max(deadline - monotonic(), 0.0) or AGAIN_S):
            if monotonic() > deadline:
                with guard:
                    if done.is_set():
                        return
                    conn.interrupt()

    watcher = threading.Thread(target=watch, name="quick_check deadline", daemon=True)
    watcher.start()
    try:
        rows = conn.execute("PRAGMA quick_check(3)").fetchall()
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "") != "SQLITE_INTERRUPT":
            raise
        return Checked(None, finished=False)
    finally:
        with guard:
            done.set()
        watcher.join()
        conn.set_progress_handler(None, 0)
    return _checked(rows)


def _checked(rows: list[tuple[object, ...]]) -> Checked:
    findings = [line for row in rows for line in str(row[0]).splitlines() if line.strip()]
    return Checked(None if findings == ["ok"] else "; ".join(findings), finished=True)
