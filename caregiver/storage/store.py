"""The caregiver store: every query the service runs, behind named operations, on either engine.

The queries are written once, in the SQL SQLite and PostgreSQL share; a
:class:`caregiver.storage.engines.Database` runs them on the engine the config
names. One connection guarded by one lock: every statement is short (no network I/O is
ever done while the lock is held), so the MQTT thread, the notifier, the
escalation ticker and the web handlers' worker threads share it without
contention worth a pool. Operations that must commit together run on a
:class:`Transaction` from :meth:`Store.transaction` (e.g. an event, its alert and
the notifications that alert queues); :class:`Store` offers the others directly,
each its own transaction. Callers see records (:mod:`caregiver.storage.records`),
never a connection, a cursor or SQL, so another database can stand behind the
same operations.

:class:`Transaction` is put together from one part per area of the schema (``tx_*.py``:
devices, events, incidents, alerts, notifications, walkers, commands, accounts, leases,
retention), each a mixin on :class:`caregiver.storage.tx_base._TxBase`, so one table's SQL
is in one place; the fragments they share are in :mod:`caregiver.storage.sql`, row decoding
in :mod:`caregiver.storage.rows`. This module keeps the connection: opening, faults,
transactions, batches and reads; :class:`Store`'s named operations (each its own
transaction) are in :mod:`caregiver.storage.store_ops`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import sqlite3
import sys
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from caregiver.storage.engines import (
    Announcer,
    Database,
    Listener,
    PooledReads,
    PostgresDatabase,
    SqliteCheckpointer,
    SqliteDatabase,
    SqliteReads,
    open_database,
    redacted,
)
from caregiver.storage.faults import StorageFault
from caregiver.storage.pg_timeouts import (
    DEADLOCK_DETECTED,
    LOCK_NOT_AVAILABLE,
    STATEMENT_TIMEOUTS,
    StatementTimeouts,
    why_ended,
)
from caregiver.storage.records import (
    NewEvent,
)
from caregiver.storage.schema import SchemaUpgrade, migrate
from caregiver.storage.side_faults import SideFaults, Table, Use
from caregiver.storage.sql import _any_engine_errors
from caregiver.storage.store_ops import StoreOperations
from caregiver.storage.tx_accounts import TxAccounts
from caregiver.storage.tx_alerts import TxAlerts
from caregiver.storage.tx_base import _Prepared
from caregiver.storage.tx_commands import TxCommands
from caregiver.storage.tx_devices import TxDevices
from caregiver.storage.tx_events import TxEvents
from caregiver.storage.tx_incidents import TxIncidents
from caregiver.storage.tx_leases import TxLeases
from caregiver.storage.tx_notifications import TxNotifications
from caregiver.storage.tx_retention import Pruned, TxRetention
from caregiver.storage.tx_walkers import TxWalkers

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class MessageUndone(Exception):
    """A batch's message was undone (:meth:`Store.message`) though its block did not raise."""


class Transaction(
    TxDevices,
    TxEvents,
    TxWalkers,
    TxCommands,
    TxAlerts,
    TxIncidents,
    TxNotifications,
    TxAccounts,
    TxLeases,
    TxRetention,
):
    """The named operations on one open transaction (from :meth:`Store.transaction`):
    everything done through it commits together, or nothing does."""

    def __init__(self, db: Database, prepared: _Prepared | None = None) -> None:
        self._db = db
        self._prepared = prepared


