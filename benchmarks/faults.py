"""The fault soak: the real pieces on loopback, faults injected, a table of what survived.

Every scenario runs the real processes: a Mosquitto (``tools.broker``), the
caregiver service (``python -m launcher.cli caregiver``) and the monitor as
``retroguard run`` runs it (its own process at the unit's ``SCHED_FIFO``
priority, the courier as its child process, heartbeat relay drive on
simulated pins with the hold-circuit model, relay contact read back). The
monitor runs in a child mode of this script that adds only what a person and
a test rig would: a finger on the reset button (``SIGUSR1``), a fall on
demand (``SIGUSR2``: the next sample is a fall, through the real controller),
and a status page in shared memory (state, heartbeat edges, contact changes,
presses) that outlives a ``kill -9``. Every event the loop hands to the
courier is appended to a log first, so "emitted" is what the loop decided,
not what reached a disk.

Faults: ``kill -9`` of the monitor (then a restart, as systemd does once the
unit's processes are gone), ``SIGSTOP``/``SIGCONT`` of the monitor (a hang),
``kill -9`` of the broker and a restart (persistence on, and off: a broker
that lost its database), ``kill -9`` of the caregiver service and of the
courier, a full disk under the device and under the caregiver (``--disk``:
by default a 4 MB tmpfs mounted by this script, filled with a file until
``ENOSPC`` and freed later, which needs root and a ``mount`` that works, as
on the development machine; where ``mount`` is refused, or with ``--disk
rlimit``, the writing process gets ``RLIMIT_FSIZE`` 1 byte instead, so every
write fails; the table's notes say which), a damaged
device database at start (each kind of ``tests/storage_support.DAMAGE``,
plus an empty file and garbage ``-wal``/``-shm`` companions, which SQLite
itself copes with), and a command flood (``benchmarks/flood.py``'s load
generator: pings as fast as the broker takes them and 1 MB payloads).

For each scenario the table says:

* ``tries`` — faults injected;
* ``release ok/exp`` — relay releases within the hold time / releases the
  fault must cause (kill or hang while armed); ``missed``; ``worst ms`` from
  the fault to the contact opening (for a kill: the last heartbeat edge plus
  the hold time, the model's own rule, against the moment of the kill; for
  a hang: the opening the model recorded, against the ``SIGSTOP``);
* ``stops`` — heartbeat gaps at or over the hold time while armed that no
  injected hang explains (each would stop the belt under a walker; each is
  named below the table with the scenario's last action before it);
* ``no-press`` — armings without a press of the local button (must be 0);
* ``alerts`` emitted by the loop (every event type the device keeps until a
  receipt: alerts, faults and what closes them) / ``stored`` by the caregiver
  service (its database, by id) / ``lost`` (a lost one is named below the
  table, with how long before a kill -9 the loop had handed it over) /
  duplicate deliveries seen on the wire (``dup wire``, harmless: receivers
  drop them by id) / duplicates *stored* (an event under a second id: one
  the loop never made, or a monitor's death reported twice);
* ``faults`` reported / injected: a FAULT event committed by the caregiver
  service, or a storage fault in telemetry, within the fault's window, for
  the faults the device must report (monitor kill: the next run's "stopped
  without shutting down"; a hang over the hold time: the loop's own; disk
  full; a damaged database). Broker and caregiver kills are not the device's
  to report (the dashboard shows what it has), and a killed courier is
  replaced by the supervisor with nothing lost (logged, not paged);
* ``recovery s`` — median and max from the fault's end (restart, resume,
  space freed) until the caregiver has every alert emitted so far and the
  monitor is armed or can be armed; then a press arms it.

Targets: 0 lost, 0 missed releases, 0 unreported faults, 0 stops, 0 no-press.

    .venv/bin/python benchmarks/faults.py [--quick] [--only NAME,...] [--tries N|NAME=N,...]

``--quick`` injects each fault once or twice (every damage kind once) and
takes about 3 minutes; by default monitor kills 20 times, every hang length
once, broker and caregiver kills 3 times, courier kills 5, disks 2, one
flood of 10,000 commands. ``--tries 5`` sets every count, ``--tries
monitor-kill=40,broker-kill=5`` some. Prints the table; exits 1 when a
target is missed. ``--json FILE`` also writes the rows; ``--keep`` keeps
each scenario's directory (logs, databases) for a look.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import datetime as dt
import functools
import json
import math
import mmap
import os
import random
import resource
import shutil
import signal
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.protocol.events import PROTECTED_TYPES  # noqa: E402
from tools.broker import BrokerError, stop_process  # noqa: E402

if TYPE_CHECKING:
    from caregiver.storage import Store

HOLD_S = 0.05
"""``gpio.heartbeat_hold_s``: the hold circuit drops the relay this long after the last edge."""
REALTIME_PRIORITY = 20
"""The unit's CPUSchedulingPriority (SCHED_FIFO, reset on fork: the courier runs normally)."""
DEVICE = "soak-1"
RECEIPT_RETRY_S = 3.0
RECONNECT_MAX_S = 3.0
PRESS_S = 0.6
RECOVERY_TIMEOUT_S = 60.0
UNCLEAN = "stopped without shutting down"
"""In the FAULT the courier raises for a monitor that died (reported once per death)."""
GAPS_LOG = "gaps.log"
"""Beside the emitted log: each heartbeat gap at or over the hold time while armed."""
DISK_MB = 4
"""The small disk under a database in the disk-full scenarios."""
PROTECTED = {kind.value for kind in PROTECTED_TYPES}
"""Event types the device keeps until a consumer's receipt: the alerts this soak counts."""

DEVICE_CONFIG = """\
[device]
id = "{device}"
[imu]
backend = "simulated"
[gpio]
backend = "simulated"
heartbeat_hold_s = {hold}
[storage]
database = "{database}"
[mqtt]
host = "127.0.0.1"
port = {port}
telemetry_interval_s = 1.0
receipt_retry_s = {retry}
reconnect_max_s = {reconnect_max}
discovery = false
[logging]
level = "warning"
"""

CAREGIVER_CONFIG = """\
[server]
host = "127.0.0.1"
port = {web_port}
database = "{database}"
[mqtt]
host = "127.0.0.1"
port = {port}
"""

# ------------------------------------------------------------------ the monitor's status page

