"""An acknowledgement the monitor missed, and one that says nothing of what it saw (issue 14).

On a real Mosquitto, with the real MQTT reporter on a real SQLite database (and, where a
caregiver acknowledges, the real caregiver service):

* the device's MQTT session starts clean, so an ``ack`` sent while it is offline is lost;
  when it comes back (a restart on the same database: the incident carried over) its
  retained ``incident`` still says open — the caregiver service, which closed it, sends the
  close again as it recorded it, and the device, its retained message and Home Assistant's
  Fall sensor say closed, by whom and how;
* a close that comes late never closes news its sender had not seen: an event after the one
  it names that would have opened the incident again (a fall after the stumble
  acknowledged) keeps it open, and an ack naming an old incident leaves a new one open;
* Home Assistant's Acknowledge button, whose payload cannot name an incident, closes only
  the incident the retained message showed, as of its newest event shown.

Nothing here touches a relay: closing is bookkeeping (rule 2).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from caregiver.storage import StoredEvent
from core.protocol.commands import Ack, CommandName, encode_command
from core.protocol.events import Event, EventType
from core.protocol.messages import ReplyMessage
from core.protocol.payloads import decode_as
from core.protocol.topics import Topics, discovery_topic
from firmware.mqtt import MqttReporter
from firmware.mqtt.discovery import ACK_PRESS_PAYLOAD
from firmware.sinks import OutboxSink
from firmware.storage import incidents
from tests.caregiver_support import make_config as caregiver_config
from tests.caregiver_support import running_service
from tests.ha_discovery import HomeAssistant
from tests.mqtt_helpers import WAIT, Subscriber, fall, ready_reporter, subscriber
from tools.broker import Mosquitto

DEVICE = "treadmill-1"
TOPICS = Topics("retroguard", DEVICE)
FIRST = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
SECOND = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


@contextmanager
def shown_as_it_is(reporter: MqttReporter) -> Iterator[None]:
    """Home Assistant keeps showing the retained ``incident`` it was last sent until the block
    ends: the device computes no new one meanwhile.

    Storing an event straight into the outbox (no incident wake-up) is not enough: any pass
    of the publisher with the incident due computes it afresh from the database — one woken
    by the incident token of an event stored before (still queued when its incident was
    shown by an earlier pass), or by a reconnect. Events stored meanwhile are still published
    as events, and command replies (published directly, not from the outbox) are not held.
    Once the block ends, the next incident event (:attr:`MqttReporter.sink`) makes the
    retained message due again.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reporter._retained, "incident", lambda: None)  # "as the broker has it"
        assert reporter.wait_drained(WAIT)  # and one begun before the hold is over
        yield


def stumble(incident: str, t: float = 1.0) -> Event:
    return Event.now(
        EventType.STUMBLE, DEVICE, t, "TRIPPED", "trunk rotated 12 deg", incident=incident
    )


def a_fall(incident: str, t: float = 3.0) -> Event:
    return dataclasses.replace(fall(DEVICE, t), incident=incident)


def rearmed(incident: str) -> Event:
    """The walker's re-arming press: the incident is over (the monitor names it)."""
    return Event.now(EventType.RESET, DEVICE, 5.0, "ARMED", "re-armed", incident=incident)


def incidents_shown(sub: Subscriber) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in sub.on("/incident")]


def shows(sub: Subscriber, incident: str, *, open_: bool, severity: str | None = None) -> bool:
    shown = incidents_shown(sub)
    if not shown:
        return False
    last = shown[-1]
    return (
        last.get("incident") == incident
        and last["open"] is open_
        and (severity is None or last.get("severity") == severity)
    )


def ack_replies(sub: Subscriber) -> list[ReplyMessage]:
    decoded = [decode_as(ReplyMessage, m.payload) for m in sub.on("/reply")]
    return [r for r in decoded if r.command == CommandName.ACK]


def send_ack(sub: Subscriber, ack: Ack, request_id: str) -> ReplyMessage:
    """Publish ``ack`` to the device and return its reply."""
    sub.client.publish(TOPICS.command("ack"), encode_command(ack, request_id), qos=1)
    assert sub.wait(lambda: any(r.request_id == request_id for r in ack_replies(sub)))
    return next(r for r in ack_replies(sub) if r.request_id == request_id)


