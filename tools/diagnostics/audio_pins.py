"""The doctor's ``audio-pins`` line: does an I2S audio overlay take a pin the monitor uses?

An I2S DAC (wiring/README.md, section 11: a MAX98357A, a HiFiBerry DAC, ...) clocks its data
on GPIO18, 19 and 21 (20 for a capture input), given to the kernel at boot by its
``dtoverlay=`` line. GPIO18 is also the buzzer's default pin: a technician who adds a DAC and
keeps the buzzer there gets a buzzer and an I2S clock on one wire, and the walker's alarm or
the spoken prompts (or both) stop working, while every pin the doctor opens still reads
"claimable". Only the boot config tells, so this check reads it.
"""

from __future__ import annotations

from pathlib import Path

from firmware.config import Config
from tools.diagnostics.boot_config import BOOT_CONFIG, read_overlays
from tools.diagnostics.result import CheckResult, failed, passed, skipped

AUDIO_PINS = "audio-pins"
I2S_PINS = {18: "BCLK", 19: "LRCLK", 20: "DIN", 21: "DOUT"}
"""The Pi's PCM/I2S pins (BCM) and their signals."""
I2S_OVERLAYS = frozenset(
    {
        "max98357a",
        "hifiberry-dac",
        "hifiberry-dacplus",
        "hifiberry-amp",
        "iqaudio-dac",
        "iqaudio-dacplus",
        "justboom-dac",
        "googlevoicehat-soundcard",
        "allo-boss-dac-pcm512x-audio",
        "rpi-dac",
        "i2s-dac",
    }
)
"""The overlays of I2S sound cards the guide names and the common DAC boards'."""


def monitor_pins(config: Config) -> dict[str, int]:
    """The GPIO pins the monitor opens with this config, by their ``gpio.pins`` key."""
    gpio = config.gpio
    pins = gpio.pins
    used = {
        "relay": pins.relay,
        "relay_enable": pins.relay_enable,
        "buzzer": pins.buzzer,
        "status_led": pins.status_led,
        "reset_button": pins.reset_button,
    }
    if gpio.relay_sense_wired:
        used["relay_sense"] = pins.relay_sense
    if gpio.help_button_wired:
        used["help_button"] = pins.help_button
    if config.imu.pacing != "poll":
        used["imu_int"] = pins.imu_int
    return used


def check_audio_pins(config: Config, boot_config: Path = BOOT_CONFIG) -> CheckResult:
    """FAIL when an I2S overlay in ``boot_config`` takes a pin the monitor uses."""
    if config.gpio.backend == "simulated":
        return skipped(AUDIO_PINS, "simulated pins: no boot config to check")
    overlays = read_overlays(boot_config)
    if overlays is None:
        return skipped(AUDIO_PINS, f"{boot_config} cannot be read: no overlays to check")
    i2s = [o for o in overlays if o.name in I2S_OVERLAYS]
    if not i2s:
        return passed(AUDIO_PINS, f"no I2S audio overlay in {boot_config}")
    shared = [
        f"gpio.pins.{key} = {pin} (its {I2S_PINS[pin]})"
        for key, pin in monitor_pins(config).items()
        if pin in I2S_PINS
    ]
    if not shared:
        return passed(
            AUDIO_PINS, f"'{i2s[0].line}' uses GPIO18-21; none of the monitor's pins is there"
        )
    return failed(
        AUDIO_PINS,
        f"'{i2s[0].line}' in {boot_config} gives GPIO18-21 to the sound card, and the "
        f"monitor uses {', '.join(shared)}",
        "move it to a free pin and rewire it (the buzzer: e.g. gpio.pins.buzzer = 12, physical "
        "32, R8 and Q2 with it; wiring/README.md, section 11)",
    )