STATES = ("STARTING", "STANDBY", "ARMED", "TRIPPED", "FAULT")
FIELDS = (
    "pid",
    "state",
    "iterations",
    "last_edge",
    "edges",
    "contact",
    "last_open",
    "last_close",
    "opens",
    "closes",
    "armed_entries",
    "presses",
    "armable_since",
    "max_gap",
    "gaps_over_hold",
    "storage_ok",
    "loop_t",
    "falls",
)
PAGE = struct.Struct(f"<{len(FIELDS)}d")
INDEX = {name: i for i, name in enumerate(FIELDS)}


def initial_values() -> list[float]:
    values = [0.0] * len(FIELDS)
    values[INDEX["armable_since"]] = math.nan
    values[INDEX["storage_ok"]] = -1.0
    return values


@dataclass(frozen=True)
class Status:
    """One read of a monitor's status page."""

    values: tuple[float, ...]

    def __getattr__(self, name: str) -> float:
        try:
            return self.values[INDEX[name]]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def state_name(self) -> str:
        return STATES[int(self.values[INDEX["state"]])]

    @property
    def armable(self) -> bool:
        return not math.isnan(self.values[INDEX["armable_since"]])


class StatusPage:
    """A small file mapped shared by the monitor child and the harness: it outlives a kill -9."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        if create:
            path.write_bytes(PAGE.pack(*initial_values()))
        self._fd = os.open(path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, PAGE.size)

    def write(self, values: list[float]) -> None:
        PAGE.pack_into(self._map, 0, *values)

    def read(self) -> Status:
        return Status(PAGE.unpack_from(self._map, 0))

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


# --------------------------------------------------------------------- the monitor child


def monitor_child(config_path: str, status_path: str, emitted_path: str) -> int:
    """``retroguard run`` plus a finger on reset (SIGUSR1), a fall on demand (SIGUSR2), the
    status page, and a log of every event handed to the courier."""
    from core.clock import RealClock
    from core.logsetup import setup_logging
    from core.mounting import Mounting, up_vector
    from core.protocol.events import Event
    from core.samples import ImuSample
    from firmware.app import build_app, favour_realtime_thread
    from firmware.config import load_config
    from firmware.detection.base import Detection, DetectionKind, Detector
    from firmware.detection.factory import build_detector
    from firmware.link.endpoint import CourierLink
    from firmware.monitor import Monitor
    from firmware.safety import SafetyState
    from sim.backends import SimulatedGpio

    config = load_config(config_path)
    setup_logging(config.logging.level)
    favour_realtime_thread()
    clock = RealClock()
    offset = time.monotonic() - clock.monotonic()
    """The loop's clock starts at 0; the harness, the courier and the status page use the
    host's monotonic clock (the same in every process)."""
    falls: collections.deque[int] = collections.deque()
    presses: collections.deque[int] = collections.deque()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: presses.append(1))
    signal.signal(signal.SIGUSR2, lambda *_: falls.append(1))

    class FallOnDemand:
        """The configured detector, plus one fall at the next sample after each SIGUSR2."""

        def __init__(self, inner: Detector) -> None:
            self.inner = inner

        def update(self, sample: ImuSample) -> tuple[Detection, ...]:
            found = tuple(self.inner.update(sample))
            if falls:
                falls.popleft()
                values[INDEX["falls"]] += 1
                fall = Detection(DetectionKind.FALL, sample.t, "soak: fall on demand", {})
                return (*found, fall)
            return found

        def reset(self) -> None:
            self.inner.reset()

    emitted = os.open(emitted_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    gaps = os.open(Path(emitted_path).with_name(GAPS_LOG), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    handover = CourierLink.submit

    def record_then_submit(link: CourierLink, event: Event) -> None:
        t = event.t_monotonic + offset  # on the host's monotonic clock, as the courier's are
        os.write(
            emitted, f"{event.id} {event.type.value} {t:.6f} {time.monotonic():.6f}\n".encode()
        )
        handover(link, event)

    CourierLink.submit = record_then_submit  # type: ignore[method-assign,assignment]

    page = StatusPage(Path(status_path))
    values = initial_values()
    values[INDEX["pid"]] = os.getpid()
    up = up_vector(Mounting.parse(config.imu.mounting))
    detector = FallOnDemand(build_detector(config.detector, config.imu.sample_rate_hz, up=up))
    app = build_app(config, clock, detector=detector)
    gpio = app.gpio
    assert isinstance(gpio, SimulatedGpio) and gpio.button_sim is not None
    assert gpio.hardware is not None
    finger = gpio.button_sim
    hold = gpio.relay.hold
    last_armed_edge: list[float | None] = [None]

    def hold_and_record() -> None:
        hold()
        t = time.monotonic()
        previous = last_armed_edge[0]
        if previous is not None:
            gap = t - previous
            values[INDEX["max_gap"]] = max(values[INDEX["max_gap"]], gap)
            if gap >= HOLD_S:  # rare: the write costs the loop nothing in a healthy run
                values[INDEX["gaps_over_hold"]] += 1
                os.write(gaps, f"{previous:.6f} {t:.6f}\n".encode())
        last_armed_edge[0] = t
        values[INDEX["last_edge"]] = t
        values[INDEX["edges"]] += 1

    gpio.relay.hold = hold_and_record  # type: ignore[method-assign]

    def on_contact(t: float, closed: bool) -> None:
        t += offset
        values[INDEX["contact"]] = 1.0 if closed else 0.0
        if closed:
            values[INDEX["closes"]] += 1
            values[INDEX["last_close"]] = t
        else:
            values[INDEX["opens"]] += 1
            values[INDEX["last_open"]] = t
        page.write(values)

    gpio.hardware.add_contact_listener(on_contact)
    armed_before = [False]

    def rig(monitor: Monitor) -> None:
        finger.poll()
        now = clock.monotonic()
        host_now = now + offset
        state = monitor.controller.state
        if presses and not finger.is_down and not finger.pending:
            presses.popleft()
            values[INDEX["presses"]] += 1
            finger.press_at(now, now + PRESS_S)
        armed = state is SafetyState.ARMED
        if armed and not armed_before[0]:
            values[INDEX["armed_entries"]] += 1
        if not armed:
            last_armed_edge[0] = None  # gaps are measured within one armed stretch
        armed_before[0] = armed
        armable = state in (SafetyState.STANDBY, SafetyState.TRIPPED) and (
            app.link.storage_problem(now) is None
        )
        if not armable:
            values[INDEX["armable_since"]] = math.nan
        elif math.isnan(values[INDEX["armable_since"]]):
            values[INDEX["armable_since"]] = host_now
        storage = app.link.storage_ok
        values[INDEX["storage_ok"]] = -1.0 if storage is None else float(storage)
        values[INDEX["state"]] = STATES.index(state.value)
        values[INDEX["iterations"]] += 1
        values[INDEX["loop_t"]] = host_now
        page.write(values)

    app.monitor.on_iteration.append(rig)
    try:
        app.start()
        app.monitor.run(stop=stop)
    finally:
        app.close()
        values[INDEX["state"]] = STATES.index(app.controller.state.value)
        page.write(values)
    return 0


# ------------------------------------------------------------------------------ processes


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie does not count); reaps it when it is ours."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid and stat[0] != "Z":
                found.append(int(entry.name))
    return found


def become_subreaper() -> None:
    """Orphaned couriers (their monitor killed) become our children, so we can reap them."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def wait_until(predicate: Callable[[], bool], timeout: float, period: float = 0.02) -> float | None:
    """Poll ``predicate`` until it holds; the monotonic time it first held, or None."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return time.monotonic()
        if time.monotonic() >= deadline:
            return None
        time.sleep(period)


class SoakError(RuntimeError):
    """A piece did not come up, or a step the scenario relies on did not happen."""


class MonitorProcess:
    """The monitor child (``retroguard run`` on simulated hardware), restartable."""

    def __init__(self, workdir: Path, config: Path, emitted: Path) -> None:
        self.workdir = workdir
        self.config = config
        self.emitted = emitted
        self.runs = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.page: StatusPage | None = None
        self.log = workdir / "monitor.log"

    def start(self) -> float:
        self.runs += 1
        status = self.workdir / f"status-{self.runs}.bin"
        self.page = StatusPage(status, create=True)
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--monitor-child",
            str(self.config),
            str(status),
            str(self.emitted),
        ]
        if shutil.which("chrt") and os.geteuid() == 0:  # as systemd/retroguard.service runs it
            argv = ["chrt", "--fifo", "--reset-on-fork", str(REALTIME_PRIORITY), *argv]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, cwd=self.workdir, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL
            )
        return time.monotonic()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def status(self) -> Status:
        assert self.page is not None
        return self.page.read()

    def looped_after(self, t: float) -> bool:
        """Whether the loop has run since monotonic time ``t`` (a condition to wait for)."""
        return self.status().loop_t > t

    def courier_replaced(self, old: int | None) -> bool:
        """Whether a courier other than ``old`` runs now (a condition to wait for)."""
        return self.courier_pid() not in (None, old)

    def courier_pid(self) -> int | None:
        for child in children_of(self.pid):
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"firmware.courier" in cmdline:
                return child
        return None

    def wait_state(self, *names: str, timeout: float = 20.0) -> bool:
        return wait_until(lambda: self.status().state_name in names, timeout) is not None

    def press(self) -> None:
        os.kill(self.pid, signal.SIGUSR1)

    def fall(self) -> None:
        os.kill(self.pid, signal.SIGUSR2)

    def arm(self, timeout: float = 20.0) -> bool:
        """Press reset until ARMED (a press is ignored before STANDBY, refused on a full disk)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status().state_name == "ARMED":
                return True
            if self.status().state_name in ("STANDBY", "TRIPPED"):
                self.press()
                if wait_until(lambda: self.status().state_name == "ARMED", PRESS_S + 0.5):
                    return True
            else:
                time.sleep(0.05)
        return False

    def trip(self, timeout: float = 5.0) -> bool:
        """A fall while armed: TRIPPED (the relay released by the controller)."""
        self.fall()
        return self.wait_state("TRIPPED", "FAULT", timeout=timeout)

    def kill(self) -> float:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        self.proc.wait()
        return killed

    def stop(self, timeout: float = 30.0) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
        stop_process(proc, timeout)
        self.proc = None


class CaregiverProcess:
    """``retroguard caregiver -c CONFIG`` in its own process; its database read beside it."""

    def __init__(self, workdir: Path, broker_port: int, database: Path) -> None:
        from tools.broker import free_port

        self.workdir = workdir
        self.database = database
        self.config = workdir / "caregiver.toml"
        self.config.write_text(
            CAREGIVER_CONFIG.format(web_port=free_port(), database=database, port=broker_port)
        )
        self.log = workdir / "caregiver.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._store: Store | None = None

    def start(self, timeout: float = 30.0) -> float:
        offset = self.log.stat().st_size if self.log.exists() else 0
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "launcher.cli", "caregiver", "-c", str(self.config)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        started = time.monotonic()

        def connected() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise SoakError(f"the caregiver service exited:\n{self.tail()}")
            with self.log.open("rb") as f:
                f.seek(offset)
                return b"connected to the broker" in f.read()

        if wait_until(connected, timeout, period=0.05) is None:
            raise SoakError(f"the caregiver service did not connect:\n{self.tail()}")
        return started

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def kill(self) -> float:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        self.proc.wait()
        self.proc = None
        return killed

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 20)
        self.proc = None

    def events(self) -> list[Received]:
        """Every event of the soak's device the service has committed, read through the
        service's own store (one connection for the scenario: WAL lets it read beside the
        service, and a killed service leaves it valid)."""
        from caregiver.storage import Store
        from caregiver.storage.faults import StorageFault

        try:
            if self._store is None:
                if not self.database.exists():
                    return []
                self._store = Store(self.database)
            with self._store.transaction() as tx:
                stored = tx.events_for(DEVICE, 1_000_000)
        except (StorageFault, sqlite3.Error):
            return []
        wall_minus_monotonic = time.time() - time.monotonic()
        return [
            Received(
                e.id,
                e.type,
                e.reason,
                dt.datetime.fromisoformat(e.wall_time).timestamp() - wall_minus_monotonic,
            )
            for e in stored
        ]

    def close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


class Received(NamedTuple):
    """An event the caregiver service committed."""

    id: str
    type: str
    reason: str
    t: float
    """When the device made it (its wall clock), on this host's monotonic clock."""


