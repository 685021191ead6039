"""The two databases the caregiver store runs on, behind one small connection interface.

SQLite (the standard library's driver) is the single-machine default: a file path in
``[server] database``. PostgreSQL (psycopg 3) is the provider engine: a
``postgresql://`` URL there. The store writes each query once, in the SQL both
engines share (``?`` placeholders, ``ON CONFLICT``, ``RETURNING``); a
:class:`Database` runs it on its engine and knows the little that differs: how a
transaction that writes begins, where the schema version is kept, how the
migrations' column types are spelt, and how space is given back.

Every method is called with the store's lock held: a :class:`Database` is one
connection, used by one thread at a time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import json
import logging
import os
import queue
import re
import sqlite3
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from caregiver.storage.pg_timeouts import (
    STATEMENT_TIMEOUTS,
    StatementTimeouts,
    migration_settings,
)
from core.sqlite_check import Checked, quick_check

log = logging.getLogger(__name__)


class _Lazy:
    """A module imported at its first attribute read. psycopg and its bundled libpq and
    OpenSSL are ~20 MB of resident memory: a service on a SQLite file (and its notifier
    process) never reads them, so never loads them."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self._name)
        try:
            return getattr(module, attr)
        except AttributeError:  # a submodule the package does not import itself
            return importlib.import_module(f"{self._name}.{attr}")


if TYPE_CHECKING:
    import psycopg
    import psycopg.conninfo
    import psycopg_pool
else:
    psycopg = _Lazy("psycopg")
    psycopg_pool = _Lazy("psycopg_pool")


class _PsycopgErrors:
    """A PostgreSQL database's ``errors``, read when first needed (psycopg loads then): psycopg's
    own (it reports a broken socket as one, an ``OperationalError``)."""

    def __get__(self, obj: object, owner: type | None = None) -> tuple[type[Exception], ...]:
        return (psycopg.Error,)


_T = TypeVar("_T")

Engine = Literal["sqlite", "postgresql"]

CHANGES_CHANNEL = "retroguard_changes"
"""The PostgreSQL notification channel on which instances tell each other what they changed."""
NOTIFY_LIMIT = 7900
"""PostgreSQL refuses a notification payload of 8000 bytes or more."""

POSTGRES_SCHEMES = ("postgresql", "postgres")


class Cursor(Protocol):
    """What the store reads from a statement (sqlite3's and psycopg's cursors both offer it)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


def engine_of(target: str | Path) -> Engine:
    """Which engine ``[server] database`` names: a ``postgresql://`` URL, else a SQLite file."""
    return "postgresql" if _scheme(str(target)) in POSTGRES_SCHEMES else "sqlite"


def database_problem(target: str) -> str | None:
    """Why ``[server] database`` cannot be used, or None (the config loader reports it)."""
    scheme = _scheme(target)
    if not scheme:
        return None if target.strip() else "give a SQLite file path or a postgresql:// URL"
    if scheme not in POSTGRES_SCHEMES:
        return (
            f"{scheme}:// databases are not supported: give a SQLite file path or a "
            "postgresql://user@host:port/dbname URL"
        )
    try:
        parts = urllib.parse.urlsplit(target)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        psycopg.conninfo.conninfo_to_dict(target)
    except (ValueError, psycopg.Error) as exc:
        return f"not a valid postgresql:// URL ({exc})"
    if not parts.path.strip("/"):
        return "the postgresql:// URL names no database (postgresql://user@host:port/dbname)"
    return None


def redacted(target: str) -> str:
    """The database as logs and error messages may show it: a URL's password replaced."""
    if engine_of(target) == "sqlite":
        return target
    parts = urllib.parse.urlsplit(target)
    if parts.password is None:
        return target
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _scheme(target: str) -> str:
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", target)
    return match.group(1).lower() if match else ""


