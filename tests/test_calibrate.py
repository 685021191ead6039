"""``retroguard calibrate`` with the simulated IMU mounted in several orientations, with bias.

The simulated wearer stands still (with postural sway and sensor noise), then
bends forward (:class:`sim.lean.Lean`); everything runs on a SimClock.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import pytest

from core.clock import SimClock
from core.errors import ConfigError
from core.mounting import Mounting
from firmware.config import load_config
from hal.config import ImuConfig
from sim import scenarios
from sim.backends import build_simulated_imu
from sim.lean import Lean
from sim.scenarios import Segment
from tools import calibrate
from tools.calibrate import SETTLE_S, Calibration
from tools.config_edit import update_imu_values
from tools.mounting_estimate import CalibrationError

STILL_S = 5.0
MOUNTINGS = [
    Mounting("right", "down", None),  # the default belt-buckle mounting: x=right y=down z=forward
    Mounting("up", "left", None),  # board on its side: z=backward
    Mounting("forward", "right", None),  # lying flat, face down: z=down
    Mounting("down", "backward", None),  # upside down, facing the body: z=left
    Mounting(None, "up", "right"),  # x=forward
]


def run_calibration(
    segments: list[Segment], mounting: Mounting, bias: tuple[float, float, float], seed: int = 0
) -> Calibration:
    clock = SimClock(50.0)
    motion = scenarios.Sequence(segments, seed=seed, mounting=mounting, gyro_bias_dps=bias)
    rig = build_simulated_imu(ImuConfig(), clock, motion)
    try:
        return calibrate.calibrate(rig.imu, clock, seconds=STILL_S, say=lambda text: None)
    finally:
        rig.imu.close()


def stand_then_lean(**lean: float) -> list[Segment]:
    return [scenarios.Standing(SETTLE_S + STILL_S + 0.5), Lean(duration=60.0, **lean)]


@pytest.mark.parametrize("mounting", MOUNTINGS, ids=str)
@pytest.mark.parametrize("seed", [0, 7])
def test_measures_mounting_and_bias(mounting: Mounting, seed: int) -> None:
    bias = (2.5, -1.25, 0.75) if seed else (-4.0, 0.5, 3.0)
    result = run_calibration(stand_then_lean(), mounting, bias, seed=seed)
    assert result.mounting == mounting
    for measured, true in zip(result.gyro_bias_dps, bias, strict=True):
        assert measured == pytest.approx(true, abs=0.1)
    assert result.lean.lean_deg == pytest.approx(30.0, abs=3.0)


def test_rejects_a_wearer_who_is_walking() -> None:
    segments: list[Segment] = [scenarios.Walking(30.0, direction="backward")]
    with pytest.raises(CalibrationError, match="the person was not standing still"):
        run_calibration(segments, scenarios.DEFAULT_MOUNTING, (0.0, 0.0, 0.0))


def test_rejects_a_box_clipped_on_at_an_angle() -> None:
    """The box sits 30° off square: gravity lies between two sensor axes."""
    tilted = [Lean(duration=60.0, lead_in_s=0.0, bend_s=0.5, tilt_deg=30.0, hold_s=50.0)]
    with pytest.raises(CalibrationError) as caught:
        run_calibration(tilted, scenarios.DEFAULT_MOUNTING, (0.0, 0.0, 0.0))
    message = str(caught.value)
    assert message.startswith("the vertical (gravity) is 30° away from the nearest sensor axis")
    assert 'set mounting = "unknown" in [imu]' in message


def test_rejects_a_gyro_that_reads_more_at_rest_than_a_working_chip_may() -> None:
    """A bias the config would refuse is not measured and saved: calibrate says why instead."""
    with pytest.raises(CalibrationError, match=r"the gyro reads 45\.\d deg/s standing still"):
        run_calibration(stand_then_lean(), scenarios.DEFAULT_MOUNTING, (0.0, -45.0, 1.0))


def test_rejects_a_missing_lean() -> None:
    segments: list[Segment] = [scenarios.Standing(60.0)]
    with pytest.raises(CalibrationError, match=r"the lean was too small \(\d°"):
        run_calibration(segments, scenarios.DEFAULT_MOUNTING, (0.0, 0.0, 0.0))


def test_a_backward_lean_names_backward_as_forward() -> None:
    """Why the procedure says *forward*: a backward lean is a box mounted back to front."""
    result = run_calibration(
        stand_then_lean(tilt_deg=-30.0), scenarios.DEFAULT_MOUNTING, (0.0, 0.0, 0.0)
    )
    assert str(result.mounting) == "x=left y=down z=backward"


CONFIG_TEXT = """\
# RetroGuard on treadmill 3 — fitted by the clinic, 2026-11
[device]
id = "tm-3"  # matches the broker account

