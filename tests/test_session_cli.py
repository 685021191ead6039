"""`retroguard session demo`, `retroguard sessions` and `retroguard session` without a monitor."""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import pytest

from core.clock import SimClock
from firmware.storage.database import connect
from firmware.storage.sessions import load_sessions
from launcher.cli import main
from tests.user_support import as_nobody
from tools.session_demo import run_guided_demo


@dataclasses.dataclass(frozen=True)
class GuidedDemo:
    """What ``run_guided_demo`` on a simulated clock printed, and the database it stored in."""

    printed: str
    database: Path


@pytest.fixture(scope="module")
def guided_demo(tmp_path_factory: pytest.TempPathFactory) -> GuidedDemo:
    """The guided demo walked once for the tests that read what it printed or stored (the
    session log only reads the database)."""
    out = io.StringIO()
    db = tmp_path_factory.mktemp("guided-demo") / "demo.db"
    assert run_guided_demo(clock=SimClock(), out=out, database=db) == 0
    return GuidedDemo(out.getvalue(), db)


def test_guided_demo_prints_the_cues_in_order(guided_demo: GuidedDemo) -> None:
    text = guided_demo.printed
    lines = [line for line in text.splitlines() if "] cue " in line]
    assert lines[0].startswith("  [ 0:00] cue backward")
    assert lines[1].startswith("  [ 1:45] cue turn_ahead")  # 15 s before each turn
    assert lines[2].startswith("  [ 2:00] cue forward")
    assert lines[-3].startswith("  [28:00] cue forward")  # forward again: no turn, no warning
    assert lines[-2].startswith("  [29:00] cue one_minute")
    assert lines[-1].startswith("  [30:00] cue done")
    assert len(lines) == 17 + 13  # 15 intervals, one minute left, done; 13 turns
    assert "Session completed: 30 plan minutes, 14 backward" in text


def test_guided_demo_prints_the_spoken_prompts_and_the_status_led(guided_demo: GuidedDemo) -> None:
    lines = guided_demo.printed.splitlines()
    says = [line.strip() for line in lines if line.strip().startswith("says ")]
    assert says[0] == 'says "Interval 1 of 15. Walk backward for 2 minutes. 30 minutes to go."'
    assert says[1] == 'says "Get ready to turn. Slow the belt and hold the rail."'
    assert says[2] == (
        'says "Slow the belt and hold the rail before you turn. Interval 2 of 15. '
        'Walk forward for 2 minutes. 28 minutes to go."'
    )
    assert (
        says[-1] == 'says "Session done. Slow the belt to a stop, holding the rail. Well walked."'
    )
    assert len(says) == 17 + 13  # one per cue
    led = [line.split(" LED ")[1].split()[0] for line in lines if " LED " in line]
    assert led[:4] == ["starting", "standby", "armed", "walk_backward"]
    assert led[4:6] == ["walk_forward", "walk_backward"]
    assert led[-1] == "armed"  # session done, still armed


