"""The files the local commands create, and where they refuse to: run as root (as they are
documented to be, beside the service's user) on the service's state directory, what they create
is the service's; a read-only command creates nothing; a database the service could never write
(in /etc, /usr, /boot, /efi) is refused as ``config --check`` refuses it.

The state directory is stood in for by a temporary folder given to ``nobody`` (as
/var/lib/retroguard is ``retroguard``'s), and "the service can write its store" is checked by a
child process that became ``nobody`` and writes to it. The real /etc and /var/lib are never
touched: the commands that would write there without the check find a ``connect`` that fails
the test instead of creating anything.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware.storage.database import connect
from launcher.cli import main
from tests.user_support import NOBODY, as_nobody

"""``nobody``:``nogroup`` on Debian: a real unprivileged user, standing in for ``retroguard``."""

as_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="giving a file to another user needs root: run the tests as root to check what a "
    "command run with sudo leaves in the service's state directory",
)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A folder owned by ``nobody``, mode 0750, as systemd's ``StateDirectory=`` leaves
    /var/lib/retroguard to the service's user; its parent is 0755 so nobody may reach it
    (pytest's own temporary folders are root's alone, 0700)."""
    top = Path(tempfile.mkdtemp())
    top.chmod(0o755)
    state = top / "retroguard"
    state.mkdir(mode=0o750)
    os.chown(state, NOBODY, NOBODY)
    try:
        yield state
    finally:
        shutil.rmtree(top)


def _as_service_user(write: Callable[[], None]) -> tuple[int, str]:
    """Whether ``nobody`` (the service) can ``write`` (its store): the exit status (0:
    written) and what it said."""

    def work() -> int:
        write()
        return 0

    return as_nobody(work)


def _monitor_writes(database: Path) -> Callable[[], None]:
    """The monitor's write: opened with :func:`connect` (its schema checked, WAL), a table
    made and a row committed."""

    def write() -> None:
        conn = connect(database)
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS probe (x INTEGER)")
            conn.execute("INSERT INTO probe VALUES (1)")
        finally:
            conn.close()

    return write


def _root_owned(folder: Path) -> list[str]:
    """Everything under ``folder`` that is root's, relative to it."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.lstat().st_uid == 0)


@as_root
@pytest.mark.parametrize(
    "command",
    [
        ["walker", "list"],
        ["plan", "show"],
        ["walker", "add", "Anna B"],
        ["plan", "set", "progression-week-1"],
    ],
)
@pytest.mark.parametrize("where", ["retroguard.db", "data/retroguard.db"])
def test_a_database_root_creates_in_the_state_directory_is_the_services(
    command: list[str],
    where: str,
    state_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A physio's `sudo retroguard walker add` on a fresh install created retroguard.db root's
    in the service's state directory: the monitor could read it but not write it (SQLite opens
    it read-only), a storage fault at its next start and no arming. systemd does not mend it
    (StateDirectory= chowns the tree only when the directory itself is not the user's). The
    database, a folder made for it, and anything SQLite leaves beside it, are the folder
    owner's, and the service writes it."""
    database = state_dir / where
    config = tmp_path / "config.toml"
    config.write_text(f'[session]\nvoice = "off"\n[storage]\ndatabase = "{database}"\n')
    assert main([*command, "-c", str(config)]) == 0, capsys.readouterr().err
    assert "created it" in capsys.readouterr().err
    assert _root_owned(state_dir) == []
    st = database.stat()
    assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY)
    status, err = _as_service_user(_monitor_writes(database))
    assert status == 0, err
    assert main(["walker", "list", "-c", str(config)]) == 0  # root again, on the service's file
    assert _root_owned(state_dir) == []


