"""scripts/demo.sh --help: the usage, with nothing installed (no apt-get, venv or pip).

The script is run from a copy of ``scripts/`` in a temporary folder, with ``python3``,
``apt-get`` and ``sudo`` on ``PATH`` replaced by stand-ins that leave a mark: a bootstrap
would call one of them (the copy has no ``.venv/``), and never touches the project's own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _copy(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """A copy of the scripts in ``tmp_path/project``, the stand-ins' mark file, and the
    environment whose ``PATH`` finds the stand-ins first."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    for name in ("demo.sh", "bootstrap.sh"):
        shutil.copy2(ROOT / "scripts" / name, project / "scripts" / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mark = tmp_path / "called"
    for tool in ("python3", "apt-get", "sudo"):
        stand_in = bin_dir / tool
        stand_in.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{mark}"\nexit 1\n')
        stand_in.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    env.pop("PYTHON", None)
    return project, mark, env


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_installs_nothing_and_says_how_it_is_used(tmp_path: Path, flag: str) -> None:
    project, mark, env = _copy(tmp_path)
    result = subprocess.run(
        ["bash", str(project / "scripts" / "demo.sh"), "--speed", "4", flag],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: scripts/demo.sh [DEMO OPTIONS]\n")
    assert "once a first run" in result.stdout  # no venv yet: where the options will be
    assert not mark.exists(), mark.read_text()  # no python3 -m venv, apt-get nor sudo
    assert not (project / ".venv").exists()


def test_help_lists_the_demo_s_options_once_the_venv_is_there(tmp_path: Path) -> None:
    project, mark, env = _copy(tmp_path)
    retroguard = project / ".venv" / "bin" / "retroguard"
    retroguard.parent.mkdir(parents=True)
    retroguard.write_text('#!/bin/sh\necho "retroguard $*"\n')
    retroguard.chmod(0o755)
    result = subprocess.run(
        ["bash", str(project / "scripts" / "demo.sh"), "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: scripts/demo.sh [DEMO OPTIONS]\n")
    assert result.stdout.endswith("\nretroguard demo --help\n")
    assert not mark.exists()
