"""``retroguard caregiver add-user`` through the CLI, as an installer or a clinic admin runs it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from caregiver.auth import Accounts
from caregiver.config import load_config
from caregiver.storage import Store, engine_of
from core.errors import ConfigError
from launcher.cli import main
from tests.caregiver_db import execute
from tools.broker import free_port
from tools.pgcluster import PostgresCluster


def test_add_user_stores_a_hash_that_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caregiver_db: str
) -> None:
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{caregiver_db}"\n')
    secret = tmp_path / "pw"
    secret.write_text("correct horse battery\n")
    argv = ["caregiver", "add-user", "ann", "--password-file", str(secret), "-c", str(config)]
    assert main(argv) == 0
    assert "user ann saved" in capsys.readouterr().out
    store = Store(caregiver_db)
    try:
        accounts = Accounts(store)
        assert accounts.verify("ann", "correct horse battery")
        assert not accounts.verify("ann", "wrong")
    finally:
        store.close()
    rows = execute(caregiver_db, "SELECT username, password_hash FROM users")
    assert rows and "correct horse battery" not in repr(rows)
    if engine_of(caregiver_db) == "sqlite":
        assert b"correct horse battery" not in Path(caregiver_db).read_bytes()


def test_bad_caregiver_config_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "caregiver.toml"
    config.write_text("[server]\nprot = 8080\n")
    assert main(["caregiver", "-c", str(config)]) == 2
    assert f"{config}: server.prot: unknown key (did you mean 'port'?)" in capsys.readouterr().err


@pytest.mark.parametrize("key", ["password", "password_file"])
def test_a_broker_password_without_a_user_name_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    """paho sends a password only with a user name: it was dropped without a word."""
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[mqtt]\n{key} = "secret"\n')
    assert main(["caregiver", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{config}: mqtt.{key}: set, but mqtt.username is empty" in err
    assert "secret" not in err


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("keepalive_s = 70000", "mqtt.keepalive_s: must be between 1 and 65535 s"),
        ("keepalive_s = -1", "mqtt.keepalive_s: must be between 1 and 65535 s"),
        ("session_expiry_s = 9999999999", "mqtt.session_expiry_s: must be between 0 and"),
        ('topic_prefix = "rg/#"', "mqtt.topic_prefix: must be one topic level"),
        ('topic_prefix = ""', "mqtt.topic_prefix: must be one topic level"),
        ('topic_prefix = "rg\\u0001"', "mqtt.topic_prefix: must not contain control characters"),
        ('client_id = ""', "mqtt.client_id: must not be empty"),
        ('client_id = "care\\u0000"', "mqtt.client_id: must not contain control characters"),
        ('username = "care\\u007f"', "mqtt.username: must not contain control characters"),
        ('shared_group = "g\\u0001"', "mqtt.shared_group: must not contain control characters"),
        ('username = "care\\uFFFF"', "mqtt.username: must not contain Unicode noncharacters"),
        ('topic_prefix = "rg\\uFDD0"', "mqtt.topic_prefix: must not contain Unicode noncharacters"),
    ],
)
def test_broker_settings_mqtt_cannot_carry_are_refused(
    tmp_path: Path, setting: str, problem: str
) -> None:
    """Each of these was taken, then killed paho's network thread with a traceback (keepalive,
    session expiry and a wildcard prefix: struct.error, ValueError), raised out of the start
    (a negative keepalive), or left the broker refusing the service at every connect."""
    config = tmp_path / "caregiver.toml"
    config.write_text(f"[mqtt]\n{setting}\n")
    with pytest.raises(ConfigError) as err:  # as `retroguard caregiver` reads it (exit 2)
        load_config(config)
    assert any(line.startswith(f"{config}: {problem}") for line in err.value.problems)


@pytest.mark.parametrize("hours", ["1e306", "9601", "0"])
def test_a_login_longer_than_a_browser_keeps_a_cookie_is_refused(
    tmp_path: Path, hours: str
) -> None:
    """``session_hours = 1e306`` was taken; every login then failed with a traceback (the
    cookie's Max-Age, int(1e306 * 3600) = int(inf), overflowed)."""
    config = tmp_path / "caregiver.toml"
    config.write_text(f"[server]\nsession_hours = {hours}\n")
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert err.value.problems == [
        f"{config}: server.session_hours: must be in (0, 9600] h "
        "(a browser keeps a cookie 400 days at most)"
    ]
    config.write_text("[server]\nsession_hours = 9600\n")
    assert load_config(config).server.session_hours == 9600.0


@pytest.mark.parametrize(
    ("database", "problem"),
    [
        ("mysql://care@db/retroguard", "mysql:// databases are not supported"),
        ("postgresql://care@db:port/retroguard", "not a valid postgresql:// URL"),
        ("postgresql://care@db:5432/", "the postgresql:// URL names no database"),
    ],
)
def test_a_bad_database_url_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], database: str, problem: str
) -> None:
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{database}"\n')
    assert main(["caregiver", "-c", str(config)]) == 2
    assert f"{config}: server.database: {problem}" in capsys.readouterr().err


