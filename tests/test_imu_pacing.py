"""Interrupt-paced reading: the MPU-6050's data-ready pulse on GPIO4 wakes the loop.

The simulated chip drives its INT output onto a gpiozero mock pin at its own
sample instants; the firmware listens with a real ``DigitalInputDevice`` on
the same pin factory. A dead line (a cut wire, the wrong pin) must never let
the relay's hold circuit lapse: the loop waits at most a quarter of the hold
time, then reads anyway, and soon settles on polling.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
import threading
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol, cast

import pytest

from core.clock import Clock, RealClock, SimClock
from core.errors import ConfigError
from core.samples import ImuSample
from firmware.app import HealthReports
from firmware.config import parse_config
from firmware.link.endpoint import CourierLink
from firmware.pacing import (
    FORGET_FALLBACKS_AFTER_S,
    MAX_FALLBACKS,
    InterruptPacing,
    PollPacing,
    dead_after_samples,
    open_pacing,
    samples_per_wake,
    wait_bound_s,
)
from hal import mpu6050_registers as reg
from hal.config import GpioConfig, ImuConfig
from hal.gpio import GpioDataReady
from hal.mpu6050 import COUNTED_READ_EVERY
from sim.backends import SimulatedHardware, simulated_hardware
from sim.pins import ClockedMockFactory, ObservedMockPin
from tests.app_support import PERIOD, Rig, Standing, TripAt, close_rigs, make_rig

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

INT_PIN = GpioConfig().pins.imu_int
HOLD_S = GpioConfig().heartbeat_hold_s


class HardwareOpener(Protocol):
    def __call__(self, clock: Clock, imu: ImuConfig | None = None) -> SimulatedHardware: ...


LineOpener = Callable[[SimulatedHardware, Clock], GpioDataReady]


@pytest.fixture
def closed_after() -> Iterator[contextlib.ExitStack]:
    """What a test opens, closed after it, last opened first (the line, the pins, the IMU)."""
    with contextlib.ExitStack() as stack:
        yield stack


@pytest.fixture
def open_hardware(closed_after: contextlib.ExitStack) -> HardwareOpener:
    """Simulated hardware with its IMU started, closed after the test."""

    def open_(clock: Clock, imu: ImuConfig | None = None) -> SimulatedHardware:
        sim = simulated_hardware(imu or ImuConfig(), GpioConfig(), clock, Standing())
        closed_after.callback(sim.imu_rig.imu.close)
        closed_after.callback(sim.gpio.close)
        sim.imu_rig.imu.start()
        return sim

    return open_


@pytest.fixture
def open_line(closed_after: contextlib.ExitStack) -> LineOpener:
    """The firmware's data-ready line on the hardware's INT pin, closed after the test."""

    def open_(sim: SimulatedHardware, clock: Clock) -> GpioDataReady:
        line = GpioDataReady(INT_PIN, sim.gpio.factory, clock)
        closed_after.callback(line.close)
        return line

    return open_


def int_pin(sim: SimulatedHardware) -> ObservedMockPin:
    return sim.gpio.factory.observed_pin(INT_PIN)


# --- the simulated chip's INT output ---------------------------------------------------


def test_the_chip_pulses_int_once_per_sample_and_the_gpio_line_counts_them(
    open_hardware: HardwareOpener, open_line: LineOpener
) -> None:
    clock = SimClock()
    sim = open_hardware(clock)
    line = open_line(sim, clock)
    first = line.wait_for(1, 1.0)
    assert first == 1
    woke_at = clock.monotonic()
    assert line.wait_for(first + 10, 1.0) == first + 10
    # The waiter wakes at the tenth sample's instant, not at the timeout.
    assert clock.monotonic() - woke_at == pytest.approx(10 * PERIOD)
    rises = [t for t, high in int_pin(sim).transitions if high]
    assert len(rises) == line.edges
    assert not int_pin(sim).state  # a pulse, not a level: low between samples


def test_with_polling_configured_the_chip_never_raises_int(
    open_hardware: HardwareOpener, open_line: LineOpener
) -> None:
    clock = SimClock()
    sim = open_hardware(clock, ImuConfig(pacing="poll"))
    line = open_line(sim, clock)
    assert sim.imu_rig.chip.peek(reg.INT_ENABLE) == reg.FIFO_OFLOW_EN
    # 0.2 s: fewer samples than fill the FIFO, whose overflow would pulse INT.
    assert line.wait_for(1, 0.2) == 0  # the full timeout, and no edge
    assert clock.monotonic() >= 0.2


def test_the_driver_asks_for_a_push_pull_active_high_pulse_per_sample(
    open_hardware: HardwareOpener,
) -> None:
    clock = SimClock()
    sim = open_hardware(clock)
    chip = sim.imu_rig.chip
    assert chip.peek(reg.INT_ENABLE) == reg.FIFO_OFLOW_EN | reg.DATA_RDY_EN
    assert chip.peek(reg.INT_PIN_CFG) == 0  # active high, push-pull, 50 us pulse


def test_a_latched_active_low_int_stays_asserted_until_the_status_is_read(
    open_hardware: HardwareOpener,
) -> None:
    clock = SimClock()
    sim = open_hardware(clock)
    bus, address = sim.imu_rig.bus, ImuConfig().address
    bus.write_byte_data(address, reg.INT_PIN_CFG, reg.INT_LEVEL | reg.LATCH_INT_EN)
    pin = int_pin(sim)
    assert pin.state  # active low, nothing pending: high
    clock.sleep(3 * PERIOD)
    assert not pin.state  # asserted by the first sample, and held there
    bus.read_byte_data(address, reg.INT_STATUS)
    assert pin.state  # reading the status released it


def test_the_chip_drives_int_on_its_own_thread_on_the_real_clock(
    open_hardware: HardwareOpener, open_line: LineOpener
) -> None:
    """On the real clock (the demo, the benchmark) nobody advances time: the chip's sample
    clock is a thread, and a waiter is woken by the edge itself."""
    clock = RealClock()
    sim = open_hardware(clock)
    line = open_line(sim, clock)
    assert line.wait_for(10, 10.0) >= 10  # a net against a hang, not a timing
    assert len(sim.imu_rig.imu.read_batch(0.0)) >= 10


def test_a_cut_int_wire_leaves_the_pin_at_its_pull_down(
    open_hardware: HardwareOpener, open_line: LineOpener
) -> None:
    clock = SimClock()
    sim = open_hardware(clock)
    line = open_line(sim, clock)
    assert line.wait_for(5, 1.0) == 5
    sim.imu_rig.chip.disconnect_int()
    assert line.wait_for(6, 0.2) == 5
    assert not int_pin(sim).state


# --- the loop ----------------------------------------------------------------------------


def armed(rig: Rig) -> Rig:
    rig.run_for(1.0)
    rig.press_reset()
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    return rig


def heartbeat_gaps(rig: Rig, since: float) -> list[float]:
    """Gaps between the loop's edges on the relay pin from ``since`` (simulated seconds)."""
    pin = rig.app.gpio.factory.observed_pin(GpioConfig().pins.relay)
    times = [t for t, _ in pin.transitions if t >= since]
    return [b - a for a, b in itertools.pairwise(times)]


