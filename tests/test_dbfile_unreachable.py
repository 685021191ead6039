"""A database or config in a folder the user may not enter: one clear line, exit 2, no traceback.

``Path.exists()`` raises ``PermissionError`` (EACCES) for it, and
:func:`core.dbfile.database_file_problem` asked it first: ``retroguard caregiver config
--check`` (and every caregiver command, and the service's start) run by a user who may not
enter the database's folder ended in a traceback of ``pathlib``. Real folder, real
permissions: as root, run without the capabilities that let root enter any folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def locked_folder(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0)
    yield folder
    folder.chmod(0o700)


def _as_a_user_who_may_not_enter(argv: list[str]) -> subprocess.CompletedProcess[str]:
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("root enters any folder, and setpriv is not here to drop that")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [*prefix, sys.executable, "-m", "launcher.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command", [["config", "--check"], ["users"]])
def test_a_database_in_a_folder_the_user_may_not_enter_is_one_line(
    locked_folder: Path, tmp_path: Path, command: list[str]
) -> None:
    database = locked_folder / "caregiver.db"
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{database}"\n')
    done = _as_a_user_who_may_not_enter(["caregiver", "-c", str(config), *command])
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"retroguard caregiver: [server] database: {database}: cannot reach: Permission denied"
    )


def test_a_config_in_a_folder_the_user_may_not_enter_is_one_line(locked_folder: Path) -> None:
    """Before: ``Path.exists()`` on ``-c``'s file raised, a traceback and exit 1; now the
    loader's line, as the monitor's ``config --check`` says it."""
    config = locked_folder / "caregiver.toml"
    done = _as_a_user_who_may_not_enter(["caregiver", "config", "--check", str(config)])
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith(f"{config}: permission denied")
