"""A disk that fills (or goes read-only) on command, and damaged database files.

:class:`FillableDisk` stands in for the courier's disk: every connection the
:class:`~firmware.storage.fallback.FallbackDatabase` opens to its file goes
through :meth:`FillableDisk.connect`, and SQLite itself then fails writes the
way it does on a real disk in trouble:

* :meth:`~FillableDisk.fill` caps the file at the pages it has (``PRAGMA
  max_page_count``): a write that needs a new page fails with ``SQLITE_FULL``,
  "database or disk is full", as on a full disk (a WAL database keeps taking
  writes that fit in the room it has, there too);
* :meth:`~FillableDisk.go_read_only` makes every write fail with
  ``SQLITE_READONLY`` (``PRAGMA query_only``), as when the kernel remounts a
  failing SD card read-only.

Both fail a write at the statement that needs the page; :func:`files_capped_at` fails it
at the ``COMMIT``, where a WAL database writes (in a child process only).

:meth:`~FillableDisk.free` undoes both for connections opened from then on
(the courier opens new ones when it tries the disk again).

:func:`wait_for` waits on what another process does to a file or to itself (a database
grows, a courier is gone), bounded as a safety net.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import select
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from core.protocol.events import Event, EventType
from core.protocol.topics import Topics
from firmware.storage import database
from firmware.storage.outbox import Outbox
from firmware.storage.schema import MIGRATIONS, SCHEMA_VERSION

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "device-3f29ca7.db"


class FillableDisk:
    def __init__(self) -> None:
        self._trouble: Callable[[sqlite3.Connection], None] | None = None
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def connect(self, path: str | Path) -> sqlite3.Connection:
        conn = database.connect(path)
        with self._lock:
            self._conns.append(conn)
            if self._trouble is not None:
                self._trouble(conn)
        return conn

    def fill(self) -> None:
        """From now on no connection to the file gets a new page."""
        self._befall(_cap)

    def go_read_only(self) -> None:
        """From now on no connection to the file writes at all."""
        self._befall(_read_only)

    def _befall(self, trouble: Callable[[sqlite3.Connection], None]) -> None:
        with self._lock:
            self._trouble = trouble
            for conn in self._conns:
                with contextlib.suppress(sqlite3.ProgrammingError):  # closed already
                    trouble(conn)

    def free(self) -> None:
        """Space (and writes) again, for connections opened from now on."""
        with self._lock:
            self._trouble = None


class PowerCuts:
    """A power cut at every transaction boundary of the connections the courier's database
    opens to its file (:meth:`connect` replaces ``firmware.storage.fallback.connect``): as each
    ``BEGIN IMMEDIATE`` and ``COMMIT`` starts, ``kept(path)`` reads on a connection of its own
    what the file would keep if the power went then — what is committed, since
    ``synchronous=FULL`` makes a commit durable and a cut keeps nothing uncommitted."""

    def __init__(self, kept: Callable[[Path], object]) -> None:
        self._kept = kept
        self.cuts: list[object] = []
        """What each cut kept, in order."""
        self.errors: list[BaseException] = []
        """Failures of ``kept`` (SQLite swallows a trace callback's exceptions)."""

    def connect(self, path: str | Path) -> sqlite3.Connection:
        conn = database.connect(path)
        conn.set_trace_callback(lambda sql: self._cut(Path(path), sql))
        return conn

    def _cut(self, path: Path, sql: str) -> None:
        if sql not in ("BEGIN IMMEDIATE", "COMMIT"):
            return
        try:
            self.cuts.append(self._kept(path))
        except BaseException as exc:
            self.errors.append(exc)


@contextlib.contextmanager
def files_capped_at(size: int) -> Iterator[None]:
    """Until the block ends no file of this process grows past ``size`` bytes: the kernel
    refuses the write (``RLIMIT_FSIZE``, ``EFBIG``; ``SIGXFSZ`` ignored) as a full disk refuses
    one. A WAL database writes a transaction's pages to its log only at ``COMMIT``, so capped
    at the log's size the statements run and the commit fails ("disk I/O error": SQLite
    reports ``EFBIG`` so, ``ENOSPC`` as full). The limit is the whole process's: use it only
    in a child process of the test, never in pytest's own."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` has passed (False): a bound
    against hangs, not a timing; the condition decides."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        select.select([], [], [], 0.02)
    return False


def _cap(conn: sqlite3.Connection) -> None:
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {int(pages)}")


def _read_only(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA query_only = 1")


def break_the_sessions_table(path: Path) -> None:
    """Overwrite the root page of ``sessions`` (a table the queue does not touch): the file
    fails its check at open, and its queue can still be read."""
    break_the_root_page(path, "sessions")


def break_the_root_page(path: Path, name: str) -> None:
    """Overwrite the root page of table or index ``name``: the file fails its check at open."""
    conn = sqlite3.connect(path)
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    conn.close()
    with path.open("r+b") as f:
        f.seek(page_size * (root - 1))
        f.write(b"\xff" * page_size)


def alert(device_id: str = "tm-1", t: float = 1.0, kind: EventType = EventType.FALL) -> Event:
    """An alert bigger than a page, so that on a full disk it never fits in a page's free room."""
    return Event.now(kind, device_id, t, "TRIPPED", f"{kind.value} at {t:.1f} " + "." * 5000)


def with_damaged_wal(db: Path, scratch: Path) -> bytes:
    """A device database at ``db`` holding a queued alert in its write-ahead log, as a power cut
    leaves it (not checkpointed), with a salt of the log's header flipped: SQLite ignores such a
    log without a word. Made at ``scratch`` and copied; returns the damaged log's bytes."""
    live = scratch / "events.db"
    live.parent.mkdir(parents=True, exist_ok=True)
    db.parent.mkdir(parents=True, exist_ok=True)
    outbox = Outbox(live, Topics("retroguard", "tm-1"), max_rows=10)
    outbox.enqueue_event(alert())
    for suffix in ("", "-wal"):
        shutil.copyfile(f"{live}{suffix}", f"{db}{suffix}")
    outbox.close()
    wal = Path(f"{db}-wal")
    damaged = bytearray(wal.read_bytes())
    damaged[16] ^= 0xFF
    wal.write_bytes(bytes(damaged))
    return bytes(damaged)


def populated(path: Path, events: int = 300) -> Path:
    """A sound device database with enough events to span many pages."""
    outbox = Outbox(path, Topics("retroguard", "tm-1"), max_rows=events + 10)
    for i in range(events):
        outbox.enqueue_event(
            Event.now(EventType.STUMBLE, "tm-1", float(i), "TRIPPED", f"stumble {i} " + "x" * 200)
        )
    outbox.close()
    return path


def _random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(12).randbytes(16384))


