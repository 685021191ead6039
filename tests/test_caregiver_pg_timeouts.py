"""A table someone else holds locked on PostgreSQL ends the store's statement in a StorageFault
(said as every storage fault is), never a wait without end; once the lock is gone the same
message, and the same escalation, go through and nothing is lost.

Before, no connection set ``lock_timeout`` or ``statement_timeout``: an operator's ``LOCK
TABLE`` (an ``ALTER TABLE``, a ``VACUUM FULL``, a transaction left open) held the store's
statement, with the store's lock, for as long as it was held: ingest, the dashboard's writes
and the escalation ticker stopped, and nothing said so. Here another connection holds ``LOCK
TABLE ... IN ACCESS EXCLUSIVE MODE`` in an open transaction, on the real PostgreSQL the suite
starts; the store runs with a lock timeout of a fifth of a second (:data:`SHORT`), so a test
that would hang without the limit ends by itself (and fails on its own assertions).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from caregiver.config import (
    CaregiverConfig,
    CaregiverMqttConfig,
    Contact,
    EscalationConfig,
    ServerConfig,
)
from caregiver.service import CaregiverService
from caregiver.storage import StatementTimeouts, StorageFault, Store, pg_timeouts
from caregiver.storage.engines import _SCHEMA_LOCK, Database, connect
from tests.caregiver_db import execute
from tests.caregiver_support import WAIT, FakeClock, wait_until
from tools.pgcluster import PostgresCluster

SHORT = StatementTimeouts(lock_s=0.2, statement_s=10.0)
"""A lock waited for a fifth of a second; a statement's own run as long as any of the suite's
needs (none comes near it)."""

DEVICE = "treadmill-1"


@contextmanager
def _locked(url: str, table: str) -> Iterator[None]:
    """``table`` locked against every other session (what ``ALTER TABLE``, ``VACUUM FULL``
    or an operator's ``LOCK TABLE`` take) until the block ends, or :data:`WAIT` has passed:
    a store that waits on it without end (no lock timeout) then gets its statement through,
    and the test fails on its own assertions rather than hanging."""
    with psycopg.connect(url) as other:  # not autocommit: the lock lasts its transaction
        other.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        backstop = threading.Timer(WAIT, other.rollback)
        backstop.start()
        try:
            yield
        finally:
            backstop.cancel()
            other.rollback()


def _fall(seq: int) -> tuple[str, bytes]:
    """A fall as the monitor publishes it (topic, payload)."""
    data = {
        "schema": 1,
        "id": uuid.uuid4().hex,
        "seq": seq,
        "type": "fall",
        "device_id": DEVICE,
        "severity": "critical",
        "state": "TRIPPED",
        "reason": "impact 3.1 g",
        "wall_time": "2026-12-06T21:00:00.000+00:00",
        "t_monotonic": float(seq),
        "figures": {},
    }
    return f"retroguard/{DEVICE}/event", json.dumps(data).encode()


def _id(message: tuple[str, bytes]) -> str:
    return str(json.loads(message[1])["id"])


def _service(url: str) -> CaregiverService:
    """A service on ``url`` with :data:`SHORT` limits on a fake clock, never started (no
    broker, no threads: the test drives ingest and the escalation tick itself); Ann is paged
    first, Bob once Ann has not answered for 300 s."""
    config = CaregiverConfig(
        server=ServerConfig(host="127.0.0.1", port=0, database=url),
        mqtt=CaregiverMqttConfig(host="127.0.0.1", port=1),
        escalation=EscalationConfig(ack_timeout_s=300, resends=0, retry_s=10),
        contacts=(
            Contact(name="Ann", urls=("json://127.0.0.1:1/ann",)),
            Contact(name="Bob", urls=("json://127.0.0.1:1/bob",)),
        ),
        devices={DEVICE: "Dad's treadmill"},
    )
    return CaregiverService(config, clock=FakeClock(), timeouts=SHORT)


def _paged(url: str) -> list[str]:
    """Whom the notifications queued so far are for, in order (read beside the store)."""
    return [row[0] for row in execute(url, "SELECT contact FROM notifications ORDER BY id")]


def test_a_fall_stored_while_its_table_is_locked_is_a_storage_fault_then_stored_once(
    postgres_cluster: PostgresCluster,
) -> None:
    """Ingest's batch meets the lock: the batch ends in a StorageFault within the lock
    timeout, said where every storage fault is (the banner's ``storage_fault``, /healthz's
    ``storing``), the message held (not acknowledged); once the lock is released the same
    message is stored, alerted and paged once."""
    url = postgres_cluster.new_database()
    service = _service(url)
    ingestor, fall = service.ingestor, _fall(1)
    try:
        with _locked(url, "events"):
            assert not ingestor.handle_batch([fall])  # held: the broker keeps it
            fault = ingestor.storage_fault
            assert fault is not None and "lock timeout" in fault
            assert "another session holds" in fault  # and what to look for
            assert service.health().storing is False
            with pytest.raises(StorageFault, match="lock timeout"):  # a page's read, pooled
                service.store.event_count()
        assert execute(url, "SELECT count(*) FROM events") == [(0,)]  # nothing half stored

        assert ingestor.handle_batch([fall])  # the same message, again
        assert ingestor.storage_fault is None and service.health().storing is True
        assert [e.id for e in service.store.events_for(DEVICE)] == [_id(fall)]
        assert [a.event_id for a in service.store.alerts(DEVICE)] == [_id(fall)]
        assert _paged(url) == ["Ann"]
    finally:
        service.store.close()


def test_escalation_on_a_locked_table_is_held_and_said_then_steps_on(
    postgres_cluster: PostgresCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """Ann has not answered; the tick that would page Bob meets a locked ``alerts`` table:
    it ends within the lock timeout, says escalation is held and why, and the next tick after
    the lock is gone pages Bob (once)."""
    url = postgres_cluster.new_database()
    service = _service(url)
    clock = service.clock
    assert isinstance(clock, FakeClock)
    faults = service.escalation_faults()
    try:
        assert service.ingestor.handle_batch([_fall(1)])
        assert _paged(url) == ["Ann"]
        clock.advance(301)  # Ann's time to answer is over
        with caplog.at_level(logging.WARNING, logger="caregiver.service"), _locked(url, "alerts"):
            service.escalation_tick(faults)
        assert faults.fault is not None and "lock timeout" in faults.fault
        said = [r.getMessage() for r in caplog.records]
        assert len(said) == 1 and said[0].startswith("escalation is held")
        assert "lock timeout" in said[0]
        assert _paged(url) == ["Ann"]  # nothing stepped while it was held

        service.escalation_tick(faults)
        assert faults.fault is None
        assert _paged(url) == ["Ann", "Bob"]
        service.escalation_tick(faults)
        assert _paged(url) == ["Ann", "Bob"]  # once
    finally:
        service.store.close()


def test_a_statement_past_its_statement_timeout_is_a_storage_fault_that_says_so(
    postgres_cluster: PostgresCluster,
) -> None:
    """A statement that runs past ``statement_timeout`` (here: waits on a lock for longer
    than it, the lock timeout being longer still) ends as a StorageFault saying which limit
    fired; the store goes on once it can."""
    url = postgres_cluster.new_database()
    store = Store(url, timeouts=StatementTimeouts(lock_s=WAIT, statement_s=0.2))
    try:
        with _locked(url, "events"), pytest.raises(StorageFault) as caught:
            store.event_count()
        said = str(caught.value)
        assert "canceling statement due to statement timeout" in said
        assert "ran past 0.2 s" in said
        assert store.event_count() == 0
    finally:
        store.close()


def _limits(db: Database) -> tuple[str, str]:
    """The lock and statement timeouts ``db``'s connection runs under, as the server says."""
    return (
        db.execute("SHOW lock_timeout").fetchone()[0],
        db.execute("SHOW statement_timeout").fetchone()[0],
    )


def test_every_connection_runs_under_the_limits_and_a_url_s_own_options_win(
    postgres_cluster: PostgresCluster,
) -> None:
    url = postgres_cluster.new_database()
    store = Store(url)  # the service's own limits
    try:
        assert _limits(store._db) == ("5s", "15s")  # the writer
        assert store._reads is not None
        assert store._reads.run(_limits) == ("5s", "15s")  # the pooled readers
    finally:
        store.close()
    # an operator's options in the URL come after the service's: theirs win, the rest stays
    given = f"{url}?options=-c%20statement_timeout%3D60000%20-c%20search_path%3Dpublic"
    with connect(given, SHORT) as db:
        assert db.execute("SHOW lock_timeout").fetchone() == ("200ms",)
        assert db.execute("SHOW statement_timeout").fetchone() == ("1min",)
        assert db.execute("SHOW search_path").fetchone() == ("public",)


def test_the_migrations_at_start_wait_for_another_instance_s_past_the_lock_timeout(
    postgres_cluster: PostgresCluster,
) -> None:
    """Another instance holds the migrations' advisory lock: the opening store waits past its
    ordinary lock timeout (the server says its wait is five times longer) and opens once the
    other lets go, rather than failing at start (the migrations' own ``SET LOCAL``)."""
    url = postgres_cluster.new_database()
    opened: list[Store | BaseException] = []

    def open_store() -> None:
        try:
            opened.append(Store(url, timeouts=SHORT))
        except BaseException as exc:
            opened.append(exc)

    with psycopg.connect(url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
        opening = threading.Thread(target=open_store)
        opening.start()
        waited = wait_until(
            lambda: (
                bool(
                    execute(
                        url,
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND clock_timestamp() - query_start > ?",
                        (f"{SHORT.lock_s * 5} seconds",),
                    )[0][0]
                )
                or bool(opened)
            )
        )
        other.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))
    opening.join(WAIT)
    assert waited
    assert len(opened) == 1 and isinstance(opened[0], Store), opened
    opened[0].close()


