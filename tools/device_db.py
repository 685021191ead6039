"""The device database a local command (``plan``, ``walker``, ``sessions``) works on.

What every such command does alike, so they cannot drift apart:

* its ``-c/--config`` and ``--db`` options (and ``plan``'s ``--walker``) are
  taken before *and* after the action (``plan set anna.toml --walker anna``):
  a person types options where they think of them, and argparse only sees a
  parent's options before the sub-action's name;
* ``plan`` and ``walker`` set the device up, and a physio or maker sets walkers and plans
  up before the monitor's first start as often as after it: on a fresh install, where the
  database is not there yet, they create it exactly as the monitor's first start does
  (:func:`firmware.storage.database.connect`, which owns the schema and its migrations),
  ``plan show`` and ``walker list`` included, and say so on standard error, naming the file,
  so a mistyped ``--db`` is seen (:func:`open_device_database`). The monitor opens the same
  file later as it would its own. Run as root (the commands are documented for root or the
  service's user), the new file and any folder made for it are given to the owner of the
  folder they are made in, the service's user in its state directory
  (:func:`core.writable.created_as_folder_owner`): root's, the service could not write its own
  store at its next start (a storage fault, no arming), and ``StateDirectory=`` does not mend a
  root file in a directory that is the service's already;
* a database in a folder the service can never write (``/etc``, ``/usr``, ``/boot``, ``/efi``:
  :mod:`core.writable`) is refused by every command, as ``config --check`` and ``run`` refuse
  it: whoever runs the command (root may write ``/etc``), it is not the device's database, and
  SQLite would write its ``-wal`` and ``-shm`` beside it, a read included;
* ``sessions``, which only reads what sessions recorded, never creates the database: a
  mistyped ``--db``, or no config on a machine where the monitor never ran, would otherwise
  leave an empty database behind and report "nothing recorded" from it as if that were the
  device's (:func:`database_problem`);
* a file that is not a database (``--db report.pdf``) is refused with a sentence, by every
  command, before SQLite is asked to open it.
"""

from __future__ import annotations

import argparse
import errno
import sqlite3
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from core.cliargs import unreachable
from core.dbfile import database_file_problem
from core.writable import created_as_folder_owner, written_path_problem

INSTALLED_COMMAND = "/opt/retroguard/venv/bin/retroguard"
"""The command as scripts/install-pi.sh installs it (its venv's ``bin`` is not on ``PATH``, nor
on sudo's)."""
SERVICE_USER = "retroguard"
"""The monitor's user: its config is root:retroguard 0640 (install-pi.sh), its state and runtime
directories retroguard's, 0750 (systemd/retroguard.service). Nobody else may use them."""


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


DATABASE_INSTEAD = "name a file in the state directory, e.g. /var/lib/retroguard/retroguard.db"
"""What to give instead of a database in a read-only system folder (as ``config --check``)."""


def database_key(db_option: Path | None) -> str:
    """How a problem names the database: by ``--db`` when it was given, else by the config's
    key."""
    return "storage.database" if db_option is None else "--db"


def system_dir_problem(database: Path, key: str) -> str | None:
    """``key: ...`` when ``database`` is in a folder the service can never write
    (:func:`core.writable.written_path_problem`), else None."""
    return written_path_problem(key, database, DATABASE_INSTEAD)


def database_problem(
    database: Path, *, reads_only: bool, key: str = "storage.database"
) -> str | None:
    """Why the command cannot use ``database`` (None when it can), named, so a mistyped path
    is seen for what it is: it is in a folder the service can never write (``key`` names where
    it came from), a read-only command's database does not exist, or the file is not a
    database at all (a directory, a PDF: :func:`core.dbfile.database_file_problem`; SQLite
    would answer it with a traceback). Nothing is created or changed."""
    system = system_dir_problem(database, key)
    if system is not None:
        return system
    reach = unreachable(database)
    if reach is not None:
        return reach
    if not database.exists():
        if not reads_only:
            return None
        return (
            f"{database}: no such database (the monitor creates it on its first start; "
            "give the device's config with -c or its database with --db)"
        )
    return database_file_problem(database) or _log_problem(database)


def _log_problem(database: Path) -> str | None:
    """Why ``database``'s write-ahead log makes it unsafe to open (None: it does not). SQLite
    would ignore a damaged log and the command's own writes (a schema for a file that then
    looks new) would overwrite it: every commit since the last checkpoint gone for good,
    where the monitor would have moved the file aside and reported it."""
    from firmware.storage.damage import wal_damage

    wal = wal_damage(database)
    if wal is None:
        return None
    return (
        f"{database}: its write-ahead log is damaged ({wal}); left as it is: the monitor "
        "moves it aside at its next start and reports it (retroguard doctor)"
    )


def open_device_database(database: Path, command: str, key: str = "storage.database") -> int | None:
    """Make ``database`` ready for a setup command (``plan``, ``walker``); None when it is, else
    the exit status, having said why on standard error after ``command``'s name.

    A database in a folder the service can never write (``key`` names where it came from), or
    a file that is not a database, is refused (2: :func:`system_dir_problem`,
    :func:`core.dbfile.database_file_problem`). One not there yet (the monitor has not started
    with it) is created and migrated to the current schema as the monitor's first start does,
    given to the folder's owner when run as root, and the command says so. One this user
    may not open or create (the monitor's state directory belongs to its user) is refused with
    a sentence, not a traceback (1). A database written by a newer release raises
    :class:`~firmware.storage.errors.SchemaError`, which the CLI refuses as for every command.
    """
    from firmware.storage.database import connect

    system = system_dir_problem(database, key)
    if system is not None:
        print(f"{command}: {system}", file=sys.stderr)
        return 2
    try:
        created = not database.exists()
        problem = database_file_problem(database) or _log_problem(database)
    except OSError as exc:  # e.g. the state directory is not this user's to look into
        return _cannot(command, database, exc)
    if problem is not None:
        print(f"{command}: {problem}", file=sys.stderr)
        return 2
    try:
        with created_as_folder_owner(database):
            connect(database).close()
    except (OSError, sqlite3.Error) as exc:  # a directory or file this user may not write
        return _cannot(command, database, exc)
    if created:
        print(
            f"{command}: {database}: no device database yet (the monitor has not started with "
            "it): created it, as the monitor's first start does",
            file=sys.stderr,
        )
    return None


def _cannot(command: str, database: Path, exc: Exception) -> int:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    denied = (isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM)) or (
        isinstance(exc, sqlite3.Error)
    )
    hint = (
        " (the monitor's database belongs to its user: run the command as that user, e.g. "
        f"sudo -u {SERVICE_USER} {INSTALLED_COMMAND} ..., or as root)"
        if denied
        else ""
    )
    print(f"{command}: {database}: cannot open: {reason}{hint}", file=sys.stderr)
    return 1
