"""The progress page's recent weeks and earlier months (caregiver.earlier_weeks), as pure
functions over stored rows: which weeks are listed in full, which month a week counts in, and
a month in the week's words; and the page that says them, on a running service."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from caregiver.earlier_weeks import RECENT_WEEKS, by_month, shorten
from caregiver.progress import parse_summary
from caregiver.storage import WalkSession
from core.progress import (
    WeekProgress,
    every_week,
    week_goal_parts,
    week_of,
    weekly_progress,
)
from firmware.session.record import session_payload
from tests.caregiver_support import Http, make_config, received, running_service, session_record
from tools.broker import Mosquitto

UTC = dt.UTC
NOW = dt.datetime(2026, 12, 2, 12, tzinfo=UTC)
"""A Wednesday: the week under way is 2026-W49 (Monday 30 November)."""


def _row(started: dt.datetime, longest_min: float = 10) -> WalkSession:
    record = session_record("tm-1", started, backward_min=12, longest_min=longest_min)
    row, problem = parse_summary(received(record), "tm-1")
    assert row is not None, problem
    return row


def _weeks(rows: list[WalkSession]) -> list[WeekProgress]:
    """The page's weeks, newest first, missed ones filled in."""
    return list(reversed(every_week(weekly_progress(rows, UTC), week_of(NOW, UTC))))


def test_the_last_12_weeks_are_listed_and_their_sessions_the_rest_summed_by_month() -> None:
    monday = dt.datetime(2026, 11, 30, 9, tzinfo=UTC)
    # Monday and Wednesday of this week and the 19 before it, newest first (as the store reads)
    rows = [_row(monday - dt.timedelta(weeks=w) + dt.timedelta(days=d)) for w in range(20)
            for d in (2, 0)]  # fmt: skip
    short = shorten(_weeks(rows), rows, {}, week_of(NOW, UTC), UTC)
    assert [w.week for w in short.weeks][:2] == ["2026-W49", "2026-W48"]
    assert len(short.weeks) == RECENT_WEEKS
    assert short.since == dt.date(2026, 9, 14)  # the Monday 11 weeks before this one
    assert all(r.started_wall >= "2026-09-14" for r in short.sessions)
    assert len(short.sessions) + short.earlier_sessions == len(rows)
    assert short.earlier_sessions == 2 * (20 - RECENT_WEEKS)
    # the 8 earlier weeks: 7 Sep back to 20 Jul, each in its Monday's month
    assert [(m.first_day, len(m.weeks)) for m in short.months] == [
        (dt.date(2026, 9, 1), 1),
        (dt.date(2026, 8, 1), 5),
        (dt.date(2026, 7, 1), 2),
    ]


def test_a_month_says_what_was_done_of_what_was_prescribed_its_longest_stretch_and_goals() -> None:
    monday = dt.datetime(2026, 6, 1, 9, tzinfo=UTC)  # June's Mondays: 1, 8, 15, 22, 29
    rows = [_row(monday + dt.timedelta(weeks=w, days=d)) for w in (0, 1, 3, 4) for d in (0, 2, 4)]
    rows[0] = _row(monday, longest_min=4)  # the first week one short of goal
    weeks = every_week(weekly_progress(rows, UTC), "2026-W27")
    [june] = by_month(weeks, rows, {}, UTC)
    assert june.first_day == dt.date(2026, 6, 1)
    assert [w.week for w in june.weeks] == [f"2026-W{n}" for n in (27, 26, 25, 24, 23)]
    assert june.words() == (
        "12 of 15 prescribed sessions done",
        "longest backward stretch 10.0 of 10 min",
        "3 weeks at goal",
    )
    assert june.sessions == 12 and june.weeks_at_goal == 3


def test_a_week_from_one_month_into_the_next_counts_in_its_monday_s_month() -> None:
    rows = [_row(dt.datetime(2026, 8, 31, 9, tzinfo=UTC) + dt.timedelta(days=d)) for d in (0, 2, 4)]
    [month] = by_month(weekly_progress(rows, UTC), rows, {}, UTC)
    assert month.first_day == dt.date(2026, 8, 1)
    assert month.words()[2] == "1 week at goal"


def test_a_month_with_no_session_says_none_walked_as_each_of_its_weeks_does() -> None:
    # walked in June and in August, none in July: July's four weeks are missed weeks
    rows = [
        _row(dt.datetime(2026, 8, 3, 9, tzinfo=UTC)),
        _row(dt.datetime(2026, 6, 1, 9, tzinfo=UTC)),
    ]
    weeks = every_week(weekly_progress(rows, UTC), "2026-W32")
    july = next(m for m in by_month(weeks, rows, {}, UTC) if m.first_day.month == 7)
    assert july.sessions == 0
    assert july.words()[1] == "longest backward stretch none (no session walked)"
    for week in july.weeks:
        assert week_goal_parts(week)[1] == july.words()[1]


def test_a_walker_with_no_session_in_the_last_12_weeks_is_not_said_to_have_none(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A walker back after a break longer than the listed weeks (a hospital stay): their page
    lists no session of the last 12 weeks, and sums up the earlier ones by month. It said
    "no sessions yet" at its top and "No guided session recorded yet" under the sessions'
    heading, above a year of months: the check was of the sessions listed, not of the
    walker's."""
    config = make_config(mosquitto, tmp_path)
    with running_service(config, background=False) as service:
        now = dt.datetime.fromtimestamp(service.clock(), UTC)
        for days in (150, 152, 154):  # some 22 weeks ago
            record = session_record(
                "tm-1", now - dt.timedelta(days=days), backward_min=12, longest_min=10
            )
            row, problem = parse_summary(received(record), "tm-1")
            assert row is not None, problem
            service.store.record_walk_session(row, session_payload(record), service.clock())
        web = Http(service.port)
        assert web.login() == 303
        status, _, page = web.request("GET", "/devices/tm-1/progress")
        assert status == 200
        assert 'id="months"' in page and 'id="earlier-sessions"' in page  # summed up by month
        assert "3 earlier sessions" in page
        assert "no sessions yet" not in page and 'id="walker-no-sessions"' not in page
        assert "No guided session recorded yet" not in page
        assert f"No session in the last {RECENT_WEEKS} weeks." in page
        status, _, page = web.request("GET", "/devices/tm-1/progress?weeks=all")
        assert status == 200 and page.count("<tr data-session=") == 3