class WireTap:
    """A subscriber on the device's topics: deliveries per event id, storage faults in telemetry."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.deliveries: collections.Counter[str] = collections.Counter()
        self.storage_faults: list[float] = []
        self._lock = threading.Lock()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"soak-tap-{os.getpid()}")
        client.on_connect = lambda c, *_: c.subscribe(
            [("retroguard/+/event", 1), ("retroguard/+/telemetry", 0)]
        )
        client.on_message = self._on_message
        client.reconnect_delay_set(0.2, 1)  # type: ignore[arg-type]  # paho takes floats
        client.connect_async("127.0.0.1", port)
        client.loop_start()
        self.client = client

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        with self._lock:
            if message.topic.endswith("/event"):
                self.deliveries[str(body.get("id"))] += 1
            elif body.get("storage_ok") is False:
                self.storage_faults.append(time.monotonic())

    def storage_fault_between(self, start: float, end: float) -> bool:
        with self._lock:
            return any(start <= t <= end for t in self.storage_faults)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Emitted(NamedTuple):
    """One event the loop handed to the courier (the monitor child's log of them)."""

    id: str
    type: str
    t: float
    """The event's own time (its sample), on the host's monotonic clock."""
    handed: float
    """When the loop handed it over (host monotonic clock)."""


def read_emitted(path: Path) -> list[Emitted]:
    """Every event the loop handed over, in order (a line cut short by a kill -9 is skipped)."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            found.append(Emitted(parts[0], parts[1], float(parts[2]), float(parts[3])))
    return found


# ------------------------------------------------------------------------------ disks


class SmallDisk:
    """A tmpfs of ``size_mb`` at ``path`` that can be filled and freed (root, mount allowed).

    Where ``mount`` is refused the directory stays an ordinary one and :attr:`mounted`
    is False (then :class:`WriteCap` stands in).
    """

    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)],
            capture_output=True,
        )
        self.mounted = result.returncode == 0
        self.filler = path / "filler"
        self.how = f"a {size_mb} MB tmpfs filled to ENOSPC"
        self.writer: Callable[[], int | None] = lambda: None

    def fill(self) -> None:
        """Write a file until the disk refuses (ENOSPC)."""
        chunk = b"\0" * 65536
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            while True:
                os.write(fd, chunk)
        except OSError:
            pass
        try:
            while True:  # the last few bytes too
                os.write(fd, b"\0" * 512)
        except OSError:
            pass
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


class WriteCap:
    """Where ``mount`` is not allowed: the process that writes the database may not write
    past its files' first byte (``RLIMIT_FSIZE``, set from outside with ``prlimit``), so
    every write fails (``EFBIG``; Python ignores ``SIGXFSZ``), which SQLite reports as an
    I/O error, and the product treats a full disk and an I/O error alike. Its log file is
    capped too (its lines meanwhile are lost), and other processes still write: a cruder
    stand-in than :class:`SmallDisk`, which ``auto`` prefers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.how = "writes refused by RLIMIT_FSIZE (prlimit) on the writing process"
        self.writer: Callable[[], int | None] = lambda: None
        """The process to cap (the courier, the caregiver service), found at :meth:`fill`."""
        self._capped: tuple[int, int] | None = None

    def fill(self) -> None:
        pid = self.writer()
        if pid is None:
            raise SoakError("no process writes the database: nothing to cap")
        _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, hard))
        self._capped = (pid, hard)

    def free(self) -> None:
        if self._capped is not None:
            pid, hard = self._capped
            self._capped = None
            with contextlib.suppress(ProcessLookupError):
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))

    def close(self) -> None:
        self.free()


