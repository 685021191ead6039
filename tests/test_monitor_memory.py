"""What ``retroguard run`` loads stays what the monitor needs (issue 15 item 8: 30 MB of RSS).

Each probe runs in a fresh interpreter: pytest itself has loaded most of these modules long
before. Behaviour, not bytes: which modules a start loads, and that what was left out still
comes when something asks for it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.logsetup import logging_off_this_thread
from firmware.session.voice import on_path
from launcher.cli import HelpFormatter, terminal_columns

ROOT = Path(__file__).resolve().parent.parent

LEFT_OUT = (
    "shutil",  # argparse's help formatter, preflight's and the voice's which (bz2, lzma)
    "bz2",
    "lzma",
    "logging.handlers",  # the log writer's queue handler and listener (pickle)
    "pickle",
    "gpiozero.boards",  # gpiozero's package __init__: every device it has
    "gpiozero.spi_devices",
    "gpiozero.internal_devices",
    "colorzero",  # gpiozero's output devices, for an RGB LED's colour
    "importlib.metadata",
    "importlib.resources",
)

START = """
import json, sys
from launcher.cli import build_parser
build_parser(["run"]).parse_args(["run"])  # as `retroguard run` reads its command line
import firmware.app, firmware.session.runner, firmware.preflight
from firmware.detection.factory import compiled_class, detector_class
detector_class()
loaded = sorted(m for m in {left_out!r} if m in sys.modules)
pure = "firmware.detection.retro" in sys.modules
compiled = compiled_class() is not None
{after}
print(json.dumps({{"loaded": loaded, "pure": pure, "compiled": compiled, "after": after}}))
"""


def start(after: str = "after = None") -> dict[str, object]:
    """Import what ``retroguard run`` imports before its loop, in a fresh interpreter; then
    run ``after`` (which sets ``after``)."""
    code = START.format(left_out=LEFT_OUT, after=after)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_starting_the_monitor_leaves_out_what_it_never_uses() -> None:
    assert start()["loaded"] == []


def test_the_pure_python_detector_is_imported_only_where_no_compiled_one_runs() -> None:
    result = start()
    assert result["pure"] is not result["compiled"]


def test_gpiozero_is_whole_for_whoever_asks_for_more_than_the_monitor_uses() -> None:
    result = start(
        "from gpiozero import Button, LED\n"
        "import gpiozero, gpiozero.output_devices, gpiozero.boards\n"
        "after = [LED is gpiozero.output_devices.LED, Button.__name__,\n"
        "         gpiozero.LEDBoard is gpiozero.boards.LEDBoard,\n"
        "         'importlib.metadata' in sys.modules]"
    )
    assert result["after"] == [True, "Button", True, False]


def test_a_name_gpiozero_does_not_have_is_still_an_attribute_error() -> None:
    result = start(
        "import gpiozero\n"
        "try:\n"
        "    gpiozero.no_such_device\n"
        "    after = 'found'\n"
        "except AttributeError as exc:\n"
        "    after = str(exc)"
    )
    assert result["after"] == "module 'gpiozero' has no attribute 'no_such_device'"


def test_an_rgb_led_still_answers_its_colour_with_colorzero() -> None:
    result = start(
        "from gpiozero.output_devices import RGBLED\n"
        "from gpiozero.pins.mock import MockFactory, MockPWMPin\n"
        "led = RGBLED(2, 3, 4, pin_factory=MockFactory(pin_class=MockPWMPin))\n"
        "led.value = (1, 0, 0.5)\n"
        "import colorzero\n"
        "after = [isinstance(led.color, colorzero.Color), led.color == colorzero.Color(1, 0, 0.5)]"
    )
    assert result["after"] == [True, True]


def test_on_path_finds_commands_as_shutil_which_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = tmp_path / "bin" / "espeak-ng"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "espeak-ng").write_text("not executable")
    (tmp_path / "other" / "aplay").mkdir()  # a folder is no command
    path = os.pathsep.join([str(tmp_path / "other"), str(tmp_path / "bin")])
    monkeypatch.setenv("PATH", path)
    for name in ("espeak-ng", "aplay", "missing"):
        assert on_path(name) == shutil.which(name)
    assert on_path("espeak-ng") == str(tool)


@pytest.mark.parametrize("columns", ["57", "not a number", "0"])
def test_the_help_is_as_wide_as_argparse_would_make_it(
    columns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    assert terminal_columns() == shutil.get_terminal_size().columns
    assert HelpFormatter("retroguard")._width == argparse.HelpFormatter("retroguard")._width


def test_the_log_writer_respects_each_handler_level() -> None:
    class Kept(logging.Handler):
        def __init__(self, level: int) -> None:
            super().__init__(level)
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())

    root = logging.getLogger()
    before, level = root.handlers[:], root.level
    everything, warnings = Kept(logging.DEBUG), Kept(logging.WARNING)
    root.handlers[:] = [everything, warnings]
    root.setLevel(logging.DEBUG)
    try:
        with logging_off_this_thread():
            logging.getLogger("firmware.monitor").info("armed %s", "locally")
            logging.getLogger("firmware.monitor").warning("reset refused")
    finally:
        root.handlers[:] = before
        root.setLevel(level)
    assert everything.messages == ["armed locally", "reset refused"]
    assert warnings.messages == ["reset refused"]
