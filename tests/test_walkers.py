"""Walker profiles: the typed walker, the device's registry (migration 5, old files kept working)
and the local CLI, which writes the database and arms nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest

from core.protocol.walker import (
    DEFAULT_WALKER,
    MAX_WALKERS,
    Walker,
    WalkerInvalid,
    check_walker_name,
    walker_id_for,
)
from firmware.storage.database import connect, transaction
from firmware.storage.sessions import load_sessions
from firmware.storage.walkers import (
    add_walker,
    remove_walker,
    roster,
    roster_revision,
    select_walker,
    walker_names,
)
from tests.storage_support import database_at_version


def test_a_walker_is_an_id_and_a_name_checked_on_the_wire() -> None:
    anna = msgspec.json.decode(b'{"id": "anna-b", "name": "Anna B"}', type=Walker)
    assert anna == Walker("anna-b", "Anna B")
    for bad in (b'{"id": "Anna", "name": "x"}', b'{"id": "a/b", "name": "x"}', b'{"id": "a"}'):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(bad, type=Walker)
    assert walker_id_for("Anna B.") == "anna-b"
    assert walker_id_for("Anna B.", {"anna-b"}) == "anna-b-2"
    assert walker_id_for("Zoë") == "zoe"
    assert walker_id_for("李") == "walker"
    assert check_walker_name("  Anna   B ") == "Anna B"
    with pytest.raises(WalkerInvalid, match="blank"):
        check_walker_name("   ")


def test_an_old_database_is_the_default_walker_s(tmp_path: Path) -> None:
    """A version-4 file (sessions, plans, an incident) upgrades: every record is the default
    walker's, and the default walker is registered and chosen."""
    db = tmp_path / "device.db"
    old = database_at_version(db, 4)
    old.execute(
        "INSERT INTO sessions (id, device_id, plan, status, started_wall, planned_s, done_s,"
        " backward_s, longest_backward_s, steps, walking_s, trips, stumbles, body)"
        " VALUES ('s1', 'tm', 'p', 'completed', '2026-11-30T10:00:00+00:00', 1, 1, 1, 1, 0,"
        " 0, 0, 0, '{}')"
    )
    old.execute(
        "INSERT INTO plans (plan, assigned_by, via, assigned_wall) VALUES (NULL, 'Jo', 'cli', 'w')"
    )
    old.execute(
        "INSERT INTO incidents (id, device_id, opened_seq, opened_wall, severity)"
        " VALUES ('i1', 'tm', 1, 'w', 'fall')"
    )
    old.close()
    conn = connect(db)
    try:
        for table in ("sessions", "plans", "incidents"):
            assert conn.execute(f"SELECT walker FROM {table}").fetchall() == [("default",)]
        current = roster(conn)
        assert current.walkers == (DEFAULT_WALKER,) and current.selected == DEFAULT_WALKER
        assert current.revision == 0
    finally:
        conn.close()


def test_the_registry_adds_selects_and_removes_keeping_records(tmp_path: Path) -> None:
    conn = connect(tmp_path / "device.db")
    try:
        with transaction(conn):
            anna = add_walker(conn, "Anna B", by="Jo", wall="w1")
            ben = add_walker(conn, "Ben", walker_id="ben", by="Jo", wall="w2")
        assert anna == Walker("anna-b", "Anna B")
        assert roster(conn).walkers == (DEFAULT_WALKER, anna, ben)
        before = roster_revision(conn)
        with transaction(conn):
            select_walker(conn, "ben", by="Jo", via="cli", wall="w3")
        assert roster(conn).selected == ben and roster_revision(conn) > before
        with pytest.raises(WalkerInvalid, match="is taken"):
            add_walker(conn, "anna b", by="Jo", wall="w4")  # names are spoken: each must differ
        with pytest.raises(WalkerInvalid, match="cannot be removed"):
            remove_walker(conn, "default", by="Jo", wall="w4")
        with pytest.raises(WalkerInvalid, match="no walker 'zed'"):
            select_walker(conn, "zed", by="Jo", via="cli", wall="w4")
        with transaction(conn):
            remove_walker(conn, "ben", by="Jo", wall="w5")
        # Removing the chosen walker leaves the default chosen; the name stays for old records.
        assert roster(conn).selected == DEFAULT_WALKER
        assert roster(conn).walkers == (DEFAULT_WALKER, anna)
        assert walker_names(conn)["ben"] == "Ben"
        with transaction(conn):
            back = add_walker(conn, "Benjamin", walker_id="ben", by="Jo", wall="w6")
        assert back == Walker("ben", "Benjamin") and roster(conn).walkers[-1] == back
        with transaction(conn):
            for n in range(MAX_WALKERS - 3):
                add_walker(conn, f"Walker {n}", by="Jo", wall="w7")
        with pytest.raises(WalkerInvalid, match="remove one first"):
            add_walker(conn, "One too many", by="Jo", wall="w8")
    finally:
        conn.close()


def test_the_cli_manages_walkers_locally_and_says_nothing_was_armed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from launcher.cli import main

    db = str(tmp_path / "device.db")
    assert main(["walker", "--db", db, "list"]) == 0
    assert "* 1. default              Default walker" in capsys.readouterr().out
    assert main(["walker", "--db", db, "add", "Anna B", "--by", "Jo"]) == 0
    out = capsys.readouterr().out
    assert "Walker anna-b added: Anna B." in out and "  2. anna-b" in out
    assert main(["walker", "--db", db, "select", "anna-b"]) == 0
    out = capsys.readouterr().out
    assert "Nothing was armed or started" in out and "* 2. anna-b" in out
    assert main(["walker", "--db", db, "add", "  "]) == 2
    assert "walker name: must not be blank" in capsys.readouterr().err
    assert main(["walker", "--db", db, "remove", "default"]) == 2
    assert "cannot be removed" in capsys.readouterr().err
    assert main(["walker", "--db", db, "remove", "anna-b"]) == 0
    assert "* 1. default" in capsys.readouterr().out
    raw = sqlite3.connect(db)
    changes = raw.execute("SELECT walker, change, via FROM walker_changes ORDER BY id").fetchall()
    raw.close()
    assert changes == [
        ("anna-b", "added", "cli"),
        ("anna-b", "selected", "cli"),
        ("anna-b", "removed", "cli"),
        ("default", "selected", "cli"),
    ]
    assert load_sessions(db) == []  # the CLI records walkers, it starts nothing


def test_adding_a_walker_renders_the_name_prompt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The name is rendered to WAV once, at add (espeak-ng), so the button never waits for it."""
    import shutil

    from launcher.cli import main

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage]\ndatabase = "{tmp_path / "device.db"}"\n'
        f'[session]\nvoice = "auto"\nprompt_cache = "{tmp_path / "prompts"}"\n'
    )
    assert main(["walker", "-c", str(config), "add", "Anna"]) == 0
    out = capsys.readouterr().out
    assert "Name prompt rendered: 'Walker: Anna.'" in out
    wavs = list((tmp_path / "prompts").glob("*.wav"))
    assert len(wavs) == 1 and wavs[0].stat().st_size > 1000
