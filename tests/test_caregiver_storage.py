"""The caregiver database: schema versions, adopting a database from before them, transactions.

``tests/fixtures/caregiver-3f29ca7.db`` was written by the service at commit
3f29ca7 (no schema version; ``tests/fixtures/make_caregiver_3f29ca7.py`` made it).
The tests read the files with ``sqlite3`` directly, as an independent witness of
what the store did.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from caregiver import plot
from caregiver.auth import Accounts
from caregiver.config import CaregiverConfig, CaregiverMqttConfig, Contact, ServerConfig
from caregiver.notify import Notifier, send_notification
from caregiver.outbox import addressee, open_outbox, url_key
from caregiver.progress import progress_view
from caregiver.service import CaregiverService
from caregiver.storage import SCHEMA_VERSION, SchemaError, StorageFault, Store, Urgency, schema
from caregiver.storage.engines import SqliteDatabase
from caregiver.storage.schema import MIGRATIONS
from launcher.cli import main
from tests.caregiver_db import execute, store_at_schema
from tests.caregiver_support import BY_HAND, FakeClock, Http, Receiver, make_config, new_event
from tools.broker import Mosquitto

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
OLD_DB = FIXTURES / "caregiver-3f29ca7.db"
OLD_FACTS = json.loads((FIXTURES / "caregiver-3f29ca7.json").read_text())
FALL = "d4" * 16
FAULT = "e5" * 16
FIXTURE_WEEK = 1_795_100_000.0
"""Thursday 2026-11-19: the week of the fixture's two guided sessions (Mon 16 and Tue 17)."""