class HealthLink:
    """Collects what the loop hands the courier for the self-test."""

    def __init__(self) -> None:
        self.checks: list[Mapping[str, tuple[bool, str]]] = []

    def report_health(self, health: object, checks: Mapping[str, tuple[bool, str]]) -> None:
        self.checks.append(checks)


def self_test(rig: Rig) -> Mapping[str, tuple[bool, str]]:
    """The self-test's lines as the loop reports them."""
    link = HealthLink()
    reports = HealthReports(rig.app.monitor, cast(CourierLink, link), rig.clock)
    rig.app.monitor.on_iteration.append(reports)
    rig.run_for(HealthReports.INTERVAL_S + 0.05)
    rig.app.monitor.on_iteration.remove(reports)
    return link.checks[-1]


ONE_PER_WAKE = ImuConfig(samples_per_wake=1)
"""A read at every pulse (the default reads every second one)."""


def test_the_loop_is_paced_by_the_interrupt_one_read_per_sample(tmp_path: Path) -> None:
    paced = make_rig(tmp_path / "irq", imu=ONE_PER_WAKE)
    polled = make_rig(tmp_path / "poll", imu=ImuConfig(pacing="poll"))
    for rig in (paced, polled):
        rig.run_for(0.5)
        rig.sim_imu.bus.counts.clear()
        rig.app.monitor.stats.iterations = rig.app.monitor.stats.empty_reads = 0
        rig.app.monitor.stats.samples = 0
        rig.run_for(2.0)
    assert paced.app.monitor.pacing.mode == "interrupt"
    assert polled.app.monitor.pacing.mode == "poll"
    irq, poll = paced.app.monitor.stats, polled.app.monitor.stats
    assert irq.samples == pytest.approx(400, abs=2) and poll.samples == pytest.approx(400, abs=2)
    assert irq.empty_reads == 0  # woken by the sample itself: never a read for nothing
    assert irq.iterations == irq.samples  # one wake, one read, one heartbeat edge per sample
    irq_ops = sum(paced.sim_imu.bus.counts.values())
    poll_ops = sum(polled.sim_imu.bus.counts.values())
    assert irq_ops < poll_ops
    ok, detail = self_test(paced)["imu-pacing"]
    assert ok and f"data-ready interrupt on GPIO{INT_PIN}" in detail
    assert self_test(polled)["imu-pacing"] == (True, "polling the FIFO (imu.pacing = 'poll')")


