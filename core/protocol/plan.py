"""A walking plan as data: what a physiotherapist prescribes, on the wire and on the device.

A :class:`Plan` is a name and a list of :class:`Interval` (direction,
minutes, the treadmill speed as a note — the monitor can neither read nor
set the belt speed, so the note is shown and logged, never enforced). The
same type is a plan file's content (``firmware.session.plan``), the
``plan`` field of the ``cmd/plan`` command (:mod:`core.protocol.commands`),
the row the device stores (``firmware.storage.plans``) and what the
courier hands the monitor loop, so a plan is checked once, here, wherever
it came from.

Checking has two layers, and both name the field:

* the type (msgspec): shapes, directions, ranges a JSON Schema can state
  (``docs/mqtt/schemas/plan.schema.json``);
* :func:`plan_problems`: the rules across fields (an interval of at least
  :data:`MIN_INTERVAL_S`, at least one walking interval, a session of at
  most :data:`MAX_SESSION_MIN`).

:func:`plan_from_builtins` runs both and raises :class:`PlanInvalid`,
whose ``problems`` read ``intervals[2].minutes: ...``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, get_args

import msgspec
from msgspec import Meta, Struct

from core import strict_json
from core.protocol.messages import Direction

DIRECTIONS: tuple[str, ...] = get_args(Direction)
DEFAULT_SPEED = "0.5 mph"
MIN_INTERVAL_S = 10.0
"""Shorter intervals are typing mistakes (and would cue faster than anyone can turn)."""
MAX_INTERVAL_MIN = 60.0
MAX_SESSION_MIN = 180.0
MAX_INTERVALS = 60
"""Enough for 30 alternations; keeps a plan command well under a few kilobytes."""

Minutes = Annotated[float, Meta(gt=0, le=MAX_INTERVAL_MIN)]
SpeedNote = Annotated[str, Meta(max_length=40)]
PlanName = Annotated[str, Meta(min_length=1, max_length=80)]


class Interval(Struct, frozen=True, forbid_unknown_fields=True):
    """One stretch of the plan: which way to walk (or rest), how long, at what speed (a note)."""

    direction: Direction
    minutes: Minutes
    speed: SpeedNote = DEFAULT_SPEED
    """The treadmill speed the physio prescribed, as a note (e.g. "0.5 mph")."""

    @classmethod
    def of_seconds(
        cls, direction: Direction, seconds: float, speed: str = DEFAULT_SPEED
    ) -> Interval:
        return cls(direction, seconds / 60.0, speed)

    @property
    def duration_s(self) -> float:
        return self.minutes * 60.0

    @property
    def walking(self) -> bool:
        return self.direction != "rest"


class Plan(Struct, frozen=True, forbid_unknown_fields=True):
    """A session plan: intervals in order. Immutable; equal when name and intervals are."""

    name: PlanName
    intervals: Annotated[tuple[Interval, ...], Meta(min_length=1, max_length=MAX_INTERVALS)]

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
            tuple(msgspec.structs.replace(i, minutes=i.minutes / factor) for i in self.intervals),
        )

    def describe(self) -> str:
        """One line: "alternate-2-2: 30 min, 14 min backward, 15 intervals" (lengths as
        :func:`duration_words` says them: "10 min 10 s", not "10.1667 min")."""
        return (
            f"{self.name}: {duration_words(self.duration_s)}, "
            f"{duration_words(self.backward_s)} backward, {_count(len(self.intervals))}"
        )


IntervalWalk = tuple[str, float, str]
"""One interval as a session record keeps it: direction, planned seconds (to a tenth), speed."""


def plan_walk(plan: Plan) -> tuple[IntervalWalk, ...]:
    """What walking ``plan`` means, as its session records keep it
    (:class:`core.protocol.messages.IntervalSummary`: direction, ``planned_s`` to a tenth of a
    second, speed note): the plan's content without its name, which is a label a physio may
    change. Two plans with the same walk are the same prescription."""
    return tuple((i.direction, round(i.duration_s, 1), i.speed) for i in plan.intervals)


def backward_stretch_s(plan: Plan | Sequence[IntervalWalk]) -> float:
    """The longest straight backward stretch ``plan`` prescribes, in seconds: consecutive
    backward intervals are one stretch, as the runner counts what was walked
    (``firmware.session.recording.longest_backward_stretch``). The most a session of the plan
    can hold toward the goal's 10 straight minutes: 2 min on the 2/2 plan."""
    walk = plan_walk(plan) if isinstance(plan, Plan) else tuple(plan)
    longest = run = 0.0
    for direction, seconds, _ in walk:
        run = run + seconds if direction == "backward" else 0.0
        longest = max(longest, run)
    return longest


