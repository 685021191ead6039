"""TOML tables into frozen dataclasses: the one loader behind every RetroGuard config.

The dataclass *is* the schema: a field's type says what the TOML value must
be and its default what an absent key means, so adding a setting needs no
loader code. Supported field types: ``bool``, ``int``, ``float``, ``str``,
``Literal[...]``, fixed tuples (``tuple[float, float, float]``), homogeneous
tuples (``tuple[str, ...]``, or of a dataclass for ``[[arrays of tables]]``),
``dict[str, str]`` and nested dataclasses (``[sub.tables]``).

Problems are collected, not raised one by one, as ``dotted.key: what is
wrong``, so a person fixes a whole file in one pass. Per-key checks
(ranges, sets of values) come from the caller as ``{dotted_key: check}``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from core import strict_json
from core.errors import ConfigError

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
"""TOML's integers are 64-bit and "an integer that cannot be represented losslessly" is an
error (TOML 1.0), but :mod:`tomllib` takes any: ``1`` followed by 400 zeros stopped ``config
--check`` with a traceback in a float key (it cannot become a float), and passed it in an int
key (``mqtt.max_inflight``) that SQLite then refused at run time, for every publish."""

Check = Callable[[Any], str | None]
"""Returns None when the value is fine, otherwise what is wrong with it."""

MAX_TEXT_FILE_BYTES = 4_000_000
"""The largest config or plan file read (TOML or JSON). The biggest a person writes is a
provider's ``caregiver.toml`` naming its devices: 10,000 ``[devices]`` lines of some 60 bytes
are 0.6 MB. A file is read whole and parsed into Python objects several times its size, so a
wrong file under a config's name (a log, a disk image, ``/dev/zero``) is refused by its size
before it can exhaust a 512 MB Pi."""


def read_toml(path: Path, what: str = "file") -> dict[str, Any]:
    """Parse a TOML file; a missing, unreadable or malformed one is a :class:`ConfigError`
    naming the file (``what`` says which kind of file: "plan file", ...).

    Every command reads its TOML here, so none of them shows a traceback for a bad file: a
    directory, bytes that are not UTF-8 (TOML is UTF-8 by definition: a file saved in
    another encoding, or not text at all) and any other read error are problems too.
    """
    text = read_utf8(path, what, "TOML", MAX_TEXT_FILE_BYTES)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    except ValueError:  # tomllib lets int()'s limit through: a number of 4,301 digits or more
        raise ConfigError([f"{path}: not valid TOML: a number longer than 4,300 digits"]) from None
    except RecursionError:  # tomllib recurses for each nested array or inline table
        raise ConfigError([f"{path}: not valid TOML: nested too deeply"]) from None


def read_json(path: Path, what: str, max_bytes: int = MAX_TEXT_FILE_BYTES) -> Any:
    """A JSON file's value, read strictly (:mod:`core.strict_json`: a key written twice is
    refused, as TOML refuses it); the problems :func:`read_toml` names for TOML (missing, a
    directory, unreadable, not UTF-8, too large, malformed) in the same words."""
    text = read_utf8(path, what, "JSON", max_bytes)
    try:
        return strict_json.loads(text)
    except ValueError as exc:
        raise ConfigError([f"{path}: not valid JSON: {exc}"]) from None
    except RecursionError:
        raise ConfigError([f"{path}: not valid JSON: nested too deeply"]) from None


def read_utf8(path: Path, what: str, language: str, max_bytes: int | None = None) -> str:
    """A UTF-8 text file's contents, or a :class:`ConfigError` naming the file and saying
    what kept it from being read, in the same words for every format (``language``: "TOML",
    "JSON"), so a plan file says the same whichever format it was written in.

    ``max_bytes``: a file larger is refused, giving its size and the bound, before it is read
    (and a pipe or device, which has no size, once that much has been read)."""
    try:
        with path.open("rb") as f:
            if max_bytes is None:
                raw = f.read()
            else:
                size = os.fstat(f.fileno()).st_size
                raw = f.read(max_bytes + 1) if size <= max_bytes else b""
                if size > max_bytes or len(raw) > max_bytes:
                    shown = f"{size:,} bytes, over" if size > max_bytes else "more than"
                    bound = f"the {max_bytes:,} bytes a {what} may have"
                    raise ConfigError([f"{path}: {shown} {bound}"])
    except FileNotFoundError:
        raise ConfigError([f"{path}: {what} not found"]) from None
    except PermissionError:
        raise ConfigError([f"{path}: permission denied"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: a directory, not a {what}"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f"byte {exc.start} is not UTF-8 (save it as UTF-8)"
        raise ConfigError([f"{path}: not a {language} text file: {where}"]) from None


def type_name(tp: Any) -> str:
    """How a type is named in an error message."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {type_name(args[0]).removeprefix('a ').removeprefix('an ')}s"
        return f"a list of {len(args)} numbers"
    if origin is dict:
        return "a table of strings"
    names = {float: "a number", int: "a whole number", bool: "true or false", str: "a string"}
    return names.get(tp, str(tp))