def _transactions_a_sample(rig: Rig) -> float:
    rig.run_for(0.5)
    rig.sim_imu.bus.counts.clear()
    stats = rig.app.monitor.stats
    samples_before, errors_before = stats.samples, stats.imu_errors
    rig.run_for(2.0)
    samples = stats.samples - samples_before
    assert samples == pytest.approx(400, abs=2) and stats.imu_errors == errors_before
    return float(sum(rig.sim_imu.bus.counts.values())) / samples


def test_a_read_after_one_pulse_skips_the_fifo_count_when_configured(tmp_path: Path) -> None:
    """With ``imu.uncounted_reads``, each wake after one pulse reads status + snapshot and one
    frame: two transactions a sample, the FIFO counted every COUNTED_READ_EVERY reads."""
    rig = make_rig(tmp_path, imu=dataclasses.replace(ONE_PER_WAKE, uncounted_reads=True))
    assert _transactions_a_sample(rig) <= 2 + 1 / COUNTED_READ_EVERY + 0.01


def test_by_default_every_read_asks_the_fifo_count(tmp_path: Path) -> None:
    """Off by default (the chip behaviour the uncounted read relies on is not measured on
    hardware): count, status + snapshot, frames — three transactions a sample."""
    rig = make_rig(tmp_path, imu=ONE_PER_WAKE)
    assert _transactions_a_sample(rig) >= 3 - 0.01


def test_by_default_the_loop_reads_every_second_pulse_and_holds_once_a_read(
    tmp_path: Path,
) -> None:
    """``imu.samples_per_wake = 2``, the default (a FIFO-watermark wake): one wake, one FIFO
    read (count, status, burst: three transactions for two samples) and one heartbeat edge per
    two samples, the edges 10 ms apart at 200 Hz: within a quarter of the hold time."""
    assert samples_per_wake(ImuConfig(), GpioConfig()) == 2
    rig = armed(make_rig(tmp_path))
    rig.sim_imu.bus.counts.clear()
    stats = rig.app.monitor.stats
    since = rig.clock.monotonic()
    iterations, samples_before, errors_before = stats.iterations, stats.samples, stats.imu_errors
    rig.run_for(2.0)
    samples, wakes = stats.samples - samples_before, stats.iterations - iterations
    assert samples == pytest.approx(400, abs=2) and stats.imu_errors == errors_before
    assert stats.empty_reads == 0
    assert wakes == pytest.approx(samples / 2, abs=1)
    assert sum(rig.sim_imu.bus.counts.values()) <= wakes * 3 + 2
    gaps = heartbeat_gaps(rig, since)
    assert len(gaps) == pytest.approx(wakes, abs=1)
    assert max(gaps) <= 2 * PERIOD + 1e-9 <= HOLD_S / 4 + 1e-9


def test_a_trip_still_opens_the_relay_within_one_sample_when_paced_by_interrupt(
    tmp_path: Path,
) -> None:
    detector = TripAt(3.0)
    imu = ImuConfig(pacing="interrupt", samples_per_wake=1)
    rig = armed(make_rig(tmp_path, detector=detector, imu=imu))
    rig.run_for(2.0)
    assert rig.state == "TRIPPED" and detector.fired_at is not None
    opened = rig.hardware.opened_after(detector.fired_at - PERIOD)
    assert opened is not None and opened - detector.fired_at <= PERIOD


@pytest.mark.parametrize("trip_at", [3.0, 3.005])
def test_with_two_samples_a_wake_a_trip_opens_the_relay_in_the_iteration_that_decides_it(
    tmp_path: Path, trip_at: float
) -> None:
    """The batched default: the relay opens in the iteration that decided (at the clock time
    of that iteration: no later wake), and the tripping sample waited at most one period more
    for its read — whether it was the first of its pair or the second."""
    detector = TripAt(trip_at)
    decided: list[float] = []
    rig = armed(make_rig(tmp_path, detector=detector, imu=ImuConfig(pacing="interrupt")))
    controller = rig.app.controller
    on_samples = controller.on_samples

    def note_decision(batch: Sequence[ImuSample], now: float) -> None:
        fired = detector.fired_at
        on_samples(batch, now)
        if fired is None and detector.fired_at is not None:
            decided.append(now)

    controller.on_samples = note_decision  # type: ignore[method-assign]
    rig.run_for(2.0)
    assert rig.state == "TRIPPED" and detector.fired_at is not None and len(decided) == 1
    opened = rig.hardware.opened_after(detector.fired_at - PERIOD)
    assert opened is not None and opened <= decided[0]
    assert opened - detector.fired_at <= 2 * PERIOD


