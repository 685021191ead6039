"""The caregiver database on PostgreSQL: the one migration path, concurrent instances, the
columns PostgreSQL spells differently, and a server restart under the store.

Every storage test runs on both engines (the ``caregiver_db`` fixture); these are what only
a server shared by several instances can show. The database is read with psycopg directly,
as an independent witness of what the store did.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import msgspec
import psycopg
import pytest

from caregiver.storage import SCHEMA_VERSION, NewEvent, SchemaError, StorageFault, Store, schema
from core.protocol import payloads
from tests.caregiver_db import execute
from tests.caregiver_support import BY_HAND, wait_until
from tests.stage_support import STAGE_EXAMPLE
from tools.pgcluster import PostgresCluster

WAIT = 20.0
"""Upper bound for waits: a safety net against hangs, not a timing assertion."""


def _event(event_id: str, device_id: str = "treadmill-1") -> NewEvent:
    return NewEvent(
        id=event_id,
        device_id=device_id,
        seq=7,
        type="fall",
        severity="critical",
        state="TRIPPED",
        reason="impact 3.1 g",
        wall_time="2026-12-02T01:00:00+00:00",
        figures={"peak_g": 3.1},
        has_window=False,
        payload=json.dumps({"id": event_id}),
    )


def _waiting_on_a_lock(url: str) -> bool:
    rows = execute(
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'",
    )
    return bool(rows[0][0])


def test_a_new_database_gets_every_migration_and_the_types_it_needs(
    postgres_cluster: PostgresCluster,
) -> None:
    url = postgres_cluster.new_database()
    store = Store(url)
    try:
        assert (store.schema.before, store.schema.after) == (0, SCHEMA_VERSION)
        assert store.engine == "postgresql"
    finally:
        store.close()
    assert execute(url, "SELECT version FROM retroguard_schema") == [(SCHEMA_VERSION,)]
    types = dict(
        execute(
            url,
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public'",
        )
    )
    # epoch seconds need double precision (PostgreSQL's REAL is 4 bytes: minutes of error)
    assert types["events.received_at"] == "double precision"
    assert types["events.seq"] == "bigint"
    assert types["recordings.recording"] == "bytea"
    assert types["alerts.id"] == "bigint"
    again = Store(url)
    try:
        assert (again.schema.before, again.schema.after) == (SCHEMA_VERSION, SCHEMA_VERSION)
    finally:
        again.close()


def test_two_instances_opening_a_new_database_at_once_migrate_it_once(
    postgres_cluster: PostgresCluster,
) -> None:
    url = postgres_cluster.new_database()
    start = threading.Barrier(2)
    stores: list[Store] = []
    failures: list[BaseException] = []

    def open_store() -> None:
        start.wait(WAIT)
        try:
            stores.append(Store(url))
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    try:
        assert failures == []
        assert sorted(s.schema.before for s in stores) == [0, SCHEMA_VERSION]
    finally:
        for s in stores:
            s.close()
    assert execute(url, "SELECT version FROM retroguard_schema") == [(SCHEMA_VERSION,)]


def test_a_database_from_a_later_release_is_refused_untouched(
    postgres_cluster: PostgresCluster,
) -> None:
    url = postgres_cluster.new_database()
    Store(url).close()
    execute(url, "UPDATE retroguard_schema SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaError, match=f"schema version {SCHEMA_VERSION + 1}, newer than"):
        Store(url)
    assert execute(url, "SELECT version FROM retroguard_schema") == [(SCHEMA_VERSION + 1,)]


def test_a_failing_migration_leaves_the_database_as_it_was(
    postgres_cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_cluster.new_database()
    broken = schema.Migration(
        SCHEMA_VERSION + 1,
        "a test migration that fails half way",
        ("ALTER TABLE devices ADD COLUMN room TEXT", "ALTER TABLE no_such_table ADD COLUMN x TEXT"),
    )
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, broken))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(SchemaError, match=r"a test migration that fails half way.*no_such_table"):
        Store(url)
    # not even version 1: one transaction for all of them
    assert execute(url, "SELECT to_regclass('retroguard_schema'), to_regclass('devices')") == [
        (None, None)
    ]


def test_two_instances_racing_on_a_redelivered_event_store_it_once(
    postgres_cluster: PostgresCluster,
) -> None:
    """Instance A has inserted the event and not yet committed when B, given the same message
    (a QoS 1 redelivery to another member of the shared subscription), tries to store it: B
    waits on A's row, then finds it there and stores nothing."""
    url = postgres_cluster.new_database()
    a, b = Store(url), Store(url)
    event = _event("ab" * 16)
    b_stored: list[bool] = []
    try:
        with a.transaction() as tx:
            assert tx.record_event(event, 1000.0)

            def b_ingests() -> None:
                with b.transaction() as tx_b:
                    b_stored.append(tx_b.record_event(event, 1000.5))

            racer = threading.Thread(target=b_ingests)
            racer.start()
            assert wait_until(lambda: _waiting_on_a_lock(url)), "B never waited on A's row"
        racer.join(WAIT)
        assert b_stored == [False]
        assert a.event_count() == b.event_count() == 1
        stored = b.event(event.id)
        assert stored is not None and stored.received_at == 1000.0  # A's row, untouched
    finally:
        a.close()
        b.close()