class Database:
    """One connection to the caregiver database (see the module docstring)."""

    engine: Engine
    name: str
    """The database as messages name it (a URL without its password)."""
    errors: tuple[type[Exception], ...]
    """What the driver raises when the database fails (the store reports a StorageFault).
    Only the driver's: an OSError from other code inside a transaction (a notifier's pipe,
    a file) is that code's fault, not the database's (ingest undoes its message alone);
    the engine turns its own OS failures into the driver's errors."""

    def __init__(self) -> None:
        self._deferred: dict[tuple[str, tuple[str, ...], str], _DeferredRows] = {}
        """Rows :meth:`defer` red, not yet inserted: by table, columns and conflict clause."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        """Run ``sql``, after inserting the rows deferred so far (it sees them)."""
        if self._deferred:
            self.flush()
        return self._run(sql, params)

    def _run(self, sql: str, params: Sequence[object]) -> Cursor:
        raise NotImplementedError

    def defer(
        self,
        table: str,
        columns: Sequence[tuple[str, str]],
        row: Sequence[object],
        conflict: str = "",
    ) -> None:
        """Insert ``row`` (``columns``: each column's name and SQLite type) into ``table``
        later: together with the other rows deferred for it, in one statement, just before
        the next statement on this connection or its commit (a rollback forgets them). A
        batch's new incidents and alerts cost a statement a batch, not one each (on
        PostgreSQL psycopg's and the server's CPU per statement was most of an event's).
        Nothing the transaction reads can miss them; what the insert does wrong surfaces at
        that next statement. Rows for a table go in the order deferred: a row for a table
        whose deferred rows have other columns first inserts everything deferred."""
        key = (table, tuple(name for name, _ in columns), conflict)
        group = self._deferred.get(key)
        if group is None:
            if any(other[0] == table for other in self._deferred):
                self.flush()
            group = self._deferred[key] = _DeferredRows(table, tuple(columns), conflict, [])
        group.rows.append(row)

    def flush(self) -> None:
        """Insert the rows deferred so far, a statement per table (and columns)."""
        groups = list(self._deferred.values())
        self._deferred.clear()
        for group in groups:
            names = ", ".join(name for name, _ in group.columns)
            for start in range(0, len(group.rows), _DEFERRED_CHUNK):
                source, params = self.rows(
                    group.columns, group.rows[start : start + _DEFERRED_CHUNK]
                )
                self._run(f"INSERT INTO {group.table} ({names}) {source} {group.conflict}", params)

    def begin(self, *, synced: bool = True) -> None:
        """Start a transaction that will write. ``synced=False``: its commit may return before
        it is on disk, where the engine can (SQLite); :meth:`sync_committed` then makes it so.
        Engines whose commits are always durable (PostgreSQL) ignore it."""
        raise NotImplementedError

    def commit(self) -> None:
        self.execute("COMMIT")

    def sync_committed(self) -> None:
        """Every commit that returned before this call is on disk when it returns (any
        thread; it takes no lock). Nothing to do where every commit already is."""

    def rollback(self) -> None:
        self._deferred.clear()
        self._run("ROLLBACK", ())

    def close(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def pipeline(self) -> Iterator[None]:
        """Statements in the block are sent without waiting for each one's answer, where the
        engine can (PostgreSQL's pipeline mode): a batch pays a round trip only where it reads
        a result. Errors may surface at a later statement or at the block's end."""
        yield

    def settle(self) -> None:
        """Wait for the answers to every statement sent so far, raising here the error of any
        (in a pipeline; elsewhere each statement has answered already). After a statement
        failed in a pipeline, it also ends the stretch the server skips: every statement
        after an error up to the next sync (a rollback to a savepoint sent without it was
        skipped too, and the whole batch held)."""

    # -------------------------------------------------------------- schema

    def lock_schema(self) -> None:
        """Begin the migration's transaction so that two processes opening one database
        upgrade it once."""
        raise NotImplementedError

    def schema_version(self) -> int:
        raise NotImplementedError

    def set_schema_version(self, version: int) -> None:
        raise NotImplementedError

    def columns(self) -> dict[str, set[str]]:
        """Every table of the store and its columns."""
        raise NotImplementedError

    def ddl(self, statement: str) -> str:
        """A migration's statement (written in SQLite's types) as this engine spells it."""
        return statement

    def rows(
        self, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[object]]
    ) -> tuple[str, list[object]]:
        """Several rows as the source of an ``INSERT INTO table (columns) <source>``, in their
        order, and its parameters; ``columns``: each column's name and (SQLite's) type.
        SQLite: ``VALUES (?, ...), ...``."""
        marks = "(" + ", ".join("?" for _ in columns) + ")"
        return "VALUES " + ", ".join(marks for _ in rows), [v for row in rows for v in row]

    row_locks = ""
    """What makes a SELECT lock the rows it reads for the transaction (SQLite: nothing; its
    writing transactions take the whole file, one at a time)."""

    def one_of(self, column: str, values: Sequence[object]) -> tuple[str, list[object]]:
        """A condition that ``column`` is one of ``values``, and its parameters (SQLite:
        ``IN (?, ...)``)."""
        return f"{column} IN ({', '.join('?' for _ in values)})", list(values)

    def reserve_ids(self, table: str, count: int) -> Callable[[], list[int]]:
        """``count`` ids of ``table``'s generated key that no other writer will be given, for
        rows inserted later without waiting for their ``RETURNING``; none where asking
        costs more than it saves (SQLite: its statements wait for no server). Asked now, read
        when called (in a pipeline, the answer is waited for only then)."""
        return list

    # --------------------------------------------------------- maintenance

    def reclaim_space(self, pages: int) -> int:
        """Give up to ``pages`` of the space freed by deletions back; the pages given back (0
        when the engine's own vacuuming does it, or nothing is left to give back)."""
        raise NotImplementedError

    def size_bytes(self) -> int:
        raise NotImplementedError

    def optimize(self) -> None:
        """Refresh the query planner's statistics where the engine leaves that to the
        application; nothing where the server does it itself (PostgreSQL's autovacuum)."""


_DEFERRED_CHUNK = 200
"""Deferred rows per statement at most (SQLite allows 32,766 parameters)."""


SYNCHRONOUS = "FULL"
"""How every connection of :class:`SqliteDatabase` syncs (``PRAGMA synchronous``, set on
each connection as it opens: the setting is the connection's, not the file's).

Why FULL (safety rule 4): the service sends a device the receipt for an event once ingest
has committed it, and the device then deletes its own copy. SQLite's documentation of the
pragma in WAL mode (https://www.sqlite.org/pragma.html#pragma_synchronous, and
https://www.sqlite.org/wal.html, "Performance Considerations"): FULL: the WAL is synced at
each commit; NORMAL: the WAL is synced only around checkpoints, so durability is lost on
power loss (a commit can roll back after a power cut or an OS crash; an application's crash
loses nothing under either). Under NORMAL an alert committed and receipted, then caught by
a power cut before the WAL was next synced (the service's checkpoint, every second), was
gone from both sides. The device's own store is FULL for the same reason
(firmware/storage/database.py).

The connections: the store's writing one (ingest, the dashboard's changes): FULL, for the
above. The checkpointer (:class:`SqliteCheckpointer`) commits nothing, but a checkpoint
syncs the WAL before it copies frames into the database file and syncs the file after,
under NORMAL and FULL alike (never under OFF): FULL is set explicitly so that no build's
default (``SQLITE_DEFAULT_WAL_SYNCHRONOUS``) decides it. The reads (:class:`SqliteReads`)
commit nothing: the setting costs them nothing. The notifier process's own connection
(:class:`caregiver.outbox.SqliteOutbox`) stays NORMAL: it says why.

Cost: one more fsync of the WAL per commit (``benchmarks/caregiver_ingest.py --engine
sqlite-normal sqlite``; figures in docs/caregiver.md). Ingest's batches do not pay it in
their commits: begun with ``synced=False`` they commit at NORMAL, and their receipts wait
for one :meth:`SqliteDatabase.sync_committed` that covers every batch before it
(:mod:`caregiver.receipts`: a group commit), so a burst's events reach the browsers without
waiting for the disk."""


@dataclasses.dataclass(slots=True)
class _DeferredRows:
    """Rows for one ``INSERT INTO table (columns) ... conflict`` (:meth:`Database.defer`)."""

    table: str
    columns: tuple[tuple[str, str], ...]
    conflict: str
    rows: list[Sequence[object]]


class SqliteDatabase(Database):
    """A SQLite file in WAL mode, on the standard library's driver (autocommit: the store
    says where transactions begin and end), each connection ``synchronous=FULL``
    (:data:`SYNCHRONOUS`)."""

    engine: Engine = "sqlite"
    errors = (sqlite3.Error,)

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.name = str(path)
        if self.name != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # the database's, as sqlite3 reports a file it cannot open
                raise sqlite3.OperationalError(f"cannot make its directory: {exc}") from exc
        self._db = sqlite3.connect(self.name, check_same_thread=False, isolation_level=None)
        self._db.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
        self._db.execute(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
        self._unsynced = False
        """A transaction begun with ``synced=False`` is open (the level is NORMAL until it ends)."""

    def _run(self, sql: str, params: Sequence[object]) -> Cursor:
        return self._db.execute(sql, params)

    def executescript(self, script: str) -> None:
        self._db.executescript(script)

    def begin(self, *, synced: bool = True) -> None:
        if not synced:  # the level cannot change inside a transaction: set before, restored after
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._unsynced = True
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._synced_again()
            raise

    def commit(self) -> None:
        try:
            self.execute("COMMIT")
        finally:
            self._synced_again()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._synced_again()

    def _synced_again(self) -> None:
        """After a transaction begun with ``synced=False``: this connection's commits are
        synced again (:data:`SYNCHRONOUS`). Not while a failed commit left the transaction
        open: its rollback does it."""
        if self._unsynced and not self._db.in_transaction:
            self._db.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
            self._unsynced = False

    def sync_committed(self) -> None:
        """The WAL file synced, from a descriptor of its own: a commit is a write of its
        frames to the WAL (synced at the commit only under FULL), so once the WAL's data is on
        disk every commit written before is, as it would be after a FULL commit's own sync
        (SQLite recovers the committed frames from the WAL after a power cut). No WAL file:
        nothing written since the last connection closed (its checkpoint synced the file)."""
        if self.name in ("", ":memory:"):
            return
        try:
            fd = os.open(f"{self.name}-wal", os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        self._closed = True
        self._db.close()

    def lock_schema(self) -> None:
        self.begin()

    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, version: int) -> None:
        self._db.execute(f"PRAGMA user_version = {int(version)}")

    def columns(self) -> dict[str, set[str]]:
        tables = self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        return {
            table: {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for (table,) in tables
        }

    def reclaim_space(self, pages: int) -> int:
        (free,) = self._db.execute("PRAGMA freelist_count").fetchone()
        # sqlite3's execute() steps this pragma once, and each step frees one page;
        # executescript runs it to the end
        self._db.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
        return min(int(free), int(pages))

    def size_bytes(self) -> int:
        """The file's pages (the WAL aside)."""
        (pages,) = self._db.execute("PRAGMA page_count").fetchone()
        (size,) = self._db.execute("PRAGMA page_size").fetchone()
        return int(pages) * int(size)

    def optimize(self) -> None:
        """``PRAGMA optimize``: SQLite runs ``ANALYZE`` on the tables this connection's
        queries used whose statistics are missing or stale (the table grew 25 times since),
        each bounded by :data:`ANALYSIS_LIMIT`; usually nothing. What SQLite advises a
        long-lived connection to run now and then and before it closes
        (https://sqlite.org/pragma.html#pragma_optimize)."""
        self._db.execute("PRAGMA optimize")

    def optimize_opened(self) -> None:
        """At open, before the store's other connections open. ``sqlite_stat1`` is made
        (empty) if it is not there (``ANALYZE sqlite_schema``: that table has no index to
        analyze): the first ``ANALYZE`` otherwise makes it, a schema change after which every
        other connection reads the schema again and forgets which tables its queries used,
        so its own :meth:`optimize` found nothing to do. On SQLite 3.46 or later also
        ``PRAGMA optimize=0x10002``, which looks at every table, not only those this new
        connection used, as SQLite advises at open; older versions have no such bit (Debian 12
        ships 3.40): there the first :meth:`optimize` after the queries ran does it."""
        made = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
        ).fetchone()
        if made is None:
            self._db.execute("ANALYZE sqlite_schema")
        if OPTIMIZE_EVERY_TABLE:
            self._db.execute("PRAGMA optimize=0x10002")

    def quick_check(self, within_s: float) -> Checked:
        """``PRAGMA quick_check`` of the file, stopped after ``within_s`` seconds
        (:func:`core.sqlite_check.quick_check`; a damaged page may raise instead)."""
        return quick_check(self._db, within_s=within_s)

    def prepare_file(self) -> None:
        """WAL, and pages freed by the retention sweep able to go back to the disk: a new file
        is made so, an older one is rewritten once (VACUUM: a while for a big file)."""
        (mode,) = self._db.execute("PRAGMA auto_vacuum").fetchone()
        if mode != 2:
            self._db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            (tables,) = self._db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            if tables:
                self._db.execute("VACUUM")
        self._db.execute("PRAGMA journal_mode=WAL")  # synchronous stays FULL: set explicitly

    def leave_checkpoints(self) -> None:
        """This connection's commits no longer copy the WAL into the database file, which
        SQLite does by default in the commit that takes the WAL past 1000 pages (a write and
        an fsync of the file, inside that commit): :class:`SqliteCheckpointer` does it from a
        connection of its own. Past :data:`CHECKPOINT_BACKSTOP_PAGES` a commit still does, so
        the WAL stays bounded if nobody runs the checkpointer (a command-line tool's store)."""
        self._db.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_BACKSTOP_PAGES}")


ANALYSIS_LIMIT = 400
"""Rows of each index an ``ANALYZE`` on a :class:`SqliteDatabase` connection looks at
(``PRAGMA analysis_limit``): approximate statistics in milliseconds however large the file,
the value SQLite's documentation suggests for ``PRAGMA optimize``
(https://sqlite.org/lang_analyze.html#approx). Without it a first ``ANALYZE`` of a year's
history reads every index whole, holding the store's lock meanwhile."""

OPTIMIZE_EVERY_TABLE = sqlite3.sqlite_version_info >= (3, 46, 0)
"""``PRAGMA optimize`` takes the 0x10000 bit (every table, not only those the connection
used) from SQLite 3.46 on."""

CHECKPOINT_BACKSTOP_PAGES = 16384
"""The WAL's pages (64 MiB at SQLite's 4 KiB) past which a commit copies it into the file
itself: never reached while the caregiver service checkpoints every second."""


class SqliteCheckpointer:
    """Copies the WAL into the database file, from a connection of its own, for a store
    whose writing connection leaves it (:meth:`SqliteDatabase.leave_checkpoints`).

    Why: in a burst of 500 events from 200 devices, the commits that crossed SQLite's
    automatic checkpoint spent about 40 % of ingest's time copying pages and syncing the file
    (py-spy on ``benchmarks/caregiver.py``; each event's 14 s recording is a few pages), and
    every event behind them waited. A PASSIVE checkpoint here waits for no writer and no
    reader (it copies what no reader still needs, the rest next time), and SQLite runs it
    without Python's GIL: ingest keeps committing meanwhile."""

    CACHE_KIB = 64
    """A checkpoint copies frames from the WAL file to the database file: no cache to keep."""

    def __init__(self, path: str) -> None:
        self._db = SqliteDatabase(path)
        self._db.execute(f"PRAGMA cache_size = -{self.CACHE_KIB}")
        self._lock = threading.Lock()

    def run(self) -> tuple[int, int]:
        """One PASSIVE checkpoint: (the WAL's frames, of which now in the file)."""
        with self._lock:
            _busy, frames, copied = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(frames), int(copied)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class SqliteReads:
    """A second connection to the SQLite file, for reads (the dashboard's pages and its live
    feed), beside the store's writing one: in WAL mode a reader and the writer do not wait
    for each other, so the feed's reads during a burst no longer hold the store's lock that
    ingest's next batch waits for (55 ms of a 500-event burst's ingest at 200 devices,
    benchmarks/caregiver.py). Reads see what is committed. Its page cache is kept small:
    what it reads are the few rows of a card or a page."""

    CACHE_KIB = 512

    def __init__(self, path: str) -> None:
        self._db = SqliteDatabase(path)
        self._db.execute(f"PRAGMA cache_size = -{self.CACHE_KIB}")
        self._lock = threading.Lock()

    def run(self, read: Callable[[Database], _T]) -> _T:
        with self._lock:
            return read(self._db)

    def optimize(self) -> None:
        """:meth:`SqliteDatabase.optimize` for the tables this connection's reads (the
        dashboard's) used: its statistics are its own, loaded when it opened."""
        with self._lock:
            self._db.optimize()

    def close(self) -> None:
        with self._lock:
            self._db.close()


_SCHEMA_LOCK = 0x5245_5452_4F47  # "RETROG": the advisory lock two instances migrate under
_VERSION_TABLE = "retroguard_schema"

# SQLite's column types in the migrations, as PostgreSQL spells them: 64-bit integers
# (SQLite's INTEGER is), double precision (PostgreSQL's REAL is single), bytea for blobs;
# SQLite's WITHOUT ROWID tables are plain tables.
_PG_TYPES = (
    (
        re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"),
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\)\s*WITHOUT ROWID\b"), ")"),  # SQLite's storage choice; PostgreSQL has none
)


