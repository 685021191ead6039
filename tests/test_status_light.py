"""The status LED: each state's pattern, observed on a gpiozero MockFactory pin.

Unit level: :class:`firmware.status_light.StatusLight` on a real
:class:`hal.gpio.GpioStatusLed` over a clocked mock pin, stepped like the loop
steps it (every 5 ms of simulated time); the pin's recorded transitions are
compared with the pattern's documented timeline (:meth:`Pattern.edges`).
End to end: the monitor built by ``build_app`` on simulated hardware lights it
from its own loop — standby, not worn, armed, tripped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.clock import SimClock
from core.protocol.messages import Direction
from firmware.safety import SafetyState
from firmware.status_light import STEP_S, StatusLight, safety_pattern
from hal.gpio import GpioStatusLed
from hal.led_patterns import LED_PATTERNS
from sim import scenarios as sc
from sim.pins import ClockedMockFactory, ObservedMockPin
from tests.app_support import TripAt, close_rigs, make_rig  # noqa: F401 - fixture

LED_PIN = 22
T0 = 10.0
STEP = 0.005
"""The loop's period at 200 Hz: the LED changes only at a loop iteration."""
GRID = 0.05
"""Every LED pattern changes level on a 50 ms grid from its start."""
LAG = STEP_S + STEP
"""The most an edge may be shown late: one LED step, and the loop iteration that runs it."""


@dataclass
class FakeSafety:
    state: SafetyState = SafetyState.STANDBY
    reason: str = "IMU healthy; press reset to arm"
    measuring: bool = False


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0)


@pytest.fixture
def factory(clock: SimClock) -> Iterator[ClockedMockFactory]:
    f = ClockedMockFactory(clock)
    yield f
    f.close()


@pytest.fixture
def led(factory: ClockedMockFactory) -> Iterator[GpioStatusLed]:
    device = GpioStatusLed(LED_PIN, factory)
    yield device
    device.close()


def run(light: StatusLight, clock: SimClock, seconds: float) -> None:
    """Step the light as the loop would, for ``seconds`` of simulated time."""
    end = clock.monotonic() + seconds
    while clock.monotonic() < end - 1e-9:
        light.tick(clock.monotonic())
        clock.advance(STEP)


def observed(pin: ObservedMockPin, since: float, until: float) -> list[tuple[float, bool]]:
    return [(t, level) for t, level in pin.transitions if since <= t < until]


def assert_shows(pin: ObservedMockPin, name: str, start: float, until: float) -> None:
    """The pin's changes between ``start`` and ``until`` are the pattern's, to within
    :data:`LAG` (less than half the patterns' 50 ms grid)."""
    # Every pattern changes on a 50 ms grid from its start; compare up to a point halfway
    # between two grid points, so a change seen one tick late is never cut off.
    cutoff = start + (math.floor((until - start) / GRID + 1e-9) - 0.5) * GRID
    expected = [(t, level) for t, level in LED_PATTERNS[name].edges(start, until) if t < cutoff]
    seen = observed(pin, start, cutoff)
    before = [level for t, level in pin.transitions if t < start]
    if expected and before and before[-1] == expected[0][1]:
        expected = expected[1:]  # already lit (or dark) when the pattern began: no change
    assert [level for _, level in seen] == [level for _, level in expected], name
    for (t_seen, _), (t_expected, _) in zip(seen, expected, strict=True):
        assert t_expected - 1e-9 <= t_seen <= t_expected + LAG + 1e-9, name


@pytest.mark.parametrize(
    ("state", "reason", "name"),
    [
        (SafetyState.STARTING, "starting", "starting"),
        (SafetyState.STANDBY, "IMU healthy; press reset to arm", "standby"),
        (SafetyState.STANDBY, "sensor not worn: no body movement (0.02 deg/s)", "not_worn"),
        (SafetyState.ARMED, "armed by reset button", "armed"),
        (SafetyState.TRIPPED, "stumble detected", "tripped"),
        (SafetyState.FAULT, "IMU lost: no data for 0.1 s", "fault"),
        (SafetyState.FAULT, "sensor not worn: no body movement for 20 s", "not_worn"),
    ],
)
def test_each_state_shows_its_pattern_on_the_pin(
    led: GpioStatusLed,
    factory: ClockedMockFactory,
    clock: SimClock,
    state: SafetyState,
    reason: str,
    name: str,
) -> None:
    light = StatusLight(led, FakeSafety(state, reason))
    pin = factory.observed_pin(LED_PIN)
    run(light, clock, 6.0)
    assert light.pattern == name and light.shown[0] == (T0, name)
    assert_shows(pin, name, T0, T0 + 6.0)


