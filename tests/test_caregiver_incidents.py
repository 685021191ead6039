"""One fall, one incident (docs/incidents.md): grouped, paged by its worst event, closed once.

Real Mosquitto, the real caregiver service on a fake clock, a local Apprise receiver.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from caregiver.service import CaregiverService
from core.protocol.messages import ImuMarks
from core.protocol.recording import decode_recording, encode_recording
from core.samples import ImuSample
from tests.caregiver_support import Receiver, SimDevice
from tests.test_caregiver_service import _fake_clock_service, _paths
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

DEVICE = "treadmill-1"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _incident() -> str:
    return uuid.uuid4().hex


def _stored(service: CaregiverService, event_id: str) -> bool:
    return service.ingestor.wait_for(lambda: service.store.event(event_id) is not None)


def test_a_stumble_that_becomes_a_fall_is_one_incident_paged_as_a_fall_and_closed_once(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    service, clock = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    try:
        device = SimDevice(mosquitto, DEVICE)
        device.online()
        incident = _incident()
        trip = device.event(
            "stumble",
            severity="warning",
            state="TRIPPED",
            reason="trunk rotated",
            incident=incident,
        )
        assert _stored(service, trip["id"])
        assert service.notifier.deliver_due() == 0  # a stumble waits for the walker's reset
        fall = device.event(
            "fall", severity="critical", state="TRIPPED", reason="impact 4 g", incident=incident
        )
        assert _stored(service, fall["id"])
        assert service.notifier.deliver_due() == 1  # the fall pages at once
        assert receiver.messages[0]["title"] == "RetroGuard: FALL - Dad's treadmill"
        worse = device.event(
            "no_recovery",
            severity="critical",
            state="TRIPPED",
            reason="lying still 10 s",
            incident=incident,
        )
        assert _stored(service, worse["id"])
        service.notifier.deliver_due()
        # the dashboard's words for it ("NOT GETTING UP after a fall on ..."), not another
        assert receiver.messages[1]["title"] == (
            "RetroGuard: NOT GETTING UP after a fall - Dad's treadmill"
        )
        alerts = service.store.alerts(DEVICE)
        assert len(alerts) == 1 and alerts[0].kind == "no_recovery"  # one alert, worst kind
        (stored,) = service.store.incidents_for(DEVICE)
        assert stored.id == incident and stored.severity == "no_recovery" and stored.open

        # any event's page closes the incident it shows (up to its newest alert, seen there)
        service.acknowledge(DEVICE, fall["id"], "Ann", seen=worse["id"])
        command = device.wait_command("ack")
        assert command["incident"] == incident and command["via"] == "dashboard"
        closed = service.store.incident(incident)
        assert closed is not None and not closed.open
        assert (closed.closed_by, closed.closed_via) == ("Ann", "dashboard")
        clock.advance(3600)
        assert service.alerting.tick() == 0  # no more reminders
    finally:
        service.stop()


def test_the_walker_s_i_m_ok_after_not_getting_up_names_it_as_the_dashboard_does(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """The follow-up lowered the alarm's words into its sentence: "pressed reset after the not
    getting up after a fall", then "after the fall, not getting up", which read as if the
    walker, in a message saying she is OK, still was not getting up. It names the alert, as
    a closed incident's headline does, and says it is closed."""
    service, _ = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    try:
        device = SimDevice(mosquitto, DEVICE)
        device.online()
        incident = _incident()
        lying = device.event(
            "no_recovery",
            severity="critical",
            state="TRIPPED",
            reason="lying still 10 s",
            incident=incident,
        )
        assert _stored(service, lying["id"])
        assert service.notifier.deliver_due() == 1
        ok = device.event(
            "ok", severity="info", state="TRIPPED", reason="I'm OK", incident=incident, by="walker"
        )
        assert _stored(service, ok["id"])
        assert service.notifier.deliver_due() == 1
        page, fine = receiver.messages
        assert page["title"] == "RetroGuard: NOT GETTING UP after a fall - Dad's treadmill"
        assert fine["message"].startswith(
            "The walker pressed I'm OK on Dad's treadmill: the alert 'Fall, not getting up' is "
            "closed. No further reminders. "
        )
    finally:
        service.stop()


