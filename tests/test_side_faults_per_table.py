"""A part of the database the service goes on without is said as long as any of its tables
fails, whatever its other tables take (docs/caregiver.md, "Parts of the database the service
goes on without").

A part covers several tables: the progression its walkers' stages and their weeks' counts,
the commands' answers the plans' and the self-tests'. Its faults were kept by part, so a
write to one table cleared a fault of another: a stage refused by its table (a trigger, a
full tablespace, a broken index) was said until the treadmill's next progress message
wrote a week's count, and the banner, ``/healthz``, the retained health message and Home
Assistant then said all was well while every new stage was still lost. And a side message let
go because its table was missing was kept as a failed write: put back and read, the table
was still said failing until a message wrote to it, or a restart.

A fall's recording refused for its missing table was kept as a failed write too, said until
the next fall's recording stored. A side message the database refused for its own values (a
data error) was let go with a log line only. And one that met the last moment of another
session's lock was let go as if its table refused it, said until its table was next written.

Real triggers refuse the writes (:func:`tests.test_ingest_side_tables._refuse_writes`) or one
row's values with the engine's own data error (:func:`_refuse_data`), a real rename takes a
table away, another session holds a real lock (:func:`_lock_held`), on SQLite files and on the
suite's PostgreSQL; the messages go over a real Mosquitto, and the health message is the one
it retains.
"""

from __future__ import annotations

import html
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from caregiver import health_topic as health_topic_module
from caregiver import ingest as ingest_module
from caregiver.service import CaregiverService
from caregiver.storage import Part, StatementTimeouts, Table, Use, engine_of
from caregiver.storage.engines import SqliteDatabase
from core.protocol import payloads
from core.protocol.messages import CaregiverHealthMessage, ReceiptMessage
from core.protocol.payloads import decode_as, reply_payload
from core.protocol.topics import caregiver_health_topic
from core.protocol.walker import Walker
from tests.caregiver_db import execute
from tests.caregiver_support import (
    Http,
    Receiver,
    SimDevice,
    make_config,
    running_service,
    wait_all_handled,
)
from tests.mqtt_helpers import Subscriber, validate
from tests.stage_support import STAGE_EXAMPLE
from tests.test_caregiver_service import _contacts
from tests.test_caregiver_whose_incident import ANNA
from tests.test_ingest_side_tables import (
    PROGRESS_UNSTORED,
    WALKERS_UNSTORED,
    _allow_writes,
    _answer,
    _failing,
    _let_go,
    _progress,
    _refuse_writes,
    _roster_of,
    _said_faulty,
    _said_sound,
)
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

DEVICE = "treadmill-1"
COMMANDS_UNSTORED = "the treadmills' answers to commands cannot be stored"