def test_many_racers_on_many_redelivered_events_store_each_once(
    postgres_cluster: PostgresCluster,
) -> None:
    url = postgres_cluster.new_database()
    stores = [Store(url) for _ in range(4)]
    events = [_event(f"{i:032x}", f"treadmill-{i % 5}") for i in range(200)]
    start = threading.Barrier(len(stores))
    stored: list[list[str]] = [[] for _ in stores]

    def ingest(k: int) -> None:
        start.wait(WAIT)
        for event in events[k::2] + events:  # every instance sees every event, some twice
            with stores[k].transaction() as tx:
                if tx.record_event(event, 1000.0):
                    stored[k].append(event.id)

    threads = [threading.Thread(target=ingest, args=(k,)) for k in range(len(stores))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT * 3)
        winners = [event_id for per_store in stored for event_id in per_store]
        assert sorted(winners) == sorted(e.id for e in events)  # each stored by exactly one
        assert stores[0].event_count() == len(events)
    finally:
        for s in stores:
            s.close()


def test_a_server_restart_is_one_storage_fault_then_the_store_carries_on(
    postgres_cluster: PostgresCluster,
) -> None:
    """The operation that finds the connection dropped fails as a StorageFault (ingest holds
    the message and tries again); the next one reconnects. (The session's cluster restarts:
    the tests run one at a time and every other test's stores are closed.)"""
    url = postgres_cluster.new_database()
    store = Store(url)
    try:
        with store.transaction() as tx:
            assert tx.record_event(_event("01" * 16), 1.0)
        postgres_cluster.stop("fast")
        postgres_cluster.start()
        with pytest.raises(StorageFault), store.transaction() as tx:
            tx.record_event(_event("02" * 16), 2.0)
        with store.transaction() as tx:
            assert tx.record_event(_event("02" * 16), 2.0)
        assert store.event_count() == 2
    finally:
        store.close()


def test_psycopg_is_the_driver_behind_a_postgresql_url(postgres_cluster: PostgresCluster) -> None:
    url = postgres_cluster.new_database()
    with psycopg.connect(url) as witness:
        store = Store(url)
        try:
            with store.transaction() as tx:
                tx.record_event(_event("cd" * 16), 5.0)
        finally:
            store.close()
        row = witness.execute("SELECT id, received_at FROM events").fetchone()
    assert row == ("cd" * 16, 5.0)


