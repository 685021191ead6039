"""A fall whose walkers cannot be read (their table damaged, missing, locked) is stored, paged,
reminded and closed all the same, the walker named by the id their incident carries: the
name is information, and reading it is no part of storing an alert (docs/caregiver.md,
"When the database refuses").

Before, ingest and the escalation tick read the names with their own transaction: the failed
read was the transaction's, so the fall was not stored, paged nobody and waited with the
broker, retried every few seconds, for as long as the table stayed unreadable; no reminder
went out for an alert already paging, and neither the walker's "I'm OK" nor a caregiver's
acknowledgement closed it. The tables are renamed behind the service's back, on SQLite and on
PostgreSQL (where a failed statement also leaves its transaction refusing every statement
after it), and the fall goes over the real broker.

The recordings table is one too: a fall's recording is its attachment, and a table that
refuses it no longer holds the fall (nor every event behind it). And whatever the service
goes on without is said where people look, the banner of every page and /healthz, until the
table works again (docs/caregiver.md, "Parts of the database the service goes on without")."""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from caregiver import ingest as ingest_module
from caregiver.ingest import SIDE_KINDS, SIDE_PARTS
from caregiver.routes.pages import RECORDING_UNREAD, RECORDING_UNSTORED
from caregiver.service import CaregiverService
from caregiver.storage import Part, Role, SentCommand, Table, Use, engine_of
from core.protocol import payloads
from core.protocol.commands import CommandName
from core.protocol.messages import (
    SCHEMA_VERSION,
    ProgressMessage,
    TelemetryMessage,
    WalkersMessage,
)
from core.protocol.payloads import reply_payload
from core.protocol.walker import DEFAULT_WALKER, Walker
from tests.caregiver_db import execute
from tests.caregiver_support import (
    PASSWORD,
    WAIT,
    Http,
    Receiver,
    SimDevice,
    make_config,
    session_record,
    wait_all_handled,
)
from tests.stage_support import STAGE_EXAMPLE
from tests.test_caregiver_service import _contacts, _fake_clock_service
from tests.test_caregiver_whose_incident import ANNA, _ok, _roster
from tools.broker import Mosquitto, mosquitto_available

DEVICE = "treadmill-1"

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

SIDE_TABLES = ("device_walkers", "walk_sessions")
"""What naming a walker reads (:func:`caregiver.walkers.offered`): the device's roster and
the walkers of its sessions. Nothing else the ingest of a fall, its page, its reminders and
its follow-ups read is outside the tables the alert itself is written to (events, devices,
incidents, alerts, notifications); the recording beside it is written aside
(:meth:`caregiver.storage.Store.attachment`)."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _stored(service: CaregiverService, event_id: str) -> bool:
    """Whether ingest has committed ``event_id`` (waited for: False after :data:`WAIT`)."""
    return service.ingestor.wait_for(lambda: service.store.event(event_id) is not None, WAIT)


@pytest.mark.parametrize("table", SIDE_TABLES)
def test_a_fall_with_its_walkers_unreadable_is_stored_paged_reminded_and_closed_by_id(
    mosquitto: Mosquitto,
    tmp_path: Path,
    receiver: Receiver,
    caregiver_db: str,
    table: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    service, clock = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        _roster(device)  # Anna B. by name, while the table can be read
        assert service.ingestor.wait_for(lambda: len(service.store.device_walkers(DEVICE)) == 2)
        execute(caregiver_db, f"ALTER TABLE {table} RENAME TO {table}_damaged")
        caplog.set_level(logging.WARNING)

        ids = device.incident_fall(walker="anna")
        assert _stored(service, ids["window"]["id"]), "the fall was not stored"
        assert service.ingestor.held == 0 and service.ingestor.storage_fault is None
        incident = service.store.incident(ids["incident"])
        assert incident is not None and incident.open and incident.severity == "fall"
        assert service.notifier.deliver_due() == 1  # paged at once, named by the id
        page = receiver.messages[-1]
        assert page["path"] == "/ann"
        assert page["title"] == "RetroGuard: FALL - anna, Dad's treadmill"
        assert "FALL — anna, on Dad's treadmill (treadmill-1) at " in page["message"]

        clock.advance(300)  # not acknowledged: the escalation tick reads the names too
        assert service.alerting.tick() == 1
        assert service.notifier.deliver_due() == 1
        reminder = receiver.messages[-1]
        assert reminder["path"] == "/ann"
        assert reminder["title"] == "RetroGuard: FALL - anna, Dad's treadmill"
        assert reminder["message"].startswith("REMINDER, not acknowledged after 5 min: FALL — anna")

        ok = _ok(device, ids)  # the walker's I'm OK closes it, and Ann hears so
        assert _stored(service, ok["id"]), "the I'm OK was not stored"
        assert service.notifier.deliver_due() == 1
        fine = receiver.messages[-1]
        assert fine["title"] == "RetroGuard: I'm OK - anna, Dad's treadmill"
        assert fine["message"].startswith("anna pressed I'm OK on Dad's treadmill: ")
        incident = service.store.incident(ids["incident"])
        assert incident is not None and not incident.open
        clock.advance(3600)
        assert service.alerting.tick() == 0  # no more reminders

        again = device.incident_fall(walker="anna")  # then a caregiver acknowledges one
        assert _stored(service, again["window"]["id"]), "the second fall was not stored"
        assert service.notifier.deliver_due() == 1
        service.acknowledge(DEVICE, again["fall"]["id"], "Ann")
        assert service.notifier.deliver_due() == 1
        answered = receiver.messages[-1]
        assert answered["title"] == "RetroGuard: acknowledged - anna, Dad's treadmill"
        assert "the alert 'Fall' of anna on Dad's treadmill is closed" in answered["message"]

        # the fault is said (the log: a table renamed is no damaged file), not kept silent
        unread = [r for r in caplog.records if "walkers unread, named by id" in r.getMessage()]
        assert unread and all(DEVICE in r.getMessage() for r in unread)
        # nothing was held: neither refused by the database nor stored by the retries of
        # held messages, one by one, after the batch that carried it was refused
        refused = [r for r in caplog.records if r.name == "caregiver.ingest"]
        assert refused == [] and service.ingestor.storage_fault is None
    finally:
        device.close()
        service.stop()


@pytest.fixture
def held_tried_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A held message tried again at once (tests/test_side_faults_refused_then_as_stored.py
    does the same): a side message is let go at that retry (:func:`_let_go`), which the
    tests below waited out at the service's own 2 s. The same retry, only sooner."""
    monkeypatch.setattr(ingest_module, "HELD_RETRY_S", 0.05)