@pytest.fixture(autouse=True)
def _said_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every change of the health message said as it happens, and a held message tried again
    at once (as tests/test_side_faults_refused_then_as_stored.py): what is let go and said is
    the tests' point, not the service's pace. At the service's own 2 s each :func:`_let_go`
    waited out a retry: the same retry, only sooner."""
    monkeypatch.setattr(health_topic_module, "HEALTH_EVERY_S", 0.0)
    monkeypatch.setattr(ingest_module, "HELD_RETRY_S", 0.05)


@contextmanager
def _watching(
    mosquitto: Mosquitto, tmp_path: Path, database: str, **kwargs: Any
) -> Iterator[tuple[CaregiverService, Http, Subscriber]]:
    """The service (``kwargs``: :class:`CaregiverService`'s) with its dashboard (Ann logged
    in) and what it says on its health topic."""
    config = make_config(mosquitto, tmp_path, database=database)
    topic = caregiver_health_topic("retroguard", config.mqtt.identity)
    sub = Subscriber(mosquitto, [topic])
    try:
        with running_service(config, background=False, **kwargs) as service:
            assert sub.wait(lambda: _parts(sub) == []), "no health said once subscribed"
            http = Http(service.port)
            assert http.login() == 303
            yield service, http, sub
    finally:
        sub.close()


@pytest.fixture
def watched(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> Iterator[tuple[CaregiverService, Http, Subscriber]]:
    with _watching(mosquitto, tmp_path, caregiver_db) as watching:
        yield watching


def _health(sub: Subscriber) -> list[CaregiverHealthMessage]:
    said = list(sub.messages)
    for message in said:
        validate("caregiver_health", message.payload)
    return [decode_as(CaregiverHealthMessage, m.payload) for m in said]


def _parts(sub: Subscriber) -> list[str] | None:
    """The parts the newest health message heard says failing (None: none heard)."""
    said = _health(sub)
    return [p.part for p in said[-1].parts] if said else None


def _said_everywhere(
    service: CaregiverService, http: Http, sub: Subscriber, part: Part, words: str
) -> None:
    """``part`` is said failing on the banner, ``/healthz`` and the health message. The
    newest health message heard may be older than what ingest just did (it is sent on a
    change): another part said failing for a moment makes one that says every part failing
    now, the one looked at."""
    _said_faulty(service, http, part.value, words)
    faults = service.store.side_faults
    faults.failed(Part.CLOSES, "caregiver database: a mark", Use.READ, (Table.INCIDENTS,))
    assert sub.wait(lambda: "closes" in (_parts(sub) or [])), _parts(sub)
    newest = _health(sub)[-1]
    assert newest.status == "degraded" and newest.storing
    said = {p.part: p.said for p in newest.parts}
    assert part.value in said, said
    assert said[part.value].startswith(words)
    faults.works(Part.CLOSES, Use.READ, (Table.INCIDENTS,))
    assert sub.wait(lambda: "closes" not in (_parts(sub) or ["closes"])), _parts(sub)


def _said_sound_everywhere(service: CaregiverService, http: Http, sub: Subscriber) -> None:
    _said_sound(service, http)
    assert sub.wait(lambda: _parts(sub) == []), _parts(sub)
    assert _health(sub)[-1].status == "ok"


def test_a_stage_refused_stays_said_after_a_weeks_count_is_written(
    mosquitto: Mosquitto,
    watched: tuple[CaregiverService, Http, Subscriber],
    caregiver_db: str,
) -> None:
    """Bob's new stage is refused by the stages' table and let go; the treadmill's progress
    message then writes the week's count, a table of the same part that takes writes. The
    progression stays said (before, that write said it worked) until a stage is written."""
    service, http, sub = watched
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        device.publish("stage/bob", payloads.encode(STAGE_EXAMPLE), retain=True)
        wait_all_handled(service, device)
        _refuse_writes(caregiver_db, "walker_stages")
        moved = msgspec.structs.replace(
            STAGE_EXAMPLE, stage=2, wall_time="2026-03-10T10:00:00.000+00:00"
        )
        _let_go(service, device, "stage/bob", payloads.encode(moved).encode())
        _said_everywhere(service, http, sub, Part.PROGRESS, PROGRESS_UNSTORED)

        device.publish("progress", _progress("2026-W49", 4).decode(), retain=True)
        wait_all_handled(service, device)
        assert service.store.prescribed_weeks(DEVICE) == {"2026-W49": 4}  # written
        assert _failing(service) == {"progress"}
        _said_everywhere(service, http, sub, Part.PROGRESS, PROGRESS_UNSTORED)

        _allow_writes(caregiver_db, "walker_stages")
        device.publish("stage/bob", payloads.encode(moved), retain=True)  # sent again
        wait_all_handled(service, device)
        stored = service.store.walker_stage(DEVICE, "bob")
        assert stored is not None and stored.stage == 2
        assert service.ingestor.wait_for(lambda: not service.store.side_faults.failing)
        _said_sound_everywhere(service, http, sub)
    finally:
        device.close()


def test_a_stage_is_not_said_stored_while_its_weeks_count_table_refuses(
    mosquitto: Mosquitto,
    watched: tuple[CaregiverService, Http, Subscriber],
    caregiver_db: str,
) -> None:
    """A stage writes its walker's week's count with it, unchanged too: a stage stored then
    shows that both of its tables take writes. Were an unchanged count skipped, Bob's stage
    after one refused for its count's table (two sessions a week, then three) would be
    stored without touching that table and said to clear it, while it still refused: the
    next count written would be lost with nothing said."""
    service, http, sub = watched
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        device.publish("stage/bob", payloads.encode(STAGE_EXAMPLE), retain=True)
        wait_all_handled(service, device)
        _refuse_writes(caregiver_db, "walker_prescribed_weeks")
        more = msgspec.structs.replace(
            STAGE_EXAMPLE, sessions_per_week=3, wall_time="2026-03-04T10:00:00.000+00:00"
        )
        _let_go(service, device, "stage/bob", payloads.encode(more).encode())
        _said_everywhere(service, http, sub, Part.PROGRESS, PROGRESS_UNSTORED)

        moved = msgspec.structs.replace(
            STAGE_EXAMPLE, stage=2, wall_time="2026-03-05T10:00:00.000+00:00"
        )  # back to two a week: the count kept
        _let_go(service, device, "stage/bob", payloads.encode(moved).encode())
        assert _failing(service) == {"progress"}
        _said_everywhere(service, http, sub, Part.PROGRESS, PROGRESS_UNSTORED)

        _allow_writes(caregiver_db, "walker_prescribed_weeks")
        device.publish("stage/bob", payloads.encode(moved), retain=True)  # sent again
        wait_all_handled(service, device)
        stored = service.store.walker_stage(DEVICE, "bob")
        assert stored is not None and stored.stage == 2
        assert service.ingestor.wait_for(lambda: not service.store.side_faults.failing), (
            service.store.side_faults.now()
        )
        _said_sound_everywhere(service, http, sub)
    finally:
        device.close()


def test_a_self_tests_answer_refused_stays_said_after_a_plans_answer_is_written(
    mosquitto: Mosquitto,
    watched: tuple[CaregiverService, Http, Subscriber],
    caregiver_db: str,
) -> None:
    """The self-tests' table refuses the treadmill's answer to a check (let go); its answer to
    a plan is then written to the commands' table. The commands' part stays said (before,
    that answer said it worked, and the check read as unanswered with nothing said) until a
    check's answer is written."""
    service, http, sub = watched
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        check = uuid.uuid4().hex
        service.store.self_test_asked(DEVICE, check, "ann", service.clock())
        _refuse_writes(caregiver_db, "self_tests")
        answer = reply_payload(DEVICE, "self_test", check, False, error="walking")
        _let_go(service, device, "reply", answer.encode())
        _said_everywhere(service, http, sub, Part.COMMANDS, COMMANDS_UNSTORED)

        device.publish("reply", _answer(service).decode())  # a plan refused, recorded
        wait_all_handled(service, device)
        assert service.store.sent_commands(DEVICE, 1)[0].status == "refused"  # written
        assert _failing(service) == {"commands"}
        _said_everywhere(service, http, sub, Part.COMMANDS, COMMANDS_UNSTORED)

        _allow_writes(caregiver_db, "self_tests")
        check = uuid.uuid4().hex
        service.store.self_test_asked(DEVICE, check, "ann", service.clock())
        device.publish("reply", reply_payload(DEVICE, "self_test", check, False, error="walking"))
        wait_all_handled(service, device)
        kept = service.store.self_test(DEVICE)
        assert kept is not None and kept.outcome == "refused"
        assert service.ingestor.wait_for(lambda: not service.store.side_faults.failing)
        _said_sound_everywhere(service, http, sub)
    finally:
        device.close()


