"""Weekly progress toward the clinical goal: 10 straight minutes backward, three times a week.

Pure functions over sessions (anything with the summary's ``started_wall``,
``backward_s`` and ``longest_backward_s``: :class:`SessionProgress`), shared by
``retroguard sessions`` (:mod:`tools.sessions`, the device's
:class:`~core.protocol.messages.SessionRecord`) and the caregiver dashboard's
progress page (its stored rows), so the week and goal rule is written once:

* a session's week is the ISO week of its ``started_wall`` in the walker's time zone
  ("2025-W07"): the caller gives the zone (the caregiver service the device's, as its
  progress message names it, else its configured one,
  ``retroguard sessions`` the device's, :func:`core.zones.system_zone`), so a session on
  Monday 00:30 in Berlin counts in Monday's week, not in the Sunday's week it is in UTC;
* a session is *at goal* when its longest straight backward stretch reached 10 minutes
  (``GOAL_BACKWARD_MIN``, with one second of slack for the plan clock);
* a week's goal is met with ``GOAL_SESSIONS_PER_WEEK`` (3) sessions at goal on different
  days (:func:`days_at_goal`): that week is
  a *week at goal*, and ``MILESTONE_WEEKS`` (4) of them (in any order: a missed week delays
  the milestone, it does not reset it) are the level after which the clinicians expect a
  difference in balance and joint strength (:func:`milestone`).

The physio reads a week on two separate axes, so a walker on the 2/2 plan sees the
plan counted before they can hold 10 minutes:

* **adherence**: sessions *done* (the plan walked through: :func:`done`), a day counting
  once (:func:`days_done`), against the
  sessions prescribed that week: the ``sessions_per_week`` of the progression stage in
  force at the week's end (:func:`prescribed_in`; the device's retained progress message
  says the same for the week under way), ``PRESCRIBED_SESSIONS_PER_WEEK`` (3) before any
  progression; the 2/2 plan followed three times is 3 of 3 even though no session is at
  goal;
* a day counts once toward adherence and toward the goal: a walk interrupted (a trip, a
  pause that ran out, a monitor restart) and restarted the same day is one walk, the way a
  physio counts it, not two sessions; nor do two walks on one day make up a missed day
  ("three times a week" is three days of walking). Only a prescription of more than seven
  sessions a week (``sessions_per_week`` goes to 14: twice a day) counts two a day toward
  adherence and its stage (:func:`per_day`), which one a day could never complete;
* **progression**: the week's longest continuous backward stretch against the goal's
  10 minutes. A page says "Longest backward stretch this week", not "Progression": that
  word is the plan page's progression schedule (stages of plans), a different thing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

GOAL_BACKWARD_MIN = 10.0
"""The clinical goal: about 10 straight minutes backward ..."""
GOAL_SESSIONS_PER_WEEK = 3
"""... three times a week."""
PRESCRIBED_SESSIONS_PER_WEEK = 3
"""Sessions a week the prescription asks for, whatever the plan (adherence counts against it)."""
MILESTONE_WEEKS = 4
"""Weeks at goal after which a difference in balance and joint strength is expected."""


__all__ = [
    "GOAL_BACKWARD_MIN",
    "GOAL_SESSIONS_PER_WEEK",
    "MAX_WEEKS",
    "MILESTONE_WEEKS",
    "PRESCRIBED_SESSIONS_PER_WEEK",
    "WALL_END",
    "WALL_FIRST",
    "Milestone",
    "SessionProgress",
    "WeekProgress",
    "WeekSpanTooLong",
    "adherence_words",
    "at_goal",
    "check_week",
    "day_of",
    "days_at_goal",
    "days_done",
    "describe_week",
    "done",
    "every_week",
    "in_wall_range",
    "milestone",
    "per_day",
    "prescribed_in",
    "short_of_goal",
    "started_utc",
    "stretch_value",
    "stretch_words",
    "utc_of",
    "week_goal_parts",
    "week_goal_words",
    "week_of",
    "week_start",
    "weekly_progress",
    "weeks_at_goal_words",
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
        """The longest straight stretch backward (no pause in it; the runner's
        :func:`~firmware.session.recording.longest_backward_stretch`)."""
        ...

    @property
    def status(self) -> str:
        """ "running" until the session ends."""
        ...

    @property
    def planned_s(self) -> float:
        """The plan's length."""
        ...

    @property
    def done_s(self) -> float:
        """Plan time walked through."""
        ...