def test_an_unreachable_postgresql_is_a_clear_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "caregiver.toml"
    port = free_port()  # nothing listens there
    config.write_text(f'[server]\ndatabase = "postgresql://care:secret@127.0.0.1:{port}/rg"\n')
    secret = tmp_path / "pw"
    secret.write_text("correct horse battery\n")  # a good one: read before the database
    argv = ["caregiver", "add-user", "ann", "--password-file", str(secret), "-c", str(config)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    (line,) = err.strip().splitlines()  # psycopg's message spans lines: one here
    assert line.startswith("retroguard caregiver: caregiver database postgresql://care:***@")
    assert "Check that the PostgreSQL server is running" in line
    assert "secret" not in err


def test_a_database_in_a_folder_the_service_can_never_write_is_refused(tmp_path: Path) -> None:
    """/etc/retroguard/caregiver.toml with `database = "caregiver.db"` named
    /etc/retroguard/caregiver.db, which the unit's ProtectSystem= keeps read-only: refused
    whoever loads it (root may write /etc; the service never can)."""
    config = tmp_path / "caregiver.toml"
    config.write_text('[server]\ndatabase = "/etc/retroguard/caregiver.db"\n')
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    (problem,) = refused.value.problems
    assert problem.startswith(
        f"{config}: server.database: /etc/retroguard/caregiver.db is in /etc, which the service "
        "can never write"
    )
    assert problem.endswith("e.g. /var/lib/retroguard/caregiver.db")
    config.write_text('[server]\ndatabase = "caregiver.db"\n')  # beside a config it may write
    assert load_config(config).server.database == str(tmp_path / "caregiver.db")


def _damaged(kind: str, database: Path, tmp_path: Path) -> None:
    """``database`` made as ``kind`` says, from a real caregiver database with an account."""
    if kind == "not SQLite":
        database.write_bytes(bytes(range(256)) * 32)
        return
    good = tmp_path / "good.db"
    Accounts(store := Store(good)).add_user("ann", "correct horse battery")
    store.close()  # its last connection checkpoints the WAL into the file
    if kind == "truncated":
        data = good.read_bytes()
        database.write_bytes(data[: len(data) // 2])
    elif kind == "newer schema":
        good.rename(database)
        execute(str(database), "PRAGMA user_version = 999")
    else:  # pragma: no cover
        raise AssertionError(kind)


OPEN_COMMANDS = [
    pytest.param([], id="serve"),
    pytest.param(["users"], id="users"),
    pytest.param(["add-user", "bob", "--password-file", "{pw}"], id="add-user"),
    pytest.param(["report", "dev1"], id="report"),
]


@pytest.mark.parametrize("command", OPEN_COMMANDS)
@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("not SQLite", "not a RetroGuard database (not an SQLite database file at all)"),
        ("truncated", "cannot open it: database disk image is malformed. The file is damaged"),
        ("newer schema", "the caregiver database is at schema version 999, newer than this"),
    ],
)
def test_a_database_the_service_cannot_open_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], kind: str, says: str
) -> None:
    """Every command that opens the caregiver database, on a file that is not SQLite, a
    damaged one and one from a later release: one line on stderr naming the file, what is
    wrong and what to do, exit status 2 (the unit's RestartPreventExitStatus: no restart
    loop), no traceback. Before, a truncated file said "caregiver database: database disk
    image is malformed", naming no file and no remedy, with exit status 1 (restarted every
    2 s)."""
    database = tmp_path / "caregiver.db"
    _damaged(kind, database, tmp_path)
    config = tmp_path / "caregiver.toml"
    config.write_text(  # a contact: serve's start warns of none, before it opens the database
        f'[server]\ndatabase = "{database}"\n[[contacts]]\nurls = ["ntfy://ntfy.sh/t"]\n'
    )
    secret = tmp_path / "pw"
    secret.write_text("correct horse battery\n")
    argv = ["caregiver", "-c", str(config), *(a.format(pw=secret) for a in command)]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    (line,) = err.strip().splitlines()
    assert str(database) in line and says in line
    assert "Traceback" not in err


