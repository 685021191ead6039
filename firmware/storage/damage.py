"""Opening the device database whatever state it is in: a damaged file is moved aside.

The monitor must start and protect the walker whatever its database looks
like. :func:`open_file` opens the file, checks it (``PRAGMA quick_check``, the
schema version) and proves it takes a write; a file it cannot use — not a
database, malformed, a schema from a newer release or a foreign one — is
renamed with its ``-wal`` and ``-shm`` to ``<name>.damaged-<UTC time>`` (kept
for inspection, never deleted) and a new database is created in its place.

What the damaged file still had queued is carried into the new one first, as
far as it can be read (:func:`salvage`): an alert the broker or the caregiver
has not confirmed yet is published again from the new file, not left behind in
the old one (before, a fall stored just before a power cut that damaged the
file never reached the caregiver).

A disk that refuses writes is not damage: :class:`Unwritable` says so, and the
caller decides what to do meanwhile (the courier keeps its records in memory,
:mod:`firmware.storage.fallback`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import sqlite3
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core import sqlite_check
from firmware.storage import database
from firmware.storage.events import probe_write
from firmware.storage.faults import Trouble, describe, trouble
from firmware.storage.transfer import carry, continue_numbering, seed

log = logging.getLogger(__name__)

COMPANIONS = ("-wal", "-shm", "-journal")
"""SQLite's files beside the database: they belong to it and move with it."""

UNCARRIED = ".uncarried"
"""Beside a moved-aside file whose queue no new file has taken yet (the disk refused the new
file): the next opening that gets a writable file carries that queue in, then removes the mark
(:func:`carry_uncarried`). Without it a monitor stopped before the disk took writes again left
those alerts only in the moved-aside file, for good."""


@dataclass(frozen=True, slots=True)
class MovedAside:
    """A damaged database renamed out of the way (it is kept, never deleted)."""

    original: Path
    moved_to: Path
    why: str
    carried: int = 0
    """Queued messages (alerts awaiting the broker or a caregiver) carried into the new file."""
    not_started: str | None = None
    """Why no new file could be created in its place (the disk refused it), or None when one
    was: the caller keeps its records elsewhere meanwhile and tries again."""

    def sentence(self) -> str:
        carried = (
            f"; {self.carried} queued messages (alerts not yet confirmed delivered) were "
            "carried into it and are sent again"
            if self.carried
            else ""
        )
        started = (
            f"a new one started{carried}"
            if self.not_started is None
            else f"no new one could be created ({self.not_started})"
        )
        return (
            f"the device database {self.original} was damaged ({self.why}): moved aside to "
            f"{self.moved_to} (kept for inspection) and {started}; the events stored before "
            "are in the old file"
        )


class Unwritable(Exception):
    """The disk does not take writes to the database now (full, I/O error, read-only, locked).

    ``moved`` is set when a damaged file was moved aside before the new one
    could not be created: that still has to be reported. ``queue``: what a damaged file still
    had queued (:func:`salvage`, in memory), for the caller to keep publishing from and to
    close — the file itself may be gone aside or unreadable by the store's own opening.
    """

    def __init__(
        self,
        why: str,
        moved: MovedAside | None = None,
        queue: sqlite3.Connection | None = None,
    ) -> None:
        super().__init__(why)
        self.moved = moved
        self.queue = queue


