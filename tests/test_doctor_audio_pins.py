"""The doctor's ``audio-pins`` line: an I2S DAC's overlay and the monitor's pins on one wire.

wiring/README.md, section 11, tells the technician who adds an I2S DAC to move the buzzer off
GPIO18, the DAC's bit clock. Nothing checked it: every pin the doctor opens still read
"claimable" (the kernel's I2S function is not a process holding a line), and the walker's
alarm and the spoken prompts then fought over one wire.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from firmware.config import Config
from hal.config import GpioConfig, ImuConfig, PinConfig
from tools.diagnostics.audio_pins import check_audio_pins
from tools.diagnostics.result import Status

ON_A_PI = Config(gpio=GpioConfig(backend="gpiozero", pin_factory="lgpio"))


def _boot(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "config.txt"
    path.write_text("\n".join(["[all]", "dtparam=i2c_arm=on", *lines]) + "\n")
    return path


def _pins(config: Config, **pins: int) -> Config:
    gpio = dataclasses.replace(config.gpio, pins=dataclasses.replace(PinConfig(), **pins))
    return dataclasses.replace(config, gpio=gpio)


def test_a_dac_overlay_with_the_buzzer_left_on_gpio18_fails_with_the_guide_s_fix(
    tmp_path: Path,
) -> None:
    boot = _boot(tmp_path, "dtoverlay=hifiberry-dac  # the speaker", "dtparam=audio=off")
    result = check_audio_pins(ON_A_PI, boot)
    assert result.status is Status.FAIL
    assert result.detail == (
        f"'dtoverlay=hifiberry-dac' in {boot} gives GPIO18-21 to the sound card, and the "
        "monitor uses gpio.pins.buzzer = 18 (its BCLK)"
    )
    assert result.fix is not None and "gpio.pins.buzzer = 12" in result.fix
    assert "wiring/README.md, section 11" in result.fix


def test_the_buzzer_moved_as_the_guide_says_passes(tmp_path: Path) -> None:
    boot = _boot(tmp_path, "dtoverlay=max98357a,no-sdmode")
    result = check_audio_pins(_pins(ON_A_PI, buzzer=12), boot)
    assert result.status is Status.PASS
    assert "none of the monitor's pins is there" in result.detail


def test_every_pin_the_monitor_opens_is_looked_at_and_none_it_does_not(tmp_path: Path) -> None:
    boot = _boot(tmp_path, "dtoverlay=max98357a,no-sdmode")
    moved = _pins(ON_A_PI, buzzer=12, imu_int=19, help_button=21)
    failing = check_audio_pins(moved, boot)
    assert failing.status is Status.FAIL
    assert failing.detail.endswith(
        "the monitor uses gpio.pins.imu_int = 19 (its LRCLK)"
    )  # the help button is not wired: its pin is not opened
    polled = dataclasses.replace(moved, imu=ImuConfig(pacing="poll"))
    assert check_audio_pins(polled, boot).status is Status.PASS
    wired = dataclasses.replace(
        polled, gpio=dataclasses.replace(polled.gpio, help_button_wired=True)
    )
    result = check_audio_pins(wired, boot)
    assert result.status is Status.FAIL
    assert result.detail.endswith("the monitor uses gpio.pins.help_button = 21 (its DOUT)")


def test_no_audio_overlay_passes_and_no_boot_config_or_simulated_pins_skip(
    tmp_path: Path,
) -> None:
    plain = check_audio_pins(ON_A_PI, _boot(tmp_path, "dtoverlay=vc4-kms-v3d"))
    assert plain.status is Status.PASS
    assert plain.detail == f"no I2S audio overlay in {tmp_path / 'config.txt'}"
    missing = check_audio_pins(ON_A_PI, tmp_path / "absent.txt")
    assert missing.status is Status.SKIP
    simulated = check_audio_pins(Config(), _boot(tmp_path, "dtoverlay=hifiberry-dac"))
    assert simulated.status is Status.SKIP
    assert simulated.detail == "simulated pins: no boot config to check"