@pytest.mark.usefixtures("held_tried_at_once")
def test_a_roster_its_table_refuses_holds_no_fall_behind_it(
    mosquitto: Mosquitto,
    tmp_path: Path,
    receiver: Receiver,
    caregiver_db: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The device's walkers message (retained: every reconnect hands it over again) met a
    roster table it could not write: held, in order, it held every message after it, a
    fall too, for as long as the table stayed broken. Now the fall behind it is stored and
    paged, and the roster is let go, said in the log (the device sends it again at its next
    connection)."""
    service, _ = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        execute(caregiver_db, "ALTER TABLE device_walkers RENAME TO device_walkers_damaged")
        caplog.set_level(logging.WARNING)
        _roster(device)
        ids = device.incident_fall(walker="anna")
        assert _stored(service, ids["window"]["id"]), "the fall was not stored"
        assert service.notifier.deliver_due() == 1
        assert receiver.messages[-1]["title"] == "RetroGuard: FALL - anna, Dad's treadmill"
        assert service.ingestor.wait_for(lambda: service.ingestor.held == 0)
        let_go = [r for r in caplog.records if "let go" in r.getMessage()]
        assert [r.levelno for r in let_go] == [logging.ERROR]
        assert "/walkers" in let_go[0].getMessage()
        assert "device_walkers" in let_go[0].getMessage()  # the table's own fault, said
        assert service.ingestor.rejected == 1
        assert service.ingestor.wait_for(lambda: service.ingestor.storage_fault is None)
    finally:
        device.close()
        service.stop()


@pytest.fixture
def paged_service(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> Iterator[tuple[CaregiverService, Http]]:
    """The service with its dashboard (Ann logged in), its notifier driven by the test."""
    config = make_config(mosquitto, tmp_path, database=caregiver_db, contacts=_contacts(receiver))
    service = CaregiverService(config)
    service.accounts.add_user("ann", PASSWORD, Role.PHYSIO)
    service.start(web=True, background=False, port=0)
    try:
        assert service.ingestor.connected.wait(WAIT)
        http = Http(service.port)
        assert http.login() == 303
        yield service, http
    finally:
        service.stop()


def _healthz(http: Http) -> dict[str, Any]:
    status, _, body = http.request("GET", "/healthz")
    assert status == 200  # alive: a part of the database is no reason to take it out
    answer: dict[str, Any] = json.loads(body)
    return answer


def _said_faulty(service: CaregiverService, http: Http, part: str, words: str) -> None:
    """The fault is visible where a person looks: /healthz, the banner of every page (as
    rendered and as the live feed sends it), with the badge still "live"."""
    health = _healthz(http)
    assert health["status"] == "degraded"
    assert health["storing"] and health["receiving"]
    parts = {p["part"]: p["said"] for p in health["database_parts"]}
    assert part in parts, parts
    said = parts[part]
    assert said.startswith(words)
    assert "\u00a0UTC: alerts are still stored and notified, but " in said
    status, _, _ = http.request("GET", "/healthz/receiving")
    assert status == 200  # falls reach caregivers
    banner = service.hub.broker
    assert banner.down and banner.degraded
    assert banner.lead == "Part of the service's database cannot be used"
    assert words in banner.detail and banner.since is not None
    assert banner.consequence.startswith("Alerts are still stored and notified; meanwhile ")
    _, _, page = http.request("GET", "/")
    shown = re.search(r'<div id="broker-banner"([^>]*)>(.*?)</div>', page, re.S)
    assert shown is not None and "hidden" not in shown.group(1)
    assert 'data-degraded="1"' in shown.group(1)
    text = html.unescape(re.sub(r"<[^>]+>", "", shown.group(2)))
    assert text.startswith("Part of the service's database cannot be used: ")
    assert words in text
    assert "Alerts are still stored and notified" in text


def _failing(service: CaregiverService) -> set[str]:
    return {f.part.value for f in service.store.side_faults.now()}


def _said_sound(service: CaregiverService, http: Http) -> None:
    health = _healthz(http)
    assert (health["status"], health["database_parts"]) == ("ok", [])
    assert not service.hub.broker.down
    _, _, page = http.request("GET", "/")
    assert re.search(r'<div id="broker-banner"[^>]* hidden>', page)


def test_a_fall_whose_recording_its_table_refuses_is_stored_paged_and_said_without_it(
    mosquitto: Mosquitto,
    paged_service: tuple[CaregiverService, Http],
    receiver: Receiver,
    caregiver_db: str,
) -> None:
    """The recording around the trip is the incident's attachment, not its alert. Its
    window event wrote it to ``recordings`` in the event's own transaction, so a table that
    refused it held the window event with the broker for good, and every event after it from
    the device, the next fall too (neither stored nor paged), while the dashboard said "not
    storing" of the whole database. Now the event is stored and receipted without it, the
    fall pages, the fall's page says its recording could not be stored, the banner and
    /healthz say which part of the database fails until the table is back and read (a table
    that is not there failed a read: tests/test_side_faults_per_table.py), and the next fall's
    recording then stores."""
    service, http = paged_service
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        execute(caregiver_db, "ALTER TABLE recordings RENAME TO recordings_damaged")
        ids = device.incident_fall()
        assert _stored(service, ids["window"]["id"]), "the fall's recording event was held"
        assert service.ingestor.held == 0 and service.ingestor.storage_fault is None
        incident = service.store.incident(ids["incident"])
        assert incident is not None and incident.open and incident.severity == "fall"
        assert service.notifier.deliver_due() == 1
        assert receiver.messages[-1]["title"] == "RetroGuard: FALL - Dad's treadmill"
        _said_faulty(service, http, "recordings", "falls' sensor recordings cannot be stored")
        for shown in (ids["fall"]["id"], ids["trip"]["id"], ids["window"]["id"]):
            status, _, page = http.request("GET", f"/events/{shown}")
            assert status == 200
            assert RECORDING_UNSTORED in html.unescape(page)
            assert "data-plot=" not in page

        again = device.incident_fall()  # the next fall is not held behind it
        assert _stored(service, again["window"]["id"]), "the next fall was held"
        assert service.notifier.deliver_due() == 1
        assert service.ingestor.held == 0

        execute(caregiver_db, "ALTER TABLE recordings_damaged RENAME TO recordings")
        service.store.probe_side_faults()  # the housekeeping look reads them back: over
        _said_sound(service, http)
        third = device.incident_fall()  # and its recording stores
        assert _stored(service, third["window"]["id"])
        assert not service.store.side_faults.failing
        _, _, page = http.request("GET", f"/events/{third['fall']['id']}")
        assert "data-plot=" in page and RECORDING_UNSTORED not in html.unescape(page)
        _, _, page = http.request("GET", f"/events/{ids['fall']['id']}")
        assert RECORDING_UNSTORED in html.unescape(page)  # the first's stays said
        assert service.ingestor.held == 0 and service.ingestor.storage_fault is None
    finally:
        device.close()


def test_recordings_unreadable_are_said_only_where_a_recording_is_or_would_be(
    mosquitto: Mosquitto,
    paged_service: tuple[CaregiverService, Http],
    caregiver_db: str,
) -> None:
    """While the recordings cannot be read, a fall's pages say its recording cannot be read
    now; a call for help's page does not: it never has a recording (the belt keeps running,
    no trip, no window). Before, every incident's page said it, the call for help's too."""
    service, http = paged_service
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        ids = device.incident_fall()
        assert _stored(service, ids["window"]["id"])
        helped = device.event(
            "help",
            severity="critical",
            state="STANDBY",
            reason="help button",
            incident=uuid.uuid4().hex,
        )
        assert _stored(service, helped["id"])
        execute(caregiver_db, "ALTER TABLE recordings RENAME TO recordings_damaged")
        for shown in (ids["fall"]["id"], ids["trip"]["id"], ids["window"]["id"]):
            status, _, page = http.request("GET", f"/events/{shown}")
            assert status == 200 and "data-plot=" not in page
            assert RECORDING_UNREAD in html.unescape(page)
        assert "recordings" in _failing(service)
        status, _, page = http.request("GET", f"/events/{helped['id']}")
        assert status == 200 and "recordings" in _failing(service)
        assert RECORDING_UNREAD not in html.unescape(page)
    finally:
        device.close()


def test_walkers_named_by_id_say_so_on_the_pages_and_healthz_until_their_table_reads(
    mosquitto: Mosquitto,
    paged_service: tuple[CaregiverService, Http],
    receiver: Receiver,
    caregiver_db: str,
) -> None:
    """A fall whose walkers could not be read was paged naming the walker by id, and only
    the log said why: the dashboard looked sound. Now the banner and /healthz say the names
    cannot be read, since when, and that alerts still go out, until a read of them works."""
    service, http = paged_service
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        _roster(device)
        assert service.ingestor.wait_for(lambda: len(service.store.device_walkers(DEVICE)) == 2)
        _said_sound(service, http)
        execute(caregiver_db, "ALTER TABLE device_walkers RENAME TO device_walkers_damaged")
        ids = device.incident_fall(walker="anna")
        assert _stored(service, ids["window"]["id"]), "the fall was not stored"
        assert service.notifier.deliver_due() == 1
        assert receiver.messages[-1]["title"] == "RetroGuard: FALL - anna, Dad's treadmill"
        _said_faulty(service, http, "walkers", "the walkers' names cannot be read or stored")

        execute(caregiver_db, "ALTER TABLE device_walkers_damaged RENAME TO device_walkers")
        _, _, page = http.request("GET", "/")  # the fleet names the card's walker: it reads
        assert "Anna B." in page
        _said_sound(service, http)
    finally:
        device.close()


def test_a_session_let_go_because_its_table_is_missing_is_said_until_it_reads_again(
    mosquitto: Mosquitto,
    paged_service: tuple[CaregiverService, Http],
    caregiver_db: str,
) -> None:
    """A side message its table refused is let go so that the fall behind it stores
    (:meth:`caregiver.ingest.Ingestor._side_fault`); only the log said so, and the physio
    read a progress page with the session missing and no word why. Now the banner and
    /healthz say guided sessions cannot be stored until the table is back and read (the
    housekeeping look), the banner with the table's fault (mutation, mut31: a bare "refused"
    in its place went unnoticed); a table that reads and refuses writes waits for a session
    stored (below)."""
    service, http = paged_service
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        execute(caregiver_db, "ALTER TABLE walk_sessions RENAME TO walk_sessions_damaged")
        started = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        device.session(session_record(DEVICE, started, backward_min=12, longest_min=4))
        ids = device.incident_fall()
        assert _stored(service, ids["window"]["id"]), "the fall was not stored"
        assert service.ingestor.wait_for(lambda: service.ingestor.held == 0)
        assert service.ingestor.rejected == 1
        _said_faulty(service, http, "sessions", "guided sessions cannot be stored")
        # in the table's own words, the ones that let it go (not a bare "refused")
        said = {f.part: f.fault for f in service.store.side_faults.now()}
        assert "walk_sessions" in said[Part.SESSIONS], said
        service.store.probe_side_faults()  # the housekeeping look: the table is still missing
        assert "sessions" in _failing(service)

        # its table missing: what failed is a read of it (a write of a table not there says
        # nothing of its writes), which the housekeeping look clears once it is back; the
        # fall named its walker, and the fleet page its card's, through that table too
        assert {(Table.WALK_SESSIONS, Use.READ)} == {
            f for fault in service.store.side_faults.now() for f in fault.failing
        }
        execute(caregiver_db, "ALTER TABLE walk_sessions_damaged RENAME TO walk_sessions")
        service.store.probe_side_faults()
        assert _failing(service) == set()
        _said_sound(service, http)
        device.session(session_record(DEVICE, started, backward_min=12, longest_min=4))
        assert service.ingestor.wait_for(lambda: service.ingestor.sessions_stored == 1)
        assert _failing(service) == set()
    finally:
        device.close()


def _refuse_writes(database: str, table: str) -> None:
    """``table`` reads but refuses every row written to it (a trigger, on either engine: what
    a permission revoked, a read-only or a full disk do to the service's writes)."""
    if engine_of(database) == "postgresql":
        execute(
            database,
            "CREATE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'writes refused'; END $$",
        )
        execute(
            database,
            f"CREATE TRIGGER {table}_refused BEFORE INSERT OR UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse_writes()",
        )
        return
    for write in ("INSERT", "UPDATE"):
        execute(
            database,
            f"CREATE TRIGGER {table}_refused_{write.lower()} BEFORE {write} ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'writes refused'); END",
        )


def _allow_writes(database: str, table: str) -> None:
    """Undo :func:`_refuse_writes`."""
    if engine_of(database) == "postgresql":
        execute(database, f"DROP TRIGGER {table}_refused ON {table}")
        return
    for write in ("insert", "update"):
        execute(database, f"DROP TRIGGER {table}_refused_{write}")


def _said_in_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the log said of the parts failing: a line at each start and at each end."""
    return [r.getMessage() for r in caplog.records if r.name == "caregiver.storage.side_faults"]


def test_a_session_table_that_reads_but_refuses_writes_is_said_until_a_session_stores(
    mosquitto: Mosquitto,
    paged_service: tuple[CaregiverService, Http],
    caregiver_db: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The housekeeping look reads a failing part's tables: one that reads but refuses writes (a
    permission revoked, a trigger, a read-only or full disk) was said to work at each look
    and to fail again at the next refused write, the banner, /healthz and the log's start and
    end lines coming and going every few seconds. A read clears only a failed read: the
    sessions stay said across the looks, with one line at the start, until a session stores
    once writes are taken again."""
    service, http = paged_service
    device = SimDevice(mosquitto, DEVICE)
    caplog.set_level(logging.INFO, logger="caregiver.storage.side_faults")
    try:
        device.online()
        _refuse_writes(caregiver_db, "walk_sessions")
        started = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        record = session_record(DEVICE, started, backward_min=12, longest_min=4)
        device.session(record)
        ids = device.incident_fall()
        assert _stored(service, ids["window"]["id"]), "the fall was not stored"
        assert service.ingestor.wait_for(lambda: service.ingestor.held == 0)
        assert service.ingestor.rejected == 1
        _said_faulty(service, http, "sessions", "guided sessions cannot be stored")
        assert execute(caregiver_db, "SELECT count(*) FROM walk_sessions") == [(0,)]  # it reads
        for _ in range(3):
            service.store.probe_side_faults()  # the housekeeping looks
            assert _failing(service) == {"sessions"}
            _said_faulty(service, http, "sessions", "guided sessions cannot be stored")

        _allow_writes(caregiver_db, "walk_sessions")
        service.store.probe_side_faults()  # a read still says nothing of writing
        assert _failing(service) == {"sessions"}
        device.session(record)  # the device sends an unreceipted summary again
        assert service.ingestor.wait_for(lambda: service.ingestor.sessions_stored == 1)
        assert service.ingestor.wait_for(lambda: not service.store.side_faults.failing)
        _said_sound(service, http)
        said = _said_in_log(caplog)
        assert len(said) == 2, said
        assert said[0].startswith("guided sessions cannot be stored (caregiver database: ")
        assert "writes refused" in said[0]
        assert said[1] == "sessions works again: guided sessions can be stored"
    finally:
        device.close()


def test_recordings_that_read_but_refuse_writes_are_said_unstored_never_unreadable(
    mosquitto: Mosquitto,
    paged_service: tuple[CaregiverService, Http],
    caregiver_db: str,
) -> None:
    """A recordings table that reads but refuses the fall's recording: the fall's pages say
    it could not be stored, and a stumble whose recording has not come yet is not said to
    be unreadable (its read just worked: only a failed read says so). The part stays said
    across the housekeeping looks, until a recording stores once writes are taken again."""
    service, http = paged_service
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        _refuse_writes(caregiver_db, "recordings")
        ids = device.incident_fall()
        assert _stored(service, ids["window"]["id"]), "the fall's recording event was held"
        _said_faulty(service, http, "recordings", "falls' sensor recordings cannot be stored")
        _, _, page = http.request("GET", f"/events/{ids['fall']['id']}")
        assert RECORDING_UNSTORED in html.unescape(page)
        incident = uuid.uuid4().hex
        trip = device.incident_trip(incident)  # its recording is on its way
        assert _stored(service, trip["id"])
        status, _, page = http.request("GET", f"/events/{trip['id']}")
        assert status == 200 and "data-plot=" not in page
        assert RECORDING_UNREAD not in html.unescape(page)
        assert RECORDING_UNSTORED not in html.unescape(page)
        service.store.probe_side_faults()  # the housekeeping look: the table reads
        assert _failing(service) == {"recordings"}

        _allow_writes(caregiver_db, "recordings")
        service.store.probe_side_faults()
        assert _failing(service) == {"recordings"}
        window = device.incident_window(incident, trip["id"])
        assert _stored(service, window["id"])
        assert service.ingestor.wait_for(lambda: not service.store.side_faults.failing)
        _said_sound(service, http)
        _, _, page = http.request("GET", f"/events/{trip['id']}")
        assert "data-plot=" in page
    finally:
        device.close()


def test_walkers_unreadable_are_said_until_the_tickers_look_reads_them_again(
    mosquitto: Mosquitto,
    paged_service: tuple[CaregiverService, Http],
    caregiver_db: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A part whose read failed is cleared by a read: the housekeeping look at its tables, once
    they are back (not by a look while they are still missing), without a page or a fall
    reading them."""
    service, http = paged_service
    device = SimDevice(mosquitto, DEVICE)
    caplog.set_level(logging.INFO, logger="caregiver.storage.side_faults")
    try:
        device.online()
        execute(caregiver_db, "ALTER TABLE device_walkers RENAME TO device_walkers_damaged")
        ids = device.incident_fall(walker="anna")  # ingest names the walker: by id
        assert _stored(service, ids["window"]["id"]), "the fall was not stored"
        assert "walkers" in _failing(service)
        service.store.probe_side_faults()  # still missing
        _said_faulty(service, http, "walkers", "the walkers' names cannot be read or stored")

        execute(caregiver_db, "ALTER TABLE device_walkers_damaged RENAME TO device_walkers")
        service.store.probe_side_faults()
        assert _failing(service) == set()
        _said_sound(service, http)
        said = [s for s in _said_in_log(caplog) if s.startswith(("the walkers' names", "walkers "))]
        assert len(said) == 2, said
        assert said[0].startswith("the walkers' names cannot be read or stored (")
        assert said[1] == "walkers works again: the walkers' names can be read or stored"
    finally:
        device.close()


def test_a_recording_event_stored_alone_goes_without_its_recording_too(
    mosquitto: Mosquitto,
    tmp_path: Path,
    receiver: Receiver,
    caregiver_db: str,
) -> None:
    """A message stored alone (a held one, retried one at a time) writes its recording in its
    event's own transaction, not at a batch's end: refused, the event is stored all the same,
    its payload saying so."""
    service, _ = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        ids = device.incident_fall()
        assert _stored(service, ids["window"]["id"])
        execute(caregiver_db, "ALTER TABLE recordings RENAME TO recordings_damaged")
        device.seq += 1
        window = dict(ids["window"], id=uuid.uuid4().hex, seq=device.seq)
        topic = f"retroguard/{DEVICE}/event"
        assert service.ingestor.handle(topic, json.dumps(window).encode())
        stored = service.store.event(window["id"])
        assert stored is not None and service.ingestor.storage_fault is None
        assert service.store.recording_unstored(stored)
        assert "recordings" in _failing(service)
    finally:
        device.close()
        service.stop()


def test_a_banner_that_cannot_be_said_costs_no_fall(
    mosquitto: Mosquitto,
    tmp_path: Path,
    receiver: Receiver,
    caregiver_db: str,
) -> None:
    """Saying a part's fault (the banner's callback, :attr:`SideFaults.on_change`) runs
    inside the fall's own transaction when the recording is refused there: a callback that
    raised undid the fall's recording event (the message rejected, its incident's recording
    event not stored) for a banner. The fault is said in the store all the same, and the
    callback's error is logged."""
    service, _ = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    device = SimDevice(mosquitto, DEVICE)

    def broken_banner() -> None:
        raise RuntimeError("the banner's bug")

    try:
        device.online()
        ids = device.incident_fall()
        assert _stored(service, ids["window"]["id"])
        execute(caregiver_db, "ALTER TABLE recordings RENAME TO recordings_damaged")
        service.store.side_faults.on_change = broken_banner
        device.seq += 1
        window = dict(ids["window"], id=uuid.uuid4().hex, seq=device.seq)
        topic = f"retroguard/{DEVICE}/event"
        assert service.ingestor.handle(topic, json.dumps(window).encode())
        stored = service.store.event(window["id"])
        assert stored is not None, "the recording event was undone for the banner's error"
        assert service.store.recording_unstored(stored)
        assert "recordings" in _failing(service)
    finally:
        device.close()
        service.stop()


