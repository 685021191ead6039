"""How a physio counts the walker's week, and what moves a progression on: one walk is counted
once, a week counts toward one stage only, and a clear to the stage's own plan holds nothing.

Real device databases (SQLite files) throughout; the surfaces are the ones the physio reads:
``retroguard sessions``, the session's end summary, the retained ``progress`` message, and the
progression's own rule (:func:`firmware.storage.progressions.advance_if_done`).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest

from core.plan_presets import PRESETS
from core.progress import weekly_progress
from core.protocol.commands import CommandRefused, parse_command
from core.protocol.messages import ProgressMessage, SessionRecord
from core.protocol.payloads import decode_as
from core.protocol.plan import Interval, Plan, Progression, Stage, plan_to_builtins
from core.protocol.topics import Topics
from firmware.mqtt.status import RetainedStatus
from firmware.session.runner import attach_session, detach_session
from firmware.session.summary import week_line
from firmware.storage.database import connect
from firmware.storage.plans import current_plan
from firmware.storage.progressions import (
    HAND_PLAN_HOLD,
    advance_if_done,
    change_progression,
    current_progression,
    prescribed_by_week,
    set_plan_by_hand,
    start_progression,
)
from firmware.storage.sessions import load_sessions, save_session
from launcher.cli import main
from sim import scenarios
from tests.app_support import armed_rig, close_rigs  # noqa: F401 - fixture
from tests.caregiver_support import session_record, walked

DEVICE = "tm-1"
BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)  # 09:00 in Berlin, ISO week 2026-W10
TWO_TWO = PRESETS["alternate-2-2"]
WEEK_2 = PRESETS["progression-week-2"]
WEEK_3 = PRESETS["progression-week-3"]


def _walk(
    started: dt.datetime, *, plan: str = TWO_TWO.name, ten: bool = False, until_min: float = 30
) -> SessionRecord:
    """A session of ``plan`` (30 min); ``ten``: with a 10-minute backward block walked;
    ``until_min`` < 30: interrupted then (a trip not re-armed from in time: abandoned)."""
    record = walked(
        session_record(
            DEVICE, started, backward_min=12 if ten else 14, longest_min=10 if ten else 2
        ),
        PRESETS[plan],
    )
    if until_min < 30:
        record = msgspec.structs.replace(record, status="abandoned", done_s=until_min * 60)
    return record


def test_a_walk_interrupted_and_walked_again_the_same_day_counts_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Monday: the walker walked the 10-minute block, tripped at minute 25 and did not re-arm
    in time (abandoned), then walked the plan again from the start. Tuesday: the plan once.
    Wednesday: the plan through, then the monitor restarted and the walker walked it again.
    Three days walked, one of them twice over: a physio counts 3 sessions done, 2 at goal, not
    a week at goal. Before, one walk counted as two: 4 done of 3 and 3 at goal, a week at goal
    toward the four-week milestone with two days' walks at that level."""
    monkeypatch.setenv("TZ", "UTC")
    db = tmp_path / "device.db"
    conn = connect(db)
    records = [
        _walk(MONDAY, ten=True, until_min=25),
        _walk(MONDAY + dt.timedelta(minutes=50), ten=True),
        _walk(MONDAY + dt.timedelta(days=1), ten=True),
        _walk(MONDAY + dt.timedelta(days=2)),
        _walk(MONDAY + dt.timedelta(days=2, minutes=45)),
    ]
    for record in records:
        save_session(conn, record)
    conn.close()
    (week,) = weekly_progress(records, dt.UTC)
    assert (week.sessions, week.done, week.at_goal, week.goal_met) == (5, 3, 2, False)
    # retroguard sessions
    assert main(["sessions", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    row = next(line.split() for line in out.splitlines() if line.startswith("2026-W10"))
    assert row[1:3] == ["5", "2"] and row[5:] == ["3/3", "no"]
    assert "Weeks at goal: 0 of 4." in out
    # the session's end summary
    assert week_line(records[-1], records, {}, dt.UTC).startswith(
        "Week 2026-W10: 3 of 3 prescribed sessions done; longest backward stretch 10.0 of "
        "10 min (2 of 3 sessions at goal). Weeks at goal: 0 of 4."
    )
    # the retained progress (Home Assistant)
    now = MONDAY + dt.timedelta(days=3)
    status = RetainedStatus(db, Topics("retroguard", DEVICE), now=lambda: now, zone=dt.UTC)
    retained = status.progress()
    status.close()
    assert retained is not None
    message = decode_as(ProgressMessage, retained.payload.encode())
    assert (message.week_sessions, message.week_done, message.week_at_goal) == (5, 3, 2)
    assert message.weeks_at_goal == 0


def test_a_stage_does_not_advance_on_a_walk_counted_twice(tmp_path: Path) -> None:
    """Three completed sessions a week move a one-week stage on; a walk interrupted and walked
    again the same day is one of them, not two (before: Monday twice and Tuesday advanced it)."""
    progression = Progression(
        "custom", (Stage(TWO_TWO, weeks=1, sessions_per_week=3), Stage(WEEK_2, weeks=1))
    )
    conn = connect(tmp_path / "device.db")
    with conn:
        start_progression(conn, progression, stage=0, by="Jo", wall="2026-03-01T12:00:00+00:00")
        for record in (
            _walk(MONDAY),
            _walk(MONDAY + dt.timedelta(minutes=45)),  # the monitor restarted: walked again
            _walk(MONDAY + dt.timedelta(days=1)),
        ):
            save_session(conn, record)
        assert advance_if_done(conn, dt.UTC, "2026-03-03T09:00:00+00:00") is None
        save_session(conn, _walk(MONDAY + dt.timedelta(days=3)))  # a third day
        advanced = advance_if_done(conn, dt.UTC, "2026-03-05T09:00:00+00:00")
    assert advanced is not None and advanced.stage == 1
    conn.close()


def test_a_twice_a_day_prescription_counts_two_walks_a_day_and_can_be_completed(
    tmp_path: Path,
) -> None:
    """A stage may prescribe up to 14 sessions a week (twice a day). Counting a day once,
    such a week could never be completed: the progression stalled for good and adherence read
    7 of 14 at best. Two walks a day count toward it; a third that day still does not."""
    progression = Progression(
        "custom", (Stage(TWO_TWO, weeks=1, sessions_per_week=14), Stage(WEEK_2, weeks=1))
    )
    conn = connect(tmp_path / "device.db")
    walks = [
        _walk(MONDAY + dt.timedelta(days=day, hours=hours))
        for day in range(7)
        for hours in ((0, 8, 10) if day == 0 else (0, 8))
    ]
    with conn:
        start_progression(conn, progression, stage=0, by="Jo", wall="2026-03-01T12:00:00+00:00")
        for record in walks[:-1]:
            save_session(conn, record)
        assert advance_if_done(conn, dt.UTC, "2026-03-08T19:00:00+00:00") is None
        known = prescribed_by_week(conn, dt.UTC)
        save_session(conn, walks[-1])
        advanced = advance_if_done(conn, dt.UTC, "2026-03-08T19:00:00+00:00")
    conn.close()
    assert advanced is not None and advanced.stage == 1
    # adherence before the last walk: Monday's third walk does not count, so 13 of 14
    (week,) = weekly_progress(walks[:-1], dt.UTC, known)
    assert (week.sessions, week.done, week.prescribed) == (14, 13, 14)
    # three a week: the same walks count a day once
    (week,) = weekly_progress(walks, dt.UTC)
    assert (week.done, week.prescribed) == (7, 3)


def test_two_one_week_stages_do_not_pass_within_one_iso_week(tmp_path: Path) -> None:
    """One-week stages, three sessions a week: the walker did the week's three by Wednesday
    (the stage advanced) and three more of the next stage's plan by Saturday. That is one week
    of the prescription, not two stages of "a week each": before, the second stage advanced
    on Saturday, both within 2026-W10. The week that completed a stage is that stage's; the
    next one counts from the Monday after (in the walker's zone), its plan in force at once."""
    progression = Progression(
        "custom",
        (
            Stage(TWO_TWO, weeks=1, sessions_per_week=3),
            Stage(TWO_TWO, weeks=1, sessions_per_week=3),
            Stage(WEEK_2, weeks=1, sessions_per_week=3),
        ),
    )
    db = tmp_path / "device.db"
    conn = connect(db)
    with conn:
        start_progression(conn, progression, stage=0, by="Jo", wall="2026-03-01T12:00:00+00:00")
    for day in (0, 1, 2):  # Monday to Wednesday of 2026-W10
        with conn:
            save_session(conn, _walk(MONDAY + dt.timedelta(days=day)))
            advanced = advance_if_done(conn, BERLIN, f"2026-03-0{2 + day}T09:00:00+00:00")
    assert advanced is not None and advanced.stage == 1
    # the next stage counts from Monday 00:00 in Berlin (Sunday 23:00 UTC)
    assert advanced.stage_started_wall == "2026-03-08T23:00:00.000+00:00"
    for day in (3, 4, 5):  # Thursday to Saturday: the new stage's plan, the same week
        with conn:
            save_session(conn, _walk(MONDAY + dt.timedelta(days=day)))
            assert advance_if_done(conn, BERLIN, f"2026-03-0{2 + day}T09:00:00+00:00") is None
    state = current_progression(conn)
    assert state is not None and state.stage == 1
    for day in (7, 8, 9):  # Monday to Wednesday of 2026-W11: the stage's own week
        with conn:
            save_session(conn, _walk(MONDAY + dt.timedelta(days=day)))
            advanced = advance_if_done(conn, BERLIN, f"2026-03-{2 + day:02d}T09:00:00+00:00")
    assert advanced is not None and advanced.stage == 2
    # adherence: W10 is counted against the least in force (3), every session done in it
    known = prescribed_by_week(conn, BERLIN)
    conn.close()
    weeks = weekly_progress(
        [_walk(MONDAY + dt.timedelta(days=d)) for d in (0, 1, 2, 3, 4, 5, 7, 8, 9)], BERLIN, known
    )
    assert [(w.week, w.done, w.prescribed) for w in weeks] == [
        ("2026-W10", 6, 3),
        ("2026-W11", 3, 3),
    ]


def test_a_clear_to_a_config_plan_that_is_the_stage_s_own_holds_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``retroguard plan clear`` brings back the config's ``session.plan``: when that is the
    progression stage's own plan (alternate-2-2, the first stage of toward-10-minutes, and the
    config's default), the walker walks the stage's plan and the progression can move on, so
    nothing is held. Before, it held the progression all the same, and it stalled until a
    physio released it."""
    config = tmp_path / "config.toml"
    config.write_text('[session]\nplan = "alternate-2-2"\n')
    db = str(tmp_path / "device.db")
    base = ["plan", "-c", str(config), "--db", db]
    assert main([*base, "progression", "set", "toward-10-minutes", "--stage", "1"]) == 0
    capsys.readouterr()
    assert main([*base, "clear", "--by", "Jo"]) == 0
    assert "held" not in capsys.readouterr().out
    conn = connect(db)
    state = current_progression(conn)
    conn.close()
    assert state is not None and not state.held and state.changed == "assigned"
    # a config plan that is not the stage's still holds it, as before
    config.write_text('[session]\nplan = "progression-week-4"\n')
    assert main([*base, "clear", "--by", "Jo"]) == 0
    assert "is now held" in capsys.readouterr().out
    conn = connect(db)
    state = current_progression(conn)
    conn.close()
    assert state is not None and state.held
    assert state.changed == HAND_PLAN_HOLD


def test_a_held_progression_prescribes_its_stage_s_count_on_every_surface(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hold stops the advance, not the prescription: a plan set by hand (which holds the
    progression) changes what the walker walks, and a plan says nothing of how often, so the
    week still counts against the stage's ``sessions_per_week`` (here 2, not the default 3),
    its sessions of the hand-set plan done as any plan's. ``retroguard sessions``, the
    session's end summary and the retained progress say the same."""
    monkeypatch.setenv("TZ", "UTC")
    twice = Progression("twice a week", (Stage(TWO_TWO, sessions_per_week=2), Stage(WEEK_2)))
    db = tmp_path / "device.db"
    conn = connect(db)
    with conn:
        start_progression(conn, twice, stage=0, by="Jo", wall="2026-02-20T12:00:00+00:00")
    conn.close()
    assert main(["plan", "--db", str(db), "set", "progression-week-4", "--by", "Jo"]) == 0
    assert "is now held" in capsys.readouterr().out
    records = [_walk(MONDAY + dt.timedelta(days=d), plan="progression-week-4") for d in (0, 2, 3)]
    conn = connect(db)
    for record in records:
        save_session(conn, record)
    known = prescribed_by_week(conn, dt.UTC)
    state = current_progression(conn)
    conn.close()
    assert state is not None and state.held and state.stage == 0
    assert main(["sessions", "--db", str(db)]) == 0
    row = next(
        line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("2026-W10")
    )
    assert row[5:] == ["3/2", "no"]
    assert week_line(records[-1], records, known, dt.UTC).startswith(
        "Week 2026-W10: 3 of 2 prescribed sessions done;"
    )
    now = MONDAY + dt.timedelta(days=4)
    status = RetainedStatus(db, Topics("retroguard", DEVICE), now=lambda: now, zone=dt.UTC)
    retained = status.progress()
    status.close()
    assert retained is not None
    message = decode_as(ProgressMessage, retained.payload.encode())
    assert (message.week_done, message.week_prescribed) == (3, 2)


def _held_and_walked(db: Path) -> None:
    """A one-week stage held on Sunday, then walked Monday to Wednesday of 2026-W10."""
    progression = Progression(
        "custom", (Stage(TWO_TWO, weeks=1, sessions_per_week=3), Stage(WEEK_2, weeks=1))
    )
    conn = connect(db)
    with conn:
        start_progression(conn, progression, stage=0, by="Jo", wall="2026-03-01T10:00:00+00:00")
        change_progression(conn, "hold", by="Jo", wall="2026-03-01T11:00:00+00:00")
        for day in (0, 1, 2):
            save_session(conn, _walk(MONDAY + dt.timedelta(days=day)))
            assert advance_if_done(conn, BERLIN, f"2026-03-0{2 + day}T09:00:00+00:00") is None
    conn.close()


def test_a_release_moves_on_at_once_when_the_stage_was_done_while_held(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The physio held the progression on Sunday; the walker walked the stage's plan Monday to
    Wednesday of 2026-W10 anyway (a hold stops the advance, not the count). Released on
    Thursday, the walker moves on at once: the next stage's plan from the next session, its
    count from the Monday after (in Berlin). Before, the release only unheld: the walker
    walked the old stage's plan once more, and only that session's end moved them on."""
    db = tmp_path / "device.db"
    _held_and_walked(db)
    conn = connect(db)
    with conn:
        released = change_progression(
            conn, "release", by="Jo", wall="2026-03-05T09:00:00+00:00", zone=BERLIN
        )
    changes = [c for (c,) in conn.execute("SELECT change FROM progressions ORDER BY id")]
    (plan,) = conn.execute("SELECT plan FROM plans ORDER BY id DESC LIMIT 1").fetchone()
    conn.close()
    assert (released.stage, released.held, released.advanced_on_release) == (1, False, True)
    assert released.stage_started_wall == "2026-03-08T23:00:00.000+00:00"  # Monday 00:00 Berlin
    assert changes == ["assigned", "held", "released", "advanced"]
    assert msgspec.json.decode(plan)["name"] == WEEK_2.name  # not the old stage's put back

    # the CLI says so (released now, long after that week: the stage counts from now)
    monkeypatch.setenv("TZ", "Europe/Berlin")
    again = tmp_path / "again.db"
    _held_and_walked(again)
    assert main(["plan", "--db", str(again), "progression", "release", "--by", "Jo"]) == 0
    out = capsys.readouterr().out
    assert "Progression custom: stage 2 of 2, since " in out
    assert "(advanced by progression)" in out
    assert "Released, and advanced: the stage's sessions were done while it was held." in out
    assert "is in force again" not in out


def test_a_release_of_a_stage_not_done_only_releases(tmp_path: Path) -> None:
    progression = Progression(
        "custom", (Stage(TWO_TWO, weeks=1, sessions_per_week=3), Stage(WEEK_2, weeks=1))
    )
    conn = connect(tmp_path / "device.db")
    with conn:
        start_progression(conn, progression, stage=0, by="Jo", wall="2026-03-01T10:00:00+00:00")
        change_progression(conn, "hold", by="Jo", wall="2026-03-01T11:00:00+00:00")
        for day in (0, 1):  # two of the three
            save_session(conn, _walk(MONDAY + dt.timedelta(days=day)))
        released = change_progression(
            conn, "release", by="Jo", wall="2026-03-05T09:00:00+00:00", zone=BERLIN
        )
    conn.close()
    assert (released.stage, released.changed, released.advanced_on_release) == (
        0,
        "released",
        False,
    )


# ------------------------------------------- which sessions are the stage's, and when next


def _three_days(conn: sqlite3.Connection, plan: Plan, first: dt.datetime) -> None:
    """``plan`` walked through on three days from ``first``, stored as the runner stores it."""
    for day in (0, 1, 2):
        save_session(conn, walked(_walk(first + dt.timedelta(days=day)), plan))


def test_a_plan_set_by_hand_under_the_stage_plan_s_name_does_not_count_toward_the_stage(
    tmp_path: Path,
) -> None:
    """The stage's plan is "Anna" (the 2/2 intervals); the physio set by hand another plan
    also called "Anna" (3-minute blocks), which held the progression, and the walker walked it
    three times. Those sessions are not the stage's: the release puts the stage's plan back and
    the walker stays on the stage. Before, the rule matched sessions by the plan's name: the
    release said the stage's sessions were done while it was held and moved the walker on over
    a stage they never walked."""
    anna = Plan("Anna", TWO_TWO.intervals)
    other_anna = Plan("Anna", PRESETS["progression-week-2"].intervals)
    progression = Progression("custom", (Stage(anna), Stage(WEEK_2)))
    conn = connect(tmp_path / "device.db")
    with conn:
        start_progression(conn, progression, stage=0, by="Jo", wall="2026-03-01T10:00:00+00:00")
        hand = set_plan_by_hand(
            conn, other_anna, by="Jo", via="cli", wall="2026-03-01T11:00:00+00:00"
        )
    assert hand.newly_held
    with conn:
        _three_days(conn, other_anna, MONDAY)
        released = change_progression(
            conn, "release", by="Jo", wall="2026-03-05T09:00:00+00:00", zone=BERLIN
        )
    assert (released.stage, released.advanced_on_release, released.plan_restored) == (
        0,
        False,
        True,
    )
    now = current_plan(conn)
    assert now is not None and now.plan == anna
    # the stage's own plan, three days the next week, moves the walker on
    with conn:
        _three_days(conn, anna, MONDAY + dt.timedelta(weeks=1))
        advanced = advance_if_done(conn, BERLIN, "2026-03-11T09:00:00+00:00")
    conn.close()
    assert advanced is not None and advanced.stage == 1


def test_a_renamed_copy_of_the_stage_s_plan_is_the_stage_s_plan(tmp_path: Path) -> None:
    """A physio renamed the stage's custom plan ("Anna wk1" to "Anna, week 1", the same rows):
    the walker walks the same prescription, so nothing is held and its sessions count toward
    the stage. Before, the rename held the progression, and its sessions (another name) would
    not have counted even once released."""
    anna = Plan("Anna wk1", TWO_TWO.intervals)
    renamed = Plan("Anna, week 1", TWO_TWO.intervals)
    progression = Progression("custom", (Stage(anna), Stage(WEEK_2)))
    conn = connect(tmp_path / "device.db")
    with conn:
        start_progression(conn, progression, stage=0, by="Jo", wall="2026-03-01T10:00:00+00:00")
        hand = set_plan_by_hand(conn, renamed, by="Jo", via="cli", wall="2026-03-01T11:00:00+00:00")
    assert hand.held is None
    with conn:
        _three_days(conn, renamed, MONDAY)
        advanced = advance_if_done(conn, BERLIN, "2026-03-04T09:00:00+00:00")
    conn.close()
    assert advanced is not None and advanced.stage == 1


@pytest.mark.usefixtures("close_rigs")
def test_a_session_recorded_by_the_runner_is_matched_to_its_stage_by_its_intervals(
    tmp_path: Path,
) -> None:
    """The rule matches the intervals a session record keeps to the stage plan's
    (:func:`core.protocol.plan.plan_walk`): a real runner's record of a plan with lengths that
    are no whole seconds (0.55 min, 1/3 min) and its own speed notes, walked on three days,
    completes the stage."""
    plan = Plan(
        "odd lengths",
        (
            Interval("forward", 0.55, "0.6 mph"),
            Interval("backward", 1 / 3, "0.4 mph"),
            Interval("rest", 0.2),
        ),
    )
    motion = scenarios.Sequence(
        [scenarios.Standing(3.0), scenarios.Walking(200.0, 0.6, "backward", step_hz=1.5)], seed=3
    )
    rig = armed_rig(tmp_path, motion=motion)
    runner = attach_session(rig.app, plan, time_scale=5.0)  # 65 s of plan in 13 s
    try:
        rig.run_for(2.0)
        runner.request("start")
        rig.run_for(plan.duration_s / 5.0 + 5.0)
    finally:
        detach_session(rig.app, runner)
    (stored,) = load_sessions(rig.app.config.storage.database)
    assert stored.record.status == "completed"
    conn = connect(rig.app.config.storage.database)
    with conn:
        start_progression(
            conn,
            Progression("custom", (Stage(plan), Stage(WEEK_2))),
            stage=0,
            by="Jo",
            wall="2026-03-01T10:00:00+00:00",
        )
        for day in (0, 1, 2):
            started = (MONDAY + dt.timedelta(days=day)).isoformat(timespec="seconds")
            save_session(
                conn,
                msgspec.structs.replace(stored.record, id=f"{day:032x}", started_wall=started),
            )
        advanced = advance_if_done(conn, BERLIN, "2026-03-04T09:00:00+00:00")
    conn.close()
    assert advanced is not None and advanced.stage == 1


def test_a_progression_with_two_plans_under_one_name_is_refused_naming_the_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two stages whose plans share a name but not their intervals: the session log and the
    reports could not tell which stage a session walked (and a device of an earlier release,
    matching by name, would count one stage's sessions toward the other). Refused from a
    file (exit 2, nothing stored) and on the wire (``cmd/progression``), naming the stage;
    the same plan in two stages is fine."""
    data = {
        "name": "anna-spring",
        "stages": [
            {"plan": plan_to_builtins(Plan("Anna", TWO_TWO.intervals)), "weeks": 2},
            {"plan": "progression-week-3"},
            {"plan": plan_to_builtins(Plan("Anna", WEEK_2.intervals))},
        ],
    }
    path = tmp_path / "anna.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    db = tmp_path / "device.db"
    assert main(["plan", "--db", str(db), "progression", "set", str(path), "--stage", "1"]) == 2
    said = capsys.readouterr().err
    assert (
        "stages[2].plan.name: stage 3's plan is named 'Anna', as stage 1's is, with other "
        "intervals: give each stage's plan a name of its own"
    ) in said
    if db.exists():
        conn = connect(db)
        assert current_progression(conn) is None
        conn.close()
    week_3 = plan_to_builtins(WEEK_3)
    stages = [{**s, "plan": week_3} if isinstance(s["plan"], str) else s for s in data["stages"]]
    wire = {**data, "stages": stages}
    payload = json.dumps({"by": "Jo", "progression": wire, "stage": 0}).encode()
    with pytest.raises(CommandRefused, match=r"progression\.stages\[2\]\.plan\.name: stage 3's"):
        parse_command("progression", payload)
    # the same plan twice (name and intervals) is one plan in two stages
    same = {**data, "stages": [data["stages"][0], data["stages"][0]]}
    path.write_text(json.dumps(same), encoding="utf-8")
    assert main(["plan", "--db", str(db), "progression", "set", str(path), "--stage", "1"]) == 0


def test_a_release_counts_the_next_stage_from_the_week_that_completed_this_one(
    tmp_path: Path,
) -> None:
    """The walker did the held stage's three in 2026-W10, then on Monday of W11 walked a few
    minutes and stopped; the physio released on Tuesday. The stage was completed in W10, so
    the next one counts from the release (later than W11's Monday), and the walker's
    Wednesday to Friday of the new stage's plan move them on. Before, the next stage counted
    from the Monday after the *newest* session since the stage began (the stopped walk's
    week): from W12, and that week's three walks counted toward nothing."""
    progression = Progression("custom", (Stage(TWO_TWO), Stage(WEEK_2), Stage(WEEK_3)))
    conn = connect(tmp_path / "device.db")
    with conn:
        start_progression(conn, progression, stage=0, by="Jo", wall="2026-03-01T10:00:00+00:00")
        change_progression(conn, "hold", by="Jo", wall="2026-03-01T11:00:00+00:00")
        _three_days(conn, TWO_TWO, MONDAY)
        save_session(conn, walked(_walk(MONDAY + dt.timedelta(weeks=1), until_min=5), TWO_TWO))
        released = change_progression(
            conn, "release", by="Jo", wall="2026-03-10T09:00:00+00:00", zone=BERLIN
        )
    assert (released.stage, released.advanced_on_release) == (1, True)
    assert released.stage_started_wall == "2026-03-10T09:00:00+00:00"
    with conn:
        _three_days(conn, WEEK_2, MONDAY + dt.timedelta(weeks=1, days=2))
        advanced = advance_if_done(conn, BERLIN, "2026-03-13T10:00:00+00:00")
    conn.close()
    assert advanced is not None and advanced.stage == 2


def test_a_stage_completed_the_week_daylight_saving_begins_counts_the_next_from_monday_00_00(
    tmp_path: Path,
) -> None:
    """Berlin moves to summer time on Sunday 29 March 2026 (2026-W13). A stage completed that
    week counts the next from Monday 30 March 00:00 CEST (Sunday 22:00 UTC): a session at
    00:30 on that Monday (22:30 UTC, still Sunday in UTC) is the new stage's, one at 23:30
    on the Sunday is not. (A guard: counted right before this change too.)"""
    progression = Progression("custom", (Stage(TWO_TWO), Stage(WEEK_2), Stage(WEEK_3)))
    w13 = dt.datetime(2026, 3, 24, 8, 0, tzinfo=dt.UTC)  # Tuesday of 2026-W13
    conn = connect(tmp_path / "device.db")
    with conn:
        start_progression(conn, progression, stage=0, by="Jo", wall="2026-03-22T10:00:00+00:00")
        _three_days(conn, TWO_TWO, w13)
        advanced = advance_if_done(conn, BERLIN, "2026-03-26T10:00:00+00:00")
    assert advanced is not None and advanced.stage == 1
    assert advanced.stage_started_wall == "2026-03-29T22:00:00.000+00:00"
    sunday_night = dt.datetime(2026, 3, 29, 21, 30, tzinfo=dt.UTC)  # 23:30 CEST
    monday_0030 = dt.datetime(2026, 3, 29, 22, 30, tzinfo=dt.UTC)  # 00:30 CEST, 2026-W14
    with conn:
        for started in (sunday_night, *(monday_0030 + dt.timedelta(days=d) for d in (1, 2))):
            save_session(conn, walked(_walk(started), WEEK_2))  # Sunday, then Tuesday, Wednesday
        assert advance_if_done(conn, BERLIN, "2026-04-01T10:00:00+00:00") is None  # 2 in W14
        save_session(conn, walked(_walk(monday_0030), WEEK_2))
        advanced = advance_if_done(conn, BERLIN, "2026-04-01T11:00:00+00:00")
    conn.close()
    assert advanced is not None and advanced.stage == 2
