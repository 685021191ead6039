"""When a progression moves on: the rule, written once, over the sessions a stage saw.

A stage is done when, in ``stage.weeks`` different weeks since it began, the
walker completed ``stage.sessions_per_week`` sessions of the stage's plan
(completed as adherence counts it, :func:`core.progress.done`: the plan
walked through; a session stopped early or ended by a trip does not count; and
as :func:`core.progress.days_done` counts them, a day once: a walk interrupted
and walked again the same day does not count twice toward the stage).
Weeks are ISO weeks in the walker's zone, as the weekly goal's
(:mod:`core.progress`). The last stage is never "done": the walker stays there.
The rule only decides; the device applies it (``firmware.storage.progressions``)
and a physio's hold stops it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from core.progress import done, per_day, utc_of, week_of
from core.protocol.plan import Stage


@dataclass(frozen=True, slots=True)
class StageSession:
    """What the rule reads of a stored session."""

    started_wall: str
    plan: str
    """The plan's name, as the session record keeps it."""
    status: str
    planned_s: float
    done_s: float
    backward_s: float
    longest_backward_s: float


def weeks_done(
    stage: Stage, since_wall: str, sessions: Iterable[StageSession], zone: dt.tzinfo
) -> int:
    """Weeks since ``since_wall`` in which the stage's prescribed sessions were completed,
    counting at most :func:`core.progress.per_day` of them a day, as adherence counts them
    (one a day, unless the stage asks for more than seven a week)."""
    since = utc_of(since_wall).replace(microsecond=0)  # sessions keep whole seconds
    cap = per_day(stage.sessions_per_week)
    per_week: dict[str, Counter[dt.date]] = {}
    for s in sessions:
        started = utc_of(s.started_wall)
        if done(s) and s.plan == stage.plan.name and started >= since:
            per_week.setdefault(week_of(started, zone), Counter())[
                started.astimezone(zone).date()
            ] += 1
    return sum(
        1
        for days in per_week.values()
        if sum(min(cap, n) for n in days.values()) >= stage.sessions_per_week
    )


def stage_done(
    stage: Stage, since_wall: str, sessions: Iterable[StageSession], zone: dt.tzinfo
) -> bool:
    return weeks_done(stage, since_wall, sessions, zone) >= stage.weeks