@functools.lru_cache(maxsize=512)
def _pyformat(sql: str) -> str:
    """The store's ``?`` placeholders as psycopg's ``%s`` (its queries hold no ``?`` of their
    own, and a literal ``%`` is doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresDatabase(Database):
    """A PostgreSQL database on psycopg 3, in autocommit mode like the SQLite one.

    A connection the server dropped (a restart, a failover) is opened again on the
    next call: the statement that found it broken fails as a StorageFault (ingest holds
    the message and tries again), the one after it works. A statement held past
    ``timeouts`` (a lock someone else holds, a server too slow) fails the same way
    (:mod:`caregiver.storage.pg_timeouts`); the connection stays usable.
    """

    engine: Engine = "postgresql"
    errors = _PsycopgErrors()
    row_locks = " FOR UPDATE"

    def __init__(self, url: str, timeouts: StatementTimeouts = STATEMENT_TIMEOUTS) -> None:
        super().__init__()
        self.url = url
        self.name = redacted(url)
        self.timeouts = timeouts
        self._closed = False
        self._pipeline: psycopg.Pipeline | None = None
        self._db: psycopg.Connection[Any] = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        """The writing connection prepares no statement: in pipeline mode psycopg counts a
        statement prepared once it has sent the Prepare, and the server skips it when an
        earlier statement of the stretch failed (a refused write in a batch). psycopg then
        asked for the missing statement on every later use ("prepared statement does not
        exist", SQLSTATE 26000) until a restart: every batch behind it, falls too, was held
        with the broker. The pooled reads use no pipeline and keep psycopg's preparing."""
        db = connect(self.url, self.timeouts)
        db.prepare_threshold = None
        return db

    def _connection(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise psycopg.OperationalError("the store was closed")
        if self._db.broken or self._db.closed:
            self._db.close()
            self._db = self._connect()
        return self._db

    def _run(self, sql: str, params: Sequence[object]) -> Cursor:
        return _pg_execute(self._connection(), sql, params, self._pipeline)

    def begin(self, *, synced: bool = True) -> None:
        self.execute("BEGIN")  # synchronous_commit on: every commit is on disk as it returns

    def rollback(self) -> None:
        self._deferred.clear()
        if not self._db.broken:
            self._run("ROLLBACK", ())

    def close(self) -> None:
        self._closed = True
        self._db.close()

    @contextlib.contextmanager
    def pipeline(self) -> Iterator[None]:
        with self._connection().pipeline() as pipeline:
            self._pipeline = pipeline
            try:
                yield
            finally:
                self._pipeline = None

    def settle(self) -> None:
        if self._pipeline is not None:
            self._pipeline.sync()

    def lock_schema(self) -> None:
        self.begin()
        for setting in migration_settings():  # the migrations' own limits, for their transaction
            self.execute(setting)
        self.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))

    def schema_version(self) -> int:
        (table,) = self.execute("SELECT to_regclass(?)", (_VERSION_TABLE,)).fetchone()
        if table is None:
            return 0
        row = self.execute(f"SELECT version FROM {_VERSION_TABLE}").fetchone()
        return int(row[0]) if row else 0

    def set_schema_version(self, version: int) -> None:
        self.execute(f"CREATE TABLE IF NOT EXISTS {_VERSION_TABLE} (version INTEGER NOT NULL)")
        self.execute(f"DELETE FROM {_VERSION_TABLE}")
        self.execute(f"INSERT INTO {_VERSION_TABLE} (version) VALUES (?)", (version,))

    def columns(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        rows = self.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name <> ?",
            (_VERSION_TABLE,),
        ).fetchall()
        for table, column in rows:
            found.setdefault(table, set()).add(column)
        return found

    def ddl(self, statement: str) -> str:
        for pattern, spelling in _PG_TYPES:
            statement = pattern.sub(spelling, statement)
        return statement

    def rows(
        self, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[object]]
    ) -> tuple[str, list[object]]:
        """The rows as one JSON parameter (``json_to_recordset``), not a placeholder per
        value: psycopg parses a statement of more than 50 parameters again every time and
        escapes text arrays in Python (milliseconds for a batch), where ``json.dumps`` is
        C and the statement's text is the same for any number of rows."""
        names = ", ".join(name for name, _ in columns)
        types = ", ".join(f"{name} {self.ddl(kind)}" for name, kind in columns)
        source = (
            f"SELECT {names} FROM json_to_recordset(?::json) AS r(n BIGINT, {types}) ORDER BY n"
        )
        keys = [name for name, _ in columns]
        records = [{"n": n, **dict(zip(keys, row, strict=True))} for n, row in enumerate(rows)]
        return source, [json.dumps(records)]

    def one_of(self, column: str, values: Sequence[object]) -> tuple[str, list[object]]:
        return f"{column} = ANY(?)", [list(values)]

    def reserve_ids(self, table: str, count: int) -> Callable[[], list[int]]:
        if count <= 0:
            return list
        cursor = self.execute(
            "SELECT nextval(pg_get_serial_sequence(?, 'id')) FROM generate_series(1, ?)",
            (table, count),
        )
        return lambda: sorted(int(row[0]) for row in cursor.fetchall())

    def reclaim_space(self, pages: int) -> int:
        """Autovacuum makes deleted rows' space reusable; nothing to do here."""
        return 0

    def size_bytes(self) -> int:
        (size,) = self.execute("SELECT pg_database_size(current_database())").fetchone()
        return int(size)