def test_a_roster_let_go_for_its_missing_table_is_cleared_once_the_table_reads_again(
    mosquitto: Mosquitto,
    watched: tuple[CaregiverService, Http, Subscriber],
    caregiver_db: str,
) -> None:
    """The roster's table is gone: the treadmill's roster is let go. Its table reads no more
    than it writes, so what failed is a read of it, not a write: put back, the housekeeping
    look reads it and the walkers are no longer said, with no roster written (the treadmill's
    retained roster, handed over again at its next connection, may be unchanged). Before, it
    was kept as a failed write and stayed said until a changed roster or a restart."""
    service, http, sub = watched
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        execute(caregiver_db, "ALTER TABLE device_walkers RENAME TO device_walkers_gone")
        _let_go(service, device, "walkers", _roster_of(device, ANNA))
        _said_everywhere(service, http, sub, Part.WALKERS, WALKERS_UNSTORED)
        walkers = next(f for f in service.store.side_faults.now() if f.part is Part.WALKERS)
        assert (Table.DEVICE_WALKERS, Use.READ) in walkers.failing
        assert Use.WRITE not in walkers.uses
        service.store.probe_side_faults()  # still gone: still said
        _said_everywhere(service, http, sub, Part.WALKERS, WALKERS_UNSTORED)

        execute(caregiver_db, "ALTER TABLE device_walkers_gone RENAME TO device_walkers")
        service.store.probe_side_faults()
        assert _failing(service) == set()
        _said_sound_everywhere(service, http, sub)
    finally:
        device.close()


RECORDINGS_UNSTORED = "falls' sensor recordings cannot be stored or read"


