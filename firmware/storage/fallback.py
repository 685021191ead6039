"""The courier's database: the file while the disk takes writes, memory while it does not.

A full disk once lost every alert and killed the publisher. Here the
courier's stores (events, outbox, sessions, runs) run their SQL through a
:class:`FallbackDatabase`:

* At :meth:`~FallbackDatabase.open` a damaged file is moved aside and a new
  one started (:mod:`firmware.storage.damage`); a disk that refuses writes
  sends everything to memory from the start.
* When a read or a write on the file fails because of the disk (full, I/O
  error, read-only, locked: :mod:`firmware.storage.faults`), everything moves
  to an SQLite database in memory — the same schema through the same
  migrations, bounded by ``PRAGMA max_page_count`` — seeded with the queued
  outbox so alerts are still published (:func:`~firmware.storage.transfer.seed`);
  the failed work runs again there. The listener hears of it once per episode.
* :meth:`~FallbackDatabase.recover` (the courier calls it every second) tries
  the file every :data:`DISK_RETRY_S`; once it takes writes, what memory
  holds is merged into it in one transaction
  (:func:`~firmware.storage.transfer.merge`), the stores move back, and the
  listener learns which records are now on disk. A damaged file found at a
  retry (or at open) is moved aside even while the disk refuses its
  replacement; the queue salvaged from it is kept (memory may never have held
  it: seeding fails past the memory bound) and carried into the file first
  (:func:`~firmware.storage.transfer.carry`), so its alerts are not left
  behind in the moved-aside file.

What is only in memory is *held*: :meth:`~FallbackDatabase.holds_in_memory`
says so, and the courier does not tell the loop it is persisted — the loop
keeps it, so a courier that dies meanwhile loses nothing. A write past the
memory bound fails like any other (``SQLITE_FULL``): that record waits in
the loop too, unpublished, and the loop hands it over again once the disk
takes writes.

Why one in-memory connection behind a lock, and not a shared-cache URI
(``file:x?mode=memory&cache=shared``) with a connection per thread: in
shared-cache mode a table another connection is writing answers
``SQLITE_LOCKED`` at once — the busy timeout does not apply, and Python's
sqlite3 has no unlock-notify — so the publisher and the main thread would
have to retry by hand. Memory is fast enough that taking turns costs nothing.

Threads: the courier's main thread, the MQTT publisher and the heartbeat all
call in. On the file each thread has its own connection (WAL); in memory
there is one connection and a lock around each use. Moving between the two
takes a gate exclusively, so no work is half on one side and half on the other.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from firmware.storage import database
from firmware.storage.damage import MovedAside, Unwritable, open_file, utc_stamp
from firmware.storage.database import connect, transaction
from firmware.storage.events import probe_write
from firmware.storage.faults import describe, trouble
from firmware.storage.transfer import carry, continue_numbering, merge, seed

log = logging.getLogger(__name__)

T = TypeVar("T")

DISK_RETRY_S = 5.0
"""How often the file is tried again while records are kept in memory."""
MEMORY_LIMIT_BYTES = 64 * 1024 * 1024
"""The most the in-memory database may hold (about 2,000 falls with their IMU windows)."""
MEMORY_PAGE_SIZE = 4096


class StorageListener(Protocol):
    """Hears what happens to the database while the courier runs (on whichever thread saw it)."""

    def storage_lost(self, why: str) -> None:
        """The file stopped taking writes: records now go to memory."""
        ...

    def storage_replaced(self, moved: MovedAside) -> None:
        """The file was found damaged and moved aside; a new one was started, or, when
        ``moved.not_started`` says why, not (records stay in memory meanwhile)."""
        ...

    def storage_back(self, now_on_disk: Sequence[str], detail: str) -> None:
        """The file takes writes again and holds everything: these held records are on disk."""
        ...


@dataclass(frozen=True, slots=True)
class Opened:
    """What :meth:`FallbackDatabase.open` found."""

    moved: MovedAside | None
    """A damaged file it moved aside, if any."""
    fault: str | None
    """Why the file cannot be written (records go to memory), or None."""


class _Gate:
    """Many users at once, or one mover alone (a reader-writer lock that favours the mover)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._users = 0
        self._moving = False
        self._movers_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._moving and not self._movers_waiting)
            self._users += 1
        try:
            yield
        finally:
            with self._cond:
                self._users -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._movers_waiting += 1
            self._cond.wait_for(lambda: not self._moving and not self._users)
            self._movers_waiting -= 1
            self._moving = True
        try:
            yield
        finally:
            with self._cond:
                self._moving = False
                self._cond.notify_all()


