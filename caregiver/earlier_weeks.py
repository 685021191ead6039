"""The progress page after months of walking: the recent weeks in full, the earlier by month.

A physio opens a walker's progress page for the last weeks and the trend, often on a phone;
after a year every week and session listed one by one made the page 177 kB of rows nobody
read (344 kB at two years). The page lists the last :data:`RECENT_WEEKS` weeks in full (each
week in words, each session a row, each trend's weekly medians) and sums up the weeks before
them a month a line, in the words a week is said in (adherence, the longest backward
stretch, weeks at goal); its ``?weeks=all`` view lists every week and session as before,
and the CSV and PDF reports stay complete. The goal, the weeks at goal and the trends'
change are counted over every session either way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from caregiver.storage import WalkSession
from core.progress import (
    WeekProgress,
    adherence_words,
    stretch_words,
    utc_of,
    week_of,
    week_start,
)
from core.protocol.plan import IntervalWalk, weeks_stretch_s

RECENT_WEEKS = 12
"""The weeks the progress page lists in full, this one included: a quarter, a physio's usual
span between reviews. It holds the preset progression's whole climb to 10 minutes (two
weeks of 2/2 and eight one-week stages: ten weeks) or four weeks at goal three times over,
whatever stage the walker is at; "since the stage began" would be one week on a climbing
walker's page and a year on one who reached the last stage."""


def recent_since(current: str) -> dt.date:
    """The Monday of the first of the :data:`RECENT_WEEKS` weeks that end with ``current``."""
    return week_start(current) - dt.timedelta(weeks=RECENT_WEEKS - 1)


def is_recent(week: str, since: dt.date) -> bool:
    """``week`` ("2026-W49") is listed in full: it began on or after ``since``."""
    return week_start(week) >= since


@dataclass(frozen=True, slots=True)
class Month:
    """The earlier weeks of one calendar month (a week is its Monday's month, as the page names
    it by its Monday), said as a week is: sessions done against those prescribed, the longest
    backward stretch, and how many of its weeks were at goal."""

    first_day: dt.date
    weeks: tuple[WeekProgress, ...]
    """Newest first, missed weeks included (0 done of their prescribed)."""
    plan_stretch_s: float | None
    """The longest backward stretch its sessions' plans prescribe (None: not known), so a month
    on the 2/2 plan is not measured against 10 minutes (:func:`core.progress.stretch_words`)."""

    @property
    def sessions(self) -> int:
        return sum(w.sessions for w in self.weeks)

    @property
    def done(self) -> int:
        return sum(w.done for w in self.weeks)

    @property
    def prescribed(self) -> int:
        return sum(w.prescribed for w in self.weeks)

    @property
    def longest_backward_s(self) -> float:
        return max(w.longest_backward_s for w in self.weeks)

    @property
    def weeks_at_goal(self) -> int:
        return sum(1 for w in self.weeks if w.goal_met)

    def words(self) -> tuple[str, str, str]:
        """``10 of 12 prescribed sessions done``, ``longest backward stretch 10.0 of 10 min``,
        ``2 weeks at goal``: the week's words (:func:`core.progress.week_goal_parts`) summed."""
        at_goal = self.weeks_at_goal
        return (
            adherence_words(self.done, self.prescribed),
            # a month of missed weeks only: "none (no session walked)", as each of its weeks
            # says, not "0.0 of 10 min", a figure that looked measured
            stretch_words(self.longest_backward_s, self.plan_stretch_s, self.sessions),
            f"{at_goal} week{'' if at_goal == 1 else 's'} at goal",
        )


def by_month(
    weeks: Iterable[WeekProgress],
    sessions: Iterable[WalkSession],
    walks: Mapping[str, tuple[IntervalWalk, ...]],
    zone: dt.tzinfo,
) -> list[Month]:
    """``weeks`` (any order) a month each, newest first; ``sessions`` (those weeks' own) and
    their ``walks`` (:func:`caregiver.progress.session_walks`) give each month the stretch its
    plans held."""
    months: dict[dt.date, list[WeekProgress]] = {}
    for week in weeks:
        months.setdefault(week_start(week.week).replace(day=1), []).append(week)
    walked: dict[dt.date, list[tuple[IntervalWalk, ...]]] = {}
    for s in sessions:
        monday = week_start(week_of(utc_of(s.started_wall), zone))
        if monday.replace(day=1) in months:
            walked.setdefault(monday.replace(day=1), []).append(walks.get(s.id, ()))
    return [
        Month(
            first_day,
            tuple(sorted(months[first_day], key=lambda w: w.week, reverse=True)),
            weeks_stretch_s(walked.get(first_day, [])),
        )
        for first_day in sorted(months, reverse=True)
    ]


@dataclass(frozen=True, slots=True)
class Shortened:
    """The progress page's weeks and sessions with the earlier ones summed up by month."""

    since: dt.date
    """The first listed week's Monday."""
    weeks: list[WeekProgress]
    """The recent weeks, newest first, each listed in words."""
    months: list[Month]
    """The weeks before them, a month each, newest first (none: nothing earlier)."""
    sessions: list[WalkSession]
    """The recent weeks' sessions, newest first."""
    earlier_sessions: int


def shorten(
    weeks: Sequence[WeekProgress],
    sessions: Sequence[WalkSession],
    walks: Mapping[str, tuple[IntervalWalk, ...]],
    current: str,
    zone: dt.tzinfo,
) -> Shortened:
    """The recent :data:`RECENT_WEEKS` weeks of ``weeks`` (newest first, as
    :func:`caregiver.progress.progress_view` lists them) and of ``sessions`` (newest first)
    in full, the weeks before them by month; ``current`` is the week under way."""
    since = recent_since(current)
    recent = [w for w in weeks if is_recent(w.week, since)]
    earlier = [w for w in weeks if not is_recent(w.week, since)]
    listed: list[WalkSession] = []
    before: list[WalkSession] = []
    for s in sessions:
        (listed if is_recent(week_of(utc_of(s.started_wall), zone), since) else before).append(s)
    return Shortened(since, recent, by_month(earlier, before, walks, zone), listed, len(before))