def test_a_recording_stored_alone_says_its_part_works_only_once_committed(
    mosquitto: Mosquitto,
    tmp_path: Path,
    receiver: Receiver,
    caregiver_db: str,
) -> None:
    """A message stored alone (not in a batch) runs its after-commit actions at once: the
    recordings part was said to work again from inside the recording event's transaction,
    before it committed (a commit that then failed left it said working). Now it is said
    after the commit: the event is there for another connection to read when it is said."""
    service, _ = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    device = SimDevice(mosquitto, DEVICE)
    said: list[bool] = []
    try:
        device.online()
        ids = device.incident_fall()
        assert _stored(service, ids["window"]["id"])
        service.store.side_faults.failed(
            Part.RECORDINGS, "caregiver database: locked", Use.WRITE, Part.RECORDINGS.tables
        )
        device.seq += 1
        window = dict(ids["window"], id=uuid.uuid4().hex, seq=device.seq)

        def committed() -> None:  # another connection sees only what is committed
            rows = execute(caregiver_db, "SELECT 1 FROM events WHERE id = ?", (window["id"],))
            said.append(bool(rows))

        service.store.side_faults.on_change = committed
        topic = f"retroguard/{DEVICE}/event"
        assert service.ingestor.handle(topic, json.dumps(window).encode())
        assert "recordings" not in _failing(service)
        assert said == [True], "the part was said to work before the event committed"
    finally:
        device.close()
        service.stop()