def test_a_recording_refused_for_its_missing_table_is_cleared_once_the_table_reads_again(
    mosquitto: Mosquitto,
    watched: tuple[CaregiverService, Http, Subscriber],
    caregiver_db: str,
) -> None:
    """The recordings table is gone: the fall is stored and paged without its recording.
    What failed is a read of the table as much as a write (a table that is not there says
    nothing of its writes), as for a side message let go: put back, the housekeeping look
    reads it and the recordings are no longer said, with no fall needed. Before, it was kept
    as a failed write and stayed said until the next fall's recording stored (weeks), though
    no page read it failing."""
    service, http, sub = watched
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        execute(caregiver_db, "ALTER TABLE recordings RENAME TO recordings_gone")
        ids = device.incident_fall()
        wait_all_handled(service, device)
        stored = service.store.event(ids["window"]["id"])
        assert stored is not None and service.store.recording_unstored(stored)
        _said_everywhere(service, http, sub, Part.RECORDINGS, RECORDINGS_UNSTORED)
        recordings = next(f for f in service.store.side_faults.now() if f.part is Part.RECORDINGS)
        assert recordings.failing == {(Table.RECORDINGS, Use.READ)}
        service.store.probe_side_faults()  # still gone: still said
        _said_everywhere(service, http, sub, Part.RECORDINGS, RECORDINGS_UNSTORED)

        execute(caregiver_db, "ALTER TABLE recordings_gone RENAME TO recordings")
        service.store.probe_side_faults()
        assert _failing(service) == set()
        _said_sound_everywhere(service, http, sub)
    finally:
        device.close()


REFUSED_NAME = "Rita R."
"""A walker's name the roster's table refuses for its value (:func:`_refuse_data`)."""


def _refuse_data(database: str, table: str, column: str, value: str) -> None:
    """``table`` refuses a row whose ``column`` is ``value`` with the engine's own data error
    (SQLSTATE class 22 on PostgreSQL, SQLITE_TOOBIG on SQLite: the driver's ``DataError``),
    as it would a value out of its range: the table takes every other row."""
    if engine_of(database) == "postgresql":
        execute(
            database,
            "CREATE FUNCTION refuse_data() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'value out of range' USING ERRCODE = 'numeric_value_out_of_range'; "
            "END $$",
        )
        execute(
            database,
            f"CREATE TRIGGER {table}_data BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW "
            f"WHEN (NEW.{column} = '{value}') EXECUTE FUNCTION refuse_data()",
        )
        return
    for write in ("INSERT", "UPDATE"):
        execute(
            database,
            f"CREATE TRIGGER {table}_data_{write.lower()} BEFORE {write} ON {table} "
            f"WHEN NEW.{column} = '{value}' BEGIN SELECT zeroblob(2000000000); END",
        )


def test_a_roster_refused_for_its_data_is_let_go_and_said_until_one_stores(
    mosquitto: Mosquitto,
    watched: tuple[CaregiverService, Http, Subscriber],
    caregiver_db: str,
) -> None:
    """The roster's table refuses one of treadmill-1's walkers for its value (a data error:
    the database answers, refusing that row). Tried alone it would be refused on every try,
    so it is let go rather than held in front of the messages behind it, as before; but
    before, only the log said so, and the dashboard, ``/healthz`` and the health message
    said all was well while the walkers' names were not what the treadmill has. Now it is
    said like any refused write of the roster's table, until a roster is written (the
    treadmill's next, its walker renamed)."""
    service, http, sub = watched
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        _refuse_data(caregiver_db, "device_walkers", "name", REFUSED_NAME)
        rita = Walker("rita", REFUSED_NAME)
        _let_go(service, device, "walkers", _roster_of(device, ANNA, rita))
        assert service.store.device_walkers(DEVICE) == []  # not stored
        assert service.ingestor.storage_fault is None  # the database works
        _said_everywhere(service, http, sub, Part.WALKERS, WALKERS_UNSTORED)
        walkers = next(f for f in service.store.side_faults.now() if f.part is Part.WALKERS)
        assert walkers.failing == {(Table.DEVICE_WALKERS, Use.WRITE)}
        service.store.probe_side_faults()  # the table reads: a read says nothing of it
        _said_everywhere(service, http, sub, Part.WALKERS, WALKERS_UNSTORED)

        device.publish("walkers", _roster_of(device, ANNA).decode(), retain=True)
        wait_all_handled(service, device)
        assert [name for _, name in service.store.device_walkers(DEVICE)][1:] == [ANNA.name]
        assert service.ingestor.wait_for(lambda: not service.store.side_faults.failing)
        _said_sound_everywhere(service, http, sub)
    finally:
        device.close()


BRIEF_LOCKS = StatementTimeouts(lock_s=0.2, statement_s=10.0)
"""PostgreSQL's wait for a lock another session holds, a fifth of a second (SQLite's busy
timeout is set to none by :func:`_lock_held`): a lock refuses at once, as one held past the
real waits does."""