@as_root
def test_a_root_command_on_the_services_database_leaves_nothing_root_s_beside_it(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The database is there (WAL mode) and the monitor is stopped: a root command opening it
    makes its -wal and -shm. SQLite gives them the database file's owner when run as root
    (its Unix VFS), so they never block the service, while the command runs or if it is
    killed before it removes them; what makes a root file there is root creating the database
    itself (the test above)."""
    database = state_dir / "retroguard.db"
    connect(database).close()
    for path in state_dir.iterdir():
        os.chown(path, NOBODY, NOBODY)
    held = connect(database)  # a root command's connection, open: its -wal and -shm are there
    try:
        assert main(["walker", "add", "Ben", "--db", str(database)]) == 0
        assert main(["sessions", "--db", str(database)]) == 0
        beside = {p.name: p.stat().st_uid for p in state_dir.iterdir()}
        assert {"retroguard.db", "retroguard.db-wal", "retroguard.db-shm"} <= set(beside)
        assert set(beside.values()) == {NOBODY}, beside  # and prompts/, the name's
        status, err = _as_service_user(_monitor_writes(database))  # the monitor starting meanwhile
        assert status == 0, err
    finally:
        held.close()
    capsys.readouterr()


@as_root
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
@pytest.mark.parametrize("command", [["walker", "add", "Anna B"], ["prompts"]])
def test_prompts_root_renders_into_the_state_directory_are_the_services(
    command: list[str], state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sudo retroguard walker add` renders the name prompt, `sudo retroguard prompts` a
    plan's, into prompts/ beside the database: made by root, the folder was root's, and the
    monitor could neither render a new plan's prompts into it nor prune it. They are the
    state directory owner's."""
    database = state_dir / "retroguard.db"
    # a plan of two intervals: its prompts are rendered as any plan's (a preset's took espeak-ng
    # some 5 s more on a loaded machine, for nothing the owners' check needs)
    plan = tmp_path / "short.toml"
    plan.write_text(
        '[[interval]]\ndirection = "forward"\nminutes = 1\n'
        '[[interval]]\ndirection = "backward"\nminutes = 1\n'
    )
    config = tmp_path / "config.toml"
    config.write_text(f'[session]\nplan = "{plan}"\n[storage]\ndatabase = "{database}"\n')
    assert main([*command, "-c", str(config)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "rendered" in out
    wavs = list((state_dir / "prompts").glob("*.wav"))
    assert wavs
    assert _root_owned(state_dir) == []


def test_a_command_as_another_user_changes_no_owner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not root (or root in its own folder): a created database is the creator's, as always;
    nothing is given away."""
    database = tmp_path / "state" / "retroguard.db"
    assert main(["walker", "list", "--db", str(database)]) == 0
    capsys.readouterr()
    assert database.stat().st_uid == os.geteuid()
    assert database.parent.stat().st_uid == os.geteuid()


@pytest.fixture
def no_database_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command that would open (and so create) a database fails the test instead: the paths
    these tests name are in the real /etc and /usr, which no test may touch."""
    import firmware.storage.database
    from firmware.session import voice

    def refused(*args: object, **kwargs: object) -> None:
        pytest.fail(f"a database or prompt was opened: {args}")

    monkeypatch.setattr(firmware.storage.database, "connect", refused)
    monkeypatch.setattr(voice.PromptCache, "render", refused)


@pytest.mark.usefixtures("no_database_is_made")
@pytest.mark.parametrize(
    "command",
    [["walker", "list"], ["walker", "add", "Anna"], ["plan", "show"], ["sessions"]],
)
@pytest.mark.parametrize(
    ("database", "folder"),
    [("/etc/retroguard/retroguard.db", "/etc"), ("/usr/lib/retroguard/events.db", "/usr")],
)
def test_a_database_the_service_can_never_write_is_refused(
    command: list[str],
    database: str,
    folder: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A relative storage.database resolves in /etc/retroguard; `config --check` and `run`
    refuse it there (core/writable.py), but `walker` and `plan` run as root created the
    database in /etc (root may write it; the service never can, ProtectSystem=strict), and
    `sessions` read one there as the device's. Each refuses it the same way, by the name it
    was given (--db or the config's key), and makes nothing."""
    instead = "name a file in the state directory, e.g. /var/lib/retroguard/retroguard.db"
    assert main([*command, "--db", database]) == 2
    assert capsys.readouterr().err == (
        f"retroguard {command[0]}: --db: {database} is in {folder}, which the service can never "
        f"write (its unit's ProtectSystem= makes {folder} read-only, whoever owns it; a "
        f"relative path is relative to the config file's folder): {instead}\n"
    )
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\ndatabase = "{database}"\n')
    assert main([*command, "-c", str(config)]) == 2
    assert capsys.readouterr().err.startswith(
        f"retroguard {command[0]}: storage.database: {database} is in {folder}, which the "
        "service can never write"
    )


@pytest.mark.usefixtures("no_database_is_made")
def test_walker_add_refuses_a_prompt_cache_the_service_can_never_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`walker add` renders the name prompt into session.prompt_cache: in /etc, refused as
    `config --check` refuses it, before the database is opened."""
    config = tmp_path / "config.toml"
    config.write_text(
        '[session]\nprompt_cache = "/etc/retroguard/prompts"\n'
        f'[storage]\ndatabase = "{tmp_path / "retroguard.db"}"\n'
    )
    assert main(["walker", "add", "Anna", "-c", str(config)]) == 2
    assert capsys.readouterr().err.startswith(
        "retroguard walker: session.prompt_cache: /etc/retroguard/prompts is in /etc, which "
        "the service can never write"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_session_stop_names_a_database_in_etc_instead_of_reading_it(tmp_path: Path) -> None:
    """`session stop`'s summary reads the database as `sessions` does, and refuses it alike."""
    import io

    from tools.sessions import _print_stopped

    out = io.StringIO()
    config = tmp_path / "config.toml"
    config.write_text("")
    _print_stopped("s1", Path("/etc/retroguard/retroguard.db"), config, out)
    assert out.getvalue().startswith(
        "No session summary: --db: /etc/retroguard/retroguard.db is in /etc, which the service "
        "can never write"
    )


CAREGIVER_READS = [
    ["users"],
    ["remove-user", "anna"],
    ["set-role", "anna", "physio"],
    ["limit-user", "anna", "--all"],
    ["report", "dev1"],
]


@pytest.mark.parametrize("command", CAREGIVER_READS)
def test_caregiver_commands_on_no_database_say_so_and_create_nothing(
    command: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`retroguard caregiver users` without -c where /etc/retroguard/caregiver.toml is missing
    (a machine where the service never ran, or the caregiver service is on another host)
    created /var/lib/retroguard/caregiver.db and its folder, and listed "no accounts" from it.
    A command that only reads or changes what is there refuses a database that is not, naming
    it (exit 2), as `retroguard sessions` does; so does one named by a config. The defaults
    are pointed into the test's folder: the real /etc and /var/lib are never looked at."""
    import caregiver.cli
    import caregiver.config

    database = tmp_path / "var" / "lib" / "retroguard" / "caregiver.db"
    missing = tmp_path / "etc" / "caregiver.toml"
    real = caregiver.config.CaregiverConfig
    monkeypatch.setattr(caregiver.cli, "DEFAULT_CONFIG", missing)
    monkeypatch.setattr(
        caregiver.config,
        "CaregiverConfig",
        lambda: real(server=caregiver.config.ServerConfig(database=str(database))),
    )
    assert main(["caregiver", *command]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"retroguard caregiver: {missing} not found; using built-in defaults",
        f"retroguard caregiver {command[0]}: {database}: no such database (the caregiver "
        "service creates it on its first start, add-user with the first account; give the "
        "service's config with -c)",
    ]
    assert not (tmp_path / "var").exists()
    monkeypatch.undo()  # the built-in defaults back, for the config read next
    config = tmp_path / "caregiver.toml"
    config.write_text('[server]\ndatabase = "typo.db"\n')
    assert main(["caregiver", *command, "-c", str(config)]) == 2
    assert f"{tmp_path / 'typo.db'}: no such database" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["caregiver.toml"]


def test_caregiver_add_user_still_creates_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """add-user makes the first account, so it creates the database; then users lists it."""
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{tmp_path / "state" / "caregiver.db"}"\n')
    password = tmp_path / "pw"
    password.write_text("correct horse battery\n")
    argv = ["caregiver", "add-user", "anna", "--password-file", str(password), "-c", str(config)]
    assert main(argv) == 0, capsys.readouterr().err
    assert main(["caregiver", "users", "-c", str(config)]) == 0
    assert "anna" in capsys.readouterr().out


@as_root
def test_caregiver_add_user_as_root_creates_the_services_database(
    state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sudo retroguard caregiver add-user` before the caregiver service's first start: its
    database is the state directory owner's, which the service (the same user, the same
    /var/lib/retroguard) writes."""
    database = state_dir / "caregiver.db"
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{database}"\n')
    password = tmp_path / "pw"
    password.write_text("correct horse battery\n")
    argv = ["caregiver", "add-user", "anna", "--password-file", str(password), "-c", str(config)]
    assert main(argv) == 0, capsys.readouterr().err
    assert _root_owned(state_dir) == []
    assert database.stat().st_uid == NOBODY

    def write() -> None:  # the caregiver service's write: a transaction committed
        conn = sqlite3.connect(database)
        conn.execute("CREATE TABLE probe (x INTEGER)")
        conn.commit()
        conn.close()

    status, err = _as_service_user(write)
    assert status == 0, err