def confirmed(event: StoredEvent | None) -> bool:
    return event is not None and event.ack_confirmed


def device_incident(reporter: MqttReporter, incident: str) -> incidents.Incident:
    found = reporter.outbox.database.read(lambda conn: incidents.find(conn, incident, DEVICE))
    assert found is not None
    return found


def test_a_close_made_while_the_monitor_was_offline_reaches_it_when_it_comes_back(
    tmp_path: Path, mosquitto: Mosquitto, caregiver_db: str
) -> None:
    (tmp_path / "cg").mkdir()
    db = tmp_path / "device.db"
    ha = HomeAssistant(retained_topics={TOPICS.incident, TOPICS.availability, TOPICS.state})
    the_fall = a_fall(FIRST)
    with (
        running_service(
            caregiver_config(mosquitto, tmp_path / "cg", database=caregiver_db), web=False
        ) as cg,
        subscriber(
            mosquitto, [f"{TOPICS.base}/#", discovery_topic("homeassistant", DEVICE)]
        ) as sub,
    ):
        with ready_reporter(mosquitto, db, DEVICE, "Dad's treadmill") as reporter:
            reporter.sink.handle(stumble(FIRST))
            reporter.sink.handle(the_fall)
            assert sub.wait(lambda: shows(sub, FIRST, open_=True, severity="fall"))
            assert cg.ingestor.wait_for(lambda: cg.store.event(the_fall.id) is not None, WAIT)
        # the monitor is offline (its session started clean: a command sent now is lost)
        assert sub.wait(lambda: sub.on("/availability")[-1].payload == b"offline")
        done = cg.acknowledge(DEVICE, the_fall.id, "Ann")  # the incident's page, all seen
        assert done.outcome == "done"
        incident = cg.store.incident(FIRST)
        assert incident is not None and not incident.open
        # it comes back (a restart: the incident carried over on its database), still open
        with ready_reporter(mosquitto, db, DEVICE, "Dad's treadmill") as reporter:
            assert sub.wait(lambda: shows(sub, FIRST, open_=False))
            closed = device_incident(reporter, FIRST)
            assert (closed.closed_by, closed.closed_via) == ("Ann", "dashboard")
            last = incidents_shown(sub)[-1]
            assert (last["closed_by"], last["closed_via"]) == ("Ann", "dashboard")
            # the device's reply confirms the caregiver's record of the acknowledgement
            assert cg.ingestor.wait_for(lambda: confirmed(cg.store.event(the_fall.id)), WAIT)
            # a repeat (another instance, another reconnect) is answered "already": no second
            # ``closed`` event
            again = send_ack(sub, Ack(the_fall.id, "Ann", FIRST, "dashboard"), "repeat-1")
            assert again.ok and again.result is not None and again.result["already"] is True
            closes = [m for m in sub.on("/event") if json.loads(m.payload)["type"] == "closed"]
            assert len(closes) == 1
        after = cg.store.incident(FIRST)
        assert after is not None and (after.closed_by, after.closed_via) == ("Ann", "dashboard")
        ha.receive_all((m.topic, m.payload, m.retain) for m in sub.messages)
    assert ha.state("_fall") == "off" and ha.state("_incident") == "No incident"


