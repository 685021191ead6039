"""`retroguard run` loads the monitor and nothing else: no simulation, tools or web stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from launcher import cli
args = cli.build_parser({argv!r}).parse_args({argv!r})
{then}
print(json.dumps(sorted(sys.modules)))
"""


def loaded_after(argv: list[str], then: str = "") -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv, then=then)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def packages(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_run_imports_the_monitor_only() -> None:
    # what cmd_run imports before it builds the app from a hardware config
    loaded = loaded_after(["run"], "import firmware.app, firmware.config, hal.imu_factory")
    assert "firmware.app" in loaded
    assert not packages(loaded) & {"sim", "tools", "caregiver", "numpy", "starlette", "uvicorn"}
    assert not {"jinja2", "apprise", "argon2", "playwright"} & packages(loaded)


@pytest.mark.parametrize(
    ("argv", "module"),
    [
        (["doctor"], "tools.doctor"),
        (["-v", "evaluate", "some/dir"], "tools.evaluate"),
        (["caregiver"], "caregiver.cli"),
    ],
)
def test_a_tool_is_loaded_only_when_it_is_the_command(argv: list[str], module: str) -> None:
    loaded = loaded_after(argv)
    assert module in loaded
    others = {"tools.doctor", "tools.evaluate", "caregiver.cli"} - {module}
    assert not others & loaded


def test_help_lists_every_command_without_loading_them() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "launcher.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    for name in ("run", "demo", "doctor", "calibrate", "caregiver", "watch", "evaluate"):
        assert f"    {name}" in result.stdout