@pytest.mark.parametrize("pacing", ["auto", "interrupt"])
def test_a_line_that_dies_while_armed_keeps_the_relay_held_and_falls_back_to_polling(
    tmp_path: Path, pacing: str
) -> None:
    """The decision: a dead interrupt line is not a reason to stop the belt. It protects
    nothing (the FIFO holds the samples; the IMU-silent fault still trips on a lost sensor), so
    the loop reads anyway after at most a quarter of the hold time, then polls (until the
    line pulses again) and says so."""
    rig = armed(make_rig(tmp_path, imu=ImuConfig(pacing=pacing)))  # type: ignore[arg-type]
    cut_at = rig.clock.monotonic()
    rig.sim_imu.chip.disconnect_int()
    rig.run_for(3.0)
    assert rig.state == "ARMED"
    assert rig.hardware.opened_after(cut_at) is None  # the hold circuit never lapsed
    assert max(heartbeat_gaps(rig, cut_at)) <= HOLD_S / 4 + 1e-9
    assert rig.app.monitor.pacing.mode == "poll"
    ok, detail = self_test(rig)["imu-pacing"]
    assert ok is (pacing == "auto")  # asked for the interrupt: a failed self-test line
    assert f"GPIO{INT_PIN} gave no data-ready edge" in detail
    assert rig.app.monitor.stats.imu_errors == 0


def test_a_line_that_comes_back_paces_the_loop_again_and_the_belt_never_stopped(
    tmp_path: Path,
) -> None:
    """The line goes quiet for a second (the chip's INT wire off, as a callback thread a busy
    host holds off counts nothing), then pulses again: the loop polls meanwhile, goes back to
    the interrupt, and the hold circuit never lapsed."""
    rig = armed(make_rig(tmp_path, imu=ImuConfig(pacing="interrupt")))
    cut_at = rig.clock.monotonic()
    chip = rig.app.monitor.pacing
    rig.sim_imu.chip.disconnect_int()
    rig.run_for(1.0)
    assert chip.mode == "poll"
    rig.sim_imu.chip.connect_int(rig.app.gpio.factory.observed_pin(INT_PIN))
    rig.run_for(1.0)
    assert chip.mode == "interrupt"
    assert rig.state == "ARMED" and rig.hardware.opened_after(cut_at) is None
    assert max(heartbeat_gaps(rig, cut_at)) <= HOLD_S / 4 + 1e-9
    ok, detail = self_test(rig)["imu-pacing"]
    assert ok and "it went quiet 1 time (no edge for 50 samples) and came back" in detail, detail


def test_a_line_dead_from_the_start_still_arms_and_holds(tmp_path: Path) -> None:
    """INT never wired (or gpio.pins.imu_int names the wrong pin): the loop starts waiting
    for edges that never come, each wait bounded, and settles on polling."""
    rig = make_rig(tmp_path)
    rig.sim_imu.chip.disconnect_int()
    armed(rig)
    since = rig.clock.monotonic()
    rig.run_for(2.0)
    assert rig.state == "ARMED" and rig.hardware.opened_after(since) is None
    assert rig.app.monitor.pacing.mode == "poll"
    assert max(heartbeat_gaps(rig, 0.0)) <= HOLD_S / 4 + 1e-9


def test_the_wait_for_an_edge_is_bounded_by_a_quarter_of_the_hold_time() -> None:
    short_hold = GpioConfig(heartbeat_hold_s=0.02)
    assert wait_bound_s(short_hold, read_timeout_s=0.025) == pytest.approx(0.005)
    assert wait_bound_s(GpioConfig(), read_timeout_s=0.025) == pytest.approx(0.0125)
    static = GpioConfig(relay_drive="static", bench_rig=True)
    assert wait_bound_s(static, read_timeout_s=0.025) == pytest.approx(0.025)


def test_a_busy_pin_gives_polling_with_a_reason(
    open_hardware: HardwareOpener, open_line: LineOpener
) -> None:
    clock = SimClock()
    sim = open_hardware(clock)
    open_line(sim, clock)  # the pin taken
    pacing = open_pacing(ImuConfig(), GpioConfig(), sim.gpio.factory, clock, 0.025)
    assert isinstance(pacing, PollPacing)
    ok, detail = pacing.check()
    assert ok and f"GPIO {INT_PIN}" in detail  # "auto": a note, not a failure
    required = dataclasses.replace(ImuConfig(), pacing="interrupt")
    refused = open_pacing(required, GpioConfig(), sim.gpio.factory, clock, 0.025)
    assert refused.check()[0] is False


def test_poll_configured_never_opens_the_line(open_hardware: HardwareOpener) -> None:
    clock = SimClock()
    sim = open_hardware(clock, ImuConfig(pacing="poll"))
    pacing = open_pacing(ImuConfig(pacing="poll"), GpioConfig(), sim.gpio.factory, clock, 0.025)
    assert isinstance(pacing, PollPacing)
    assert pacing.check() == (True, "polling the FIFO (imu.pacing = 'poll')")
    # The pin is free for anything else.
    GpioDataReady(INT_PIN, sim.gpio.factory, clock).close()


