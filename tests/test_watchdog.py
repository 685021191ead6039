"""sd_notify over a real AF_UNIX datagram socket, driven by the real Monitor and SafetyController.

The monitor runs on a simulated clock with a scripted IMU, so "time" is
exact and nothing sleeps; systemd's side is a datagram socket the test
binds and reads without blocking.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator, Sequence

import pytest

from core.clock import SimClock
from core.protocol.events import Event
from core.samples import ImuSample
from core.sdnotify import Notifier
from firmware.config import SafetyConfig
from firmware.detection.base import Detection, DetectionKind
from firmware.monitor import Monitor
from firmware.safety import FaultKind, SafetyController, SafetyState, SensorLimits
from firmware.watchdog import ServiceWatchdog, ping_interval_from_env
from hal.errors import ImuFifoOverflowError
from hal.interfaces import RelayDrive

PERIOD = 0.02  # one loop iteration = 4 samples at 200 Hz


class ScriptedImu:
    """Good, slightly varying samples; raises a FIFO overflow while ``broken``."""

    sample_rate_hz = 200.0

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.broken = False
        self._n = 0

    def start(self) -> None:
        pass

    def read_batch(self, timeout: float) -> Sequence[ImuSample]:
        self.clock.advance(PERIOD)
        if self.broken:
            raise ImuFifoOverflowError("scripted overflow", 1)
        batch = []
        for _ in range(4):
            self._n += 1
            wobble = (self._n % 7) * 0.001
            batch.append(ImuSample(self._n * 0.005, wobble, 0.0, 1.0, wobble, 0.0, 0.0))
        return batch

    def close(self) -> None:
        pass


class FakeRelay:
    drive: RelayDrive = "heartbeat"

    def __init__(self) -> None:
        self.holding = False

    def hold(self) -> None:
        self.holding = True

    def release(self) -> None:
        self.holding = False

    def close(self) -> None:
        self.holding = False


class SilentBuzzer:
    pattern: str | None = None

    def play(self, pattern: str, now: float) -> None:
        pass

    def update(self, now: float) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


class Button:
    is_pressed = False

    def __init__(self) -> None:
        self.presses: list[float] = []

    def take_presses(self) -> list[float]:
        presses, self.presses = self.presses, []
        return presses

    def close(self) -> None:
        pass


class OnDemandDetector:
    def __init__(self) -> None:
        self.pending: list[Detection] = []

    def update(self, sample: ImuSample) -> Sequence[Detection]:
        out, self.pending = self.pending, []
        return out

    def reset(self) -> None:
        self.pending = []


class Rig:
    def __init__(self) -> None:
        self.clock = SimClock()
        self.imu = ScriptedImu(self.clock)
        self.relay = FakeRelay()
        self.button = Button()
        self.detector = OnDemandDetector()
        self.events: list[Event] = []
        self.controller = SafetyController(
            relay=self.relay,
            buzzer=SilentBuzzer(),
            detector=self.detector,
            emit=self.events.append,
            config=SafetyConfig(worn_check=False),  # its samples are made up, not a body
            limits=SensorLimits(accel_g=8.0, gyro_dps=1000.0),
            sample_rate_hz=200.0,
            device_id="tm-test",
        )
        self.monitor = Monitor(
            imu=self.imu,
            relay=self.relay,
            button=self.button,
            controller=self.controller,
            clock=self.clock,
            read_timeout_s=0.1,
        )
        self.monitor.start()

    @property
    def state(self) -> SafetyState:
        return self.controller.state

    def steps(self, n: int) -> None:
        for _ in range(n):
            self.monitor.step()


@pytest.fixture
def systemd_socket() -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket standing in for systemd, with its NOTIFY_SOCKET value.

    Made in a short temporary directory: AF_UNIX paths are limited to 108 bytes.
    """
    with tempfile.TemporaryDirectory(prefix="rg-") as tmp:
        path = os.path.join(tmp, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.setblocking(False)
        try:
            yield sock, path
        finally:
            sock.close()


def received(sock: socket.socket) -> list[list[str]]:
    """Every datagram waiting on ``sock``, each split into its assignments."""
    out: list[list[str]] = []
    while True:
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return out
        out.append(data.decode().split("\n"))


def flat(datagrams: list[list[str]]) -> list[str]:
    return [line for datagram in datagrams for line in datagram]


def test_no_socket_means_no_op() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert notifier.ready() is False and notifier.watchdog() is False
    assert notifier.sent == 0 and notifier.errors == 0


def test_abstract_namespace_address() -> None:
    name = f"retroguard-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    server.setblocking(False)
    try:
        notifier = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
        assert notifier.status("hello\nWATCHDOG=1")
        # A newline in a status text cannot smuggle in a second assignment.
        assert received(server) == [["STATUS=hello WATCHDOG=1"]]
    finally:
        server.close()


def test_send_errors_are_counted_not_raised(systemd_socket: tuple[socket.socket, str]) -> None:
    sock, path = systemd_socket
    notifier = Notifier(path)
    sock.close()
    os.unlink(path)  # systemd gone: ECONNREFUSED / ENOENT
    assert notifier.watchdog() is False
    assert notifier.errors == 1 and notifier.sent == 0
    notifier.close()
    assert notifier.watchdog() is False  # closed: a quiet no-op


def test_full_socket_buffer_does_not_block(systemd_socket: tuple[socket.socket, str]) -> None:
    _sock, path = systemd_socket  # nobody reads: the receive queue fills up
    notifier = Notifier(path)
    for _ in range(5000):
        notifier.watchdog()
    assert notifier.errors > 0  # EAGAIN was counted, and we got here without blocking
    assert notifier.sent + notifier.errors == 5000


def test_ping_interval_from_env() -> None:
    assert ping_interval_from_env({}) is None
    assert ping_interval_from_env({"WATCHDOG_USEC": "2000000"}) == pytest.approx(0.5)
    assert ping_interval_from_env({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}) is None
    mine = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert ping_interval_from_env(mine) == pytest.approx(0.5)
    assert ping_interval_from_env({"WATCHDOG_USEC": "soon"}) is None


def test_ready_once_pings_while_healthy_status_on_change(
    systemd_socket: tuple[socket.socket, str],
) -> None:
    sock, path = systemd_socket
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"}  # WatchdogSec=2 → ping every 0.5 s
    rig = Rig()
    watchdog = ServiceWatchdog.from_env(env)
    rig.monitor.on_iteration.append(watchdog)

    # STARTING: not yet healthy, so neither READY nor pings; one STATUS line.
    rig.steps(10)  # 0.2 s
    assert rig.state is SafetyState.STARTING
    assert flat(received(sock)) == ["STATUS=STARTING: starting"]

    # Healthy for 0.5 s → STANDBY: READY once, then a ping every 0.5 s.
    rig.steps(40)  # to 1.0 s
    assert rig.state is SafetyState.STANDBY
    lines = flat(received(sock))
    assert lines[0] == "STATUS=STANDBY: IMU healthy; press reset to arm"
    assert lines.count("READY=1") == 1
    assert lines[1] == "READY=1"
    assert lines.count("WATCHDOG=1") == 1
    rig.steps(100)  # 2 s more
    assert flat(received(sock)) == ["WATCHDOG=1"] * 4

    # Reset button → ARMED: a STATUS line, no second READY, pings go on.
    rig.button.presses.append(rig.clock.monotonic())
    rig.steps(25)
    lines = flat(received(sock))
    assert lines[0] == "STATUS=ARMED: armed by local reset from STANDBY"
    assert "READY=1" not in lines
    assert lines.count("WATCHDOG=1") == 1
    assert rig.relay.holding

    # A stumble trips: safe and still deciding, so still healthy and pinging.
    rig.detector.pending.append(Detection(DetectionKind.STUMBLE, 0.0, "tilt 48 deg"))
    rig.steps(25)
    lines = flat(received(sock))
    assert lines[0] == "STATUS=TRIPPED: stumble: tilt 48 deg"
    assert lines.count("WATCHDOG=1") == 1
    assert not rig.relay.holding

    # The IMU fails: FAULT; pings stop for as long as it lasts (systemd restarts us).
    rig.imu.broken = True
    rig.steps(200)  # 4 s: twice WatchdogSec
    lines = flat(received(sock))
    assert lines[0].startswith("STATUS=FAULT: IMU FIFO overflow")
    assert "WATCHDOG=1" not in lines
    assert not rig.monitor.healthy

    # Healthy again → STANDBY, pings resume, READY is not repeated.
    rig.imu.broken = False
    rig.steps(50)
    lines = flat(received(sock))
    assert lines[0] == "STATUS=STANDBY: IMU healthy; press reset to arm"
    assert "READY=1" not in lines
    assert "WATCHDOG=1" in lines
    assert watchdog.notifier.errors == 0

    watchdog.stopping("service stopping")
    assert received(sock) == [["STOPPING=1", "STATUS=service stopping"]]


def test_a_fault_a_restart_cannot_cure_keeps_the_pings(
    systemd_socket: tuple[socket.socket, str],
) -> None:
    """A welded relay contact stays welded after a restart: restarting would only send the
    fault, and its alert, again every WatchdogSec, forever."""
    sock, path = systemd_socket
    rig = Rig()
    watchdog = ServiceWatchdog.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    rig.monitor.on_iteration.append(watchdog)
    rig.steps(60)
    assert rig.state is SafetyState.STANDBY
    received(sock)
    rig.controller._fault(FaultKind.CONTACT_CLOSED_WHILE_RELEASED, "relay contact welded", 1.2)
    assert rig.state is SafetyState.FAULT and not rig.monitor.restart_may_cure
    rig.steps(100)  # 2 s
    lines = flat(received(sock))
    assert lines[0] == "STATUS=FAULT: relay contact welded"
    assert lines.count("WATCHDOG=1") == 4  # alive and reporting: no restart
    rig.imu.broken = True  # later the sensor wedges: a restart may cure that one
    rig.steps(200)
    assert rig.monitor.restart_may_cure
    assert "WATCHDOG=1" not in flat(received(sock))


def test_a_contact_welded_while_already_faulted_keeps_the_pings(
    systemd_socket: tuple[socket.socket, str],
) -> None:
    """The sensor wedges (a restart may cure that), then the contact is found closed while the
    relay is released, in FAULT already (no transition): a restart would find the welded
    contact again and send its FAULT and alert twice, so the pings go on. It read the cause
    of the last transition, the sensor's, and withheld them."""
    sock, path = systemd_socket
    rig = Rig()
    watchdog = ServiceWatchdog.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    rig.monitor.on_iteration.append(watchdog)
    rig.steps(60)
    rig.imu.broken = True
    rig.steps(50)
    assert rig.state is SafetyState.FAULT and rig.monitor.restart_may_cure
    for _ in range(25):  # 0.5 s of a closed contact, the relay released
        rig.controller.on_contact(True, rig.clock.monotonic())
        rig.steps(1)
    assert rig.controller.contact_fault is FaultKind.CONTACT_CLOSED_WHILE_RELEASED
    assert rig.controller.fault_kind is FaultKind.CONTACT_CLOSED_WHILE_RELEASED
    assert rig.state is SafetyState.FAULT and not rig.monitor.restart_may_cure
    received(sock)
    rig.steps(100)  # 2 s
    assert flat(received(sock)).count("WATCHDOG=1") >= 3  # alive and reporting: no restart


def test_without_watchdog_usec_ready_and_status_only(
    systemd_socket: tuple[socket.socket, str],
) -> None:
    sock, path = systemd_socket
    rig = Rig()
    rig.monitor.on_iteration.append(ServiceWatchdog.from_env({"NOTIFY_SOCKET": path}))
    rig.steps(50)
    lines = flat(received(sock))
    assert "READY=1" in lines and "WATCHDOG=1" not in lines


def test_unset_socket_hook_is_harmless() -> None:
    rig = Rig()
    watchdog = ServiceWatchdog.from_env({})
    rig.monitor.on_iteration.append(watchdog)
    rig.steps(50)
    assert watchdog.ready_sent and watchdog.notifier.sent == 0


def test_ping_interval_from_env_edge_cases(caplog: pytest.LogCaptureFixture) -> None:
    """What sd_watchdog_enabled(3) reads: a zero or negative WATCHDOG_USEC is no watchdog, an
    empty WATCHDOG_PID is no PID, and our PID may come with a trailing newline."""
    usec = {"WATCHDOG_USEC": "2000000"}
    assert ping_interval_from_env({"WATCHDOG_USEC": "0"}) is None
    assert ping_interval_from_env({"WATCHDOG_USEC": "-5"}) is None
    assert ping_interval_from_env({**usec, "WATCHDOG_PID": ""}) == pytest.approx(0.5)
    mine = {**usec, "WATCHDOG_PID": f"{os.getpid()}\n"}
    assert ping_interval_from_env(mine) == pytest.approx(0.5)
    with caplog.at_level("WARNING", logger="core.sdnotify"):
        assert ping_interval_from_env({"WATCHDOG_USEC": "2s"}) is None
    assert "ignoring WATCHDOG_USEC='2s': not an integer" in caplog.text


class _Controller:
    state = "STANDBY"
    reason = "IMU healthy; press reset to arm"


class _HealthyMonitor:
    """Just what the watchdog reads, on a clock the test sets."""

    def __init__(self) -> None:
        self.controller = _Controller()
        self.clock = SimClock()
        self.healthy = True
        self.restart_may_cure = False


def test_a_ping_goes_out_once_the_interval_has_passed_exactly(
    systemd_socket: tuple[socket.socket, str],
) -> None:
    sock, path = systemd_socket
    watchdog = ServiceWatchdog(Notifier(path), interval_s=0.5)
    monitor = _HealthyMonitor()
    for _ in range(5):  # at 0, 0.25, 0.5, 0.75, 1.0 s (exact in binary)
        watchdog(monitor)
        monitor.clock.advance(0.25)
    lines = flat(received(sock))
    assert lines.count("WATCHDOG=1") == 3  # at 0, 0.5 and 1.0 s
    assert watchdog.pings == 3


def test_a_fault_a_restart_cannot_cure_from_the_start_still_says_ready(
    systemd_socket: tuple[socket.socket, str],
) -> None:
    """A sense wire cut (or a contact welded) before the monitor was ever healthy: systemd must
    hear READY, or it fails the start after TimeoutStartSec and restarts the service — and the
    fault, and its alert — forever, which the pings alone cannot prevent."""
    sock, path = systemd_socket
    rig = Rig()
    watchdog = ServiceWatchdog.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    rig.monitor.on_iteration.append(watchdog)
    for _ in range(10):  # 0.2 s in STARTING, the contact reading closed while released
        rig.controller.on_contact(True, rig.clock.monotonic())
        rig.steps(1)
    assert rig.state is SafetyState.FAULT and not rig.monitor.restart_may_cure
    assert rig.controller.contact_fault is FaultKind.CONTACT_CLOSED_WHILE_RELEASED
    for _ in range(100):  # 2 s
        rig.controller.on_contact(True, rig.clock.monotonic())
        rig.steps(1)
    lines = flat(received(sock))
    assert lines.count("READY=1") == 1
    assert "WATCHDOG=1" in lines[lines.index("READY=1") :]  # pinging on, no restart
    assert watchdog.ready_sent
