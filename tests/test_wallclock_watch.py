"""Whether the wall clock is synchronised is asked off the safety loop's thread.

Under the monitor's unit ``adjtimex`` is refused (tests/test_wallclock_sandbox.py), and the
answer is a ``stat`` of systemd-timesyncd's flag file in ``/run``: no disk, but a filesystem
call that can wait behind a lock of the kernel's, and it used to be made on the loop's thread
(safety rule 3) whenever a state change or an event was stamped, and at each guided session's
record. Now a thread of the app asks (:class:`core.wallclock.SyncWatch`) and the loop reads
its last answer. Here the host's answer is a stand-in that notes who asked, reading a flag
file of the test's.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

import pytest

from core.clock import SimClock
from core.protocol.events import EventType
from core.wallclock import SYNC_VALID_S, FakeWallClock, SyncWatch, SystemWallClock
from firmware.safety import HELP_REPEAT_S
from firmware.session.plan import Interval, Plan
from firmware.session.runner import SessionState, attach_session, detach_session
from firmware.storage.sessions import load_sessions
from tests.app_support import WAIT, armed_rig, close_rigs  # noqa: F401 - fixture
from tests.test_event_wall_clock import _help

FRIDAY = dt.datetime(2026, 11, 27, 18, 0, tzinfo=dt.UTC)
PLAN = Plan(
    "clock",
    (Interval.of_seconds("backward", 30.0), Interval.of_seconds("backward", 60.0)),
)


class Asked:
    """Stands in for the host's answer (:meth:`SystemWallClock.synchronized`: under the unit,
    whether timesyncd's flag file exists): whether ``flag`` exists, noting each thread that
    asked."""

    def __init__(self, flag: Path) -> None:
        self.flag = flag
        self.threads: dict[int, str] = {}
        self.by_watch = 0
        self._changed = threading.Condition()

    def synchronized(self) -> bool:
        with self._changed:
            thread = threading.current_thread()
            self.threads[threading.get_ident()] = thread.name
            if thread.name == "retroguard-clock":
                self.by_watch += 1
            self._changed.notify_all()
        return self.flag.exists()

    def watch_read_since(self) -> None:
        """Wait until the watch has asked, and taken in the answer, since this call: it has
        asked twice more (its asks follow one another on its one thread)."""
        with self._changed:
            then = self.by_watch
            assert self._changed.wait_for(lambda: self.by_watch >= then + 2, WAIT)


@pytest.mark.usefixtures("close_rigs")
def test_the_loop_thread_never_asks_whether_the_clock_is_synchronised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = tmp_path / "synchronized"
    asked = Asked(flag)
    monkeypatch.setattr(SystemWallClock, "synchronized", lambda self: asked.synchronized())
    loop = threading.get_ident()  # the rig runs the loop on this thread, as `run` does
    rig = armed_rig(tmp_path, host_wall=True)  # no wall clock given: the host's, watched
    start = {s.event.type: s.event for s in rig.app.stored_events()}[EventType.START]
    assert start.wall_unsynced  # no flag: not synchronised
    assert loop not in asked.threads, "the loop's thread asked the host itself"

    # a guided session's records read it too (at each interval's end, and its end)
    runner = attach_session(rig.app, PLAN)
    runner.request("start")
    rig.run_for(35.0)  # the first interval's record, the clock not synchronised
    flag.touch()  # timesyncd's first synchronisation
    asked.watch_read_since()
    rig.run_for(60.0)
    assert runner.state is SessionState.FINISHED
    detach_session(rig.app, runner)
    (stored,) = load_sessions(rig.app.config.storage.database)
    assert not stored.record.wall_unsynced  # seen synchronised at its end
    assert not _help(rig).wall_unsynced  # an event stamped now says so too

    flag.unlink()  # (a reboot would remove it: /run)
    asked.watch_read_since()
    # the stamper's trust in its last read has ended, and a new call for help is sent
    rig.run_for(max(SYNC_VALID_S, HELP_REPEAT_S) + 0.5)
    assert _help(rig).wall_unsynced

    assert "retroguard-clock" in asked.threads.values()
    assert loop not in asked.threads, "the loop's thread asked the host itself"


def test_an_answer_read_before_a_step_of_the_clock_is_not_trusted_after_it() -> None:
    """``date -s`` or NTP's first setting: what the watch read before it does not say the
    clock is synchronised after it, until the watch has read again."""
    wall = FakeWallClock(SimClock(), FRIDAY, synced=False)
    watch = SyncWatch(wall)
    assert not watch.synchronized()  # nothing read yet
    watch.read_now()
    assert not watch.synchronized()
    wall.synced = True
    assert not watch.synchronized()  # the last answer stands until the next read
    watch.read_now()
    assert watch.synchronized()
    assert watch.now() == wall.now() and watch.offset() == wall.offset()
    wall.step(-3600.0, synced=False)
    wall.synced = True  # even one saying synchronised again at once: read before the step
    assert not watch.synchronized()
    watch.read_now()
    assert watch.synchronized()


def test_a_read_that_fails_is_not_synchronised_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Refused(FakeWallClock):
        def synchronized(self) -> bool:
            raise PermissionError(13, "Permission denied", "/run/systemd/timesync/synchronized")

    wall = Refused(SimClock(), FRIDAY)
    watch = SyncWatch(wall)
    with caplog.at_level(logging.ERROR, logger="core.wallclock"):
        for _ in range(3):
            watch.read_now()
    assert not watch.synchronized()
    assert len(caplog.records) == 1
    assert "cannot tell whether the wall clock is synchronised" in caplog.records[0].message


def test_the_first_answer_is_in_when_start_returns_and_the_thread_stops() -> None:
    """App.start waits for it before the start event is stamped with it."""
    wall = FakeWallClock(SimClock(), FRIDAY, synced=True)
    watch = SyncWatch(wall, every_s=3600.0)
    assert watch.start(first_read_s=WAIT)
    assert watch.synchronized()
    (thread,) = [t for t in threading.enumerate() if t.name == "retroguard-clock"]
    watch.stop()
    assert not thread.is_alive()