WALL_FIRST = dt.datetime(2, 1, 1, tzinfo=dt.UTC)
WALL_END = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
"""A wall time is read only from year 2 up to (not into) year 9999, UTC: Python's calendar
ends at years 1 and 9999, and a moment within a day of either end cannot be shown in every
time zone (``astimezone`` raises :class:`OverflowError`), nor its ISO week's Sunday be named.
"0001-01-01T00:00:00" in an event from a device stopped the caregiver service's page text in
any zone west of UTC: the fall was refused, unstored and unpaged (tests/test_fuzz_protocol.py).
No clock says such a time; it is refused as not one."""


def utc_of(wall: str) -> dt.datetime:
    """An ISO 8601 wall-clock time as an aware UTC datetime (naive times are taken as UTC);
    :class:`ValueError` when it is not one, or outside :data:`WALL_FIRST` to :data:`WALL_END`."""
    moment = dt.datetime.fromisoformat(wall)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        moment = moment.astimezone(dt.UTC)
    except OverflowError:  # "0001-01-01T00:00:00+14:00" is in year 0
        raise ValueError(f"wall time {wall[:40]!r} is outside the calendar") from None
    return in_wall_range(moment)


def in_wall_range(moment: dt.datetime) -> dt.datetime:
    """``moment`` (aware) if it lies from :data:`WALL_FIRST` up to :data:`WALL_END`, else
    :class:`ValueError`."""
    if not WALL_FIRST <= moment < WALL_END:
        raise ValueError(
            f"{moment.isoformat()} is outside the years {WALL_FIRST.year} to "
            f"{WALL_END.year - 1} a wall time is read in (no clock says it)"
        )
    return moment


def started_utc(session: SessionProgress) -> dt.datetime:
    """The session's ``started_wall`` as an aware UTC datetime."""
    return utc_of(session.started_wall)


