"""The device database a local command (``plan``, ``walker``, ``sessions``) works on.

Two things every such command does alike, so they cannot drift apart:

* its ``-c/--config`` and ``--db`` options (and ``plan``'s ``--walker``) are
  taken before *and* after the action (``plan set anna.toml --walker anna``):
  a person types options where they think of them, and argparse only sees a
  parent's options before the sub-action's name;
* a command that only reads never creates the database: a mistyped ``--db``,
  or no config on a machine where the monitor never ran, would otherwise
  leave an empty database behind and report "nothing recorded" from it as if
  that were the device's.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from pathlib import Path


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


def missing_database(database: Path) -> str | None:
    """Why a read-only command cannot read ``database`` (None when it can): it does not exist,
    or it is not a file. Named, so a mistyped path is seen for what it is."""
    if not database.exists():
        return (
            f"{database}: no such database (the monitor creates it on its first start; "
            "give the device's config with -c or its database with --db)"
        )
    if not database.is_file():
        return f"{database}: not a database file"
    return None