def test_telemetry_stored_in_a_batch_says_its_part_works_again(
    mosquitto: Mosquitto,
    tmp_path: Path,
    receiver: Receiver,
    caregiver_db: str,
) -> None:
    """A batch writes its telemetry at its end, not through each message's handling: the
    figures a telemetry let go had said unstored (:data:`caregiver.ingest.SIDE_PARTS`) stayed
    said after the next batch stored them, until the housekeeping look read the table."""
    service, _ = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    try:
        service.store.side_faults.failed(
            Part.TELEMETRY, "caregiver database: locked", Use.WRITE, Part.TELEMETRY.tables
        )
        telemetry = TelemetryMessage(
            schema=SCHEMA_VERSION,
            device_id=DEVICE,
            wall_time="2026-11-17T09:55:00+00:00",
            outbox_depth=0,
        )
        topic = f"retroguard/{DEVICE}/telemetry"
        assert service.ingestor.handle_batch([(topic, msgspec.json.encode(telemetry))])
        assert "telemetry" not in _failing(service)
    finally:
        service.stop()


def test_every_side_message_let_go_has_a_part_to_be_said_in() -> None:
    """:meth:`Ingestor._side_fault` says a side message let go under its kind's part
    (:data:`SIDE_PARTS`): a kind added to those let go without a part would be a KeyError on
    the ingest thread, just after the alerts behind it were stored."""
    assert set(SIDE_KINDS) <= set(SIDE_PARTS)


