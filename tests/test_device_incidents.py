"""Incidents on the device record (firmware/storage/incidents.py), on a real SQLite file.

Who closed each incident, how and when; its worst event; what an ``ack``
names; and that none of it is lost across a spell in the memory fallback.
"""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

from core.protocol.commands import Ack
from core.protocol.events import INCIDENT_TYPES, Event, EventType
from core.protocol.topics import Topics
from firmware.mqtt.status import incident_message
from firmware.storage import incidents
from firmware.storage.database import FileDatabase
from firmware.storage.outbox import Outbox
from firmware.storage.status import IncidentEventRow
from tests.app_support import TripAt, close_rigs, make_rig

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


@pytest.mark.parametrize("then", [EventType.HELP, EventType.FAULT])
def test_a_call_for_help_or_a_fault_after_a_caregiver_closed_it_opens_it_again(
    outbox: Outbox, tmp_path: Path, then: EventType
) -> None:
    fall = event(EventType.NO_RECOVERY)
    outbox.enqueue_event(fall)
    outbox.close_incident(Ack(fall.id, "Ann", via="dashboard"), closing)
    assert not record(tmp_path).open
    outbox.enqueue_event(event(then))
    again = record(tmp_path)
    assert again.open and again.severity == "no_recovery"


def test_an_alert_from_before_incidents_is_acknowledged_alone(outbox: Outbox) -> None:
    old = event(EventType.FALL, incident=None)
    outbox.enqueue_event(old)
    done = outbox.close_incident(Ack(by="Ann"), closing)
    assert done.incident is None and done.event_id == old.id and done.closed_event is None
    assert outbox.acknowledged_by(old.id) == "Ann"
    with pytest.raises(LookupError, match="no incident"):
        outbox.close_incident(Ack(incident="d" * 32, by="Ann"), closing)


CLOSINGS: dict[str, Event | None] = {
    "open": None,
    "ok": event(EventType.OK, by="walker"),
    "closed": closing(INCIDENT, "Ann", "dashboard"),
}


@pytest.mark.parametrize("between", sorted(CLOSINGS))
@pytest.mark.parametrize(
    "first, then",
    sorted(itertools.permutations(INCIDENT_TYPES, 2)),
    ids=lambda kind: kind.value,
)
def test_the_record_and_the_retained_message_tell_an_incident_alike(
    tmp_path: Path, first: EventType, then: EventType, between: str
) -> None:
    """The device's record (what an ``ack`` answers with) and its retained ``incident``
    message (what Home Assistant shows) name the same worst event and agree whether it is
    open, whatever came first and whoever closed it between — they once disagreed on a help
    request after a fall, and on a worse event after the walker's "I'm OK"."""
    outbox = Outbox(FileDatabase(tmp_path / "d.db"), Topics("retroguard", DEVICE))
    closer = CLOSINGS[between]
    events = [event(first), *([closer] if closer is not None else []), event(then)]
    for stored in events:
        outbox.enqueue_event(stored)
    rows = [
        IncidentEventRow(n, e.id, e.type, e.wall_time, e.incident, e.by, e.via)
        for n, e in enumerate(events, start=1)
    ]
    retained = incident_message(DEVICE, rows, events[-1].wall_time)
    recorded = record(tmp_path)
    assert (retained.severity, retained.open) == (recorded.severity, recorded.open)


def test_a_call_for_help_after_a_fall_makes_it_a_help_incident(
    outbox: Outbox, tmp_path: Path
) -> None:
    outbox.enqueue_event(event(EventType.FALL))
    outbox.enqueue_event(event(EventType.HELP))
    assert record(tmp_path).severity == "help"
    outbox.enqueue_event(event(EventType.NO_RECOVERY))
    assert record(tmp_path).severity == "no_recovery"


# -- across a restart of the monitor ---------------------------------------------------------


def _tripped_then_stopped(tmp_path: Path) -> str:
    """A walk that tripped, then a monitor that stopped with the incident open (a crash or a
    power cut while the walker was still on the floor); returns the incident."""
    rig = make_rig(tmp_path, detector=TripAt(3.0))
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(2.5)
    assert rig.state == "TRIPPED"
    (trip,) = [s.event for s in rig.app.stored_events() if s.event.type is EventType.STUMBLE]
    assert trip.incident is not None
    rig.app.close()
    return trip.incident


@pytest.mark.usefixtures(close_rigs.__name__)
def test_a_restarted_monitor_carries_the_open_incident_and_re_arming_closes_it(
    tmp_path: Path,
) -> None:
    incident = _tripped_then_stopped(tmp_path)
    rig = make_rig(tmp_path)  # the same database: the next start
    rig.run_for(1.0)
    assert rig.app.controller.incident == incident
    rig.press_reset()
    assert rig.state == "ARMED"
    stored = [s.event for s in rig.app.stored_events()]
    ok = [e for e in stored if e.type is EventType.OK]
    assert [e.incident for e in ok] == [incident]
    assert stored[-1].type is EventType.RESET and stored[-1].incident == incident
    conn = sqlite3.connect(tmp_path / "events.db")
    try:
        closed = incidents.find(conn, incident, "treadmill-1")
    finally:
        conn.close()
    assert closed is not None and (closed.closed_by, closed.closed_via) == ("walker", "walker")
    assert rig.app.controller.incident is None  # the next trip is a new incident


def test_a_run_that_moved_on_keeps_its_own_incident(tmp_path: Path) -> None:
    """Told late of an old open incident, a run that already has one of its own, or was
    re-armed, leaves the old one to the caregivers."""
    rig = make_rig(tmp_path, detector=TripAt(3.0))
    rig.run_for(1.0)
    rig.press_reset()
    controller = rig.app.controller
    assert not controller.carry_on_incident("a" * 32)  # ARMED
    rig.run_for(2.5)
    own = controller.incident
    assert own is not None
    assert not controller.carry_on_incident("a" * 32)
    assert controller.incident == own
    rig.press_reset()  # re-armed: its incident is over
    assert rig.state == "ARMED" and controller.incident is None
    # a restarted courier reads the record before the re-arm reached it
    assert not controller.carry_on_incident(own)
    assert controller.incident is None
    rig.app.close()


def test_a_help_request_made_while_walking_is_not_carried_on(outbox: Outbox) -> None:
    """Re-arming never closes a help request made while armed (a caregiver does): a
    restarted monitor does not take it as its open incident."""
    outbox.enqueue_event(event(EventType.HELP))
    assert outbox.database.read(lambda conn: incidents.open_on_the_belt(conn, DEVICE)) is None
    outbox.enqueue_event(event(EventType.STUMBLE, incident="d" * 32))
    assert outbox.database.read(lambda conn: incidents.open_on_the_belt(conn, DEVICE)) == "d" * 32
