"""The safety controller's fault paths: decisions that hand mutation (mut24) found no test
noticing.

Each test runs the real loop, driver and relay model on a simulated clock (as
:mod:`tests.test_safety`) and asserts what the walker or a technician would see: the relay's
contact, the state, the FAULT and its words, the events stored.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.protocol.events import EventType
from core.samples import ImuSample
from firmware.config import SafetyConfig
from firmware.safety import Faulted, FaultKind, SafetyState
from hal.config import ImuConfig
from hal.errors import ImuBusError
from tests.app_support import PERIOD, armed_rig, close_rigs

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

TIMEOUT_S = SafetyConfig().sample_timeout_s


def test_a_pause_in_the_data_shorter_than_the_timeout_keeps_a_walk_armed(tmp_path: Path) -> None:
    """Silence is counted from the last good sample, not from when the state began: a walk
    armed for seconds whose sensor pauses for less than ``sample_timeout_s`` (reads that come
    back empty) goes on, relay held, no FAULT. Counted from the arming, the first empty read
    of any walk longer than the timeout stopped the belt (mutant: ``now - self.since``)."""
    rig = armed_rig(tmp_path, relay_drive="static")
    assert rig.sim_imu is not None
    rig.run_for(2.0)
    empty_before = rig.app.monitor.stats.empty_reads
    rig.sim_imu.chip.stalled = True
    rig.run_for(TIMEOUT_S * 0.6)
    assert rig.app.monitor.stats.empty_reads > empty_before  # the pause was seen
    rig.sim_imu.chip.stalled = False
    rig.run_for(1.0)
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    assert EventType.FAULT not in rig.events()


def test_an_empty_batch_is_a_read_that_returned_nothing(tmp_path: Path) -> None:
    """``on_samples`` given no samples counts the silence as ``on_idle`` does: past the
    timeout it is IMU silent — relay released, FAULT with its words and its event — never
    a batch that passed every check (mutant: returned without looking at the time)."""
    rig = armed_rig(tmp_path, relay_drive="static")
    controller = rig.app.controller
    later = rig.clock.monotonic() + 3 * TIMEOUT_S
    controller.on_samples([], later)
    assert controller.state is SafetyState.FAULT
    assert controller.transitions[-1].cause == Faulted(FaultKind.IMU_SILENT)
    assert controller.reason.startswith("no IMU sample for ")
    assert not rig.hardware.contact_closed()
    assert rig.events()[-1] is EventType.FAULT


def test_bus_errors_wait_for_the_timeout_then_fault_as_imu_silent(tmp_path: Path) -> None:
    """A bus error that reaches the controller (an IMU whose driver does not retry it) is
    counted for the health report and judged as a read that returned nothing: within the
    timeout the walk goes on; past it, IMU silent — relay released, FAULT with its words
    (mutants: the error not counted; the silence never looked at, the relay left held until
    the driver gave up on its own)."""
    rig = armed_rig(tmp_path, relay_drive="static")
    controller = rig.app.controller
    before = controller.bus_errors
    now = rig.clock.monotonic()
    controller.on_imu_error(ImuBusError("i2c NACK (errno 121)"), now + TIMEOUT_S / 4)
    assert controller.bus_errors == before + 1
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    controller.on_imu_error(ImuBusError("i2c NACK (errno 121)"), now + 3 * TIMEOUT_S)
    assert controller.bus_errors == before + 2
    assert rig.state == "FAULT"
    assert controller.transitions[-1].cause == Faulted(FaultKind.IMU_SILENT)
    assert controller.reason.startswith("no IMU sample for ")
    assert not rig.hardware.contact_closed()
    assert rig.events()[-1] is EventType.FAULT


GOOD = (0.0, 0.0, 1.0, 0.1, 0.2, 0.3)


@pytest.mark.parametrize("axis", range(6), ids=["ax", "ay", "az", "gx", "gy", "gz"])
@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["positive", "negative"])
def test_full_scale_is_a_reading_and_half_as_much_again_is_garbage(
    tmp_path: Path, axis: int, sign: float
) -> None:
    """A saturated axis (a fall's impact, a hard turn) is a reading: the walk goes on and
    the detector decides. Beyond full scale the driver cannot have produced it (a wrong
    scale, a corrupt frame): out-of-range FAULT, relay released, its words. The existing
    test's values are far beyond (100 g, 10000 deg/s); a check loosened to twice the range
    let 1.5 times full scale through (mutant: ``gz <= limit_g * 2``)."""
    rig = armed_rig(tmp_path, relay_drive="static")
    controller = rig.app.controller
    imu = ImuConfig()
    full = float(imu.accel_range_g if axis < 3 else imu.gyro_range_dps)
    now = rig.clock.monotonic()
    saturated = list(GOOD)
    saturated[axis] = sign * full
    controller.on_samples([ImuSample(now + PERIOD, *saturated)], now)
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    beyond = list(GOOD)
    beyond[axis] = sign * full * 1.5
    controller.on_samples([ImuSample(now + 2 * PERIOD, *beyond)], now + PERIOD)
    assert rig.state == "FAULT" and not rig.hardware.contact_closed()
    assert controller.transitions[-1].cause == Faulted(FaultKind.OUT_OF_RANGE)
    assert controller.reason.startswith("IMU data out of range: ")
    assert rig.events()[-1] is EventType.FAULT


def test_frozen_data_faults_once_one_reading_has_lasted_frozen_after_s(tmp_path: Path) -> None:
    """The run of identical readings is timed from the first of them: the sample that
    completes ``frozen_after_s`` of one reading faults (frozen data, relay released, the
    run's length in the words), the one before it does not. Timed from the second reading
    of the run, or faulting only past the bound, a stuck sensor kept the belt one sample
    longer (mutants: ``_frozen_since = sample.t``; ``>`` for ``>=``). Timestamps a power of
    two apart, so the sums are exact."""
    rig = armed_rig(tmp_path, relay_drive="static")
    controller = rig.app.controller
    period = 1 / 256
    runs = round(SafetyConfig().frozen_after_s / period)  # 64 periods: 0.25 s
    start = float(math.ceil(rig.clock.monotonic()))  # a whole second: start + k/256 is exact
    stuck = (0.01, -0.02, 0.98, 0.3, -0.1, 0.2)  # a reading the rig's motion never gives
    for i in range(runs + 1):  # the first reading, then ``runs`` periods of it
        t = start + (i + 1) * period
        assert rig.state == "ARMED", f"faulted after {i} repeats"
        controller.on_samples([ImuSample(t, *stuck)], t)
    assert rig.state == "FAULT" and not rig.hardware.contact_closed()
    assert controller.transitions[-1].cause == Faulted(FaultKind.FROZEN_DATA)
    assert controller.reason == "IMU data frozen for 0.25 s"
    assert rig.events()[-1] is EventType.FAULT


@pytest.mark.parametrize("axis", range(6), ids=["ax", "ay", "az", "gx", "gy", "gz"])
def test_a_reading_that_changes_on_one_axis_only_is_not_frozen(tmp_path: Path, axis: int) -> None:
    """Frozen means all six axes repeated: a sensor whose other five axes hold one value
    (saturated, or a walker standing very still) while one still moves is live, and the walk
    goes on, relay held, for twice ``frozen_after_s`` of it (mutant: the comparison leaving
    out ``ax`` faulted such a walk as frozen data)."""
    rig = armed_rig(tmp_path, relay_drive="static")
    controller = rig.app.controller
    period = 1 / 256
    start = float(math.ceil(rig.clock.monotonic()))
    still = [0.01, -0.02, 0.98, 0.3, -0.1, 0.2]
    for i in range(2 * round(SafetyConfig().frozen_after_s / period)):
        t = start + (i + 1) * period
        values = list(still)
        values[axis] += 0.001 * (i % 2)
        controller.on_samples([ImuSample(t, *values)], t)
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    assert EventType.FAULT not in rig.events()
