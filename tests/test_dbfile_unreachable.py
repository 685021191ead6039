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


def _one_line(done: subprocess.CompletedProcess[str], status: int) -> str:
    """The command's last line on standard error, having checked it ended so, not in a
    traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == status, done.stderr
    return done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["record", "{x}.trace"], "argument out: {x}.trace: cannot reach: Permission denied"),
        (
            ["evaluate", "{tmp}", "--json", "{x}.json"],
            "argument --json: {x}.json: cannot reach: Permission denied",
        ),
        (
            ["evaluate", "{tmp}", "--per-file", "{x}.csv"],
            "argument --per-file: {x}.csv: cannot reach: Permission denied",
        ),
        (
            ["evaluate-gait", "--json", "{x}.json"],
            "argument --json: {x}.json: cannot reach: Permission denied",
        ),
        (
            ["caregiver", "report", "t", "--pdf", "{x}.pdf"],
            "argument --pdf: {x}.pdf: cannot reach: Permission denied",
        ),
        (["evaluate", "{x}"], "evaluate: {x}: cannot reach: Permission denied"),
        (["evaluate", "{locked}"], "evaluate: {locked}: cannot read: Permission denied"),
        (
            ["evaluate-gait", "--sisfall", "{x}"],
            "evaluate-gait: --sisfall {x}: cannot reach: Permission denied",
        ),
        (
            ["evaluate-gait", "--kfall", "{locked}"],
            "evaluate-gait: --kfall {locked}: cannot read: Permission denied",
        ),
        (
            ["sessions", "--db", "{x}.db"],
            "retroguard sessions: {x}.db: cannot reach: Permission denied",
        ),
        (
            ["plan", "-c", "{config}", "progression", "set", "{x}.json"],
            "retroguard plan: {x}.json: cannot reach: Permission denied",
        ),
    ],
    ids=[
        "record-out",
        "evaluate-json",
        "evaluate-per-file",
        "evaluate-gait-json",
        "caregiver-report-pdf",
        "evaluate-path",
        "evaluate-folder",
        "evaluate-gait-sisfall",
        "evaluate-gait-kfall-folder",
        "sessions-db",
        "plan-progression-file",
    ],
)
def test_a_path_in_a_folder_the_user_may_not_enter_is_one_line_exit_2(
    locked_folder: Path, tmp_path: Path, argv: list[str], said: str
) -> None:
    """Python 3.11's ``Path.exists()``/``is_dir()`` raise for a path under such a folder:
    every command that asked them about a path a person gave (an output file's check, a
    recording, a database, a progression file) ended in a traceback of ``pathlib``, exit 1.
    A folder itself that cannot be read was "no recordings found in" it."""
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\ndatabase = "{tmp_path / "device.db"}"\n')
    names = {"x": locked_folder / "x", "locked": locked_folder, "tmp": tmp_path}
    done = _as_a_user_who_may_not_enter([a.format(config=config, **names) for a in argv])
    assert _one_line(done, 2).endswith(said.format(**names))


def test_a_device_database_in_a_folder_the_user_may_not_enter_is_one_line(
    locked_folder: Path, tmp_path: Path
) -> None:
    """``plan show`` asked ``exists()`` of it first: a traceback. Now as ``walker`` says it
    (exit 1, the database's user to run it as); ``sessions`` and ``prompts``, which only
    read it, refuse it (2); the doctor's store check FAILs naming it."""
    database = locked_folder / "device.db"
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\ndatabase = "{database}"\n')
    for command in (["plan", "show"], ["walker", "list"]):
        done = _as_a_user_who_may_not_enter([*command, "-c", str(config)])
        line = _one_line(done, 1)
        assert f"{database}: cannot open: Permission denied (the monitor's database" in line
    done = _as_a_user_who_may_not_enter(["sessions", "-c", str(config)])
    assert _one_line(done, 2) == f"retroguard sessions: {database}: cannot reach: Permission denied"
    done = _as_a_user_who_may_not_enter(["prompts", "-c", str(config)])
    assert _one_line(done, 2) == f"storage.database: {database}: cannot reach: Permission denied"
    done = _as_a_user_who_may_not_enter(["doctor", "-c", str(config)])
    assert "Traceback" not in done.stderr, done.stderr
    (store,) = [line for line in done.stdout.splitlines() if " event-store " in line]
    assert store.startswith("FAIL") and f"{database}: cannot reach: Permission denied" in store


def test_a_control_socket_below_a_folder_the_user_may_not_enter_is_refused_by_the_check(
    locked_folder: Path, tmp_path: Path
) -> None:
    """The check looked for the folder the socket would be made in with ``exists()``: for
    one below a folder the user may not enter, ``config --check`` and ``run`` (and the
    doctor) ended in a traceback."""
    socket = locked_folder / "run" / "session.sock"
    config = tmp_path / "config.toml"
    config.write_text(f'[session]\ncontrol_socket = "{socket}"\n')
    said = f"session.control_socket: {socket.parent}: cannot reach: Permission denied"
    for command in (["config", "--check"], ["run", "-c"]):
        done = _as_a_user_who_may_not_enter([*command, str(config)])
        assert _one_line(done, 2) == f"{config}: {said}"


def test_a_prompt_cache_the_user_cannot_write_is_named_not_blamed_on_espeak(
    locked_folder: Path, tmp_path: Path
) -> None:
    """espeak-ng told to write into a folder it may not says nothing and exits 0: ``prompts``
    then failed on the WAV never written, "espeak-ng failed: [Errno 2] No such file", and on a
    cache it could not make "espeak-ng failed: [Errno 13]". It asks first, naming the cache
    (2); below a folder it may not enter, the same."""
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o555)
    for cache, said in (
        (read_only / "prompts", f"{read_only}: cannot write in it (permission denied"),
        (read_only, f"{read_only}: cannot write in it (permission denied"),
        (locked_folder / "prompts", f"{locked_folder / 'prompts'}: cannot reach: Permission"),
    ):
        config = tmp_path / "config.toml"
        config.write_text(
            f'[storage]\ndatabase = "{tmp_path / "device.db"}"\n'
            f'[session]\nprompt_cache = "{cache}"\n'
        )
        done = _as_a_user_who_may_not_enter(["prompts", "-c", str(config)])
        assert _one_line(done, 2).startswith(f"retroguard prompts: session.prompt_cache: {said}")
    assert list(read_only.iterdir()) == []