def _let_go(service: CaregiverService, device: SimDevice, kind: str, payload: bytes) -> None:
    """``device`` sends ``payload`` on ``kind`` (retained, as a reconnect hands it over) and a
    state behind it: the database refuses the first and stores the state, so the first is let
    go (:meth:`caregiver.ingest.Ingestor._side_fault`) and its part said failing."""
    rejected = service.ingestor.rejected
    device.publish(kind, payload.decode(), retain=True)
    device.set_state("ARMED", "armed by local reset from STANDBY")
    assert service.ingestor.wait_for(
        lambda: service.ingestor.rejected == rejected + 1 and service.ingestor.held == 0
    ), "the side message was not let go"


def _roster_of(device: SimDevice, *walkers: Walker) -> bytes:
    """``device``'s walkers message: the same bytes each time it is handed over again."""
    message = WalkersMessage(
        schema=SCHEMA_VERSION,
        device_id=device.device_id,
        wall_time=dt.datetime.now(dt.UTC).isoformat(),
        walkers=[DEFAULT_WALKER, *walkers],
    )
    return msgspec.json.encode(message)


WALKERS_UNSTORED = "the walkers' names cannot be read or stored"
PROGRESS_UNSTORED = "the walkers' progression cannot be stored"


@pytest.mark.usefixtures("held_tried_at_once")
def test_another_treadmills_unchanged_roster_leaves_a_refused_roster_said(
    mosquitto: Mosquitto,
    paged_service: tuple[CaregiverService, Http],
    caregiver_db: str,
) -> None:
    """The roster's table reads but refuses writes: treadmill-1's new roster is let go and the
    walkers are said failing. Treadmill-2's roster, handed over again unchanged (a reconnect
    hands every retained message over again), writes nothing and is handled whether the table
    takes writes or not: it said the part worked, and the banner and /healthz said all was
    well while the table still refused treadmill-1's walkers, until its next refused roster a
    reconnect later. It says nothing now, nor once the table takes writes again: the part is
    said until a roster is written, treadmill-1's sent again."""
    service, http = paged_service
    first, other = SimDevice(mosquitto, DEVICE), SimDevice(mosquitto, "treadmill-2")
    kept = _roster_of(other, ANNA)
    try:
        first.online()
        other.online()
        first.publish("walkers", _roster_of(first, ANNA).decode(), retain=True)
        other.publish("walkers", kept.decode(), retain=True)
        wait_all_handled(service, first, other)
        assert len(service.store.device_walkers(other.device_id)) == 2
        _refuse_writes(caregiver_db, "device_walkers")

        bob = Walker("bob", "Bob")
        changed = _roster_of(first, ANNA, bob)
        _let_go(service, first, "walkers", changed)
        _said_faulty(service, http, "walkers", WALKERS_UNSTORED)
        other.publish("walkers", kept.decode(), retain=True)  # the same, handed over again
        wait_all_handled(service, first, other)
        assert _failing(service) == {"walkers"}
        _said_faulty(service, http, "walkers", WALKERS_UNSTORED)

        _allow_writes(caregiver_db, "device_walkers")
        other.publish("walkers", kept.decode(), retain=True)  # still nothing written
        wait_all_handled(service, first, other)
        assert _failing(service) == {"walkers"}
        first.publish("walkers", changed.decode(), retain=True)  # its next connection
        wait_all_handled(service, first, other)
        assert ("bob", "Bob") in service.store.device_walkers(DEVICE)
        assert service.ingestor.wait_for(lambda: not service.store.side_faults.failing)
        _said_sound(service, http)
    finally:
        first.close()
        other.close()


