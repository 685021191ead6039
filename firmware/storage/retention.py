"""Retention: what the device database keeps, for how long, and the space given back.

Without it the file only grows: before recordings were stored once, 10,000
alerts took 605 MB of the SD card, and nothing was ever deleted. The policy
(``[storage]`` in the config, :class:`RetentionPolicy`):

* ``keep_telemetry_days`` (7): telemetry the broker never took (it was out of
  reach for days) is dropped after this; stale health figures help no one.
  Delivered telemetry is not kept at all (it leaves the outbox on PUBACK).
* ``keep_windows_days`` (365): the IMU recordings of trips, by far the
  largest rows, are deleted after this (the events stay); so are the
  ``imu_window`` samples inside the bodies of events from before recordings.
* ``keep_events_days`` (0: forever): events themselves, about 1 kB each.

Nothing of an event still in the outbox is ever deleted: an alert waits
there until the broker has it or, with receipts, until a caregiver service
has committed it (docs/mqtt.md) — however old it is.

The courier runs :class:`Retention` on its heartbeat thread (never the
monitor loop): each step is one short transaction of at most
:data:`BATCH_ROWS` rows per kind, then ``PRAGMA incremental_vacuum`` gives up
to :data:`VACUUM_PAGES` freed pages back to the file system, so the file
shrinks without ever holding the write lock for long. A file from before
incremental vacuum is converted once, by :func:`enable_incremental_vacuum`
(a ``VACUUM``, which cannot run inside a transaction: never in a migration).
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from firmware.storage.database import Database

log = logging.getLogger(__name__)

BATCH_ROWS = 200
"""Rows of each kind deleted per step (one transaction)."""
VACUUM_PAGES = 256
"""Free pages given back per step (1 MB of 4 kB pages)."""
INTERVAL_S = 3600.0
"""Between passes once nothing is left to delete."""
AGAIN_S = 1.0
"""Between steps while a pass still finds work (a backlog is worked off in small bites)."""
AUTO_VACUUM_INCREMENTAL = 2


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days each kind of record is kept; 0 keeps it forever."""

    keep_telemetry_days: float = 7.0
    keep_windows_days: float = 365.0
    keep_events_days: float = 0.0


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one step deleted."""

    telemetry: int = 0
    windows: int = 0
    events: int = 0
    pages: int = 0
    """Free pages given back to the file system."""

    @property
    def rows(self) -> int:
        return self.telemetry + self.windows + self.events

    @property
    def anything(self) -> bool:
        return self.rows > 0 or self.pages > 0


def _cutoff(now: dt.datetime, days: float) -> str:
    """The wall time before which records go, in the format events and the outbox store."""
    return (now - dt.timedelta(days=days)).isoformat(timespec="milliseconds")


_NOT_QUEUED = "NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_seq = e.seq OR o.message_id = e.id)"
"""An event the outbox no longer holds: delivered (and receipted, with receipts)."""


def prune_step(
    conn: sqlite3.Connection, policy: RetentionPolicy, now: dt.datetime, batch: int = BATCH_ROWS
) -> Pruned:
    """Delete at most ``batch`` rows of each kind past their time (in the caller's transaction)."""
    telemetry = windows = events = 0
    if policy.keep_telemetry_days > 0:
        telemetry = conn.execute(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE kind = 'telemetry'"
            " AND queued_wall < ? ORDER BY id LIMIT ?)",
            (_cutoff(now, policy.keep_telemetry_days), batch),
        ).rowcount
    if policy.keep_windows_days > 0:
        cutoff = _cutoff(now, policy.keep_windows_days)
        windows = conn.execute(
            "DELETE FROM recordings WHERE event_id IN (SELECT e.id FROM recordings r"
            f" JOIN events e ON e.id = r.event_id WHERE e.wall_time < ? AND {_NOT_QUEUED}"
            " LIMIT ?)",
            (cutoff, batch),
        ).rowcount
        windows += conn.execute(
            "UPDATE events SET body = json_remove(body, '$.imu_window') WHERE seq IN"
            " (SELECT e.seq FROM events e WHERE e.type IN ('stumble', 'fall') AND e.wall_time < ?"
            f" AND instr(e.body, '\"imu_window\"') > 0 AND json_valid(e.body) AND {_NOT_QUEUED}"
            " LIMIT ?)",
            (cutoff, batch),
        ).rowcount
    if policy.keep_events_days > 0:
        cutoff = _cutoff(now, policy.keep_events_days)
        old = [
            (str(row[0]),)
            for row in conn.execute(
                f"SELECT e.id FROM events e WHERE e.wall_time < ? AND {_NOT_QUEUED}"
                " ORDER BY e.seq LIMIT ?",
                (cutoff, batch),
            )
        ]
        conn.executemany("DELETE FROM event_acks WHERE event_id = ?", old)
        conn.executemany("DELETE FROM events WHERE id = ?", old)  # recordings: ON DELETE CASCADE
        events = len(old)
        conn.execute(
            "DELETE FROM incidents WHERE opened_wall < ?"
            " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.incident = incidents.id)",
            (cutoff,),
        )
    return Pruned(telemetry, windows, events)


def vacuum_step(conn: sqlite3.Connection, pages: int = VACUUM_PAGES) -> int:
    """Give up to ``pages`` free pages back to the file system; how many were. Not inside a
    transaction (``executescript`` steps the pragma to its end; ``execute`` frees one page)."""
    if int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) != AUTO_VACUUM_INCREMENTAL:
        return 0
    (before,) = conn.execute("PRAGMA freelist_count").fetchone()
    if not before:
        return 0
    conn.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
    (after,) = conn.execute("PRAGMA freelist_count").fetchone()
    return int(before) - int(after)


