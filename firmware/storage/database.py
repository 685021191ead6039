"""Opening the device database: the durability settings, then the schema brought up to date.

One SQLite file per device (``storage.database``) holds the event log, the
MQTT outbox, the session log and the run log. WAL mode lets the publisher
read while the courier's main thread writes; ``synchronous=FULL`` makes a
committed event survive a power cut. Only the courier process writes it —
never the real-time loop's process.

The stores (:class:`~firmware.storage.events.EventStore`,
:class:`~firmware.storage.outbox.Outbox`, the session archive) run their SQL
through a :class:`Database`: a :class:`FileDatabase` (one file, what tools
and tests open) or the courier's
:class:`~firmware.storage.fallback.FallbackDatabase` (the file while it takes
writes, memory while it does not).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Protocol, TypeVar

from firmware.storage.schema import check_known, migrate

T = TypeVar("T")

log = logging.getLogger(__name__)


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
        if not conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
            # A new file: space freed by retention can be given back page by page
            # (firmware/storage/retention.py). Only possible before the first table, and before
            # the journal mode is set; an older file is converted once by the courier.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn, str(path))
    except BaseException:
        conn.close()
        raise
    return conn


_open = threading.local()
"""This thread's open :func:`transaction` blocks: ``pending``, by connection, the actions
:func:`after_commit` registered in each."""


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; ``ROLLBACK`` if anything (the commit too) fails.

    IMMEDIATE takes the write lock up front, so two writers wait for each
    other (up to the connection's 5 s timeout) instead of failing half-way.
    SQLite may already have rolled back by itself (a full disk, an I/O error):
    then there is nothing to roll back, and the error that caused it is the
    one raised, never a "no transaction is active" in its place.

    What :func:`after_commit` registered inside runs once the ``COMMIT`` has returned, and
    never if it rolled back.
    """
    pending: dict[int, list[Callable[[], None]]] = _open.__dict__.setdefault("pending", {})
    conn.execute("BEGIN IMMEDIATE")  # fails on a connection already in a transaction
    actions = pending[id(conn)] = []
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    finally:
        del pending[id(conn)]
    for action in actions:
        try:
            action()
        except Exception:  # committed is committed: a failing follow-up must not say otherwise
            log.exception("an action after a commit failed")


def after_commit(conn: sqlite3.Connection, action: Callable[[], None]) -> None:
    """Run ``action`` once the :func:`transaction` open on ``conn`` (on this thread) commits;
    drop it if that transaction rolls back.

    Why: a writer that runs inside a caller's transaction (the outbox in the courier's
    drain) must tell what it did only once it is committed, and must not trust the caller
    to say when: a transaction the disk refused, or one run again in memory, would tell it
    wrongly or twice. ``action`` runs on the committing thread while the database may still
    be held: no SQL, no disk, no wait. Outside such a transaction (a connection in
    autocommit, a ``BEGIN`` of the caller's own): ``RuntimeError``, at once.
    """
    _actions(conn).append(action)


def require_transaction(conn: sqlite3.Connection) -> None:
    """``RuntimeError`` unless a :func:`transaction` is open on ``conn`` on this thread (a
    writer that will use :func:`after_commit` checks before its first write)."""
    _actions(conn)


def _actions(conn: sqlite3.Connection) -> list[Callable[[], None]]:
    pending: dict[int, list[Callable[[], None]]] = getattr(_open, "pending", {})
    actions = pending.get(id(conn))
    if actions is None:
        raise RuntimeError(
            "outside a transaction(): nothing would say when (or whether) this commits"
        )
    return actions


class Database(Protocol):
    """Where a store runs its SQL; every method may be called from any thread."""

    @property
    def generation(self) -> int:
        """Changes whenever the rows move to another database (the publisher starts over)."""
        ...

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(conn)`` on a connection of the current database; its result."""
        ...

    def write(self, work: Callable[[sqlite3.Connection], T], *, key: str | None = None) -> T:
        """``work(conn)`` inside one transaction, committed before this returns.

        ``key`` names the record written (an event or session id): a
        database that may keep it somewhere less durable than the file says
        so (:meth:`~firmware.storage.fallback.FallbackDatabase.holds_in_memory`).
        """
        ...

    def close(self) -> None: ...


class FileDatabase:
    """One database file, with a connection per thread (WAL: readers never wait on a writer)."""

    generation = 0
    """One file for its whole life: the rows never move."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._conn()  # open now, so a bad path or a newer database fails at construction

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return work(self._conn())

    def write(self, work: Callable[[sqlite3.Connection], T], *, key: str | None = None) -> T:
        with transaction(self._conn()) as conn:
            return work(conn)

    def close(self) -> None:
        """Close every thread's connection (call once the threads are done)."""
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


def as_database(database: str | Path | Database) -> tuple[Database, bool]:
    """A :class:`Database` for a path (opened here: the caller owns it) or an existing one."""
    if isinstance(database, str | Path):
        return FileDatabase(database), True
    return database, False
