"""``retroguard run`` stops on SIGTERM whatever its loop thread was doing when it came.

The handler runs on the loop thread, between two of its bytecodes. It used to log, and a
signal that came while the loop was queuing a log record (the queue's lock held, and that lock
is not reentrant) deadlocked the process: it hung, and every later SIGTERM hung it again, so
systemd could only kill it. A race of a few bytecodes, seen once; here the signal is raised at
that very instant, from inside the queue's lock, so the test does not depend on luck.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUN_WITH_SIGTERM_IN_THE_LOG_QUEUE = """
import os, queue, signal, sys, threading
from core.logsetup import LOG_QUEUE_RECORDS
from launcher.cli import main

original = queue.Queue._put
fired = []


def _put(self, item):  # Queue calls it with its lock held
    if (
        not fired
        and self.maxsize == LOG_QUEUE_RECORDS  # the loop's log queue
        and threading.current_thread() is threading.main_thread()  # the loop thread
        and item is not None
        and item.getMessage().startswith("state STANDBY")  # running, the courier up
    ):
        fired.append(True)
        os.write(2, b"raising SIGTERM inside the log queue\\n")
        signal.raise_signal(signal.SIGTERM)  # its Python handler runs now, the lock held
    original(self, item)


queue.Queue._put = _put
sys.exit(main(["run", "-c", sys.argv[1]]))
"""

STOP_WITHIN_S = 60.0
"""Generous: the monitor stops in about a second."""


def test_sigterm_while_the_loop_queues_a_log_record_stops_the_monitor(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\ndatabase = "{tmp_path / "events.db"}"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNTIME_DIRECTORY": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_WITH_SIGTERM_IN_THE_LOG_QUEUE, str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = proc.communicate(timeout=STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # a second one, as systemd would not: still hung?
        try:
            _, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        raise AssertionError(
            f"retroguard run did not stop within {STOP_WITHIN_S:g} s of SIGTERM:\n{err}"
        ) from None
    assert "raising SIGTERM inside the log queue" in err, err  # the race was run
    assert proc.returncode == 0, err
    assert "signal 15: stopping" in err
    assert "reason=monitor stopped" in err  # a clean stop, its event stored


RUN_ARMED_WITH_A_SESSION_STOP_THAT_RAISES = """
import signal, sys
import firmware.app
from firmware.session.runner import SessionRunner
from launcher.cli import main

apps = []
build_app = firmware.app.build_app


def build(*args, **kwargs):
    app = build_app(*args, **kwargs)
    apps.append(app)
    done = []

    def press_then_stop(monitor):
        controller = monitor.controller
        now = monitor.clock.monotonic()
        if controller.state.value == "STANDBY" and app.link.storage_ok and not done:
            done.append("pressed")
            controller.on_button(now, now)  # the controller's input for a reset press
        elif controller.state.value == "ARMED" and done == ["pressed"]:
            done.append("stopped")
            signal.raise_signal(signal.SIGTERM)

    app.monitor.on_iteration.append(press_then_stop)
    return app


def stop(self, now):
    print(f"session stop: relay holding={apps[0].gpio.relay.holding}", file=sys.stderr, flush=True)
    raise RuntimeError("bug in the session's stop")


firmware.app.build_app = build
SessionRunner.stop = stop
sys.exit(main(["run", "-c", sys.argv[1]]))
"""


def test_a_session_stop_that_raises_still_releases_first_and_closes(tmp_path: Path) -> None:
    """SIGTERM while ARMED, and the session's stop raises. The relay is released before the
    session's steps (which may take seconds), and the app is closed whatever they do: the
    stop event reaches the courier's store. Before, the relay was still held when the
    session stopped, and a raising stop skipped app.close() altogether."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage]\ndatabase = "{tmp_path / "events.db"}"\n[safety]\nworn_check = false\n'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNTIME_DIRECTORY": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", RUN_ARMED_WITH_A_SESSION_STOP_THAT_RAISES, str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=STOP_WITHIN_S,
        check=False,
    )
    err = proc.stderr
    assert "state ARMED" in err, err
    assert "session stop: relay holding=False" in err, err
    assert "bug in the session's stop" in err, err
    assert proc.returncode != 0, err  # the error is not swallowed
    assert "reason=monitor stopped" in err, err  # closed all the same: its event stored
    # and the session detached all the same: its control socket closed and removed (a raising
    # stop skipped the detach, leaving the socket, the voice and the gait thread behind)
    assert not (tmp_path / "session.sock").exists(), err