def test_a_database_locked_past_the_busy_timeout_is_one_line_and_retried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another process (here another connection) holding the file's write lock past SQLite's
    busy timeout: ``sqlite3.OperationalError: database is locked`` came out of migrate() as a
    traceback. Now one line naming the file and what to do, exit status 1: a lock passes, so
    systemd restarts the service (not in RestartPreventExitStatus)."""
    import sqlite3

    database = tmp_path / "caregiver.db"
    Store(database).close()
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{database}"\n')
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        capsys.readouterr()
        assert main(["caregiver", "-c", str(config), "users"]) == 1
    finally:
        holder.close()
    err = capsys.readouterr().err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"retroguard caregiver: caregiver database {database}: cannot open it:")
    assert "database is locked. Another process holds it locked" in line
    assert main(["caregiver", "-c", str(config), "users"]) == 0  # the lock gone: it opens


def _add_user_fails(tmp_path: Path, database: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """``caregiver add-user`` on a config naming ``database``: exit status 1 (a storage fault
    systemd may retry) and the one line it says on stderr."""
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{database}"\n')
    secret = tmp_path / "pw"
    secret.write_text("correct horse battery\n")
    argv = ["caregiver", "-c", str(config), "add-user", "ann", "--password-file", str(secret)]
    capsys.readouterr()
    assert main(argv) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    return line


def test_a_database_whose_folder_cannot_be_made_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The folder cannot be made (a file is in its place; as root this stands in for a folder
    the service's user may not write, which root always may): one line naming the database
    and what to check, exit status 1."""
    (tmp_path / "state").write_text("")
    database = tmp_path / "state" / "caregiver.db"
    line = _add_user_fails(tmp_path, database, capsys)
    assert f"caregiver database {database}: cannot open it: cannot make its directory" in line
    assert "may write the folder and the file" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes a folder whatever its mode")
def test_a_database_in_a_folder_this_user_cannot_write_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o555)
    database = folder / "caregiver.db"
    line = _add_user_fails(tmp_path, database, capsys)
    assert f"caregiver database {database}: cannot open it: unable to open database file" in line


def test_a_postgresql_login_refused_is_one_line_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres_cluster: PostgresCluster
) -> None:
    """A role the server does not know (the cluster trusts its one local user, so a wrong
    password would pass): one line naming the URL (password hidden), the server's reason and
    what to check; psycopg's message spans lines. Exit 1: a server's accounts can be fixed
    while the service retries."""
    url = f"postgresql://nobody:secret@{postgres_cluster.host}:{postgres_cluster.port}/postgres"
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{url}"\n')
    capsys.readouterr()
    assert main(["caregiver", "-c", str(config), "users"]) == 1
    err = capsys.readouterr().err
    (line,) = err.strip().splitlines()
    assert "secret" not in line
    assert "nobody:***@" in line and 'role "nobody" does not exist' in line
    assert "Check that the PostgreSQL server is running" in line


def test_a_disk_full_during_the_upgrade_is_retried_not_a_schema_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk full while the migrations run (SQLite's page limit stands in for the disk):
    before, a SchemaError ("upgrading ... failed"), exit 2, which the unit no longer restarts
    for, though the next start may find room. Now the store's StorageFault naming the file,
    exit 1, and the file is left unversioned, as it was."""
    import caregiver.storage.engines
    from caregiver.storage.engines import SqliteDatabase

    real = SqliteDatabase.prepare_file

    def small_disk(self: SqliteDatabase) -> None:
        real(self)
        self.execute("PRAGMA max_page_count = 2")

    monkeypatch.setattr(caregiver.storage.engines.SqliteDatabase, "prepare_file", small_disk)
    database = tmp_path / "caregiver.db"
    line = _add_user_fails(tmp_path, database, capsys)
    assert f"caregiver database {database}: cannot open it: database or disk is full." in line
    assert execute(str(database), "PRAGMA user_version") == [(0,)]