def test_a_start_whose_upgrade_waits_out_its_lock_timeout_says_who_to_look_for(
    postgres_cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the migrations' own lock timeout (made short here) the start ends with one line
    saying a lock held it and where to look, not "check that the server is running", and
    exits 1 (not ``lasting``: systemd starts it again)."""
    url = postgres_cluster.new_database()
    monkeypatch.setattr(pg_timeouts, "MIGRATION_LOCK_TIMEOUT_S", SHORT.lock_s)
    with psycopg.connect(url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
        with pytest.raises(StorageFault) as caught:
            Store(url, timeouts=SHORT)
    said = str(caught.value)
    assert "cannot open it: canceling statement due to lock timeout" in said
    assert "Another session held a lock the upgrade needs" in said and "pg_locks" in said
    assert "server is running" not in said
    assert not caught.value.lasting


def test_options_the_environment_gives_libpq_still_apply_under_the_limits(
    postgres_cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``PGOPTIONS`` (a unit's ``Environment=``) is libpq's ``options`` when the URL gives
    none; an ``options`` passed on every connection replaced it unsaid. A ``search_path``
    set there was dropped: the store migrated an empty schema into ``public`` and the
    clinic's history, in its own schema, was no longer read."""
    url = postgres_cluster.new_database()
    execute(url, "CREATE SCHEMA clinic")
    monkeypatch.setenv("PGOPTIONS", "-c search_path=clinic -c statement_timeout=60000")
    store = Store(url)
    try:
        assert store._db.execute("SHOW search_path").fetchone() == ("clinic",)
        assert _limits(store._db) == ("5s", "1min")  # the limits stay; the operator's win
    finally:
        store.close()
    tables = execute(
        url, "SELECT table_schema FROM information_schema.tables WHERE table_name = 'events'"
    )
    assert tables == [("clinic",)]