def small_disk(path: Path, kind: str) -> SmallDisk | WriteCap:
    """``kind``: ``tmpfs``, ``rlimit``, or ``auto`` (a tmpfs where ``mount`` works)."""
    if kind == "rlimit":
        return WriteCap(path)
    disk = SmallDisk(path, size_mb=DISK_MB)
    if disk.mounted or kind == "tmpfs":
        return disk
    return WriteCap(path)


# ------------------------------------------------------------------------------ the table


@dataclass
class Row:
    scenario: str
    tries: int = 0
    releases_expected: int = 0
    releases_ok: int = 0
    releases_missed: int = 0
    worst_release_ms: float = 0.0
    stops: int = 0
    armed_without_press: int = 0
    emitted: int = 0
    stored: int = 0
    lost: int = 0
    dup_wire: int = 0
    dup_stored: int = 0
    faults_injected: int = 0
    faults_reported: int = 0
    recovery_s: list[float] = field(default_factory=list)
    not_recovered: int = 0
    failures: list[str] = field(default_factory=list)
    """Other promises broken (e.g. a new walk armed while alerts cannot be stored)."""
    notes: list[str] = field(default_factory=list)

    def release(self, latency_s: float | None) -> None:
        """A release the fault must cause: ``latency_s`` from the fault, None if it never came."""
        self.releases_expected += 1
        if latency_s is None or latency_s > HOLD_S:
            self.releases_missed += 1
            self.notes.append(
                "release missed" if latency_s is None else f"release {latency_s * 1000:.1f} ms"
            )
        else:
            self.releases_ok += 1
        if latency_s is not None:
            self.worst_release_ms = max(self.worst_release_ms, latency_s * 1000)

    @property
    def unreported(self) -> int:
        return max(0, self.faults_injected - self.faults_reported)

    @property
    def clean(self) -> bool:
        return (
            self.lost == 0
            and self.releases_missed == 0
            and self.unreported == 0
            and self.stops == 0
            and self.armed_without_press == 0
            and self.dup_stored == 0
            and self.not_recovered == 0
            and not self.failures
        )


HEADER = (
    f"{'scenario':<22}{'tries':>6}{'release ok/exp':>16}{'missed':>7}{'worst ms':>9}"
    f"{'stops':>6}{'no-press':>9}{'alerts':>7}{'stored':>7}{'lost':>5}{'dup wire':>9}"
    f"{'dup stored':>11}{'faults rep/inj':>15}{'recovery s med/max':>20}"
)


def format_row(row: Row) -> str:
    releases = f"{row.releases_ok}/{row.releases_expected}" if row.releases_expected else "-"
    worst = f"{row.worst_release_ms:.1f}" if row.releases_expected else "-"
    faults = f"{row.faults_reported}/{row.faults_injected}" if row.faults_injected else "-"
    if row.recovery_s:
        recovery = f"{statistics.median(row.recovery_s):.2f}/{max(row.recovery_s):.2f}"
    else:
        recovery = "-"
    if row.not_recovered:
        recovery += f" ({row.not_recovered} never)"
    return (
        f"{row.scenario:<22}{row.tries:>6}{releases:>16}{row.releases_missed:>7}{worst:>9}"
        f"{row.stops:>6}{row.armed_without_press:>9}{row.emitted:>7}{row.stored:>7}"
        f"{row.lost:>5}{row.dup_wire:>9}{row.dup_stored:>11}{faults:>15}{recovery:>20}"
    )


# ------------------------------------------------------------------------------ the world


@dataclass
class Injected:
    """One fault and what would count as its report."""

    start: float
    end: float
    words: tuple[str, ...]
    """A FAULT event whose reason contains one of these (empty: any FAULT) reports it."""
    telemetry: bool = False
    """A storage fault in telemetry reports it too."""


