"""Opening the device database: the durability settings, then the schema brought up to date.

One SQLite file per device (``storage.database``) holds the event log, the
MQTT outbox and the session log. WAL mode lets the publisher read while the
courier's main thread writes; ``synchronous=FULL`` makes a committed event
survive a power cut. Only the courier process writes it — never the
real-time loop's process.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from firmware.storage.schema import check_known, migrate


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating if needed) the database, upgraded to the current schema.

    Raises :class:`~firmware.storage.errors.SchemaError` for a file written by
    a newer release (or not a device database at all); such a file is closed
    again without a change, not even to its journal mode.
    """
    path = Path(path)
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=5.0, isolation_level=None, check_same_thread=False)
    try:
        check_known(conn, str(path))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn, str(path))
    except BaseException:
        conn.close()
        raise
    return conn


def check_database(path: str | Path) -> None:
    """Open and close the database once: a file it must refuse raises here, before start-up."""
    connect(path).close()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; ``ROLLBACK`` if anything (the commit too) fails.

    IMMEDIATE takes the write lock up front, so two writers wait for each
    other (up to the connection's 5 s timeout) instead of failing half-way.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
