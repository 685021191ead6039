"""The preset plans every RetroGuard knows by name, shared by the device, the CLI and the dashboard.

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
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from core.progress import GOAL_BACKWARD_MIN
from core.protocol.messages import Direction, StageMessage
from core.protocol.plan import DEFAULT_SPEED, Interval, Plan, Progression, Stage, plan_words

PROGRESSION_WEEKS = 9


def _minutes(direction: Direction, minutes: float, speed: str = DEFAULT_SPEED) -> Interval:
    return Interval(direction, float(minutes), speed)


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


def toward_10_minutes() -> Progression:
    """The prescription's path: two weeks of 2/2, then one longer backward block a week
    (3, 4 ... 10 minutes; ``progression-week-2`` ... ``-9``), each week three completed
    sessions; the last stage, one 10-minute block, is where the walker stays."""
    stages = [Stage(alternate_2_2(), weeks=2)]
    stages += [Stage(progression_week(w)) for w in range(2, PROGRESSION_WEEKS + 1)]
    return Progression("toward-10-minutes", tuple(stages))


PROGRESSIONS: Mapping[str, Progression] = {"toward-10-minutes": toward_10_minutes()}


def stage_words(stage: StageMessage) -> str:
    """What the stage's plan prescribes, in words with the stage's sessions a week; "" when
    this service cannot know it. The device's stage message names the stage's plan only: its
    words are said for a stage of a preset progression (the progression's name, its number of
    stages and the stage's plan's name all match) or a stage whose plan is a preset (a
    progression file names presets by name: ``core.protocol.plan.progression_from_builtins``);
    a custom stage's plan is never guessed at. The dashboard's progress and plan pages and
    ``retroguard watch`` say a stage so: its plan's name alone was a label to look up."""
    plan = stage_plan(stage)
    return plan_words(plan, stage.sessions_per_week) if plan is not None else ""


def stage_plan(stage: StageMessage) -> Plan | None:
    """The stage's plan when this service can know it (:func:`stage_words`), else None."""
    preset = PROGRESSIONS.get(stage.progression)
    if preset is not None and len(preset.stages) == stage.stages:
        ours = preset.stages[stage.stage - 1]
        if ours.plan.name == stage.stage_name:
            return ours.plan
    return PRESETS.get(stage.stage_name)