def weeks_stretch_s(walks: Iterable[Sequence[IntervalWalk]]) -> float | None:
    """The longest backward stretch the plans of a week's sessions prescribe
    (:func:`backward_stretch_s` of each ``walk``, the most of them), for
    :func:`core.progress.stretch_words`; None when it is not known: no session, or one whose
    intervals are not known (an older summary), which may have held the goal."""
    stretches = [backward_stretch_s(w) if w else None for w in walks]
    if not stretches or None in stretches:
        return None
    return max(s for s in stretches if s is not None)


def same_walk(a: Plan | None, b: Plan | None) -> bool:
    """``a`` and ``b`` prescribe the same walk (:func:`plan_walk`), whatever their names."""
    if a is None or b is None:
        return a is b
    return plan_walk(a) == plan_walk(b)


TIMES = "\u00d7"
"""The multiplication sign of a repeated run in :func:`plan_words` ("... \u00d7 7")."""
WORDS_MAX_PARTS = 6
"""The most parts (an interval, or a repeated run of them) :func:`plan_words` spells out; a
plan that needs more says its first ones, how many stretches follow and its whole length."""


def plan_words(plan: Plan | Sequence[IntervalWalk], per_week: int | None = None) -> str:
    """What a plan prescribes, in a line a physio reads without opening it:
    ``"2 min backward / 2 min forward \u00d7 7, 2 min forward; belt 0.5 mph; 3 times a week"``.

    The one summary every place that shows a plan uses (the dashboard's plan and progress
    pages, the report, ``retroguard plan`` and ``retroguard sessions``), from the plan's own
    fields: ``plan`` is a :class:`Plan` or its walk (:func:`plan_walk`; a session record's
    intervals give the same). Runs of intervals that repeat are said once with their count
    (``\u00d7 7``); the belt speed note is said once when every walking interval has the same one
    (the belt is set by hand at the console, so it is what the physio reads), beside each
    interval when they differ, not at all when the notes are blank; a rest's note is no belt
    speed. ``per_week``: the sessions a week prescribed (a progression stage's), said last.
    An empty walk (a record without its intervals) is ""."""
    walk = plan_walk(plan) if isinstance(plan, Plan) else tuple(plan)
    # said to the second, so grouped to the second; a rest's note is no belt speed
    said = tuple((d, float(round(s)), sp.strip() if d != "rest" else "") for d, s, sp in walk)
    text = _walk_words(said)
    if per_week is not None and text:
        text = f"{text}; {times_a_week(per_week)}"
    return text


def times_a_week(sessions: int) -> str:
    """``once a week``, ``twice a week``, ``3 times a week``: a prescription as said."""
    times = {1: "once", 2: "twice"}.get(sessions, f"{sessions} times")
    return f"{times} a week"


def _count(n: int) -> str:
    """``n`` intervals, a single one as such: "1 intervals" read as a slip to a physio."""
    return "1 interval" if n == 1 else f"{n} intervals"


def duration_words(seconds: float) -> str:
    """``2 min``, ``2.5 min``, ``45 s``, ``2 min 20 s``: seconds to the second, as a person
    reads a plan's length (an interval's, a plan's in all; ``0 min`` for none). Minutes as
    ``:g`` said ``10.1667 min`` of a plan with a 10 s stretch in it. Some time that rounds to
    no second is ``under a second``: it said ``0 min``, as of none."""
    s = round(seconds)
    if s == 0:
        return "under a second" if seconds > 0 else "0 min"
    if s < 60:
        return f"{s} s"
    if s % 30 == 0:
        return f"{s / 60:g} min"
    return f"{s // 60} min {s % 60} s"


