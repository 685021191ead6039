"""The loop's shell: decisions that hand mutation (mut28) found no test noticing.

Safety rule 1 (the belt runs only while a healthy monitor holds the relay) rests, around the
safety controller, on the relay's contact read back (:mod:`firmware.contact`), the loop that
runs everything (:mod:`firmware.monitor`), the app's start-up and teardown
(:mod:`firmware.app`) and the status light a walker reads (:mod:`firmware.status_light`).
The end-to-end tests run the real loop, driver and relay model on a simulated clock
(:mod:`tests.app_support`) and assert what the walker would see: the relay's contact, the
state, the light.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.clock import SimClock
from core.protocol.events import EventType
from firmware.app import build_app
from firmware.contact import ContactWatch, Mismatch
from firmware.monitor import Monitor
from firmware.safety import STILL_MEASURING_REASON, SafetyState
from firmware.status_light import StatusLight, safety_pattern
from hal.buzzer_patterns import Pattern
from hal.gpio import GpioStatusLed
from sim.backends import simulated_hardware
from tests.app_support import TripOnDemand, armed_rig, close_rigs, make_config, make_rig

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)


# -- firmware/contact.py -------------------------------------------------------------------
# Times are exact in binary (0.125 s steps, a 0.5 s debounce), so each limit is met exactly.


def test_a_mismatch_says_the_widest_gap_of_its_own_readings() -> None:
    """The mismatch's ``widest_gap_s`` is the longest gap between the readings that saw *it*:
    the controller's reason says "the loop read it as seldom as every … ms" from it, and
    "no loop stall" when it is within the debounce. A welded contact read only seldom (the
    fault, named), then agreeing again, then a latch dropped while armed and read every loop:
    the second reason carried the first one's gap — "read as seldom as every 750 ms" for a
    loop reading every 125 ms, and no "no loop stall" (mutant: the gap not reset at a new
    disagreement). The widest, not the last: a reported disagreement read at shrinking
    gaps keeps its widest (mutant: the widest replaced by the latest gap)."""
    watch = ContactWatch(0.5)
    assert watch.update(False, True, 0.0) is None  # closed while released ...
    assert watch.update(False, True, 0.75) is None  # ... read after a stall: counted from here
    slow = watch.update(False, True, 1.5)
    assert slow == Mismatch(False, since=0.75, lasted_s=0.75) and slow.widest_gap_s == 0.75
    later = watch.update(False, True, 1.625)  # still closed, now read every 125 ms
    assert later is not None and later.widest_gap_s == 0.75
    assert watch.update(False, False, 1.75) is None  # agrees again
    assert watch.update(True, True, 2.25) is None  # armed, closed: as it should
    assert watch.update(True, False, 2.375) is None  # the latch dropped
    assert watch.update(True, False, 2.625) is None  # a 0.25 s gap ...
    assert watch.update(True, False, 2.75) is None  # ... then 0.125 s ones
    dropped = watch.update(True, False, 2.875)
    assert dropped == Mismatch(True, since=2.375, lasted_s=0.5)
    assert dropped.widest_gap_s == 0.25


# -- firmware/monitor.py -------------------------------------------------------------------


@pytest.mark.parametrize("ending", [KeyboardInterrupt, SystemExit], ids=["ctrl-c", "exit"])
def test_a_loop_ended_by_an_interrupt_or_exit_releases_the_relay(
    tmp_path: Path, ending: type[BaseException]
) -> None:
    """A Ctrl-C (the demo, a technician's foreground run) or a ``sys.exit`` reaching the loop
    is no bug: the controller is not told (no FAULT, no alert), but the relay is released on
    the way out all the same, before the exception goes on. A static drive holds the level
    it was given: without the loop's own release (mutant: the release dropped, or only
    ``Exception`` caught) the belt ran on after the loop had gone, until the process died."""
    rig = armed_rig(tmp_path, relay_drive="static")
    stop_at = rig.clock.monotonic() + 0.5

    def interrupt(monitor: Monitor) -> None:
        if rig.clock.monotonic() >= stop_at:
            raise ending

    rig.app.monitor.on_iteration.append(interrupt)
    with pytest.raises(ending):
        rig.run_for(2.0)
    assert not rig.hardware.contact_closed()
    assert rig.state == "ARMED"  # not told: an interrupt is no fault
    assert EventType.FAULT not in rig.events()


def test_an_iteration_whose_read_failed_counts_it_and_hands_the_hooks_no_samples(
    tmp_path: Path,
) -> None:
    """A noisy line: reads fail between good ones. Each failure is counted (the self-test's loop
    line says "… failed"), and the hooks that measure (the guided session's step counter)
    see no samples on those iterations: a batch kept from the last good read was counted
    again at every failed one (mutant: ``last_batch`` not emptied at the start of an
    iteration; the failure not counted)."""
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    assert rig.sim_imu is not None
    stats = rig.app.monitor.stats
    assert stats.imu_errors == 0 and stats.samples > 0
    seen: list[tuple[int, int]] = []  # (failures so far, samples handed to the hooks)
    rig.app.monitor.on_iteration.append(
        lambda monitor: seen.append((monitor.stats.imu_errors, len(monitor.last_batch)))
    )
    for _ in range(5):  # a noisy line: the next reads come back damaged, the loop goes on
        rig.sim_imu.bus.inject_garbage(3)
        rig.run_for(0.05)
    assert stats.imu_errors > 0
    after = list(itertools.pairwise(seen))
    failed = [handed for (before, _), (errors, handed) in after if errors > before]
    assert any(errors > before and good > 0 for (before, good), (errors, _) in after)
    assert failed and all(handed == 0 for handed in failed)
    assert seen[-1][0] == stats.imu_errors


# -- firmware/status_light.py ----------------------------------------------------------------


@dataclass
class _Safety:
    state: SafetyState
    reason: str
    measuring: bool


class _NoLed:
    def show(self, pattern: Pattern, now: float) -> None:
        pass


@pytest.mark.parametrize(
    ("state", "reason", "name"),
    [
        (SafetyState.STANDBY, STILL_MEASURING_REASON, "starting"),
        (SafetyState.FAULT, "IMU lost: no data for 0.1 s", "fault"),
        (SafetyState.TRIPPED, "stumble detected", "tripped"),
        (SafetyState.STARTING, "monitor started", "starting"),
    ],
)
def test_the_light_while_the_worn_check_measures(
    state: SafetyState, reason: str, name: str
) -> None:
    """The sensor-worn check measures again for its first seconds after a FAULT too, so
    ``measuring`` is true outside STANDBY: only STANDBY turns to the ``starting`` blink
    ("wait"); a FAULT still shows ``fault`` and a trip ``tripped`` (mutants: the STANDBY
    condition dropped in :func:`safety_pattern`, or ``measuring`` passed in every state).
    A press refused as still measuring says "sensor not worn: still measuring", whose words
    say to wait: ``starting``, not ``not_worn`` (mutant: every "sensor not worn" reason
    shown as ``not_worn``)."""
    assert safety_pattern(state, reason, measuring=True) == name
    light = StatusLight(_NoLed(), _Safety(state, reason, measuring=True))
    assert light.choose(0.0) == name


def test_an_led_whose_pin_fails_never_stops_the_loop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The status LED's pin fails under a walk (its gpiozero device gone: the driver says so
    as a :class:`~hal.errors.HalError`, no ``OSError``), and a fall comes: the LED's next
    change (ARMED's steady light to the trip's flashing) fails. The light logs it once and
    the loop goes on: the trip releases the relay, the loop keeps running. Catching only
    ``OSError`` there let the driver's error end the loop (mutant)."""
    detector = TripOnDemand()
    rig = armed_rig(tmp_path, detector=detector)
    led = rig.app.gpio.status_led
    assert isinstance(led, GpioStatusLed)
    led._device.close()  # the pin gone from under the driver
    detector.trip = True
    rig.run_for(1.0)
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    assert caplog.text.count("status LED failed") == 1
    iterations = rig.app.monitor.stats.iterations
    rig.run_for(0.5)
    assert rig.app.monitor.stats.iterations > iterations


def test_an_imu_that_fails_to_start_is_a_fault_at_once(tmp_path: Path) -> None:
    """The sensor does not answer when the monitor starts (unplugged, wrong address): the
    start itself is the FAULT, with the driver's words, before the loop's first read.
    Only logged, the monitor sat in STARTING until the reads' own failures faulted it later,
    under another reason (mutant: the controller not told)."""
    config = make_config(tmp_path)
    clock = SimClock()
    sim = simulated_hardware(config.imu, config.gpio, clock)
    app = build_app(config, clock, imu=sim.imu_rig.imu, gpio=sim.gpio, courier=None)
    try:
        sim.imu_rig.bus.disconnect()  # the sensor's cable out before the start
        app.start()
        assert app.controller.state is SafetyState.FAULT
        assert app.controller.reason.startswith("IMU error: MPU-6050 at 0x68")
        assert "does not answer" in app.controller.reason
        assert not sim.gpio.hardware.contact_closed()  # type: ignore[union-attr]
    finally:
        app.close(drain_timeout=0.1)


# -- firmware/app.py -----------------------------------------------------------------------


def test_closing_the_app_darkens_the_status_led_and_the_buzzer(tmp_path: Path) -> None:
    """A walk is ARMED: the status LED is steady on, the walker's sign that the belt is
    protected. The monitor stops: the relay is released and the LED must go dark with it.
    The pins keep the last level written, so without the app closing its GPIO devices
    (mutant: ``gpio.close`` not called) the LED stayed lit, "protected", over a monitor
    that had stopped watching, and a buzzer mid-beep stayed sounding."""
    rig = armed_rig(tmp_path, relay_drive="static")
    app = rig.app
    led = app.gpio.factory.observed_pin(app.config.gpio.pins.status_led)
    buzzer = app.gpio.factory.observed_pin(app.config.gpio.pins.buzzer)
    rig.run_for(0.5)
    assert led.level is True
    app.gpio.buzzer.play("chirp", rig.clock.monotonic())  # a beep sounding as it stops
    assert buzzer.level is True
    app.close()
    assert not rig.hardware.contact_closed()
    assert led.level is False and buzzer.level is False
