"""What wakes the loop to read the IMU: the chip's data-ready interrupt, or a timer.

The loop is paced by the sensor's own clock either way; the FIFO holds the
samples, so pacing decides only *when* the loop reads, never *what* it gets.

* :class:`PollPacing` (``imu.pacing = "poll"``, and the fallback): the
  driver reads the FIFO count, and when it is empty sleeps a sample period
  and reads again. The timer and the chip drift against each other, so
  some reads find nothing, and each read costs I2C transactions.
* :class:`InterruptPacing` (``"interrupt"``, ``"auto"``): the MPU-6050
  pulses INT for every sample; the GPIO callback counts the pulses
  (:class:`hal.gpio.GpioDataReady`) and wakes the loop every
  ``imu.samples_per_wake`` of them (2 by default at 200 Hz: a FIFO-watermark wake),
  which then reads the FIFO once without waiting. No empty reads, and one
  count/status/burst exchange per wake rather than per sample. With
  ``samples_per_wake = 1`` and ``imu.uncounted_reads`` (off by default: it
  relies on chip timing not yet measured on hardware), after a single pulse
  the driver is told so and skips the count
  (:meth:`hal.mpu6050.Mpu6050.read_signalled`): two transactions a sample.

Why two samples a wake by default: a wake costs the loop the same whatever
it reads (the wait and its wake-up, the edge dispatch, the read's fixed
part, every ``on_iteration`` hook), and the price is small and bounded.
The batch is decided sample by sample in the same iteration that read it,
and a detection releases the relay in that call (the relay rule,
docs/safety.md), so deciding → relay stays within the iteration. What
grows is the wait from a sample's capture to its decision: the first
sample of a pair waits for the second, one sample period (5 ms at 200 Hz)
more than with a wake per sample — against a detector that trips a median
340 ms before the impact (docs/detector.md), and 1.1 mm of belt at the
prescribed 0.5 mph. ``benchmarks/monitor_cpu.py`` measures that wait per
mode. The heartbeat edge comes once per wake, so ``firmware/config.py``
keeps ``samples_per_wake`` sample periods within a quarter of the hold
time (at most 2 at 200 Hz with the 50 ms hold), the same bound as
:func:`wait_bound_s`.

A wait for pulses never lasts longer than :attr:`InterruptPacing.wait_s`
(at most a quarter of the relay's hold time with heartbeat drive): if the pulses
stop, the loop reads the FIFO anyway, so the samples keep flowing and the
heartbeat keeps its cadence. When the chip keeps delivering samples but the
line has given no edge for :data:`DEAD_AFTER_SAMPLES_S` of them, the line is
taken for dead (a cut wire, the wrong pin, a broken input): the loop polls,
logs it, and reports it in the health checks (the ``imu-pacing`` line of the
self-test). Samples that do not arrive at all (a lost bus) say nothing about
the line: that is the safety controller's business.

A quiet line is not always a cut one: a callback thread held off that long
by a loaded host counts no edge either (seen on a loaded test machine, where
the simulated chip's thread is not real-time). So the line stays open while
the loop polls, and when it has pulsed for as long again the interrupt paces
the reads once more, logged; only a line that went quiet
:data:`MAX_FALLBACKS` times (a loose connection) is polled for good — times
counted again after an hour of pulses (:data:`FORGET_FALLBACKS_AFTER_S`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, Final, Protocol, cast

from core.clock import Clock
from core.samples import ImuSample
from hal.config import GpioConfig, ImuConfig
from hal.errors import HalError
from hal.gpio import GpioDataReady
from hal.interfaces import DataReady, Imu, PulseCountedImu

log = logging.getLogger(__name__)

DEAD_AFTER_SAMPLES_S: Final = 0.25
"""Seconds of samples, delivered with no edge on the line, after which the line is dead.
Far beyond any scheduling hiccup of the callback thread (the loop's own worst gap under a
network flood was 16 ms, benchmarks/flood.py), and short enough not to matter."""


MAX_FALLBACKS: Final = 3
"""Times the line may go quiet and come back before the loop polls for good: a connection
that keeps coming and going would have the loop change its pacing, and log it, every half
second."""

FORGET_FALLBACKS_AFTER_S: Final = 3600.0
"""Seconds of pulses after the line came back that forget its earlier quiet spells: three
spells of a loaded host a week apart are not a loose connection, and must not leave the loop
polling until the next restart."""


def dead_after_samples(sample_rate_hz: float) -> int:
    """:data:`DEAD_AFTER_SAMPLES_S` in samples at ``sample_rate_hz``."""
    return max(1, math.ceil(DEAD_AFTER_SAMPLES_S * sample_rate_hz))


class Pacing(Protocol):
    """How the loop reads the IMU: :meth:`read` returns the next batch."""

    @property
    def mode(self) -> str:
        """``"interrupt"`` or ``"poll"``: what paces the reads now."""
        ...

    def read(self, imu: Imu) -> Sequence[ImuSample]:
        """Wait for samples (boundedly) and return them; :class:`hal.ImuError` as the IMU's."""
        ...

    def check(self) -> tuple[bool, str]:
        """``(ok, detail)`` for the health checks."""
        ...

    def close(self) -> None: ...