def _runs(walk: tuple[IntervalWalk, ...]) -> list[tuple[int, int]]:
    """``walk`` as the fewest parts ``(unit length, count)`` in order, each ``count`` times a
    run of ``unit length`` intervals; of as few parts, the one whose repeated runs start with
    backward walking (warm-up, then "2 min backward / 2 min forward \u00d7 5", as physios
    write it)."""
    n = len(walk)
    # best[i]: (parts, repeated runs not starting backward, -covered by runs) for walk[i:]
    best: list[tuple[int, int, int]] = [(0, 0, 0)] * (n + 1)
    choice: list[tuple[int, int]] = [(1, 1)] * (n + 1)
    for i in range(n - 1, -1, -1):
        parts, off, cover = best[i + 1]
        best[i], choice[i] = (parts + 1, off, cover), (1, 1)
        for length in range(1, (n - i) // 2 + 1):
            unit = walk[i : i + length]
            count = 1
            while walk[i + count * length : i + (count + 1) * length] == unit:
                count += 1
            if count < 2:
                continue
            parts, off, cover = best[i + count * length]
            cost = (parts + 1, off + (unit[0][0] != "backward"), cover - count * length)
            if cost < best[i]:
                best[i], choice[i] = cost, (length, count)
    out: list[tuple[int, int]] = []
    i = 0
    while i < n:
        out.append(choice[i])
        i += choice[i][0] * choice[i][1]
    return out


@functools.lru_cache(maxsize=256)
def _walk_words(walk: tuple[IntervalWalk, ...]) -> str:
    """:func:`plan_words` without the week's sessions (cached: a page lists many sessions of
    a few plans)."""
    if not walk:
        return ""
    speeds = {speed for direction, _, speed in walk if direction != "rest"}
    one_speed = next(iter(speeds)) if len(speeds) == 1 else None

    def interval(direction: str, seconds: float, speed: str) -> str:
        what = f"{duration_words(seconds)} {direction}"
        return f"{what} ({speed})" if speed and one_speed is None else what

    parts: list[str] = []
    covered: list[int] = []  # intervals said by the parts so far
    # grouped over a plan's most intervals: a stored summary is read loosely (the caregiver's),
    # and grouping takes the cube of the length: 10 000 intervals would hold a page for minutes
    for length, count in _runs(walk[:MAX_INTERVALS]):
        i = covered[-1] if covered else 0
        unit = " / ".join(interval(*w) for w in walk[i : i + length])
        parts.append(unit if count == 1 else f"{unit} {TIMES} {count}")
        covered.append(i + length * count)
    if len(parts) > WORDS_MAX_PARTS or len(walk) > covered[-1]:
        shown = parts[: min(len(parts), WORDS_MAX_PARTS - 1)]
        rest = len(walk) - covered[len(shown) - 1]
        total = duration_words(sum(seconds for _, seconds, _ in walk))
        parts = [*shown, f"then {rest} more stretch{'es' if rest != 1 else ''} ({total} in all)"]
    text = ", ".join(parts)
    return f"{text}; belt {one_speed}" if one_speed else text


class PlanInvalid(ValueError):
    """A plan that breaks the contract; ``problems`` name each field (``intervals[1].minutes``)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


_SPEED_NUMBER = re.compile(
    r"\s*(?P<value>[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+))\s*(?P<unit>mph|km/h|kmh|kph|m/s)?\s*",
    re.IGNORECASE,
)
"""A speed note that is a number, with a decimal point or comma (a physio in Germany or France
writes "0,5 km/h", as the dashboard's minutes take "2,5"), and its unit if any."""


def _speed_value(match: re.Match[str]) -> float:
    return float(match["value"].replace(",", "."))


MAX_WALKING_MPH = 4.0
"""The fastest walking speed note a walking interval may have (6.4 km/h, 1.8 m/s): brisk
forward walking; backward walking on a treadmill in therapy is 0.5 to 2 mph. Above it the
note is a typing mistake ("5 mph" for 0.5) shown to the walker as the prescription."""

_MPH_PER = {"mph": 1.0, "km/h": 1 / 1.609344, "kmh": 1 / 1.609344, "kph": 1 / 1.609344,
            "m/s": 3600 / 1609.344}  # fmt: skip


def _no_speed(note: str) -> bool:
    """True for a speed note that is a number (with or without its unit) of zero or less:
    "0 mph" for 0.5 is a typing mistake that prescribes walking on a belt at a standstill. A
    note in words ("slow") is the physio's to write."""
    match = _SPEED_NUMBER.fullmatch(note)
    return match is not None and _speed_value(match) <= 0


def _too_fast(note: str) -> bool:
    """True for a speed note with a unit that is faster than walking (:data:`MAX_WALKING_MPH`);
    a number without a unit may be km/h or mph, so it is taken as written."""
    match = _SPEED_NUMBER.fullmatch(note)
    if match is None or match["unit"] is None:
        return False
    return _speed_value(match) * _MPH_PER[match["unit"].lower()] > MAX_WALKING_MPH + 1e-9


def plan_problems(plan: Plan, *, stored: bool = False) -> list[str]:
    """The cross-field rules a type cannot state, each as ``field: what is wrong``.

    ``stored``: a plan the device already keeps, read back. The rules added since plans were
    first stored (a walking interval's speed note of zero) are for plans being assigned: one
    kept from before them stays the walker's plan, never silently swapped for the config's."""
    return [
        *name_problems(plan.name),
        *(p for n, i in enumerate(plan.intervals) for p in interval_problems(n, i, stored=stored)),
        *walk_problems(plan.intervals),
    ]


def name_problems(name: str) -> list[str]:
    """The rule on a plan's name its type cannot state (:func:`plan_problems`)."""
    if not name.strip() or not name.isprintable():
        return ["name: must be printable text, not blank"]
    return []


def too_short(duration_s: float) -> bool:
    """Whether an interval is shorter than :data:`MIN_INTERVAL_S`: one rule for the wire and
    the plan files, which allows 1e-9 s, so 10 s written as minutes to 13 places
    (0.1666666666665) is 10 s, however a physio or a float rounded it."""
    return duration_s < MIN_INTERVAL_S - 1e-9


def interval_problems(n: int, interval: Interval, *, stored: bool = False) -> list[str]:
    """The rules on the ``n``-th interval its type cannot state (:func:`plan_problems`)."""
    problems: list[str] = []
    if too_short(interval.duration_s):
        problems.append(
            f"intervals[{n}].minutes: an interval lasts at least {MIN_INTERVAL_S:g} s "
            f"({MIN_INTERVAL_S / 60:.2g} min), not {interval.duration_s:g} s"
        )
    if not interval.speed.isprintable():
        problems.append(f"intervals[{n}].speed: must be printable text")
    elif interval.walking and not stored and _no_speed(interval.speed):
        problems.append(
            f"intervals[{n}].speed: a {interval.direction} interval at "
            f"{interval.speed.strip()!r} does not move the belt; give its speed (such as "
            f"{DEFAULT_SPEED!r}), or make the interval a rest"
        )
    elif interval.walking and not stored and _too_fast(interval.speed):
        problems.append(
            f"intervals[{n}].speed: a {interval.direction} interval at "
            f"{interval.speed.strip()!r} is faster than walking (over "
            f"{MAX_WALKING_MPH:g} mph, {MAX_WALKING_MPH * 1.609344:.1f} km/h); give the "
            f"speed the walker walks at (such as {DEFAULT_SPEED!r})"
        )
    return problems


def walk_problems(intervals: Sequence[Interval]) -> list[str]:
    """The rules on a plan's intervals together (:func:`plan_problems`): one of them walks,
    and all of them fit in a session."""
    problems: list[str] = []
    if not any(i.walking for i in intervals):
        problems.append("intervals: the plan has no walking interval (all are rest)")
    total_s = sum(i.duration_s for i in intervals)
    if total_s / 60.0 > MAX_SESSION_MIN:
        problems.append(
            f"intervals: the plan lasts {duration_words(total_s)}, over the "
            f"{MAX_SESSION_MIN:g} min "
            "a session may last"
        )
    return problems


def typed_problems(data: Mapping[str, Any], struct: type[Struct], where: str) -> list[str]:
    """Each of ``data``'s fields the type ``struct`` refuses, each field on its own: msgspec
    stops at the first, so a plan with three mistakes was refused three times, one a try.
    ``where`` names ``data`` (``intervals[2]``; "" for the plan itself)."""
    problems: list[str] = []
    fields = {f.encode_name: f for f in msgspec.structs.fields(struct)}
    for key in data:
        if key not in fields:
            problems.append(f"{where or 'plan'}: object contains unknown field `{key}`")
    for name, f in fields.items():
        at = f"{where}.{name}".lstrip(".")
        if name not in data:
            if f.required:
                problems.append(f"{at}: missing")
            continue
        try:
            msgspec.convert(data[name], f.type)
        except msgspec.ValidationError as exc:
            problems.append(_field_first(str(exc), at))
    return problems


_INTERVAL_LIST = Annotated[list[Any], Meta(min_length=1, max_length=MAX_INTERVALS)]
"""The shape of a plan's ``intervals`` (its items apart: :func:`every_problem`)."""


MAX_PROBLEMS_SAID = 3 * MAX_INTERVALS
"""The most problems :func:`every_problem` lists (each field of each interval a plan may have,
all wrong), then how many more: a 16 KB command of five thousand empty intervals was refused
in 433 KB, logged whole in the journal and sent back as the reply."""


def every_problem(data: Mapping[str, Any], *, stored: bool = False) -> list[str]:
    """Every problem of a plan's decoded fields at once, each naming its field: what its type
    refuses, field by field and interval by interval, and the rules (:func:`plan_problems`)
    on the fields and intervals whose type is right, the intervals' together once all are.
    Before, a physio fixing a plan met its problems in rounds: the first the type refused,
    then the next, then the rules. At most :data:`MAX_PROBLEMS_SAID` of them, and the count
    of the rest."""
    return capped(_every_problem(data, stored=stored), "plan")


def capped(problems: list[str], about: str) -> list[str]:
    """At most :data:`MAX_PROBLEMS_SAID` problems, then how many more (``about``: what they
    are of, "plan"): a refusal of thousands of them was many times the size of what was sent."""
    if len(problems) <= MAX_PROBLEMS_SAID:
        return problems
    more = len(problems) - MAX_PROBLEMS_SAID
    rest = "1 more problem like this" if more == 1 else f"{more} more problems like these"
    return [*problems[:MAX_PROBLEMS_SAID], f"{about}: {rest}, not listed"]


def _every_problem(data: Mapping[str, Any], *, stored: bool) -> list[str]:
    problems = [p for p in typed_problems(data, Plan, "") if not p.startswith("intervals")]
    name = data.get("name")
    if isinstance(name, str) and not any(p.startswith("name") for p in problems):
        problems += name_problems(name)
    if "intervals" not in data:
        return [*problems, "intervals: missing"]
    raw = data["intervals"]
    try:
        msgspec.convert(raw, _INTERVAL_LIST)
    except msgspec.ValidationError as exc:
        problems.append(_field_first(str(exc), "intervals"))
    if not isinstance(raw, list | tuple):
        return problems
    typed: list[Interval] = []
    for n, item in enumerate(raw):
        try:
            interval = msgspec.convert(item, Interval)
        except msgspec.ValidationError as exc:
            if isinstance(item, dict):
                problems += typed_problems(item, Interval, f"intervals[{n}]")
            else:
                problems.append(_field_first(str(exc), f"intervals[{n}]"))
            continue
        typed.append(interval)
        problems += interval_problems(n, interval, stored=stored)
    if typed and len(typed) == len(raw):
        problems += walk_problems(typed)
    return problems


_AT = re.compile(r"^(?P<what>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)


def _field_first(message: str, prefix: str) -> str:
    """msgspec's "Expected `str`, got `int` - at `$.intervals[0].direction`" as
    "intervals[0].direction: expected `str`, got `int`" (and a missing field under its name)."""
    match = _AT.match(message)
    what, path = (message, "") if match is None else (match["what"], match["path"])
    missing = _MISSING.match(what)
    if missing is not None:
        path, what = f"{path}.{missing['field']}", "missing"
    where = f"{prefix.rstrip('.')}{path}".lstrip(".") or "plan"
    said = _bound_said(what, where)  # the whole path: a field checked alone has none of its own
    return f"{where}: {said[:1].lower()}{said[1:]}"


_BOUND = re.compile(
    r"^Expected `(?P<type>\w+)`(?P<length> of length)? (?P<op>[<>]=?) (?P<bound>[0-9.]+)$"
)
_OP_SAID = {">": "more than", ">=": "at least", "<": "less than", "<=": "at most"}
_UNIT_SAID = {"minutes": " min", "weeks": " weeks", "sessions_per_week": " a week"}
"""The unit a bounded number field is said in (a field not named here: the bare number)."""


def _bound_said(what: str, path: str) -> str:
    """msgspec's bound on a field ("Expected `float` <= 60.0", "Expected `array` of length
    >= 1") in words, with the field's unit ("must be at most 60 min", "must have at least 1
    interval"): the dashboard's plan form shows these to a physio, who does not read a
    type's name. Any other message is returned as it is."""
    match = _BOUND.match(what)
    if match is None:
        return what
    field = re.sub(r"\[[0-9]+\]$", "", path.rsplit(".", 1)[-1])
    op = _OP_SAID[match["op"]]
    bound = f"{float(match['bound']):g}"
    one = bound == "1"  # "at least 1 week", "1 character long": never "1 weeks"
    if match["length"] is None:
        unit = _UNIT_SAID.get(field, "")
        return f"must be {op} {bound}{unit.removesuffix('s') if one else unit}"
    if match["type"] == "str":
        return f"must be {op} {bound} character{'' if one else 's'} long"
    noun = field.removesuffix("s") if one else field
    return f"must have {op} {bound} {noun}"


_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


def plan_from_builtins(data: Any, prefix: str = "", *, stored: bool = False) -> Plan:
    """A checked :class:`Plan` from decoded JSON (or TOML); :class:`PlanInvalid` otherwise.

    ``prefix`` is put before every field name (``plan.`` inside a command); ``stored``: a plan
    the device kept, read back (:func:`plan_problems`).
    """
    if not isinstance(data, dict):
        raise PlanInvalid([f"{prefix.rstrip('.') or 'plan'}: must be an object"])
    try:
        plan = msgspec.convert(data, Plan)
    except msgspec.ValidationError as exc:
        # every field's problem, not only the first msgspec met
        problems = every_problem(data, stored=stored) or [_field_first(str(exc), "")]
    else:
        problems = plan_problems(plan, stored=stored)
    if problems:
        raise PlanInvalid([_prefixed(p, prefix) for p in problems])
    return plan


def _prefixed(problem: str, prefix: str) -> str:
    """``problem`` under ``prefix`` (``plan.`` in a command): the plan's own "plan: ..." is
    the prefix's name itself."""
    if not prefix or not problem.startswith("plan:"):
        return f"{prefix}{problem}"
    return f"{prefix.rstrip('.')}{problem.removeprefix('plan')}"


def plan_from_json(payload: bytes | str, *, stored: bool = False) -> Plan:
    """A checked plan from its JSON text (the CLI's file, the dashboard's form; with
    ``stored``, the device's kept plan: :func:`plan_problems`)."""
    try:
        data = strict_json.loads(payload)  # a key written twice is refused, not the last kept
    except ValueError as exc:
        raise PlanInvalid([f"plan: not JSON: {exc}"]) from None
    except RecursionError:
        raise PlanInvalid(["plan: not JSON: nested too deeply"]) from None
    return plan_from_builtins(data, stored=stored)


def plan_to_builtins(plan: Plan) -> dict[str, Any]:
    """The JSON-ready form (what :func:`plan_from_builtins` reads back)."""
    data: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(plan))  # lists, not tuples
    return data


def plan_json(plan: Plan) -> str:
    return msgspec.json.encode(plan).decode()


# ------------------------------------------------------------------ progression

MAX_STAGES = 12
StageWeeks = Annotated[int, Meta(ge=1, le=52)]
SessionsPerWeek = Annotated[int, Meta(ge=1, le=14)]


class Stage(Struct, frozen=True, forbid_unknown_fields=True):
    """One step of a progression: its plan, and what the walker must do before the next."""

    plan: Plan
    weeks: StageWeeks = 1
    """Weeks in which the walker completed ``sessions_per_week`` sessions of this plan."""
    sessions_per_week: SessionsPerWeek = 3
    """The week's prescribed sessions (a session counts when it was completed, not stopped)."""


class Progression(Struct, frozen=True, forbid_unknown_fields=True):
    """A physio's schedule: stages in order, advanced automatically when the prescribed
    sessions are done (the physio can hold it or step back; ``cmd/progression``)."""

    name: PlanName
    stages: Annotated[tuple[Stage, ...], Meta(min_length=1, max_length=MAX_STAGES)]


def _stage_presets(
    data: dict[str, Any], presets: Mapping[str, Plan], prefix: str
) -> dict[str, Any]:
    """``data`` with each stage's ``plan`` given as a preset's name replaced by that preset's
    plan (its wire form): a physio's progression file says ``"plan": "progression-week-4"``
    rather than copy the preset's intervals, and the stage's plan is then the preset itself, so
    a walker who is given the preset by hand is on the stage's plan. A name that is no preset
    is :class:`PlanInvalid` naming the stage and the presets."""
    stages = data.get("stages")
    if not isinstance(stages, list):
        return data
    problems: list[str] = []
    resolved: list[Any] = []
    for n, stage in enumerate(stages):
        name = stage.get("plan") if isinstance(stage, dict) else None
        if not isinstance(name, str):
            resolved.append(stage)
        elif name in presets:
            resolved.append({**stage, "plan": plan_to_builtins(presets[name])})
        else:
            problems.append(
                f"{prefix}stages[{n}].plan: no preset plan is named {name!r}: name one of "
                f"{', '.join(presets)}, or give the plan itself (name and intervals)"
            )
    if problems:
        raise PlanInvalid(problems)
    return {**data, "stages": resolved}


def progression_from_builtins(
    data: Any, prefix: str = "", *, presets: Mapping[str, Plan] | None = None
) -> Progression:
    """A checked :class:`Progression`; :class:`PlanInvalid` naming the field otherwise.

    ``presets``: a stage's ``plan`` may be a name among them (a progression file,
    ``retroguard plan progression set FILE``). Without it (the wire: ``cmd/progression``,
    the stored row) every stage carries its plan whole, so what a device stores and
    publishes never depends on which presets its software knows."""
    if not isinstance(data, dict):
        raise PlanInvalid([f"{prefix.rstrip('.') or 'progression'}: must be an object"])
    if presets is not None:
        data = _stage_presets(data, presets, prefix)
    try:
        progression = msgspec.convert(data, Progression)
    except msgspec.ValidationError as exc:
        raise PlanInvalid([_field_first(str(exc), prefix)]) from None
    problems = [
        f"{prefix}stages[{n}].plan.{p}"
        for n, stage in enumerate(progression.stages)
        for p in plan_problems(stage.plan)
    ]
    problems += _same_names(progression, prefix)
    if problems:
        raise PlanInvalid(problems)
    return progression


def _same_names(progression: Progression, prefix: str) -> list[str]:
    """A problem for each stage whose plan has an earlier stage's plan's name but other
    intervals. The session log, the dashboard and the reports know a session's plan by its
    name, so two plans under one name make "which stage did the walker walk" unreadable; and a
    device of an earlier release, whose rule matched a session to a stage by the plan's name
    (this one matches its intervals: :func:`plan_walk`), would count one stage's sessions
    toward the other, skipping or stalling it. The same plan in two stages is fine."""
    problems: list[str] = []
    first: dict[str, int] = {}
    for n, stage in enumerate(progression.stages):
        name = stage.plan.name
        if name not in first:
            first[name] = n
        elif plan_walk(progression.stages[first[name]].plan) != plan_walk(stage.plan):
            problems.append(
                f"{prefix}stages[{n}].plan.name: stage {n + 1}'s plan is named {name!r}, as "
                f"stage {first[name] + 1}'s is, with other intervals: give each stage's plan "
                "a name of its own"
            )
    return problems


def progression_to_builtins(progression: Progression) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(progression))
    return data