class World:
    """A broker, the caregiver service and the monitor, in one scratch directory."""

    def __init__(
        self,
        workdir: Path,
        rng: random.Random,
        *,
        persistence: bool = True,
        device_database: Path | None = None,
        caregiver_database: Path | None = None,
    ) -> None:
        from tools.broker import Mosquitto

        self.workdir = workdir
        self.rng = rng
        (workdir / "broker").mkdir()
        self.broker = Mosquitto(persistence=persistence, workdir=workdir / "broker")
        self.broker.start()
        self.tap = WireTap(self.broker.port)
        self.caregiver = CaregiverProcess(
            workdir, self.broker.port, caregiver_database or workdir / "caregiver.db"
        )
        self.device_database = device_database or workdir / "device.db"
        config = workdir / "device.toml"
        config.write_text(
            DEVICE_CONFIG.format(
                device=DEVICE,
                hold=HOLD_S,
                database=self.device_database,
                port=self.broker.port,
                retry=RECEIPT_RETRY_S,
                reconnect_max=RECONNECT_MAX_S,
            )
        )
        self.emitted_log = workdir / "emitted.log"
        self.monitor = MonitorProcess(workdir, config, self.emitted_log)
        self.injected: list[Injected] = []
        self.kills: list[float] = []
        """When the monitor was killed (kill -9)."""
        self.written_off: set[str] = set()
        """Alerts a killed monitor emitted that never reached its disk: lost (counted at the
        end), so no later recovery waits for them."""
        self.hangs: list[tuple[float, float]] = []
        """Injected hangs (SIGSTOP, SIGCONT): the heartbeat gaps they explain."""
        self.began = time.monotonic()
        self.actions: list[tuple[float, str]] = []
        """What the scenario did when (a stop's note names the last action before it)."""

    def mark(self, what: str) -> None:
        self.actions.append((time.monotonic(), what))

    def close(self) -> None:
        self.monitor.stop()
        self.caregiver.stop()
        self.caregiver.close_store()
        self.tap.close()
        self.broker.kill()

    # -------------------------------------------------------------- what happened

    def emitted_alerts(self) -> list[Emitted]:
        return [e for e in read_emitted(self.emitted_log) if e.type in PROTECTED]

    def caregiver_has_everything(self) -> bool:
        wanted = {e.id for e in self.emitted_alerts()} - self.written_off
        return wanted <= {e.id for e in self.caregiver.events()}

    def device_events(self) -> set[str]:
        """Ids of the events on the device's disk (only while no courier has it open)."""
        from firmware.storage.errors import SchemaError
        from firmware.storage.events import EventStore

        try:
            with EventStore(self.device_database) as store:
                return {stored.event.id for stored in store.events()}
        except (OSError, sqlite3.Error, SchemaError):
            return set()

    def write_off_unstored(self) -> None:
        """After a killed monitor's courier has finished: what it never stored is lost."""
        on_disk = self.device_events()
        self.written_off |= {e.id for e in self.emitted_alerts() if e.id not in on_disk}

    def start_monitor(self, row: Row, *, arm: bool = True) -> float:
        """Start the monitor; with ``arm`` wait until it can be armed, check nothing armed it
        before the press, and press."""
        started = self.monitor.start()
        if arm:
            self.arm_after_restart(row)
        return started

    def arm_after_restart(self, row: Row, timeout: float = 30.0) -> None:
        """Wait until armable; nothing may have armed it before our press; then arm it."""
        if wait_until(lambda: self.monitor.status().armable, timeout) is None:
            raise SoakError(
                f"the monitor never became armable ({self.monitor.status().state_name}):\n"
                + self.monitor.log.read_text(errors="replace")[-3000:]
            )
        self.check_presses(row)
        if not self.monitor.arm():
            raise SoakError(f"the monitor did not arm ({self.monitor.status().state_name})")

    def check_presses(self, row: Row) -> None:
        """Every arming of this monitor process followed a press of ours."""
        status = self.monitor.status()
        extra = int(status.armed_entries) - int(status.presses)
        if extra > 0:
            row.armed_without_press += extra
            row.notes.append(f"armed {extra}x without a press")

    def recover(self, row: Row, since: float, *, arm: bool = True) -> None:
        """Recovery time from ``since``: the caregiver has every alert emitted so far and the
        monitor can be armed; then a press arms it (with ``arm``)."""
        have_all: list[float] = []

        def recovered() -> bool:
            if not have_all and self.caregiver_has_everything():
                have_all.append(time.monotonic())
            status = self.monitor.status()
            return bool(have_all) and (status.armable or status.state_name == "ARMED")

        done = wait_until(recovered, RECOVERY_TIMEOUT_S, period=0.02)
        if done is None:
            row.not_recovered += 1
            status = self.monitor.status()
            row.notes.append(
                f"not recovered in {RECOVERY_TIMEOUT_S:.0f} s: caregiver has all "
                f"{bool(have_all)}, monitor {status.state_name} storage {status.storage_ok:g}"
            )
            return
        status = self.monitor.status()
        # still armed (the fault never reached the loop): protecting all along
        ready_at = status.armable_since if status.armable else since
        row.recovery_s.append(max(have_all[0], ready_at) - since)
        self.check_presses(row)
        if arm and not self.monitor.arm():
            row.not_recovered += 1
            row.notes.append("armable, but a press did not arm it")

    def settle_and_count(self, row: Row, timeout: float = RECOVERY_TIMEOUT_S) -> None:
        """At the end: wait (bounded) for the caregiver to have everything, then count."""
        wait_until(self.caregiver_has_everything, timeout, period=0.05)
        emitted = self.emitted_alerts()
        stored = self.caregiver.events()
        stored_ids = {e.id for e in stored}
        row.emitted += len(emitted)
        row.stored += sum(1 for e in emitted if e.id in stored_ids)
        lost = [e for e in emitted if e.id not in stored_ids]
        row.lost += len(lost)
        for e in lost:
            kill = next((k for k in self.kills if k >= e.handed), None)
            when = (
                f", handed over {(kill - e.handed) * 1000:.1f} ms before a kill -9" if kill else ""
            )
            row.notes.append(f"lost: {e.type} {e.id[:8]}{when}")
        with self.tap._lock:
            row.dup_wire += sum(n - 1 for n in self.tap.deliveries.values() if n > 1)
        # stored twice = under a second id: an event the loop never made (the courier makes
        # faults only, here), or an unclean stop reported more often than the monitor died
        made = {e.id for e in read_emitted(self.emitted_log)}
        phantom = [e for e in stored if e.type != "fault" and e.id not in made]
        unclean = sum(1 for e in stored if e.type == "fault" and UNCLEAN in e.reason)
        twice = max(0, unclean - len(self.kills))
        row.dup_stored += len(phantom) + twice
        for r in phantom:
            row.notes.append(f"stored but never made: {r.type} {r.id[:8]}")
        if twice:
            row.notes.append(f"{unclean} unclean stops reported for {len(self.kills)} kills")
        self.count_faults(row, stored)

    def count_faults(self, row: Row, stored: list[Received]) -> None:
        faults = [e for e in stored if e.type == "fault"]
        for fault in self.injected:
            row.faults_injected += 1
            reported = any(
                fault.start - 0.05 <= e.t <= fault.end
                and (not fault.words or any(w in e.reason for w in fault.words))
                for e in faults
            ) or (fault.telemetry and self.tap.storage_fault_between(fault.start, fault.end))
            if reported:
                row.faults_reported += 1
            else:
                row.notes.append(f"unreported fault {fault.words or 'any'}")

    def unwanted_stops(self, row: Row) -> None:
        """Heartbeat gaps >= the hold time while armed (every run of the monitor) that no
        injected hang explains: each one a stop of the belt the walker did not cause."""
        log = self.workdir / GAPS_LOG
        lines = log.read_text().splitlines() if log.exists() else []
        for line in lines:
            start, end = (float(x) for x in line.split())
            if any(start <= resumed and end >= stopped for stopped, resumed in self.hangs):
                continue
            row.stops += 1
            before = [(t, what) for t, what in self.actions if t <= end]
            after = f", {start - before[-1][0]:.2f} s after {before[-1][1]}" if before else ""
            row.notes.append(
                f"stop: heartbeat gap {(end - start) * 1000:.0f} ms while armed at "
                f"{start - self.began:.1f} s{after}"
            )


