"""Session plans on the device: presets by name, plan files, and the config's reference.

The plan itself is data in the wire contract (:class:`core.protocol.plan.Plan`:
intervals of backward, forward or rest, minutes, a speed note) and the presets
are shared with the dashboard (:mod:`core.plan_presets`); this module reads
plan files and resolves ``session.plan``. A plan a physio assigns later (the
``cmd/plan`` command, ``retroguard plan set``) is stored in the device
database and replaces this one from the next session on (docs/sessions.md).

A plan file is a small TOML file (or the same keys in a JSON object, in a file ending in
``.json``: both formats take and refuse the same plans, in the same words)::

    name = "Anna, week 3"            # optional; default: the file name
    speed = "0.5 mph"                # optional; the default speed note
    [[interval]]
    direction = "forward"            # "backward", "forward" or "rest"
    minutes = 2                      # or seconds = 120
    [[interval]]
    direction = "backward"
    minutes = 3
    speed = "0.4 mph"                # optional, this interval only

``intervals`` may stand for ``interval``: a plan in the wire's form (``{"name": ...,
"intervals": [{"direction": ..., "minutes": ..., "speed": ...}]}``, what
:func:`core.protocol.plan.plan_json` writes) is a plan file too.

Every problem is reported at once as ``file: key: what is wrong``
(:class:`core.errors.ConfigError`), like the monitor's config.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from core import tomlschema
from core.errors import ConfigError
from core.plan_presets import PRESETS, PROGRESSION_WEEKS, alternate_2_2, progression_week
from core.protocol.messages import Direction
from core.protocol.plan import (
    DEFAULT_SPEED,
    DIRECTIONS,
    MIN_INTERVAL_S,
    Interval,
    Plan,
    PlanInvalid,
    every_problem,
    plan_from_builtins,
    too_short,
)

__all__ = [
    "DEFAULT_SPEED",
    "PRESETS",
    "PROGRESSION_WEEKS",
    "Interval",
    "Plan",
    "alternate_2_2",
    "check_plan_reference",
    "load_plan_file",
    "parse_plan",
    "progression_week",
    "resolve_plan",
]

PLAN_FILE_SUFFIXES = (".toml", ".json")
"""What a plan file's name ends in: the two formats of the same keys."""
MAX_INTERVAL_S = 3600.0


def check_plan_reference(value: str) -> str | None:
    """Config check of ``session.plan``: a preset name or a plan file's path, ``.toml`` or
    ``.json`` — the plan files every other command takes (``plan set``, ``session demo
    --plan``), read by the same :func:`load_plan_file`."""
    if value in PRESETS or value.endswith(PLAN_FILE_SUFFIXES):
        return None
    return "must be a preset (" + ", ".join(PRESETS) + ") or a plan file ending in .toml or .json"