def connect(url: str, timeouts: StatementTimeouts = STATEMENT_TIMEOUTS) -> psycopg.Connection[Any]:
    """A connection of the caregiver's to PostgreSQL: autocommit, 10 s to connect, and
    ``timeouts`` on every statement (:mod:`caregiver.storage.pg_timeouts`)."""
    return psycopg.connect(url, **connect_kwargs(url, timeouts))


def connect_kwargs(url: str, timeouts: StatementTimeouts) -> dict[str, Any]:
    """What every connection of the caregiver's to ``url`` is opened with (also the pool's)."""
    return {"autocommit": True, "connect_timeout": 10, "options": timeouts.options(url)}


def _pg_execute(
    db: psycopg.Connection[Any],
    sql: str,
    params: Sequence[object],
    pipeline: psycopg.Pipeline | None = None,
) -> Cursor:
    cursor = (
        db.execute(_pyformat(sql), tuple(params))
        if params
        else db.execute(sql.encode())  # bytes: psycopg takes it as it is, no placeholders
    )
    return _PipelinedCursor(cursor, pipeline) if pipeline is not None else cursor


class _PipelinedCursor:
    """A statement's cursor in pipeline mode: its answer may not have arrived yet. Fetching
    waits for it (psycopg does that); the row count is read after a sync."""

    def __init__(self, cursor: psycopg.Cursor[Any], pipeline: psycopg.Pipeline) -> None:
        self._cursor = cursor
        self._pipeline = pipeline

    @property
    def rowcount(self) -> int:
        self._pipeline.sync()
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()


