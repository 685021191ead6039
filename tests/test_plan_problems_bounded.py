"""A malformed plan's refusal is bounded, however many problems its payload holds.

Every problem of a plan is said at once (``every_problem``, c33508c): a ``cmd/plan`` payload of
16 KB holding five thousand empty intervals was refused in 433 KB, two problems an interval —
logged in full in the journal by the courier (``MQTT command 'plan' refused: ...``), published
as the reply and kept in the caregiver's record of what was sent. At the commands' rate limit
(20 a second by default) that is some 8 MB a second of journal on the Pi's SD card from a
client allowed to send commands, where msgspec alone said one problem. The refusal now says the
first problems and how many more there are; a physio's plan, whose every problem fits, is said
whole as before.
"""

from __future__ import annotations

import json

import pytest

from core.protocol.commands import MAX_PLAN_PAYLOAD_BYTES, CommandRefused, parse_command
from core.protocol.plan import MAX_INTERVALS, every_problem


def _refusal(plan: object) -> str:
    payload = json.dumps({"id": "r1", "plan": plan}, separators=(",", ":")).encode()
    assert len(payload) <= MAX_PLAN_PAYLOAD_BYTES
    with pytest.raises(CommandRefused) as refused:
        parse_command("plan", payload)
    return str(refused.value)


@pytest.mark.parametrize(
    "plan",
    [
        {"name": "a", "intervals": [{}] * 5400},
        {"name": "a", "intervals": [1] * 8000},
        {"name": "a", "intervals": [{f"k{n}": 0 for n in range(1500)}]},
    ],
    ids=["empty-intervals", "numbers", "unknown-fields"],
)
def test_a_command_full_of_problems_is_refused_in_a_few_kilobytes(plan: object) -> None:
    said = _refusal(plan)
    assert len(said.encode()) <= MAX_PLAN_PAYLOAD_BYTES, len(said)
    assert said.startswith("plan.intervals")
    assert "more problems" in said, said[-200:]


def test_a_physios_plan_with_every_interval_wrong_is_said_whole() -> None:
    """Sixty intervals, each with a wrong direction and no minutes: every one is named."""
    intervals = [{"direction": "sideways"} for _ in range(MAX_INTERVALS)]
    problems = every_problem({"name": "p", "intervals": intervals})
    assert len(problems) == 2 * MAX_INTERVALS
    assert "more problems" not in " ".join(problems)
    assert problems[-1].startswith(f"intervals[{MAX_INTERVALS - 1}].minutes")


def test_sixty_intervals_with_three_problems_each_are_said_whole() -> None:
    """Every field of each of the sixty intervals a plan may have wrong: all 180 named, no
    count (mut39: a cap one lower, or two an interval, or ``<`` for ``<=``, cut the physio's
    plan and said "1 more" for its last problem)."""
    intervals = [{"direction": "sideways", "speed": 5} for _ in range(MAX_INTERVALS)]
    problems = every_problem({"name": "p", "intervals": intervals})
    assert len(problems) == 3 * MAX_INTERVALS
    assert "more problems" not in " ".join(problems)
    assert problems[-1].startswith(f"intervals[{MAX_INTERVALS - 1}].speed")


def test_one_problem_past_the_cap_is_counted_not_listed() -> None:
    """An empty name too: 181 problems, the first 180 listed, then one counted."""
    intervals = [{"direction": "sideways", "speed": 5} for _ in range(MAX_INTERVALS)]
    problems = every_problem({"name": "", "intervals": intervals})
    assert len(problems) == 3 * MAX_INTERVALS + 1
    assert problems[0].startswith("name")
    assert problems[-2].startswith(f"intervals[{MAX_INTERVALS - 1}].minutes")
    assert problems[-1] == "plan: 1 more problem like this, not listed"