def utc_stamp() -> str:
    """``20261201T210003Z``: when a file was moved aside, sortable, valid in a file name."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def quick_check(conn: sqlite3.Connection) -> str | None:
    """None when ``PRAGMA quick_check`` finds the file sound; otherwise its first findings
    (the whole file, unbounded: the device's database is small, :mod:`core.sqlite_check`)."""
    return sqlite_check.quick_check(conn).findings


def move_aside(path: Path, stamp: str) -> Path:
    """Rename ``path`` and its companions to ``<name>.damaged-<stamp>[-n]``; the new name."""
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while any(Path(f"{target}{suffix}").exists() for suffix in ("", *COMPANIONS)):
        n += 1
        target = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    os.replace(path, target)
    for suffix in COMPANIONS:
        companion = Path(f"{path}{suffix}")
        if companion.exists():
            os.replace(companion, Path(f"{target}{suffix}"))
    with contextlib.suppress(OSError):  # make the renames durable where the platform allows
        _sync_directory(path.parent)
    return target


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def moved_aside_files(path: Path) -> list[Path]:
    """Damaged databases moved aside from ``path`` so far, oldest first (companions left out)."""
    if not path.parent.is_dir():
        return []
    found = [
        p
        for p in path.parent.glob(f"{path.name}.damaged-*")
        if not p.name.endswith((*COMPANIONS, UNCARRIED))
    ]
    return sorted(found)


def carry_uncarried(path: Path, conn: sqlite3.Connection) -> int:
    """Carry into ``conn`` (the writable file at ``path``) the queues of the files moved aside
    from it and marked :data:`UNCARRIED`, each in one transaction, and remove their marks; how
    many were carried.

    A queue is carried by id (:func:`~firmware.storage.transfer.carry`): a message still queued
    is not doubled. One the caregiver confirmed after the mark was made, from memory, before a
    stop, is sent again — at worst, and the caregiver knows it by its id — rather than lost. A
    file whose queue cannot be read loses its mark with an error (nothing more can come of it);
    one the disk refuses keeps it, for the next opening."""
    carried = 0
    for moved in moved_aside_files(path):
        mark = Path(f"{moved}{UNCARRIED}")
        if not mark.exists():
            continue
        queue = _salvage_read_only(moved)
        if queue is not None:
            try:
                with database.transaction(conn):
                    carry(queue, conn)
            except Exception as exc:
                log.error(
                    "storage: the queue of %s could not be carried into %s (tried again at the "
                    "next opening): %s",
                    moved,
                    path,
                    describe(exc),
                )
                continue
            finally:
                queue.close()
            carried += 1
            log.warning(
                "storage: the queue of %s, moved aside when no new file could be created, is "
                "carried into %s",
                moved,
                path,
            )
        with contextlib.suppress(OSError):
            mark.unlink()
    return carried


def _mark_uncarried(moved_to: Path) -> None:
    """Note that ``moved_to``'s queue is still to be carried (see :data:`UNCARRIED`)."""
    mark = Path(f"{moved_to}{UNCARRIED}")
    try:
        mark.touch()
        _sync_directory(mark.parent)
    except OSError as exc:
        log.error(
            "storage: cannot mark %s as still to be carried (%s): if the monitor stops before "
            "the disk takes writes again, its queued alerts are only in that file",
            moved_to,
            exc,
        )


def open_file(
    path: Path,
    opener: Callable[[Path], sqlite3.Connection],
    stamp: Callable[[], str] = utc_stamp,
) -> tuple[sqlite3.Connection, MovedAside | None]:
    """A connection to a sound, writable database at ``path``, and what was moved aside for it.

    ``opener`` opens one connection with the store's settings
    (:func:`firmware.storage.database.connect`). Raises :class:`Unwritable`
    when the disk refuses (the file is then left where it is).
    """
    damage: str
    queue: sqlite3.Connection | None = None
    wal = wal_damage(path)
    if wal is not None:  # SQLite would ignore the log from the break on, and say nothing
        damage = (
            f"write-ahead log damaged: {wal}; what was committed since the last checkpoint "
            "may be missing"
        )
        queue = _salvage_read_only(path)
    else:
        try:
            conn = opener(path)
        except Exception as exc:
            damage = _damage_or_raise(exc, path)
        else:
            try:
                problem = quick_check(conn)
                if problem is None:
                    probe_write(conn)
                    carry_uncarried(path, conn)
                    return conn, None
            except Exception as exc:
                damage = _damage_or_raise(exc, path, conn)
                queue = salvage(conn, path)
                conn.close()
            else:
                queue = salvage(conn, path)
                conn.close()
                damage = f"quick_check: {problem}"
    return _replace(path, opener, stamp, damage, queue)


def _replace(
    path: Path,
    opener: Callable[[Path], sqlite3.Connection],
    stamp: Callable[[], str],
    damage: str,
    queue: sqlite3.Connection | None,
) -> tuple[sqlite3.Connection, MovedAside]:
    """Move the damaged ``path`` aside, start a new file, carry ``queue`` into it (closed)."""
    try:
        try:
            moved_to = move_aside(path, stamp())
        except OSError as exc:
            salvaged, queue = queue, None  # the caller's now
            raise Unwritable(
                f"{path} is damaged ({damage}) and cannot be moved aside: {exc}", queue=salvaged
            ) from exc
        moved = MovedAside(path, moved_to, damage)
        try:
            conn = opener(path)
            try:
                probe_write(conn)
            except BaseException:
                conn.close()
                raise
        except Exception as exc:
            moved = dataclasses.replace(moved, not_started=describe(exc))
            log.error("%s", moved.sentence())
            if queue is not None:
                _mark_uncarried(moved_to)  # memory may hold it only until the monitor stops
            if trouble(exc) is None:
                raise
            salvaged, queue = queue, None  # the caller's now
            raise Unwritable(
                f"cannot create a new database at {path}: {describe(exc)}", moved, salvaged
            ) from exc
        if queue is not None:
            carried = _carry(queue, conn, path)
            if carried is None:
                _mark_uncarried(moved_to)
            moved = dataclasses.replace(moved, carried=carried or 0)
        carry_uncarried(path, conn)
    finally:
        if queue is not None:
            queue.close()
    log.error("%s", moved.sentence())
    return conn, moved


WAL_MAGIC = (0x377F0682, 0x377F0683)
"""A write-ahead log's first four bytes (big-endian): checksums little- or big-endian."""
WAL_HEADER = 32
WAL_FRAME_HEADER = 24


def _wal_checksum(data: bytes, big_endian: bool, s0: int = 0, s1: int = 0) -> tuple[int, int]:
    """SQLite's WAL checksum (https://sqlite.org/fileformat2.html#walformat) over ``data``."""
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def wal_damage(path: Path) -> str | None:
    """What is wrong with ``path``'s write-ahead log, in words; None when nothing is (or there
    is none).

    SQLite replays a log up to its first frame whose salt or checksum is wrong and silently
    ignores the rest, and ignores a log whose header is wrong altogether: every commit in
    it — the whole database since its last checkpoint, queued alerts included — would be
    gone without a word, and the next write would overwrite the evidence. Damage is a header
    that is not a log's while frames follow it, or a break in the chain followed by a commit
    frame of the same log (its salts, a database size): a power cut tears only the last,
    uncommitted transaction — its frames, written before the commit's sync, may land in any
    order, but without its commit frame it was never committed.
    """
    try:
        with open(f"{path}-wal", "rb") as f:
            header = f.read(WAL_HEADER)
            f.seek(0)
            problem = _wal_problem(f)
            if problem is None:
                return None
            f.seek(0)
            if f.read(WAL_HEADER) != header:  # restarted under us (a CLI's write): not damage
                return None
            return problem
    except OSError:
        return None  # no log, or one that cannot be read: the file's own opening says why


def _wal_problem(f: BinaryIO) -> str | None:
    """:func:`wal_damage` of an open log, read a frame at a time (a log may be large)."""
    header = f.read(WAL_HEADER)
    if len(header) < WAL_HEADER:
        return None  # torn while its header was written: no frame was
    magic, version, page_size = struct.unpack(">III", header[:12])
    salts = header[16:24]
    big_endian = magic == WAL_MAGIC[1]
    valid = magic in WAL_MAGIC and version == 3007000 and 512 <= page_size <= 65536
    if not valid or _wal_checksum(header[:24], big_endian) != struct.unpack(">II", header[24:32]):
        if len(f.read(WAL_FRAME_HEADER + 1)) > WAL_FRAME_HEADER:
            return "its header is not a write-ahead log's"
        return None
    s0, s1 = struct.unpack(">II", header[24:32])
    index = 0
    while True:  # the valid chain, as SQLite replays it (a frame at a time: logs grow)
        head = f.read(WAL_FRAME_HEADER)
        page = f.read(page_size)
        if len(page) < page_size:
            return None  # ends in order (perhaps torn in its last, uncommitted frame)
        index += 1
        if head[8:16] != salts:
            break  # an older log's frames, left after a restart: not replayed
        s0, s1 = _wal_checksum(head[:8], big_endian, s0, s1)
        s0, s1 = _wal_checksum(page, big_endian, s0, s1)
        if (s0, s1) != struct.unpack(">II", head[16:24]):
            break
    while True:  # past the break: a commit of the same log means commits were lost
        head = f.read(WAL_FRAME_HEADER)
        if len(f.read(page_size)) < page_size:
            return None
        if head[8:16] == salts and head[4:8] != b"\0\0\0\0":
            return f"frame {index} is damaged and commits of the same log follow it"


def _salvage_read_only(path: Path) -> sqlite3.Connection | None:
    """:func:`salvage` through a read-only connection, which replays the log's valid part
    and leaves the files as they are (for inspection)."""
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        log.error("storage: damaged %s cannot be read: %s", path, exc)
        return None
    try:
        return salvage(conn, path)
    finally:
        conn.close()


def salvage(damaged: sqlite3.Connection, path: Path) -> sqlite3.Connection | None:
    """What ``damaged`` still has queued (outbox rows with their ids and receipt state, their
    events, recordings and incidents, the last runs: :func:`~firmware.storage.transfer.seed`),
    copied into a database in memory; None when the file cannot give it (a damaged page on
    the way: then those messages stay only in the moved-aside file, as the FAULT says)."""
    memory = database.connect(":memory:")
    try:  # the new file numbers on after the old one: a caregiver sees one sequence go on
        continue_numbering(memory, damaged)
    except Exception as exc:
        log.warning("storage: the numbering of damaged %s could not be read: %s", path, exc)
    try:
        seed(memory, damaged)
    except Exception as exc:
        memory.close()
        log.error("storage: nothing could be read from the queue of damaged %s: %s", path, exc)
        return None
    return memory


def _carry(queue: sqlite3.Connection, conn: sqlite3.Connection, path: Path) -> int | None:
    """Write the salvaged ``queue`` into the new file ``conn`` (one transaction); how many
    queued messages it holds now (None when the new file would not take them: they stay in the
    moved-aside file, marked to be carried at the next opening)."""
    try:
        with database.transaction(conn):
            carry(queue, conn)
        (carried,) = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
    except Exception as exc:
        log.error(
            "storage: the queue of the damaged file could not be written to %s: %s", path, exc
        )
        return None
    return int(carried)


def _damage_or_raise(exc: Exception, path: Path, conn: sqlite3.Connection | None = None) -> str:
    """``exc`` in words when it is damage; :class:`Unwritable` or ``exc`` itself otherwise
    (``conn``, the file's connection, is closed first)."""
    kind = trouble(exc)
    if kind is Trouble.DAMAGED:
        return describe(exc)
    if conn is not None:
        conn.close()
    if kind is Trouble.UNWRITABLE:
        raise Unwritable(f"cannot write {path}: {describe(exc)}") from exc
    raise exc