def test_sessions_prints_log_and_weekly_progress(
    guided_demo: GuidedDemo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sessions", "--db", str(guided_demo.database)]) == 0
    text = capsys.readouterr().out
    assert "alternate-2-2" in text and "completed" in text
    assert "Weekly progress (goal: 10 straight minutes backward, 3 times a week)" in text
    week_line = text.splitlines()[-1]
    assert week_line.split()[1:4] == ["1", "0", "14.0"]  # 1 session, 0 at goal, 14 min back
    assert week_line.endswith("no")


def test_sessions_with_no_log_names_the_database_it_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "device.db"
    connect(db).close()  # what the monitor's first start leaves
    assert main(["sessions", "--db", str(db)]) == 0
    assert f"No guided sessions recorded yet in {db}." in capsys.readouterr().out
    assert main(["walker", "--db", str(db), "add", "Anna", "--id", "anna"]) == 0
    capsys.readouterr()
    assert main(["sessions", "--db", str(db), "--walker", "anna"]) == 0
    assert f"No guided sessions recorded yet in {db} for walker anna." in capsys.readouterr().out


def test_the_session_log_never_creates_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped --db, or a config whose database the monitor never made, is an error naming
    the file — not an empty database made on the spot and read as "nothing recorded"."""
    command = ["sessions"]
    typo = tmp_path / "nope" / "typo.db"
    assert main([*command, "--db", str(typo)]) == 2
    err = capsys.readouterr().err
    assert f"{typo}: no such database" in err and len(err.splitlines()) == 1
    config = tmp_path / "config.toml"
    config.write_text('[storage]\ndatabase = "never-started.db"\n')
    assert main([*command, "-c", str(config)]) == 2
    assert f"{tmp_path / 'never-started.db'}: no such database" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["plan", "show"], "In force: the config's session.plan (alternate-2-2)"),
        (["plan", "progression", "show"], "No progression assigned."),
        (["walker", "list"], "* 1. default              Default walker"),
        (["plan", "set", "progression-week-2"], "Plan 1 stored: progression-week-2"),
        (["plan", "progression", "set", "toward-10-minutes"], "stage 1 of 9"),
        (["walker", "add", "Anna B"], "Walker anna-b added: Anna B."),
    ],
)
def test_plan_and_walker_work_before_the_monitor_ever_ran(
    command: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fresh install: the config names a database in a directory not there yet (the monitor
    never started). A physio sets walkers and plans up all the same: the command creates the
    database as the monitor's first start does (the schema's owner, every migration, the same
    pragmas), says so naming the file, and answers; the next command finds it."""
    from firmware.storage.schema import SCHEMA_VERSION

    database = tmp_path / "var" / "retroguard" / "retroguard.db"
    config = tmp_path / "config.toml"
    config.write_text(f'[session]\nvoice = "off"\n[storage]\ndatabase = "{database}"\n')
    assert main([*command, "-c", str(config)]) == 0
    captured = capsys.readouterr()
    assert says in captured.out
    assert captured.err.splitlines()[-1] == (
        f"retroguard {command[0]}: {database}: no device database yet (the monitor has not "
        "started with it): created it, as the monitor's first start does"
    )
    conn = connect(database)  # as the monitor opens it: nothing to migrate, nothing refused
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # incremental, as a new file
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
    assert main(["walker", "list", "-c", str(config)]) == 0
    assert "no device database yet" not in capsys.readouterr().err


def test_plan_and_walker_say_when_the_database_is_not_theirs_to_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monitor's state directory belongs to its user: another user's command is refused
    with a sentence naming the file and what to do (exit 1), not a traceback."""
    import sqlite3

    import firmware.storage.database

    def refused(path: object) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(firmware.storage.database, "connect", refused)
    database = tmp_path / "retroguard.db"
    for command in (["walker", "list"], ["plan", "show"]):
        assert main([*command, "--db", str(database)]) == 1
        assert capsys.readouterr().err == (
            f"retroguard {command[0]}: {database}: cannot open: unable to open database file "
            "(the monitor's database belongs to its user: run the command as that user, e.g. "
            "sudo -u retroguard /opt/retroguard/venv/bin/retroguard ..., or as root)\n"
        )


def test_session_command_without_a_monitor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["session", "start", "--socket", str(tmp_path / "nobody.sock")]) == 1
    assert "no monitor is listening" in capsys.readouterr().err


def _as_another_user(argv: list[str], closed: Path, mode: int) -> tuple[int, str]:
    """``main(argv)``'s exit status and standard error as a user who may not open ``closed``:
    as root, ``nobody`` with ``closed`` root's at ``mode`` (as the installed files are);
    otherwise ``closed`` is shut to this user too (mode 0)."""
    root = os.geteuid() == 0
    closed.chmod(mode if root else 0)
    try:
        return as_nobody(lambda: main(argv), drop=root)
    finally:
        closed.chmod(0o700)


def test_session_command_as_another_user_says_who_may_run_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The runtime directory is the service user's, mode 0750, and the installed config root's
    and its group's, 0640: a technician's `retroguard session status` read "permission
    denied on /run/retroguard/session.sock" (or on the config), and nothing said that only
    root or the service's user may, nor how to run it."""
    tmp_path = Path(tempfile.mkdtemp())  # pytest's is its user's alone, 0700
    tmp_path.chmod(0o755)  # nobody may look in, as in /run and /etc
    run = tmp_path / "run"
    run.mkdir()
    sock = run / "session.sock"
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(str(sock))
    listening.listen(1)
    config = tmp_path / "config.toml"
    config.write_text(f'[session]\ncontrol_socket = "{sock}"\n')
    try:
        # The same code paths once as this user, so the child has them imported.
        assert main(["session", "status", "--socket", str(tmp_path / "none.sock")]) == 1
        assert main(["sessions", "-c", str(tmp_path / "none.toml")]) == 2
        capsys.readouterr()
        status, err = _as_another_user(["session", "status", "-c", str(config)], run, 0o750)
        assert status == 1, err
        assert err == (
            f"retroguard session: permission denied on {sock}: only root and the service's "
            "user, retroguard, may reach the monitor's control socket (its runtime directory "
            "is mode 0750): sudo /opt/retroguard/venv/bin/retroguard session status\n"
        )
        status, err = _as_another_user(["session", "status", "-c", str(config)], config, 0o640)
        assert status == 2, err
        assert err == (
            f"{config}: permission denied\n(only root and the service's user, retroguard, may "
            "read the monitor's config: run the command with sudo)\n"
        )
    finally:
        listening.close()
        shutil.rmtree(tmp_path)


def test_guided_demo_with_the_balance_check_prints_its_figures(tmp_path: Path) -> None:
    out = io.StringIO()
    db = tmp_path / "demo.db"
    assert run_guided_demo(clock=SimClock(), out=out, database=db, balance=True) == 0
    text = out.getvalue()
    cues = [line.split("] cue ")[1].split()[0] for line in text.splitlines() if "] cue " in line]
    assert cues[:3] == ["balance", "balance_done", "backward"]
    # The check stood still (the demo walker arms only once it is done): measured, in m/s².
    # The demo's mounting is unknown: AP and ML wait for the walking axes, and it says so.
    assert "Balance check eyes open: sway RMS 0." in text
    assert (
        "(AP and ML apart: imu.mounting is unknown and the walking axes are learned from "
        "walking, after the check), path"
    ) in text
    assert "noise floor" in text and "not measured" not in text and " - " not in text
    assert "Session completed:" in text


class StallsOnce(SimClock):
    """A simulated clock whose loop thread is held up once, mid-walk, for four hold times:
    the latch drops (a fault) and nobody re-arms, so the session is paused at the end."""

    def __init__(self, at: float, by: float = 0.2) -> None:
        super().__init__()
        self.at = at
        self.by = by
        self.stalled = False
        self.thread = threading.get_ident()

    def monotonic(self) -> float:
        now = super().monotonic()
        if not self.stalled and now >= self.at and threading.get_ident() == self.thread:
            self.stalled = True
            self.advance(self.by)
            now = super().monotonic()
        return now


def test_the_balance_demo_opens_with_the_check_when_the_monitor_reaches_standby_late(
    tmp_path: Path,
) -> None:
    """``session demo --balance`` started the session after a fixed 0.5 s of loop time; when
    the loop's first look at the IMU comes late (the host busy starting the courier, as at
    ``--speed 10``: here a 1 s hold-up, a FIFO overflow the monitor recovers from), the
    monitor was still STARTING, so the session only waited for arming: no "Stand still", no
    balance figures, and the demo said nothing was wrong. It now starts it in STANDBY."""
    out = io.StringIO()
    db = tmp_path / "demo.db"
    clock = StallsOnce(0.01, by=1.0)
    assert run_guided_demo(clock=clock, out=out, database=db, balance=True) == 0
    assert clock.stalled
    text = out.getvalue()
    cues = [line.split("] cue ")[1].split()[0] for line in text.splitlines() if "] cue " in line]
    assert cues[:3] == ["balance", "balance_done", "backward"]
    assert "Balance check eyes open: sway RMS 0." in text


def test_the_session_demo_at_speed_rides_out_a_host_hiccup_as_retroguard_demo_does() -> None:
    """At ``--speed 10`` a 20 ms hiccup of the host is 0.2 s of the demo's clock: with the
    50 ms hold circuit unscaled the latch dropped (a FAULT) and the session demo ended
    "DEMO FAILED", as it did on this 2-core machine under load. Its hold time and debounce
    are now the host's real milliseconds, as ``retroguard demo``'s (``tools.demo_speed``)."""
    out = io.StringIO()
    clock = StallsOnce(8.0)  # the same hold-up that drops the latch at 1x (test below)
    assert run_guided_demo(speed=10.0, clock=clock, out=out) == 0
    assert clock.stalled
    text = out.getvalue()
    assert "Session completed:" in text and "DEMO FAILED" not in text


def test_the_session_demo_arms_when_the_monitor_is_ready_however_late_it_starts(
    tmp_path: Path,
) -> None:
    """The walker pressed reset at a fixed 4.5 s of loop time, when the sensor-worn check
    has its verdict after an ordinary start (4 s). Under load at ``--speed 10`` the loop's
    first read came late, the IMU's FIFO overflowed (a FAULT the monitor recovers from) and
    the check began again: the press came while it was still measuring, was refused, the
    session was started in STANDBY (so it opened with the balance check) and the demo ended
    "DEMO FAILED". Here a 1 s hold-up at the start does the same; the walker now waits for
    the LED's "press reset to arm", as a person does, and the session completes."""
    out = io.StringIO()
    db = tmp_path / "demo.db"
    clock = StallsOnce(0.01, by=1.0)
    assert run_guided_demo(clock=clock, out=out, database=db) == 0, out.getvalue()
    assert clock.stalled
    text = out.getvalue()
    led = [line.split(" LED ")[1].split()[0] for line in text.splitlines() if " LED " in line]
    assert led[:4] == ["fault", "starting", "standby", "armed"]  # the FAULT it recovered from
    assert "Session completed: 30 plan minutes, 14 backward" in text
    assert load_sessions(db)[-1].record.status == "completed"
    assert "DEMO FAILED" not in text


@pytest.mark.parametrize(
    ("status", "history", "said"),
    [
        ("stopped", [], "the walker's reset press never armed the monitor"),
        ("stopped", [(5.0, True), (9.5, False)], "the relay opened at 9.0 s of loop time"),
        ("stopped", [(5.0, True)], "the session did not complete (recorded stopped)"),
        ("completed", [(5.0, True)], None),
    ],
    ids=["never armed", "relay opened", "not completed", "passed"],
)
def test_a_failed_session_demo_says_which_way_it_failed(
    status: str, history: list[tuple[float, bool]], said: str | None
) -> None:
    """A press refused under load (the relay never closed) read "the session did not complete
    or the relay moved", as a relay fault would: each is now told apart."""
    from tools.session_demo import _why_failed

    why = _why_failed(status, history, start=0.5)
    assert why is None if said is None else why is not None and why.startswith(said)


def test_the_session_demo_judges_the_relay_over_the_walk_not_after_the_loop_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the loop has stopped no edge holds the relay, and the hold circuit lets go one hold
    time after the last (as it must). The demo read the relay's history after stopping the
    cue printer and the session, and on a busy host at ``--speed 10`` that took more than the
    50 ms hold: the lapse was in the history and a completed session ended "DEMO FAILED: the
    relay opened at 37.5 s" (twice in 15 runs beside two CPU hogs). Here the host takes a
    second to detach the session."""
    import tools.session_demo as session_demo

    clock = SimClock()
    detach = session_demo.detach_session

    def slow_detach(*args: object, **kwargs: object) -> None:
        clock.advance(1.0)
        detach(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(session_demo, "detach_session", slow_detach)
    out = io.StringIO()
    assert run_guided_demo(clock=clock, out=out, database=tmp_path / "d.db") == 0, out.getvalue()
    assert "DEMO FAILED" not in out.getvalue()


def test_a_session_paused_when_the_monitor_stops_is_recorded_stopped(tmp_path: Path) -> None:
    out = io.StringIO()
    db = tmp_path / "demo.db"
    assert run_guided_demo(clock=StallsOnce(8.0), out=out, database=db) == 1
    text = out.getvalue()
    assert "Session running" not in text
    assert (
        "The monitor stopped before the plan's end (paused by the monitor (FAULT): re-arm "
        "with the reset button to resume): the session is recorded as stopped."
    ) in text
    assert "Session stopped: " in text
    assert load_sessions(db)[-1].record.status == "stopped"
    # Which failure, not "did not complete or the relay moved": the hold-up at 8 s dropped it.
    assert "DEMO FAILED: the relay opened at 8.0 s of loop time (the FAULT above).\n" in text


def test_session_demo_stores_its_session_in_the_db_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``session demo --db PATH`` was taken and ignored: the session went to a temporary file
    removed at exit. It is stored in PATH, where ``retroguard sessions`` reads it."""
    import tools.session_demo

    # the command's own path, on a simulated clock (the demo's real one is minutes)
    on_sim_clock = functools.partial(tools.session_demo.run_guided_demo, clock=SimClock())
    monkeypatch.setattr(tools.session_demo, "run_guided_demo", on_sim_clock)
    db = tmp_path / "mine.db"
    assert main(["session", "demo", "--db", str(db)]) == 0
    assert f"Session stored in {db} (retroguard sessions --db {db} shows it)." in (
        capsys.readouterr().out
    )
    [stored] = load_sessions(db)
    assert stored.record.status == "completed"
    assert main(["sessions", "--db", str(db)]) == 0
    assert "alternate-2-2" in capsys.readouterr().out


def test_session_demo_refuses_a_db_that_is_no_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a database\n")
    assert main(["session", "demo", "--db", str(notes)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"retroguard session demo: --db: {notes}: not a RetroGuard database (not an SQLite "
        "database file at all)\n"
    )
    assert notes.read_text() == "my notes, not a database\n"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["start", "--plan", "alternate-2-2"], "not an option of start: --plan (for demo)"),
        (["status", "--speed", "2", "--balance"], "--speed (for demo), --balance (for demo)"),
        (["pause", "--db", "{tmp}/d.db"], "not an option of pause: --db (for stop, demo)"),
        (["demo", "--socket", "{tmp}/s"], "--socket (for start, pause, resume, stop, status)"),
        (["demo", "-c", "{tmp}/c.toml"], "--config (for start, pause, resume, stop, status)"),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else "",
)
def test_session_options_an_action_does_not_read_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    """Each was taken and ignored: ``session start --plan X`` started the monitor's own plan,
    ``session demo -c FILE`` ran on the defaults. Refused, one line, exit 2, before anything
    is made or asked of a monitor."""
    assert main(["session", *(a.format(tmp=tmp_path) for a in argv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"retroguard session {argv[0]}: ") and says in err
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_the_session_demo_walks_and_names_the_chosen_walkers_assigned_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A physio adds Bob, gives him a 7.5-minute plan and runs the session demo on that
    database. The demo's monitor walks Bob's plan (it takes the chosen walker's assigned plan
    at the session's start, as ``retroguard run``), but the demo announced and timed its
    default, alternate-2-2's 30 minutes; and ``--plan`` was announced and silently not
    walked, a longer assigned plan cut off at --plan's end: "DEMO FAILED". Now the demo says
    whose plan it walks, and refuses a --plan that would not be walked."""
    import tools.session_demo as session_demo

    monkeypatch.setattr(session_demo, "RealClock", lambda speed: SimClock())
    db = tmp_path / "clinic.db"
    plan = tmp_path / "bob.toml"
    plan.write_text(
        'name = "Bob, week 1"\nspeed = "0.4 mph"\n'
        '[[interval]]\ndirection = "forward"\nminutes = 2\n'
        '[[interval]]\ndirection = "backward"\nseconds = 90\n'
        '[[interval]]\ndirection = "rest"\nminutes = 1\n'
        '[[interval]]\ndirection = "backward"\nminutes = 3\n'
    )
    assert main(["walker", "--db", str(db), "add", "Bob", "--id", "bob"]) == 0
    assert main(["plan", "--db", str(db), "--walker", "bob", "set", str(plan)]) == 0
    assert main(["walker", "--db", str(db), "select", "bob"]) == 0
    capsys.readouterr()

    assert main(["session", "demo", "--db", str(db), "--plan", "progression-week-9"]) == 2
    said = capsys.readouterr()
    assert said.out == ""
    assert said.err.splitlines() == [
        f"retroguard session demo: --plan: Bob (bob), the walker chosen in {db}, has plan 1 "
        "assigned (Bob, week 1: 7.5 min, 4.5 min backward, 4 intervals), and a session walks "
        "its walker's assigned plan, not --plan: leave out --plan to walk theirs, or choose "
        "another walker (retroguard walker select) or clear theirs (retroguard plan clear "
        "--walker bob) first"
    ]
    assert load_sessions(db) == []  # nothing was walked

    assert main(["session", "demo", "--db", str(db), "--scale", "120"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(
        "Guided session demo: Bob, week 1: 7.5 min, 4.5 min backward, 4 intervals, 120x "
        "compressed (4 s of loop time).\n"
    )
    assert (
        f"The plan is Bob's (bob), the walker chosen in {db}: their assigned plan 1, as the "
        "monitor walks it.\n"
    ) in text
    assert "DEMO FAILED" not in text
    rest = next(line for line in text.splitlines() if "] cue rest" in line)
    assert rest.endswith("buzzer cue_rest; interval 3/4")  # no belt speed for a rest
    assert "interval 4/4 (0.4 mph)" in text
    # Bob's plan walked through (under the simulated clock, which outruns the courier, the
    # record may name the default walker: the roster reaches the loop after the session began)
    (stored,) = load_sessions(db)
    assert stored.record.status == "completed"
    assert stored.record.plan == "Bob, week 1"


def test_a_half_minute_plan_is_said_at_the_session_end_as_the_sessions_table_says_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 7.5-minute plan with 4.5 minutes backward: the session's end said "8 plan minutes, 4
    backward" (whole minutes, halves rounded to even) where the plan, ``retroguard sessions``
    and the dashboard's session table say 7.5 and 4.5."""
    import tools.session_demo as session_demo

    monkeypatch.setattr(session_demo, "RealClock", lambda speed: SimClock())
    db = tmp_path / "demo.db"
    plan = tmp_path / "short.toml"
    plan.write_text(
        '[[interval]]\ndirection = "forward"\nminutes = 3\n'
        '[[interval]]\ndirection = "backward"\nseconds = 270\n'
    )
    assert main(["session", "demo", "--db", str(db), "--plan", str(plan)]) == 0
    text = capsys.readouterr().out
    assert "Session completed: 7.5 plan minutes, 4.5 backward; measured" in text
    assert main(["sessions", "--db", str(db)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "short" in line)
    assert row.split()[3:6] == ["completed", "7.5", "4.5"]


def test_session_demo_records_the_session_as_the_walker_chosen_in_the_db_given(
    tmp_path: Path,
) -> None:
    """Bob is the walker chosen in ``--db``. On the simulated clock the demo's loop reached the
    session's start in a fraction of a real second, before the courier's roster had reached it,
    and stored the session as the Default walker's. The courier now sends the roster before it
    reports its storage (which the demo waits for), and the runner starts no session before a
    roster has come: the session is Bob's, as his plan was."""
    from core.protocol.walker import Walker
    from firmware.storage.database import transaction
    from firmware.storage.walkers import add_walker, select_walker

    db = tmp_path / "demo.db"
    conn = connect(db)
    try:
        with transaction(conn):
            add_walker(conn, "Bob", walker_id="bob", by="Jo", wall="w1")
            select_walker(conn, "bob", by="Jo", via="cli", wall="w2")
    finally:
        conn.close()
    out = io.StringIO()
    assert run_guided_demo(clock=SimClock(), out=out, database=db) == 0, out.getvalue()
    assert [s.record.walker for s in load_sessions(db)] == [Walker("bob", "Bob")]