class FallbackDatabase:
    """The courier's :class:`~firmware.storage.database.Database`: the file, or memory."""

    def __init__(
        self,
        path: str | Path,
        *,
        listener: StorageListener | None = None,
        memory_limit_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        stamp: Callable[[], str] = utc_stamp,
    ) -> None:
        self.path = Path(path)
        self.listener = listener
        limit = MEMORY_LIMIT_BYTES if memory_limit_bytes is None else memory_limit_bytes
        self._memory_pages = max(16, limit // MEMORY_PAGE_SIZE)
        self._clock = clock
        self._stamp = stamp
        self._gate = _Gate()
        self._local = threading.local()
        self._disk_conns: list[sqlite3.Connection] = []
        self._disk_lock = threading.Lock()
        self._memory: sqlite3.Connection | None = None
        self._memory_lock = threading.Lock()
        self._copied: frozenset[int] = frozenset()
        self._salvaged: list[sqlite3.Connection] = []
        """Queues salvaged from damaged files moved aside when no new file could be created
        (memory may not hold them): carried into the file, before memory, when it takes writes."""
        self._held: set[str] = set()
        self._held_lock = threading.Lock()
        self._retry_at = 0.0
        self._generation = 0
        self._telling = threading.RLock()
        """Held while the listener hears a loss or a return: each episode's loss is told
        before its return (re-entrant: a listener's own write may start an episode)."""
        self._untold_loss: str | None = None
        """Why the current episode began, until the listener has heard it (:meth:`_tell_loss`)."""
        self.fault: str | None = None
        """Why records are in memory now; None while the file takes them."""
        self.episodes = 0
        """Times the file stopped taking writes since the courier started."""

    # ----------------------------------------------------------------- state

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def in_memory(self) -> bool:
        return self._memory is not None

    def holds_in_memory(self, key: str) -> bool:
        """True while the record named ``key`` is committed in memory only (not on disk yet)."""
        with self._held_lock:
            return key in self._held

    # --------------------------------------------------------------- opening

    def open(self) -> Opened:
        """At start: the file (a damaged one moved aside first), or memory if the disk refuses.

        Never raises for the file's sake; the listener is not called (the
        caller reports what :class:`Opened` says).
        """
        try:
            conn, moved = open_file(self.path, self._open_disk, self._stamp)
        except Unwritable as exc:
            why = str(exc)
            log.error("storage: %s; records are kept in memory", why)
            with self._gate.exclusive():
                # a damaged file's queue as salvaged (it is moved aside, or its log damaged)
                readable = exc.queue
                if readable is None and exc.moved is None:
                    readable = self._disk_conn_for_copy()
                self._to_memory(readable, why, salvaged=exc.queue is not None)
            return Opened(exc.moved, why)
        self._adopt(conn)
        return Opened(moved, None)

    def _open_disk(self, path: Path) -> sqlite3.Connection:
        """One connection to the file with the store's settings (tests replace ``connect``)."""
        return connect(path)

    def _adopt(self, conn: sqlite3.Connection) -> None:
        """``conn`` is this thread's connection to the file from now on."""
        self._local.conn = conn
        self._local.generation = self._generation
        with self._disk_lock:
            self._disk_conns.append(conn)

    # ------------------------------------------------------------- the work

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return self._run(work, write=False, key=None)

    def write(
        self,
        work: Callable[[sqlite3.Connection], T],
        *,
        key: str | None = None,
        keys: Callable[[T], Iterable[str]] | None = None,
    ) -> T:
        """``key`` as :meth:`Database.write`; ``keys``: the records the result says ``work``
        wrote (several in one transaction: the courier's drain), held in memory like ``key``'s
        when memory took them."""
        return self._run(work, write=True, key=key, keys=keys)

    def probe(self) -> None:
        """Prove the file still takes a write (rolled back); if it does not, go to memory now.

        The courier probes every few seconds, so a disk that went bad while
        nothing was written (a walk under way) refuses the next arming at once.
        """
        if self._memory is None:
            self._run(probe_write, write=False, key=None, verb="write")

    def _run(
        self,
        work: Callable[[sqlite3.Connection], T],
        *,
        write: bool,
        key: str | None,
        keys: Callable[[T], Iterable[str]] | None = None,
        verb: str = "",
    ) -> T:
        with self._gate.shared():
            generation = self._generation
            try:
                return self._attempt(work, write=write, key=key, keys=keys)
            except Exception as exc:
                if self._memory is not None or trouble(exc) is None:
                    raise
                verb = verb or ("write" if write else "read")
                why = f"cannot {verb} {self.path}: {describe(exc)}"
        # The file failed us: move to memory (unless another thread already did) and go again.
        with self._gate.exclusive():
            lost = self._generation == generation and self._memory is None
            if lost:
                self._to_memory(self._disk_conn_for_copy(), why)
                self._untold_loss = why
        try:
            with self._gate.shared():
                return self._attempt(work, write=write, key=key, keys=keys)
        finally:
            if lost:
                self._tell_loss()

    def _tell_loss(self) -> None:
        """The listener hears the episode that began, once, by whichever thread comes first:
        the one that moved to memory, once its work ran again, or :meth:`recover` before it
        says the file is back. Why: the mover told it after its work ran again, and a
        recovery in between (a retry due, or the courier's last try at its stop) told the
        return first; the late loss then began a second episode for the listener with
        nothing in memory — a FAULT event and arming refused, with no return ever to follow."""
        with self._telling:
            why, self._untold_loss = self._untold_loss, None
            if why is not None and self.listener is not None:
                self.listener.storage_lost(why)

    def _attempt(
        self,
        work: Callable[[sqlite3.Connection], T],
        *,
        write: bool,
        key: str | None,
        keys: Callable[[T], Iterable[str]] | None = None,
    ) -> T:
        """``work`` on the current database; call with the gate shared."""
        memory = self._memory
        if memory is None:
            conn = self._disk_conn()
            if not write:
                return work(conn)
            with transaction(conn):
                return work(conn)
        with self._memory_lock:
            if not write:
                return work(memory)
            with transaction(memory):
                result = work(memory)
            held = [key] if key is not None else []
            if keys is not None:
                held += keys(result)
            if held:
                with self._held_lock:
                    self._held.update(held)
            return result

    def _disk_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "generation", -1) != self._generation:
            conn = self._open_disk(self.path)
            self._adopt(conn)
        return conn

    def _disk_conn_for_copy(self) -> sqlite3.Connection | None:
        """A fresh connection to read the file's queue from, or None if even that fails."""
        try:
            return self._open_disk(self.path)
        except Exception as exc:
            log.error("storage: cannot read %s to copy its queue: %s", self.path, describe(exc))
            return None

    # ---------------------------------------------------------------- moving

    def _to_memory(
        self, disk: sqlite3.Connection | None, why: str, *, salvaged: bool = False
    ) -> None:
        """Switch to a new in-memory database seeded from ``disk``; call holding the gate.

        ``salvaged``: ``disk`` is the queue of a damaged file already moved aside; if memory
        cannot take it, it is kept for :meth:`recover` to carry into the file (the file, unlike
        a sound one, keeps nothing of it).
        """
        memory = database.connect(":memory:")
        memory.execute(f"PRAGMA max_page_count = {self._memory_pages}")
        copied: frozenset[int] = frozenset()
        if disk is not None:
            keep = False
            try:
                continue_numbering(memory, disk)
                copied = seed(memory, disk)
            except sqlite3.Error as exc:
                keep = salvaged
                log.error(
                    "storage: the queue could not be copied into memory: %s%s",
                    exc,
                    "; it is kept and carried into the file when it takes writes" if keep else "",
                )
            finally:
                if keep:
                    self._salvaged.append(disk)
                else:
                    disk.close()
        self._close_disk()
        self._memory = memory
        self._copied = copied
        self._generation += 1
        self._retry_at = self._clock() + DISK_RETRY_S
        self.fault = why
        self.episodes += 1
        log.error(
            "storage: %s; records are kept in memory (%d queued messages copied) until it "
            "can be written again",
            why,
            len(copied),
        )

    def _close_disk(self) -> None:
        with self._disk_lock:
            for conn in self._disk_conns:
                conn.close()
            self._disk_conns.clear()

    def recover(self, *, now: bool = False) -> bool:
        """If in memory and a retry is due (or ``now``): try the file; move back if it takes all.

        True when the records are on disk again. Call it periodically (the
        courier's heartbeat thread does, every second); cheap when nothing is
        due. One thread at a time.
        """
        if self._memory is None or (not now and self._clock() < self._retry_at):
            return False
        self._retry_at = self._clock() + DISK_RETRY_S
        try:
            disk, moved = open_file(self.path, self._open_disk, self._stamp)
        except Unwritable as exc:
            if exc.queue is not None:
                if exc.moved is not None:
                    # The damaged file is gone aside with its queue, and memory may not hold it
                    # (seeding failed when it took over, or the file changed since): carried
                    # into the file before memory is (memory's word on a row is the newer).
                    self._salvaged.append(exc.queue)
                    (queued,) = exc.queue.execute("SELECT COUNT(*) FROM outbox").fetchone()
                    log.warning(
                        "storage: %d queued messages salvaged from %s are kept until the file "
                        "takes writes",
                        queued,
                        exc.moved.moved_to,
                    )
                else:  # the file is still in place and keeps its queue itself
                    exc.queue.close()
            log.debug("storage: the file still refuses writes: %s", exc)
            if exc.moved is not None and self.listener is not None:
                self.listener.storage_replaced(exc.moved)
            return False
        if moved is not None and self.listener is not None:
            self.listener.storage_replaced(moved)
        with self._gate.exclusive():
            memory = self._memory
            assert memory is not None  # only recover() leaves memory, and only one thread calls it
            try:
                with transaction(disk):
                    for queue in self._salvaged:
                        carry(queue, disk)
                    merge(memory, disk, self._copied)
            except Exception as exc:
                disk.close()
                if trouble(exc) is None:
                    raise
                log.warning("storage: the file takes writes but not the merge: %s", describe(exc))
                return False
            memory.close()
            self._memory = None
            self._copied = frozenset()
            salvaged = self._close_salvaged()
            self._generation += 1
            with self._held_lock:
                now_on_disk = sorted(self._held)
                self._held.clear()
            why, self.fault = self.fault, None
            self._adopt(disk)
        detail = f"{self.path} takes writes again; {len(now_on_disk)} records moved from memory"
        if salvaged:
            detail += f" and the queues of {salvaged} damaged files moved aside carried into it"
        log.info("storage recovered: %s (it had failed: %s)", detail, why)
        with self._telling:
            self._tell_loss()  # not told yet by the thread that moved: before the return
            if self.listener is not None:
                self.listener.storage_back(now_on_disk, detail)
        return True

    def _close_salvaged(self) -> int:
        """Close the salvaged queues kept; how many there were."""
        count = len(self._salvaged)
        for queue in self._salvaged:
            queue.close()
        self._salvaged.clear()
        return count

    def close(self) -> None:
        """Close every connection (records only in memory are lost; the loop still holds them;
        a salvaged queue not carried yet stays in its moved-aside file, marked to be carried at
        the next opening: :func:`~firmware.storage.damage.carry_uncarried`)."""
        with self._gate.exclusive():
            self._close_disk()
            if self._close_salvaged():
                log.warning(
                    "storage: closed before the disk took writes again: the queue salvaged from "
                    "a damaged file is in the file moved aside, marked to be carried into the "
                    "database at the next start (firmware.storage.damage.UNCARRIED)"
                )
            if self._memory is not None:
                self._memory.close()
                self._memory = None
