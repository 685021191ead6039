"""Falls behind a write PostgreSQL refused in a batch's pipeline, once the cause is gone.

A refused write makes the server skip what the pipeline sent after it, up to a sync. psycopg
prepares a statement at its sixth use and, in pipeline mode, counted it prepared once it had
sent the Prepare: when the server skipped that Prepare, every later use asked for a statement
the server never had ('prepared statement "_pg3_6" does not exist', SQLSTATE 26000), every
batch failed, and every fall was held with the broker until a restart
(:meth:`caregiver.storage.engines.PostgresDatabase._connect`). Real PostgreSQL, a real
trigger refusing the weeks' counts' table's writes; the batches as the MQTT thread hands them over
(:meth:`caregiver.ingest.Ingestor.handle_batch`), so that a state and a fall are in the refused
one, behind the refused write.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import msgspec
import pytest

from caregiver.config import CaregiverConfig, CaregiverMqttConfig, ServerConfig
from caregiver.service import CaregiverService
from core.protocol import payloads
from tests.caregiver_db import execute
from tests.stage_support import STAGE_EXAMPLE
from tools.pgcluster import PostgresCluster

DEVICE = "treadmill-1"


@pytest.fixture
def ingest(postgres_cluster: PostgresCluster) -> Iterator[tuple[CaregiverService, str]]:
    """A service on a new PostgreSQL database (not started: the test hands it its batches),
    and the database's URL; its weeks' counts' table can be made to refuse writes."""
    database = postgres_cluster.new_database()
    config = CaregiverConfig(
        server=ServerConfig(host="127.0.0.1", port=0, database=database),
        mqtt=CaregiverMqttConfig(host="127.0.0.1", port=1),
    )
    service = CaregiverService(config)
    execute(
        database,
        "CREATE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'writes refused'; END $$",
    )
    try:
        yield service, database
    finally:
        service.store.close()


def _refused(database: str) -> None:
    execute(
        database,
        "CREATE TRIGGER refused BEFORE INSERT OR UPDATE ON walker_prescribed_weeks "
        "FOR EACH ROW EXECUTE FUNCTION refuse_writes()",
    )


def _taken(database: str) -> None:
    execute(database, "DROP TRIGGER refused ON walker_prescribed_weeks")


def _fall() -> tuple[str, tuple[str, bytes]]:
    """A fall's id and its message."""
    event_id = uuid.uuid4().hex
    data = {
        "schema": 1, "id": event_id, "seq": 1, "type": "fall", "device_id": DEVICE,
        "severity": "critical", "state": "TRIPPED", "reason": "impact 3.2 g then lying",
        "wall_time": "2026-12-01T21:00:00.000+00:00", "t_monotonic": 1.0, "figures": {},
    }  # fmt: skip
    return event_id, (f"retroguard/{DEVICE}/event", json.dumps(data).encode())


def _state(n: int) -> tuple[str, bytes]:
    """The treadmill's state, armed (its ``n``-th word of it)."""
    data = {
        "schema": 1, "device_id": DEVICE, "state": "ARMED", "reason": f"armed ({n})",
        "wall_time": "2026-12-01T21:00:00.000+00:00",
    }  # fmt: skip
    return f"retroguard/{DEVICE}/state", json.dumps(data).encode()


def _stage(n: int) -> tuple[str, bytes]:
    """Bob's stage, a newer one for each ``n``."""
    stage = msgspec.structs.replace(STAGE_EXAMPLE, wall_time=f"2026-03-03T10:00:{n:02d}.000+00:00")
    return f"retroguard/{DEVICE}/stage/bob", payloads.encode(stage).encode()


def test_a_fall_after_a_batch_refused_as_its_statements_got_prepared_is_stored(
    ingest: tuple[CaregiverService, str],
) -> None:
    """Bob's stage refused by its week's count's table, the treadmill's state and a fall behind
    it in its batch (the batch held, the database said refusing); the table takes writes again
    and five batches of a state and a fall are stored; then the same again: the second time
    the state's and the fall's statements were due to be prepared in the stretch the server
    skipped. Before, from then on every batch failed ("prepared statement does not exist"),
    falls too. Now the next batches are stored, the held one whole when handed over again, a
    fall after it too, and the database is no longer said refusing. (The first refusal is what
    keeps psycopg's rollback from forgetting its statements, as in a service that has run a
    while.)"""
    service, database = ingest
    for n in (1, 2):
        _refused(database)
        held, fall = _fall()
        assert not service.ingestor.handle_batch([_stage(n), _state(n), fall])
        assert service.ingestor.storage_fault is not None
        assert "writes refused" in service.ingestor.storage_fault
        _taken(database)
        for _ in range(5):
            stored, later = _fall()
            assert service.ingestor.handle_batch([_state(n), later]), service.ingestor.storage_fault
            assert service.store.event(stored) is not None
    assert service.ingestor.handle_batch([_stage(2), _state(2), fall])  # the held one, again
    assert service.store.event(held) is not None
    stage = service.store.walker_stage(DEVICE, "bob")
    assert stage is not None and stage.wall_time == "2026-03-03T10:00:02.000+00:00"
    last, fall = _fall()
    assert service.ingestor.handle_batch([fall])
    assert service.store.event(last) is not None
    assert service.ingestor.storage_fault is None
