"""The physio's goals (core.progress): adherence (sessions done against prescribed),
progression (the longest backward stretch against 10 minutes) and weeks at goal toward the
four-week milestone, as ``retroguard sessions``, the device's session summary and the
retained ``progress`` message (Home Assistant) show them."""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import msgspec
import pytest

from core.plan_presets import PRESETS
from core.progress import (
    adherence_words,
    describe_week,
    done,
    milestone,
    stretch_words,
    week_goal_words,
    week_of,
    week_start,
    weekly_progress,
)
from core.protocol.messages import ProgressMessage, SessionRecord
from core.protocol.payloads import decode_as
from core.protocol.plan import backward_stretch_s, plan_walk, weeks_stretch_s
from core.protocol.topics import Topics
from firmware.mqtt.status import RetainedStatus
from firmware.session.plan import alternate_2_2
from firmware.storage.database import connect
from firmware.storage.sessions import StoredSession, save_session
from tests.caregiver_support import saturday_noon, session_record, week_monday
from tests.mqtt_helpers import schema
from tools.sessions import print_sessions

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # ISO week 2026-W10
DEVICE = "tm-1"
PLAN_2_2 = alternate_2_2()


def two_two(started: dt.datetime, **changes: object) -> SessionRecord:
    """The 2/2 plan walked through: 30 min, 14 of them backward in 2-minute stretches."""
    record = session_record(
        DEVICE,
        started,
        backward_min=PLAN_2_2.backward_s / 60,
        longest_min=2,
        total_min=PLAN_2_2.duration_s / 60,
        plan=PLAN_2_2.name,
    )
    return msgspec.structs.replace(record, **changes)


def ten_straight(started: dt.datetime) -> SessionRecord:
    return session_record(DEVICE, started, backward_min=12, longest_min=10)


def test_the_2_2_plan_followed_perfectly_counts_toward_adherence() -> None:
    week = [two_two(MONDAY + dt.timedelta(days=d)) for d in (0, 2, 4)]
    [w] = weekly_progress(week, dt.UTC)
    assert (w.sessions, w.done, w.prescribed, w.adherence_met) == (3, 3, 3, True)
    # progression is its own axis: two straight minutes of the ten, no session at goal
    assert (w.at_goal, w.goal_met) == (0, False)
    assert w.longest_backward_s == 120 and round(w.progression, 2) == 0.2
    text = describe_week(w, milestone([w]))
    assert "3 of 3 prescribed sessions done" in text
    assert "longest backward stretch 2.0 of 10 min" in text
    assert "Weeks at goal: 0 of 4." in text


def test_a_plan_that_cannot_hold_10_minutes_is_said_so_not_read_as_failing() -> None:
    """The 2/2 plan's longest stretch is 2 minutes: "2.0 of 10 min" read as failing to a
    walker doing exactly what was prescribed. Every place that shows the week (the session
    summary, retroguard sessions, the progress page, the report) says it in these words."""
    assert backward_stretch_s(PLAN_2_2) == 120.0
    assert backward_stretch_s(PRESETS["progression-week-9"]) == 600.0
    # consecutive backward intervals are one stretch, as the runner counts what was walked
    walk = [("backward", 60.0, ""), ("backward", 60.0, ""), ("forward", 60.0, ""),
            ("backward", 90.0, "")]  # fmt: skip
    assert backward_stretch_s(walk) == 120.0
    week = [two_two(MONDAY + dt.timedelta(days=d)) for d in (0, 2, 4)]
    [w] = weekly_progress(week, dt.UTC)
    two_two_s = weeks_stretch_s([plan_walk(PLAN_2_2)] * 3)
    assert describe_week(w, milestone([w]), two_two_s) == (
        "Week 2026-W10: 3 of 3 prescribed sessions done; longest backward stretch 2.0 min (the "
        "10-minute goal comes with later plans). Weeks at goal: 0 of 4."
    )
    # a week whose plans can hold it: against the 10 minutes, with its sessions at goal
    ten_s = weeks_stretch_s([plan_walk(PLAN_2_2), plan_walk(PRESETS["progression-week-9"])])
    assert ten_s == 600.0
    assert week_goal_words(w, ten_s) == (
        "3 of 3 prescribed sessions done; longest backward stretch 2.0 of 10 min "
        "(0 of 3 sessions at goal)"
    )
    # not known (no session, or one without its intervals): against the 10 minutes
    assert weeks_stretch_s([]) is None and weeks_stretch_s([plan_walk(PLAN_2_2), ()]) is None
    assert stretch_words(120.0, None) == "longest backward stretch 2.0 of 10 min"
    assert adherence_words(0, 2) == "0 of 2 prescribed sessions done"


