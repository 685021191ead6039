"""A session's end in words: its figures, then its walker's week in the physio's terms.

Written once for every place a session's end is told: the courier's journal line when a
session ends on the device however it ended (the plan's end, the walker's long press, a
stop from the CLI; ``journalctl -u retroguard`` at the treadmill), ``retroguard session
stop`` and the session demo (:func:`tools.sessions.print_session_end`). Pure: the caller
reads the stored sessions and the walker's prescribed counts (the courier on its own thread,
never the loop's).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from core.progress import describe_week, milestone, started_utc, week_of, weekly_progress
from core.protocol.messages import SessionRecord
from core.protocol.plan import weeks_stretch_s
from firmware.storage.sessions import INTERRUPTED_NOTE


def figures_line(record: SessionRecord) -> str:
    """The session's own figures: how it ended (and that its end was not recorded, when a
    restart closed it), plan and backward minutes, steps, trips."""
    how: str = record.status
    if record.interrupted:
        how += f" ({INTERRUPTED_NOTE}; closed at the next start)"
    return (
        f"Session {how}: {minutes(record.done_s)} plan minutes, "
        f"{minutes(record.backward_s)} backward; measured {record.steps} steps in "
        f"{record.walking_s:.0f} s of walking ({record.cadence_spm:.0f} steps/min), "
        f"{trips_words(record)}."
    )


def minutes(seconds: float) -> str:
    """Minutes to a tenth, as ``retroguard sessions`` and the dashboard's session table give
    them, without a trailing ".0": "30", "7.5". Whole minutes said Bob's 7.5-minute plan with
    4.5 backward as "8 plan minutes, 4 backward" (Python rounds halves to even), where the
    plan, the CLI's table and the dashboard said 7.5 and 4.5."""
    return f"{round(seconds / 60, 1):g}"


def trips_words(record: SessionRecord) -> str:
    """ "2 trips (1 stumble, 1 fall; 1 with no recovery)": counted in words a physio reads
    aloud (one stumble, not "1 stumbles"), and a fall the walker did not get up from said,
    as the dashboard and the reports say it; the no-recovery part only when there was one."""
    falls = record.fall_count
    text = (
        f"{count(record.trips, 'trip')} ({count(record.stumbles, 'stumble')}, "
        f"{count(falls, 'fall')}"
    )
    if record.no_recovery:
        text += f"; {record.no_recovery} with no recovery"
    return text + ")"


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless one: "1 fall", "0 falls", "2 trips"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def week_line(
    record: SessionRecord,
    stored: Iterable[SessionRecord],
    prescribed: Mapping[str, int],
    zone: dt.tzinfo,
) -> str:
    """The week ``record`` started in, for its walker on its treadmill
    (:func:`core.progress.describe_week`): sessions done of those prescribed, the longest
    backward stretch against 10 minutes (or, on plans that cannot hold 10, said as coming with
    later plans), the weeks at goal toward the milestone.

    ``stored``: the sessions in the database (another walker's or treadmill's are left out;
    ``record`` among them or not, it counts once, as given). ``prescribed``: week -> the
    sessions the walker's progression prescribed (empty: the default)."""
    key = (record.device_id, record.walker.id)
    mine = [s for s in stored if s.id != record.id and (s.device_id, s.walker.id) == key]
    weeks = weekly_progress([*mine, record], zone, prescribed)
    week = week_of(started_utc(record), zone)
    this_week = next(w for w in weeks if w.week == week)
    # what the week's plans can hold: a 2/2 walker's 2 minutes are not "2.0 of 10 min"
    walks = [
        [(i.direction, i.planned_s, i.speed) for i in s.intervals]
        for s in [*mine, record]
        if week_of(started_utc(s), zone) == week
    ]
    return describe_week(this_week, milestone(weeks), weeks_stretch_s(walks))