def test_the_patterns_tell_the_states_apart() -> None:
    """No two patterns share a timeline: each can be read off the LED alone."""
    timelines = {
        name: tuple(p.edges(0.0, 4.0) if p.repeat else p.edges())
        for name, p in LED_PATTERNS.items()
    }
    assert len(set(timelines.values())) == len(timelines)
    assert safety_pattern(SafetyState.ARMED, "sensor not worn: whatever") is None


def test_no_two_patterns_look_alike_at_a_glance() -> None:
    """Read over the first 2 s (one period of every repeating pattern), each pattern is unlike
    every other. The whole-timeline comparison above let ``interval_change`` (3 s, finite)
    pass as different from ``tripped`` (repeating) although both flashed 0.1 s on, 0.1 s off:
    for 3 s after every interval began the LED said "tripped" to whoever looked at it."""
    glance = 2.0
    grid = [k * GRID + GRID / 2 for k in range(round(glance / GRID))]
    looks = {name: tuple(p.level_at(t) for t in grid) for name, p in LED_PATTERNS.items()}
    alike = [(a, b) for a in looks for b in looks if a < b and looks[a] == looks[b]]
    assert alike == []
    # A new interval shows while ARMED: mostly lit, as "lit means protected" says.
    change = LED_PATTERNS["interval_change"]
    lit = sum(on for on, _ in change.segments) / change.period
    assert lit > 0.5


def test_a_change_of_state_shows_at_once(
    led: GpioStatusLed, factory: ClockedMockFactory, clock: SimClock
) -> None:
    safety = FakeSafety(SafetyState.STANDBY)
    light = StatusLight(led, safety)
    pin = factory.observed_pin(LED_PIN)
    run(light, clock, 3.0)
    safety.state = SafetyState.ARMED
    changed = clock.monotonic()
    run(light, clock, 3.0)
    armed_at = light.shown[-1][0]
    assert changed <= armed_at <= changed + LAG  # within one LED step
    assert observed(pin, armed_at, armed_at + 2.0) == [(armed_at, True)]  # steady from then on
    safety.state, safety.reason = SafetyState.TRIPPED, "fall detected"
    changed = clock.monotonic()
    run(light, clock, 2.0)
    tripped_at = light.shown[-1][0]
    assert changed <= tripped_at <= changed + LAG
    assert_shows(pin, "tripped", tripped_at, tripped_at + 1.5)
    assert [name for _, name in light.shown] == ["standby", "armed", "tripped"]


def test_session_intervals_flash_then_show_their_direction(
    led: GpioStatusLed, factory: ClockedMockFactory, clock: SimClock
) -> None:
    safety = FakeSafety(SafetyState.ARMED, "armed")
    light = StatusLight(led, safety)
    pin = factory.observed_pin(LED_PIN)
    interval: tuple[int, Direction] | None = None
    light.interval_now = lambda: interval
    run(light, clock, 1.0)
    expected: list[str] = ["armed"]
    for index, direction in enumerate(("backward", "forward", "rest")):
        interval = (index, direction)
        run(light, clock, 7.0)
        began = next(t for t, n in reversed(light.shown) if n == "interval_change")
        flash_ends = began + StatusLight.FLASH_S
        assert_shows(pin, "interval_change", began, flash_ends)
        pattern = {"backward": "walk_backward", "forward": "walk_forward", "rest": "rest"}
        name = pattern[direction]
        # The interval's own pattern starts on the first tick after the flash.
        shown_at = next(t for t, n in light.shown if n == name and t >= began)
        assert flash_ends <= shown_at <= flash_ends + LAG + 1e-9
        assert_shows(pin, name, shown_at, began + 7.0)
        expected += ["interval_change", name]
    # The same interval again (resumed after a trip): no new flash.
    safety.state = SafetyState.TRIPPED
    run(light, clock, 1.0)
    safety.state = SafetyState.ARMED
    run(light, clock, 1.0)
    assert [n for _, n in light.shown] == [*expected, "tripped", "rest"]
    interval = None  # session over: steady armed
    run(light, clock, 1.0)
    assert light.pattern == "armed"


