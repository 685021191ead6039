"""Weekly progress toward the clinical goal: 10 straight minutes backward, three times a week.

Pure functions over sessions (anything with the summary's ``started_wall``,
``backward_s`` and ``longest_backward_s``: :class:`SessionProgress`), shared by
``retroguard sessions`` (:mod:`tools.sessions`, the device's
:class:`~core.protocol.messages.SessionRecord`) and the caregiver dashboard's
progress page (its stored rows), so the week and goal rule is written once:

* a session's week is the ISO week of its ``started_wall`` in the walker's time zone
  ("2025-W07"): the caller gives the zone (the caregiver service its configured one,
  ``retroguard sessions`` the device's, :func:`core.zones.system_zone`), so a session on
  Monday 00:30 in Berlin counts in Monday's week, not in the Sunday's week it is in UTC;
* a session is *at goal* when its longest backward interval reached 10 minutes
  (``GOAL_BACKWARD_MIN``, with one second of slack for the plan clock);
* a week's goal is met with ``GOAL_SESSIONS_PER_WEEK`` (3) sessions at goal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

GOAL_BACKWARD_MIN = 10.0
"""The clinical goal: about 10 straight minutes backward ..."""
GOAL_SESSIONS_PER_WEEK = 3
"""... three times a week."""


__all__ = [
    "GOAL_BACKWARD_MIN",
    "GOAL_SESSIONS_PER_WEEK",
    "SessionProgress",
    "WeekProgress",
    "at_goal",
    "started_utc",
    "utc_of",
    "week_of",
    "week_start",
    "weekly_progress",
]

_SLACK_S = 1.0


class SessionProgress(Protocol):
    """What the rule reads of a session: the device's record, its summary and the caregiver's
    stored row all have these."""

    @property
    def started_wall(self) -> str:
        """ISO 8601 wall-clock time the session started."""
        ...

    @property
    def backward_s(self) -> float:
        """Plan time done in backward intervals."""
        ...

    @property
    def longest_backward_s(self) -> float:
        """The longest backward interval done."""
        ...


def utc_of(wall: str) -> dt.datetime:
    """An ISO 8601 wall-clock time as an aware UTC datetime (naive times are taken as UTC);
    :class:`ValueError` when it is not one."""
    moment = dt.datetime.fromisoformat(wall)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def started_utc(session: SessionProgress) -> dt.datetime:
    """The session's ``started_wall`` as an aware UTC datetime."""
    return utc_of(session.started_wall)


def week_of(moment: dt.datetime, zone: dt.tzinfo) -> str:
    """The ISO week of ``moment`` in ``zone``, as "2025-W07" (a naive moment is UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    year, week, _ = moment.astimezone(zone).isocalendar()
    return f"{year}-W{week:02d}"


def week_start(week: str) -> dt.date:
    """The Monday of ``week`` ("2025-W07")."""
    year, _, number = week.partition("-W")
    return dt.date.fromisocalendar(int(year), int(number), 1)


def at_goal(session: SessionProgress) -> bool:
    """True when the session's longest backward interval reached the goal's 10 minutes."""
    return session.longest_backward_s >= GOAL_BACKWARD_MIN * 60 - _SLACK_S


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


def weekly_progress(sessions: Iterable[SessionProgress], zone: dt.tzinfo) -> list[WeekProgress]:
    """Sessions grouped by ISO week in ``zone``, oldest week first (weeks without sessions are
    absent)."""
    weeks: dict[str, list[SessionProgress]] = {}
    for s in sessions:
        weeks.setdefault(week_of(started_utc(s), zone), []).append(s)
    return [
        WeekProgress(
            week=week,
            sessions=len(rows),
            at_goal=sum(1 for s in rows if at_goal(s)),
            backward_s=sum(float(s.backward_s) for s in rows),
            longest_backward_s=max(float(s.longest_backward_s) for s in rows),
        )
        for week, rows in sorted(weeks.items())
    ]
