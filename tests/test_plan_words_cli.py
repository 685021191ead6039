"""A plan in words in the offline tools: ``retroguard plan presets|set|show|progression`` and
``retroguard sessions`` say what each plan prescribes (belt speed included) beside its name,
in the dashboard's words (:func:`core.protocol.plan.plan_words`)."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import msgspec
import pytest

from core.protocol.plan import TIMES, Interval, Plan
from firmware.storage.sessions import StoredSession
from launcher.cli import main
from tests.caregiver_support import session_record, walked
from tools.sessions import print_sessions

X = TIMES
TWO_TWO = f"2 min backward / 2 min forward {X} 7, 2 min forward; belt 0.5 mph"
WEEK_9 = "2 min forward, 10 min backward, 2 min forward; belt 0.5 mph"


def test_the_presets_and_their_progression_s_stages_are_listed_in_words(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plan", "presets"]) == 0
    out = capsys.readouterr().out
    assert f"alternate-2-2: 30 min, 14 min backward, 15 intervals\n  {TWO_TWO}\n" in out
    assert "progression toward-10-minutes: 9 stages\n" in out
    assert f"   1. alternate-2-2: {TWO_TWO}; 3 times a week, for 2 weeks\n" in out
    assert f"   9. progression-week-9: {WEEK_9}; 3 times a week, for 1 week\n" in out


def test_a_plan_set_shown_and_its_progression_say_what_they_prescribe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A physio's own plan under a name that says nothing of it, its belt speed left blank on
    one interval: ``set`` and ``show`` say it in words, each assignment too; a progression's
    stages say theirs with their sessions a week."""
    db = str(tmp_path / "events.db")
    anna = tmp_path / "anna.json"
    anna.write_text(
        json.dumps(
            {
                "name": "Anna, week 3",
                "intervals": [
                    {"direction": "forward", "minutes": 2, "speed": "1 mph"},
                    {"direction": "backward", "minutes": 10, "speed": "0.6 mph"},
                    {"direction": "forward", "minutes": 2, "speed": ""},
                ],
            }
        )
    )
    words = "2 min forward (1 mph), 10 min backward (0.6 mph), 2 min forward"
    assert main(["plan", "--db", db, "set", str(anna), "--by", "Jo"]) == 0
    assert f"Plan 1 stored: Anna, week 3: 14 min, 10 min backward, 3 intervals\n  {words}.\n" in (
        capsys.readouterr().out
    )
    assert main(["plan", "--db", db, "set", "progression-week-9", "--by", "Jo"]) == 0
    capsys.readouterr()
    assert main(["plan", "--db", db, "show"]) == 0
    shown = capsys.readouterr().out
    assert f"progression-week-9: 14 min, 10 min backward, 3 intervals\n  {WEEK_9}\n" in shown
    history = shown.split("Last assignments:\n")[1].splitlines()
    assert history[0].endswith("progression-week-9, by Jo via cli")
    assert history[1] == f"       {WEEK_9}"
    assert history[2].endswith("Anna, week 3, by Jo via cli") and history[3] == f"       {words}"

    assert main(["plan", "--db", db, "progression", "set", "toward-10-minutes"]) == 0
    out = capsys.readouterr().out
    assert f"  ->  1. alternate-2-2: {TWO_TWO}; 3 times a week, for 2 weeks\n" in out
    assert f"      9. progression-week-9: {WEEK_9}; 3 times a week, for 1 week\n" in out


def test_the_session_log_says_what_each_plan_walked_prescribed() -> None:
    """The table has room for a plan's name; under it, each plan walked in words, once per
    name and walk (a plan changed under its name is listed with each walk)."""
    monday = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    first = Plan("Anna, week 3", (Interval("backward", 10, "0.5 mph"),))
    changed = Plan("Anna, week 3", (Interval("backward", 12, "0.5 mph"),))
    records = [
        walked(session_record("tm1", monday + dt.timedelta(days=d), backward_min=10,
                              longest_min=10), plan)
        for d, plan in ((0, first), (2, first), (4, changed))
    ]  # fmt: skip
    older = msgspec.structs.replace(
        session_record("tm1", monday + dt.timedelta(days=5), backward_min=10, longest_min=10),
        intervals=[],
    )  # a record without its intervals: named in the table, not said in words
    out = io.StringIO()
    print_sessions([StoredSession(r) for r in (*records, older)], out, dt.UTC, now=monday)
    text = out.getvalue()
    said = text.split("Plans walked:\n")[1].split("\n\n")[0].splitlines()
    assert said[:2] == [
        "  Anna, week 3: 10 min backward; belt 0.5 mph",
        "  Anna, week 3: 12 min backward; belt 0.5 mph",
    ]
    assert not any(line.startswith("  progression-week-9") for line in said)


def test_plan_show_lists_each_interval_s_length_as_its_words_do_and_no_speed_for_a_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Intervals given in seconds were listed in minutes as ``:g`` prints them, "1.66667 min"
    under words that said "1 min 40 s", and a rest carried the plan's belt speed, "rest 0.75
    min 0.5 mph", where the words (and the dashboard) give a rest none."""
    db = tmp_path / "device.db"
    plan = tmp_path / "odd.toml"
    plan.write_text(
        '[[interval]]\ndirection = "backward"\nseconds = 100\n'
        '[[interval]]\ndirection = "rest"\nseconds = 45\n'
        '[[interval]]\ndirection = "forward"\nseconds = 130\n'
    )
    assert main(["plan", "--db", str(db), "set", str(plan)]) == 0
    capsys.readouterr()
    assert main(["plan", "--db", str(db), "show"]) == 0
    out = capsys.readouterr().out
    assert (
        "  1 min 40 s backward, 45 s rest, 2 min 10 s forward; belt 0.5 mph\n"
        "   1. backward 1 min 40 s  0.5 mph\n"
        "   2. rest          45 s\n"
        "   3. forward  2 min 10 s  0.5 mph\n"
    ) in out