class PollPacing:
    """The driver polls the FIFO, sleeping a sample period between empty reads."""

    mode = "poll"

    def __init__(self, timeout_s: float, *, why: str, ok: bool = True) -> None:
        self.timeout_s = timeout_s
        self._why = why
        self._ok = ok

    def read(self, imu: Imu) -> Sequence[ImuSample]:
        return imu.read_batch(self.timeout_s)

    def check(self) -> tuple[bool, str]:
        return self._ok, f"polling the FIFO ({self._why})"

    def close(self) -> None:
        pass


class InterruptPacing:
    """Reads paced by the data-ready line, falling back to polling when the line is dead.

    ``required``: the config asked for the interrupt (``"interrupt"``), so a
    dead line is a failed health check; with ``"auto"`` it is a note.
    """

    def __init__(
        self,
        line: DataReady,
        *,
        pin: int,
        samples_per_wake: int,
        uncounted_reads: bool = False,
        wait_s: float,
        poll_timeout_s: float,
        dead_after: int,
        required: bool,
    ) -> None:
        if samples_per_wake < 1:
            raise ValueError("samples_per_wake must be at least 1")
        self._line: DataReady | None = line
        self._pin = pin
        self._per_wake = samples_per_wake
        self._uncounted_reads = uncounted_reads
        self.wait_s = wait_s
        """Longest wait for pulses before the FIFO is read anyway."""
        self._poll_timeout_s = poll_timeout_s
        self._dead_after = dead_after
        self._required = required
        self._seen = line.edges
        self._unsignalled = 0
        self.edges = 0
        """Pulses counted so far (frozen at the fallback)."""
        self.wakes = 0
        self.timeouts = 0
        """Waits that ended before ``samples_per_wake`` pulses came."""
        self.fallback: str | None = None
        """Why the loop polls now; None while the interrupt paces it."""
        self.fallbacks = 0
        """Times the line went quiet (within :data:`FORGET_FALLBACKS_AFTER_S` of pulses of
        each other)."""
        self._forget_after = math.ceil(dead_after * FORGET_FALLBACKS_AFTER_S / DEAD_AFTER_SAMPLES_S)
        """:data:`FORGET_FALLBACKS_AFTER_S` in pulses (``dead_after`` is
        :data:`DEAD_AFTER_SAMPLES_S` of them)."""
        self._resumed_edges = 0
        self._quiet: DataReady | None = None
        """The line while the loop polls, watched for pulses that say it works again."""
        self._quiet_edges = 0
        self._imu: Imu | None = None
        self._counted_imu: PulseCountedImu | None = None
        """The IMU last read, when it can use the pulse count (checked once per IMU)."""

    @property
    def mode(self) -> str:
        return "poll" if self._line is None else "interrupt"

    def read(self, imu: Imu) -> Sequence[ImuSample]:
        line = self._line
        if line is None:
            quiet = self._quiet
            if quiet is not None and quiet.edges - self._quiet_edges >= self._dead_after:
                self._resume(quiet)
            return imu.read_batch(self._poll_timeout_s)
        target = self._seen + self._per_wake
        edges = line.wait_for(target, self.wait_s)
        self.wakes += 1
        if edges < target:
            self.timeouts += 1
        pulses = edges - self._seen
        self._seen = self.edges = edges
        # Never waits: the pulses (or the timeout) said when. A driver that can use the count
        # of pulses (one: skip the FIFO count) is told it, where imu.uncounted_reads allows.
        if imu is not self._imu:
            self._imu = imu
            told = self._uncounted_reads and isinstance(imu, PulseCountedImu)
            self._counted_imu = cast(PulseCountedImu, imu) if told else None
        counted = self._counted_imu
        batch = imu.read_batch(0.0) if counted is None else counted.read_signalled(pulses)
        signalled = pulses > 0
        if signalled:
            self._unsignalled = 0
        else:
            self._unsignalled += len(batch)
            if self._unsignalled >= self._dead_after:
                self._fall_back()
        return batch

    def _fall_back(self) -> None:
        line, self._line = self._line, None
        if line is not None and line.edges - self._resumed_edges >= self._forget_after:
            self.fallbacks = 0  # the spells before were an hour of pulses ago
        self.fallbacks += 1
        for_good = self.fallbacks >= MAX_FALLBACKS
        self.fallback = (
            f"GPIO{self._pin} gave no data-ready edge while the IMU delivered "
            f"{self._unsignalled} samples: the INT wire is cut or not connected, or "
            "gpio.pins.imu_int names the wrong pin (wiring/README.md, section 8)"
            + (
                f"; the line went quiet {self.fallbacks} times, so a loose connection"
                if for_good
                else ""
            )
        )
        (log.error if self._required else log.warning)(
            "IMU pacing falls back to polling%s: %s",
            "" if for_good else " until the line pulses again",
            self.fallback,
        )
        if line is None:
            return
        if for_good:
            line.close()
        else:
            self._quiet, self._quiet_edges = line, line.edges

    def _resume(self, line: DataReady) -> None:
        """The quiet line pulsed again for as long as it takes to call it dead: the interrupt
        paces the reads again (whatever held its edges off, it was not a cut wire)."""
        pulses = line.edges - self._quiet_edges
        self._line, self._quiet, self.fallback = line, None, None
        self._seen = self._resumed_edges = line.edges
        self._unsignalled = 0
        log.warning(
            "IMU pacing back on the data-ready interrupt: GPIO%s pulsed %d times while the "
            "loop polled (it had gone quiet %d of %d times allowed: a host too busy to count "
            "its edges, or a loose connection)",
            self._pin,
            pulses,
            self.fallbacks,
            MAX_FALLBACKS,
        )

    def check(self) -> tuple[bool, str]:
        if self.fallback is not None:
            return (
                not self._required,
                f"polling the FIFO since the interrupt failed: {self.fallback}",
            )
        quiet = (
            f"; it went quiet {self.fallbacks} time{'s' if self.fallbacks > 1 else ''} (no edge "
            f"for {self._dead_after} samples) and came back"
            if self.fallbacks
            else ""
        )
        return True, (
            f"paced by the data-ready interrupt on GPIO{self._pin}: {self.edges} edges, a read "
            f"every {self._per_wake} samples, {self.timeouts} of {self.wakes} waits timed "
            f"out{quiet}"
        )

    def close(self) -> None:
        line, self._line = self._line, None
        quiet, self._quiet = self._quiet, None
        for each in (line, quiet):
            if each is not None:
                each.close()