def test_a_burst_of_announcements_reaches_the_other_instance_whole_and_in_order(
    postgres_cluster: PostgresCluster,
) -> None:
    """Announcements are batched into as few NOTIFYs as fit (8,000 bytes each): 500 of
    them, some long, arrive one by one, none lost, none twice, in order."""
    url = postgres_cluster.new_database()
    sender = Store(url)
    heard: list[str] = []
    done = threading.Condition()

    def on_message(message: str) -> None:
        with done:
            heard.append(message)
            done.notify_all()

    listener = sender.listen(on_message)
    assert listener is not None
    try:
        assert listener.listening.wait(WAIT)
        # JSON messages, as the service's are: every quote is escaped once in the list
        sent = [
            json.dumps({"n": i, "kind": "event", "pad": ['"q"'] * (i % 7 * 40)}) for i in range(500)
        ]
        for message in sent:
            sender.announce(message)
        with done:
            assert done.wait_for(lambda: len(heard) >= len(sent), WAIT), len(heard)
        assert heard == sent
    finally:
        listener.stop()
        sender.close()


def test_the_first_announcement_after_a_server_restart_reaches_the_other_instance(
    postgres_cluster: PostgresCluster,
) -> None:
    """The sender's idle connection is found broken only when used: its first announcement
    after a restart (typically the falls held during it, sent once the others listen again)
    is sent again on a fresh connection, not dropped (before: dropped with a warning, and
    the other instance's pages never heard of those falls)."""
    url = postgres_cluster.new_database()
    sender = Store(url)
    heard: list[str] = []
    resumed = threading.Event()
    done = threading.Condition()

    def on_message(message: str) -> None:
        with done:
            heard.append(message)
            done.notify_all()

    listener = sender.listen(on_message, resumed.set)
    assert listener is not None
    try:
        assert listener.listening.wait(WAIT)
        sender.announce("before")
        with done:
            assert done.wait_for(lambda: heard == ["before"], WAIT), heard
        postgres_cluster.stop("fast")
        postgres_cluster.start()
        assert resumed.wait(WAIT * 2)
        sender.announce("after the restart")
        sender.announce("and the next")
        with done:
            assert done.wait_for(lambda: len(heard) >= 3, WAIT), heard
        assert heard == ["before", "after the restart", "and the next"]
    finally:
        listener.stop()
        sender.close()


def _write(store: Store, event_id: str, device_id: str) -> None:
    """One message's writes in the open batch, waited for (in pipeline mode a write is only
    sent: the read makes it done before the test goes on)."""
    with store.transaction() as tx:
        assert tx.record_event(_event(event_id, device_id), 1000.0)
        assert tx.device(device_id) is not None


def _run(*steps: Callable[[], None]) -> list[BaseException]:
    """Run each step in a thread of its own; what they raised."""
    failures: list[BaseException] = []

    def run(step: Callable[[], None]) -> None:
        try:
            step()
        except BaseException as exc:  # reported by the caller's assertions
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(step,)) for step in steps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
    assert not any(t.is_alive() for t in threads), "a batch never finished"
    return failures


def test_batches_writing_devices_in_opposite_orders_deadlock_unless_locked_first(
    postgres_cluster: PostgresCluster,
) -> None:
    """The hazard the batch's device locks remove (group commit on two instances): A writes
    device 1 then 2 in one batch, B writes 2 then 1. Each holds its first device's row when
    it asks for the other's: PostgreSQL finds the deadlock and aborts one batch."""
    url = postgres_cluster.new_database()
    a, b = Store(url), Store(url)
    a_first, b_first = threading.Event(), threading.Event()

    def batch_a() -> None:
        with a.batch():
            _write(a, "a1" * 16, "treadmill-1")
            a_first.set()
            assert b_first.wait(WAIT)
            _write(a, "a2" * 16, "treadmill-2")  # waits on B's row for device 2

    def batch_b() -> None:
        assert a_first.wait(WAIT)
        with b.batch():
            _write(b, "b2" * 16, "treadmill-2")
            b_first.set()
            assert wait_until(lambda: _waiting_on_a_lock(url)), "A never waited on B"
            _write(b, "b1" * 16, "treadmill-1")  # waits on A's row: a cycle

    try:
        failures = _run(batch_a, batch_b)
        assert len(failures) == 1
        assert isinstance(failures[0], StorageFault) and "deadlock" in str(failures[0])
        assert a.event_count() == 2  # the other batch committed whole
    finally:
        a.close()
        b.close()


