"""A progression schedule of the physio's own, typed on the plan page: a name and a stage a line.

Each line is a stage: its plan, then ``|``-separated parts in any order, each optional::

    2/2 x7, 2 forward | 2 weeks | 3 a week
    Week 3: 2 forward, 3/2 x4 | 1 week | 0.5 mph
    progression-week-9 | 4 weeks | twice a week

The plan is a preset's name, or intervals in the custom plan form's terms (direction
backward, forward or rest; minutes, a decimal comma as a point) written short, separated by
``, `` or ``+``: ``3/2`` is 3 min backward then 2 min forward (the prescription's "2/2"),
``2 forward`` (or ``2 fwd``, ``1 rest``, ``10 back``) one interval, and ``x4`` after a term
repeats it. ``Label:`` before the plan names it (else it is named as typed: the session log
and the device's stage message name a custom stage's plan, and "3/2 x4" says what it is).
The other parts: ``2 weeks`` (default 1), ``3 a week`` (``3 times a week``, ``twice a
week``; default 3), a belt speed note (``0.5 mph``, ``belt slow``; default 0.5 mph).

The notation is shorthand only: what it builds is checked by the wire contract's own rules
(:func:`core.protocol.plan.plan_from_builtins` stage by stage, so every problem is said at
once naming the stage; then :func:`core.protocol.plan.progression_from_builtins` and the
device's own parser, :func:`core.protocol.commands.parse_command`, on the very payload), so
the dashboard accepts exactly what the treadmill accepts and is sent as the preset's
``progression`` command (:class:`core.protocol.commands.AssignProgression`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from core.plan_presets import PRESETS
from core.protocol.commands import (
    AssignProgression,
    CommandRefused,
    encode_command,
    parse_command,
)
from core.protocol.plan import (
    DEFAULT_SPEED,
    MAX_INTERVALS,
    MAX_STAGES,
    PlanInvalid,
    Progression,
    Stage,
    capped,
    plan_from_builtins,
    plan_to_builtins,
    progression_from_builtins,
    typed_problems,
)

NAME_EXAMPLE = "Anna, spring"
"""The schedule name's placeholder, and the example a blank name's problem gives."""
STAGES_EXAMPLE = "2/2 x7, 2 forward | 2 weeks | 3 a week\n3/2 x4 | 1 week\n10 back | 4 weeks"
"""The stages' placeholder: what a line looks like."""
NAME_MAX = 80
"""The longest plan name (:data:`core.protocol.plan.PlanName`): a plan typed longer is named
for its schedule and stage instead ("Anna, spring stage 3")."""
LONGEST_REQUEST_ID = "r" * 64
"""A request id as long as the device takes (:func:`core.protocol.ids.is_request_id`): the
payload checked here is never shorter than the one sent."""