@contextmanager
def _lock_held(service: CaregiverService, database: str) -> Iterator[Callable[[], None]]:
    """Another session holds a lock that keeps the store from writing the roster's table,
    until the function yielded is called (or the block ends): on SQLite the file's write lock
    (``BEGIN IMMEDIATE``, as a backup, a command or an ``sqlite3`` shell takes it), the store's
    writing connection waiting for none of it; on PostgreSQL a ``SHARE`` lock on
    ``device_walkers`` (the table reads, its writes wait past :data:`BRIEF_LOCKS`)."""
    if engine_of(database) == "postgresql":
        other = psycopg.connect(database)  # not autocommit: the lock lasts its transaction
        other.execute("LOCK TABLE device_walkers IN SHARE MODE")
        try:
            yield other.rollback
        finally:
            other.rollback()
            other.close()
        return
    db = service.store._db  # the store's writing connection: refused at once, not in 5 s
    assert isinstance(db, SqliteDatabase)
    with service.store._lock:
        db._db.execute("PRAGMA busy_timeout = 0")
    holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    def release() -> None:
        if holder.in_transaction:
            holder.execute("ROLLBACK")

    try:
        yield release
    finally:
        release()
        holder.close()
        with service.store._lock:
            db._db.execute("PRAGMA busy_timeout = 5000")