def test_a_session_stopped_early_or_still_running_is_not_done() -> None:
    stopped = two_two(MONDAY, status="stopped", done_s=20 * 60.0)
    running = two_two(MONDAY, status="running", ended_wall=None)
    last_second = two_two(MONDAY, done_s=PLAN_2_2.duration_s - 0.5)  # the plan clock's slack
    assert [done(s) for s in (stopped, running, last_second)] == [False, False, True]
    # a walker who stopped a 2/2 session once still did the other two
    week = [two_two(MONDAY), stopped, two_two(MONDAY + dt.timedelta(days=2))]
    [w] = weekly_progress(week, dt.UTC)
    assert (w.sessions, w.done, w.adherence_met) == (3, 2, False)


def test_weeks_at_goal_count_toward_the_four_week_milestone_and_a_gap_only_delays_it() -> None:
    sessions = []
    for week in (0, 1, 3, 4, 5):  # week 2 missed; week 5 has only two sessions at goal
        monday = MONDAY + dt.timedelta(weeks=week)
        days = (0, 2) if week == 5 else (0, 2, 4)
        sessions += [ten_straight(monday + dt.timedelta(days=d)) for d in days]
    weeks = weekly_progress(sessions, dt.UTC)
    assert [(w.week, w.at_goal, w.goal_met) for w in weeks] == [
        ("2026-W10", 3, True),
        ("2026-W11", 3, True),
        ("2026-W13", 3, True),
        ("2026-W14", 3, True),
        ("2026-W15", 2, False),
    ]
    assert (milestone(weeks[:3]).weeks_at_goal, milestone(weeks[:3]).reached) == (3, False)
    reached = milestone(weeks)
    assert (reached.weeks_at_goal, reached.needed, reached.reached) == (4, 4, True)
    assert "Weeks at goal: 4, the 4-week milestone reached." in describe_week(weeks[-1], reached)


def test_week_boundaries_follow_the_configured_zone() -> None:
    # Monday 00:30 in Berlin is Sunday 23:30 UTC: in Berlin the 2/2 session opens a new week
    monday_night = dt.datetime(2026, 3, 9, 0, 30, tzinfo=BERLIN)
    sunday = two_two(monday_night - dt.timedelta(days=1))
    late = two_two(monday_night)
    berlin = weekly_progress([sunday, late], BERLIN)
    utc = weekly_progress([sunday, late], dt.UTC)
    assert [(w.week, w.done) for w in berlin] == [("2026-W10", 1), ("2026-W11", 1)]
    assert [(w.week, w.done) for w in utc] == [("2026-W10", 2)]


def test_the_progress_message_carries_adherence_and_weeks_at_goal(tmp_path: Path) -> None:
    """The retained ``progress`` (Home Assistant's sensors): every session is read for the
    weeks at goal; this week's adherence counts the 2/2 plan; weeks counted in Berlin."""
    db = tmp_path / "device.db"
    conn = connect(db)
    for week in range(4):  # four weeks at goal before this one
        monday = MONDAY - dt.timedelta(weeks=4 - week)
        for d in (0, 2, 4):
            save_session(conn, ten_straight(monday + dt.timedelta(days=d)))
    # this week in Berlin: the 2/2 plan twice, one of them late on Monday night local time
    # (Sunday in UTC), and one stopped early
    berlin_monday = dt.datetime(2026, 3, 2, 0, 20, tzinfo=BERLIN)
    save_session(conn, two_two(berlin_monday))
    save_session(conn, two_two(berlin_monday + dt.timedelta(days=1)))
    save_session(
        conn, two_two(berlin_monday + dt.timedelta(days=2), status="stopped", done_s=600.0)
    )
    conn.close()
    now = MONDAY + dt.timedelta(days=3)
    status = RetainedStatus(db, Topics("retroguard", DEVICE), now=lambda: now, zone=BERLIN)
    retained = status.progress()
    assert retained is not None
    jsonschema.validate(json.loads(retained.payload), schema("progress"))
    message = decode_as(ProgressMessage, retained.payload.encode())
    assert (message.week, message.week_sessions, message.week_done) == ("2026-W10", 3, 2)
    assert (message.week_prescribed, message.week_at_goal) == (3, 0)
    assert message.week_longest_backward_s == 120.0
    assert (message.weeks_at_goal, message.milestone_weeks) == (4, 4)

    # three sessions of 10 straight minutes later this week, on Monday, Tuesday and Wednesday:
    # a fifth week at goal, counted again because the newest session changed; the days that
    # had a 2/2 session already count once toward adherence (a day counts once)
    conn = connect(db)
    for day in (0, 1, 2):
        save_session(conn, ten_straight(MONDAY + dt.timedelta(days=day, hours=1)))
    conn.close()
    again = status.progress()
    status.close()
    assert again is not None
    later = decode_as(ProgressMessage, again.payload.encode())
    assert (later.week_at_goal, later.week_done, later.weeks_at_goal) == (3, 3, 5)


