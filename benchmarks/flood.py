"""Can the network slow the relay heartbeat? Heartbeat gaps, quiet against a command flood.

The monitor runs as ``retroguard run`` would (its own process, the courier
as a child process, heartbeat relay drive on simulated pins, MQTT to a real
Mosquitto on loopback), armed by a simulated finger. A load generator in a
process of its own then floods the device's topics: commands as fast as
the broker takes them (``--commands``, default 10,000) and 1 MB payloads
(``--big``, default 20). The monitor records the time of every heartbeat
edge on the relay pin (``CLOCK_MONOTONIC``, shared by every process), and
the figures compare the gaps between edges in the quiet window before the
flood with those during it, in the same run. The hold circuit drops the
relay after ``gpio.heartbeat_hold_s`` (50 ms) without an edge, so every gap
at or above it would be a treadmill stop the walker did not cause; the
target is max < 25 ms on a 2-core development machine.

It also prints the CPU each process used in each window (``/proc``), so the
cost of the flood lands where it should: on the courier, not the loop.

    .venv/bin/python benchmarks/flood.py [--seconds 15] [--flood-seconds 15] [--commands 10000]

Prints figures; asserts nothing (speed is not a test).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOLD_S = 0.05
REALTIME_PRIORITY = 20
"""The unit's CPUSchedulingPriority (SCHED_FIFO, reset on fork: the courier runs normally)."""
TARGET_MAX_S = 0.025

CONFIG = """\
[device]
id = "flood-1"
[imu]
backend = "simulated"
[gpio]
backend = "simulated"
[storage]
database = "events.db"
[mqtt]
host = "127.0.0.1"
port = {port}
telemetry_interval_s = 1.0
discovery = false
[logging]
level = "warning"
"""


def monitor_child(config_path: str, out_path: str) -> int:
    """The service's monitor, armed at STANDBY; on SIGTERM writes every heartbeat edge time."""
    sys.path.insert(0, str(ROOT))
    from core.clock import RealClock
    from firmware.app import build_app, favour_realtime_thread
    from firmware.config import load_config
    from firmware.monitor import Monitor
    from firmware.safety import SafetyState
    from sim.backends import SimulatedGpio

    config = load_config(config_path)
    favour_realtime_thread()
    clock = RealClock()
    app = build_app(config, clock)
    gpio = app.gpio
    assert isinstance(gpio, SimulatedGpio) and gpio.button_sim is not None
    finger = gpio.button_sim
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    edges: list[float] = []
    pressed = False
    next_press = 0.0
    hold = gpio.relay.hold

    def hold_and_record() -> None:
        edges.append(time.monotonic())  # each hold() is one heartbeat edge on the pin
        hold()

    gpio.relay.hold = hold_and_record  # type: ignore[method-assign]

    def press_when_standby(monitor: Monitor) -> None:
        # Press at STANDBY, again each second while the sensor-worn check still waits for
        # a body; never again once armed (a trip during the run must stay a trip).
        nonlocal pressed, next_press
        finger.poll()
        state = monitor.controller.state
        now = clock.monotonic()
        if state is SafetyState.ARMED:
            pressed = True
        elif state is SafetyState.STANDBY and not pressed and now >= next_press:
            next_press = now + 1.0
            finger.press_at(now, now + 0.6)  # held past the chirp (firmware.presses)

    app.monitor.on_iteration.append(press_when_standby)
    try:
        app.start()
        app.monitor.run(stop=stop)
    finally:
        app.close()
        Path(out_path).write_text(json.dumps({"edges": edges, "state": app.controller.state.value}))
    return 0