def test_an_edge_before_the_wait_ends_it_at_once(
    open_hardware: HardwareOpener, open_line: LineOpener
) -> None:
    """The edge callback runs on the pin factory's thread, so an edge may land while the loop
    is getting ready to wait: it must be counted, not waited for again."""
    clock = SimClock()
    sim = open_hardware(clock, ImuConfig(pacing="poll"))
    sim.imu_rig.chip.disconnect_int()  # the test drives the line
    line = open_line(sim, clock)
    int_pin(sim).drive_high()
    int_pin(sim).drive_low()
    assert line.wait_for(1, 3600.0) == 1
    assert clock.monotonic() < 1.0  # it did not sit out the hour


def test_an_edge_between_the_count_check_and_clearing_the_wake_is_not_waited_for(
    open_hardware: HardwareOpener, open_line: LineOpener
) -> None:
    """The callback thread may count the awaited edge (and set the wake) just after the loop
    found too few and just before it clears the wake: the count is looked at again."""
    from hal import gpio

    clock = SimClock()
    sim = open_hardware(clock, ImuConfig(pacing="poll"))
    sim.imu_rig.chip.disconnect_int()  # the test drives the line
    line = open_line(sim, clock)
    clear = gpio._Wakeup.clear

    def edge_then_clear(self: gpio._Wakeup) -> None:
        int_pin(sim).drive_high()  # the other thread, at the worst moment
        int_pin(sim).drive_low()
        clear(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gpio._Wakeup, "clear", edge_then_clear)
        assert line.wait_for(1, 3600.0) == 1
    assert clock.monotonic() < 1.0  # it did not sit out the hour


def test_a_closed_line_is_never_waited_on(
    open_hardware: HardwareOpener, open_line: LineOpener
) -> None:
    clock = SimClock()
    sim = open_hardware(clock, ImuConfig(pacing="poll"))
    line = open_line(sim, clock)
    line.close()
    assert line.wait_for(1, 3600.0) == 0
    assert clock.monotonic() < 1.0


def test_the_edge_callback_sets_its_threads_policy_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """One system call on the first edge, none on the next hundreds a second."""
    from hal import gpio

    applied: list[str] = []

    class Policy:
        def apply(self, what: str) -> bool:
            applied.append(what)
            return True

    monkeypatch.setattr(gpio.SchedulingPolicy, "of_this_thread", classmethod(lambda cls: Policy()))
    factory = ClockedMockFactory(SimClock())
    line = GpioDataReady(INT_PIN, factory, factory.clock)
    try:
        for _ in range(3):
            factory.observed_pin(INT_PIN).drive_high()
            factory.observed_pin(INT_PIN).drive_low()
        assert line.edges == 3
        assert len(applied) == 1
    finally:
        line.close()
        factory.close()


def test_the_data_ready_wakeup_returns_at_once_on_a_negative_timeout() -> None:
    """As ``threading.Event.wait`` does: a deadline already past is not an error."""
    from hal.gpio import _Wakeup

    wakeup = _Wakeup()
    assert wakeup.wait(-0.5) is False
    wakeup.set()
    assert wakeup.wait(-0.5) is True


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[imu]\npacing = "edge"\n', "imu.pacing"),
        ("[imu]\nsamples_per_wake = 0\n", "imu.samples_per_wake: must be greater than 0"),
        ("[imu]\nsamples_per_wake = 3\n", "too long for the heartbeat relay drive"),
    ],
)
def test_pacing_settings_are_checked(toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(tomllib.loads(toml))


def test_interrupt_pacing_refuses_zero_samples_per_wake() -> None:
    class Never:
        edges = 0

        def wait_for(self, edges: int, timeout: float) -> int:
            return 0

        def close(self) -> None:
            pass

    with pytest.raises(ValueError, match="samples_per_wake"):
        InterruptPacing(
            Never(),
            pin=INT_PIN,
            samples_per_wake=0,
            wait_s=0.025,
            poll_timeout_s=0.025,
            dead_after=50,
            required=False,
        )


def test_two_samples_per_wake_fit_a_quarter_of_the_hold_time() -> None:
    config = parse_config(tomllib.loads("[imu]\nsamples_per_wake = 2\n"))
    assert config.imu.samples_per_wake == 2


def test_the_edge_callback_thread_adopts_the_loops_realtime_policy() -> None:
    """systemd's reset-on-fork starts every new thread at normal priority, the pin factory's
    callback thread included: on its first edge it takes the policy of the thread that opened
    the line, so it never holds the GIL at normal priority while the loop waits for it."""
    factory = ClockedMockFactory(SimClock())
    opened: list[GpioDataReady] = []
    seen: list[tuple[int, int]] = []

    def loop_thread() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(1))
        except PermissionError:
            return
        opened.append(GpioDataReady(INT_PIN, factory, factory.clock))

    def callback_thread() -> None:
        pin = factory.observed_pin(INT_PIN)
        pin.drive_high()  # gpiozero runs the edge callback here, in this thread
        pin.drive_low()
        seen.append((os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK, opened[0].edges))

    for target in (loop_thread, callback_thread):
        if target is callback_thread and not opened:
            factory.close()
            pytest.skip("this host does not allow SCHED_FIFO")
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    try:
        assert seen == [(os.SCHED_FIFO, 1)]
    finally:
        opened[0].close()
        factory.close()