def week_of(moment: dt.datetime, zone: dt.tzinfo) -> str:
    """The ISO week of ``moment`` in ``zone``, as "2025-W07" (a naive moment is UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    year, week, _ = moment.astimezone(zone).isocalendar()
    return f"{year:04d}-W{week:02d}"


def check_week(week: str) -> str:
    """``week`` if it names an ISO week ("2025-W07"), else :class:`ValueError` saying why in
    the physio's terms. A year has weeks W01 to W52, or W53 in a long year (2026: its January
    1st is a Thursday); "2026-W00" and "2026-W54" name no week, and "2025-W53" none either.
    Before, the wire's pattern took any two digits: a device's progress message for "W00"
    was stored as a week's prescription, and "2026-W60" sorted after every week of 2026, so
    2027's first weeks read their sessions prescribed from it, not from December's."""
    parts = re.fullmatch(r"([0-9]{4})-W([0-9]{2})", week)
    if parts is None:
        raise ValueError(f"{week[:40]!r} is not an ISO week: write it as YYYY-Www, e.g. 2026-W49")
    year, number = parts.groups()
    last = dt.date(int(year), 12, 28).isocalendar()[1] if year != "0000" else 0
    if not 1 <= int(number) <= last:
        weeks = f"weeks W01 to W{last}" if last else "no weeks (there is no year 0)"
        raise ValueError(f"{week!r} is not an ISO week: {year} has {weeks}")
    return week


def week_start(week: str) -> dt.date:
    """The Monday of ``week`` ("2025-W07"); :class:`ValueError` naming it when it is no ISO week
    (:func:`check_week`)."""
    year, _, number = check_week(week).partition("-W")
    return dt.date.fromisocalendar(int(year), int(number), 1)


def week_label(week: str) -> str:
    """ "2025-W07" -> "10 Feb": a week as people name it, by its Monday (an ISO week number is
    read by no one), the same on every page, chart and report."""
    monday = week_start(week)
    return f"{monday.day} {monday:%b}"


def at_goal(session: SessionProgress) -> bool:
    """True when the session's longest straight backward stretch reached the goal's 10 minutes."""
    return session.longest_backward_s >= GOAL_BACKWARD_MIN * 60 - _SLACK_S


def done(session: SessionProgress) -> bool:
    """True when the session ended with its plan walked through (to within the plan clock's
    second): one the walker stopped early, or a trip ended, is not done; one still running
    is not done yet."""
    return (
        session.status != "running"
        and session.planned_s > 0
        and session.done_s >= session.planned_s - _SLACK_S
    )


def day_of(session: SessionProgress, zone: dt.tzinfo) -> dt.date:
    """The calendar day ``session`` started on, in ``zone`` (the walker's)."""
    return started_utc(session).astimezone(zone).date()


def per_day(prescribed: int) -> int:
    """How many done sessions of one day count toward ``prescribed`` a week: one, unless the
    prescription asks for more than a day each (``sessions_per_week`` goes up to 14, twice a
    day), when it is as many as seven days need (8-14: two)."""
    return max(1, -(-prescribed // 7))


def days_done(
    sessions: Iterable[SessionProgress],
    zone: dt.tzinfo,
    prescribed: int = PRESCRIBED_SESSIONS_PER_WEEK,
) -> int:
    """Sessions :func:`done`, counting at most :func:`per_day` of them a day (in ``zone``):
    adherence's count.

    A day counts once while the prescription asks for a session a day or fewer. A walk
    interrupted — a trip the walker did not re-arm from within ``session.max_pause_s``, a
    monitor restart — and walked again from the start the same day is two records but one
    walk, and a physio counts one walk once; nor do two walks on one day stand for two of the
    prescription's days ("three times a week"). A prescription of more than seven a week
    (twice a day) counts two a day: one a day could never complete it."""
    counts = Counter(day_of(s, zone) for s in sessions if done(s))
    cap = per_day(prescribed)
    return sum(min(cap, n) for n in counts.values())


def days_at_goal(sessions: Iterable[SessionProgress], zone: dt.tzinfo) -> int:
    """Days (in ``zone``) with a session :func:`at_goal`, a day counting once (as
    :func:`days_done`): an interrupted walk whose 10-minute block was walked before the trip,
    restarted and walked again, is one session at goal toward the week at goal, not two."""
    return len({day_of(s, zone) for s in sessions if at_goal(s)})


@dataclass(frozen=True, slots=True)
class WeekProgress:
    week: str
    """ISO week, "2025-W07"."""
    sessions: int
    at_goal: int
    """Days with a session whose longest straight backward stretch reached the goal's 10
    minutes (:func:`days_at_goal`: a day counts once)."""
    backward_s: float
    longest_backward_s: float
    """Progression: the week's longest continuous backward stretch."""
    done: int = 0
    """Adherence: days with a session that walked its plan through (:func:`days_done`: a day
    counts once)."""
    prescribed: int = PRESCRIBED_SESSIONS_PER_WEEK
    """Adherence: sessions the prescription asks for this week."""

    @property
    def goal_met(self) -> bool:
        """A *week at goal*: three sessions each with 10 straight minutes backward."""
        return self.at_goal >= GOAL_SESSIONS_PER_WEEK

    @property
    def adherence_met(self) -> bool:
        return self.done >= self.prescribed

    @property
    def progression(self) -> float:
        """The longest backward stretch as a share of the goal's 10 minutes (1.0 = reached,
        never more)."""
        return min(1.0, (self.longest_backward_s + _SLACK_S) / (GOAL_BACKWARD_MIN * 60))


def prescribed_weeks(changes: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Week -> sessions prescribed, from a progression's changes (each: the week it happened
    in, the sessions a week prescribed from then on; oldest first), for :func:`prescribed_in`.

    A week in which the count changed counts against the least in force during it, and the
    week after it against the count the change left: a stage advanced because the week's
    sessions were done, or raised mid-week, never turns that week into a missed one after
    the fact, and a step back counts at once.
    """
    known: dict[str, int] = {}
    in_force = PRESCRIBED_SESSIONS_PER_WEEK
    for week, count in changes:
        known[week] = min(known.get(week, in_force), count)
        in_force = count
        year, number, _ = (week_start(week) + dt.timedelta(weeks=1)).isocalendar()
        known[f"{year:04d}-W{number:02d}"] = in_force
    return known


def prescribed_in(week: str, known: Mapping[str, int]) -> int:
    """The sessions prescribed in ``week`` ("2026-W49"): ``known``'s count for that week
    (:func:`prescribed_weeks`), else the latest known week's before it (a stage stays in
    force until it changes), else ``PRESCRIBED_SESSIONS_PER_WEEK``."""
    if week in known:
        return known[week]
    earlier = [w for w in known if w < week]  # "YYYY-Www" sorts as the weeks do
    return known[max(earlier)] if earlier else PRESCRIBED_SESSIONS_PER_WEEK


def weekly_progress(
    sessions: Iterable[SessionProgress],
    zone: dt.tzinfo,
    prescribed: Mapping[str, int] | None = None,
) -> list[WeekProgress]:
    """Sessions grouped by ISO week in ``zone``, oldest week first (weeks without sessions are
    absent; ``sessions`` counts records, ``done`` and ``at_goal`` days: :func:`days_done`);
    each week's adherence against :func:`prescribed_in` of ``prescribed`` (weeks to
    the sessions the progression prescribed in them; none: 3 every week)."""
    weeks: dict[str, list[SessionProgress]] = {}
    for s in sessions:
        weeks.setdefault(week_of(started_utc(s), zone), []).append(s)
    return [
        WeekProgress(
            week=week,
            sessions=len(rows),
            at_goal=days_at_goal(rows, zone),
            backward_s=sum(float(s.backward_s) for s in rows),
            longest_backward_s=max(float(s.longest_backward_s) for s in rows),
            done=days_done(rows, zone, prescribed_in(week, prescribed or {})),
            prescribed=prescribed_in(week, prescribed or {}),
        )
        for week, rows in sorted(weeks.items())
    ]


MAX_WEEKS = 520
"""The most weeks :func:`every_week` fills in: ten years, longer than any course of therapy
(the caregiver keeps a walker's newest 10,000 sessions: years at twice a day)."""


class WeekSpanTooLong(ValueError):
    """The weeks to list span more than :data:`MAX_WEEKS`: a session dated by a clock that was
    wrong (the calendar's first years, or far ahead), never a course of therapy."""


def every_week(
    weeks: Iterable[WeekProgress], current: str, prescribed: Mapping[str, int] | None = None
) -> list[WeekProgress]:
    """``weeks`` (:func:`weekly_progress`) with the weeks between them filled in, oldest first,
    from the first to ``current`` ("2026-W49", the week under way; or the last, if later): a
    week without a session is there with 0 done of its prescribed (:func:`prescribed_in`), so a
    missed week reads as one, never as a gap the eye skips. No weeks: ``current`` alone.

    :class:`WeekSpanTooLong`, before any week is made, when that is more than
    :data:`MAX_WEEKS`: a session stamped "0002-01-07" (a wall time is read from year 2) made
    a report of 105,655 weekly rows before (5.5 MB of CSV, 1.7 s of the service's time for
    every download, 1.3 s for every look at the progress page)."""
    known = {w.week: w for w in weeks}
    day = week_start(min([*known, current]))
    last = week_start(max([*known, current]))
    span = (last - day).days // 7 + 1
    if span > MAX_WEEKS:
        # the end away from the week under way is the one a wrong clock dated
        far = min(known) if week_start(current) - day > last - week_start(current) else max(known)
        raise WeekSpanTooLong(
            f"the weeks from {min([*known, current])} to {max([*known, current])} are {span} "
            f"weeks, more than the {MAX_WEEKS} (ten years) a week-by-week table lists: a "
            f"session dated in {far} was recorded with the treadmill's clock wrong"
        )
    out: list[WeekProgress] = []
    while day <= last:
        year, number, _ = day.isocalendar()
        key = f"{year:04d}-W{number:02d}"
        empty = WeekProgress(key, 0, 0, 0.0, 0.0, prescribed=prescribed_in(key, prescribed or {}))
        out.append(known.get(key, empty))
        day += dt.timedelta(weeks=1)
    return out


@dataclass(frozen=True, slots=True)
class Milestone:
    """Weeks at goal toward the four after which a benefit is expected."""

    weeks_at_goal: int
    needed: int = MILESTONE_WEEKS

    @property
    def reached(self) -> bool:
        return self.weeks_at_goal >= self.needed


def milestone(weeks: Iterable[WeekProgress]) -> Milestone:
    """The weeks at goal so far (any order: a missed week delays the milestone, it does not
    reset it)."""
    return Milestone(sum(1 for w in weeks if w.goal_met))


def adherence_words(done: int, prescribed: int) -> str:
    """Adherence as every place that shows the week says it: ``3 of 3 prescribed sessions
    done``."""
    return f"{done} of {prescribed} prescribed sessions done"


def stretch_words(
    longest_s: float, plan_stretch_s: float | None = None, sessions: int | None = None
) -> str:
    """Progression as every place that shows the week says it: ``longest backward stretch
    4.0 of 10 min``. ``plan_stretch_s``: the longest stretch the week's plans prescribe
    (:func:`core.protocol.plan.backward_stretch_s`; None: not known). A plan that cannot hold
    the goal's 10 minutes (the 2/2 plan: 2) is said so, not measured against them: ``longest
    backward stretch 2.0 min (the 10-minute goal comes with later plans)`` — "2.0 of 10 min"
    read as failing to a walker doing exactly what was prescribed. ``sessions``: the week's
    (None: not said); a week with none says so (:func:`stretch_value`)."""
    return f"longest backward stretch {stretch_value(longest_s, plan_stretch_s, sessions)}"


def stretch_value(
    longest_s: float, plan_stretch_s: float | None = None, sessions: int | None = None
) -> str:
    """:func:`stretch_words` without its subject, for a page that labels it ("Longest
    backward stretch: 2.0 min (the 10-minute goal comes with later plans)").

    A week with no session (``sessions`` 0) has no stretch to measure: "none (no session
    walked)", with what the walker's plan holds when it is short of the goal (``plan_stretch_s``:
    their next session's plan). It read "0.0 of 10 min", a figure that looked measured,
    against a goal a walker on a 6-minute plan could not yet reach."""
    if sessions == 0:
        if short_of_goal(0.0, plan_stretch_s) and plan_stretch_s is not None:
            return (
                f"none (no session walked; the plan's longest is {plan_stretch_s / 60:.1f} min: "
                f"the {GOAL_BACKWARD_MIN:g}-minute goal comes with later plans)"
            )
        return "none (no session walked)"
    if short_of_goal(longest_s, plan_stretch_s):
        return (
            f"{longest_s / 60:.1f} min (the {GOAL_BACKWARD_MIN:g}-minute goal comes with later "
            "plans)"
        )
    return f"{longest_s / 60:.1f} of {GOAL_BACKWARD_MIN:g} min"


def short_of_goal(longest_s: float, plan_stretch_s: float | None) -> bool:
    """The week's plans cannot hold the goal's stretch (what was walked says so too: a plan
    whose intervals are not what was walked is read by what was walked)."""
    if plan_stretch_s is None:
        return False
    return max(longest_s, plan_stretch_s) < GOAL_BACKWARD_MIN * 60 - _SLACK_S


def week_goal_words(week: WeekProgress, plan_stretch_s: float | None = None) -> str:
    """The week against the goal in the physio's two terms, in the words the progress page,
    the report, the session summary and ``retroguard sessions`` all use: ``3 of 3 prescribed
    sessions done; longest backward stretch 2.0 min (the 10-minute goal comes with later
    plans)``. On a plan that can hold the goal, the week's sessions at goal follow the
    stretch (a week at goal has three): ``...; longest backward stretch 10.0 of 10 min (1 of
    3 sessions at goal)``."""
    adherence, stretch, at_goal_said = week_goal_parts(week, plan_stretch_s)
    return f"{adherence}; {stretch}{at_goal_said}"


def week_goal_parts(
    week: WeekProgress, plan_stretch_s: float | None = None
) -> tuple[str, str, str]:
    """:func:`week_goal_words` in its parts, for a page that marks each: the adherence, the
    stretch, and the sessions at goal (" (1 of 3 sessions at goal)"; "" on plans that cannot
    hold the goal, or in a week with no session)."""
    at_goal_said = (
        ""
        if short_of_goal(week.longest_backward_s, plan_stretch_s) or not week.sessions
        else f" ({week.at_goal} of {GOAL_SESSIONS_PER_WEEK} sessions at goal)"
    )
    return (
        adherence_words(week.done, week.prescribed),
        stretch_words(week.longest_backward_s, plan_stretch_s, week.sessions),
        at_goal_said,
    )


def weeks_at_goal_words(reached: Milestone) -> str:
    """``Weeks at goal: 1 of 4.``, or ``Weeks at goal: 4, the 4-week milestone reached.``"""
    if reached.reached:
        return (
            f"Weeks at goal: {reached.weeks_at_goal}, the {reached.needed}-week milestone reached."
        )
    return f"Weeks at goal: {reached.weeks_at_goal} of {reached.needed}."


def describe_week(
    week: WeekProgress, reached: Milestone, plan_stretch_s: float | None = None
) -> str:
    """The week in the physio's two terms and the milestone, as one sentence (the device's
    session summary, ``retroguard sessions``): :func:`week_goal_words`, then
    :func:`weeks_at_goal_words`. ``plan_stretch_s``: the longest backward stretch the
    week's plans prescribe (None: not known, the stretch is said against 10 minutes)."""
    return f"Week {week.week}: {week_goal_words(week, plan_stretch_s)}. " + weeks_at_goal_words(
        reached
    )
