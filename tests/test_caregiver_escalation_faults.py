"""The escalation tick, run every second, says a storage fault once until a tick works again.

While the database refused (a full disk, a lock held past its timeout, a damaged page), the
ticker logged a full traceback of the storage package's internals every second: sixty a
minute, burying the line a person needs. Real SQLite file; its COMMITs refused through
SQLite's authorizer on the store's own connection, as tests/test_caregiver_commit_failure.py
does.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from caregiver.config import CaregiverConfig, CaregiverMqttConfig, ServerConfig
from caregiver.service import CaregiverService
from caregiver.storage.engines import SqliteDatabase
from tools.broker import free_port


def _refuse_commits(service: CaregiverService, refuse: bool) -> None:
    db = service.store._db
    assert isinstance(db, SqliteDatabase)

    def refusing(action: int, arg1: str | None, *_: str | None) -> int:
        refused = action == sqlite3.SQLITE_TRANSACTION and arg1 == "COMMIT"
        return sqlite3.SQLITE_DENY if refused else sqlite3.SQLITE_OK

    db._db.set_authorizer(refusing if refuse else None)


def test_a_storage_fault_in_the_escalation_tick_is_said_once_in_words_until_it_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = CaregiverConfig(
        server=ServerConfig(host="127.0.0.1", port=0, database=str(tmp_path / "c.db")),
        mqtt=CaregiverMqttConfig(host="127.0.0.1", port=free_port(), client_id="tick"),
    )
    service = CaregiverService(config)  # never started: no broker, no threads
    try:
        faults = service.escalation_faults()
        with caplog.at_level(logging.INFO, logger="caregiver.service"):
            service.escalation_tick(faults)  # works: nothing said
            assert caplog.records == []
            _refuse_commits(service, True)
            for _ in range(5):
                service.escalation_tick(faults)
            _refuse_commits(service, False)
            service.escalation_tick(faults)
            service.escalation_tick(faults)
        said = [(r.levelno, r.getMessage(), r.exc_info) for r in caplog.records]
        assert len(said) == 2, said
        (level, words, trace), (level_after, words_after, _) = said
        assert level == logging.WARNING and trace is None
        assert words.startswith("escalation is held (no reminder, no step to the next contact)")
        assert "caregiver database" in words  # the fault's own words
        assert (level_after, words_after) == (
            logging.INFO,
            "escalation runs again: the database takes it",
        )
        assert faults.fault is None
    finally:
        service.store.close()


def test_a_bug_in_the_escalation_tick_is_logged_with_its_traceback_every_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = CaregiverConfig(
        server=ServerConfig(host="127.0.0.1", port=0, database=str(tmp_path / "c.db")),
        mqtt=CaregiverMqttConfig(host="127.0.0.1", port=free_port(), client_id="tick"),
    )
    service = CaregiverService(config)
    try:

        def broken() -> int:
            raise KeyError("a bug")

        monkeypatch.setattr(service.alerting, "tick", broken)
        faults = service.escalation_faults()
        with caplog.at_level(logging.INFO, logger="caregiver.service"):
            service.escalation_tick(faults)
            service.escalation_tick(faults)
        assert [(r.getMessage(), r.exc_info is not None) for r in caplog.records] == [
            ("escalation tick failed", True),
            ("escalation tick failed", True),
        ]
    finally:
        service.store.close()