class PooledReads:
    """Connections for reads on PostgreSQL (psycopg_pool), beside the store's one writing
    connection: the dashboard's pages and its live feed read without waiting for ingest's
    batch to commit, and ingest's commits never wait for them."""

    def __init__(
        self, url: str, size: int, timeouts: StatementTimeouts = STATEMENT_TIMEOUTS
    ) -> None:
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=size,
            kwargs=connect_kwargs(url, timeouts),
            name="caregiver-reads",
            open=True,
        )

    def run(self, read: Callable[[Database], _T]) -> _T:
        """``read`` on a pooled connection. One that the server dropped since it was last
        used (a restart, a failover) is found out by the read and replaced, with every other
        idle one, and the read runs again: reads are safe to repeat."""
        for again in (False, True):
            with self._pool.connection(timeout=10) as db:
                try:
                    return read(_PooledDatabase(db))
                except psycopg.OperationalError:
                    if again or not db.broken:
                        raise
            self._pool.check()
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._pool.close()


class _PooledDatabase(Database):
    """One of :class:`PooledReads`' connections, lent for one read."""

    engine: Engine = "postgresql"
    errors = _PsycopgErrors()  # the pool's timeout is a psycopg.OperationalError

    def __init__(self, db: psycopg.Connection[Any]) -> None:
        super().__init__()
        self._db = db
        self.name = "pooled"

    def _run(self, sql: str, params: Sequence[object]) -> Cursor:
        return _pg_execute(self._db, sql, params)


