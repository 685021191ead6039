"""The plan page's own-schedule shorthand (:mod:`caregiver.schedule_form`): what a line means,
every problem at once named by stage and field, and the same verdict as the device's.

The device's verdict is :func:`core.protocol.commands.parse_command` on the ``progression``
command: a schedule the page sends must not be refused there for its data, and one the device
takes, written in the shorthand, must not be refused by the page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from caregiver.schedule_form import schedule_command
from core.plan_presets import PRESETS
from core.protocol.commands import AssignProgression, CommandRefused, parse_command
from core.protocol.plan import MAX_PROBLEMS_SAID, Interval, PlanInvalid


def _problems(name: str, text: str, start: str = "1") -> list[str]:
    with pytest.raises(PlanInvalid) as refused:
        schedule_command(name, text, start, "ann", "anna")
    return refused.value.problems


def test_a_line_is_a_stage_its_plan_weeks_sessions_and_speed() -> None:
    command = schedule_command(
        " Anna, spring ",
        "2/2 x7, 2 forward | 2 weeks | 3 a week\n"
        "\n"
        "Week 3: 2 fwd + 2,5/2 x2 | twice a week | 0,8 km/h\n"
        "progression-week-9 | 4 weeks | once a week\n"
        "1 rest, 10 min back, 1 r | belt slow | 2 weeks",
        "3",
        "ann",
        "anna",
    )
    assert (command.stage, command.by, command.walker) == (2, "ann", "anna")
    progression = command.progression
    assert progression.name == "Anna, spring"
    stages = progression.stages
    assert [(s.plan.name, s.weeks, s.sessions_per_week) for s in stages] == [
        ("2/2 x7, 2 forward", 2, 3),
        ("Week 3", 1, 2),
        ("progression-week-9", 4, 1),
        ("1 rest, 10 min back, 1 r", 2, 3),
    ]
    two_two = (Interval("backward", 2.0), Interval("forward", 2.0))
    assert stages[0].plan.intervals == (*two_two * 7, Interval("forward", 2.0))
    assert stages[0].plan.intervals == PRESETS["alternate-2-2"].intervals
    km = "0,8 km/h"
    half = (Interval("backward", 2.5, km), Interval("forward", 2.0, km))
    assert stages[1].plan.intervals == (Interval("forward", 2.0, km), *half * 2)
    assert stages[2].plan == PRESETS["progression-week-9"]  # a preset is the preset itself
    assert [(i.direction, i.minutes, i.speed) for i in stages[3].plan.intervals] == [
        ("rest", 1.0, "slow"),
        ("backward", 10.0, "slow"),
        ("rest", 1.0, "slow"),
    ]


def test_a_comma_without_a_space_after_a_word_parts_two_terms() -> None:
    """ "2 forward,3 back": the comma is after a letter, before a digit, so no decimal comma
    (mut39: only the comma not followed by a digit parted terms, and the line was refused)."""
    command = schedule_command("A", "2 forward,3 back", "1", "ann", "anna")
    intervals = command.progression.stages[0].plan.intervals
    assert [(i.direction, i.minutes) for i in intervals] == [("forward", 2.0), ("backward", 3.0)]


def test_one_repeat_past_the_most_intervals_is_refused_not_cut() -> None:
    """ "1 back x61": sixty-one intervals typed, refused as too many, never taken as sixty
    (mut39: the repeat capped at the most the contract takes sent a plan one short)."""
    assert _problems("A", "1 back x61") == ["stage 1: intervals: must have at most 60 intervals"]


def test_every_mistake_is_named_at_once_by_its_stage_and_field() -> None:
    """Each stage's problems come from the contract's own rules (one per rule, not one per
    repeat of a term), said with the term typed; a blank line above moves a stage's line."""
    problems = _problems(
        "",
        "2/75 x7, 2 forward | 2 weeks | 3 a week\n"
        "\n"
        "3/2 x4 | 1 wek\n"
        "2 sideways, 3 | 60 weeks | 20 a week\n"
        "2/2 x3 | 0 mph\n"
        "1 rest\n"
        "2/2 x50\n"
        "progression-week-2 | 1 mph",
        "9",
    )
    assert problems == [
        "name: give the schedule a name, such as 'Anna, spring'",
        "stage 1: '2/75 x7', forward minutes: must be at most 60 min",
        "stage 2 (line 3): '1 wek' is none of weeks ('2 weeks'), sessions a week ('3 a week') "
        "or a belt speed ('0.5 mph', 'belt slow')",
        "stage 3 (line 4): '2 sideways' is not an interval: write '3/2' (3 min backward, 2 "
        "forward), '2 forward', '1 rest', each with 'x4' to repeat it, apart with ', '; or a "
        "preset's name",
        "stage 3 (line 4): '3' is not an interval: write '3/2' (3 min backward, 2 forward), "
        "'2 forward', '1 rest', each with 'x4' to repeat it, apart with ', '; or a preset's "
        "name",
        "stage 3 (line 4): weeks: must be at most 52 weeks",
        "stage 3 (line 4): sessions a week: must be at most 14 a week",
        "stage 4 (line 5): belt speed: a backward interval at '0 mph' does not move the belt; "
        "give its speed (such as '0.5 mph'), or make the interval a rest",
        "stage 5 (line 6): intervals: the plan has no walking interval (all are rest)",
        "stage 6 (line 7): intervals: must have at most 60 intervals",
        "stage 6 (line 7): intervals: the plan lasts 200 min, over the 180 min a session may last",
        "stage 7 (line 8): belt speed: a preset keeps its own (0.5 mph)",
        "start at stage: '9' is not a stage of this schedule: 1 to 7",
    ]
    assert _problems("A", "", "9" * 5000) == [
        "stages: no stage typed: one a line, such as '2/2 x7, 2 forward | 2 weeks | 3 a week'"
    ]
    assert _problems("A", "2/2\n3/75", "3") == [  # said with the stages' own problems
        "stage 2: '3/75', forward minutes: must be at most 60 min",
        "start at stage: '3' is not a stage of this schedule: 1 to 2",
    ]
    assert _problems("A", "A: 2/2\nA: 3/2") == [
        "stage 2: plan name: stage 2's plan is named 'A', as stage 1's is, with other "
        "intervals: give each stage's plan a name of its own"
    ]
    assert _problems("A", "2/2\n" * 13) == ["stages: 13 lines typed, a schedule has at most 12"]
    assert _problems("x" * 81, "2/2") == ["name: must be at most 80 characters long"]