def test_unset_samples_per_wake_is_chosen_to_fit_the_hold_time_and_a_set_one_is_checked() -> None:
    """Unset, two samples a wake at 200 Hz and one at 100 Hz (a pair, 20 ms, would not fit a
    quarter of the 50 ms hold), so a monitor config at 100 Hz is not refused for a setting it
    never made; set to 2 at 100 Hz, it is refused, naming the key."""
    at_100 = parse_config(tomllib.loads("[imu]\nsample_rate_hz = 100\n"))
    assert samples_per_wake(at_100.imu, at_100.gpio) == 1
    assert samples_per_wake(ImuConfig(samples_per_wake=1), GpioConfig()) == 1
    relay_held = dataclasses.replace(GpioConfig(), relay_drive="static")
    assert samples_per_wake(at_100.imu, relay_held) == 2
    with pytest.raises(ConfigError, match=r"imu\.samples_per_wake: 2 samples"):
        parse_config(tomllib.loads("[imu]\nsample_rate_hz = 100\nsamples_per_wake = 2\n"))


def test_one_sample_a_wake_set_by_hand_is_accepted_wherever_leaving_it_unset_is() -> None:
    """At 62.5 Hz a sample period (16 ms) is over a quarter of the 50 ms hold but within what
    the sample rate's own check allows: unset, the monitor wakes at every sample; set to 1 by
    hand — the same wakes — it was refused as "too long for the heartbeat relay drive"."""
    rate = "[imu]\nsample_rate_hz = 62.5\ndlpf_hz = 21\n"
    unset = parse_config(tomllib.loads(rate))
    assert samples_per_wake(unset.imu, unset.gpio) == 1
    by_hand = parse_config(tomllib.loads(rate + "samples_per_wake = 1\n"))
    assert samples_per_wake(by_hand.imu, by_hand.gpio) == 1
    with pytest.raises(ConfigError, match=r"imu\.samples_per_wake: 2 samples \(32 ms\)"):
        parse_config(tomllib.loads(rate + "samples_per_wake = 2\n"))


# --- the pacing's own rules, on a scripted line and IMU -------------------------------------


class ScriptedLine:
    """A data-ready line whose pulse count after each wait the test scripts."""

    def __init__(self, counts: Sequence[int]) -> None:
        self.edges = 0
        self._counts = iter(counts)
        self.waits: list[tuple[int, float]] = []
        self.closed = False

    def wait_for(self, edges: int, timeout: float) -> int:
        self.waits.append((edges, timeout))
        self.edges = next(self._counts)
        return self.edges

    def close(self) -> None:
        self.closed = True


class ScriptedImu:
    """Delivers ``per_read`` samples at every read; notes each read's timeout."""

    sample_rate_hz = 200.0

    def __init__(self, per_read: int = 2) -> None:
        self.per_read = per_read
        self.timeouts: list[float] = []

    def start(self) -> None:
        pass

    def read_batch(self, timeout: float) -> Sequence[ImuSample]:
        self.timeouts.append(timeout)
        return [ImuSample(0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)] * self.per_read

    def close(self) -> None:
        pass


class CountedImu(ScriptedImu):
    """An IMU that can use the pulse count (:class:`hal.interfaces.PulseCountedImu`)."""

    def __init__(self) -> None:
        super().__init__()
        self.pulses: list[int] = []

    def read_signalled(self, pulses: int) -> Sequence[ImuSample]:
        self.pulses.append(pulses)
        return self.read_batch(0.0)


def scripted_pacing(
    line: ScriptedLine, *, per_wake: int = 2, dead_after: int = 6, uncounted: bool = False
) -> InterruptPacing:
    return InterruptPacing(
        line,
        pin=INT_PIN,
        samples_per_wake=per_wake,
        uncounted_reads=uncounted,
        wait_s=0.0125,
        poll_timeout_s=0.025,
        dead_after=dead_after,
        required=True,
    )