def test_a_roster_refused_by_a_brief_lock_is_stored_once_the_fall_behind_it_is(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    """Another session locks the database (SQLite) or the roster's table (PostgreSQL) as
    treadmill-1's roster and then its state arrive: both are held. The held messages' retry
    meets the lock on the roster; the lock ends; the state behind it stores. Before, the
    roster was then let go as if its table refused it, and said failing (a write of the
    roster's table) until a changed roster was written, maybe months later, though the lock
    was long over and the table took writes. A lock passes: the roster is tried again once
    the state stored, and stored; nothing is let go, nothing said failing once the database
    stores again."""
    with _watching(mosquitto, tmp_path, caregiver_db, timeouts=BRIEF_LOCKS) as watching:
        service, http, sub = watching
        ingestor = service.ingestor
        device = SimDevice(mosquitto, DEVICE)
        try:
            device.online()
            wait_all_handled(service, device)
            with _lock_held(service, caregiver_db) as release:
                released = threading.Event()
                said = ingestor.on_storing_changed

                def lock_ends_after_the_retry_meets_it() -> None:
                    said()
                    retrying = threading.current_thread() is not ingestor.ingest_thread
                    if retrying and ingestor.held == 2 and not released.is_set():
                        release()  # the roster was just refused alone, the state behind it
                        released.set()

                ingestor.on_storing_changed = lock_ends_after_the_retry_meets_it
                device.publish("walkers", _roster_of(device, ANNA).decode(), retain=True)
                device.set_state("ARMED", "armed by local reset from STANDBY")
                wait_all_handled(service, device)
                assert ingestor.wait_for(lambda: ingestor.held == 0)
            assert released.is_set(), "the retry never met the lock with the state behind it"
            assert [name for _, name in service.store.device_walkers(DEVICE)][1:] == [ANNA.name]
            assert ingestor.rejected == 0
            assert ingestor.storage_fault is None
            assert _failing(service) == set()
            _said_sound(service, http)
            assert sub.wait(lambda: _health(sub)[-1].status == "ok" and _parts(sub) == [])
        finally:
            device.close()


def test_a_roster_its_locked_table_refuses_again_is_let_go_and_the_database_said_storing(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    """On PostgreSQL a lock may hold one table alone (an operator's ``LOCK TABLE`` in psql):
    the state behind the roster stores, the roster tried again meets the lock again, and is
    let go, said failing like any refused write of its table (a lock that outlasted the fall
    behind it is that table's own, as long as it lasts) until a roster is written. Its second
    refusal said the database refuses: the state had just stored, so it is said storing
    again at once, not at the next message (a telemetry's interval later)."""
    if engine_of(caregiver_db) != "postgresql":
        pytest.skip("SQLite's lock is the whole file's: the state behind it would wait too")
    with _watching(mosquitto, tmp_path, caregiver_db, timeouts=BRIEF_LOCKS) as watching:
        service, http, sub = watching
        ingestor = service.ingestor
        device = SimDevice(mosquitto, DEVICE)
        try:
            device.online("STANDBY")
            wait_all_handled(service, device)
            roster = _roster_of(device, ANNA)
            with _lock_held(service, caregiver_db):
                _let_go(service, device, "walkers", roster)  # and its state, stored
                stored = service.store.device(DEVICE)
                assert stored is not None and stored["state"] == "ARMED"
                assert service.store.device_walkers(DEVICE) == []
                assert ingestor.storage_fault is None
                _said_everywhere(service, http, sub, Part.WALKERS, WALKERS_UNSTORED)
            device.publish("walkers", roster.decode(), retain=True)  # at its next connection
            wait_all_handled(service, device)
            assert [name for _, name in service.store.device_walkers(DEVICE)][1:] == [ANNA.name]
            assert ingestor.wait_for(lambda: not service.store.side_faults.failing)
            _said_sound_everywhere(service, http, sub)
        finally:
            device.close()


ALERT_UNSTORED = "an alert from a treadmill cannot be stored"


def _alert_said(
    service: CaregiverService, http: Http, sub: Subscriber, fall_id: str | None
) -> None:
    """The fall ``fall_id`` refused is said on the banner (leading it), ``/healthz`` and the
    health message, with the device and the alert's kind and id; None: nothing is said."""
    if fall_id is None:
        assert service.ingestor.wait_for(lambda: not service.store.side_faults.failing)
        _said_sound_everywhere(service, http, sub)
        return
    named = f"{DEVICE}'s fall {fall_id} refused"
    health = json.loads(http.request("GET", "/healthz")[2])
    assert health["status"] == "degraded" and health["storing"], health
    said = {p["part"]: p["said"] for p in health["database_parts"]}
    assert said["alerts"].startswith(ALERT_UNSTORED), said
    assert ": other alerts are still stored and notified, but " in said["alerts"]
    banner = service.hub.broker
    assert banner.down and banner.lead == "An alert cannot be stored"
    assert ALERT_UNSTORED in banner.detail and named in banner.detail, banner.detail
    assert banner.consequence.startswith("Other alerts are still stored and notified")
    _, _, page = http.request("GET", "/")
    assert named in html.unescape(page)
    assert sub.wait(lambda: "alerts" in (_parts(sub) or [])), _parts(sub)
    assert _health(sub)[-1].status == "degraded"


def test_a_fall_refused_for_its_data_is_said_until_it_stores(
    mosquitto: Mosquitto,
    tmp_path: Path,
    caregiver_db: str,
) -> None:
    """The events' table refuses one fall for its values (a trigger raising the engine's own
    data error). It is let go so the alerts behind it store, and not receipted, so the
    treadmill keeps it and sends it again; but before, only the log said so: the fall was
    never shown or paged while every page said all was well. Now the banner, ``/healthz``
    and the health message say it, naming the treadmill and the fall, while its resends are
    refused; a later fall of the treadmill is stored and paged, and the refused one is still
    said (before, the later fall cleared it while the refused one was still unstored, until
    its next resend); the trigger dropped, the refused fall sent again is stored and
    receipted, and only then is it said no longer."""
    receiver = Receiver()
    config = make_config(mosquitto, tmp_path, database=caregiver_db, contacts=_contacts(receiver))
    health = Subscriber(mosquitto, [caregiver_health_topic("retroguard", config.mqtt.identity)])
    receipts = Subscriber(mosquitto, [f"retroguard/{DEVICE}/receipt"])
    try:
        with running_service(config, background=False) as service:
            assert health.wait(lambda: _parts(health) == [])
            http = Http(service.port)
            assert http.login() == 303
            device = SimDevice(mosquitto, DEVICE)
            try:
                device.online()
                refused_id = uuid.uuid4().hex
                _refuse_data(caregiver_db, "events", "id", refused_id)
                refused = device.event(
                    "fall",
                    severity="critical",
                    state="TRIPPED",
                    reason="impact 3.2 g then lying",
                    event_id=refused_id,
                )
                wait_all_handled(service, device)
                assert service.store.event(refused_id) is None  # not stored
                # the database works: its batch was tried a message at a time
                assert service.ingestor.wait_for(lambda: service.ingestor.storage_fault is None)
                # let go: nothing waits behind it
                assert service.ingestor.wait_for(lambda: service.ingestor.held == 0)
                _alert_said(service, http, health, refused_id)
                device.publish("event", json.dumps(refused))  # resent: refused again
                wait_all_handled(service, device)
                _alert_said(service, http, health, refused_id)
                assert service.notifier.deliver_due() == 0

                later = device.fall()
                wait_all_handled(service, device)
                assert service.store.event(later["id"]) is not None
                assert service.notifier.deliver_due() == 1  # paged
                assert receipts.wait(lambda: later["id"] in _receipted(receipts))
                assert refused_id not in _receipted(receipts)  # the device keeps it
                _alert_said(service, http, health, refused_id)  # still unstored: still said

                device.publish("event", json.dumps(refused))  # still refused: still said
                wait_all_handled(service, device)
                _alert_said(service, http, health, refused_id)

                _allow_data(caregiver_db, "events")
                device.publish("event", json.dumps(refused))
                wait_all_handled(service, device)
                assert service.store.event(refused_id) is not None
                assert receipts.wait(lambda: refused_id in _receipted(receipts))
                _alert_said(service, http, health, None)
            finally:
                device.close()
    finally:
        receipts.close()
        health.close()
        receiver.close()


def _receipted(sub: Subscriber) -> set[str]:
    """The ids the service's receipts heard so far name."""
    return {i for m in list(sub.messages) for i in decode_as(ReceiptMessage, m.payload).ids}


def _allow_data(database: str, table: str) -> None:
    """Drop :func:`_refuse_data`'s triggers on ``table``."""
    if engine_of(database) == "postgresql":
        execute(database, f"DROP TRIGGER {table}_data ON {table}")
        return
    for write in ("insert", "update"):
        execute(database, f"DROP TRIGGER {table}_data_{write}")


OTHER = "treadmill-2"
REFUSED_REASON = "impact 9.9 g then lying"
"""The reason of the falls :func:`_refuse_data` has the events' table refuse (a real fall's
says "impact 3.2 g then lying": stored)."""


def _refuse_event(database: str, event_id: str) -> None:
    """The events' table refuses the event ``event_id`` with the engine's data error, by a
    trigger of its own (:func:`_allow_data` leaves it): :func:`_refuse_data`'s function
    reused on PostgreSQL (it exists once a test has refused data)."""
    if engine_of(database) == "postgresql":
        execute(
            database,
            f"CREATE TRIGGER events_refused_id BEFORE INSERT ON events FOR EACH ROW "
            f"WHEN (NEW.id = '{event_id}') EXECUTE FUNCTION refuse_data()",
        )
        return
    execute(
        database,
        f"CREATE TRIGGER events_refused_id BEFORE INSERT ON events "
        f"WHEN NEW.id = '{event_id}' BEGIN SELECT zeroblob(2000000000); END",
    )


def test_a_fall_refused_on_another_treadmill_stays_said_when_one_of_the_first_stores(
    mosquitto: Mosquitto,
    watched: tuple[CaregiverService, Http, Subscriber],
    caregiver_db: str,
) -> None:
    """The events' table refuses a fall of treadmill-1, then one of treadmill-2, for their
    values; treadmill-1's, sent again once the table takes it, stores. treadmill-2's fall is
    still refused: the part is said all along, now naming treadmill-2's fall, since it was
    refused. Before, the part was said working for a moment and failing again, since then:
    the health message Home Assistant retains said "ok" (for its interval,
    :data:`HEALTH_EVERY_S`, in service), the banner went and came back, and it said the fall
    had been refused minutes after it was."""
    service, http, sub = watched
    first, second = SimDevice(mosquitto, DEVICE), SimDevice(mosquitto, OTHER)
    ingestor, faults = service.ingestor, service.store.side_faults
    try:
        first.online()
        second.online()
        wait_all_handled(service, first, second)
        _refuse_data(caregiver_db, "events", "reason", REFUSED_REASON)

        def refused_fall(device: SimDevice) -> dict[str, Any]:
            rejected = ingestor.rejected
            sent = device.event("fall", severity="critical", state="TRIPPED", reason=REFUSED_REASON)
            assert ingestor.wait_for(lambda: ingestor.rejected > rejected and ingestor.held == 0)
            assert service.store.event(sent["id"]) is None
            return sent

        taken = refused_fall(first)
        before = time.time()
        still = str(refused_fall(second)["id"])
        after = time.time()
        _refuse_event(caregiver_db, still)  # treadmill-2's stays refused
        _allow_data(caregiver_db, "events")  # treadmill-1's is taken
        said: list[tuple[Part, ...]] = []
        told = faults.on_change

        def heard() -> None:
            said.append(tuple(f.part for f in faults.now()))
            assert told is not None
            told()

        faults.on_change = heard
        first.publish("event", json.dumps(taken))  # sent again: no receipt named it
        wait_all_handled(service, first, second)
        assert service.store.event(taken["id"]) is not None
        assert ingestor.wait_for(lambda: OTHER in _alerts_said(service))  # treadmill-2's now
        alerts = next(f for f in faults.now() if f.part is Part.ALERTS)
        assert f"{OTHER}'s fall {still} refused" in alerts.fault
        assert before <= alerts.since <= after, "said refused since another was stored"
        assert all(Part.ALERTS in parts for parts in said), said
        _, _, page = http.request("GET", "/")
        assert f"{OTHER}'s fall {still} refused" in html.unescape(page)
        # a mark said after it all: every health message said before it has been heard
        faults.failed(Part.CLOSES, "caregiver database: a mark", Use.READ, (Table.INCIDENTS,))
        assert sub.wait(lambda: "closes" in (_parts(sub) or [])), _parts(sub)
        health = _health(sub)
        first_said = next(n for n, m in enumerate(health) if "alerts" in {p.part for p in m.parts})
        parts_said = [sorted(p.part for p in m.parts) for m in health[first_said:]]
        assert all("alerts" in parts for parts in parts_said), parts_said  # never "ok" between
        faults.works(Part.CLOSES, Use.READ, (Table.INCIDENTS,))
    finally:
        first.close()
        second.close()


def _alerts_said(service: CaregiverService) -> str:
    """What the part of the alerts refused says now ("" when it is not failing)."""
    return next((f.fault for f in service.store.side_faults.now() if f.part is Part.ALERTS), "")


def test_a_fall_refused_for_its_data_never_says_the_database_refuses(
    mosquitto: Mosquitto,
    watched: tuple[CaregiverService, Http, Subscriber],
    caregiver_db: str,
) -> None:
    """The events' table refuses one fall for its values; the treadmill sends it again until
    a receipt names it (each minute at first). The database stores everything else: each
    arrival says the alert refused, never that the service cannot store. Before, its batch
    was refused whole and held, so every copy said "not storing" (the health message Home
    Assistant reads, the banner's "Not storing alerts", the presence every treadmill reads
    as a fall paging nobody) until the held messages' retry let it go, seconds later, and
    every other alert of its batch waited that long."""
    service, _http, sub = watched
    device = SimDevice(mosquitto, DEVICE)
    ingestor = service.ingestor
    storing: list[str | None] = []
    told = ingestor.on_storing_changed

    def heard() -> None:
        storing.append(ingestor.storage_fault)
        told()

    try:
        device.online()
        wait_all_handled(service, device)
        _refuse_data(caregiver_db, "events", "reason", REFUSED_REASON)
        ingestor.on_storing_changed = heard
        refused = device.event("fall", severity="critical", state="TRIPPED", reason=REFUSED_REASON)
        assert ingestor.wait_for(lambda: ingestor.rejected == 1 and ingestor.held == 0)
        device.publish("event", json.dumps(refused))  # sent again: no receipt named it
        assert ingestor.wait_for(lambda: ingestor.rejected == 2 and ingestor.held == 0)
        assert "alerts" in _failing(service)  # said, as its own
        later = device.fall()
        wait_all_handled(service, device)
        assert service.store.event(later["id"]) is not None
        assert storing == [], storing  # the database never said refusing
        # a mark said after it all: every health message said before it has been heard
        faults = service.store.side_faults
        faults.failed(Part.CLOSES, "caregiver database: a mark", Use.READ, (Table.INCIDENTS,))
        assert sub.wait(lambda: "closes" in (_parts(sub) or [])), _parts(sub)
        assert all(m.storing for m in _health(sub)), [m.status for m in _health(sub)]
    finally:
        device.close()


def test_a_roster_refused_for_its_data_stays_said_when_another_treadmills_stores(
    mosquitto: Mosquitto,
    watched: tuple[CaregiverService, Http, Subscriber],
    caregiver_db: str,
) -> None:
    """The roster's table refuses treadmill-1's roster for a walker's name (a data error);
    treadmill-2's roster stores. treadmill-1's walkers are still not what it has: the part
    is still said, until treadmill-1's own next roster stores. Before, treadmill-2's write of
    the table cleared it, and the banner, ``/healthz`` and the health message said all was
    well (a write of a table says it takes writes, not that another treadmill's row refused
    for its values is stored)."""
    service, http, sub = watched
    first, second = SimDevice(mosquitto, DEVICE), SimDevice(mosquitto, OTHER)
    try:
        first.online()
        second.online()
        wait_all_handled(service, first, second)
        _refuse_data(caregiver_db, "device_walkers", "name", REFUSED_NAME)
        _let_go(service, first, "walkers", _roster_of(first, ANNA, Walker("rita", REFUSED_NAME)))
        assert _failing(service) == {"walkers"}

        second.publish("walkers", _roster_of(second, ANNA).decode(), retain=True)
        wait_all_handled(service, first, second)
        assert [name for _, name in service.store.device_walkers(OTHER)][1:] == [ANNA.name]
        assert service.store.device_walkers(DEVICE) == []  # still not stored
        _said_everywhere(service, http, sub, Part.WALKERS, WALKERS_UNSTORED)

        first.publish("walkers", _roster_of(first, ANNA).decode(), retain=True)  # Rita gone
        wait_all_handled(service, first, second)
        assert [name for _, name in service.store.device_walkers(DEVICE)][1:] == [ANNA.name]
        assert service.ingestor.wait_for(lambda: not service.store.side_faults.failing)
        _said_sound_everywhere(service, http, sub)
    finally:
        first.close()
        second.close()