def _v1_columns() -> dict[str, list[str]]:
    """The tables and columns of schema version 1 (later versions add tables and columns)."""
    reference = sqlite3.connect(":memory:")
    try:
        for statement in MIGRATIONS[0].statements:
            reference.execute(statement)
        tables = [
            r[0] for r in reference.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return {t: [c[1] for c in reference.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        reference.close()


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every version-1 table (``sqlite_sequence`` too) in version 1's columns, in a
    stable order: what a file from before versions held must stay exactly as it was."""
    v1 = _v1_columns()
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        dumped = {}
        for t in sorted(tables):
            if t not in v1 and t != "sqlite_sequence":
                continue  # a table a later version added
            present = {c[1] for c in db.execute(f"PRAGMA table_info({t})")}
            columns = ", ".join(v1[t]) if t in v1 and set(v1[t]) <= present else "*"
            dumped[t] = sorted(db.execute(f"SELECT {columns} FROM {t}"), key=repr)
        return dumped
    finally:
        db.close()


def schema_text(path: Path) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
    finally:
        db.close()


def user_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


@pytest.fixture
def old_copy(tmp_path: Path) -> Path:
    path = tmp_path / "caregiver.db"
    shutil.copyfile(OLD_DB, path)
    return path


# ------------------------------------------------------------ schema versions


def test_a_database_from_before_schema_versions_is_adopted_with_every_row(old_copy: Path) -> None:
    before = dump(old_copy)
    assert user_version(old_copy) == 0
    assert {t: len(rows) for t, rows in before.items()} == {
        "alerts": 3,
        "devices": 2,
        "events": 5,
        "notifications": 4,
        "sessions": 1,
        "sqlite_sequence": 2,
        "users": 1,
        "walk_sessions": 2,
    }
    store = Store(old_copy)
    try:
        assert (store.schema.before, store.schema.after) == (0, SCHEMA_VERSION)
    finally:
        store.close()
    assert user_version(old_copy) == SCHEMA_VERSION
    assert dump(old_copy) == before


def test_a_new_file_gets_exactly_the_schema_the_adopted_one_has(
    old_copy: Path, tmp_path: Path
) -> None:
    Store(old_copy).close()
    Store(tmp_path / "new.db").close()
    assert schema_text(tmp_path / "new.db") == schema_text(old_copy)
    assert user_version(tmp_path / "new.db") == user_version(old_copy) == SCHEMA_VERSION


def test_opening_a_current_database_again_changes_nothing(old_copy: Path) -> None:
    Store(old_copy).close()
    digest = hashlib.sha256(old_copy.read_bytes()).hexdigest()
    store = Store(old_copy)
    try:
        assert (store.schema.before, store.schema.after) == (SCHEMA_VERSION, SCHEMA_VERSION)
    finally:
        store.close()
    assert hashlib.sha256(old_copy.read_bytes()).hexdigest() == digest


def test_a_database_from_a_later_release_is_refused_untouched(
    old_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Store(old_copy).close()
    db = sqlite3.connect(old_copy)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    rows = dump(old_copy)
    with pytest.raises(SchemaError, match=f"schema version {SCHEMA_VERSION + 1}, newer than"):
        Store(old_copy)
    assert user_version(old_copy) == SCHEMA_VERSION + 1
    assert dump(old_copy) == rows
    # the command line says so in one line, no traceback
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{old_copy}"\n')
    secret = tmp_path / "pw"
    secret.write_text("another good password\n")
    argv = ["caregiver", "add-user", "bob", "--password-file", str(secret), "-c", str(config)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{old_copy}: the caregiver database is at schema version {SCHEMA_VERSION + 1}" in err
    assert "Traceback" not in err


def test_an_unversioned_file_of_another_shape_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "early.db"
    db = sqlite3.connect(path)  # the events table of the very first caregiver build (8c5418c)
    db.execute("CREATE TABLE events (id TEXT PRIMARY KEY, device_id TEXT, imu_window TEXT)")
    db.execute("INSERT INTO events VALUES ('e1', 'treadmill-1', NULL)")
    db.commit()
    db.close()
    with pytest.raises(SchemaError, match=r"table events lacks .*has_window"):
        Store(path)
    assert user_version(path) == 0
    assert list(dump(path)) == ["events"]  # no table was added
    assert dump(path)["events"] == [("e1", "treadmill-1", None)]


def test_a_failing_migration_leaves_the_database_as_it_was(
    old_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = schema.Migration(
        SCHEMA_VERSION + 1,
        "a test migration that fails half way",
        ("ALTER TABLE devices ADD COLUMN room TEXT", "ALTER TABLE no_such_table ADD COLUMN x"),
    )
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, broken))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    before = dump(old_copy)
    with pytest.raises(SchemaError, match=r"a test migration that fails half way.*no_such_table"):
        Store(old_copy)
    assert user_version(old_copy) == 0  # not even version 1: one transaction for all of them
    assert dump(old_copy) == before
    assert schema_text(old_copy) == schema_text(OLD_DB)


def test_a_migration_whose_commit_fails_is_rolled_back_and_its_error_reported(
    tmp_path: Path,
) -> None:
    """A COMMIT that fails leaves SQLite's transaction open (as a busy one would): the upgrade
    is rolled back on the connection, not left half-applied and open, and the commit's own
    error is the one raised. SQLite refuses the COMMIT itself, on a real file, through its
    authorizer on the migrating connection (as tests/test_caregiver_commit_failure.py does for
    the store's transactions). Store closes its connection after a failed migration, so this
    is the migration's own connection, as ``migrate`` leaves it."""
    path = tmp_path / "caregiver.db"
    db = SqliteDatabase(path)
    try:

        def refuse(action: int, arg1: str | None, *_: str | None) -> int:
            refused = action == sqlite3.SQLITE_TRANSACTION and arg1 == "COMMIT"
            return sqlite3.SQLITE_DENY if refused else sqlite3.SQLITE_OK

        db._db.set_authorizer(refuse)
        with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
            schema.migrate(db)
        db._db.set_authorizer(None)
        assert not db._db.in_transaction  # rolled back, not left open
        assert db.schema_version() == 0 and db.columns() == {}  # this connection sees nothing
        # the same connection upgrades the file once the commit can succeed
        assert schema.migrate(db) == schema.SchemaUpgrade(0, SCHEMA_VERSION)
    finally:
        db.close()
    assert user_version(path) == SCHEMA_VERSION


# ----------------------------------------------------------------- transactions


def test_a_transaction_that_raises_stores_nothing(caregiver_db: str) -> None:
    store = Store(caregiver_db)
    event = new_event(1)
    try:
        with pytest.raises(RuntimeError), store.transaction() as tx:
            assert tx.record_event(event, 1.0)
            tx.page_alert("fall", "treadmill-1", event.id, 1.0, 301.0, frame=BY_HAND)
            raise RuntimeError("the alert bookkeeping failed")
        assert store.event(event.id) is None
        assert store.alerts() == []
        assert store.devices() == []
        with store.transaction() as tx:
            assert tx.record_event(event, 1.0)
            assert not tx.record_event(event, 2.0)  # a redelivery
        assert store.event_count() == 1
    finally:
        store.close()


def test_a_read_that_fails_inside_a_transaction_costs_the_read_not_the_transaction(
    caregiver_db: str,
) -> None:
    """A store read made inside this thread's transaction or batch (ingest naming a fall's
    walker) that fails is that read's StorageFault: what the transaction wrote before and
    after it commits. Before, the failed read was the transaction's (on PostgreSQL, whose
    transaction then refuses every statement, even when the fault was caught)."""
    store = Store(caregiver_db)
    try:
        execute(caregiver_db, "ALTER TABLE device_walkers RENAME TO device_walkers_damaged")
        first, second = new_event(1), new_event(2)
        with store.transaction() as tx:
            assert tx.record_event(first, 1.0)
            with pytest.raises(StorageFault, match="device_walkers"):
                store.device_walkers("treadmill-1")
            tx.page_alert("fall", "treadmill-1", first.id, 1.0, 301.0, frame=BY_HAND)
        with (
            store.batch({"treadmill-1"}, 2.0, [(second, 2.0)]),  # pipelined on PostgreSQL
            store.message(second.id),
            store.transaction() as tx,
        ):
            assert tx.record_event(second, 2.0)
            with pytest.raises(StorageFault, match="device_walkers"):
                store.device_walkers("treadmill-1")
            tx.page_alert("fall", "treadmill-1", second.id, 2.0, 302.0, frame=BY_HAND)
        assert store.event(first.id) is not None and store.event(second.id) is not None
        assert sorted(a.event_id or "" for a in store.alerts()) == [first.id, second.id]
        assert store.damage is None  # a table renamed is no damaged file
    finally:
        store.close()


def test_an_attachment_its_table_refuses_costs_the_attachment_not_the_transaction(
    caregiver_db: str,
) -> None:
    """A write made an attachment of the open transaction (a fall's recording, beside its
    event and alert) that its table refuses is that write's StorageFault: the rest commits,
    in a transaction and in a batch pipelined on PostgreSQL, where the error of a write whose
    result nobody reads would otherwise come at a later statement and abort the batch.
    Before, the recording was written on the transaction itself: its refusal was the fall's."""
    store = Store(caregiver_db)
    try:
        execute(caregiver_db, "ALTER TABLE recordings RENAME TO recordings_damaged")
        first, second = new_event(1), new_event(2)
        with store.transaction() as tx:
            assert tx.record_event(first, 1.0)
            with pytest.raises(StorageFault, match="recordings"):
                store.attachment(lambda ops: ops.store_recording(first.id, first.id, b"x"))
            tx.page_alert("fall", "treadmill-1", first.id, 1.0, 301.0, frame=BY_HAND)
        with (
            store.batch({"treadmill-1"}, 2.0, [(second, 2.0)], savepoints=False),
            store.message(second.id),
            store.transaction() as tx,
        ):
            assert tx.record_event(second, 2.0)
            with pytest.raises(StorageFault, match="recordings"):
                store.attachment(lambda ops: ops.store_recording(second.id, second.id, b"x"))
            tx.page_alert("fall", "treadmill-1", second.id, 2.0, 302.0, frame=BY_HAND)
        assert store.event(first.id) is not None and store.event(second.id) is not None
        assert sorted(a.event_id or "" for a in store.alerts()) == sorted([first.id, second.id])

        execute(caregiver_db, "ALTER TABLE recordings_damaged RENAME TO recordings")
        with store.transaction() as tx:  # the table back: the attachment is written with it
            store.attachment(lambda ops: ops.store_recording(first.id, first.id, b"x"))
        assert store.recording(first.id) == b"x"
    finally:
        store.close()


def test_records_read_by_their_ids_at_once_are_those_read_one_by_one(caregiver_db: str) -> None:
    """The live feed reads a batch's events, cards and incidents in a statement each; what it
    gets is what one read each gives, and an id that is not there is left out."""
    store = Store(caregiver_db)
    events = [
        new_event(n, device_id=f"treadmill-{n % 2}", figures={"peak_g": 3.0 + n})
        for n in range(1, 4)
    ]
    try:
        with store.transaction() as tx:
            for n, event in enumerate(events):
                assert tx.record_event(event, 10.0 + n)
                tx.open_incident(event.id, event.device_id, "fall", event.id, event.wall_time, 10.0)
        event_ids = [e.id for e in events] + ["not-stored"]
        assert store.events_by_id(event_ids) == {e.id: store.event(e.id) for e in events}
        devices = ["treadmill-0", "treadmill-1", "treadmill-9"]
        assert store.devices_by_id(devices) == {d: store.device(d) for d in devices[:2]}
        assert store.incidents_by_id(event_ids) == {e.id: store.incident(e.id) for e in events}
        assert store.events_by_id([]) == {}
    finally:
        store.close()


# ------------------------------------------- the service on the adopted database


def test_the_service_shows_what_the_old_database_holds(
    mosquitto: Mosquitto, old_copy: Path, tmp_path: Path
) -> None:
    config = make_config(mosquitto, tmp_path)
    service = CaregiverService(config, clock=FakeClock(FIXTURE_WEEK))
    assert service.store.location == str(old_copy)
    service.start(background=False, port=0)
    try:
        store = service.store
        # fleet
        devices = {d["device_id"]: d for d in store.devices()}
        assert set(devices) == {"treadmill-1", "treadmill-2"}
        one, two = devices["treadmill-1"], devices["treadmill-2"]
        assert (one["state"], one["availability"], one["open_alerts"]) == ("TRIPPED", "online", 0)
        assert one["last_event"] is not None and one["last_event"]["id"] == FALL
        assert one["telemetry"] == {"schema": 1, "rate_hz": 100.0, "cpu_temp_c": 51.5}
        assert (two["state"], two["open_alerts"]) == ("FAULT", 1)
        # timeline, newest first
        assert [e.type for e in store.events_for("treadmill-1")] == [
            "fall",
            "reset",
            "stumble",
            "start",
        ]
        # the event page's data: who acknowledged, the monitor's confirmation, the IMU plot
        fall = store.event(FALL)
        assert fall is not None
        assert (fall.acked_by, fall.ack_confirmed, fall.has_window) == ("ann", True, True)
        assert fall.figures == {"peak_g": 3.2, "tilt_deg": 80.0}
        window = store.imu_window(FALL)
        assert plot.valid_window(window) and len(plot.window_series(window).t) == 26
        # alerts and the notification still waiting
        assert [(a.kind, a.status) for a in store.alerts()] == [
            ("stumble", "logged"),
            ("fall", "acknowledged"),
            ("fault", "paging"),
        ]
        (reminder,) = store.notifications_due(FIXTURE_WEEK)
        assert reminder.title == "RetroGuard: Monitor fault - treadmill-2"
        assert reminder.body.startswith("REMINDER, not acknowledged after 5 min")
        # progress: both sessions in the fixture's week, the second at the goal
        sessions = store.walk_sessions("treadmill-1")
        assert [s.id for s in sessions] == ["6f" * 16, "5e" * 16]
        view = progress_view(sessions, FIXTURE_WEEK, dt.UTC)
        assert (view["this_week"].sessions, view["this_week"].at_goal) == (2, 1)
        # the user logs in with the old password, and the old login session still works
        assert Accounts(store).verify("ann", OLD_FACTS["password"])
        web = Http(service.port)
        assert web.login("ann", OLD_FACTS["password"]) == 303
        status, _, page = web.request("GET", "/")
        assert status == 200 and "Dad&#39;s treadmill" in page and "treadmill-2" in page
        status, _, page = web.request("GET", "/devices/treadmill-1")
        assert status == 200 and page.count('class="event sev-') == 4
        status, _, page = web.request("GET", f"/events/{FALL}")
        assert status == 200 and "Acknowledged by <strong>ann</strong>" in page
        assert "the monitor confirmed" in page
        status, _, body = web.request("GET", f"/api/events/{FALL}/plot")
        assert status == 200 and len(json.loads(body)["t"]) == 26
        status, _, body = web.request("GET", "/api/devices/treadmill-1/progress")
        assert status == 200 and json.loads(body)["backward_min"][-1] == 22.0
        kept = Http(service.port)
        kept.cookies["rg_session"] = OLD_FACTS["login_token"]
        assert kept.request("GET", "/")[0] == 200
    finally:
        service.stop()


def test_queued_notifications_keep_their_urgency_and_older_ones_read_as_normal(
    old_copy: Path,
) -> None:
    store = Store(old_copy)
    try:
        (old,) = store.notifications_due(FIXTURE_WEEK)  # queued before urgencies existed
        assert old.urgency is Urgency.NORMAL
        with store.transaction() as tx:
            tx.queue_notification(
                3,
                "Ann",
                0,
                0,
                "FALL",
                "b",
                FIXTURE_WEEK,
                urgency=Urgency.CRITICAL,
                contact_key="Ann",
                url_key="k",
            )
        assert [n.urgency for n in store.notifications_due(FIXTURE_WEEK)] == [
            Urgency.NORMAL,
            Urgency.CRITICAL,
        ]
    finally:
        store.close()


def _contact(name: str) -> Contact:
    return Contact(name, (f"json://127.0.0.1:9/{name.lower() or 'someone'}",))


def test_notifications_whose_contact_left_the_config_are_dropped_and_only_those(
    caregiver_db: str,
) -> None:
    """Ann, Bob and Cy each have a page waiting; the config now lists Cy, then Ann. Bob's is
    dropped and returned (the service logs it); Cy's stays, though his place (2) is past the
    new list's end: before, the rows past the end were dropped by place, so Cy lost his page
    and a removed contact's place went to whoever moved into it. A row queued before schema
    17 (no keys) is found by the name it recorded: Ann's stays, Bob's goes."""
    store = Store(caregiver_db)
    try:
        with store.transaction() as tx:
            for index, name in enumerate(("Ann", "Bob", "Cy")):
                url = _contact(name).urls[0]
                tx.queue_notification(
                    0,
                    name,
                    index,
                    0,
                    "FALL",
                    "b",
                    FIXTURE_WEEK,
                    contact_key=name,
                    url_key=url_key(url),
                )
        for index, name in enumerate(("Ann", "Bob")):  # as schema 17 left rows from before
            execute(
                caregiver_db,
                "INSERT INTO notifications (alert_id, contact, contact_index, url_index, title, "
                "body, next_at, created_at) VALUES (0, ?, ?, 0, 'OLD', 'b', ?, ?)",
                (name, index, FIXTURE_WEEK, FIXTURE_WEEK),
            )
        now = (_contact("Cy"), _contact("Ann"))
        gone = store.drop_notifications_unaddressed(now, "contact no longer in the config")
        assert [(n.contact, n.title) for n in gone] == [("Bob", "FALL"), ("Bob", "OLD")]
        kept = store.notifications_due(FIXTURE_WEEK)
        assert [(n.contact, n.title) for n in kept] == [
            ("Ann", "FALL"),
            ("Cy", "FALL"),
            ("Ann", "OLD"),
        ]
        assert [addressee(now, n) for n in kept] == [
            (1, 0, now[1].urls[0]),
            (0, 0, now[0].urls[0]),
            (1, 0, now[1].urls[0]),
        ]
        assert store.drop_notifications_unaddressed(now, "again") == []  # failed rows stay
    finally:
        store.close()


def test_pages_queued_before_schema_17_reach_the_contact_they_recorded_after_a_reorder(
    old_copy: Path,
) -> None:
    """A database from before schema 17 holds Ann's pending reminder (contact 1, URL 1, by
    place only); rows for Bob and for a contact without a name (recorded as "contact 3") are
    added as those releases wrote them. The upgrade keeps every row (no keys: NULL), and
    after the config put Bob first each goes to the contact it was queued for: Ann's to Ann
    (before, to Bob, now first), Bob's to Bob, the nameless contact's by its place, the only
    identity it ever had."""
    db = sqlite3.connect(old_copy)
    with db:
        for name, index in (("Bob", 1), ("contact 3", 2)):
            db.execute(
                "INSERT INTO notifications (alert_id, contact, contact_index, url_index, title, "
                "body, status, attempts, next_at, created_at) "
                "VALUES (3, ?, ?, 0, ?, 'b', 'pending', 0, 1795000312.0, 1795000312.0)",
                (name, index, f"for {name}"),
            )
    db.close()
    receiver = Receiver()
    store = Store(str(old_copy))
    outbox = open_outbox(str(old_copy))
    try:
        rows = execute(str(old_copy), "SELECT id, contact_key, url_key, status FROM notifications")
        assert rows == [
            (1, None, None, "sent"),
            (2, None, None, "sent"),
            (3, None, None, "sent"),
            (4, None, None, "pending"),
            (5, None, None, "pending"),
            (6, None, None, "pending"),
        ]
        contacts = (
            Contact("Bob", (receiver.url("bob"),)),
            Contact("Ann", (receiver.url("ann"),)),
            Contact("", (receiver.url("third"),)),
        )
        config = CaregiverConfig(
            server=ServerConfig(database=str(old_copy)),
            mqtt=CaregiverMqttConfig(port=1),
            contacts=contacts,
        )
        notifier = Notifier(outbox, config, lambda: FIXTURE_WEEK, send_notification)
        assert notifier.deliver_due() == 3
        got = sorted((m["path"], m["title"].split(" - ")[0]) for m in receiver.wait(3))
        assert got == [
            ("/ann", "RetroGuard: Monitor fault"),
            ("/bob", "for Bob"),
            ("/third", "for contact 3"),
        ]
    finally:
        outbox.close()
        store.close()
        receiver.close()


@pytest.mark.empty_database  # the upgrade from that schema's rows
def test_a_page_queued_at_schema_16_is_kept_and_reaches_its_contact_after_a_reorder(
    caregiver_db: str,
) -> None:
    """Both engines: a database at schema 16 (the release before keys) holds Ann's pending
    page, queued by place (contact 1, URL 1). Upgraded, the row is kept with no keys and,
    with Bob now first, still goes to Ann (before: to Bob)."""
    with store_at_schema(caregiver_db, 16) as old, old.transaction() as tx:
        tx._db.execute(
            "INSERT INTO notifications (alert_id, contact, contact_index, url_index, title, "
            "body, next_at, created_at, urgency) VALUES (1, 'Ann', 0, 0, 'FALL', 'b', ?, ?, "
            "'critical')",
            (FIXTURE_WEEK, FIXTURE_WEEK),
        )
        tx._db.execute(  # its alert, which had reached Ann (place 0) and paged her
            "INSERT INTO alerts (kind, device_id, status, created_at, next_at, contact, sends, "
            "paged) VALUES ('fall', 'treadmill-1', 'paging', 1.0, 2.0, 0, 1, '[0]')"
        )
    store = Store(caregiver_db)
    try:
        assert (store.schema.before, store.schema.after) == (16, SCHEMA_VERSION)
        (row,) = store.notifications_due(FIXTURE_WEEK)
        assert (row.contact, row.contact_key, row.url_key, row.urgency) == (
            "Ann",
            None,
            None,
            Urgency.CRITICAL,
        )
        now = (_contact("Bob"), _contact("Ann"))
        assert addressee(now, row) == (1, 0, "json://127.0.0.1:9/ann")
        assert store.drop_notifications_unaddressed(now, "gone") == []
        assert addressee(now[:1], row) is None  # Ann removed: dropped, as before
        (alert,) = store.alerts(None)  # escalates by place, as it did; a new page adds an id
        assert (alert.contact, alert.paged, alert.reached) == (0, [0], None)
        with store.transaction() as tx:
            tx.mark_paged(alert.id, ["Bob"], "Bob")
        (alert,) = store.alerts(None)
        assert (alert.paged, alert.reached) == ([0, "Bob"], "Bob")
    finally:
        store.close()


# ------------------------------------------------------------------- durability

SYNCHRONOUS_FULL = 2
"""``PRAGMA synchronous`` as SQLite reads it back: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA."""


@pytest.mark.parametrize("file", ["new", "adopted"])
def test_the_service_s_sqlite_commits_are_each_synced_to_disk(
    mosquitto: Mosquitto, old_copy: Path, tmp_path: Path, file: str
) -> None:
    """Safety rule 4: a device deletes an event once the service has sent its receipt, which
    it does once ingest's commit has returned. In WAL mode only ``synchronous=FULL`` syncs the
    WAL at each commit; under NORMAL a power cut can undo a receipted commit
    (caregiver.storage.engines.SYNCHRONOUS). The setting is each connection's, not the
    file's: read on the connections the service's own constructor opened, on a new file and on
    one from an older release (which it rewrites once and sets to WAL)."""
    database = old_copy if file == "adopted" else tmp_path / "new.db"
    service = CaregiverService(make_config(mosquitto, tmp_path, database=str(database)))
    try:
        store = service.store
        assert store.location == str(database)
        writing = store._db  # ingest's commits, and every other change the service makes
        assert writing.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert writing.execute("PRAGMA synchronous").fetchone()[0] == SYNCHRONOUS_FULL
        checkpointer = store._checkpointer  # never OFF: its checkpoints sync WAL and file
        assert checkpointer is not None
        assert checkpointer._db.execute("PRAGMA synchronous").fetchone()[0] == SYNCHRONOUS_FULL
    finally:
        service.stop()


COMMITS = 20


def _traced(tmp_path: Path, calls: str, script: str, *args: str | Path) -> list[str]:
    """The lines strace wrote for ``calls`` (``-e`` syntax, descriptors named by ``-y``)
    while another process ran ``script`` with ``args`` on this tree; skipped where strace may
    not trace."""
    trace = tmp_path / "syncs.txt"
    strace = ["strace", "-f", "-qq", "-y", "-e", calls, "-o", str(trace)]
    run = subprocess.run(
        [*strace, sys.executable, "-c", script, *map(str, args)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if run.returncode != 0 and "ptrace" in run.stderr.lower():
        pytest.skip(f"strace may not trace here: {run.stderr.strip()}")
    assert run.returncode == 0, run.stderr
    return trace.read_text().splitlines()


_COMMITTING = """
import sys
from caregiver.storage import NewEvent, Store

store = Store(sys.argv[1])
for n in range(1, int(sys.argv[2]) + 1):
    with store.transaction() as tx:
        assert tx.record_event(NewEvent(
            id=f"{n:032x}", device_id="treadmill-1", seq=n, type="fall", severity="critical",
            state="TRIPPED", reason="impact", wall_time="2026-11-17T09:55:00+00:00",
            figures={}, has_window=False, payload="{}"), float(n))
store.close()
"""


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed")
def test_each_commit_of_the_store_is_synced_to_disk_before_it_returns(tmp_path: Path) -> None:
    """What the setting above does, watched from outside: strace (system calls only, as the
    kernel sees them) counts the syncs of the ``-wal`` file while another process commits
    COMMITS events one transaction each through the store. Under FULL each commit syncs the
    WAL before it returns; under NORMAL they were synced only by a checkpoint (twice here:
    a power cut would have undone the rest)."""
    database = tmp_path / "caregiver.db"
    lines = _traced(tmp_path, "trace=fsync,fdatasync", _COMMITTING, database, str(COMMITS))
    wal = f"/{database.name}-wal>"
    wal_syncs = [line for line in lines if wal in line]
    assert len(wal_syncs) >= COMMITS, wal_syncs


_BATCHES_THEN_SYNC = """
import sys
from pathlib import Path
from caregiver.storage import NewEvent, Store

store = Store(sys.argv[1])
for n in range(1, int(sys.argv[2]) + 1):
    with store.batch(["treadmill-1"], float(n), synced=False):
        with store.transaction() as tx:
            assert tx.record_event(NewEvent(
                id=f"{n:032x}", device_id="treadmill-1", seq=n, type="fall", severity="critical",
                state="TRIPPED", reason="impact", wall_time="2026-11-17T09:55:00+00:00",
                figures={}, has_window=False, payload="{}"), float(n))
Path(sys.argv[3]).touch()  # in the trace: the batches have all returned
store.sync_committed()
with store.transaction() as tx:  # a change of another kind: synced in its commit again
    assert tx.record_event(NewEvent(
        id="f" * 32, device_id="treadmill-1", seq=999, type="fall", severity="critical",
        state="TRIPPED", reason="impact", wall_time="2026-11-17T09:56:00+00:00",
        figures={}, has_window=False, payload="{}"), 999.0)
Path(sys.argv[4]).touch()
store.close()
"""


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed")
def test_ingest_s_batches_wait_for_no_sync_and_one_sync_then_covers_them(tmp_path: Path) -> None:
    """Ingest's group commit, watched from outside with strace: batches stored with
    ``synced=False`` commit without syncing the WAL (the burst's events reach the browsers
    without waiting for the disk); :meth:`Store.sync_committed` then syncs it once, covering
    every one of them, before their receipts may go out (caregiver.receipts); and the next
    ordinary transaction's commit is synced again (the level is the connection's, restored
    after each such batch)."""
    database = tmp_path / "caregiver.db"
    batches_done, last_done = tmp_path / "batches-done", tmp_path / "last-done"
    traced = "trace=fsync,fdatasync,openat"
    args = (str(COMMITS), str(batches_done), str(last_done))
    lines = _traced(tmp_path, traced, _BATCHES_THEN_SYNC, database, *args)
    marks = [
        i for i, line in enumerate(lines) if batches_done.name in line or last_done.name in line
    ]
    assert len(marks) == 2, marks
    wal = f"/{database.name}-wal>"
    syncs = [i for i, line in enumerate(lines) if wal in line and "sync" in line.split("(")[0]]
    during_batches = [i for i in syncs if i < marks[0]]
    assert len(during_batches) < COMMITS // 4, [lines[i] for i in during_batches]
    after_batches = [i for i in syncs if marks[0] < i < marks[1]]
    assert len(after_batches) >= 2, lines[marks[0] :]  # sync_committed's, the transaction's