def _truncated(path: Path) -> None:
    populated(path)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size // 3)


def _truncated_header(path: Path) -> None:
    populated(path)
    with path.open("r+b") as f:
        f.truncate(60)


def _malformed_page(path: Path) -> None:
    populated(path)
    conn = sqlite3.connect(path)
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    with path.open("r+b") as f:
        f.seek(page_size * 5)  # a b-tree page of the events table, not the header
        f.write(bytes([0xFF]) * 64 + random.Random(3).randbytes(page_size - 64))


def _newer_schema(path: Path) -> None:
    shutil.copyfile(FIXTURE, path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()


def _foreign_tables(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT)")
    conn.execute("INSERT INTO events (what) VALUES ('not ours')")
    conn.commit()
    conn.close()


DAMAGE: dict[str, Callable[[Path], None]] = {
    "random bytes": _random_bytes,
    "truncated": _truncated,
    "truncated header": _truncated_header,
    "malformed page": _malformed_page,
    "newer schema": _newer_schema,
    "foreign tables": _foreign_tables,
}
"""Ways a database file is found damaged, each writing one at the given path."""


def damage(kind: str, path: Path) -> bytes:
    """Write a damaged database of ``kind`` at ``path``; its bytes (to compare after the move)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    DAMAGE[kind](path)
    for suffix in ("-wal", "-shm"):
        companion = Path(f"{path}{suffix}")
        if companion.exists():
            os.remove(companion)
    return path.read_bytes()


def database_at_version(path: Path, version: int) -> sqlite3.Connection:
    """A device database as release ``version`` of the schema made it (for migration tests)."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    for migration in MIGRATIONS:
        if migration.version <= version:
            for statement in migration.statements:
                conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    return conn
