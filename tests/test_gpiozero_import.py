"""gpiozero is imported without importlib.metadata or importlib.resources, and still finds its
entry points by name and its fonts.

Run in a fresh interpreter: pytest itself has loaded importlib.metadata long before.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
import hal.gpio, sim.pins
loaded_after_import = sorted(
    m for m in ("importlib.metadata", "email", "zipfile", "importlib_metadata") if m in sys.modules
)
resources_after_import = sorted(
    m for m in ("importlib.resources", "tempfile", "shutil", "importlib_resources")
    if m in sys.modules
)
import gpiozero.boards
font = gpiozero.boards.resources.files("gpiozero.fonts").joinpath("7seg.txt").read_text()
import gpiozero.devices, gpiozero.pins.mock
names = sorted(e.name for e in gpiozero.devices.entry_points(group="gpiozero_pin_factories"))
mock_group = "gpiozero_mock_pin_classes"
mock_names = sorted(e.name for e in gpiozero.pins.mock.entry_points(group=mock_group))
print(json.dumps({"loaded": loaded_after_import, "factories": names, "mock_pins": mock_names,
                  "metadata_now": "importlib.metadata" in sys.modules,
                  "resources": resources_after_import, "font_lines": len(font.splitlines()),
                  "resources_now": "importlib.resources" in sys.modules}))
"""


def probe() -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_importing_the_gpio_backends_loads_no_package_metadata() -> None:
    assert probe()["loaded"] == []


def test_gpiozero_still_finds_its_pin_factories_and_mock_pins_by_name() -> None:
    result = probe()
    factories = result["factories"]
    assert isinstance(factories, list) and {"mock", "lgpio", "native"} <= set(factories)
    mock_pins = result["mock_pins"]
    assert isinstance(mock_pins, list) and "mockpin" in mock_pins
    assert result["metadata_now"] is True  # loaded on the first look-up, not before


def test_importing_the_gpio_backends_loads_no_package_resources() -> None:
    # importlib.resources brings tempfile, shutil, bz2 and lzma: 0.9 MB of the monitor's 30.
    assert probe()["resources"] == []


def test_gpiozero_still_finds_its_display_fonts() -> None:
    result = probe()
    font_lines = result["font_lines"]
    assert isinstance(font_lines, int) and font_lines > 3
    assert result["resources_now"] is True  # loaded on the first use, not before
