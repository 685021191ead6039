"""The caregiver's SQLite WAL is copied into the database file by the service, not by ingest's
commits (caregiver.storage.engines.SqliteCheckpointer says why).

The files are read from outside, as an independent witness: the WAL file's length says how
many frames it holds since it last started again, the database file's length what was copied.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caregiver.storage import Store
from caregiver.storage.engines import CHECKPOINT_BACKSTOP_PAGES
from tests.caregiver_support import make_config, new_event, running_service
from tests.storage_support import wait_for
from tools.broker import Mosquitto, mosquitto_available

PAGE = 4096
FRAME = PAGE + 24
"""A WAL frame: a page and its header."""
SQLITE_AUTO_CHECKPOINT = 1000
"""SQLite's default: the commit that takes the WAL past this many pages copies it."""
PAYLOAD = json.dumps(list(range(1500)))
"""An event's body of ~8 kB: two pages or more a commit, as an event with its recording."""


def _store_events(store: Store, first: int, count: int) -> None:
    for n in range(first, first + count):  # one commit each, as ingest's smallest batches
        with store.transaction() as tx:
            assert tx.record_event(new_event(n, payload=PAYLOAD), float(n))


def test_the_store_s_commits_leave_the_wal_for_its_checkpoint(tmp_path: Path) -> None:
    database = tmp_path / "caregiver.db"
    store = Store(str(database))
    try:
        _store_events(store, 1, 600)  # well past SQLite's 1000 pages, far below the backstop
        wal_frames = (tmp_path / "caregiver.db-wal").stat().st_size // FRAME
        assert SQLITE_AUTO_CHECKPOINT * 1.1 < wal_frames < CHECKPOINT_BACKSTOP_PAGES
        file_before = database.stat().st_size
        frames, copied = store.checkpoint()
        assert frames == copied >= wal_frames - 1  # all of it: no reader held an older snapshot
        assert database.stat().st_size - file_before >= 600 * len(PAYLOAD)
        assert store.checkpoint() == (frames, copied)  # nothing new: the same WAL, all copied
        assert store.event_count() == 600
    finally:
        store.close()


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")
def test_the_running_service_copies_the_wal_into_the_file_by_itself(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Fewer pages than SQLite's own checkpoint would ever copy: only the service's does."""
    config = make_config(mosquitto, tmp_path)
    database = Path(config.server.database)
    with running_service(config, web=False, background=True) as service:
        file_before = database.stat().st_size
        _store_events(service.store, 1, 100)  # ~300 pages
        assert (tmp_path / "caregiver.db-wal").stat().st_size // FRAME < SQLITE_AUTO_CHECKPOINT
        assert wait_for(lambda: database.stat().st_size - file_before >= 100 * len(PAYLOAD))
