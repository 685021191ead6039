"""Whether a file a person named as a database can be one, before SQLite is asked to open it.

SQLite answers a file that is not a database (a PDF given to ``--db``, a config named by
mistake) with ``sqlite3.DatabaseError: file is not a database`` from the first statement, a
traceback to the person at the terminal. The commands that open a database a person names
(``sessions``, ``plan``, ``walker``, ``demo --db``, the caregiver service and its commands) ask
here first and refuse such a file with a sentence, changing nothing. Only the header is read:
no SQLite, so the caregiver's layers that must not talk to the database may ask too.
"""

from __future__ import annotations

from pathlib import Path

from core.cliargs import output_file_problem, unreachable

SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite 3 database file (https://sqlite.org/fileformat.html)."""


def database_file_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be an SQLite database, or None when it can (it is one, it is empty,
    which SQLite starts as a new database, or it does not exist yet: the caller decides
    whether it may be created). The problem is a sentence naming the file."""
    path = Path(path)
    problem = unreachable(path)  # a folder above it this user may not enter (EACCES)
    if problem is not None:
        return problem
    if not path.exists():
        return None
    if path.is_dir():
        return f"{path}: a directory, not a database file"
    try:
        with path.open("rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        return f"{path}: cannot read: {exc.strerror or exc}"
    if header and header != SQLITE_HEADER:
        return f"{path}: not a RetroGuard database (not an SQLite database file at all)"
    return None


def demo_database_problem(path: str | Path) -> str | None:
    """Why a demo (``demo --db``, ``session demo --db``) cannot store its events in ``path``,
    or None when it can: not a database (:func:`database_file_problem`: the monitor would move
    the file aside as a damaged one), or not a file it can write, in a folder that exists
    (:func:`core.cliargs.output_file_problem`). A demo's database is a file it writes, as
    ``record``'s trace is: a folder that is not there is a mistyped path, refused as theirs
    are, where the monitor's start (and ``plan``, ``walker``, setting up a fresh install) would
    make it, leaving folders behind wherever the typo pointed."""
    return database_file_problem(path) or output_file_problem(path)