def incremental_vacuum_enabled(conn: sqlite3.Connection) -> bool:
    return int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == AUTO_VACUUM_INCREMENTAL


def enable_incremental_vacuum(conn: sqlite3.Connection) -> None:
    """Convert a file from before incremental vacuum: a whole ``VACUUM``, once.

    It rewrites the file (needing as much free space again) and holds the
    write lock throughout, so the courier runs it at start before anything
    else uses the database; a failure (a full disk) leaves the file as it was.
    """
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("VACUUM")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Retention:
    """Runs the policy in small steps when due; :meth:`tick` is called about once a second."""

    def __init__(
        self,
        database: Database,
        policy: RetentionPolicy,
        *,
        paused: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        """``paused``: true while the records are not in the file (the courier's memory
        fallback): nothing is pruned from memory, where only the queue is."""
        self._db = database
        self.policy = policy
        self._paused = paused
        self._clock = clock
        self._wall = wall
        self._due = clock()
        self.total = Pruned()
        """Everything deleted since start."""

    def tick(self) -> Pruned | None:
        """One step if one is due (None if not); the next is soon while work remains."""
        now = self._clock()
        if now < self._due or self._paused():
            return None
        pruned = self.step()
        more = pruned.telemetry >= BATCH_ROWS or pruned.windows >= BATCH_ROWS
        more = more or pruned.events >= BATCH_ROWS or pruned.pages >= VACUUM_PAGES
        self._due = now + (AGAIN_S if more else INTERVAL_S)
        return pruned

    def step(self) -> Pruned:
        policy, wall = self.policy, self._wall()
        pruned = self._db.write(lambda conn: prune_step(conn, policy, wall))
        pages = self._db.read(vacuum_step)
        self.total = Pruned(
            self.total.telemetry + pruned.telemetry,
            self.total.windows + pruned.windows,
            self.total.events + pruned.events,
            self.total.pages + pages,
        )
        if pruned.rows:
            log.info(
                "retention: %d telemetry, %d windows, %d events deleted; %d pages given back",
                pruned.telemetry,
                pruned.windows,
                pruned.events,
                pages,
            )
        return Pruned(pruned.telemetry, pruned.windows, pruned.events, pages)
