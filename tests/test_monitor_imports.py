"""What the monitor process loads: nothing it needs only for errors, tools or lookups it never
makes. Each module here costs resident memory on a 512 MB Pi whose monitor budget is 30 MB.

Run in a fresh interpreter: pytest itself has loaded most of these long before.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NOT_IN_THE_MONITOR = {
    "difflib": "core.tomlschema's 'did you mean' for a mistyped key (0.2 MB)",
    "wave": "firmware.session.cues' WAV measurement, for the tools (0.1 MB)",
    "importlib.metadata": "entry-point scans (1.4 MB with email, zipfile, csv)",
    "importlib.resources": "gpiozero's display fonts (with tempfile, shutil, bz2, lzma: 0.9 MB)",
    "tempfile": "nothing in the monitor writes temporary files",
}

PROBE = """
import json, sys
import launcher.cli, firmware.app, firmware.monitor, firmware.session.runner, hal.gpio, hal.mpu6050
print(json.dumps(sorted(sys.modules)))
"""


def test_the_monitor_does_not_import_what_only_errors_and_tools_need() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout))
    assert "firmware.monitor" in loaded  # the probe did import the monitor
    assert {name: why for name, why in NOT_IN_THE_MONITOR.items() if name in loaded} == {}
