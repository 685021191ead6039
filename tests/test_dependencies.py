"""What each part of the tree imports is what its install declares.

A Pi that runs only the monitor installs ``.[pi]`` (``scripts/install-pi.sh``): the
``dependencies`` of ``pyproject.toml`` and lgpio. The caregivers' service needs the
``caregiver`` extra, a few offline tools ``batch``. A module moved across that line, or a new
import nobody declared, would install fine here (the development venv has every extra) and
fail on the Pi: these tests read every import in the tree (including those inside functions)
and check it against the declared requirements, and the launcher's table of which extra brings
which module (:mod:`launcher.extras`) against the same file.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from launcher.extras import EXTRA_OF_MODULE

ROOT = Path(__file__).resolve().parent.parent
LOCAL = {"core", "hal", "sim", "firmware", "tools", "caregiver", "launcher"}
MONITOR_SIDE = ("core", "hal", "firmware", "sim", "launcher", "tools")
"""What a monitor-only Pi runs or may run (``retroguard run``, ``doctor``, ``calibrate``,
``prompts``, ``watch``, ``evaluate``...): the base dependencies only, but for :data:`OFFLINE`."""
OFFLINE = {
    "tools/batch.py": "batch",
    "tools/gait_evaluate.py": "batch",
    "tools/gait_reference.py": "batch",
    "tools/pgcluster.py": "caregiver",  # the tests' PostgreSQL cluster for the caregiver store
}
"""Offline tools that need an extra, and which (each imported only by its own command)."""


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {_name(r) for r in project["dependencies"]}
    extras = {
        extra: {_name(r) for r in reqs if not r.startswith("retroguard")}
        for extra, reqs in project["optional-dependencies"].items()
    }
    return base, extras


@functools.cache
def _packages_distributions() -> Mapping[str, list[str]]:
    """Once a run: each call reads every installed distribution's metadata (~0.2 s here), and
    the checks below ask for every module the tree imports (most of a minute under load)."""
    return importlib.metadata.packages_distributions()


def _distributions(module: str) -> set[str]:
    """The installed distributions that provide top-level ``module`` (normalised names)."""
    found = _packages_distributions().get(module, [])
    return {re.sub(r"[-_.]+", "-", d).lower() for d in found}


def _third_party_imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.partition(".")[0]
            if top not in sys.stdlib_module_names and top not in LOCAL and top != "__future__":
                yield top


@functools.cache
def _imports_of(package: str) -> Mapping[str, frozenset[str]]:
    """Third-party top-level module -> the files of ``package`` that import it."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in _third_party_imports(path):
            found.setdefault(module, set()).add(path.relative_to(ROOT).as_posix())
    return {module: frozenset(files) for module, files in found.items()}


def test_the_monitor_s_side_imports_only_the_base_dependencies() -> None:
    """Everything a monitor-only Pi may run imports only what ``.[pi]`` installs (lgpio, the
    ``pi`` extra's, is loaded by gpiozero, never imported here)."""
    base, extras = _declared()
    wrong = []
    for package in MONITOR_SIDE:
        for module, files in _imports_of(package).items():
            provided = _distributions(module)
            assert provided, f"{module} (imported by {sorted(files)}) is not installed at all"
            for file in sorted(files):
                allowed = base | extras[OFFLINE[file]] if file in OFFLINE else base
                if not provided & allowed:
                    wrong.append(f"{file} imports {module} ({sorted(provided)})")
    assert wrong == [], "not in the monitor's dependencies:\n" + "\n".join(wrong)


def test_the_caregiver_service_imports_only_the_base_and_its_extra() -> None:
    base, extras = _declared()
    allowed = base | extras["caregiver"]
    wrong = [
        f"{sorted(files)} import {module}"
        for module, files in _imports_of("caregiver").items()
        if not _distributions(module) & allowed
    ]
    assert wrong == []


