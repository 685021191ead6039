"""Tells systemd, from the real-time loop itself, that the monitor is alive and deciding.

Attach a :class:`ServiceWatchdog` to :attr:`firmware.monitor.Monitor.on_iteration`.
It runs on the loop thread after every iteration, which is the point: the
``WATCHDOG=1`` ping proves that *this* thread is turning, not that some
helper thread is. If the loop hangs (a stuck I2C transfer, a deadlock) the
pings stop and systemd kills and restarts the service after ``WatchdogSec``.

It pings while :attr:`Monitor.healthy` is true (ARMED, STANDBY or TRIPPED),
and in a FAULT a restart cannot cure (a welded relay contact). In a FAULT a
restart may cure — the IMU silent, frozen or overflowing — the relay is
already released by the controller, and withholding pings lets systemd
restart the process, which re-initialises the sensor and the bus: the
remedy for a wedged MPU-6050 that plain retries do not cure. Restarting for
a fault a restart cannot cure would only repeat it, and its alert, forever.

``READY=1`` goes out once, the first time the loop is healthy or in a FAULT a
restart cannot cure: the relay is then in a state the loop decided (held only
if ARMED), so ``systemctl start`` returning means "RetroGuard is watching", not
merely "the process exists". A FAULT a restart cannot cure (a sense wire cut
before the first healthy iteration) says READY too: without it systemd would
fail the start after ``TimeoutStartSec`` and restart the service forever.
``STATUS=`` follows every change of state or reason (a FAULT can learn a new
reason, such as a welded relay contact) so ``systemctl status`` shows why the
treadmill is stopped.

Cost on the loop: one clock read, a few comparisons, and a non-blocking
``sendto`` at most every ``WatchdogSec / 4``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from core.clock import Clock
from core.sdnotify import Notifier, watchdog_timeout_from_env

PING_FRACTION = 4
"""Ping every ``WatchdogSec / PING_FRACTION``: three pings may be lost before systemd acts."""


class _ControllerView(Protocol):
    """What the watchdog reads from :class:`firmware.safety.SafetyController`."""

    @property
    def state(self) -> str: ...

    @property
    def reason(self) -> str: ...


class MonitorView(Protocol):
    """What the watchdog reads from :class:`firmware.monitor.Monitor`."""

    @property
    def controller(self) -> _ControllerView: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def healthy(self) -> bool: ...

    @property
    def restart_may_cure(self) -> bool: ...


def ping_interval_from_env(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between pings: ``WatchdogSec / PING_FRACTION`` (None: no watchdog for this
    process; see :func:`core.sdnotify.watchdog_timeout_from_env`)."""
    timeout = watchdog_timeout_from_env(env)
    return None if timeout is None else timeout / PING_FRACTION


class ServiceWatchdog:
    """The ``Monitor.on_iteration`` hook that sends READY, WATCHDOG and STATUS.

    ``interval_s`` is the ping period (None disables pings but keeps READY
    and STATUS, for ``Type=notify`` without ``WatchdogSec=``).
    """

    def __init__(self, notifier: Notifier, *, interval_s: float | None) -> None:
        self.notifier = notifier
        self.interval_s = interval_s
        self.ready_sent = False
        self.pings = 0
        self._last_ping: float | None = None
        self._last_status: tuple[str, str] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceWatchdog:
        """Built from ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``."""
        return cls(Notifier.from_env(env), interval_s=ping_interval_from_env(env))

    def __call__(self, monitor: MonitorView) -> None:
        """Run after each loop iteration; never blocks, never raises (see :class:`Notifier`)."""
        controller = monitor.controller
        status = (controller.state, controller.reason)
        if status != self._last_status:
            self._last_status = status
            self.notifier.status(f"{status[0]}: {status[1]}")
        if not monitor.healthy and (
            monitor.restart_may_cure or monitor.controller.state != "FAULT"
        ):
            return
        if not self.ready_sent:
            self.ready_sent = True
            self.notifier.ready()
        if self.interval_s is None:
            return
        now = monitor.clock.monotonic()
        if self._last_ping is None or now - self._last_ping >= self.interval_s:
            self._last_ping = now
            self.pings += 1
            self.notifier.watchdog()

    def stopping(self, reason: str = "stopping") -> None:
        """Say an orderly stop has begun, so missing pings from here on are expected."""
        self.notifier.stopping(reason)
