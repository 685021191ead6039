"""Weekly progress toward the clinical goal: 10 straight minutes backward, three times a week.

Pure functions over session records (the summary's fields: ``started_wall``,
``backward_s``, ``longest_backward_s``), shared by ``retroguard sessions``
(:mod:`tools.sessions`) and the caregiver dashboard's progress page, so
the week and goal rule is written once:

* a session's week is the ISO week of its ``started_wall`` in UTC ("2025-W07");
* a session is *at goal* when its longest backward interval reached 10 minutes
  (``GOAL_BACKWARD_MIN``, with one second of slack for the plan clock);
* a week's goal is met with ``GOAL_SESSIONS_PER_WEEK`` (3) sessions at goal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GOAL_BACKWARD_MIN = 10.0
"""The clinical goal: about 10 straight minutes backward ..."""
GOAL_SESSIONS_PER_WEEK = 3
"""... three times a week."""


__all__ = [
    "GOAL_BACKWARD_MIN",
    "GOAL_SESSIONS_PER_WEEK",
    "WeekProgress",
    "at_goal",
    "started_utc",
    "week_of",
    "week_start",
    "weekly_progress",
]

_SLACK_S = 1.0


def started_utc(record: Mapping[str, Any]) -> dt.datetime:
    """The session's ``started_wall`` as an aware UTC datetime (naive times are taken as UTC)."""
    started = dt.datetime.fromisoformat(str(record["started_wall"]))
    if started.tzinfo is None:
        started = started.replace(tzinfo=dt.UTC)
    return started.astimezone(dt.UTC)


def week_of(moment: dt.datetime) -> str:
    """The ISO week of ``moment`` in UTC, as "2025-W07"."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    year, week, _ = moment.astimezone(dt.UTC).isocalendar()
    return f"{year}-W{week:02d}"


def week_start(week: str) -> dt.date:
    """The Monday of ``week`` ("2025-W07")."""
    year, _, number = week.partition("-W")
    return dt.date.fromisocalendar(int(year), int(number), 1)


def at_goal(record: Mapping[str, Any]) -> bool:
    """True when the session's longest backward interval reached the goal's 10 minutes."""
    return float(record["longest_backward_s"]) >= GOAL_BACKWARD_MIN * 60 - _SLACK_S


@dataclass(frozen=True, slots=True)
class WeekProgress:
    week: str
    """ISO week, "2025-W07"."""
    sessions: int
    at_goal: int
    """Sessions whose longest backward interval reached the goal's 10 minutes."""
    backward_s: float
    longest_backward_s: float

    @property
    def goal_met(self) -> bool:
        return self.at_goal >= GOAL_SESSIONS_PER_WEEK


def weekly_progress(records: Iterable[Mapping[str, Any]]) -> list[WeekProgress]:
    """Sessions grouped by ISO week, oldest week first (weeks without sessions are absent)."""
    weeks: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        weeks.setdefault(week_of(started_utc(r)), []).append(r)
    return [
        WeekProgress(
            week=week,
            sessions=len(rows),
            at_goal=sum(1 for r in rows if at_goal(r)),
            backward_s=sum(float(r["backward_s"]) for r in rows),
            longest_backward_s=max(float(r["longest_backward_s"]) for r in rows),
        )
        for week, rows in sorted(weeks.items())
    ]