def test_retroguard_sessions_prints_adherence_progression_and_weeks_at_goal() -> None:
    sessions = [
        StoredSession(r)
        for r in (
            *(ten_straight(MONDAY + dt.timedelta(days=d)) for d in (0, 2, 4)),
            *(two_two(MONDAY + dt.timedelta(weeks=1, days=d)) for d in (0, 2)),
        )
    ]
    out = io.StringIO()
    print_sessions(sessions, out, dt.UTC, now=MONDAY + dt.timedelta(weeks=1, days=5))
    lines = out.getvalue().splitlines()
    assert "Weeks at goal: 1 of 4." in out.getvalue()
    assert lines[-2].split() == ["2026-W10", "3", "3", "36.0", "10.0", "3/3", "yes"]
    assert lines[-1].split() == ["2026-W11", "2", "0", "28.0", "2.0", "2/3", "no"]


def test_retroguard_sessions_shows_a_missed_week_as_none_done_not_as_no_row() -> None:
    """A walker who walked in 2026-W10, missed W11 and walked in W12: the weekly table a physio
    reads at the treadmill had rows for W10 and W12 only, so the missed week, 0 of 3 done, was
    not there to see (the dashboard and the reports show it as 0). Every week from the first
    session's to the week under way is a row."""
    sessions = [
        StoredSession(r)
        for r in (
            *(ten_straight(MONDAY + dt.timedelta(days=d)) for d in (0, 2, 4)),
            two_two(MONDAY + dt.timedelta(weeks=2)),
        )
    ]
    out = io.StringIO()
    now = MONDAY + dt.timedelta(weeks=3, days=1)  # Tuesday of 2026-W13
    print_sessions(sessions, out, dt.UTC, now=now)
    rows = [line.split() for line in out.getvalue().splitlines() if line.startswith("2026-W")]
    assert rows == [
        ["2026-W10", "3", "3", "36.0", "10.0", "3/3", "yes"],
        ["2026-W11", "0", "0", "0.0", "0.0", "0/3", "no"],
        ["2026-W12", "1", "0", "14.0", "2.0", "1/3", "no"],
        ["2026-W13", "0", "0", "0.0", "0.0", "0/3", "no"],
    ]


def test_the_sessions_command_lists_the_missed_week_up_to_this_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same from ``retroguard sessions`` on a device database: sessions two weeks ago and
    this week, none last week; last week is a row, 0 of 3 done."""
    from launcher.cli import main
    from tools import sessions

    monkeypatch.setenv("TZ", "UTC")
    # the week the command lists up to, read from one clock it is given too (its ``now``): a
    # second reading seconds apart listed the next week across Sunday's midnight
    clock = saturday_noon()
    monkeypatch.setattr(
        sessions,
        "print_sessions",
        functools.partial(sessions.print_sessions, now=dt.datetime.fromtimestamp(clock(), dt.UTC)),
    )
    monday = week_monday(clock)
    db = tmp_path / "device.db"
    conn = connect(db)
    with conn:
        save_session(conn, ten_straight(monday - dt.timedelta(weeks=2, hours=-9)))
        save_session(conn, ten_straight(monday + dt.timedelta(minutes=1)))
    conn.close()
    assert main(["sessions", "--db", str(db)]) == 0
    weeks = [w for w in (line.split() for line in capsys.readouterr().out.splitlines()) if w]
    rows = [w for w in weeks if w[0][:4].isdigit() and "-W" in w[0]]
    missed = week_of(monday - dt.timedelta(weeks=1), dt.UTC)
    assert [r[0] for r in rows] == [
        week_of(monday - dt.timedelta(weeks=2), dt.UTC),
        missed,
        week_of(monday, dt.UTC),
    ]
    assert rows[1][1:] == ["0", "0", "0.0", "0.0", "0/3", "no"]


@pytest.mark.parametrize(
    ("week", "why"),
    [
        ("2026-W00", "regex"),
        ("2026-W54", "regex"),
        ("2026-W99", "regex"),
        ("2025-W53", "2025 has weeks W01 to W52"),  # a short year: no 53rd week
    ],
)
def test_a_progress_message_for_a_week_no_calendar_has_is_refused_naming_the_week(
    week: str, why: str
) -> None:
    """A device's retained ``progress`` names its week; the caregiver stores the week's
    prescription under it. "W00", "W54" and up, and W53 of a 52-week year name no week: they
    are refused where the message is read, the field named, and the wire's schema refuses the
    first three as well. Before, any two digits passed: "2026-W60" was stored and, sorting
    after every real week of 2026, set the sessions prescribed in 2027's first weeks."""
    good = {
        "schema": 1, "device_id": DEVICE, "wall_time": "2026-12-06T10:00:00+00:00",
        "session": "none", "week": "2026-W53", "week_sessions": 0, "week_at_goal": 0,
        "week_backward_s": 0.0, "week_longest_backward_s": 0.0, "goal_sessions": 3,
        "goal_backward_s": 600.0, "week_prescribed": 3,
    }  # fmt: skip
    assert decode_as(ProgressMessage, json.dumps(good).encode()).week == "2026-W53"  # a long year
    with pytest.raises(ValueError, match=r"week") as refused:
        decode_as(ProgressMessage, json.dumps({**good, "week": week}).encode())
    assert why in str(refused.value)
    if why == "regex":
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**good, "week": week}, schema("progress"))