def convert(value: Any, tp: Any) -> tuple[Any, str | None]:
    """Coerce a TOML value to the scalar or container type ``tp``: (value, problem)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value, None
        return None, f"must be {type_name(tp)}, not {value!r}"
    if origin is tuple:
        homogeneous = len(args) == 2 and args[1] is Ellipsis
        if not isinstance(value, list) or (not homogeneous and len(value) != len(args)):
            return None, f"must be {type_name(tp)}"
        item_types = [args[0]] * len(value) if homogeneous else list(args)
        items = []
        for item, item_tp in zip(value, item_types, strict=True):
            converted, problem = convert(item, item_tp)
            if problem:
                return None, f"must be {type_name(tp)}"
            items.append(converted)
        return tuple(items), None
    if origin is dict:
        if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            return dict(value), None
        return None, f"must be {type_name(tp)}"
    if isinstance(value, int) and not isinstance(value, bool) and not INT_MIN <= value <= INT_MAX:
        return None, f"must be a number from {INT_MIN:,} to {INT_MAX:,} (TOML's integers)"
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            return None, "must be a finite number"
        return float(value), None
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value, None
    if tp in (bool, str) and isinstance(value, tp):
        return value, None
    return None, f"must be {type_name(tp)}, not {type(value).__name__} {value!r}"


def _dataclass_items(tp: Any) -> type[Any] | None:
    """The item class of ``tuple[SomeDataclass, ...]``, else None."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is not tuple or len(args) != 2 or args[1] is not Ellipsis:
        return None
    item: Any = args[0]
    return item if isinstance(item, type) and dataclasses.is_dataclass(item) else None


def build(
    cls: type[Any],
    table: Mapping[str, Any],
    problems: list[str],
    checks: Mapping[str, Check] | None = None,
    prefix: str = "",
) -> Any:
    """Build ``cls`` from ``table``; append every problem to ``problems``.

    Keys with a problem are left at their defaults, so the returned object
    is always complete (callers raise when ``problems`` is not empty).
    """
    checks = checks or {}
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            import difflib  # here: only a mistyped key needs it (0.2 MB the monitor spares)

            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{dotted}: unknown key{hint}")
            continue
        tp = hints[key]
        if isinstance(tp, types.UnionType):  # ``X | None``: the TOML value is an X
            tp = typing.get_args(tp)[0]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                problems.append(f"{dotted}: must be a table ([{dotted}])")
                continue
            kwargs[key] = build(tp, value, problems, checks, dotted + ".")  # type: ignore[arg-type]
            continue
        item_cls = _dataclass_items(tp)
        if item_cls is not None:
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                problems.append(f"{dotted}: must be an array of tables ([[{dotted}]])")
                continue
            kwargs[key] = tuple(
                build(item_cls, v, problems, checks, f"{dotted}[{i}].") for i, v in enumerate(value)
            )
            continue
        converted, problem = convert(value, tp)
        if problem is None and dotted in checks:
            problem = checks[dotted](converted)
        if problem:
            problems.append(f"{dotted}: {problem}")
        else:
            kwargs[key] = converted
    return cls(**kwargs)