def test_a_late_close_never_closes_a_fall_its_sender_had_not_seen(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    trip = stumble(FIRST)
    the_fall = a_fall(FIRST)
    with (
        subscriber(mosquitto, [f"{TOPICS.base}/#"]) as sub,
        ready_reporter(mosquitto, tmp_path / "device.db", DEVICE, "Dad's treadmill") as reporter,
    ):
        reporter.sink.handle(trip)
        reporter.sink.handle(the_fall)
        assert sub.wait(lambda: shows(sub, FIRST, open_=True, severity="fall"))
        # a close made when only the stumble had been seen (sent again when the device came
        # back, or held up on the way): the fall came after it
        refused = send_ack(sub, Ack(trip.id, "Ann", FIRST, "dashboard"), "late-1")
        assert not refused.ok and refused.error is not None
        assert "fall" in refused.error and "stays open" in refused.error
        assert device_incident(reporter, FIRST).open
        # the retained message still says open: Home Assistant's Fall stays on
        assert shows(sub, FIRST, open_=True, severity="fall")
        # a second fall after the one seen would not have opened a closed incident: it closes
        second_fall = a_fall(FIRST, 5.0)
        reporter.sink.handle(second_fall)
        assert sub.wait(lambda: incidents_shown(sub)[-1].get("last_event") == second_fall.id)
        done = send_ack(sub, Ack(the_fall.id, "Ann", FIRST, "dashboard"), "late-2")
        assert done.ok, done.error
        assert sub.wait(lambda: shows(sub, FIRST, open_=False))


def test_an_ack_for_an_old_incident_leaves_the_new_one_open(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    old_fall, new_fall = a_fall(FIRST), a_fall(SECOND, 9.0)
    with (
        subscriber(mosquitto, [f"{TOPICS.base}/#"]) as sub,
        ready_reporter(mosquitto, tmp_path / "device.db", DEVICE, "Dad's treadmill") as reporter,
    ):
        reporter.sink.handle(old_fall)
        reporter.sink.handle(rearmed(FIRST))
        reporter.sink.handle(new_fall)
        assert sub.wait(lambda: shows(sub, SECOND, open_=True, severity="fall"))
        # the close of the first incident, arriving late (the walker had re-armed since)
        late = send_ack(sub, Ack(old_fall.id, "Ann", FIRST, "dashboard"), "old-1")
        assert late.ok and late.result is not None and late.result["incident"] == FIRST
        assert device_incident(reporter, SECOND).open
        assert shows(sub, SECOND, open_=True, severity="fall")


def test_home_assistant_s_button_closes_only_what_its_fall_sensor_showed(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    trip = stumble(FIRST)
    the_fall = a_fall(FIRST)
    with (
        subscriber(mosquitto, [f"{TOPICS.base}/#"]) as sub,
        ready_reporter(mosquitto, tmp_path / "device.db", DEVICE, "Dad's treadmill") as reporter,
    ):
        reporter.sink.handle(trip)
        assert sub.wait(lambda: shows(sub, FIRST, open_=True, severity="stumble"))
        # the fall is stored, and Home Assistant still shows the stumble when its button is
        # pressed
        with shown_as_it_is(reporter):
            OutboxSink(reporter.outbox).handle(the_fall)
            sub.client.publish(TOPICS.command("ack"), ACK_PRESS_PAYLOAD, qos=1)
            assert sub.wait(lambda: len(ack_replies(sub)) == 1)
        (refused,) = ack_replies(sub)
        assert not refused.ok and refused.error is not None and "fall" in refused.error
        assert device_incident(reporter, FIRST).open
        # once the fall is shown, a press closes it
        reporter.sink.handle(a_fall(FIRST, 7.0))  # an incident event: the retained is due
        assert sub.wait(lambda: shows(sub, FIRST, open_=True, severity="fall"))
        sub.client.publish(TOPICS.command("ack"), ACK_PRESS_PAYLOAD, qos=1)
        assert sub.wait(lambda: len(ack_replies(sub)) == 2)
        assert ack_replies(sub)[-1].ok, ack_replies(sub)[-1].error
        assert sub.wait(lambda: shows(sub, FIRST, open_=False))
        last = incidents_shown(sub)[-1]
        assert (last["closed_by"], last["closed_via"]) == ("home-assistant", "home-assistant")


def test_home_assistant_s_button_leaves_a_newer_incident_open(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    with (
        subscriber(mosquitto, [f"{TOPICS.base}/#"]) as sub,
        ready_reporter(mosquitto, tmp_path / "device.db", DEVICE, "Dad's treadmill") as reporter,
    ):
        reporter.sink.handle(a_fall(FIRST))
        reporter.sink.handle(rearmed(FIRST))
        assert sub.wait(lambda: shows(sub, FIRST, open_=False))
        # a new fall, stored and not yet shown: the button's press is about what was shown
        with shown_as_it_is(reporter):
            OutboxSink(reporter.outbox).handle(a_fall(SECOND, 9.0))
            sub.client.publish(TOPICS.command("ack"), ACK_PRESS_PAYLOAD, qos=1)
            assert sub.wait(lambda: len(ack_replies(sub)) == 1)
        (reply,) = ack_replies(sub)  # the first, closed when shown: "already", by the walker
        assert reply.ok and reply.result is not None, reply.error
        assert (reply.result["incident"], reply.result["already"]) == (FIRST, True)
        assert device_incident(reporter, SECOND).open