@contextlib.contextmanager
def world(name: str, rng: random.Random, keep: bool, **kwargs: Any) -> Iterator[World]:
    workdir = Path(tempfile.mkdtemp(prefix=f"retroguard-soak-{name}-"))
    workdir.chmod(0o755)
    w = World(workdir, rng, **kwargs)
    try:
        w.caregiver.start()
        yield w
    finally:
        w.close()
        if keep:
            print(f"  ({name}: kept {workdir})", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# ------------------------------------------------------------------------------ scenarios


@dataclass(frozen=True)
class Plan:
    quick: bool
    seed: int
    keep: bool
    given: dict[str, int] = field(default_factory=dict)
    """``--tries``: per scenario, or ``"*"`` for every scenario."""
    disk: str = "auto"
    """``--disk``: how a disk fills (see :func:`small_disk`)."""

    def tries(self, scenario: str, full: int, quick: int = 1) -> int:
        """How many times to inject this scenario's fault."""
        if scenario in self.given:
            return self.given[scenario]
        if "*" in self.given:
            return self.given["*"]
        return quick if self.quick else full


def parse_tries(text: str, known: Iterable[str]) -> dict[str, int]:
    """``--tries 5`` (every scenario) or ``--tries monitor-kill=40,broker-kill=5`` (or both)."""
    names = set(known)
    given: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, count = part.rpartition("=")
        name = name.strip() or "*"
        if name != "*" and name not in names:
            raise ValueError(f"unknown scenario {name!r}")
        if not count.strip().isdigit() or int(count) < 1:
            raise ValueError(f"{part!r}: the count must be a whole number of at least 1")
        given[name] = int(count)
    return given


def wait_for_exit(pid: int | None, timeout: float) -> bool:
    """The orphaned courier of a killed monitor finishes (systemd waits for the unit's
    processes, up to TimeoutStopSec = 5 s, then kills them); True when it finished by itself."""
    if pid is None:
        return True
    if wait_until(lambda: not _alive(pid), timeout, period=0.02) is not None:
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not _alive(pid), 5.0)
    return False


def monitor_kill(plan: Plan, rng: random.Random) -> Row:
    """kill -9 of the monitor while armed (half of the time just after a fall), then a restart."""
    row = Row("monitor-kill")
    with world("monitor-kill", rng, plan.keep) as w:
        w.start_monitor(row)
        for i in range(plan.tries(row.scenario, 20, quick=2)):
            row.tries += 1
            fall_first = i % 2 == 0
            time.sleep(rng.uniform(0.05, 0.5))
            if fall_first:  # an alert in flight at the kill
                w.monitor.fall()
                time.sleep(rng.uniform(0.0, 0.03))
            before = w.monitor.status()
            courier = w.monitor.courier_pid()
            killed = w.monitor.kill()
            w.kills.append(killed)
            w.mark("the monitor killed")
            after = w.monitor.status()  # the page as the process left it
            if before.state_name == "ARMED" and after.state_name == "ARMED":
                row.release(after.last_edge + HOLD_S - killed)
            w.injected.append(Injected(killed, killed + 15.0, (UNCLEAN,)))
            if not wait_for_exit(courier, 5.0):
                row.notes.append("orphaned courier killed after 5 s")
            w.write_off_unstored()
            restarted = w.monitor.start()
            w.mark("the monitor restarted")
            w.recover(row, restarted)
        w.settle_and_count(row)
        w.unwanted_stops(row)
    return row


HANGS_S = (0.02, 0.035, 0.06, 0.08, 0.1, 0.2, 0.35, 0.5, 1.0, 2.0, 3.0)
QUICK_HANGS_S = (0.03, 0.2)
"""One hang the hold time rides through, one it must not."""


def monitor_hang(plan: Plan, rng: random.Random) -> Row:
    """SIGSTOP of the monitor while armed, SIGCONT after a while: a hang longer than the hold
    time must drop the relay within it and be reported; a shorter one must not stop the belt."""
    row = Row("monitor-hang")
    cycle = QUICK_HANGS_S if plan.quick else HANGS_S
    count = plan.tries(row.scenario, len(HANGS_S), quick=len(QUICK_HANGS_S))
    hangs = [cycle[i % len(cycle)] for i in range(count)]
    with world(row.scenario, rng, plan.keep) as w:
        w.start_monitor(row)
        for hang in hangs:
            row.tries += 1
            time.sleep(rng.uniform(0.1, 0.4))
            os.kill(w.monitor.pid, signal.SIGSTOP)
            stopped = time.monotonic()
            time.sleep(hang)
            frozen = w.monitor.status()  # nothing moves while it is stopped
            resumed = time.monotonic()  # before SIGCONT: the loop may run before we do
            os.kill(w.monitor.pid, signal.SIGCONT)
            w.hangs.append((stopped, resumed))
            w.mark(f"a {hang * 1000:.0f} ms hang")
            if frozen.state_name != "ARMED":
                raise SoakError(f"not armed at the stop ({frozen.state_name})")
            wait_until(functools.partial(w.monitor.looped_after, resumed + 0.2), 10.0)
            after = w.monitor.status()
            released = after.opens > frozen.opens
            if released or resumed - frozen.last_edge >= HOLD_S:
                row.release(after.last_open - stopped if released else None)
                w.injected.append(Injected(stopped, resumed + 5.0, ()))
                w.recover(row, resumed)
            elif after.state_name != "ARMED":
                row.failures.append(f"a {hang * 1000:.0f} ms hang stopped the belt")
                w.monitor.arm()
        w.settle_and_count(row)
        w.unwanted_stops(row)
    return row