def test_a_line_is_dead_after_its_count_of_unsignalled_samples_then_polled() -> None:
    line, imu = ScriptedLine([0] * 3), ScriptedImu(per_read=2)
    pacing = scripted_pacing(line, dead_after=6)
    for _ in range(2):
        assert len(pacing.read(imu)) == 2
    assert pacing.mode == "interrupt"  # 4 samples without an edge: not yet
    pacing.read(imu)  # the 6th sample
    assert pacing.mode == "poll"
    assert not line.closed  # watched for pulses while the loop polls
    assert line.waits == [(2, 0.0125)] * 3  # each wait bounded by wait_s
    ok, detail = pacing.check()
    assert not ok and f"GPIO{INT_PIN} gave no data-ready edge while the IMU delivered 6 " in detail
    pacing.read(imu)  # polling now: with the loop's read timeout, the line no longer asked
    assert imu.timeouts == [0.0, 0.0, 0.0, 0.025] and len(line.waits) == 3
    pacing.close()
    assert line.closed


def test_a_quiet_line_that_pulses_again_paces_the_reads_again() -> None:
    """A callback thread held off by a busy host counts no edge, as a cut wire: once the line
    has pulsed for as long as it took to call it dead, the interrupt paces the reads again
    (before: the loop polled for good, and the self-test blamed the wire)."""
    line, imu = ScriptedLine([0, 0, 0, 8, 10]), ScriptedImu(per_read=2)
    pacing = scripted_pacing(line, dead_after=6)
    for _ in range(3):
        pacing.read(imu)
    assert pacing.mode == "poll"
    line.edges = 5  # the callback thread counts again, the loop still polls
    pacing.read(imu)
    assert pacing.mode == "poll" and len(line.waits) == 3  # 5 pulses: not yet as long
    line.edges = 6
    pacing.read(imu)  # the 6th pulse: the line works
    assert pacing.mode == "interrupt" and imu.timeouts[-1] == 0.025  # this read still polled
    assert len(pacing.read(imu)) == 2 and line.waits[-1] == (8, 0.0125)  # then the interrupt
    ok, detail = pacing.check()
    assert ok, detail
    assert detail.startswith(f"paced by the data-ready interrupt on GPIO{INT_PIN}: 8 edges")
    assert detail.endswith("; it went quiet 1 time (no edge for 6 samples) and came back")
    assert not line.closed


def test_a_line_that_keeps_going_quiet_is_polled_for_good() -> None:
    """A loose connection: quiet, back, quiet... The third time the loop polls for good and
    lets the line go, and the self-test says why."""
    line, imu = ScriptedLine([0] * 9), ScriptedImu(per_read=2)
    pacing = scripted_pacing(line, dead_after=6)
    for time in range(1, MAX_FALLBACKS + 1):
        for _ in range(3):
            pacing.read(imu)
        assert pacing.mode == "poll" and pacing.fallbacks == time
        if time < MAX_FALLBACKS:
            assert not line.closed
            line.edges += 6
            pacing.read(imu)
            assert pacing.mode == "interrupt"
            line._counts = iter([line.edges] * 3)  # quiet again from here
    assert line.closed
    line.edges += 100
    pacing.read(imu)
    assert pacing.mode == "poll"
    ok, detail = pacing.check()
    assert not ok and detail.endswith(
        f"the line went quiet {MAX_FALLBACKS} times, so a loose connection"
    )


def test_samples_without_an_edge_count_only_while_no_edge_comes() -> None:
    """An edge between them starts the count again: scattered timed-out waits on a working
    line never add up to a dead one."""
    line = ScriptedLine([0, 2, 2, 4, 4, 6, 6, 8])
    pacing = scripted_pacing(line, dead_after=4)
    for _ in range(8):
        pacing.read(ScriptedImu(per_read=2))
        assert pacing.mode == "interrupt"
    assert not line.closed


def test_the_check_counts_wakes_and_timeouts_and_close_frees_the_line() -> None:
    line = ScriptedLine([2, 4, 5, 7])
    pacing = scripted_pacing(line)
    imu = ScriptedImu()
    for _ in range(4):
        pacing.read(imu)
    assert pacing.check() == (
        True,
        f"paced by the data-ready interrupt on GPIO{INT_PIN}: 7 edges, a read every 2 samples, "
        "1 of 4 waits timed out",
    )
    pacing.close()
    assert line.closed and pacing.mode == "poll"


def test_an_imu_that_counts_pulses_is_told_how_many_came_and_only_that_imu() -> None:
    line = ScriptedLine([1, 3, 3, 4, 5])
    pacing = scripted_pacing(line, per_wake=1, dead_after=50, uncounted=True)
    plain, counted = ScriptedImu(), CountedImu()
    pacing.read(plain)  # a plain IMU first: read as ever
    for _ in range(3):
        pacing.read(counted)
    pacing.read(plain)  # and again: never the other IMU's cheaper read
    assert counted.pulses == [2, 0, 1]
    assert plain.timeouts == [0.0, 0.0]