class Store(StoreOperations):
    """The caregiver database: opened (and migrated) once, shared by every thread.

    ``database`` is a SQLite file path or a ``postgresql://`` URL (see
    :mod:`caregiver.storage.engines`); ``timeouts``: how long a statement on PostgreSQL
    may wait for a lock and run, on every connection the store opens
    (:mod:`caregiver.storage.pg_timeouts`).
    """

    READ_CONNECTIONS = 4
    """On PostgreSQL: connections for reads (pages, the live feed), beside the writing one."""

    def __init__(
        self, database: str | Path, *, timeouts: StatementTimeouts = STATEMENT_TIMEOUTS
    ) -> None:
        self.location = str(database)
        self.timeouts = timeouts
        self._lock = threading.RLock()
        self._writing = threading.local()
        """``depth``: this thread's open transactions and batches (its reads then see what they
        wrote, so they stay on the writing connection)."""
        self._reads: PooledReads | SqliteReads | None = None
        self._checkpointer: SqliteCheckpointer | None = None
        with _opening(self.location):
            self._db = open_database(database, timeouts)
        self.engine = self._db.engine
        self.name = self._db.name
        """The database as logs name it (a URL without its password)."""
        self._announcer: Announcer | None = None
        self._closed = False
        self._batching = False
        """In :meth:`batch` (read and written only with ``_lock`` held)."""
        self._prepared: _Prepared | None = None
        """The open batch's events and incidents (:meth:`Transaction.prepare`)."""
        self._in_message = False
        """In a batch's :meth:`message` (read and written only with ``_lock`` held)."""
        self._message_failed = False
        """A transaction in the open :meth:`message` raised: the message is undone whole."""
        self._savepoints = True
        """The open batch's messages each have a savepoint (:meth:`batch`)."""
        self._spoilt = False
        """A message of the open batch failed without a savepoint: it must not commit."""
        self.damage: str | None = None
        """Set, for good, once a statement met a damaged page of the SQLite file: what a
        person reads (the file, what is wrong, what to do). A damaged file does not heal, so a
        later commit that missed the damaged pages does not clear it (:meth:`_faults`)."""
        self.on_damaged: Callable[[str], None] | None = None
        """Called once, with :attr:`damage`, when it is first set (on the thread that met it,
        perhaps with the store's lock held: it must not call the store)."""
        self.side_faults = SideFaults()
        """The parts of the database (side tables) the service goes on without now: whatever
        survives a fault of one says it here, the banner and /healthz say what it holds."""
        try:
            with self._lock, _opening(self.location):
                if isinstance(self._db, SqliteDatabase):
                    self._check_sqlite(self._db)
                    self._prepare_sqlite(self._db)
                self.schema: SchemaUpgrade = migrate(self._db)
        except BaseException:
            self._db.close()
            raise
        if isinstance(self._db, PostgresDatabase):
            try:
                with _opening(self.location):
                    self._announcer = Announcer(self._db.url, timeouts)
                    self._reads = PooledReads(self._db.url, self.READ_CONNECTIONS, timeouts)
            except BaseException:
                if self._announcer is not None:
                    self._announcer.stop()
                self._db.close()
                raise
        elif isinstance(self._db, SqliteDatabase) and self._db.name != ":memory:":
            # a second connection to a database in memory would be another database
            try:
                with _opening(self.location):
                    self._db.optimize_opened()  # before the reads open: they load its figures
                    self._reads = SqliteReads(self._db.name)
                    self._checkpointer = SqliteCheckpointer(self._db.name)
                    self._db.leave_checkpoints()
            except BaseException:
                if self._reads is not None:
                    self._reads.close()
                self._db.close()
                raise

    def _check_sqlite(self, db: SqliteDatabase) -> None:
        """``PRAGMA quick_check`` of an existing file, within :data:`QUICK_CHECK_WITHIN_S`: a
        file damaged past its first pages opens, and said "database disk image is malformed"
        (naming no file) only when a statement reached the damaged page: a report, or an
        alert never stored. Found here, it is the one line naming the file and exit status 2,
        as a file damaged at its start is; a page that breaks later is met in use
        (:meth:`_faults`). Not moved aside, as the device's is: this file is the record of
        every incident, and only a person should decide what replaces it."""
        path = Path(db.name)
        if db.name == ":memory:" or not path.exists() or not path.stat().st_size:
            return
        checked = db.quick_check(QUICK_CHECK_WITHIN_S)
        if checked.findings is not None:
            raise StorageFault(
                f"caregiver database {self.location}: cannot open it: damaged (quick_check: "
                f"{checked.findings}). {_DAMAGED_ADVICE}",
                lasting=True,
            )
        if not checked.finished:
            log.warning(
                "%s: checked for damage for %.0f s, not to its end (a large file, a slow disk): "
                "a damaged page past what was read is found when a statement reaches it",
                self.location,
                QUICK_CHECK_WITHIN_S,
            )

    @contextmanager
    def _faults(self) -> Iterator[None]:
        """A driver's error in a statement as a :class:`StorageFault`
        (:func:`_as_storage_fault`); a damaged file also sets :attr:`damage` and calls
        :attr:`on_damaged` the first time."""
        try:
            with _as_storage_fault(self._db, self.location, self.timeouts):
                yield
        except StorageFault as exc:
            if exc.lasting and self.damage is None:
                self.damage = str(exc)
                if self.on_damaged is not None:
                    self.on_damaged(self.damage)
            raise

    def _prepare_sqlite(self, db: SqliteDatabase) -> None:
        if db.name != ":memory:" and Path(db.name).exists() and Path(db.name).stat().st_size:
            (mode,) = db.execute("PRAGMA auto_vacuum").fetchone()
            if mode != 2:
                log.info("%s: rewriting the database once to allow incremental vacuum", db.name)
        db.prepare_file()

    def prune(
        self,
        *,
        recordings_before: float | None,
        notifications_before: float | None,
        routine_before: float | None,
        now: float,
        stopping: Callable[[], bool] = lambda: False,
    ) -> Pruned:
        """Delete what is older than the given times (None keeps it; see
        :class:`caregiver.config.RetentionConfig`), then give the freed space back.

        A chunk of at most :data:`PRUNE_CHUNK` rows a transaction, the store's lock let go
        between them: the sweep was one transaction, and a backlog (retention turned on for a
        year's history, sweeps that failed for weeks) held ingest's falls and the escalation
        ticker's writes for as long as it took, and on PostgreSQL met the statement timeout
        (:mod:`caregiver.storage.pg_timeouts`) and failed whole, every time. What a chunk
        removed stays removed if a later one fails: everything here is "older than", so the
        next sweep goes on from there.

        ``stopping`` is asked before each chunk: once it says yes, no chunk begins and what
        the committed chunks removed is returned, with :attr:`Pruned.stopped` saying where it
        was (the service stopping mid-sweep: before, its next chunk met the closed store and
        the log said the sweep failed)."""
        sweep = _Sweep(Pruned(0, 0, 0, 0, 0, pages_freed=0), stopping)
        try:
            if recordings_before is not None:
                old = recordings_before
                self._in_chunks(
                    sweep, "recordings", lambda tx: tx.prune_recordings(old, PRUNE_CHUNK)
                )
                after: str | None = ""
                while after is not None:
                    sweep.before_chunk("windows")
                    with self.transaction() as tx:
                        cut, after = tx.cut_windows(old, after, PRUNE_CHUNK)
                    sweep.add("windows", cut)
                self._in_chunks(
                    sweep, "windows", lambda tx: tx.unmark_windows(old, PRUNE_CHUNK), counted=False
                )
            if notifications_before is not None:
                sent = notifications_before
                self._in_chunks(
                    sweep, "notifications", lambda tx: tx.prune_notifications(sent, PRUNE_CHUNK)
                )
            if routine_before is not None:
                routine_old = routine_before
                self._in_chunks(
                    sweep, "routine_events", lambda tx: tx.prune_routine(routine_old, PRUNE_CHUNK)
                )
            sweep.before_chunk("login_sessions")
            with self.transaction() as tx:
                sweep.add("login_sessions", tx.prune_logins(now))
            while True:  # the space back a chunk at a time too: its pages are moved and written
                sweep.before_chunk("pages_freed")
                with self._lock, self._faults():
                    given = self._db.reclaim_space(RECLAIM_CHUNK_PAGES)
                sweep.add("pages_freed", given)
                if given < RECLAIM_CHUNK_PAGES:
                    break
        except _Stopped as stopped:
            return dataclasses.replace(sweep.pruned, stopped=stopped.words)
        return sweep.pruned

    def _in_chunks(
        self,
        sweep: _Sweep,
        kind: str,
        chunk: Callable[[Transaction], int],
        *,
        counted: bool = True,
    ) -> None:
        """Run ``chunk`` a transaction at a time until it removes fewer than
        :data:`PRUNE_CHUNK` rows, each committed chunk's count added to ``sweep``'s ``kind``
        (unless not ``counted``)."""
        while True:
            sweep.before_chunk(kind)
            with self.transaction() as tx:
                done = chunk(tx)
            if counted:
                sweep.add(kind, done)
            if done < PRUNE_CHUNK:
                return

    def probe_side_faults(self) -> None:
        """Read each table a read of which failed (:meth:`SideFaults.unread_tables`, one row
        of each): a table that reads again is said to read again (its part is not once none
        of its tables is failing). Without this a part stayed said until the work that uses
        it next succeeded (a page naming the walkers, the next card's plan line), long after
        its table was put back.

        A read clears only a failed read (:class:`~caregiver.storage.side_faults.Use`): a
        table whose write failed stays said until a write of its rows commits (the next
        telemetry, session summary, roster, stage or recording written; not one handled
        unchanged). Read here, a table that reads but refuses writes (a permission revoked,
        a trigger refusing, a read-only or full disk) was said to work, then to fail at its
        next refused write: the banner, ``/healthz`` and the log's start and end lines came
        and went every few seconds. A write here that changes nothing and is rolled back
        would not say it either: a trigger fires only for a row written, and SQLite reaches
        a full disk only at the commit. The service's housekeeping thread calls it while a
        part fails (:data:`SIDE_PROBE_EVERY_S`)."""
        failed = self.side_faults.unread_tables()
        unreadable = set(self.unreadable(dict.fromkeys(table for _, table in failed)))
        for part, table in failed:
            if table not in unreadable:
                self.side_faults.works(part, Use.READ, (table,))

    def unreadable(self, tables: Iterable[Table]) -> tuple[Table, ...]:
        """Those of ``tables`` that cannot be read now (one row of each, each read alone):
        missing, locked or damaged. What tells a side message let go because its table is
        gone from one whose table reads and refuses its rows (ingest's ``_side_fault``)."""
        failing: list[Table] = []
        for table in tables:
            try:
                self._read(functools.partial(_read_tables, (table,)))
            except StorageFault:
                failing.append(table)
        return tuple(failing)

    def file_bytes(self) -> int:
        """The database's size on disk (SQLite: its file's pages, the WAL aside)."""
        with self._lock, self._faults():
            return self._db.size_bytes()

    def optimize(self) -> None:
        """Refresh the query planner's statistics where they are missing or stale, on each
        SQLite connection that runs queries (the writing one, then the reads': each holds the
        statistics it loaded and looks at the tables its own queries used; on SQLite 3.46 or
        later the one at open looked at all of them, :meth:`SqliteDatabase.optimize_opened`).
        Each ``ANALYZE`` reads at most :data:`~caregiver.storage.engines.ANALYSIS_LIMIT` rows
        of an index: milliseconds under the store's lock, and mostly there is nothing to do.
        On PostgreSQL nothing: autovacuum analyzes the tables (docs/provider.md). A failure
        is a :class:`StorageFault`. The service's housekeeping calls it every
        :data:`OPTIMIZE_EVERY_S` and :meth:`close` once more, as SQLite advises
        (https://sqlite.org/lang_analyze.html#req)."""
        with self._lock, self._faults():
            self._db.optimize()
        reads = self._reads
        if isinstance(reads, SqliteReads):
            with self._faults():
                reads.optimize()

    def close(self) -> None:
        """Close every connection; on SQLite first :meth:`optimize`, whose failure is logged
        and does not keep the store open."""
        if self._closed:
            return
        self._closed = True
        try:
            self.optimize()
        except StorageFault as fault:
            log.warning("could not refresh the query planner's statistics at close: %s", fault)
        if self._announcer is not None:
            self._announcer.stop()
            self._announcer = None
        if self._reads is not None:
            self._reads.close()
            self._reads = None
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        with self._lock:
            self._db.close()

    def checkpoint(self) -> tuple[int, int]:
        """Copy what the WAL holds into the SQLite file, off the writing connection (whose
        commits leave it: :class:`~caregiver.storage.engines.SqliteCheckpointer` says why):
        (the WAL's frames, of which now in the file). The caregiver service calls it every
        second; on PostgreSQL, or a database in memory, there is nothing to do: (0, 0)."""
        checkpointer = self._checkpointer
        if checkpointer is None:
            return 0, 0
        with self._faults():
            return checkpointer.run()

    # ----------------------------------------------------- other instances

    @property
    def shared(self) -> bool:
        """Other instances may use this database too (PostgreSQL): changes are announced."""
        return isinstance(self._db, PostgresDatabase)

    @property
    def announcer_thread(self) -> threading.Thread | None:
        """The thread that sends :meth:`announce`'s messages (None: SQLite, or closed)."""
        announcer = self._announcer
        return None if announcer is None else announcer.thread

    def announce(self, message: str) -> None:
        """Tell every other instance on this database ``message`` (a no-op on SQLite). Only
        queued here: a thread sends it (:class:`~caregiver.storage.engines.Announcer`), so the
        committing thread never waits on it, and a failure is logged, never raised."""
        if self._announcer is not None:
            self._announcer.announce(message)

    def listen(
        self,
        on_message: Callable[[str], None],
        on_resumed: Callable[[], None] | None = None,
    ) -> Listener | None:
        """Hear what the other instances announce (a thread; None on SQLite); ``on_resumed``
        once listening again after a loss (what was announced meanwhile was not heard)."""
        if not isinstance(self._db, PostgresDatabase):
            return None
        return Listener(self._db.url, on_message, on_resumed, self.timeouts)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Operations that commit together (rolled back if the block raises). Keep the block
        short and free of I/O: every other thread waits for it. A database failure is a
        :class:`StorageFault` (a failed commit too, rolled back). Inside :meth:`batch` it is a
        savepoint: rolled back alone if the block raises, committed with the batch. Inside a
        batch's :meth:`message` it is part of the message: if the block raises, the whole
        message is undone (its savepoint is the message's: one statement fewer each way, a
        round trip's CPU each on PostgreSQL)."""
        with self._lock, self._faults(), self._written():
            if self._in_message:
                try:
                    yield Transaction(self._db, self._prepared)
                except BaseException:
                    self._message_failed = True
                    raise
                return
            if self._batching:
                self._db.execute("SAVEPOINT one")
                try:
                    yield Transaction(self._db, self._prepared)
                except BaseException:
                    with contextlib.suppress(*self._db.errors):
                        self._db.execute("ROLLBACK TO SAVEPOINT one")
                        self._db.execute("RELEASE SAVEPOINT one")
                    raise
                self._db.execute("RELEASE SAVEPOINT one")
                return
            self._db.begin()
            try:
                yield Transaction(self._db)
                # In the try: a COMMIT can fail and leave the transaction open (SQLite, unless
                # it rolled back itself); left so, every later BEGIN on this one connection
                # failed ("within a transaction") until a restart. Rolled back, the failure is
                # this transaction's StorageFault alone. (PostgreSQL ends it itself.)
                self._db.commit()
            except BaseException:
                with contextlib.suppress(*self._db.errors):  # already ended: the first error
                    self._db.rollback()
                raise

    def sync_committed(self) -> None:
        """Every commit that returned before this call is on disk once it returns: the second
        half of a :meth:`batch` stored with ``synced=False`` (ingest's receipts wait for it,
        :class:`caregiver.receipts.DurableReceipts`). Takes no lock: a batch being stored
        meanwhile is not waited for (and is not covered). A failure is a
        :class:`StorageFault`."""
        try:
            self._db.sync_committed()
        except OSError as exc:
            raise StorageFault(f"caregiver database: syncing its log to disk: {exc}") from exc

    @contextmanager
    def message(self, event_id: str | None = None) -> Iterator[None]:
        """One message's handling in a :meth:`batch` (``event_id``: its event's, if it is one):
        if the block raises anything but a :class:`StorageFault`, all it wrote is undone, its
        event's row the batch inserted up front with it, and the batch goes on without it.

        Without this, a bug in the alerting left the event stored with no alert and no
        receipt: the device sent it again, the service took it for a duplicate, and the fall
        paged nobody. Undone, the event is not stored, so a resent one is new and alerted.
        Outside a batch the message's own transaction is its undo (nothing to do here).
        A savepoint: on PostgreSQL it also keeps the batch's transaction usable after a Python
        exception is rolled back to it (after a database error the pipeline stays aborted and
        the whole batch is held, as it should be). A :meth:`transaction` in the block that
        raised undoes the message even if the block went on (:class:`MessageUndone` then says
        so). In a batch opened with ``savepoints=False`` there is no savepoint: a block that
        raises spoils the batch, which must then end (see :meth:`batch`)."""
        with self._lock:
            if not self._batching or self._in_message:
                yield
                return
            if not self._savepoints:
                yield from self._message_without_savepoint()
                return
            prepared = self._prepared
            before = prepared.copy() if prepared is not None else None
            with self._faults():  # one for the whole: it costs what a statement does
                self._db.execute("SAVEPOINT message")
                self._in_message, self._message_failed = True, False
                try:
                    yield
                    if self._message_failed:
                        raise MessageUndone("a transaction of the message failed and was let go")
                except StorageFault:
                    raise  # the batch is rolled back whole
                except Exception as exc:
                    if isinstance(exc, self._db.errors):
                        raise  # a StorageFault (the with above): the batch is rolled back whole
                    self._in_message = False
                    self._db.execute("ROLLBACK TO SAVEPOINT message")
                    if before is not None and event_id in before.new_events:
                        # inserted for this message, before its savepoint: undone by hand, and a
                        # copy later in the batch is then inserted as a new event
                        self._db.execute("DELETE FROM events WHERE id = ?", (event_id,))
                        before.events.discard(event_id)
                        before.new_events.discard(event_id)
                    self._db.execute("RELEASE SAVEPOINT message")
                    if prepared is not None and before is not None:
                        prepared.restore(before)
                    raise
                finally:
                    self._in_message = False
                self._db.execute("RELEASE SAVEPOINT message")

    def _message_without_savepoint(self) -> Iterator[None]:
        """A message in a batch opened with ``savepoints=False``: nothing to undo it alone.
        If its block raises, the batch is spoilt: it must end by that exception (rolled back
        whole), and it refuses to commit if the caller went on instead."""
        self._in_message, self._message_failed = True, False
        try:
            yield
            if self._message_failed:
                raise MessageUndone("a transaction of the message failed and was let go")
        except BaseException:
            self._spoilt = True
            raise
        finally:
            self._in_message = False

    @contextmanager
    def batch(
        self,
        devices: Collection[str] = (),
        now: float = 0.0,
        events: Sequence[tuple[NewEvent, float]] = (),
        *,
        savepoints: bool = True,
        synced: bool = True,
        unheard: Collection[str] = (),
    ) -> Iterator[None]:
        """Group commit: every :meth:`transaction` in the block commits at its end, in one
        commit (a commit costs as much as the rest of a message's work: a burst of messages
        is stored in half the time). All or nothing: if the block raises, nothing of it is
        kept. Other threads wait for the whole block: keep it to a bounded number of
        messages.

        ``devices``: every device the block writes for, locked first in id order
        (:meth:`Transaction.lock_devices`: two instances' batches cannot deadlock) and seen
        at ``now``, but for those in ``unheard`` (only the broker's "offline" of them in the
        block: they keep the time they were last heard); ``events``: the events (and when
        each was received) its messages will record, inserted up front
        (:meth:`Transaction.prepare`). On PostgreSQL the block's statements go out in
        pipeline mode: only a statement whose result is read waits for the server.

        ``savepoints=False``: the block's :meth:`message` s get no savepoint (two statements
        fewer each). A message whose block raises then cannot be undone alone: the batch
        must end by that exception, and is stored again with savepoints (what
        :meth:`caregiver.ingest.Ingestor.handle_batch` does); it never commits.

        ``synced=False``: the commit may return before it is on disk (SQLite; PostgreSQL's
        always is): nothing that tells the outside world it is stored (a receipt) may go out
        until :meth:`sync_committed` has returned after it."""
        with self._lock, self._faults(), self._written():
            try:
                with self._db.pipeline():
                    self._db.begin(synced=synced)
                    ops = Transaction(self._db)
                    ops.lock_devices(devices, now, unheard)
                    self._prepared = ops.prepare(events) if events else None
                    self._batching, self._savepoints, self._spoilt = True, savepoints, False
                    yield
                    self._batching = False
                    if self._spoilt:
                        raise MessageUndone("a message without a savepoint failed: not committed")
                    Transaction(self._db, self._prepared).finish()
                    self._prepared = None
                    self._db.commit()
            except BaseException:
                self._batching = False
                self._prepared = None
                with contextlib.suppress(*self._db.errors):
                    self._db.rollback()
                raise

    @contextmanager
    def _written(self) -> Iterator[None]:
        self._writing.depth = getattr(self._writing, "depth", 0) + 1
        try:
            yield
        finally:
            self._writing.depth -= 1

    @contextmanager
    def _statement(self) -> Iterator[Transaction]:
        """For an operation of one statement: SQLite runs it as its own transaction."""
        with self._lock, self._faults():
            yield Transaction(self._db)

    def _read(self, read: Callable[[Transaction], _T]) -> _T:
        """Run an operation that only reads: on a connection of its own (PostgreSQL: one of
        the pooled connections; a SQLite file: its reading connection), so that it waits
        neither for nor on ingest's batch (a thread inside a transaction or batch reads on
        the writing connection, and sees its own writes; an in-memory SQLite database has
        only that one)."""
        reads = self._reads
        depth: int = getattr(self._writing, "depth", 0)
        if depth > 0:
            with self._lock:
                return self._aside(read)
        if reads is None:
            with self._statement() as ops:
                return read(ops)
        with self._faults():
            return reads.run(lambda db: read(Transaction(db)))

    def attachment(self, write: Callable[[Transaction], _T]) -> _T:
        """A write that is an attachment of this thread's open transaction (a fall's sensor
        recording, beside its event and alert), under a savepoint of its own: if it fails (its
        table missing, damaged, refusing) it is rolled back to, the failure is the write's
        :class:`StorageFault` alone, and the transaction goes on and commits without it.
        Before, a recordings table that refused held the fall's recording event, and every
        event behind it from that device, with the broker for as long as it refused. Outside
        a transaction: its own."""
        with self._lock:
            if getattr(self._writing, "depth", 0) == 0:
                with self.transaction() as tx:
                    return write(tx)
            return self._aside(write, settle=True)

    def _aside(self, read: Callable[[Transaction], _T], *, settle: bool = False) -> _T:
        """A read made inside this thread's open transaction or batch (the lock held), under
        a savepoint of its own: if it fails (a side table missing or damaged, a statement
        timing out) it is rolled back to, and the failure is the read's
        :class:`StorageFault` alone, which its caller may survive (the walkers' names, read
        while ingest stores and pages a fall: the fall is named by the walker's id,
        :func:`caregiver.walkers.walkers_shown`). Before, the failed read was the whole
        transaction's: the fall was not stored, not paged, and held with the broker for as
        long as the table stayed unreadable (on PostgreSQL a failed statement also leaves
        the transaction refusing every statement after it, so catching it was not enough).

        When the savepoint cannot be rolled back to (the engine ended the transaction
        itself, or the error was an earlier statement's that the pipeline reported here),
        the transaction is lost with it: the driver's error goes on unconverted, past any
        caller that would survive a read's fault, and the transaction's end reports it
        (a :class:`StorageFault`: ingest holds its messages) rather than letting its later
        statements run outside it.

        ``settle``: the answers are waited for inside it (a write whose result is not read:
        in a pipeline its error would come at a later statement, outside the savepoint)."""
        db = self._db
        # Neither this nor the RELEASE is the read's: a failure is the transaction's (the
        # rows deferred so far are inserted first), unconverted, as a lost savepoint's.
        db.execute("SAVEPOINT aside")
        try:
            result = read(Transaction(db))
            if settle:
                db.settle()
        except db.errors as exc:
            try:
                # in a pipeline: else the server skips the rollback too. What was sent after
                # the error (a write's next statement: psycopg may report an error at a later
                # statement) is reported skipped here, "pipeline aborted": the stretch ends
                # with it, and whether the transaction lives is the rollback's to say
                with contextlib.suppress(*db.errors):
                    db.settle()
                db.execute("ROLLBACK TO SAVEPOINT aside")
                db.execute("RELEASE SAVEPOINT aside")
                db.settle()  # rolled back to, here and now, or the transaction is lost
            except db.errors:
                raise exc from None
            with self._faults():  # a damaged page is the store's damage, said as ever
                raise
        db.execute("RELEASE SAVEPOINT aside")
        return result


def _read_tables(tables: tuple[str, ...], ops: Transaction) -> None:
    """One row of each of ``tables`` (names of the code's, never the input's)."""
    for table in tables:
        ops.readable(table)


@contextmanager
def _as_storage_fault(
    db: Database, location: str, timeouts: StatementTimeouts = STATEMENT_TIMEOUTS
) -> Iterator[None]:
    """The driver's error as a :class:`StorageFault`. A damaged SQLite file
    (SQLITE_CORRUPT, SQLITE_NOTADB: "database disk image is malformed") names the file and
    says what to do, and is ``lasting``: before, it said "caregiver database: database disk
    image is malformed", naming no file, from a report or in the log as alerts were held. A
    statement PostgreSQL ended at one of ``timeouts`` says which and what holds it
    (:func:`~caregiver.storage.pg_timeouts.why_ended`)."""
    try:
        yield
    except db.errors as exc:
        if _damaged(exc):
            raise StorageFault(
                f"caregiver database {redacted(location)}: {_one_line(exc)}. {_DAMAGED_ADVICE}",
                lasting=True,
            ) from exc
        raise StorageFault(
            f"caregiver database: {exc}{why_ended(exc, timeouts)}",
            refused_data=_refused_data(exc),
            locked=_locked(exc),
        ) from exc


def _one_line(exc: BaseException) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


class _Stopped(Exception):
    """A sweep asked to stop before its next chunk (:meth:`Store.prune`)."""

    def __init__(self, words: str) -> None:
        super().__init__(words)
        self.words = words


_SWEPT = {
    "recordings": "recordings",
    "windows": "older monitors' IMU windows",
    "notifications": "notifications",
    "routine_events": "routine events",
    "login_sessions": "expired logins",
    "pages_freed": "freed database pages (giving them back to the disk)",
}
"""What a sweep removes, by :class:`Pruned`'s field, in the words its stop is said in."""


class _Sweep:
    """One :meth:`Store.prune` under way: what its committed chunks removed so far, and the
    question asked before each next chunk."""

    def __init__(self, pruned: Pruned, stopping: Callable[[], bool]) -> None:
        self.pruned = pruned
        self._stopping = stopping

    def before_chunk(self, kind: str) -> None:
        """Raise :class:`_Stopped` (naming ``kind``) if the sweep is to stop here."""
        if self._stopping():
            raise _Stopped(_SWEPT[kind])

    def add(self, kind: str, done: int) -> None:
        """A chunk of ``kind`` committed, having removed ``done``."""
        self.pruned = dataclasses.replace(self.pruned, **{kind: getattr(self.pruned, kind) + done})


PRUNE_CHUNK = 500
"""Rows a retention sweep removes a transaction (:meth:`Store.prune`): a few milliseconds of
the store's lock on a Pi's SD card, so a fall that arrives mid-sweep waits for one chunk, not
for the sweep."""

RECLAIM_CHUNK_PAGES = 1000
"""Pages a sweep gives back to the disk at a time (SQLite's incremental vacuum, 4 MB of 4 kB
pages), the store's lock let go between: a year's backlog freed hundreds of megabytes, moved
and written under one hold of the lock after the chunks of :data:`PRUNE_CHUNK` had let falls
through."""

OPTIMIZE_EVERY_S = 3600.0
"""How often the service's housekeeping thread refreshes the query planner's statistics
(:meth:`Store.optimize`): SQLite advises once an hour to once a day for a long-lived
connection; an hour, so a new file (or one from before this was done) has statistics within
the first hour of use rather than a day."""

SIDE_PROBE_EVERY_S = 10.0
"""How often the service's housekeeping thread reads the tables of the parts a read of which
failed (:meth:`Store.probe_side_faults`): a banner gone within seconds of the table put back
(a part whose write failed waits for a write of it that commits)."""

QUICK_CHECK_WITHIN_S = 5.0
"""How long opening a SQLite file may spend checking it for damage (:meth:`Store._check_sqlite`):
a year of 8 treadmills (12 MB) took 0.2 s from disk, ten years (120 MB) 2 s (x86; a Pi's SD
card is slower). Past it the check stops and the log says only part was checked; the unit's
TimeoutStartSec is 60 s."""


@contextmanager
def _opening(location: str) -> Iterator[None]:
    """The driver's error while the store opens its database (connecting, preparing the
    file, migrating, its other connections), as a :class:`StorageFault` of one line that
    names the database, says what is wrong and what to do: it is what a person starting the
    service or a command sees (before, a locked file came out as a raw ``sqlite3``
    traceback, a damaged one as "database disk image is malformed" naming no file)."""
    try:
        yield
    except _any_engine_errors() as exc:
        reason = _one_line(exc)
        advice, lasting = _opening_advice(exc)
        raise StorageFault(
            f"caregiver database {redacted(location)}: cannot open it: {reason}. {advice}",
            lasting=lasting,
        ) from exc


_SQLITE_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_SQLITE_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")
_SQLITE_ACCESS = ("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")


_DAMAGED_ADVICE = (
    "The file is damaged: stop the service, move the file aside (with its -wal and -shm "
    "files) and restore a backup, or start afresh with a new file"
)


def _damaged(exc: BaseException) -> bool:
    """``exc`` says the SQLite file is damaged or not a database (by its primary result
    code: extended ones, e.g. SQLITE_CORRUPT_INDEX, begin with the primary's name)."""
    code = getattr(exc, "sqlite_errorname", None) or ""
    return isinstance(exc, sqlite3.Error) and code.startswith(_SQLITE_DAMAGED)


def _opening_advice(exc: BaseException) -> tuple[str, bool]:
    """What to do about ``exc`` met opening the database, and whether a restart cannot cure
    it (see :attr:`StorageFault.lasting`). By SQLite's primary result code (its extended
    codes, e.g. SQLITE_CORRUPT_VTAB, begin with the primary's name)."""
    if _damaged(exc):
        return _DAMAGED_ADVICE, True
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorname", None) or ""
        if code.startswith(_SQLITE_BUSY):
            return (
                "Another process holds it locked past the busy timeout (a second caregiver "
                "service, a backup or an sqlite3 shell on it): stop that one and start again",
                False,
            )
        if code.startswith(_SQLITE_ACCESS) or "cannot make its directory" in str(exc):
            return (
                "Check that its folder exists and that the service's user may write the "
                "folder and the file (the unit's StateDirectory=, /var/lib/retroguard)",
                False,
            )
        return "Check the file, its folder and the disk", False
    if getattr(exc, "sqlstate", None) == LOCK_NOT_AVAILABLE:
        return (
            "Another session held a lock the upgrade needs past the lock timeout ("
            "another instance upgrading it, an ALTER TABLE, VACUUM FULL or LOCK TABLE in psql, "
            "a transaction left open: pg_locks and pg_stat_activity name it); start it again "
            "once that is done",
            False,
        )
    return (
        "Check that the PostgreSQL server is running and reachable, and the URL's user, "
        "password and database name ([server] database)",
        False,
    )


_PG_LOCKED = (LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED)


def _locked(exc: BaseException) -> bool:
    """``exc`` says another session held a lock past the wait for it (SQLite's SQLITE_BUSY
    or SQLITE_LOCKED, by the primary code; PostgreSQL's lock timeout, or a deadlock it
    broke by ending this statement): a refusal that passes (:attr:`StorageFault.locked`)."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorname", None) or ""
        return code.startswith(_SQLITE_BUSY)
    return getattr(exc, "sqlstate", None) in _PG_LOCKED


def _refused_data(exc: BaseException) -> bool:
    """The driver's error says the data is wrong, not the database (DB-API ``DataError``:
    SQLSTATE class 22)."""
    drivers = (sys.modules.get(name) for name in ("sqlite3", "psycopg"))
    return isinstance(exc, tuple(d.DataError for d in drivers if d is not None))