[imu]
backend = "simulated"
# Which body direction each sensor axis points.
mounting = "unknown"
gyro_bias_dps = [0.0, 0.0, 0.0]  # measured by calibrate

[storage]
database = "events.db"
"""


def calibrate_args(path: Path | None, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    calibrate.add_parser(parser.add_subparsers())
    argv = ["calibrate", *(["-c", str(path)] if path else []), *extra]
    return parser.parse_args(argv)


def test_write_updates_the_config_in_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG_TEXT)
    path.chmod(0o640)

    status = calibrate.run(calibrate_args(path, "--write"), clock=SimClock())

    out = capsys.readouterr().out
    assert status == 0, out
    assert 'mounting = "x=right y=down z=forward"' in out
    config = load_config(path)
    assert config.imu.mounting == "x=right y=down z=forward"
    for measured, true in zip(config.imu.gyro_bias_dps, calibrate.SIM_GYRO_BIAS_DPS, strict=True):
        assert measured == pytest.approx(true, abs=0.1)
    text = path.read_text()
    bias = ", ".join(repr(b) for b in config.imu.gyro_bias_dps)
    expected = CONFIG_TEXT.replace(
        'mounting = "unknown"', 'mounting = "x=right y=down z=forward"'
    ).replace("gyro_bias_dps = [0.0, 0.0, 0.0]  #", f"gyro_bias_dps = [{bias}]  #")
    assert text == expected  # comments, order and every other value kept
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_without_write_nothing_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG_TEXT)
    assert calibrate.run(calibrate_args(path), clock=SimClock()) == 0
    assert path.read_text() == CONFIG_TEXT
    assert "not written: run again with --write" in capsys.readouterr().out


def test_write_needs_a_config_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert calibrate.run(calibrate_args(None, "--write"), clock=SimClock()) == 2
    assert "--write needs -c CONFIG" in capsys.readouterr().err


def test_rejected_recording_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG_TEXT)

    def walker(config: object, seconds: float) -> scenarios.Sequence:
        return scenarios.Sequence([scenarios.Walking(60.0)])

    monkeypatch.setattr(calibrate, "simulated_wearer", walker)
    assert calibrate.run(calibrate_args(path, "--write"), clock=SimClock()) == 1
    err = capsys.readouterr().err
    assert "calibrate: REJECTED: the person was not standing still" in err
    assert "calibrate: nothing written" in err
    assert path.read_text() == CONFIG_TEXT


def test_edit_that_would_not_validate_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG_TEXT)
    with pytest.raises(ConfigError, match=r"imu\.mounting"):
        update_imu_values(path, {"mounting": "x=up y=up z=forward"})
    assert path.read_text() == CONFIG_TEXT


def test_edit_adds_a_missing_imu_table(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('# minimal\n[device]\nid = "tm-1"\n')
    config = update_imu_values(path, {"mounting": "x=right y=down z=forward"})
    assert config.imu.mounting == "x=right y=down z=forward"
    assert path.read_text().startswith('# minimal\n[device]\nid = "tm-1"\n')
    assert dataclasses.replace(config.imu, mounting="unknown") == ImuConfig()
