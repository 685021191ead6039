"""Session plans: intervals of backward, forward or rest walking, presets, plan files.

A plan is what the therapist prescribed, as data: a list of
:class:`Interval` (direction, duration, the treadmill speed as a note — the
monitor cannot set or read the belt speed, so it is shown, never enforced).

Presets (:data:`PRESETS`):

* ``alternate-2-2`` — the common start: two minutes backward, two minutes
  forward, seven times, then two minutes forward: 30 minutes at about
  0.5 mph, 14 of them backward.
* ``progression-week-1`` ... ``progression-week-9`` — toward 10 straight
  minutes backward: the backward block is ``week + 1`` minutes long (2 in
  week 1, 10 in week 9) and repeated so that each session holds about ten
  minutes backward (5 x 2, 4 x 3, 3 x 4, 2 x 5 ... 1 x 10), with two minutes
  forward as warm-up, between blocks and as cool-down. The clinical goal is
  then week 9's single 10-minute block three times a week; balance and knee
  benefits are expected after about four weeks at that level.

A plan file is a small TOML file::

    name = "Anna, week 3"            # optional; default: the file name
    speed = "0.5 mph"                # optional; the default speed note
    [[interval]]
    direction = "forward"            # "backward", "forward" or "rest"
    minutes = 2                      # or seconds = 120
    [[interval]]
    direction = "backward"
    minutes = 3
    speed = "0.4 mph"                # optional, this interval only

Every problem is reported at once as ``file: key: what is wrong``
(:class:`core.errors.ConfigError`), like the monitor's config.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, get_args

from core import tomlschema
from core.errors import ConfigError
from core.progress import GOAL_BACKWARD_MIN
from core.protocol.messages import Direction

DIRECTIONS: tuple[str, ...] = get_args(Direction)

MIN_INTERVAL_S = 10.0
"""Shorter intervals are typing mistakes (and would cue faster than anyone can turn)."""
MAX_INTERVAL_S = 3600.0
MAX_SESSION_S = 3 * 3600.0
DEFAULT_SPEED = "0.5 mph"


PROGRESSION_WEEKS = 9


@dataclass(frozen=True, slots=True)
class Interval:
    direction: Direction
    duration_s: float
    speed: str = DEFAULT_SPEED
    """The treadmill speed the therapist prescribed, as a note (e.g. "0.5 mph")."""

    @property
    def walking(self) -> bool:
        return self.direction != "rest"


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    intervals: tuple[Interval, ...]

    @property
    def duration_s(self) -> float:
        return sum(i.duration_s for i in self.intervals)

    @property
    def backward_s(self) -> float:
        return sum(i.duration_s for i in self.intervals if i.direction == "backward")

    def starts(self) -> list[float]:
        """Plan time at which each interval starts."""
        out: list[float] = []
        t = 0.0
        for interval in self.intervals:
            out.append(t)
            t += interval.duration_s
        return out

    def scaled(self, factor: float) -> Plan:
        """The same plan ``factor`` times shorter (the demo's time compression)."""
        if not factor > 0:
            raise ValueError("scale factor must be positive")
        return Plan(
            f"{self.name} (1/{factor:g} time)",
            tuple(replace(i, duration_s=i.duration_s / factor) for i in self.intervals),
        )

    def describe(self) -> str:
        """One line: "alternate-2-2: 30 min, 14 min backward, 15 intervals"."""
        return (
            f"{self.name}: {self.duration_s / 60:g} min, {self.backward_s / 60:g} min backward, "
            f"{len(self.intervals)} intervals"
        )


def _minutes(direction: Direction, minutes: float, speed: str = DEFAULT_SPEED) -> Interval:
    return Interval(direction, minutes * 60.0, speed)


def alternate_2_2() -> Plan:
    intervals: list[Interval] = []
    for _ in range(7):
        intervals += [_minutes("backward", 2), _minutes("forward", 2)]
    intervals.append(_minutes("forward", 2))
    return Plan("alternate-2-2", tuple(intervals))


def progression_week(week: int) -> Plan:
    """Week ``week`` (1-9) of the progression toward 10 straight minutes backward."""
    if not 1 <= week <= PROGRESSION_WEEKS:
        raise ValueError(f"progression weeks are 1 to {PROGRESSION_WEEKS}, not {week}")
    block = float(week + 1)
    blocks = max(1, math.ceil(GOAL_BACKWARD_MIN / block))
    intervals = [_minutes("forward", 2)]
    for _ in range(blocks):
        intervals += [_minutes("backward", block), _minutes("forward", 2)]
    return Plan(f"progression-week-{week}", tuple(intervals))


PRESETS: Mapping[str, Plan] = {
    "alternate-2-2": alternate_2_2(),
    **{f"progression-week-{w}": progression_week(w) for w in range(1, PROGRESSION_WEEKS + 1)},
}


def check_plan_reference(value: str) -> str | None:
    """Config check of ``session.plan``: a preset name or a ``.toml`` path."""
    if value in PRESETS or value.endswith(".toml"):
        return None
    return "must be a preset (" + ", ".join(PRESETS) + ") or a plan file ending in .toml"


def _check_number(value: Any, key: str, problems: list[str]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{key}: must be a number, not {type(value).__name__} {value!r}")
        return None
    if not math.isfinite(value):
        problems.append(f"{key}: must be a finite number")
        return None
    return float(value)


def parse_plan(data: Mapping[str, Any], source: str, default_name: str = "plan") -> Plan:
    """Validate a parsed plan file; :class:`ConfigError` lists every problem."""
    problems: list[str] = []
    known = {"name", "speed", "interval"}
    for key in data:
        if key not in known:
            problems.append(f"{key}: unknown key (known: {', '.join(sorted(known))})")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        problems.append("name: must be a non-empty string")
        name = default_name
    speed = data.get("speed", DEFAULT_SPEED)
    if not isinstance(speed, str):
        problems.append(f"speed: must be a string such as {DEFAULT_SPEED!r}, not {speed!r}")
        speed = DEFAULT_SPEED
    raw = data.get("interval")
    intervals: list[Interval] = []
    if raw is None:
        problems.append("interval: the plan has no intervals (add [[interval]] tables)")
        raw = []
    elif not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        problems.append("interval: must be an array of tables ([[interval]])")
        raw = []
    for n, item in enumerate(raw):
        interval = _parse_interval(item, f"interval[{n}]", speed, problems)
        if interval is not None:
            intervals.append(interval)
    if intervals and not problems:
        if not any(i.walking for i in intervals):
            problems.append("interval: the plan has no walking interval (all are rest)")
        total = sum(i.duration_s for i in intervals)
        if total > MAX_SESSION_S:
            problems.append(
                f"interval: the plan lasts {total / 60:g} min, over the "
                f"{MAX_SESSION_S / 60:g} min a session may last"
            )
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    return Plan(name.strip(), tuple(intervals))


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
    if duration is not None and not MIN_INTERVAL_S <= duration <= MAX_INTERVAL_S:
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
    return Interval(checked, duration, speed)


def load_plan_file(path: str | Path) -> Plan:
    path = Path(path)
    data = tomlschema.read_toml(path, "plan file")
    return parse_plan(data, str(path), default_name=path.stem)


def resolve_plan(reference: str, base_dir: str | Path | None = None) -> Plan:
    """A preset by name, or a plan file (relative paths against ``base_dir``)."""
    if reference in PRESETS:
        return PRESETS[reference]
    if not reference.endswith(".toml"):
        problem = check_plan_reference(reference)
        raise ConfigError([f"session.plan: {problem}"])
    path = Path(reference)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return load_plan_file(path)