def broker_kill(plan: Plan, rng: random.Random, *, persistence: bool) -> Row:
    """kill -9 of the broker with alerts just published, more while it is down, a restart."""
    row = Row("broker-kill" if persistence else "broker-kill-nopersist")
    with world(row.scenario, rng, plan.keep, persistence=persistence) as w:
        w.start_monitor(row)
        for _ in range(plan.tries(row.scenario, 3)):
            row.tries += 1
            w.monitor.trip()
            time.sleep(rng.uniform(0.0, 0.05))
            w.broker.kill()
            w.mark("the broker killed")
            time.sleep(rng.uniform(0.2, 0.5))
            w.monitor.arm()
            w.monitor.trip()  # an alert while the broker is down
            w.monitor.arm()
            time.sleep(rng.uniform(0.5, 2.0))
            w.broker.start()
            w.mark("the broker restarted")
            w.recover(row, time.monotonic())
        w.settle_and_count(row)
        w.unwanted_stops(row)
    return row


def caregiver_kill(plan: Plan, rng: random.Random) -> Row:
    """kill -9 of the caregiver service just after an alert, more alerts while it is down."""
    row = Row("caregiver-kill")
    with world(row.scenario, rng, plan.keep) as w:
        w.start_monitor(row)
        for _ in range(plan.tries(row.scenario, 3)):
            row.tries += 1
            w.monitor.trip()
            time.sleep(rng.uniform(0.0, 0.1))
            w.caregiver.kill()
            w.mark("the caregiver service killed")
            w.monitor.arm()
            w.monitor.trip()
            w.monitor.arm()
            time.sleep(rng.uniform(0.2, 1.0))
            restarted = w.caregiver.start()
            w.mark("the caregiver service restarted")
            w.recover(row, restarted)
        w.settle_and_count(row)
        w.unwanted_stops(row)
    return row


def courier_kill(plan: Plan, rng: random.Random) -> Row:
    """kill -9 of the courier (storage and network) while a walk goes on and alerts flow."""
    row = Row("courier-kill")
    with world(row.scenario, rng, plan.keep) as w:
        w.start_monitor(row)
        for _ in range(plan.tries(row.scenario, 5)):
            row.tries += 1
            courier = w.monitor.courier_pid()
            if courier is None:
                raise SoakError("no courier process")
            w.monitor.trip()
            time.sleep(rng.uniform(0.0, 0.03))
            os.kill(courier, signal.SIGKILL)
            killed = time.monotonic()
            w.mark("the courier killed")
            w.monitor.arm()
            w.monitor.trip()  # while the courier is gone
            w.monitor.arm()
            # not a fault to report: the supervisor logs it and starts another courier, which
            # the loop hands every record not yet on disk again (nothing is lost)
            back = wait_until(functools.partial(w.monitor.courier_replaced, courier), 20.0)
            w.recover(row, back or killed)
        w.settle_and_count(row)
        w.unwanted_stops(row)
    return row


def disk_full(plan: Plan, rng: random.Random) -> Row:
    """The device's disk fills during a walk: the walk goes on, alerts are kept and published,
    arming is refused, and everything lands once space returns."""
    row = Row("disk-full")
    workdir = Path(tempfile.mkdtemp(prefix="retroguard-soak-disk-"))
    disk = small_disk(workdir / "disk", plan.disk)
    try:
        if isinstance(disk, SmallDisk) and not disk.mounted:
            row.notes.append("mount -t tmpfs refused (not root?): skipped")
            return row
        row.notes.append(disk.how)
        with world(row.scenario, rng, plan.keep, device_database=disk.path / "device.db") as w:
            disk.writer = w.monitor.courier_pid
            w.start_monitor(row)
            for _ in range(plan.tries(row.scenario, 2)):
                row.tries += 1
                armed = w.monitor.status()
                disk.fill()
                filled = time.monotonic()
                w.mark("the disk filled")
                w.monitor.trip()
                for _ in range(3):  # more alerts while the disk is full
                    w.monitor.fall()
                time.sleep(1.5)
                walk = w.monitor.status()
                if walk.opens - armed.opens > 1:
                    row.stops += 1
                    row.notes.append("the walk stopped for the disk")
                w.monitor.press()  # a new walk: refused while alerts cannot be stored
                time.sleep(PRESS_S + 0.3)
                if w.monitor.status().state_name == "ARMED":
                    row.failures.append("armed a new walk on a full disk")
                disk.free()
                freed = time.monotonic()
                w.mark("the disk freed")
                w.injected.append(Injected(filled, freed + 15.0, ("storage",), telemetry=True))
                w.recover(row, freed)
            w.settle_and_count(row)
            w.unwanted_stops(row)
    finally:
        disk.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return row


def caregiver_disk_full(plan: Plan, rng: random.Random) -> Row:
    """The caregiver's disk fills: it acknowledges nothing it did not store; all lands later."""
    row = Row("caregiver-disk-full")
    workdir = Path(tempfile.mkdtemp(prefix="retroguard-soak-cgdisk-"))
    disk = small_disk(workdir / "disk", plan.disk)
    try:
        if isinstance(disk, SmallDisk) and not disk.mounted:
            row.notes.append("mount -t tmpfs refused (not root?): skipped")
            return row
        row.notes.append(disk.how)
        with world(row.scenario, rng, plan.keep, caregiver_database=disk.path / "cg.db") as w:
            disk.writer = w.caregiver.pid
            w.start_monitor(row)
            for _ in range(plan.tries(row.scenario, 2)):
                row.tries += 1
                disk.fill()
                w.mark("the caregiver's disk filled")
                w.monitor.trip()
                w.monitor.fall()
                w.monitor.arm()
                w.monitor.trip()
                time.sleep(rng.uniform(1.0, 2.0))
                disk.free()
                w.mark("the caregiver's disk freed")
                w.recover(row, time.monotonic())
            w.settle_and_count(row)
            w.unwanted_stops(row)
    finally:
        disk.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return row