@pytest.mark.usefixtures("held_tried_at_once")
def test_a_walkers_unchanged_stage_leaves_another_walkers_refused_stage_said(
    mosquitto: Mosquitto,
    paged_service: tuple[CaregiverService, Http],
    caregiver_db: str,
) -> None:
    """The same treadmill's retained messages: Bob's new stage is refused by the stages'
    table and let go, the progression said failing; Anna's stage, handed over again unchanged,
    writes nothing and leaves it said, before and after the table takes writes again, until
    Bob's stage sent again is written."""
    service, http = paged_service
    device = SimDevice(mosquitto, DEVICE)
    annas = payloads.encode(msgspec.structs.replace(STAGE_EXAMPLE, walker=ANNA)).encode()
    try:
        device.online()
        device.publish("stage/bob", payloads.encode(STAGE_EXAMPLE), retain=True)
        device.publish("stage/anna", annas.decode(), retain=True)
        wait_all_handled(service, device)
        assert service.store.walker_stage(DEVICE, "anna") is not None
        _refuse_writes(caregiver_db, "walker_stages")

        moved = msgspec.structs.replace(
            STAGE_EXAMPLE, stage=2, wall_time="2026-03-10T10:00:00.000+00:00"
        )
        _let_go(service, device, "stage/bob", payloads.encode(moved).encode())
        _said_faulty(service, http, "progress", PROGRESS_UNSTORED)
        device.publish("stage/anna", annas.decode(), retain=True)  # the same, handed over again
        wait_all_handled(service, device)
        assert _failing(service) == {"progress"}
        _said_faulty(service, http, "progress", PROGRESS_UNSTORED)

        _allow_writes(caregiver_db, "walker_stages")
        device.publish("stage/anna", annas.decode(), retain=True)
        wait_all_handled(service, device)
        assert _failing(service) == {"progress"}
        device.publish("stage/bob", payloads.encode(moved), retain=True)
        wait_all_handled(service, device)
        stored = service.store.walker_stage(DEVICE, "bob")
        assert stored is not None and stored.stage == 2
        assert service.ingestor.wait_for(lambda: not service.store.side_faults.failing)
        _said_sound(service, http)
    finally:
        device.close()