def test_week_start_names_a_week_no_calendar_has() -> None:
    assert week_start("2026-W53") == dt.date(2026, 12, 28)
    # an early year's week is written with four digits, as the wire's pattern has it
    assert week_of(dt.datetime(2, 1, 7, tzinfo=dt.UTC), dt.UTC) == "0002-W02"
    assert week_start("0002-W02") == dt.date(2, 1, 7)
    for week, words in (
        ("2026-W00", "'2026-W00' is not an ISO week: 2026 has weeks W01 to W53"),
        ("2026-W54", "'2026-W54' is not an ISO week: 2026 has weeks W01 to W53"),
        ("2026-49", "'2026-49' is not an ISO week: write it as YYYY-Www, e.g. 2026-W49"),
    ):
        with pytest.raises(ValueError) as refused:
            week_start(week)
        assert str(refused.value) == words


def test_retroguard_sessions_lists_only_the_walked_weeks_when_a_wrong_clock_dated_one() -> None:
    """A session stamped in year 2 made the weekly table 105,655 rows, one a week since then.
    The table lists the weeks with sessions and says why the others are not there."""
    sessions = [
        StoredSession(r)
        for r in (
            ten_straight(dt.datetime(2, 1, 7, 9, tzinfo=dt.UTC)),
            ten_straight(MONDAY),
            two_two(MONDAY + dt.timedelta(weeks=2)),
        )
    ]
    out = io.StringIO()
    print_sessions(sessions, out, dt.UTC, now=MONDAY + dt.timedelta(weeks=3))
    text = out.getvalue()
    rows = [line.split()[0] for line in text.splitlines() if line[:4].isdigit() and "-W" in line]
    assert rows == ["0002-W02", "2026-W10", "2026-W12"]
    assert "(Only the weeks with sessions: the weeks from 0002-W02 to 2026-W13 are" in text
    assert "a session dated in 0002-W02 was recorded with the treadmill's clock wrong.)" in text


def test_a_week_with_no_session_says_none_not_0_0_of_10_min() -> None:
    """A walker on a 6-minute plan (3 min backward at most) who has not walked yet this week
    read "longest backward stretch 0.0 of 10 min (0 of 3 sessions at goal)" on the progress
    page: a figure that looks measured, against a goal their plan cannot yet hold. A week
    with no session says there is none to measure, and, when the walker's plan is known to be
    short of the goal, what it holds and that the goal comes with later plans."""
    from core.progress import WeekProgress, stretch_value, week_goal_parts

    empty = WeekProgress("2026-W10", 0, 0, 0.0, 0.0, prescribed=3)
    assert week_goal_words(empty, 180.0) == (
        "0 of 3 prescribed sessions done; longest backward stretch none (no session walked; "
        "the plan's longest is 3.0 min: the 10-minute goal comes with later plans)"
    )
    assert week_goal_parts(empty, None) == (
        "0 of 3 prescribed sessions done",
        "longest backward stretch none (no session walked)",
        "",  # no "(0 of 3 sessions at goal)" to a week without one
    )
    assert stretch_value(0.0, 600.0, sessions=0) == "none (no session walked)"  # 10 min
    # a week walked says its figure as before
    assert stretch_value(0.0, 180.0, sessions=1) == (
        "0.0 min (the 10-minute goal comes with later plans)"
    )
    assert stretch_value(120.0, None) == "2.0 of 10 min"
