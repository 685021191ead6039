"""What went wrong with the database file, in two kinds the courier treats differently.

* :attr:`Trouble.DAMAGED`: the file is not a database this code can use —
  not SQLite at all, malformed, or a schema it does not know
  (:class:`~firmware.storage.errors.SchemaError`). Waiting will not help: the
  file is moved aside for inspection and a new one is started.
* :attr:`Trouble.UNWRITABLE`: the file may be fine but the disk refuses it —
  full, an I/O error, read-only, locked by another program, no permission.
  That may pass (space is freed, the other program lets go): the courier keeps
  its records in memory meanwhile and tries the disk again.

Anything else (a bug, a constraint violated) is neither, and is raised as it is.
"""

from __future__ import annotations

import errno
import sqlite3
from enum import Enum

from firmware.storage.errors import SchemaError


class Trouble(Enum):
    DAMAGED = "damaged"
    UNWRITABLE = "unwritable"


# Primary SQLite result codes (https://sqlite.org/rescode.html); Python 3.11 exposes them as
# ``sqlite_errorcode`` (the extended code, whose low byte is the primary one).
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT = 3, 5, 6, 8, 10, 11
_FULL, _CANTOPEN, _PROTOCOL, _NOLFS, _NOTADB = 13, 14, 15, 22, 26

_DAMAGE_CODES = {_CORRUPT: "malformed", _NOTADB: "not an SQLite database"}
_DISK_CODES = {
    _FULL: "the disk is full",
    _IOERR: "disk I/O error",
    _READONLY: "the file or its file system is read-only",
    _CANTOPEN: "the file cannot be opened",
    _PERM: "permission denied",
    _BUSY: "another program holds it locked",
    _LOCKED: "another program holds it locked",
    _PROTOCOL: "file locking failed",
    _NOLFS: "the file system cannot hold a file this large",
}


def _primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def trouble(exc: BaseException) -> Trouble | None:
    """Which kind of trouble ``exc`` is, or None when it is not about the file or disk."""
    if isinstance(exc, SchemaError):
        return Trouble.DAMAGED
    if isinstance(exc, sqlite3.Error):
        code = _primary_code(exc)
        if code in _DAMAGE_CODES:
            return Trouble.DAMAGED
        if code in _DISK_CODES:
            return Trouble.UNWRITABLE
        return None
    if isinstance(exc, OSError):
        return Trouble.UNWRITABLE
    return None


def disk_full(exc: BaseException) -> bool:
    """The disk (or the file system's limit for the file) has no room left."""
    if isinstance(exc, sqlite3.Error):
        return _primary_code(exc) in (_FULL, _NOLFS)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def describe(exc: BaseException) -> str:
    """In words, for a log line, an event and the dashboard: what happened, then the detail."""
    if isinstance(exc, SchemaError):
        return str(exc)
    if isinstance(exc, sqlite3.Error):
        code = _primary_code(exc)
        what = _DAMAGE_CODES.get(code) if code is not None else None
        if what is None and code is not None:
            what = _DISK_CODES.get(code)
        return f"{what} ({exc})" if what else str(exc)
    if isinstance(exc, OSError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