def _listed_size(message: str) -> int:
    """The bytes ``message`` takes in a notification's JSON list: quoted and escaped (a JSON
    message's every quote doubles up), plus its separating comma."""
    return len(json.dumps(message).encode()) + 1


class Announcer:
    """Sends this instance's messages to the others (``NOTIFY``) from a thread of its own, on
    a connection of its own: the committing thread (ingest) only queues them, and a burst
    goes out as a few notifications, each a JSON list of as many messages as fit.

    A message that cannot be sent (the server is down) is dropped after a warning: the
    change itself is committed, and the other instances' browsers show it on reload.
    """

    def __init__(self, url: str, timeouts: StatementTimeouts = STATEMENT_TIMEOUTS) -> None:
        self._url = url
        self._timeouts = timeouts
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._db: psycopg.Connection[Any] | None = None
        self._thread = threading.Thread(target=self._run, name="caregiver-announce", daemon=True)
        self._thread.start()

    def announce(self, message: str) -> None:
        if _listed_size(message) + 2 <= NOTIFY_LIMIT:
            self._queue.put(message)
        else:  # caregiver.changes keeps its messages well under: never silent if one is not
            log.error(
                "a change too long to announce (%d bytes) was not sent to the other "
                "instances: their browsers show it on their next reload",
                _listed_size(message),
            )

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                break
            batch, size, stop = [first], 2 + _listed_size(first), False
            while True:  # what else is waiting, as long as it fits in one notification
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                if size + _listed_size(more) > NOTIFY_LIMIT:
                    self._send(batch)
                    batch, size = [], 2
                batch.append(more)
                size += _listed_size(more)
            self._send(batch)
            if stop:
                break
        if self._db is not None:
            self._db.close()

    def _send(self, batch: list[str]) -> None:
        """Once more on a fresh connection if it fails: an idle connection is found broken
        (the server restarted) only when used, and the first batch after a restart is
        typically the falls held during it — by then the others listen again, so a batch
        dropped here would reach none of their pages."""
        while True:
            fresh = self._db is None or self._db.broken or self._db.closed
            try:
                if self._db is None or fresh:
                    self._db = connect(self._url, self._timeouts)
                payload = json.dumps(batch, separators=(",", ":"))  # as _listed_size counts
                self._db.execute("SELECT pg_notify(%s, %s)", (CHANGES_CHANNEL, payload))
                return
            except psycopg.Error as exc:
                if self._db is not None:
                    self._db.close()
                if fresh:  # a new connection failed: the server is not there, no second try
                    log.warning(
                        "could not tell the other instances of %d changes: %s", len(batch), exc
                    )
                    return

    @property
    def thread(self) -> threading.Thread:
        """Dead, the other instances' pages never show this one's alerts (liveness)."""
        return self._thread

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(5)