def test_a_tls_file_that_cannot_be_read_or_is_a_folder_is_named(
    locked_folder: Path, tmp_path: Path
) -> None:
    """A CA file the user may not read was "mqtt: TLS setup failed: [Errno 13] Permission
    denied", naming no file; a folder was "no such file"."""
    unreadable = tmp_path / "ca.pem"
    unreadable.write_text("x\n")
    unreadable.chmod(0)
    for ca, said in (
        (unreadable, f"mqtt.ca_file: cannot read {unreadable}: Permission denied"),
        (tmp_path, f"mqtt.ca_file: a directory, not a file: {tmp_path}"),
    ):
        argv = ["watch", "--tls", "--ca-file", str(ca), "--port", "1", "--count", "1"]
        done = _as_a_user_who_may_not_enter(argv)
        assert _one_line(done, 2) == f"retroguard watch: {said}"


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (["sessions"], "retroguard sessions: "),
        (["plan", "show"], "retroguard plan: "),
        (["prompts"], "storage.database: "),
        (["walker", "list"], "retroguard walker: "),
    ],
)
def test_a_database_name_holding_a_nul_is_one_line(
    tmp_path: Path, command: list[str], said: str
) -> None:
    """A config's ``"\\u0000"`` in a path: ``os.stat`` (core.cliargs.unreachable, asked first
    since e9141a6) raises ValueError for it where ``Path.exists()`` answered False, and
    ``retroguard sessions`` and ``prompts`` ended in a traceback (plan, walker and the doctor
    already did)."""
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\ndatabase = "{tmp_path}/a\\u0000b.db"\n')
    done = subprocess.run(
        [sys.executable, "-m", "launcher.cli", *command, "--config", str(config)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"{said}{tmp_path}/a\\0b.db: cannot reach: a file name cannot hold a NUL character (\\0)"
    ]
