"""Properties: I2C garbage reaches the MPU-6050 driver as the HAL's documented errors, which
the monitor turns into a FAULT with the relay open — never an ``IndexError`` or a
``struct.error`` (safety rule 6).

The garbage is drawn by Hypothesis and put on the simulated register-level chip's bus
(:meth:`sim.i2c_bus.FakeI2cBus.inject_garbage` with a corruption that returns the drawn
bytes, the read's own length as smbus2 always returns): any WHO_AM_I, any configuration read
back, any FIFO count and flags, any FIFO bytes, now and then a transfer that fails. No crash
was found; the property guards the driver's decoding and checks against a change.
"""

from __future__ import annotations

import contextlib
import errno
import random

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from core.clock import SimClock
from hal.config import ImuConfig
from hal.errors import ImuError
from hal.mpu6050 import Mpu6050
from sim.i2c_bus import FakeI2cBus
from sim.mpu6050_sim import SimulatedMpu6050
from tests.app_support import armed_rig
from tests.fuzz_support import fuzz
from tests.mpu_support import ADDRESS, RampMotion


def _garbage_on(bus: FakeI2cBus, data: st.DataObject, clean_reads: int) -> None:
    """From the read after ``clean_reads`` on, each read's bytes may be replaced by drawn
    ones: any bytes, or one byte repeated (a stuck line, a chip id)."""
    reads = 0

    def corrupt(raw: bytes, rng: random.Random) -> bytes:
        nonlocal reads
        reads += 1
        if reads <= clean_reads:
            return raw
        size = len(raw)
        drawn = data.draw(
            st.one_of(
                st.none(),
                st.binary(min_size=size, max_size=size),
                st.sampled_from((0x00, 0xFF, 0x68, 0x70, 0x98)).map(lambda b: bytes((b,)) * size),
            )
        )
        return raw if drawn is None else drawn

    bus.inject_garbage(5000, corrupt=corrupt)  # more reads than an example makes


@fuzz(150)
@given(st.data(), st.sampled_from(("poll", "interrupt")))
def test_any_bytes_from_the_bus_are_samples_or_an_imu_error(
    data: st.DataObject, pacing: str
) -> None:
    clock = SimClock()
    chip = SimulatedMpu6050(RampMotion(gyro_slope=3.0), clock, seed=1)
    bus = FakeI2cBus({ADDRESS: chip})
    _garbage_on(bus, data, data.draw(st.integers(0, 40)))
    imu = Mpu6050(bus, ImuConfig(pacing=pacing), clock)
    with contextlib.suppress(ImuError):
        imu.start()
    for _ in range(data.draw(st.integers(1, 10))):
        if data.draw(st.booleans()):
            bus.inject_errors(
                1, data.draw(st.sampled_from((errno.EREMOTEIO, errno.EIO, errno.EAGAIN)))
            )
        clock.advance(data.draw(st.sampled_from((0.0, 0.005, 0.01, 0.05, 0.4))))
        try:
            if data.draw(st.booleans()):
                samples = imu.read_batch(data.draw(st.sampled_from((0.0, 0.02))))
            else:
                samples = imu.read_signalled(data.draw(st.integers(0, 3)))
        except ImuError:
            continue
        assert all(len(s) == 7 for s in samples)
    imu.close()


@fuzz(12)
@given(st.data())
def test_garbage_under_an_armed_walk_is_a_fault_with_the_relay_open(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """The whole monitor, armed, then garbage on its bus: the loop never raises, and once
    the driver has raised, the controller is in FAULT and the relay's contact open."""
    rig = armed_rig(tmp_path_factory.mktemp("armed"))
    try:
        _garbage_on(rig.sim_imu.bus, data, 0)
        rig.run_for(0.3)
        event(f"IMU errors: {bool(rig.app.monitor.stats.imu_errors)}")
        if rig.app.monitor.stats.imu_errors:
            assert rig.state == "FAULT"
            rig.run_for(0.2)  # the hold circuit's time, and the contact's debounce
            assert not rig.hardware.contact_closed()
    finally:
        rig.app.close()
