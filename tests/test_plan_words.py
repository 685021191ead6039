"""A plan in words (:func:`core.protocol.plan.plan_words`): what a physio reads of a plan on
every page and in every tool without opening it, derived from the plan's own fields."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caregiver.plan_answers import summary_of
from core.errors import ConfigError
from core.plan_presets import PRESETS, toward_10_minutes
from core.protocol.commands import AssignPlan
from core.protocol.messages import Direction
from core.protocol.plan import (
    MAX_INTERVALS,
    TIMES,
    WORDS_MAX_PARTS,
    Interval,
    Plan,
    PlanInvalid,
    duration_words,
    plan_from_builtins,
    plan_walk,
    plan_words,
)
from firmware.session.plan import parse_plan

X = TIMES
"""The sign of a repeated run (U+00D7, written so, not as an ambiguous character)."""


def _plan(*intervals: tuple[Direction, float, str]) -> Plan:
    return Plan("p", tuple(Interval(d, m, s) for d, m, s in intervals))


def test_the_clinicians_2_2_plan_reads_as_they_prescribe_it() -> None:
    assert plan_words(PRESETS["alternate-2-2"], per_week=3) == (
        f"2 min backward / 2 min forward {X} 7, 2 min forward; belt 0.5 mph; 3 times a week"
    )
    assert plan_words(PRESETS["alternate-2-2"]) == (
        f"2 min backward / 2 min forward {X} 7, 2 min forward; belt 0.5 mph"
    )


def test_the_progression_weeks_read_warm_up_then_the_repeated_backward_block() -> None:
    assert plan_words(PRESETS["progression-week-1"]) == (
        f"2 min forward, 2 min backward / 2 min forward {X} 5; belt 0.5 mph"
    )
    assert plan_words(PRESETS["progression-week-4"]) == (
        f"2 min forward, 5 min backward / 2 min forward {X} 2; belt 0.5 mph"
    )
    # the goal: 10 straight minutes backward, three times a week
    last = toward_10_minutes().stages[-1]
    assert plan_words(last.plan, last.sessions_per_week) == (
        "2 min forward, 10 min backward, 2 min forward; belt 0.5 mph; 3 times a week"
    )


def test_a_single_stretch_an_only_forward_plan_and_a_plan_without_speed() -> None:
    assert plan_words(_plan(("backward", 10, "0.5 mph"))) == "10 min backward; belt 0.5 mph"
    assert plan_words(_plan(("forward", 20, "1.2 km/h"))) == "20 min forward; belt 1.2 km/h"
    assert plan_words(_plan(("forward", 3, "1 mph"), ("forward", 3, "1 mph"))) == (
        f"3 min forward {X} 2; belt 1 mph"
    )
    # a plan file may leave the note blank: no belt speed is said, none is made up
    assert plan_words(_plan(("backward", 2, ""), ("forward", 2, " "))) == (
        "2 min backward, 2 min forward"
    )
    assert plan_words(_plan(("backward", 10, "")), per_week=1) == "10 min backward; once a week"
    assert plan_words(_plan(("backward", 10, "")), per_week=2).endswith("; twice a week")


def test_speeds_that_differ_are_said_beside_each_interval_and_a_rest_has_none() -> None:
    mixed = _plan(*[("backward", 2, "0.5 mph"), ("rest", 1, "9 mph"), ("forward", 2, "1 mph")] * 3)
    assert (
        plan_words(mixed) == f"2 min backward (0.5 mph) / 1 min rest / 2 min forward (1 mph) {X} 3"
    )
    # a rest's note is no belt speed: it neither splits the one speed nor is said
    rests = _plan(
        ("backward", 2, "0.5 mph"), ("rest", 1, "0.5 mph"), ("backward", 2, "0.5 mph"),
        ("rest", 1, "slow"),
    )  # fmt: skip
    assert plan_words(rests) == f"2 min backward / 1 min rest {X} 2; belt 0.5 mph"
    # a note in words is the physio's, said as written
    assert plan_words(_plan(("backward", 5, "slow"))) == "5 min backward; belt slow"
    part = _plan(("backward", 2, "0.5 mph"), ("forward", 2, ""))
    assert plan_words(part) == "2 min backward (0.5 mph), 2 min forward"


def test_durations_read_to_the_second() -> None:
    plan = _plan(
        ("backward", 10 / 60, "0.5 mph"),
        ("forward", 0.5, "0.5 mph"),
        ("backward", 2.5, "0.5 mph"),
        ("forward", 140 / 60, "0.5 mph"),
        ("rest", 60, ""),
    )
    assert plan_words(plan) == (
        "10 s backward, 30 s forward, 2.5 min backward, 2 min 20 s forward, 60 min rest; "
        "belt 0.5 mph"
    )


def test_a_session_record_s_intervals_read_as_the_plan_it_walked() -> None:
    """The dashboard and ``retroguard sessions`` have a session's intervals (direction,
    planned seconds to a tenth, speed), not its plan: they read the same words."""
    plan = PRESETS["progression-week-2"]
    record = [(i.direction, round(i.minutes * 60, 1), i.speed) for i in plan.intervals]
    assert plan_words(record) == plan_words(plan) == plan_words(plan_walk(plan))
    assert plan_words([]) == "" and plan_words([], per_week=3) == ""


def test_the_longest_plans_are_said_in_a_line() -> None:
    alternating = _plan(*[("backward", 1, "0.5 mph"), ("forward", 1, "0.5 mph")] * 30)
    assert len(alternating.intervals) == MAX_INTERVALS
    assert plan_words(alternating) == f"1 min backward / 1 min forward {X} 30; belt 0.5 mph"
    # no two intervals alike: the first parts, then how many follow and the whole length
    distinct = _plan(*[("backward" if n % 2 else "forward", 1 + n / 60, "") for n in range(60)])
    words = plan_words(distinct)
    assert words.startswith("1 min forward, 1 min 1 s backward, 1 min 2 s forward, ")
    assert words.endswith(f"then {60 - WORDS_MAX_PARTS + 1} more stretches (89.5 min in all)")
    assert len(words.split(", ")) == WORDS_MAX_PARTS
    # a stored summary is read loosely: one of far more intervals than a plan may hold is said
    # in a line, promptly (grouping takes the cube of the length), not grouped whole
    endless = [("backward", 60.0, "0.5 mph"), ("forward", 60.0, "0.5 mph")] * 5_000
    assert plan_words(endless) == (
        f"1 min backward / 1 min forward {X} 30, then 9940 more stretches (10000 min in all); "
        "belt 0.5 mph"
    )


_UNIT = re.compile(rf"^(?P<unit>.*?)(?: {X} (?P<count>[0-9]+))?$")
_ONE = re.compile(
    r"^(?P<n>[0-9.]+) (?P<u>min|s)(?: (?P<s>[0-9]+) s)? (?P<d>backward|forward|rest)$"
)


def _read_back(words: str) -> list[tuple[str, float]]:
    """The words read back as (direction, seconds) per interval: the summary says the walk."""
    out: list[tuple[str, float]] = []
    for part in words.split("; ")[0].split(", "):
        match = _UNIT.match(part)
        assert match is not None
        unit = []
        for one in match["unit"].split(" / "):
            m = _ONE.match(one)
            assert m is not None, one
            seconds = float(m["n"]) * (60 if m["u"] == "min" else 1) + float(m["s"] or 0)
            unit.append((m["d"], seconds))
        out += unit * int(match["count"] or 1)
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["backward", "forward", "rest"]), st.sampled_from([1, 2, 3])),
        min_size=1,
        max_size=MAX_INTERVALS,
    )
)
def test_any_plan_s_words_say_its_every_interval_in_order(
    intervals: list[tuple[Direction, int]],
) -> None:
    """Read back, the words are the plan (when they spell it out whole): no interval dropped,
    doubled or moved by the grouping of repeats."""
    plan = _plan(*[(d, float(m), "0.5 mph") for d, m in intervals])
    words = plan_words(plan)
    if "more stretch" in words:  # cut: the parts said are the plan's first intervals
        said = _read_back(words.rsplit(", then ", 1)[0])
        assert said == [(d, m * 60.0) for d, m in intervals][: len(said)]
        return
    assert _read_back(words) == [(d, m * 60.0) for d, m in intervals]
    assert words.endswith("; belt 0.5 mph") or all(d == "rest" for d, _ in intervals)


def test_a_plans_length_is_said_in_minutes_and_seconds_wherever_a_person_reads_it() -> None:
    """A plan of 10 min 10 s was "10.1667 min in all" on the plan page (``:g`` minutes); it
    is said as :func:`plan_words` says a stretch, in the summary of a sent plan, a plan's
    one-line description (``retroguard plan``, the session's start) and a refusal for length."""
    ten_ten = _plan(("backward", 10, "0.5 mph"), ("forward", 10 / 60, "0.5 mph"))
    assert ten_ten.describe() == "p: 10 min 10 s, 10 min backward, 2 intervals"
    assert summary_of(AssignPlan(ten_ten)) == (
        "plan p: 10 min backward, 10 s forward; belt 0.5 mph (10 min 10 s in all)"
    )
    assert _plan(("forward", 2.5, "")).describe() == "p: 2.5 min, 0 min backward, 1 interval"


def test_a_moment_too_short_to_round_to_a_second_is_not_said_as_none() -> None:
    """``duration_words(0.4)`` said "0 min", the words for no time at all."""
    assert duration_words(0.4) == "under a second"
    assert duration_words(0) == "0 min"  # none is still none (no backward walking)
    assert duration_words(0.6) == "1 s"
    too_long = [{"direction": "backward", "minutes": 60}] * 3
    too_long.append({"direction": "forward", "minutes": 10 / 60})
    with pytest.raises(PlanInvalid) as refused:
        plan_from_builtins({"name": "x", "intervals": too_long})
    assert refused.value.problems == [
        "intervals: the plan lasts 180 min 10 s, over the 180 min a session may last"
    ]
    with pytest.raises(ConfigError) as file_refused:  # a plan file says it the same way
        parse_plan({"name": "x", "interval": too_long}, "plan.toml")
    assert "plan.toml: interval: the plan lasts 180 min 10 s, over the 180 min" in str(
        file_refused.value
    )
