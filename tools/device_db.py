"""The device database a local command (``plan``, ``walker``, ``sessions``) works on.

Two things every such command does alike, so they cannot drift apart:

* its ``-c/--config`` and ``--db`` options (and ``plan``'s ``--walker``) are
  taken before *and* after the action (``plan set anna.toml --walker anna``):
  a person types options where they think of them, and argparse only sees a
  parent's options before the sub-action's name;
* a command that only reads never creates the database: a mistyped ``--db``,
  or no config on a machine where the monitor never ran, would otherwise
  leave an empty database behind and report "nothing recorded" from it as if
  that were the device's;
* a file that is not a database (``--db report.pdf``) is refused with a sentence, by every
  command, before SQLite is asked to open it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from pathlib import Path

from core.dbfile import database_file_problem


def add_common_options(
    parser: argparse.ArgumentParser,
    actions: Iterable[argparse.ArgumentParser],
    extra: Callable[[argparse.ArgumentParser, object], None] | None = None,
) -> None:
    """``-c/--config`` and ``--db`` (and ``extra``'s options) on ``parser`` and on each of its
    ``actions``; on an action they default to nothing, so a value given before the action is
    kept unless it is given again after it."""
    for target, default in ((parser, None), *((a, argparse.SUPPRESS) for a in actions)):
        target.add_argument(
            "-c",
            "--config",
            type=Path,
            default=default,
            help="the monitor's config file",
        )
        target.add_argument(
            "--db",
            type=Path,
            default=default,
            help="database (default: the config's)",
        )
        if extra is not None:
            extra(target, default)


def database_problem(database: Path, *, reads_only: bool) -> str | None:
    """Why the command cannot use ``database`` (None when it can), named, so a mistyped path
    is seen for what it is: a read-only command's database does not exist, or the file is not
    a database at all (a directory, a PDF: :func:`core.dbfile.database_file_problem`; SQLite
    would answer it with a traceback). Nothing is created or changed."""
    if not database.exists():
        if not reads_only:
            return None
        return (
            f"{database}: no such database (the monitor creates it on its first start; "
            "give the device's config with -c or its database with --db)"
        )
    return database_file_problem(database)