def flood_child(port: int, device: str, commands: int, big: int, seconds: float) -> int:
    """The load generator: commands as fast as the broker takes them, and 1 MB payloads,
    ``commands`` of them and then more until ``seconds`` have passed."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="flood-generator")
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    blob = b"x" * (1 << 20)
    every = max(1, commands // max(1, big))
    end = time.monotonic() + seconds
    i = 0
    while i < commands or time.monotonic() < end:
        info = client.publish(f"retroguard/{device}/cmd/ping", f'{{"id":"f{i}"}}', qos=1)
        if i % every == 0 and i // every < big:
            client.publish(f"retroguard/{device}/cmd/self_test", blob, qos=1)
        if i % 500 == 499:
            info.wait_for_publish(10)  # keep the broker's queue, not ours, as the bottleneck
        i += 1
    client.disconnect()
    client.loop_stop()
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def gaps_in(edges: list[float], start: float, end: float) -> list[float]:
    inside = [t for t in edges if start <= t <= end]
    return [b - a for a, b in itertools.pairwise(inside)]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def describe(name: str, gaps: list[float]) -> str:
    if not gaps:
        return f"{name}: no heartbeat edges"
    return (
        f"{name}: {len(gaps)} gaps, median {statistics.median(gaps) * 1000:.1f} ms, "
        f"p99 {pct(gaps, 0.99) * 1000:.1f} ms, p99.9 {pct(gaps, 0.999) * 1000:.1f} ms, "
        f"max {max(gaps) * 1000:.1f} ms, >= {HOLD_S * 1000:.0f} ms (a stop): "
        f"{sum(g >= HOLD_S for g in gaps)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="quiet window before the flood")
    parser.add_argument("--commands", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=20, help="1 MB payloads during the flood")
    parser.add_argument("--flood-seconds", type=float, default=15.0)
    parser.add_argument(
        "--no-realtime",
        dest="realtime",
        action="store_false",
        help="run the monitor at normal priority instead of the unit's SCHED_FIFO",
    )
    parser.add_argument("--monitor-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--flood-child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.monitor_child:
        return monitor_child(*args.monitor_child)
    if args.flood_child:
        port, device, commands, big, seconds = args.flood_child
        return flood_child(int(port), device, int(commands), int(big), float(seconds))

    sys.path.insert(0, str(ROOT))
    from tools.broker import Mosquitto

    me = str(Path(__file__).resolve())
    with Mosquitto() as broker, tempfile.TemporaryDirectory(prefix="retroguard-flood-") as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text(CONFIG.format(port=broker.port))
        out = Path(tmp) / "edges.json"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        argv = [sys.executable, me, "--monitor-child", str(config), str(out)]
        if args.realtime:  # as systemd/retroguard.service runs it
            argv = ["chrt", "--fifo", "--reset-on-fork", str(REALTIME_PRIORITY), *argv]
        monitor = subprocess.Popen(argv, cwd=tmp, env=env)
        time.sleep(3.0)  # start-up and arming: not measured
        courier = children_of(monitor.pid)
        quiet_start = time.monotonic()
        cpu0 = (cpu_seconds(monitor.pid), sum(cpu_seconds(p) for p in courier))
        time.sleep(args.seconds)
        quiet_end = time.monotonic()
        cpu1 = (cpu_seconds(monitor.pid), sum(cpu_seconds(p) for p in courier))
        flood = subprocess.Popen(
            [sys.executable, me, "--flood-child", str(broker.port), "flood-1",
             str(args.commands), str(args.big), str(args.flood_seconds)],
            env=env,
        )  # fmt: skip
        flood.wait()
        time.sleep(1.0)  # what the broker still delivers
        flood_end = time.monotonic()
        cpu2 = (cpu_seconds(monitor.pid), sum(cpu_seconds(p) for p in courier))
        monitor.send_signal(signal.SIGTERM)
        monitor.wait(60)
        result = json.loads(out.read_text())
    edges = result["edges"]
    quiet = gaps_in(edges, quiet_start, quiet_end)
    flooded = gaps_in(edges, quiet_end, flood_end)
    quiet_s, flood_s = quiet_end - quiet_start, flood_end - quiet_end
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, monitor "
        f"{f'SCHED_FIFO {REALTIME_PRIORITY}' if args.realtime else 'normal priority'}"
    )
    print(describe(f"quiet {quiet_s:.1f} s", quiet))
    print(
        describe(f"flood {flood_s:.1f} s (>= {args.commands} commands, {args.big} x 1 MB)", flooded)
    )
    loop_quiet, loop_flood = (cpu1[0] - cpu0[0]) / quiet_s, (cpu2[0] - cpu1[0]) / flood_s
    courier_quiet, courier_flood = (cpu1[1] - cpu0[1]) / quiet_s, (cpu2[1] - cpu1[1]) / flood_s
    print(
        f"CPU, % of one core: monitor quiet {100 * loop_quiet:.1f}, flood {100 * loop_flood:.1f}; "
        f"courier quiet {100 * courier_quiet:.1f}, flood {100 * courier_flood:.1f}"
    )
    if flooded and quiet:
        print(
            f"flood / quiet: max gap {max(flooded) / max(quiet):.2f}x, p99.9 "
            f"{pct(flooded, 0.999) / pct(quiet, 0.999):.2f}x; target max < "
            f"{TARGET_MAX_S * 1000:.0f} ms: {'met' if max(flooded) < TARGET_MAX_S else 'MISSED'}"
        )
    print(f"monitor ended in {result['state']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