def _device(data: dict[str, Any]) -> bool:
    """Whether the device takes ``data`` as a ``progression`` command."""
    try:
        parse_command("progression", json.dumps(data).encode())
    except CommandRefused:
        return False
    return True


def _page(text: str, start: str = "1") -> bool:
    try:
        schedule_command("S", text, start, "ann", "default")
    except PlanInvalid:
        return False
    return True


@pytest.mark.parametrize(
    ("line", "stage"),
    [
        ("1/1 | 1 week | 1 a week", {"weeks": 1, "sessions_per_week": 1}),
        ("1/1 | 0 weeks", {"weeks": 0}),
        ("1/1 | 52 weeks | 14 a week", {"weeks": 52, "sessions_per_week": 14}),
        ("1/1 | 53 weeks", {"weeks": 53}),
        ("1/1 | 0 a week", {"sessions_per_week": 0}),
        ("1/1 | 15 a week", {"sessions_per_week": 15}),
        ("60/60", {"minutes": (60, 60)}),
        ("60,5/1", {"minutes": (60.5, 1)}),
        ("0,17/1", {"minutes": (0.17, 1)}),
        ("0,16/1", {"minutes": (0.16, 1)}),
        ("60/60 x2, 60 forward", {"minutes": (60, 60), "times": 2, "then": 60}),
        ("60/60 x2, 61 forward", {"minutes": (60, 60), "times": 2, "then": 61}),
        ("1/1 x30", {"minutes": (1, 1), "times": 30}),
        ("1/1 x30, 1 back", {"minutes": (1, 1), "times": 30, "then": 1}),
        ("1/1 | 4 mph", {"speed": "4 mph"}),
        ("1/1 | 4.1 mph", {"speed": "4.1 mph"}),
        ("1/1 | belt 0", {"speed": "0"}),
        ("1/1 | belt " + "s" * 40, {"speed": "s" * 40}),
        ("1/1 | belt " + "s" * 41, {"speed": "s" * 41}),
    ],
)
def test_the_page_and_the_device_agree_on_every_bound(line: str, stage: dict[str, Any]) -> None:
    """The shorthand's line and the same stage on the wire: at each bound of the contract both
    accept, or both refuse."""
    back, forward = stage.get("minutes", (1, 1))
    speed = stage.get("speed", "0.5 mph")
    unit = [
        {"direction": "backward", "minutes": back, "speed": speed},
        {"direction": "forward", "minutes": forward, "speed": speed},
    ]
    intervals = unit * stage.get("times", 1)
    if "then" in stage:
        direction = "forward" if "forward" in line else "backward"
        intervals.append({"direction": direction, "minutes": stage["then"], "speed": speed})
    wire = {
        "progression": {
            "name": "S",
            "stages": [
                {
                    "plan": {"name": "p", "intervals": intervals},
                    "weeks": stage.get("weeks", 1),
                    "sessions_per_week": stage.get("sessions_per_week", 3),
                }
            ],
        },
        "stage": 0,
    }
    assert _page(line) == _device(wire), line