def test_batches_that_lock_their_devices_first_in_id_order_both_commit(
    postgres_cluster: PostgresCluster,
) -> None:
    """The same two batches, each naming its devices (as ingest does): B, starting while A
    holds its devices, waits for A's commit before it writes anything, then commits too."""
    url = postgres_cluster.new_database()
    a, b = Store(url), Store(url)
    a_first = threading.Event()

    def batch_a() -> None:
        with a.batch(["treadmill-1", "treadmill-2"], 1000.0):
            _write(a, "a1" * 16, "treadmill-1")
            a_first.set()
            assert wait_until(lambda: _waiting_on_a_lock(url)), "B never waited on A"
            _write(a, "a2" * 16, "treadmill-2")

    def batch_b() -> None:
        assert a_first.wait(WAIT)
        with b.batch(["treadmill-2", "treadmill-1"], 1000.0):
            _write(b, "b2" * 16, "treadmill-2")
            _write(b, "b1" * 16, "treadmill-1")

    try:
        assert _run(batch_a, batch_b) == []
        stored = execute(url, "SELECT id FROM events ORDER BY id")
        assert [row[0] for row in stored] == ["a1" * 16, "a2" * 16, "b1" * 16, "b2" * 16]
    finally:
        a.close()
        b.close()


def test_a_batch_takes_its_devices_in_id_order(postgres_cluster: PostgresCluster) -> None:
    """B's batch names device 2 before device 1, and device 1 is held by A: B waits for it
    without holding device 2 (it takes them in id order), so a third writer of device 2 alone
    is not held up behind B."""
    url = postgres_cluster.new_database()
    a, b = Store(url), Store(url)
    b_done = threading.Event()

    def batch_b() -> None:
        with b.batch(["treadmill-2", "treadmill-1"], 1000.0):
            _write(b, "b2" * 16, "treadmill-2")
        b_done.set()

    try:
        with a.batch(["treadmill-1", "treadmill-2"], 999.0):
            pass  # both devices' rows exist (a new row is not seen by others until committed)
        with a.batch(["treadmill-1"], 1000.0):
            _write(a, "a1" * 16, "treadmill-1")
            racer = threading.Thread(target=batch_b)
            racer.start()
            assert wait_until(lambda: _waiting_on_a_lock(url)), "B never waited on A"
            with psycopg.connect(url, autocommit=True) as witness:
                free = witness.execute(
                    "SELECT device_id FROM devices WHERE device_id = 'treadmill-2' "
                    "FOR UPDATE NOWAIT"
                ).fetchall()
            assert free == [("treadmill-2",)]  # free: B did not take it before device 1
            assert not b_done.is_set()
        racer.join(WAIT)
        assert b_done.is_set()
    finally:
        a.close()
        b.close()


def test_holding_a_device_waits_for_a_batch_of_its_messages(
    postgres_cluster: PostgresCluster,
) -> None:
    """An acknowledgement takes the device's row first (Transaction.hold_devices): while a
    batch of that device's messages is open it waits at the row, before writing anything
    the batch may need, and goes on once the batch has committed."""
    url = postgres_cluster.new_database()
    a, b = Store(url), Store(url)
    held: list[bool] = []

    def acknowledge() -> None:
        with b.transaction() as tx:
            tx.hold_devices(["treadmill-1"])
            held.append(tx.event("a1" * 16) is not None)  # the batch's event, committed

    try:
        with a.batch(["treadmill-1"], 999.0):
            pass  # the device is known (an acknowledged device always is)
        with a.batch(["treadmill-1"], 1000.0):
            _write(a, "a1" * 16, "treadmill-1")
            racer = threading.Thread(target=acknowledge)
            racer.start()
            assert wait_until(lambda: _waiting_on_a_lock(url)), "B never waited on A's row"
            assert held == []
        racer.join(WAIT)
        assert held == [True]
    finally:
        a.close()
        b.close()