class CountingLed:
    def __init__(self) -> None:
        self.calls = 0

    def show(self, pattern: object, now: float) -> None:
        self.calls += 1


def test_the_led_is_stepped_every_step_not_every_iteration(clock: SimClock) -> None:
    """One in STEP_S / 5 ms of the loop's 200 iterations a second touches the LED; the rest
    cost one comparison."""
    led = CountingLed()
    light = StatusLight(led, FakeSafety())
    run(light, clock, 2.0)  # 400 iterations
    assert 2.0 / STEP_S - 1 <= led.calls <= 2.0 / STEP_S + 1


class BrokenLed:
    def __init__(self) -> None:
        self.calls = 0

    def show(self, pattern: object, now: float) -> None:
        self.calls += 1
        raise OSError("GPIO22: device busy")


def test_a_failing_led_never_stops_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    led = BrokenLed()
    light = StatusLight(led, FakeSafety())
    for i in range(3):
        light.tick(T0 + i)
    assert led.calls == 3
    assert caplog.text.count("status LED failed") == 1


# ------------------------------------------------------------------ end to end


@pytest.mark.usefixtures("close_rigs")
def test_the_monitor_lights_the_led_from_its_loop(tmp_path: Path) -> None:
    """Built as `retroguard run` builds it: STANDBY blinks, ARMED is steady, a trip flashes."""
    rig = make_rig(tmp_path, detector=TripAt(8.0))
    pin = rig.app.gpio.factory.observed_pin(rig.app.config.gpio.pins.status_led)
    light = rig.app.status_light
    assert light is not None
    rig.run_for(3.0)
    assert rig.state == "STANDBY"
    standby_at = next(t for t, n in light.shown if n == "standby")
    assert_shows(pin, "standby", standby_at, rig.clock.monotonic())
    rig.press_reset()
    assert rig.state == "ARMED" and pin.level is True
    armed_at = next(t for t, n in light.shown if n == "armed")
    rig.run_for(8.5 - rig.clock.monotonic())
    assert rig.state == "TRIPPED"
    tripped_at = next(t for t, n in light.shown if n == "tripped")
    assert observed(pin, armed_at, tripped_at) == [(armed_at, True)]
    rig.run_for(2.0)
    assert_shows(pin, "tripped", tripped_at, rig.clock.monotonic())


@pytest.mark.usefixtures("close_rigs")
def test_a_sensor_not_worn_shows_on_the_led(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, motion=sc.scenario(sc.Resting(30.0)), worn_check=True)
    rig.run_for(8.0)
    rig.press_reset()
    assert rig.state == "STANDBY"
    assert rig.app.controller.reason.startswith("sensor not worn")
    light = rig.app.status_light
    assert light is not None and light.pattern == "not_worn"
    pin = rig.app.gpio.factory.observed_pin(rig.app.config.gpio.pins.status_led)
    since = next(t for t, n in light.shown if n == "not_worn")
    rig.run_for(4.0)
    assert_shows(pin, "not_worn", since, rig.clock.monotonic())


@pytest.mark.usefixtures("close_rigs")
def test_the_led_says_starting_until_the_worn_check_can_arm(tmp_path: Path) -> None:
    """STANDBY comes 0.5 s after a start, but the sensor-worn check has no verdict until about
    4 s (its settling second and one block): a press before then is refused as still
    measuring. The LED showed STANDBY's "press reset to arm" from 0.5 s; it shows
    ``starting`` until the check is ready, then ``standby``, and a press then arms."""
    rig = make_rig(tmp_path, motion=sc.scenario(sc.Standing(60.0)), worn_check=True)
    light = rig.app.status_light
    controller = rig.app.controller
    assert light is not None
    rig.run_for(1.0)
    assert rig.state == "STANDBY" and controller.measuring
    assert light.pattern == "starting"
    ready = controller.worn
    assert ready is not None
    while not ready.ready:  # the check's first verdict, on the loop's own clock
        rig.run_for(0.05)
    rig.run_for(0.1)
    assert not controller.measuring and light.pattern == "standby"
    standby_at = next(t for t, n in light.shown if n == "standby")
    assert [n for t, n in light.shown if t < standby_at] == ["starting"]
    rig.press_reset()
    assert rig.state == "ARMED" and light.pattern == "armed"
