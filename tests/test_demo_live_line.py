"""The demo's live status line shares the terminal with log records and printed lines: each
record starts a line of its own above the status line, which is drawn again below it; on
anything but a terminal there is no live line. The status line says what the walker does by
the guided session's current interval, and "standing" before arming."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from firmware.safety import SafetyState
from firmware.session.plan import Interval, Plan
from firmware.session.runner import attach_session, detach_session
from launcher.demo import LiveStatus, walker_doing
from launcher.live_line import LinesAbove, LiveLine, logging_above, stderr_above
from sim import scenarios
from tests.app_support import TripAt, close_rigs, make_rig  # noqa: F401 - fixture


class Terminal(io.StringIO):
    """A stream that says it is a terminal; :meth:`screen` plays its bytes as one would."""

    def isatty(self) -> bool:
        return True

    def screen(self) -> list[str]:
        lines = [""]
        column = 0
        i = 0
        text = self.getvalue()
        while i < len(text):
            if text.startswith("\x1b[K", i):
                lines[-1] = lines[-1][:column]
                i += 3
                continue
            char = text[i]
            if char == "\r":
                column = 0
            elif char == "\n":
                lines.append("")
                column = 0
            else:
                row = lines[-1]
                lines[-1] = row[:column] + char + row[column + 1 :]
                column += 1
            i += 1
        return lines


def test_log_records_and_printed_lines_go_above_the_status_line() -> None:
    term = Terminal()
    line = LiveLine(term)
    root = logging.getLogger()
    before = root.handlers[:]
    plain = logging.StreamHandler(term)
    plain.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.handlers[:] = [plain]
    try:
        with logging_above(line, term):
            line.show("t=  1.0s  walker: standing  buzzer: quiet")
            logging.getLogger("firmware.test").warning("a record")
            line.show("t=  1.2s  walker: walk backward  buzzer: quiet")
            LinesAbove(line).write("  [ 0:00] cue backward\n")
            logging.getLogger("firmware.test").warning("another")
        assert root.handlers == [plain]  # put back as they were
    finally:
        root.handlers[:] = before
    line.end()
    assert term.screen() == [
        "WARNING firmware.test: a record",
        "  [ 0:00] cue backward",
        "WARNING firmware.test: another",
        "t=  1.2s  walker: walk backward  buzzer: quiet",
        "",
    ]


def test_no_live_line_off_a_terminal() -> None:
    out = io.StringIO()
    line = LiveLine(out)
    line.show("t=  1.0s  walker: standing")
    line.above("a line\n")
    line.end()
    assert out.getvalue() == "a line\n"


def test_a_status_line_drawn_from_its_thread_while_records_come_never_gets_one_appended() -> None:
    """Records from another thread while the status thread redraws: every record is a line
    that starts with its own text."""
    term = Terminal()
    line = LiveLine(term)
    stop = threading.Event()

    def redraw() -> None:
        while not stop.is_set():
            line.show("STATUS walker: standing")

    drawer = threading.Thread(target=redraw)
    drawer.start()
    try:
        for n in range(200):
            line.above(f"record {n}\n")
    finally:
        stop.set()
        drawer.join()
    line.end()
    shown = [row for row in term.screen() if row]
    assert [row for row in shown if not row.startswith("STATUS")] == [
        f"record {n}" for n in range(200)
    ]
    assert all(row == "STATUS walker: standing" for row in shown if row.startswith("STATUS"))


PLAN = Plan(
    "status",
    (Interval.of_seconds("backward", 10.0), Interval.of_seconds("forward", 10.0)),
)


@pytest.mark.usefixtures("close_rigs")
def test_the_status_line_says_what_the_plan_has_the_walker_do(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, detector=TripAt(15.0))
    runner = attach_session(rig.app, PLAN, record=False)
    walk = scenarios.Sequence([scenarios.Walking(60.0, 0.6, "backward")], seed=1, name="w")
    status = LiveStatus(LiveLine(io.StringIO()))

    def doing() -> str:
        return status.fields(rig.app, walk, runner, 0.0)[1].split(":", 1)[1].strip()

    rig.run_for(1.0)
    assert rig.app.controller.state is SafetyState.STANDBY and doing() == "standing"
    rig.press_reset()
    runner.request("start")
    rig.run_for(1.0)
    assert doing() == "walk backward"
    rig.run_for(11.0)
    assert runner.interval_now() == (1, "forward") and doing() == "walk forward"
    rig.run_for(4.0)
    assert rig.state == "TRIPPED" and doing() == "paused"
    assert walker_doing(SafetyState.ARMED, None, "walk_backward") == "walk backward"
    detach_session(rig.app, runner)


def test_what_child_processes_write_to_stderr_goes_above_the_status_line(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The courier and the dashboard are processes of their own: their log lines come through
    the stderr they inherit, and still each is a line of its own above the status line."""
    term = Terminal()
    line = LiveLine(term)
    line.show("STATUS")
    with stderr_above(line) as terminal:
        child = subprocess.run(
            [sys.executable, "-c", "import sys; sys.stderr.write('child one\\nchild two\\n')"],
            check=True,
        )
        assert child.returncode == 0
        terminal.write("")  # the terminal's own stderr stays usable meanwhile
    line.end()
    assert capfd.readouterr().err == "child one\nchild two\n"
    # The status line was erased before the lines and drawn again after them.
    assert term.getvalue().startswith("\r\x1b[KSTATUS\r\x1b[KSTATUS")
    assert term.getvalue().endswith("STATUS\n")