def test_escalation_waits_for_a_batch_of_the_devices_it_escalates(
    postgres_cluster: PostgresCluster,
) -> None:
    """The escalation's transaction takes the due alerts' devices first: while a batch of
    that device's messages is open it waits, and then sees what the batch did (the alert
    the batch closed is no longer due: nobody is paged for it again)."""
    url = postgres_cluster.new_database()
    a, b = Store(url), Store(url)
    due: list[list[int]] = []
    with a.transaction() as tx:
        assert tx.record_event(_event("a1" * 16), 1000.0)
        alert_id = tx.page_alert("fall", "treadmill-1", "a1" * 16, 1000.0, 1300.0, frame=BY_HAND)

    def escalate() -> None:
        with b.transaction() as tx:
            due.append([alert.id for alert in tx.open_alerts_due(2000.0)])

    try:
        with a.batch(["treadmill-1"], 1500.0):
            with a.transaction() as tx:
                tx.close_alert(alert_id, "resolved", "walker reset (I'm OK)", 1500.0)
                assert tx.device("treadmill-1") is not None  # the close is done, not only sent
            racer = threading.Thread(target=escalate)
            racer.start()
            assert wait_until(lambda: _waiting_on_a_lock(url)), "B never waited on A's row"
            assert due == []
        racer.join(WAIT)
        assert due == [[]]
    finally:
        a.close()
        b.close()


def _stage_and_fall(store: Store, n: int) -> None:
    """One batch of one message: Bob's stage (its ``n``-th, a newer one) and a fall, waited
    for (the device's read settles the pipeline)."""
    stage = msgspec.structs.replace(STAGE_EXAMPLE, wall_time=f"2026-03-03T10:00:{n:02d}.000+00:00")
    event_id = f"{n:032x}"
    with store.batch(["treadmill-1"], 1000.0), store.message(event_id), store.transaction() as tx:
        tx.set_walker_stage("treadmill-1", stage, payloads.encode(stage).encode(), 1000.0 + n)
        assert tx.record_event(_event(event_id), 1000.0)
        assert tx.device("treadmill-1") is not None


def test_a_batch_refused_as_its_statements_got_prepared_leaves_later_falls_stored(
    postgres_cluster: PostgresCluster,
) -> None:
    """A write refused in a batch makes the server skip what the pipeline sent after it. When
    one of those was a fall's insert due to be prepared (psycopg prepares a statement at its
    sixth use), psycopg counted it prepared though the server never was told: once the stages'
    table took writes again, every batch failed with 'prepared statement "_pg3_6" does not
    exist' and every fall was held until a restart. (The refusal before the five batches is
    what keeps psycopg's rollback from forgetting its statements.)"""
    url = postgres_cluster.new_database()
    store = Store(url)
    try:
        execute(
            url,
            "CREATE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'writes refused'; END $$",
        )
        for n in (1, 7):
            execute(
                url,
                "CREATE TRIGGER refused BEFORE INSERT OR UPDATE ON walker_stages "
                "FOR EACH ROW EXECUTE FUNCTION refuse_writes()",
            )
            with pytest.raises(StorageFault, match="writes refused"):
                _stage_and_fall(store, n)
            execute(url, "DROP TRIGGER refused ON walker_stages")
            for more in range(n + 1, n + 6):
                _stage_and_fall(store, more)
        assert store.event_count() == 10
        stored = store.walker_stage("treadmill-1", "bob")
        assert stored is not None and stored.wall_time == "2026-03-03T10:00:12.000+00:00"
    finally:
        store.close()
