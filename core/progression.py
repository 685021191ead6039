"""When a progression moves on: the rule, written once, over the sessions a stage saw.

A stage is done when, in ``stage.weeks`` different weeks since it began, the
walker completed ``stage.sessions_per_week`` sessions of the stage's plan
(completed as adherence counts it, :func:`core.progress.done`: the plan
walked through; a session stopped early or ended by a trip does not count; and
as :func:`core.progress.days_done` counts them, a day once: a walk interrupted
and walked again the same day does not count twice toward the stage).
A session walked the stage's plan when it walked its intervals (:func:`plan_walk`: each
interval's direction, length and speed note, as the session record keeps them), whatever
the plan was called: before, the rule matched the plan's *name*, so a plan set by hand under
the stage plan's name with other intervals counted toward the stage (a release then advanced
the walker over a stage never walked), and a renamed copy of the stage's plan did not.
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
from core.protocol.plan import IntervalWalk, Stage, plan_walk


@dataclass(frozen=True, slots=True)
class StageSession:
    """What the rule reads of a stored session."""

    started_wall: str
    plan: str
    """The plan's name, as the session record keeps it (not what the rule matches: a label)."""
    status: str
    planned_s: float
    done_s: float
    backward_s: float
    longest_backward_s: float
    walk: tuple[IntervalWalk, ...] = ()
    """The intervals it walked (:func:`plan_walk`'s terms), in order: what the rule matches."""


def week_counts(
    stage: Stage, since_wall: str, sessions: Iterable[StageSession], zone: dt.tzinfo
) -> dict[str, int]:
    """Week ("2026-W49", in ``zone``) -> the sessions since ``since_wall`` that count toward
    the stage in it: completed sessions of its plan, at most :func:`core.progress.per_day` of
    them a day, as adherence counts them (one a day, unless the stage asks for more than seven
    a week). A session whose start cannot be read (a damaged row) counts toward nothing. The
    device's retained ``stage`` message says the current week's (``week_done``)."""
    since = utc_of(since_wall).replace(microsecond=0)  # sessions keep whole seconds
    cap = per_day(stage.sessions_per_week)
    walk = plan_walk(stage.plan)
    per_week: dict[str, Counter[dt.date]] = {}
    for s in sessions:
        if not (done(s) and s.walk == walk):
            continue
        try:
            started = utc_of(s.started_wall)
        except ValueError:
            continue
        if started >= since:
            per_week.setdefault(week_of(started, zone), Counter())[
                started.astimezone(zone).date()
            ] += 1
    return {week: sum(min(cap, n) for n in days.values()) for week, days in per_week.items()}


def _weeks_met(
    stage: Stage, since_wall: str, sessions: Iterable[StageSession], zone: dt.tzinfo
) -> list[str]:
    """The weeks since ``since_wall`` in which the stage's prescribed sessions were completed
    (:func:`week_counts` reached ``stage.sessions_per_week``), oldest first."""
    counts = week_counts(stage, since_wall, sessions, zone)
    return sorted(week for week, n in counts.items() if n >= stage.sessions_per_week)


def weeks_done(
    stage: Stage, since_wall: str, sessions: Iterable[StageSession], zone: dt.tzinfo
) -> int:
    """Weeks since ``since_wall`` in which the stage's prescribed sessions were completed."""
    return len(_weeks_met(stage, since_wall, sessions, zone))


def completed_in(
    stage: Stage, since_wall: str, sessions: Iterable[StageSession], zone: dt.tzinfo
) -> str | None:
    """The ISO week ("2026-W10", in ``zone``) in which the stage was completed: the
    ``stage.weeks``-th week that met its count; None while it is not done.

    The next stage counts from the Monday after it (``firmware.storage.progressions``): not
    after the newest session since the stage began, which may be a later week's stopped
    walk, another plan's or one dated by a clock set wrong, and put the next stage's start a
    week or more late, its sessions counted toward nothing."""
    met = _weeks_met(stage, since_wall, sessions, zone)
    return met[stage.weeks - 1] if len(met) >= stage.weeks else None


def stage_done(
    stage: Stage, since_wall: str, sessions: Iterable[StageSession], zone: dt.tzinfo
) -> bool:
    return completed_in(stage, since_wall, sessions, zone) is not None