def _zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def _garbage_companion(suffix: str) -> Callable[[Path], None]:
    """A sound database with a companion file (``-wal``, ``-shm``) of random bytes beside it:
    what a power cut in the middle of writing one might leave."""

    def write(path: Path) -> None:
        from tests.storage_support import populated

        populated(path)
        Path(f"{path}{suffix}").write_bytes(random.Random(suffix).randbytes(32768))

    return write


def corruption_kinds() -> dict[str, tuple[Callable[[Path], object], bool]]:
    """name -> (write such a file at a path, whether the monitor must report a fault for it)."""
    from tests.storage_support import DAMAGE, damage

    kinds: dict[str, tuple[Callable[[Path], object], bool]] = {
        kind: (functools.partial(damage, kind), True) for kind in sorted(DAMAGE)
    }
    kinds["zero bytes"] = (_zero_bytes, False)
    kinds["garbage -wal"] = (_garbage_companion("-wal"), False)
    kinds["garbage -shm"] = (_garbage_companion("-shm"), False)
    return kinds


def corrupt_db(plan: Plan, rng: random.Random) -> Row:
    """The monitor starts on a damaged database (each kind): it starts, arms, detects, reports."""
    row = Row("corrupt-db")
    kinds = list(corruption_kinds().items())
    with world(row.scenario, rng, plan.keep) as w:
        base = w.monitor.config.read_text()
        for n in range(plan.tries(row.scenario, len(kinds), quick=len(kinds))):
            kind, (write, is_fault) = kinds[n % len(kinds)]
            row.tries += 1
            database = w.workdir / f"device-{n}.db"
            write(database)
            config = w.workdir / f"device-{n}.toml"
            config.write_text(base.replace(str(w.device_database), str(database)))
            w.monitor.stop()
            w.monitor.config = config
            started = w.start_monitor(row, arm=False)
            w.mark(f"a start on {kind}")
            if is_fault:
                w.injected.append(Injected(started, started + 20.0, ("damaged", "storage")))
            w.recover(row, started)
            if w.monitor.status().state_name != "ARMED" or not w.monitor.trip():
                row.notes.append(f"{kind}: no trip after arming")
        w.settle_and_count(row)
        w.unwanted_stops(row)
    return row


def command_flood(plan: Plan, rng: random.Random) -> Row:
    """Commands as fast as the broker takes them and 1 MB payloads on the device's topics,
    while a walk goes on and alerts are raised."""
    row = Row("command-flood")
    commands, seconds = (3000, 5.0) if plan.quick else (10_000, 15.0)
    with world(row.scenario, rng, plan.keep) as w:
        w.start_monitor(row)
        for _ in range(plan.tries(row.scenario, 1)):
            row.tries += 1
            flood = subprocess.Popen(
                [sys.executable, str(ROOT / "benchmarks" / "flood.py"), "--flood-child",
                 str(w.broker.port), DEVICE, str(commands), "20", str(seconds)],
                env=dict(os.environ, PYTHONPATH=str(ROOT)),
            )  # fmt: skip
            w.mark("the flood began")
            while flood.poll() is None:
                time.sleep(rng.uniform(0.5, 1.5))
                if flood.poll() is None:
                    w.monitor.trip()
                    w.monitor.arm()
            flood.wait()
            w.recover(row, time.monotonic())
        w.settle_and_count(row)
        w.unwanted_stops(row)
        row.notes.append(f"max heartbeat gap armed {w.monitor.status().max_gap * 1000:.1f} ms")
    return row


SCENARIOS: dict[str, Callable[[Plan, random.Random], Row]] = {
    "monitor-kill": monitor_kill,
    "monitor-hang": monitor_hang,
    "broker-kill": lambda plan, rng: broker_kill(plan, rng, persistence=True),
    "broker-kill-nopersist": lambda plan, rng: broker_kill(plan, rng, persistence=False),
    "caregiver-kill": caregiver_kill,
    "courier-kill": courier_kill,
    "disk-full": disk_full,
    "caregiver-disk-full": caregiver_disk_full,
    "corrupt-db": corrupt_db,
    "command-flood": command_flood,
}


def run(names: list[str], plan: Plan) -> list[Row]:
    become_subreaper()
    rows = []
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; hold {HOLD_S * 1000:.0f} ms, "
        f"receipt_retry_s {RECEIPT_RETRY_S:g}, reconnect_max_s {RECONNECT_MAX_S:g}, "
        f"seed {plan.seed}{', quick' if plan.quick else ''}",
        flush=True,
    )
    print(HEADER, flush=True)
    for name in names:
        rng = random.Random(f"{plan.seed}-{name}")
        began = time.monotonic()
        try:
            row = SCENARIOS[name](plan, rng)
        except (SoakError, BrokerError) as exc:
            row = Row(name, not_recovered=1, notes=[f"aborted: {exc}"])
        row.notes.insert(0, f"{time.monotonic() - began:.0f} s")
        rows.append(row)
        print(format_row(row), flush=True)
    print()
    for row in rows:
        print(f"{row.scenario}: {'; '.join(row.notes)}")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="each fault once or twice (under ~3 minutes)"
    )
    parser.add_argument("--only", default="", help=f"comma-separated: {', '.join(SCENARIOS)}")
    parser.add_argument(
        "--tries",
        default="",
        metavar="N|NAME=N,...",
        help="faults per scenario: one count for all, or per scenario (over --quick's)",
    )
    parser.add_argument(
        "--disk",
        choices=("auto", "tmpfs", "rlimit"),
        default="auto",
        help="a full disk: a small tmpfs (needs mount), or writes refused by RLIMIT_FSIZE; "
        "auto: tmpfs where mount works",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directories")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--monitor-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.monitor_child:
        return monitor_child(*args.monitor_child)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    try:
        given = parse_tries(args.tries, SCENARIOS)
    except ValueError as exc:
        parser.error(f"--tries: {exc}")
    plan = Plan(quick=args.quick, seed=args.seed, keep=args.keep, given=given, disk=args.disk)
    rows = run(names, plan)
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    missed = [r.scenario for r in rows if not r.clean]
    print(
        "targets (0 lost, 0 missed releases, 0 unreported faults, 0 stops, 0 armings without "
        f"a press, 0 stored twice, every fault recovered): {'MISSED in ' if missed else 'met'}"
        + ", ".join(missed)
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
