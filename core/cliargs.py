"""argparse types the command lines share, so bad input is refused where it is typed.

A value argparse's own ``type=float`` takes but no command can use (``nan``, ``inf``), or an
output file that cannot be written, is an argparse error naming the option (exit status 2),
before anything runs: not a traceback later, after a recording or an evaluation, nor a
temporary folder left behind.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path


def finite_float(text: str) -> float:
    """A number, refusing ``nan`` and ``inf`` (which ``float`` accepts: NaN passes every
    ``<= 0`` check, so a command would take it for a valid value)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than ``minimum``. ``type=int`` took any,
    and a count or a number of workers below it meant nothing the command could do:
    ``watch --count -1`` watched for ever, as if it were 0, and ``evaluate -j -3`` ended in a
    traceback from the process pool after it had found the recordings."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a whole number, {minimum} or more, not {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be a whole number, {minimum} or more, not {value}"
            )
        return value

    parse.__name__ = f"whole number >= {minimum}"  # argparse's name for it in other errors
    return parse


def tcp_port(text: str) -> int:
    """A TCP port to connect to or listen on, 1-65535: ``type=int`` took ``70000`` and ``0``,
    and the service that was handed one failed only when it bound or connected, after it had
    opened (or made) its database, with a traceback."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a TCP port (1-65535), not {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port (1-65535), not {port}")
    return port


def unreachable(path: str | Path) -> str | None:
    """Why ``path`` cannot even be looked up, named ("x/y.db: cannot reach: Permission
    denied": a folder above it this user may not enter, a symlink loop), or None when it can
    (whether or not it exists). Python 3.11's ``Path.exists()`` and ``is_dir()`` answer False
    only for a missing file and raise for the rest: the commands that asked them about a path a
    person gave printed a traceback. Ask here first. A name holding a NUL character (a config
    file's ``"\\u0000"``) is none any file can have: ``os.stat`` raises ValueError for it, where
    ``Path.exists()`` answered False."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return f"{path}: cannot reach: {exc.strerror or exc}"
    except ValueError:
        shown = str(path).replace("\0", "\\0")
        return f"{shown}: cannot reach: a file name cannot hold a NUL character (\\0)"
    return None


def output_file_problem(text: str | Path) -> str | None:
    """Why ``text`` cannot be a file to write (None when it can): a directory, in a directory
    that does not exist or may not be written, or a file this user may not write. The write
    itself may still fail, e.g. on a full disk: the command says so then. Nothing is made:
    a mistyped folder is refused, not created."""
    path = Path(text)
    problem = unreachable(path)
    if problem is not None:
        return problem
    if path.is_dir():
        return f"{text}: a directory, not a file"
    parent = path.parent
    if not parent.is_dir():
        return f"{text}: no such directory {parent}"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{text}: cannot write in {parent} (permission denied)"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{text}: cannot write it (permission denied)"
    return None


def output_file(text: str) -> Path:
    """An argparse type: a file to write (:func:`output_file_problem`)."""
    problem = output_file_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return Path(text)


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same text, a relative and an absolute spelling,
    a symlink and its target, or two hard links (``--pdf r.csv --csv r.csv`` would write one
    report over the other, and the command would say it wrote both)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()
