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


def figures_line(record: SessionRecord) -> str:
    """The session's own figures: how it ended, plan and backward minutes, steps, trips."""
    return (
        f"Session {record.status}: {record.done_s / 60:.0f} plan minutes, "
        f"{record.backward_s / 60:.0f} backward; measured {record.steps} steps in "
        f"{record.walking_s:.0f} s of walking ({record.cadence_spm:.0f} steps/min), "
        f"{record.trips} trips ({record.stumbles} stumbles, {record.fall_count} falls)."
    )


def week_line(
    record: SessionRecord,
    stored: Iterable[SessionRecord],
    prescribed: Mapping[str, int],
    zone: dt.tzinfo,
) -> str:
    """The week ``record`` started in, for its walker on its treadmill
    (:func:`core.progress.describe_week`): sessions done of those prescribed, the longest
    backward stretch against 10 minutes, the weeks at goal toward the milestone.

    ``stored``: the sessions in the database (another walker's or treadmill's are left out;
    ``record`` among them or not, it counts once, as given). ``prescribed``: week -> the
    sessions the walker's progression prescribed (empty: the default)."""
    key = (record.device_id, record.walker.id)
    mine = [s for s in stored if s.id != record.id and (s.device_id, s.walker.id) == key]
    weeks = weekly_progress([*mine, record], zone, prescribed)
    this_week = next(w for w in weeks if w.week == week_of(started_utc(record), zone))
    return describe_week(this_week, milestone(weeks))