def _check_number(value: Any, key: str, problems: list[str]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{key}: must be a number, not {type(value).__name__} {value!r}")
        return None
    try:
        number = float(value)
    except OverflowError:  # an int past a float's range: JSON and tomllib read any int
        problems.append(f"{key}: too large a number (past 1e308)")
        return None
    if not math.isfinite(number):
        problems.append(f"{key}: must be a finite number")
        return None
    return number


def parse_plan(data: Mapping[str, Any], source: str, default_name: str = "plan") -> Plan:
    """Validate a parsed plan file; :class:`ConfigError` lists every problem at once: the
    file's own keys' and, on what they gave, the wire contract's
    (:func:`core.protocol.plan.every_problem`: a name or a speed note too long, a speed no one
    walks at, a plan too long). The contract's were checked only once the file's were fixed,
    so a physio met them in rounds."""
    problems: list[str] = []
    known = {"name", "speed", "interval", "intervals"}
    for key in data:
        if key not in known:
            problems.append(f"{key}: unknown key (known: {', '.join(sorted(known))})")
    listed = "intervals" if "intervals" in data else "interval"  # the wire's name, or the file's
    if "interval" in data and "intervals" in data:
        problems.append("interval, intervals: give one of them (the same list), not both")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        problems.append("name: must be a non-empty string")
        name = default_name
    speed = data.get("speed", DEFAULT_SPEED)
    if not isinstance(speed, str):
        problems.append(f"speed: must be a string such as {DEFAULT_SPEED!r}, not {speed!r}")
        speed = DEFAULT_SPEED
    raw = data.get(listed)
    listed_said = True  # the list itself has a problem said already
    if raw is None:
        problems.append(f"{listed}: the plan has no intervals (add [[interval]] tables)")
        raw = []
    elif not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        problems.append(f"{listed}: must be an array of tables ([[interval]])")
        raw = []
    else:
        listed_said = False
    parsed = [
        _parse_interval(item, f"{listed}[{n}]", speed, problems) for n, item in enumerate(raw)
    ]
    wire = {
        "name": name.strip(),
        "intervals": [None if i is None else msgspec.to_builtins(i) for i in parsed],
    }
    said: dict[str, None] = {}
    for problem in every_problem(wire):
        match = _INTERVAL.match(problem)
        if match is None:
            if not (listed_said and problem.startswith("intervals:")):
                said[_as_written(problem, listed)] = None
        elif parsed[n := int(match["n"])] is not None:  # a refused one is said already
            if problem.startswith(f"intervals[{n}].speed:") and "speed" not in raw[n]:
                # the file's one speed, which the interval took: said once, under its own key
                said["speed:" + problem.split(":", 1)[1]] = None
            else:
                said[_as_written(problem, listed)] = None
    problems += said
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    try:  # checked above: the plan as the wire contract reads it
        return plan_from_builtins(wire)
    except PlanInvalid as exc:
        raise ConfigError([f"{source}: {_as_written(p, listed)}" for p in exc.problems]) from None


_INTERVAL = re.compile(r"^intervals\[(?P<n>[0-9]+)\]")


def _as_written(problem: str, listed: str) -> str:
    """The contract's ``problem`` under the file's own key: its ``intervals[1].speed`` is a
    TOML file's ``interval[1].speed`` (``[[interval]]``), the key the physio wrote; a file in
    the wire's form keeps ``intervals``."""
    if problem.startswith("intervals"):
        return listed + problem.removeprefix("intervals")
    return problem


def _parse_interval(
    item: Mapping[str, Any], key: str, default_speed: str, problems: list[str]
) -> Interval | None:
    before = len(problems)
    known = {"direction", "minutes", "seconds", "speed"}
    for k in item:
        if k not in known:
            problems.append(f"{key}.{k}: unknown key (known: {', '.join(sorted(known))})")
    direction = item.get("direction")
    if direction is None:
        problems.append(f"{key}.direction: missing (one of {', '.join(DIRECTIONS)})")
    elif direction not in DIRECTIONS:
        problems.append(
            f"{key}.direction: must be one of {', '.join(repr(d) for d in DIRECTIONS)}, "
            f"not {direction!r}"
        )
    duration: float | None = None
    if "minutes" in item and "seconds" in item:
        problems.append(f"{key}: give minutes or seconds, not both")
    elif "minutes" in item:
        minutes = _check_number(item["minutes"], f"{key}.minutes", problems)
        duration = None if minutes is None else minutes * 60.0
    elif "seconds" in item:
        duration = _check_number(item["seconds"], f"{key}.seconds", problems)
    else:
        problems.append(f"{key}: missing its duration (minutes = N or seconds = N)")
    if duration is not None and (too_short(duration) or duration > MAX_INTERVAL_S):
        problems.append(
            f"{key}: duration must be between {MIN_INTERVAL_S:g} s and "
            f"{MAX_INTERVAL_S / 60:g} min, not {duration:g} s"
        )
    speed = item.get("speed", default_speed)
    if not isinstance(speed, str):
        problems.append(f"{key}.speed: must be a string such as {DEFAULT_SPEED!r}, not {speed!r}")
    if len(problems) > before or duration is None or direction not in DIRECTIONS:
        return None
    checked: Direction = direction
    return Interval.of_seconds(checked, duration, speed)


def load_plan_file(path: str | Path) -> Plan:
    """A plan file, TOML or (ending in ``.json``) JSON, checked by :func:`parse_plan` either
    way: the format is only how the same keys are written."""
    path = Path(path)
    if path.suffix == ".json":
        data = _read_json_object(path, "plan file")
    else:
        data = tomlschema.read_toml(path, "plan file")
    return parse_plan(data, str(path), default_name=path.stem)


def _read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON file's object; the problems :func:`core.tomlschema.read_toml` names for TOML
    (missing, a directory, unreadable, not UTF-8, malformed) in the same words, and a file
    whose value is not an object (a TOML file is always a table)."""
    data = tomlschema.read_json(path, what)
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else type(data).__name__
        raise ConfigError([f"{path}: a {what} is an object ({{...}}), not {kind}"])
    return data


def resolve_plan(reference: str, base_dir: str | Path | None = None) -> Plan:
    """A preset by name, or a plan file (relative paths against ``base_dir``)."""
    if reference in PRESETS:
        return PRESETS[reference]
    if not reference.endswith(PLAN_FILE_SUFFIXES):
        problem = check_plan_reference(reference)
        raise ConfigError([f"session.plan: {problem}"])
    path = Path(reference)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return load_plan_file(path)
