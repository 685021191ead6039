"""Rule 4 (nothing is lost) where hand mutation (mut40) of the device's outbox, its publisher
and the caregiver service's escalation found no test noticing.

Each test names the mutant it kills. Real SQLite files; where the publisher is concerned, a
real Mosquitto with the reporter's clock in the test's hands (as :mod:`tests.test_mqtt_republish`);
where the caregiver service is concerned, the service on a real database file and a real
Mosquitto on a fake clock, its notifications sent to a local HTTP receiver
(as :mod:`tests.test_caregiver_escalation`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.protocol.commands import Ack
from core.protocol.events import Event, EventType
from core.protocol.payloads import receipt_payload
from core.protocol.topics import Topics
from firmware.mqtt import MqttReporter
from firmware.storage.outbox import Outbox
from tests.caregiver_support import Receiver, SimDevice
from tests.mqtt_helpers import WAIT, Subscriber, fall, info, ready_reporter
from tests.test_caregiver_service import _fake_clock_service, _paths
from tests.test_mqtt_republish import BASE_S, Clock, all_acked, live_for
from tools.broker import Mosquitto, mosquitto_available

DEVICE = "tm-1"
TOPICS = Topics("retroguard", DEVICE)


def test_a_start_event_outlives_newer_telemetry_when_the_outbox_is_full(tmp_path: Path) -> None:
    """Over its bound the outbox drops the oldest telemetry first, and a start or stop event
    only when no telemetry is left: the dashboard's session history (walked from when to
    when) outlives the health figures of a long outage. Mutant that survived: an
    informational event queued at the telemetry's priority, so the bound dropped the session's
    start, being older, before the figures queued after it."""
    outbox = Outbox(tmp_path / "o.db", TOPICS, max_rows=2)
    start = info(DEVICE, EventType.START, 1.0)
    outbox.enqueue_event(start)
    outbox.enqueue_telemetry('{"t":1}')
    outbox.enqueue_telemetry('{"t":2}')  # 3 rows > 2: one must go
    kept = [r.payload for r in outbox.fetch_after(0, 10)]
    assert len(kept) == 2
    assert start.id in kept[0], "the start event was dropped before the telemetry"
    assert kept[1] == '{"t":2}'
    assert outbox.dropped == 1


def test_an_acknowledgement_s_closed_event_waits_for_the_caregiver_s_receipt_and_is_never_dropped(
    tmp_path: Path,
) -> None:
    """Ann acknowledged the fall from Home Assistant: the treadmill closes the incident and
    tells the caregiver service with a ``closed`` event. That event is kept like the fall:
    the broker's PUBACK only marks it awaiting the service's receipt (sent again until the
    service confirms it, else the service, having missed it, kept reminding everyone of a fall
    Ann had answered), and start and stop events filling the outbox never drop it. Mutant that
    survived: the ``closed`` event queued as an informational event, forgotten at the PUBACK
    and dropped by the bound."""
    incident = "c" * 32
    outbox = Outbox(tmp_path / "o.db", TOPICS, max_rows=2, receipts=True)
    outbox.enqueue_event(
        Event.now(EventType.FALL, DEVICE, 1.0, "TRIPPED", "impact", incident=incident)
    )

    def closing(incident: str, by: str, via: str) -> Event:
        return Event.now(EventType.CLOSED, DEVICE, 2.0, "TRIPPED", "closed", incident=incident,
                         by=by, via=via)  # fmt: skip

    done = outbox.close_incident(Ack(incident=incident, by="Ann", via="home_assistant"), closing)
    assert done.closed_event is not None
    closed = done.closed_event.id
    for t in (3.0, 4.0):  # the outbox over its bound of 2: the start and stop go, not the close
        outbox.enqueue_event(info(DEVICE, EventType.START if t == 3.0 else EventType.STOP, t))
    assert any(closed in r.payload for r in outbox.fetch_after(0, 10)), "the close was dropped"
    outbox.settle(r.id for r in outbox.fetch_after(0, 10))  # the broker has everything
    waiting = [r.payload for r in outbox.awaiting_receipt(10)]
    assert [closed in p for p in waiting] == [False, True], "the close left at the PUBACK"
    outbox.close()


def test_an_alert_from_before_incidents_acknowledged_twice_is_answered_already_the_second_time(
    tmp_path: Path,
) -> None:
    """A treadmill from before incidents: Ann acknowledges its fall, then Bob does. The reply
    Ann's acknowledgement gets says it was acknowledged now; Bob's says it already was (the
    ``already`` the dashboard and Home Assistant show, the device's record keeping Ann).
    Mutant that survived: ``already`` inverted for an alert outside any incident, so Ann was
    told her acknowledgement changed nothing and Bob that his had closed it."""
    outbox = Outbox(tmp_path / "o.db", TOPICS)
    old = Event.now(EventType.FALL, DEVICE, 1.0, "TRIPPED", "impact")
    outbox.enqueue_event(old)

    def closing(incident: str, by: str, via: str) -> Event:  # pragma: no cover - none here
        raise AssertionError("an alert outside incidents is closed by no closed event")

    first = outbox.close_incident(Ack(old.id, "Ann", via="dashboard"), closing)
    second = outbox.close_incident(Ack(old.id, "Bob", via="home_assistant"), closing)
    assert (first.event_id, first.incident, first.already) == (old.id, None, False)
    assert (second.event_id, second.already) == (old.id, True)
    assert outbox.acknowledged_by(old.id) == "Ann"
    outbox.close()


def test_the_caregiver_service_s_ack_of_an_old_alert_by_its_id_acknowledges_that_alert(
    tmp_path: Path,
) -> None:
    """A treadmill from before incidents raised two falls; the caregiver service names the
    older one as its incident (its own id, as it does for such alerts) when Ann acknowledges
    it. That fall is acknowledged, by Ann, and the newer one, which nobody has looked at,
    stays open. Mutant that survived: such an acknowledgement taken as "the latest alert",
    closing the newer fall unseen and leaving the one Ann answered open."""
    outbox = Outbox(tmp_path / "o.db", TOPICS)
    older = Event.now(EventType.FALL, DEVICE, 1.0, "TRIPPED", "impact")
    newer = Event.now(EventType.FALL, DEVICE, 2.0, "TRIPPED", "impact")
    outbox.enqueue_event(older)
    outbox.enqueue_event(newer)

    def closing(incident: str, by: str, via: str) -> Event:  # pragma: no cover - none here
        raise AssertionError("an alert outside incidents is closed by no closed event")

    done = outbox.close_incident(Ack(incident=older.id, by="Ann", via="dashboard"), closing)
    assert (done.event_id, done.already) == (older.id, False)
    assert outbox.acknowledged_by(older.id) == "Ann"
    assert outbox.acknowledged_by(newer.id) is None
    outbox.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def device(mosquitto: Mosquitto, tmp_path: Path, clock: Clock) -> Iterator[MqttReporter]:
    """A device publishing with alert receipts on (the default), its clock in the test's hands."""
    with ready_reporter(
        mosquitto, tmp_path / "device.db", DEVICE, "Dad's treadmill", clock=clock
    ) as r:
        yield r


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")
def test_a_receipt_for_another_alert_never_puts_off_the_copy_of_one_still_unconfirmed(
    mosquitto: Mosquitto, device: MqttReporter, clock: Clock
) -> None:
    """The caregiver service confirmed the stumble but not the fall (lost between the broker
    and it): the fall's next copy still goes when its round is due, even though the receipt
    came just before that round. A receipt brings a round sooner, never later. Mutant that
    survived: a receipt set the next round ``receipt_retry_s`` from itself, so receipts for
    other alerts, coming more often than that, put off the missing fall's copy for ever."""
    caregiver = Subscriber(mosquitto, [f"retroguard/{DEVICE}/event"])
    missing, confirmed = fall(DEVICE, 1.0), fall(DEVICE, 2.0)
    device.sink.handle(missing)
    device.sink.handle(confirmed)
    assert device.wait_until(lambda s: s.awaiting == 2, WAIT)
    live_for(device, clock, BASE_S * (1 + 2))  # two unanswered rounds: the next in 4 min
    assert device.status.republished == 4
    clock.now += BASE_S * 4 - 10  # ten seconds before that round
    assert device.wait_drained(WAIT)
    caregiver.client.publish(
        f"retroguard/{DEVICE}/receipt", receipt_payload([confirmed.id], "caregiver"), qos=1
    )
    assert device.wait_until(lambda s: s.awaiting == 1, WAIT)
    clock.now += 10  # the round is due
    assert device.wait_drained(WAIT)
    all_acked(device)
    assert device.status.republished == 5, "the unconfirmed fall was not sent again on time"
    caregiver.close()


def test_a_test_alarm_is_told_once_to_every_contact_and_never_reminded(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver
) -> None:
    """A test alarm from the treadmill reaches Ann and Bob once, as a test that needs no
    answer; an hour on, nobody has been reminded of it. Mutant that survived: the test's alert
    left open, so it escalated like a fall: "REMINDER, not acknowledged" of a test, then
    "ESCALATED" to Bob, until someone acknowledged an alarm that said no answer was needed."""
    service, clock = _fake_clock_service(mosquitto, tmp_path, receiver)
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        test = device.event("test", severity="warning", state="STANDBY", reason="test alarm")
        assert service.ingestor.wait_for(lambda: service.store.event(test["id"]) is not None)
        assert service.notifier.deliver_due() == 2
        for _ in range(12):  # an hour of the escalation's timeouts (300 s)
            clock.advance(300)
            assert service.alerting.tick() == 0
            service.notifier.deliver_due()
        assert sorted(_paths(receiver)) == ["/ann", "/bob"]
        assert all(m["title"].startswith("RetroGuard TEST alarm") for m in receiver.messages)
        device.close()
    finally:
        service.stop()


def test_a_logged_stumble_pages_no_one_and_the_fall_after_it_pages_at_once(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver
) -> None:
    """With stumbles only logged (``policy.stumble = "log"``), a stumble pages no one; the
    fall that follows in the same incident is stored and pages Ann at once, as a fall.
    Mutants that survived: the "log" policy ignored, so the stumble paged Ann; and the
    worsening that found no open alert to worsen (the stumble's was only logged) failing on
    it, so the fall was refused by the service's store and paged no one."""
    service, _ = _fake_clock_service(mosquitto, tmp_path, receiver, stumble="log")
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        incident = "e" * 32
        trip = device.event(
            "stumble", severity="warning", state="TRIPPED", reason="trunk rotated",
            incident=incident,
        )  # fmt: skip
        assert service.ingestor.wait_for(lambda: service.store.event(trip["id"]) is not None)
        assert service.notifier.deliver_due() == 0
        assert receiver.messages == []
        fall = device.event(
            "fall", severity="critical", state="TRIPPED", reason="impact 4 g", incident=incident
        )
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        assert service.notifier.deliver_due() == 1
        assert _paths(receiver) == ["/ann"]
        assert receiver.messages[0]["title"].startswith("RetroGuard: FALL")
        device.close()
    finally:
        service.stop()