def samples_per_wake(imu: ImuConfig, gpio: GpioConfig) -> int:
    """``imu.samples_per_wake`` as set, else 2 where two sample periods fit within a quarter of
    the heartbeat's hold time (the bound :func:`wait_bound_s` keeps), else 1: a slower sample
    rate (100 Hz: 20 ms a pair against 12.5 ms) wakes at every sample rather than be refused
    for a setting nobody made."""
    if imu.samples_per_wake is not None:
        return imu.samples_per_wake
    if gpio.relay_drive != "heartbeat":
        return 2
    return 2 if 2 / imu.sample_rate_hz <= gpio.heartbeat_hold_s / 4 * (1 + 1e-9) else 1


def wait_bound_s(gpio: GpioConfig, read_timeout_s: float) -> float:
    """The longest wait for pulses: the loop's read timeout, and with heartbeat drive at most
    a quarter of the hold time (12.5 ms of 50).

    A quarter, not a half: the wait is only part of an iteration's gap between heartbeat
    edges. The rest — the read, the decision, a busy host's scheduling — was measured at up to
    16 ms under a network flood (benchmarks/flood.py) and 25 ms on a loaded development
    machine (benchmarks/monitor_cpu.py), so a dead line (wait, time out, read, edge) still
    leaves the hold circuit twice the margin it needs. A working line wakes the loop every
    sample period (5 ms at 200 Hz), long before the bound.
    """
    if gpio.relay_drive == "heartbeat":
        return min(read_timeout_s, gpio.heartbeat_hold_s / 4)
    return read_timeout_s


def open_pacing(
    imu: ImuConfig, gpio: GpioConfig, factory: Any, clock: Clock, read_timeout_s: float
) -> Pacing:
    """The pacing ``imu.pacing`` asks for, on the GPIO devices' pin ``factory``.

    Never raises for the line: a pin that cannot be claimed gives polling,
    reported in the health checks, because the interrupt saves CPU and
    protects nothing.
    """
    if imu.pacing == "poll":
        return PollPacing(read_timeout_s, why="imu.pacing = 'poll'")
    pin = gpio.pins.imu_int
    required = imu.pacing == "interrupt"
    try:
        line = GpioDataReady(pin, factory, clock)
    except HalError as exc:
        (log.error if required else log.warning)("IMU pacing: %s; polling instead", exc)
        return PollPacing(read_timeout_s, why=f"the data-ready line: {exc}", ok=not required)
    return InterruptPacing(
        line,
        pin=pin,
        samples_per_wake=samples_per_wake(imu, gpio),
        uncounted_reads=imu.uncounted_reads,
        wait_s=wait_bound_s(gpio, read_timeout_s),
        poll_timeout_s=read_timeout_s,
        dead_after=dead_after_samples(imu.sample_rate_hz),
        required=required,
    )