def test_a_schedule_too_large_for_the_device_s_command_is_refused_before_it_is_sent() -> None:
    """Twelve stages of sixty intervals with long speed notes are each a good plan, and the
    device refuses the command for its size: the page says so, as the device would, rather
    than send a schedule that comes back refused."""
    text = "\n".join(f"S{n}: 1/1 x30 | belt {'s' * 40}" for n in range(12))
    (problem,) = _problems("S", text)
    assert problem.startswith("schedule: the treadmill would refuse it: payload too large (")
    shorter = "\n".join(f"S{n}: 1/1 x30 | belt {'s' * 5}" for n in range(12))
    command = schedule_command("S", shorter, "12", "ann", "default")
    assert isinstance(command, AssignProgression) and command.stage == 11


def test_the_documented_example_is_a_schedule_the_page_sends() -> None:
    """The lines docs/caregiver.md shows a physio are read as it says."""
    text = (Path(__file__).parent.parent / "docs" / "caregiver.md").read_text(encoding="utf-8")
    block = text.split("**A schedule of the physio's own**", 1)[1]
    lines = block.split("```text\n", 1)[1].split("```", 1)[0]
    command = schedule_command("Anna, spring", lines, "2", "ann", "default")
    stages = command.progression.stages
    assert [(s.plan.name, s.weeks, s.sessions_per_week) for s in stages] == [
        ("2/2 x7, 2 forward", 2, 3),
        ("Week 3", 1, 2),
        ("10 back", 4, 3),
        ("progression-week-9", 4, 3),
    ]
    assert stages[3].plan == PRESETS["progression-week-9"]


def test_a_megabyte_of_spaces_in_a_stage_is_read_at_once_not_matched_for_hours() -> None:
    """A textarea of spaces between terms, pasted or posted on purpose, is read in one pass:
    the terms were split on a pattern that matched spaces on both sides of the comma, which
    tried every space of a run against all of it, and held the service's event loop for the
    square of the run (5 s for 16 KB; this megabyte, hours: the suite's hang guard fails it)."""
    gap = " " * 1_000_000
    command = schedule_command("S", f"2 back,{gap}1{gap}fwd ;{gap}| 2 weeks", "1", "ann", "w")
    (stage,) = command.progression.stages
    assert stage.weeks == 2 and stage.plan.name == "2 back, 1 fwd ;"
    assert [(i.direction, i.minutes) for i in stage.plan.intervals] == [
        ("backward", 2.0),
        ("forward", 1.0),
    ]
    (problem,) = _problems("S", f"2 back,{gap}zz{gap}, 1 fwd")
    assert problem.startswith("stage 1: 'zz' is not an interval: write '3/2'")


def test_a_paste_of_thousands_of_lines_or_terms_is_refused_in_a_few_words() -> None:
    """A textarea pasted full (or posted on purpose) is refused by its size, not read to the
    end: every line was read before the count of lines was said, and every term of a line
    built its intervals, up to 61 repeats each, before the contract refused more than 60.
    One line of 20 000 terms held the caregiver service's event loop 33 s (a 2 MB form of
    such lines, minutes), and a line of parts each wrong listed every one of them, 100 000
    problems on the page."""
    assert _problems("A", "2/75\n" * 10_000) == [
        "stages: 10000 lines typed, a schedule has at most 12"
    ]
    assert _problems("A", "2/2 x60, " * 20_000) == [
        "stage 1: 20000 terms typed: a plan has at most 60 intervals"
    ]
    sixty = ", ".join(["1 forward"] * 60)
    assert schedule_command("A", sixty, "1", "ann", "w").progression.stages[0].plan.intervals == (
        (Interval("forward", 1.0),) * 60
    )
    problems = _problems("A", "2/2" + " | 2 wek" * 100_000)
    assert len(problems) == MAX_PROBLEMS_SAID + 1
    assert problems[0].startswith("stage 1: '2 wek' is none of weeks")
    assert problems[-1] == (
        f"schedule: {100_000 - MAX_PROBLEMS_SAID} more problems like these, not listed"
    )


def test_a_count_typed_with_leading_zeros_is_its_number() -> None:
    """ "0000002 weeks" is two weeks: a count of more than six digits was taken for a huge one
    by its length, zeros and all, and refused "weeks: must be at most 52 weeks"."""
    command = schedule_command("A", "1/1 x0000002 | 0000002 weeks | 00000003 a week", "1", "a", "w")
    (stage,) = command.progression.stages
    assert (len(stage.plan.intervals), stage.weeks, stage.sessions_per_week) == (4, 2, 3)