class Listener:
    """A thread that hears what the other instances :meth:`~Database.announce` on a PostgreSQL
    database (``LISTEN``, its own connection) and hands each message to ``on_message``.

    A dropped connection is opened again after a second; what was announced meanwhile is
    not heard, so once the LISTEN is in place again ``on_resumed`` is called (the service
    ends every browser's stream: each page fetches itself and asks for the alarms it missed).
    """

    def __init__(
        self,
        url: str,
        on_message: Callable[[str], None],
        on_resumed: Callable[[], None] | None = None,
        timeouts: StatementTimeouts = STATEMENT_TIMEOUTS,
    ) -> None:
        self._url = url
        self._timeouts = timeouts
        self._on_message = on_message
        self._on_resumed = on_resumed
        self._stop = threading.Event()
        self.listening = threading.Event()
        """Set while the LISTEN is in place (tests wait for it)."""
        self._thread = threading.Thread(target=self._run, name="caregiver-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        lost = False
        while not self._stop.is_set():
            try:
                with connect(self._url, self._timeouts) as db:
                    db.execute(f"LISTEN {CHANGES_CHANNEL}")
                    self.listening.set()
                    if lost and self._on_resumed is not None:
                        lost = False
                        self._resumed()
                    while not self._stop.is_set():
                        for note in db.notifies(timeout=0.5):
                            self._deliver_batch(note.payload)
            except psycopg.Error as exc:
                lost = True
                self.listening.clear()
                log.warning("listening for other instances' changes failed: %s (again in 1 s)", exc)
                self._stop.wait(1.0)
        self.listening.clear()

    def _resumed(self) -> None:
        try:
            assert self._on_resumed is not None
            self._on_resumed()
        except Exception:
            log.exception("could not handle listening again after a loss")

    def _deliver_batch(self, payload: str) -> None:
        try:
            batch = json.loads(payload)
        except ValueError:
            return  # not an Announcer's: someone else's NOTIFY on our channel
        if not isinstance(batch, list):
            return
        for message in batch:
            if not isinstance(message, str):
                continue
            try:
                self._on_message(message)
            except Exception:
                log.exception("could not handle another instance's change")

    @property
    def thread(self) -> threading.Thread:
        """Dead, this instance's pages never show the others' alerts (liveness)."""
        return self._thread

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


_SQLITE_PASSING = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_NOMEM")
"""SQLite's result codes (extended ones begin with their primary's name) for a failure of the
disk, the memory or a lock, not of the statement: trying again later may succeed."""


def passing(exc: BaseException) -> bool:
    """``exc`` (a driver's error) is the database's state, which a retry or a restart may find
    gone (a disk full, an I/O error, a lock, a connection lost), not a statement the database
    refuses: a failed migration reports it as it is (the service exits 1 and is restarted),
    not as a :class:`~caregiver.storage.schema.SchemaError` (exit 2, not restarted)."""
    if isinstance(exc, sqlite3.Error):
        return (getattr(exc, "sqlite_errorname", None) or "").startswith(_SQLITE_PASSING)
    psycopg_module = sys.modules.get("psycopg")
    return psycopg_module is not None and isinstance(exc, psycopg_module.OperationalError)


def open_database(target: str | Path, timeouts: StatementTimeouts = STATEMENT_TIMEOUTS) -> Database:
    """Connect to what ``[server] database`` names (see :func:`engine_of`); ``timeouts``
    are PostgreSQL's (SQLite's writer waits at most its driver's 5 s for a busy file)."""
    if engine_of(target) == "postgresql":
        return PostgresDatabase(str(target), timeouts)
    return SqliteDatabase(target)
