"""A COMMIT that fails on the single-message path (the held messages' retry) is reported and
undone, and the store's next transaction works.

A COMMIT can fail and leave the transaction open (SQLite leaves it open on any failure it did
not roll back itself: SQLITE_BUSY in a rollback journal, a deferred constraint, a refused
statement; a full disk or an I/O error it rolls back itself). Left open, every later write on
the store's one connection failed with "cannot start a transaction within a transaction"
until the service restarted: no alert stored, no receipt sent, the fault reported once and
never cleared (rule 4). In WAL mode (the store's) no other connection can make a COMMIT
busy (the write lock is taken at ``BEGIN IMMEDIATE``), so here SQLite refuses the COMMIT
itself, on the store's real file, through its authorizer: the transaction is left open exactly
as a busy COMMIT leaves it. PostgreSQL ends the transaction on a failed COMMIT; there a
deferred constraint trigger fails it for real.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from caregiver.service import CaregiverService
from caregiver.storage import engine_of
from caregiver.storage.engines import SqliteDatabase
from tests.caregiver_db import execute
from tests.mqtt_helpers import WAIT
from tests.test_caregiver_ingest_batch import DEVICE, _event, _id
from tests.test_caregiver_ingest_failed_handling import _receipted, _receipts
from tools.broker import Mosquitto

REFUSED = "commit refused by the test"


@contextmanager
def _commit_refused(service: CaregiverService, database: str) -> Iterator[None]:
    """Every COMMIT of a transaction that stored an event fails while the block runs."""
    if engine_of(database) == "postgresql":
        execute(
            database,
            "CREATE FUNCTION refuse_commit() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{REFUSED}'; END $$",
        )
        execute(
            database,
            "CREATE CONSTRAINT TRIGGER refuse_commit AFTER INSERT ON events "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_commit()",
        )
        try:
            yield
        finally:
            execute(database, "DROP TRIGGER refuse_commit ON events")
        return
    db = service.store._db  # the store's own connection: the one a COMMIT left stuck
    assert isinstance(db, SqliteDatabase)

    def refuse(action: int, arg1: str | None, *_: str | None) -> int:
        refused = action == sqlite3.SQLITE_TRANSACTION and arg1 == "COMMIT"
        return sqlite3.SQLITE_DENY if refused else sqlite3.SQLITE_OK

    # Under the store's own lock: sqlite3's set_authorizer waits for the connection's mutex
    # holding the GIL, and a statement another thread (ingest) is preparing holds that mutex
    # and calls the authorizer, which needs the GIL: the two waited on each other for ever
    # (the fresh-clone CI of f497c00 hung here). The store's lock keeps every other thread
    # off the connection while the authorizer changes.
    with service.store._lock:
        db._db.set_authorizer(refuse)
    try:
        yield
    finally:
        with service.store._lock:
            db._db.set_authorizer(None)


def test_a_failed_commit_is_reported_undone_and_the_next_message_is_stored(
    tmp_path: Path, caregiver_db: str, mosquitto: Mosquitto
) -> None:
    with _receipted(tmp_path, caregiver_db, mosquitto) as (service, sub):
        store, ingestor = service.store, service.ingestor
        refused, fall = _event(1, "fall"), _event(2, "fall")

        with _commit_refused(service, caregiver_db):
            assert not ingestor.handle(*refused)  # held: not acknowledged, tried again later

        assert ingestor.storage_fault is not None  # reported, as any storage fault
        assert "caregiver database" in ingestor.storage_fault
        assert store.event(_id(refused)) is None and store.alerts(DEVICE) == []

        # the fault gone, the store's connection works again: no restart needed
        assert ingestor.handle(*fall)
        assert ingestor.storage_fault is None
        assert ingestor.handle(*refused)  # the held message's retry
        assert {e.id for e in store.events_for(DEVICE)} == {_id(refused), _id(fall)}
        assert sorted(a.event_id or "" for a in store.alerts(DEVICE)) == sorted(
            [_id(refused), _id(fall)]
        )
        # no receipt for the failed commit: each id receipted once, once stored (receipts
        # synced together share a message)
        receipted = [i for receipt in _receipts(service, sub) for i in receipt]
        assert sorted(receipted) == sorted([_id(fall), _id(refused)])


def test_a_retried_duplicate_is_receipted_only_once_its_batch_is_on_disk(
    tmp_path: Path, caregiver_db: str, mosquitto: Mosquitto
) -> None:
    """The held messages' retry (``handle``) stores one message with a synced commit, but a
    duplicate commits nothing: its receipt vouches for the batch that stored the event, and
    that batch committed without a sync on SQLite (its receipts wait for one). Sent at once, the
    retry's receipt could let the device delete an event a power cut then took back; it waits
    for the same sync as the batch's."""
    with _receipted(tmp_path, caregiver_db, mosquitto) as (service, sub):
        ingestor = service.ingestor
        durable = ingestor._durable_receipts
        assert durable is not None
        real_sync, release = durable._sync, threading.Event()

        def held_sync() -> None:  # the sync starts only when the test says
            assert release.wait(WAIT)
            real_sync()

        durable._sync = held_sync
        fall = _event(1, "fall")
        try:
            assert ingestor.handle_batch([fall])  # committed, its receipt waits for the sync
            assert ingestor.handle(*fall)  # the same event again, retried alone: a duplicate
            assert ingestor.duplicates == 1
            assert ingestor.receipts_sent == 0  # nothing vouched for before the sync
        finally:
            release.set()
        assert sub.wait(lambda: any(_id(fall) in m.payload.decode() for m in sub.messages))
        assert durable.syncs >= 1