_NUMBER = r"(?:\d+(?:[.,]\d+)?|[.,]\d+)"
_DIRECTION = {
    **dict.fromkeys(("backward", "backwards", "back", "bwd", "b"), "backward"),
    **dict.fromkeys(("forward", "forwards", "fwd", "fw", "f"), "forward"),
    **dict.fromkeys(("rest", "r"), "rest"),
}
_TERM = re.compile(
    rf"(?:(?P<back>{_NUMBER})\s*/\s*(?P<fwd>{_NUMBER})"
    rf"|(?P<minutes>{_NUMBER})\s*(?:min(?:utes?|s)?\.?\s*)?(?P<direction>[a-z]+))"
    r"(?:\s*[x\u00d7*]\s*(?P<times>\d+))?",
    re.IGNORECASE,
)
_TERMS_APART = re.compile(r",(?!\d)|(?<!\d),|\+|;")
"""Terms are apart at a comma not between two digits ("2,5" is two and a half), a + or a ;.
The spaces around them are stripped from each term, not matched: matched on both sides,
every start in a run of spaces was tried against all of the run, so 16 KB of spaces in a
line held the caregiver service's event loop 5 s, and a 100 KB textarea minutes."""
_WEEKS = re.compile(r"(?P<n>\d+)\s*(?:weeks?|wks?|w)", re.IGNORECASE)
_PER_WEEK = re.compile(
    r"(?P<n>\d+|once|twice)\s*(?:x\s*)?(?:(?:times?|sessions?)\s*)?(?:a|per|/|each)\s*week",
    re.IGNORECASE,
)
_SPEED = re.compile(
    rf"(?:(?:belt|speed)\s*:?\s+(?P<note>.+)|(?P<number>{_NUMBER}\s*(?:mph|km/h|kmh|kph|m/s)))",
    re.IGNORECASE,
)
_LABEL = re.compile(r"(?P<label>[^:]+):\s*(?P<plan>.*)", re.DOTALL)
_WIRE_INTERVAL = re.compile(r"^intervals\[(?P<n>[0-9]+)\]\.(?P<field>\w+): (?P<what>.*)$")
_WIRE_STAGE = re.compile(r"^stages\[(?P<n>[0-9]+)\]\.?(?P<rest>.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class TypedStage:
    """One line of the form as read, before the contract checks it."""

    line: int
    """The line it was typed on (from 1; blank lines are no stage)."""
    plan: dict[str, Any]
    """Its plan in the wire's form."""
    weeks: int
    sessions_per_week: int


def _number(text: str) -> float:
    return float(text.replace(",", "."))


def _count(text: str) -> int:
    """A whole number typed, so huge that the contract refuses it rather than Python (huge by
    its digits, not its leading zeros: "0000002" is 2)."""
    return int(text) if len(text.lstrip("0")) <= 6 else 10**6


def _terms(text: str) -> list[str]:
    """The terms typed in a stage's plan, each stripped (none blank)."""
    return list(filter(None, (t.strip() for t in _TERMS_APART.split(text))))


def _intervals(typed: list[str], speed: str) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """The intervals the terms ``typed`` say, the term each came from, and the terms not
    understood."""
    intervals: list[dict[str, Any]] = []
    terms: list[str] = []
    unread: list[str] = []
    for term in typed:
        match = _TERM.fullmatch(term)
        direction = _DIRECTION.get((match["direction"] or "").lower()) if match else None
        if match is None or (match["minutes"] is not None and direction is None):
            unread.append(term)
            continue
        if match["back"] is not None:
            unit = [("backward", _number(match["back"])), ("forward", _number(match["fwd"]))]
        else:
            unit = [(str(direction), _number(match["minutes"]))]
        times = _count(match["times"]) if match["times"] else 1
        # no further than the contract's most, which then refuses it ("x100000" is no plan)
        for _ in range(min(times, MAX_INTERVALS + 1)):
            intervals += [{"direction": d, "minutes": m, "speed": speed} for d, m in unit]
            terms += [term] * len(unit)
    return intervals, terms, unread


def _stage_line(line: int, number: int, text: str, schedule: str) -> TypedStage | list[str]:
    """The stage typed as line ``line`` (the ``number``-th stage), or its problems."""
    at = _where(line, number)
    plan_text, *parts = (p.strip() for p in text.split("|"))
    problems: list[str] = []
    weeks: list[int] = []
    per_week: list[int] = []
    speeds: list[str] = []
    for part in parts:
        if m := _WEEKS.fullmatch(part):
            weeks.append(_count(m["n"]))
        elif m := _PER_WEEK.fullmatch(part):
            n = m["n"].lower()
            per_week.append({"once": 1, "twice": 2}.get(n) or _count(n))
        elif m := _SPEED.fullmatch(part):
            speeds.append((m["note"] or m["number"]).strip())
        else:
            problems.append(
                f"{at}: {part[:40]!r} is none of weeks ('2 weeks'), sessions a week "
                "('3 a week') or a belt speed ('0.5 mph', 'belt slow')"
            )
    for said, what in ((weeks, "weeks"), (per_week, "sessions a week"), (speeds, "belt speed")):
        if len(said) > 1:
            problems.append(f"{at}: {what} given {len(said)} times: give it once")
    speed = speeds[0] if speeds else DEFAULT_SPEED
    label_match = _LABEL.fullmatch(plan_text)
    label = label_match["label"].strip() if label_match else ""
    plan_text = label_match["plan"].strip() if label_match else plan_text
    if plan_text in PRESETS:
        plan = plan_to_builtins(PRESETS[plan_text])
        if label:
            plan["name"] = label
        if speeds:
            problems.append(f"{at}: belt speed: a preset keeps its own ({DEFAULT_SPEED})")
    elif len(typed_terms := _terms(plan_text)) > MAX_INTERVALS:
        # each term is an interval or more: refused by its count, not built (a pasted line of
        # 20 000 terms held the service's event loop 33 s while it was)
        problems.append(
            f"{at}: {len(typed_terms)} terms typed: a plan has at most {MAX_INTERVALS} intervals"
        )
        plan = {}
    else:
        intervals, terms, unread = _intervals(typed_terms, speed)
        problems += [
            f"{at}: {u[:40]!r} is not an interval: write '3/2' (3 min backward, 2 forward), "
            "'2 forward', '1 rest', each with 'x4' to repeat it, apart with ', '; or a "
            "preset's name"
            for u in unread
        ]
        if not intervals and not unread:
            problems.append(f"{at}: no plan: give its intervals ('2/2 x7') or a preset's name")
        typed = " ".join(plan_text.split())
        name = label or (
            typed if len(typed) <= NAME_MAX else f"{schedule[:60] or 'schedule'} stage {number}"
        )
        plan = {"name": name, "intervals": intervals}
        if intervals and not unread:
            try:
                plan_from_builtins(plan)  # the contract's rules, every problem at once
            except PlanInvalid as exc:
                problems += _once([_said(p, at, terms, intervals) for p in exc.problems])
    stage_weeks, sessions = weeks[0] if weeks else 1, per_week[0] if per_week else 3
    stage = {"plan": plan, "weeks": stage_weeks, "sessions_per_week": sessions}
    problems += [
        f"{at}: {p.replace('sessions_per_week', 'sessions a week', 1)}"
        for p in typed_problems(stage, Stage, "")
        if not p.startswith("plan")
    ]
    if problems:
        return problems
    return TypedStage(line, plan, stage_weeks, sessions)


def _where(line: int, number: int) -> str:
    """How a problem names its stage: "stage 2", with its line when a blank line is above."""
    return f"stage {number}" if line == number else f"stage {number} (line {line})"


def _said(problem: str, at: str, terms: list[str], intervals: list[dict[str, Any]]) -> str:
    """The contract's ``intervals[7].minutes: ...`` as the term the physio typed:
    "stage 2: '3/75 x4', forward minutes: must be at most 60 min"; the speed, which the whole
    stage shares, as the stage's; the plan's name as the plan's (the schedule has one too)."""
    match = _WIRE_INTERVAL.match(problem)
    if match is None:
        return f"{at}: plan {problem}" if problem.startswith("name:") else f"{at}: {problem}"
    n, field = int(match["n"]), match["field"]
    if field == "speed":
        return f"{at}: belt speed: {match['what']}"
    if n >= len(terms):
        return f"{at}: {problem}"
    return f"{at}: {terms[n][:40]!r}, {intervals[n]['direction']} {field}: {match['what']}"


def _once(problems: list[str]) -> list[str]:
    """``problems`` each once: a term repeated x7 breaks the same rule seven times, and the
    stage's one belt speed is said once, not for each direction walked."""
    seen: set[str] = set()
    out: list[str] = []
    for p in problems:
        key = p.split("belt speed:", 1)[0] + "belt speed" if "belt speed:" in p else p
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def schedule_command(name: str, text: str, start: str, by: str, walker: str) -> AssignProgression:
    """The ``progression`` command the form describes: the schedule ``name`` of the stages
    ``text`` (a line each), assigned for ``walker`` from stage ``start`` (from 1, as typed);
    :class:`PlanInvalid` with every problem, each naming its stage and field, otherwise."""
    name = name.strip()
    problems = [] if name else [f"name: give the schedule a name, such as {NAME_EXAMPLE!r}"]
    stages: list[TypedStage] = []
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if len(lines) > MAX_STAGES:  # said by its count, the lines not read (10 000 took seconds)
        named = {"name": name or NAME_EXAMPLE}
        problems += [p for p in typed_problems(named, Progression, "") if p.startswith("name")]
        problems.append(f"stages: {len(lines)} lines typed, a schedule has at most {MAX_STAGES}")
        raise PlanInvalid(problems)
    for number, (line, typed) in enumerate(lines, 1):
        read = _stage_line(line, number, typed, name)
        if isinstance(read, TypedStage):
            stages.append(read)
        else:
            problems += read
    if not lines:
        problems.append(
            f"stages: no stage typed: one a line, such as {STAGES_EXAMPLE.splitlines()[0]!r}"
        )
    data = {
        "name": name or NAME_EXAMPLE,
        "stages": [
            {"plan": s.plan, "weeks": s.weeks, "sessions_per_week": s.sessions_per_week}
            for s in stages
        ],
    }
    problems += [p for p in typed_problems(data, Progression, "") if p.startswith("name")]
    first, refused = _start(start, len(lines))
    problems += refused
    problems = capped(problems, "schedule")  # a line of 100 000 parts each wrong said them all
    if problems:
        raise PlanInvalid(problems)
    try:
        progression = progression_from_builtins(data)
    except PlanInvalid as exc:
        raise PlanInvalid([_stage_said(p, stages) for p in exc.problems]) from None
    command = AssignProgression(progression, first, by, walker)
    try:  # the device's own parser, on the payload it gets: it must not refuse the schedule
        parse_command("progression", encode_command(command, LONGEST_REQUEST_ID).encode())
    except CommandRefused as exc:
        raise PlanInvalid([f"schedule: the treadmill would refuse it: {exc}"]) from None
    return command


def _start(typed: str, stages: int) -> tuple[int, list[str]]:
    """The stage to start at, 0-based, from the 1-based number typed, and its problem if it
    is none of the ``stages`` (none said for a schedule of no stage: that is the problem)."""
    text = typed.strip() or "1"
    if not stages:
        return 0, []
    if text.isdecimal() and len(text) < 4 and 1 <= int(text) <= stages:
        return int(text) - 1, []
    return 0, [f"start at stage: {text[:20]!r} is not a stage of this schedule: 1 to {stages}"]


def _stage_said(problem: str, stages: list[TypedStage]) -> str:
    """The contract's ``stages[2].plan.name: ...`` as "stage 3: plan name: ..."."""
    match = _WIRE_STAGE.match(problem)
    if match is None or int(match["n"]) >= len(stages):
        return problem
    n, rest = int(match["n"]), match["rest"]
    if rest.startswith("plan.name"):
        rest = "plan name" + rest.removeprefix("plan.name")
    return f"{_where(stages[n].line, n + 1)}: {rest.removeprefix('plan.')}"
