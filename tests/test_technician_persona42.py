"""The technician who built the box from wiring/README.md and runs ``retroguard doctor``: when
the doctor fails, its fix must lead somewhere the guide agrees with."""

from __future__ import annotations

from pathlib import Path

from gpiozero import DigitalOutputDevice

from core.clock import SimClock
from firmware.config import Config, StorageConfig
from hal.config import ImuConfig
from sim.pins import ClockedMockFactory
from tests.test_doctor import lines
from tools.doctor import Bench


def _interrupt_paced(tmp_path: Path) -> Config:
    return Config(
        storage=StorageConfig(database=str(tmp_path / "state" / "events.db")),
        imu=ImuConfig(pacing="interrupt"),
    )


def _int_line_taken(tmp_path: Path, boot_config: Path) -> str:
    """The doctor's ``imu-int`` line with GPIO4 held by someone else (as the kernel holds it
    for an I2S amplifier's SD_MODE line)."""
    clock = SimClock(100.0)
    factory = ClockedMockFactory(clock)
    kernel = DigitalOutputDevice(4, pin_factory=factory)
    try:
        found = lines(
            _interrupt_paced(tmp_path),
            Bench(clock=clock, pin_factory=factory, boot_config=boot_config),
        )
    finally:
        kernel.close()
        factory.close()
    return found["imu-int"]


def test_an_int_line_taken_by_the_plain_max98357a_overlay_is_named_with_its_fix(
    tmp_path: Path,
) -> None:
    """wiring/README.md, section 11: "Never the plain `dtoverlay=max98357a`": the overlay takes
    GPIO4, the IMU's INT, as the amplifier's SD_MODE output, and the monitor cannot open the
    line. The doctor used to say only "stop the monitor and run the doctor again": a
    technician who did, with the monitor stopped, got the same line again, and nothing
    pointed at the boot config. It now names the overlay line and the fix the guide gives."""
    boot = tmp_path / "config.txt"
    boot.write_text("[all]\ndtparam=i2c_arm=on\ndtoverlay=max98357a\n", encoding="utf-8")
    line = _int_line_taken(tmp_path, boot)
    assert line.startswith("FAIL  imu-int")
    assert "GPIO4 cannot be opened for the data-ready line" in line
    fix = line.split("fix: ", 1)[1]
    assert f"{boot} has 'dtoverlay=max98357a'" in fix
    assert "dtoverlay=max98357a,no-sdmode" in fix
    assert "wiring/README.md, section 11" in fix
    assert "stop the monitor" not in fix


def test_the_overlay_with_its_sd_mode_pin_elsewhere_or_off_is_not_blamed(tmp_path: Path) -> None:
    """``no-sdmode``, or an ``sdmode-pin`` other than INT's, leaves GPIO4 alone: the line is
    held by something else (the monitor itself, usually), and the fix says so as before."""
    for overlay in ("dtoverlay=max98357a,no-sdmode", "dtoverlay=max98357a,sdmode-pin=16"):
        boot = tmp_path / "config.txt"
        boot.write_text(f"{overlay}\n", encoding="utf-8")
        fix = _int_line_taken(tmp_path, boot).split("fix: ", 1)[1]
        assert "max98357a" not in fix
        assert fix.startswith("stop the monitor (sudo systemctl stop retroguard)")
    absent = _int_line_taken(tmp_path, tmp_path / "no-such-config.txt").split("fix: ", 1)[1]
    assert absent.startswith("stop the monitor")
