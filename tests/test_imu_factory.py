"""open_imu: the configured backend, and clear errors when the bus is missing."""

from __future__ import annotations

import dataclasses

import pytest
import smbus2

from hal import HalError, ImuError
from hal.config import ImuConfig
from hal.imu_factory import open_imu
from hal.interfaces import Imu
from hal.mpu6050 import Mpu6050
from sim.backends import build_simulated_imu
from sim.i2c_bus import FakeI2cBus
from sim.mpu6050_sim import SimulatedMpu6050
from tests.mpu_support import ADDRESS, ConstantMotion, HookClock


def test_simulated_backend_runs_the_real_driver() -> None:
    clock = HookClock()
    imu = open_imu(ImuConfig(backend="simulated"), clock)  # found by entry point, not import
    assert isinstance(imu, Mpu6050) and isinstance(imu, Imu)
    imu.close()
    imu = build_simulated_imu(ImuConfig(), clock, ConstantMotion()).imu
    imu.start()
    sample = imu.read_batch(0.05)[0]
    assert sample.az == pytest.approx(1.0, abs=1 / 4096)
    imu.close()


def test_an_unknown_backend_is_a_clear_error_naming_the_installed_ones() -> None:
    config = dataclasses.replace(ImuConfig(), backend="bmi270")  # type: ignore[arg-type]
    with pytest.raises(HalError, match=r"no IMU backend named 'bmi270'.*simulated"):
        open_imu(config, HookClock())


def test_simulated_rig_exposes_bus_and_chip_for_fault_injection() -> None:
    rig = build_simulated_imu(ImuConfig(address=0x69), HookClock(), ConstantMotion())
    rig.imu.start()
    assert rig.bus.read_byte_data(0x69, 0x75) == 0x68
    rig.imu.close()
    assert rig.bus.closed and rig.chip.sleeping


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            FileNotFoundError(2, "No such file or directory"),
            "no /dev/i2c-1: enable I2C with raspi-config",
        ),
        (PermissionError(13, "Permission denied"), "add the service user to the 'i2c' group"),
    ],
)
def test_missing_or_forbidden_bus_device_is_a_clear_imu_error(
    monkeypatch: pytest.MonkeyPatch, error: OSError, message: str
) -> None:
    def refuse(bus: int) -> None:
        raise error

    monkeypatch.setattr(smbus2, "SMBus", refuse)
    with pytest.raises(ImuError, match=message):
        open_imu(ImuConfig(backend="mpu6050", i2c_bus=1), HookClock())


def test_hardware_backend_drives_whatever_smbus_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = HookClock()
    bus = FakeI2cBus({ADDRESS: SimulatedMpu6050(ConstantMotion(), clock)})
    opened: list[int] = []

    def fake_smbus(number: int) -> FakeI2cBus:
        opened.append(number)
        return bus

    monkeypatch.setattr(smbus2, "SMBus", fake_smbus)
    imu = open_imu(ImuConfig(backend="mpu6050", i2c_bus=3), clock)
    imu.start()
    assert imu.read_batch(0.05)
    imu.close()
    assert opened == [3]
    assert bus.closed  # the driver owns the bus it was given by the factory


def test_a_bad_config_closes_the_bus_it_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    bus = FakeI2cBus()
    monkeypatch.setattr(smbus2, "SMBus", lambda number: bus)
    with pytest.raises(ValueError, match="sample_rate_hz"):
        open_imu(ImuConfig(backend="mpu6050", sample_rate_hz=300), HookClock())
    assert bus.closed
