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
after it), and the fall goes over the real broker."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from caregiver.service import CaregiverService
from tests.caregiver_db import execute
from tests.caregiver_support import WAIT, Receiver, SimDevice
from tests.test_caregiver_service import _fake_clock_service
from tests.test_caregiver_whose_incident import _ok, _roster
from tools.broker import Mosquitto, mosquitto_available

DEVICE = "treadmill-1"

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

SIDE_TABLES = ("device_walkers", "walk_sessions")
"""What naming a walker reads (:func:`caregiver.walkers.offered`): the device's roster and
the walkers of its sessions. Nothing else the ingest of a fall, its page, its reminders and
its follow-ups read is outside the tables the alert itself is written to (events, devices,
incidents, alerts, notifications, recordings)."""


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
