"""``retroguard safe-outputs`` drives the released levels through the HAL, enable line first."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from gpiozero import DigitalOutputDevice
from gpiozero.pins.mock import MockFactory, MockPin

from hal.config import GpioConfig, PinConfig
from tools import safe_outputs


def write_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[gpio]\nbackend = "gpiozero"\npin_factory = "mock"\n{extra}')
    return path


def args_for(path: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    safe_outputs.add_parser(parser.add_subparsers())
    return parser.parse_args(["safe-outputs", "-c", str(path)])


class RecordingPin(MockPin):  # type: ignore[misc]  # gpiozero is untyped
    """Remembers the level it was driving when it was given back.

    A released ``MockPin`` becomes an input at its pull level (as a real
    released line floats), so the level that matters is the one at close.
    """

    def __init__(self, factory: Any, info: Any) -> None:
        super().__init__(factory, info)
        self.driven_at_close: list[bool] = []

    def close(self) -> None:
        if self.function == "output":
            self.driven_at_close.append(bool(self.state))
        super().close()


class RecordingFactory(MockFactory):  # type: ignore[misc]  # gpiozero is untyped
    """Keeps every pin it made: ``close()`` forgets them, and ``run`` closes the factory."""

    def __init__(self) -> None:
        super().__init__(pin_class=RecordingPin)
        self.made: dict[int, RecordingPin] = {}

    def pin(self, spec: Any) -> Any:
        pin = super().pin(spec)
        self.made.setdefault(int(str(spec)), pin)
        return pin


def new_factory() -> RecordingFactory:
    return RecordingFactory()


def driven(factory: RecordingFactory, pin: int) -> list[bool]:
    """The levels ``pin`` was driven to, each time a device gave it back."""
    made = factory.made.get(pin)
    return [] if made is None else made.driven_at_close


def crashed_main_process(factory: Any, *pins: int) -> None:
    """Leave ``pins`` high, as a killed monitor would; the kernel took the lines back."""
    for pin in pins:
        device = DigitalOutputDevice(pin, initial_value=True, pin_factory=factory)
        mock_pin = device.pin
        mock_pin.close = lambda: None  # keep the level: a dead process does not clean up
        device.close()
        del mock_pin.close
        assert mock_pin.state


def test_released_lines_order_and_levels() -> None:
    heartbeat = safe_outputs.released_lines(GpioConfig())
    assert [(line.name, line.pin, line.level) for line in heartbeat] == [
        ("relay_enable", 23, False),  # CLR first: no later edge can retrigger the timer
        ("relay", 17, False),
        ("buzzer", 18, False),
    ]
    static = safe_outputs.released_lines(
        GpioConfig(relay_drive="static", relay_active_high=False, buzzer_active_high=False)
    )
    assert [(line.name, line.level) for line in static] == [("relay", True), ("buzzer", True)]


def test_drives_each_line_to_its_released_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    factory = new_factory()
    pins = PinConfig()
    crashed_main_process(factory, pins.relay_enable, pins.relay, pins.buzzer)

    status = safe_outputs.run(args_for(write_config(tmp_path)), make_factory=lambda _: factory)

    assert status == 0
    for pin in (pins.relay_enable, pins.relay, pins.buzzer):
        assert driven(factory, pin) == [False], pin
    out = capsys.readouterr().out
    assert "relay_enable GPIO23 driven low" in out
    assert "relay GPIO17 driven low" in out
    assert out.index("relay_enable") < out.index("relay GPIO17")


def test_active_low_wiring_is_driven_high(tmp_path: Path) -> None:
    factory = new_factory()
    config = write_config(
        tmp_path, 'relay_drive = "static"\nrelay_active_high = false\nbuzzer_active_high = false\n'
    )
    assert safe_outputs.run(args_for(config), make_factory=lambda _: factory) == 0
    assert driven(factory, 17) == [True]
    assert driven(factory, 18) == [True]
    assert driven(factory, 23) == []  # static wiring: the enable pin is not ours to touch


def test_a_line_still_held_is_reported_and_the_rest_still_driven(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    factory = new_factory()
    holder = DigitalOutputDevice(17, initial_value=True, pin_factory=factory)
    try:
        status = safe_outputs.run(args_for(write_config(tmp_path)), make_factory=lambda _: factory)
    finally:
        holder.close()
    assert status == 1
    err = capsys.readouterr().err
    assert "relay GPIO17 NOT driven" in err
    assert driven(factory, 23) == [False] and driven(factory, 18) == [False]


def test_bad_config_drives_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    called = []
    status = safe_outputs.run(
        args_for(tmp_path / "missing.toml"), make_factory=lambda g: called.append(g)
    )
    assert status == 2 and not called
    assert "file not found" in capsys.readouterr().err


def test_simulated_backend_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[gpio]\nbackend = "simulated"\n')
    assert safe_outputs.run(args_for(path), make_factory=lambda g: pytest.fail("opened")) == 0
