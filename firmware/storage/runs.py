"""The run log: one row per monitor run, so a start after an unclean stop can say so.

A run is one life of the monitor process, named by its pid and its start time
(``monitor``, ``started_wall``): a courier restarted within the same run finds
its row and does not count a new run. The courier records the row when the
monitor says hello, marks it ``clean`` when the monitor says goodbye, and
marks it ``reported`` once a FAULT about its unclean end has been stored —
either by the courier that saw the monitor vanish, or by the next run's
courier, which finds a row neither clean nor reported (a power cut, or a kill
that took the courier too). Each unclean end is reported once.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    monitor: str
    """The monitor's process id (as text)."""
    started_wall: str
    """When the monitor started (ISO 8601 UTC): with ``monitor``, names the run."""
    ended_wall: str | None
    clean: bool
    reported: bool


_COLUMNS = "id, monitor, started_wall, ended_wall, clean, reported"


def _run(row: tuple[object, ...]) -> Run:
    id_, monitor, started, ended, clean, reported = row
    return Run(
        int(str(id_)),
        str(monitor),
        str(started),
        None if ended is None else str(ended),
        bool(clean),
        bool(reported),
    )


def find_run(conn: sqlite3.Connection, monitor: str, started_wall: str) -> Run | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM runs WHERE monitor = ? AND started_wall = ?",
        (monitor, started_wall),
    ).fetchone()
    return None if row is None else _run(row)


def unreported_unclean_runs(conn: sqlite3.Connection, monitor: str, started_wall: str) -> list[Run]:
    """Earlier runs that ended neither cleanly nor with their unclean end reported, oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM runs WHERE clean = 0 AND reported = 0"
        " AND NOT (monitor = ? AND started_wall = ?) ORDER BY id",
        (monitor, started_wall),
    ).fetchall()
    return [_run(row) for row in rows]


def begin_run(conn: sqlite3.Connection, monitor: str, started_wall: str) -> bool:
    """Record this run (inside the caller's transaction); False when it was already recorded."""
    if find_run(conn, monitor, started_wall) is not None:
        return False
    conn.execute("INSERT INTO runs (monitor, started_wall) VALUES (?, ?)", (monitor, started_wall))
    return True


def first_run_wall(conn: sqlite3.Connection) -> str | None:
    """When the monitor first ran on this database (None: no run recorded): runs are never
    deleted, so it stays the same for the file's life."""
    row = conn.execute("SELECT started_wall FROM runs ORDER BY id LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def mark_reported(conn: sqlite3.Connection, run_ids: list[int]) -> None:
    """A FAULT about these runs' unclean ends is stored: never report them again."""
    conn.executemany("UPDATE runs SET reported = 1 WHERE id = ?", [(i,) for i in run_ids])


def end_run(
    conn: sqlite3.Connection, monitor: str, started_wall: str, ended_wall: str, *, clean: bool
) -> None:
    """The run ended: cleanly (the monitor said goodbye), or not and that is now reported."""
    if clean:
        conn.execute(
            "UPDATE runs SET ended_wall = ?, clean = 1 WHERE monitor = ? AND started_wall = ?",
            (ended_wall, monitor, started_wall),
        )
    else:
        conn.execute(
            "UPDATE runs SET ended_wall = ?, reported = 1 WHERE monitor = ? AND started_wall = ?",
            (ended_wall, monitor, started_wall),
        )
