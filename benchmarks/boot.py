"""Boot to armed: process start → READY=1 → ARMED on simulated hardware, over a real notify socket.

What is timed, from ``subprocess.Popen`` (the moment systemd would fork the
service) to a datagram arriving on an ``AF_UNIX`` socket named in
``NOTIFY_SOCKET``, exactly as systemd receives them:

* ``READY=1`` from ``python -m launcher.cli run -c CONFIG``, the service's own
  command: imports, config, IMU start-up and the healthy-IMU wait
  (``safety.healthy_before_arm_s``, 0.5 s) until the loop reaches STANDBY;
* ``STATUS=ARMED`` from a child (``--child CONFIG``, below) that builds the
  same app as ``run`` and, like a person standing ready at the treadmill,
  presses the simulated reset button the moment the state is STANDBY.

The arming child runs twice: as configured (the sensor-worn check wants a few
seconds of body signal before it allows arming, so the finger presses again
each second while STANDBY) and with ``worn_check = false``, which times the
start-up itself.

Usage: ``.venv/bin/python benchmarks/boot.py [--runs 10]``. Target: ARMED
under 2 s (start-up itself). Prints the figures; asserts nothing (speed is not a test).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 2.0
TIMEOUT_S = 20.0

CONFIG = """\
[imu]
backend = "simulated"
[gpio]
backend = "simulated"
[storage]
database = "events.db"
[logging]
level = "warning"
"""


def child(config_path: str) -> int:
    """The service's start-up, plus a finger on reset as soon as the monitor is in STANDBY."""
    sys.path.insert(0, str(ROOT))
    from core.clock import RealClock
    from firmware.app import build_app
    from firmware.config import load_config
    from firmware.monitor import Monitor
    from firmware.safety import SafetyState
    from firmware.watchdog import ServiceWatchdog
    from sim.backends import SimulatedGpio

    clock = RealClock()
    app = build_app(load_config(config_path), clock)
    assert isinstance(app.gpio, SimulatedGpio), "the benchmark's config is the simulated rig's"
    finger = app.gpio.button_sim
    assert finger is not None
    stop = threading.Event()
    next_press = 0.0

    def press_when_standby(monitor: Monitor) -> None:
        # Like a person at the machine: press at STANDBY, and again each second the
        # monitor refuses (the sensor-worn check needs a few seconds of body signal).
        nonlocal next_press
        finger.poll()
        state = monitor.controller.state
        now = clock.monotonic()
        if state is SafetyState.STANDBY and now >= next_press:
            next_press = now + 1.0
            finger.press_at(now, now + 0.6)  # held past the chirp (firmware.presses)
        elif state is SafetyState.ARMED:
            stop.set()

    app.monitor.on_iteration.append(press_when_standby)
    app.monitor.on_iteration.append(ServiceWatchdog.from_env())
    try:
        app.start()
        app.monitor.run(stop=stop)
    finally:
        app.close()
    return 0


def _wait_for(sock: socket.socket, wanted: str, started: float) -> float:
    """Seconds from ``started`` to the first datagram with a line starting with ``wanted``."""
    deadline = started + TIMEOUT_S
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(4096).decode()
        except TimeoutError:
            break
        if any(line.startswith(wanted) for line in data.splitlines()):
            return time.monotonic() - started
    raise RuntimeError(f"no {wanted!r} within {TIMEOUT_S:g} s")


def _spawn(argv: list[str], notify: Path, workdir: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, NOTIFY_SOCKET=str(notify), PYTHONPATH=str(ROOT))
    env.pop("WATCHDOG_USEC", None)
    return subprocess.Popen(
        argv, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def measure(argv: list[str], wanted: list[str], workdir: Path) -> list[float]:
    """Spawn ``argv``; seconds from the spawn to each of ``wanted``, in order."""
    notify = workdir / "notify.sock"
    notify.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify))
        started = time.monotonic()
        proc = _spawn(argv, notify, workdir)
        try:
            return [_wait_for(sock, prefix, started) for prefix in wanted]
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=TIMEOUT_S)
            if proc.returncode not in (0, -signal.SIGTERM):
                sys.stderr.write(err.decode(errors="replace"))


def _figures(name: str, times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return (
        f"{name}: median {statistics.median(times):.3f} s, p90 {p90:.3f} s, "
        f"min {ordered[0]:.3f} s, max {ordered[-1]:.3f} s (n={len(times)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--child", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="retroguard-boot-") as tmp:
        workdir = Path(tmp)
        config = workdir / "config.toml"
        config.write_text(CONFIG)
        unchecked = workdir / "unchecked.toml"
        unchecked.write_text(CONFIG + "[safety]\nworn_check = false\n")
        service = [python, "-m", "launcher.cli", "run", "-c", str(config)]
        armer = [python, str(Path(__file__).resolve()), "--child", str(config)]
        armer_unchecked = [python, str(Path(__file__).resolve()), "--child", str(unchecked)]
        service_ready = [measure(service, ["READY=1"], workdir)[0] for _ in range(args.runs)]
        both = [measure(armer, ["READY=1", "STATUS=ARMED"], workdir) for _ in range(args.runs)]
        fast = [
            measure(armer_unchecked, ["READY=1", "STATUS=ARMED"], workdir) for _ in range(args.runs)
        ]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, simulated hardware")
    print(_figures("retroguard run:   spawn -> READY=1 (STANDBY)", service_ready))
    print(_figures("arming child:     spawn -> READY=1 (STANDBY)", [r for r, _ in both]))
    armed = [a for _, a in both]
    print(_figures("arming child:     spawn -> STATUS=ARMED     ", armed))
    unchecked_armed = [a for _, a in fast]
    print(_figures("worn_check off:   spawn -> STATUS=ARMED     ", unchecked_armed))
    verdict = "met" if statistics.median(unchecked_armed) < TARGET_S else "MISSED"
    print(
        f"target: ARMED under {TARGET_S:g} s without the sensor-worn check — {verdict}; "
        "with it, arming also waits for a body signal (docs/safety.md: no verdict before 4 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