def test_the_web_stack_is_not_in_the_monitor_s_dependencies() -> None:
    """The fault this guards: until 2026-12 every monitor's Pi installed the caregivers' web
    stack and PostgreSQL driver (the base dependencies), which the monitor never imports."""
    base, extras = _declared()
    web = {"starlette", "uvicorn", "jinja2", "apprise", "argon2-cffi", "psycopg", "fpdf2"}
    assert web <= extras["caregiver"]
    assert not web & base
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "retroguard[caregiver]" in project["optional-dependencies"]["dev"]  # tests have it


def test_the_launcher_names_the_right_extra_for_each_module() -> None:
    """:data:`launcher.extras.EXTRA_OF_MODULE` against ``pyproject.toml``: each module it lists
    comes from a distribution that extra declares, and every module the caregiver's files or
    an offline tool import beyond the base dependencies is listed (else its command would end
    in a traceback rather than say what to install)."""
    base, extras = _declared()
    for module, extra in EXTRA_OF_MODULE.items():
        # An extra the development venv does not install (plot): its module by its own name.
        provided = _distributions(module) or {module}
        assert provided & extras[extra], f"{module}: {sorted(provided)} not in [{extra}]"
        assert not provided & base, f"{module} is a base dependency's: nothing to advise"
    beyond_base = {
        module
        for package in ("caregiver", "tools")
        for module in _imports_of(package)
        if not _distributions(module) & base
    }
    assert beyond_base - EXTRA_OF_MODULE.keys() == set()


BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
BLOCKED = set(sys.argv[1].split(","))
sys.meta_path.insert(0, Block())
%s
from launcher.cli import main
sys.exit(main(sys.argv[2:]))
"""
"""Runs the launcher as an install without the ``caregiver`` extra would: its modules cannot
be found (the venv here has them, and a second venv without would cost minutes a run)."""
SIMULATED_CLOCK = """
import core.clock, launcher.demo
launcher.demo.RealClock = lambda speed: core.clock.SimClock()
"""
"""For ``demo``: its monitor on a simulated clock, as tests/test_demo_and_replay.py runs it, not
the host's at ``--speed 10`` (the walk's minutes took 10-20 s of the test's time, waiting)."""


def _without_caregiver_extra(
    *argv: str, cwd: Path, simulated_clock: bool = False
) -> subprocess.CompletedProcess[str]:
    blocked = ",".join(m for m, extra in EXTRA_OF_MODULE.items() if extra == "caregiver")
    script = BLOCKER % (SIMULATED_CLOCK if simulated_clock else "")
    return subprocess.run(
        [sys.executable, "-c", script, blocked, *argv],
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_caregiver_command_without_its_extra_says_what_to_install(tmp_path: Path) -> None:
    config = tmp_path / "caregiver.toml"
    config.write_text("[server]\nport = 0\n")
    result = _without_caregiver_extra("caregiver", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "the 'caregiver' extra is needed and not installed here" in result.stderr
    assert "pip install 'retroguard[caregiver]'" in result.stderr
    assert "install-pi.sh --caregiver" in result.stderr


@pytest.mark.parametrize("argv", [["config", "--example"], ["--help"]])
def test_the_monitor_s_commands_run_without_the_caregiver_extra(
    tmp_path: Path, argv: list[str]
) -> None:
    result = _without_caregiver_extra(*argv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout


def test_the_demo_without_the_caregiver_extra_runs_the_monitor_and_says_why_no_dashboard(
    tmp_path: Path,
) -> None:
    """``retroguard demo`` on a monitor-only install: the monitor's story runs to its end (the
    relay released by the fall) and the missing dashboard is explained, not a traceback."""
    result = _without_caregiver_extra(
        "demo", "--no-live", "--speed", "10", cwd=tmp_path, simulated_clock=True
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert (
        "Caregiver dashboard: not started: the 'caregiver' extra is needed and not installed "
        "here" in output
    )
    assert "Ended in TRIPPED with the relay released." in output