def _progress(week: str, prescribed: int) -> bytes:
    """The device's retained progress message (only what its part keeps matters here)."""
    message = ProgressMessage(
        schema=SCHEMA_VERSION,
        device_id=DEVICE,
        wall_time=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        session="none",
        week=week,
        week_sessions=0,
        week_at_goal=0,
        week_backward_s=0.0,
        week_longest_backward_s=0.0,
        goal_sessions=3,
        goal_backward_s=600.0,
        week_prescribed=prescribed,
    )
    return msgspec.json.encode(message)


def _summary() -> bytes:
    """A guided session's summary, a new session each call."""
    from firmware.session.record import session_payload

    started = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    record = session_record(DEVICE, started, backward_min=12, longest_min=4)
    return session_payload(record).encode()


def _answer(service: CaregiverService) -> bytes:
    """The treadmill's answer (a refusal) to a new plan command the service sent it."""
    request_id = uuid.uuid4().hex
    sent = SentCommand(request_id, DEVICE, CommandName.PLAN, "plan", "ann", service.clock())
    service.store.command_sent(sent)
    return reply_payload(DEVICE, "plan", request_id, False, error="plan: too long").encode()


@pytest.mark.parametrize(
    ("kind", "part", "table"),
    [
        ("session", Part.SESSIONS, Table.WALK_SESSIONS),
        ("progress", Part.PROGRESS, Table.PRESCRIBED_WEEKS),
        ("reply", Part.COMMANDS, Table.DEVICE_COMMANDS),
    ],
)
def test_a_side_message_handled_again_without_a_write_clears_no_failed_write(
    mosquitto: Mosquitto,
    tmp_path: Path,
    receiver: Receiver,
    caregiver_db: str,
    kind: str,
    part: Part,
    table: Table,
) -> None:
    """The other kinds whose handling may write nothing (beside the roster and the stage,
    above): a session summary no more amended than the one kept, a progress message saying the
    week's count kept, an answer to a command already recorded. Each is handled whether the
    part takes writes or not, so it says nothing of a write that failed; a message of the kind
    that writes rows of the part does."""
    service, _ = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    topic = f"retroguard/{DEVICE}/{kind}"
    faults = service.store.side_faults
    writing: dict[str, Callable[[int], bytes]] = {
        "session": lambda _: _summary(),
        "progress": lambda n: _progress("2026-W49", 2 + n),
        "reply": lambda _: _answer(service),
    }
    try:
        kept = writing[kind](0)
        assert service.ingestor.handle(topic, kept)
        faults.failed(part, "caregiver database: writes refused", Use.WRITE, (table,))
        assert service.ingestor.handle(topic, kept)  # the same again: nothing written
        assert _failing(service) == {part.value}
        assert service.ingestor.handle(topic, writing[kind](1))
        assert _failing(service) == set()
        assert service.ingestor.rejected == 0
    finally:
        service.stop()


def test_an_acks_confirmation_says_nothing_of_the_commands_part(
    mosquitto: Mosquitto,
    tmp_path: Path,
    receiver: Receiver,
    caregiver_db: str,
) -> None:
    """A treadmill's answer to an ``ack`` is written to the events it closed (an alert's
    table), not to the commands' part: before, any reply said that part worked again, while a
    plan's answer could still not be stored."""
    service, _ = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    device = SimDevice(mosquitto, DEVICE, answers_acks=False)
    try:
        device.online()
        fall = device.fall()
        assert _stored(service, fall["id"])
        service.acknowledge(DEVICE, fall["id"], "Ann")
        request_id = device.wait_command("ack")["id"]
        service.store.side_faults.failed(
            Part.COMMANDS, "caregiver database: refused", Use.WRITE, Part.COMMANDS.tables
        )
        answer = reply_payload(DEVICE, "ack", request_id, True, {"acknowledged": None})
        assert service.ingestor.handle(f"retroguard/{DEVICE}/reply", answer.encode())
        confirmed = service.store.event(fall["id"])
        assert confirmed is not None and confirmed.ack_confirmed  # its events written
        assert _failing(service) == {"commands"}
    finally:
        device.close()
        service.stop()
