"""Incidents on the device record (firmware/storage/incidents.py), on a real SQLite file.

Who closed each incident, how and when; its worst event; what an ``ack``
names; and that none of it is lost across a spell in the memory fallback.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.protocol.commands import Ack
from core.protocol.events import Event, EventType
from core.protocol.topics import Topics
from firmware.storage import incidents
from firmware.storage.database import FileDatabase
from firmware.storage.outbox import Outbox

DEVICE = "tm-1"
INCIDENT = "c" * 32


def event(kind: EventType, incident: str | None = INCIDENT, **extra: str) -> Event:
    return Event.now(kind, DEVICE, 1.0, "TRIPPED", kind.value, incident=incident, **extra)


def closing(incident: str, by: str, via: str) -> Event:
    return event(EventType.CLOSED, incident, by=by, via=via)


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(FileDatabase(tmp_path / "d.db"), Topics("retroguard", DEVICE))


def record(directory: Path) -> incidents.Incident:
    """The incident as the outbox's file has it (read on a connection of its own)."""
    conn = sqlite3.connect(directory / "d.db")
    try:
        found = incidents.find(conn, INCIDENT, DEVICE)
    finally:
        conn.close()
    assert found is not None
    return found


def test_the_incident_takes_its_worst_event_and_the_walker_closes_it(
    outbox: Outbox, tmp_path: Path
) -> None:
    for kind in (EventType.STUMBLE, EventType.FALL, EventType.WINDOW, EventType.NO_RECOVERY):
        outbox.enqueue_event(event(kind))
    assert record(tmp_path).severity == "no_recovery" and record(tmp_path).open
    outbox.enqueue_event(event(EventType.OK, by="walker"))
    outbox.enqueue_event(event(EventType.RESET))
    closed = record(tmp_path)
    assert (closed.closed_by, closed.closed_via) == ("walker", "walker")
    assert closed.closed_wall is not None
    with pytest.raises(LookupError):  # nothing open: nothing to close
        outbox.close_incident(Ack(), closing)


def test_an_ack_by_one_of_its_events_closes_it_once_and_keeps_who(
    outbox: Outbox, tmp_path: Path
) -> None:
    fall = event(EventType.FALL)
    outbox.enqueue_event(event(EventType.STUMBLE))
    outbox.enqueue_event(fall)
    done = outbox.close_incident(Ack(fall.id, "Ann", via="notification"), closing)
    assert done.incident == INCIDENT and not done.already and done.closed_event is not None
    assert (done.closed_event.by, done.closed_event.via) == ("Ann", "notification")
    closed = record(tmp_path)
    assert (closed.closed_by, closed.closed_via) == ("Ann", "notification")
    again = outbox.close_incident(Ack(incident=INCIDENT, by="Bob", via="dashboard"), closing)
    assert again.already and again.closed_event is None and again.by == "Ann"
    assert outbox.acknowledged_by(fall.id) == "Ann"
    queued = [r.payload for r in outbox.fetch_after(0, 100)]
    assert sum('"closed"' in p for p in queued) == 1  # one closed event went out


def test_a_worse_event_after_a_caregiver_closed_it_opens_it_again(
    outbox: Outbox, tmp_path: Path
) -> None:
    outbox.enqueue_event(event(EventType.STUMBLE))
    outbox.close_incident(Ack(by="Ann", via="dashboard"), closing)
    assert not record(tmp_path).open
    outbox.enqueue_event(event(EventType.FALL))
    reopened = record(tmp_path)
    assert reopened.open and reopened.severity == "fall"
    done = outbox.close_incident(Ack(by="Bob", via="home-assistant"), closing)
    assert not done.already and record(tmp_path).closed_by == "Bob"


def test_an_alert_from_before_incidents_is_acknowledged_alone(outbox: Outbox) -> None:
    old = event(EventType.FALL, incident=None)
    outbox.enqueue_event(old)
    done = outbox.close_incident(Ack(by="Ann"), closing)
    assert done.incident is None and done.event_id == old.id and done.closed_event is None
    assert outbox.acknowledged_by(old.id) == "Ann"
    with pytest.raises(LookupError, match="no incident"):
        outbox.close_incident(Ack(incident="d" * 32, by="Ann"), closing)