def test_the_walker_pressing_reset_closes_a_stumble_without_paging_anyone(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    service, clock = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    try:
        device = SimDevice(mosquitto, DEVICE)
        incident = _incident()
        device.event("stumble", severity="warning", state="TRIPPED", reason="r", incident=incident)
        ok = device.event(
            "ok", severity="info", state="TRIPPED", reason="I'm OK", incident=incident, by="walker"
        )
        device.event("reset", severity="info", state="ARMED", reason="armed", incident=incident)
        assert _stored(service, ok["id"])
        clock.advance(3600)
        service.alerting.tick()
        assert service.notifier.deliver_due() == 0 and receiver.messages == []
        closed = service.store.incident(incident)
        assert closed is not None and closed.closed_by_walker
        assert service.store.alerts(DEVICE)[0].status == "logged"
    finally:
        service.stop()


def test_home_assistants_acknowledgement_relayed_by_the_device_stops_the_paging(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """Before incidents HA's button acked "latest" on the device and the service kept paging."""
    service, clock = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    try:
        device = SimDevice(mosquitto, DEVICE)
        incident = _incident()
        fall = device.event(
            "fall", severity="critical", state="TRIPPED", reason="r", incident=incident
        )
        assert _stored(service, fall["id"])
        service.notifier.deliver_due()  # (a page not sent before the close is not sent)
        closed = device.event(
            "closed",
            severity="info",
            state="TRIPPED",
            reason="acknowledged",
            incident=incident,
            by="home-assistant",
            via="home-assistant",
        )
        assert _stored(service, closed["id"])
        service.notifier.deliver_due()
        assert _paths(receiver) == ["/ann", "/ann"]  # the page, then who answered
        assert "home-assistant" in receiver.messages[1]["message"]
        clock.advance(3600)
        assert service.alerting.tick() == 0
    finally:
        service.stop()


def test_a_fall_after_a_stumble_was_acknowledged_reopens_the_incident(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    service, _ = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    try:
        device = SimDevice(mosquitto, DEVICE)
        incident = _incident()
        trip = device.event(
            "stumble", severity="warning", state="TRIPPED", reason="r", incident=incident
        )
        assert _stored(service, trip["id"])
        service.acknowledge(DEVICE, trip["id"], "Ann")
        fall = device.event(
            "fall", severity="critical", state="TRIPPED", reason="impact", incident=incident
        )
        assert _stored(service, fall["id"])
        reopened = service.store.incident(incident)
        assert reopened is not None and reopened.open and reopened.severity == "fall"
        assert service.notifier.deliver_due() == 1  # paged: worse than what was acknowledged
    finally:
        service.stop()


@pytest.mark.parametrize("then", ["help", "fault"])
def test_a_call_for_help_or_a_fault_after_a_fall_was_acknowledged_pages_again(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str, then: str
) -> None:
    """Neither ranks above a fall, yet someone must hear it: joining the closed incident
    must not swallow it (it did: the incident stayed closed and nobody was paged)."""
    service, _ = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    try:
        device = SimDevice(mosquitto, DEVICE)
        incident = _incident()
        fall = device.event(
            "no_recovery", severity="critical", state="TRIPPED", reason="r", incident=incident
        )
        assert _stored(service, fall["id"])
        service.notifier.deliver_due()
        service.acknowledge(DEVICE, fall["id"], "Ann")
        service.notifier.deliver_due()  # whoever was paged hears Ann answered
        closed = service.store.incident(incident)
        assert closed is not None and not closed.open
        later = device.event(
            then, severity="critical", state="TRIPPED", reason="r", incident=incident
        )
        assert _stored(service, later["id"])
        reopened = service.store.incident(incident)
        assert reopened is not None and reopened.open
        assert reopened.severity == "no_recovery"  # still its worst event
        assert service.notifier.deliver_due() == 1  # paged again
    finally:
        service.stop()


def test_an_arming_press_does_not_answer_a_call_for_help(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """A call for help made in STANDBY is an incident of its own; the walk armed after it
    (a reset without an incident) leaves it to a caregiver (docs/incidents.md)."""
    service, _ = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    try:
        device = SimDevice(mosquitto, DEVICE)
        incident = _incident()
        device.event("help", severity="critical", state="STANDBY", reason="r", incident=incident)
        armed = device.reset()
        assert _stored(service, armed["id"])
        (alert,) = service.store.alerts(DEVICE)
        assert alert.kind == "help" and alert.status == "paging"
        still = service.store.incident(incident)
        assert still is not None and still.open
    finally:
        service.stop()


def test_a_window_is_stored_once_compactly_and_plotted_with_its_marks(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    service, _ = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    try:
        device = SimDevice(mosquitto, DEVICE)
        incident = _incident()
        trip = device.event(
            "stumble", severity="warning", state="TRIPPED", reason="r", incident=incident
        )
        samples = [ImuSample(10.0 + i / 100, 0.0, -1.0, 0.1, 5.0, 0.0, 0.0) for i in range(1400)]
        recording = encode_recording(
            samples,
            trip_t=14.0,
            accel_range_g=8,
            gyro_range_dps=1000,
            upright=(0.0, -1.0, 0.0),
            marks=ImuMarks(impact=1.5),
        )
        window = device.event(
            "window",
            severity="info",
            state="TRIPPED",
            reason="imu",
            incident=incident,
            of=trip["id"],
            recording=msgspec.to_builtins(recording),
        )
        assert _stored(service, window["id"])
        blob = service.store.recording(trip["id"])
        assert blob is not None and len(blob) < 20_000
        back = decode_recording(msgspec.msgpack.decode(blob, type=type(recording)))
        assert len(back) == 1400 and back[0].t == pytest.approx(-4.0)
        stored = service.store.event(window["id"])
        assert stored is not None and "samples" not in (stored.reason or "")
        trip_row = service.store.event(trip["id"])
        assert trip_row is not None and trip_row.has_window
    finally:
        service.stop()


def test_a_test_alarm_reaches_every_contact_as_a_test(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    service, _ = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    try:
        device = SimDevice(mosquitto, DEVICE)
        test = device.event(
            "test", severity="warning", state="STANDBY", reason="test alarm sent by Ann"
        )
        assert _stored(service, test["id"])
        assert service.notifier.deliver_due() == 2
        assert sorted(_paths(receiver)) == ["/ann", "/bob"]
        assert all(m["title"].startswith("RetroGuard TEST alarm") for m in receiver.messages)
        assert service.store.open_incidents(DEVICE) == []  # a test is no incident
    finally:
        service.stop()


def test_a_held_stumble_that_becomes_a_held_kind_stays_held_for_the_walkers_reset(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """With faults also held for the walker's reset (``policy.fault = "page_unless_reset"``),
    a stumble that becomes a fault pages no one at once: the walker still has the grace to
    press reset, and only when it runs out is the fault paged."""
    service, clock = _fake_clock_service(
        mosquitto,
        tmp_path,
        receiver,
        database=caregiver_db,
        fault="page_unless_reset",
        reset_grace_s=30.0,
    )
    try:
        device = SimDevice(mosquitto, DEVICE)
        device.online()
        incident = _incident()
        trip = device.event(
            "stumble",
            severity="warning",
            state="TRIPPED",
            reason="trunk rotated",
            incident=incident,
        )
        assert _stored(service, trip["id"])
        fault = device.event(
            "fault", severity="warning", state="FAULT", reason="IMU silent", incident=incident
        )
        assert _stored(service, fault["id"])
        assert service.notifier.deliver_due() == 0
        clock.advance(29)
        assert service.alerting.tick() == 0
        assert receiver.messages == []
        clock.advance(1)
        assert service.alerting.tick() == 1
        assert service.notifier.deliver_due() == 1
        assert receiver.messages[0]["title"].startswith("RetroGuard: Monitor fault")
        device.close()
    finally:
        service.stop()


def test_a_milder_event_joining_a_paged_fall_neither_pages_again_nor_renames_the_alert(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """A fall paged Ann; the monitor then faulted in the same incident. Nobody is paged again
    (no second "FALL", no "Monitor fault" for a fall), and the alert still pages as a fall."""
    service, _ = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    try:
        device = SimDevice(mosquitto, DEVICE)
        device.online()
        incident = _incident()
        fall = device.event(
            "fall", severity="critical", state="TRIPPED", reason="impact", incident=incident
        )
        assert _stored(service, fall["id"])
        assert service.notifier.deliver_due() == 1
        fault = device.event(
            "fault", severity="warning", state="FAULT", reason="IMU silent", incident=incident
        )
        assert _stored(service, fault["id"])
        assert service.notifier.deliver_due() == 0
        (alert,) = service.alerting.alerts(DEVICE)
        assert (alert.kind, alert.status, alert.event_id) == ("fall", "paging", fall["id"])
        assert _paths(receiver) == ["/ann"]
        device.close()
    finally:
        service.stop()


def test_a_milder_event_arriving_after_the_ack_does_not_open_the_incident_again(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """The fall was acknowledged; the stumble that began it arrives late (the monitor's
    outbox catching up). It joins the closed incident: nobody is paged, now or after the
    walker's grace, and the incident stays closed."""
    service, clock = _fake_clock_service(
        mosquitto, tmp_path, receiver, database=caregiver_db, reset_grace_s=30.0
    )
    try:
        device = SimDevice(mosquitto, DEVICE)
        device.online()
        incident = _incident()
        fall = device.event(
            "fall", severity="critical", state="TRIPPED", reason="impact", incident=incident
        )
        assert _stored(service, fall["id"])
        service.acknowledge(DEVICE, fall["id"], "bob")
        service.notifier.deliver_due()
        sent = len(receiver.messages)
        late = device.event(
            "stumble", severity="warning", state="TRIPPED", reason="trunk", incident=incident
        )
        assert _stored(service, late["id"])
        clock.advance(60)
        assert service.alerting.tick() == 0
        assert service.notifier.deliver_due() == 0
        assert len(receiver.messages) == sent
        stored = service.store.incident(incident)
        assert stored is not None and not stored.open
        device.close()
    finally:
        service.stop()
