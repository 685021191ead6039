"""``retroguard caregiver add-user`` through the CLI, as an installer or a clinic admin runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from caregiver.auth import Accounts
from caregiver.storage import Store
from launcher.cli import main


def test_add_user_stores_a_hash_that_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "caregiver.db"
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{db}"\n')
    secret = tmp_path / "pw"
    secret.write_text("correct horse battery\n")
    argv = ["caregiver", "add-user", "ann", "--password-file", str(secret), "-c", str(config)]
    assert main(argv) == 0
    assert "user ann saved" in capsys.readouterr().out
    store = Store(str(db))
    try:
        accounts = Accounts(store)
        assert accounts.verify("ann", "correct horse battery")
        assert not accounts.verify("ann", "wrong")
    finally:
        store.close()
    assert b"correct horse battery" not in db.read_bytes()


def test_bad_caregiver_config_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "caregiver.toml"
    config.write_text("[server]\nprot = 8080\n")
    assert main(["caregiver", "-c", str(config)]) == 2
    assert f"{config}: server.prot: unknown key (did you mean 'port'?)" in capsys.readouterr().err