def test_quiet_spells_an_hour_of_pulses_apart_never_add_up_to_polling_for_good() -> None:
    """A loaded host that held the callback thread off now and then over a week is not a loose
    connection: an hour of pulses after the line came back forgets the spells before (before:
    the third spell, days later, left the loop polling until a restart)."""
    line, imu = ScriptedLine([]), ScriptedImu(per_read=2)
    pacing = scripted_pacing(line, dead_after=6)
    hour = math.ceil(6 * FORGET_FALLBACKS_AFTER_S / 0.25)  # 6 pulses are the quarter second

    def quiet_spell() -> None:
        line._counts = iter([line.edges] * 3)
        for _ in range(3):
            pacing.read(imu)
        assert pacing.mode == "poll"
        line.edges += 6
        pacing.read(imu)
        assert pacing.mode == "interrupt"

    for _ in range(MAX_FALLBACKS + 2):
        quiet_spell()
        line.edges += hour  # then an hour of pulses
        line._counts = iter([line.edges])
        pacing.read(imu)
    assert pacing.fallbacks == 1 and not line.closed
    # and spells closer together still mean a loose connection
    for _ in range(MAX_FALLBACKS - 1):
        quiet_spell()
    line._counts = iter([line.edges] * 3)
    for _ in range(3):
        pacing.read(imu)
    assert pacing.fallbacks == MAX_FALLBACKS and line.closed


def test_a_line_is_dead_after_a_quarter_second_of_samples_rounded_up() -> None:
    assert dead_after_samples(200.0) == 50
    assert dead_after_samples(30.0) == 8  # 7.5 samples


def test_the_wait_for_an_edge_is_never_longer_than_the_loops_read_timeout() -> None:
    assert wait_bound_s(GpioConfig(), read_timeout_s=0.01) == 0.01  # under 12.5 ms


@pytest.mark.parametrize(("pacing", "level"), [("interrupt", "ERROR"), ("auto", "WARNING")])
def test_a_line_that_fails_is_logged_as_an_error_only_where_the_interrupt_was_asked_for(
    open_hardware: HardwareOpener,
    open_line: LineOpener,
    caplog: pytest.LogCaptureFixture,
    pacing: str,
    level: str,
) -> None:
    """``"interrupt"``: a dead or busy line is a failed health check, so its log line is an
    error; ``"auto"``: a note, so a warning. Both the pin that cannot be claimed and the line
    that dies later."""
    clock = SimClock()
    sim = open_hardware(clock)
    open_line(sim, clock)  # the pin taken
    imu = dataclasses.replace(ImuConfig(), pacing=pacing)
    with caplog.at_level("WARNING", logger="firmware.pacing"):
        open_pacing(imu, GpioConfig(), sim.gpio.factory, clock, 0.025)
        dead = InterruptPacing(
            ScriptedLine([0] * 3),
            pin=INT_PIN,
            samples_per_wake=2,
            wait_s=0.0125,
            poll_timeout_s=0.025,
            dead_after=6,
            required=pacing == "interrupt",
        )
        for _ in range(3):
            dead.read(ScriptedImu(per_read=2))
    assert dead.mode == "poll"
    assert [(r.levelname, r.getMessage().split(":")[0]) for r in caplog.records] == [
        (level, "IMU pacing"),
        (level, "IMU pacing falls back to polling until the line pulses again"),
    ]


@pytest.mark.parametrize(
    ("rate_hz", "hold_s"),
    [(200.0, 0.04), (1000.0 / 11, 0.088)],  # a pair of sample periods: exactly a quarter hold
)
def test_unset_samples_per_wake_is_two_exactly_where_a_set_two_is_accepted(
    rate_hz: float, hold_s: float
) -> None:
    """At the bound, two sample periods equal to a quarter of the hold time (the second pair
    only to within rounding), the config accepts ``samples_per_wake = 2``, so the choice for
    an unset one must be 2 too; a hold a millisecond shorter refuses 2 and the choice is 1."""
    for hold, fits in ((hold_s, True), (hold_s - 0.001, False)):
        toml = f"[imu]\nsample_rate_hz = {rate_hz!r}\n[gpio]\nheartbeat_hold_s = {hold!r}\n"
        unset = parse_config(tomllib.loads(toml))
        assert samples_per_wake(unset.imu, unset.gpio) == (2 if fits else 1)
        set_two = toml.replace("[gpio]", "samples_per_wake = 2\n[gpio]")
        if fits:
            assert parse_config(tomllib.loads(set_two)).imu.samples_per_wake == 2
        else:
            with pytest.raises(ConfigError, match=r"imu\.samples_per_wake: 2 samples"):
                parse_config(tomllib.loads(set_two))
