"""Home Assistant round trip on a real Mosquitto: announce, follow, press, restart, uninstall.

The Home Assistant side is a subscriber plus ``tests/ha_discovery.py``'s
model of what Home Assistant does with each message (the discovery rules,
the templates, availability, the buttons' payloads). The device side is the
real MQTT reporter with a real SQLite database: the command handler answers
the buttons; the retained incident and progress come from its event and
session logs. The Acknowledge button's press travels the real command path:
the device closes the incident, says so with a ``closed`` event, and the
retained incident Home Assistant's Fall sensor reads says closed at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.protocol.commands import Silence
from core.protocol.events import Event, EventType
from core.protocol.messages import ReplyMessage, SilenceResult
from core.protocol.payloads import decode_as
from core.protocol.topics import Topics, discovery_topic
from firmware.mqtt import MqttReporter
from firmware.storage.database import connect
from firmware.storage.sessions import save_session
from launcher.cli import main as retroguard
from tests.caregiver_support import session_record
from tests.ha_discovery import HomeAssistant
from tests.mqtt_helpers import WAIT, Message, Subscriber, config_for, fall, subscriber
from tools.broker import Mosquitto

DEVICE = "tm1"
TOPICS = Topics("retroguard", DEVICE)
CONFIG_TOPIC = discovery_topic("homeassistant", DEVICE)
DASHBOARD = "http://care.local:8080/"
MARKER = "homeassistant/retroguard-test/marker"
INCIDENT = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
RETAINED = {TOPICS.availability, TOPICS.state, TOPICS.incident, TOPICS.progress}
"""What the device publishes retained (docs/mqtt.md, "Topics")."""


class Callbacks:
    """What the buttons reach in the monitor: the silence request and the test alarm."""

    def __init__(self) -> None:
        self.silenced = threading.Event()
        self.silences: list[tuple[Silence, str | None]] = []
        self.test_alarm_by: list[str] = []
        self.test_alarm = threading.Event()

    def on_silence(self, silence: Silence, request_id: str | None) -> None:
        self.silences.append((silence, request_id))
        self.silenced.set()

    def on_test_alarm(self, by: str) -> None:
        self.test_alarm_by.append(by)
        self.test_alarm.set()


@pytest.fixture
def device(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[tuple[MqttReporter, Callbacks]]:
    calls = Callbacks()
    reporter = MqttReporter(
        # no caregiver service on this broker, and none expected: the self-test may pass
        config_for(mosquitto, dashboard_url=DASHBOARD, caregiver_expected=False),
        device_id=DEVICE,
        device_name="Treadmill 1",
        database=tmp_path / "device.db",
        on_silence=calls.on_silence,
        on_test_alarm=calls.on_test_alarm,
    )
    yield reporter, calls
    reporter.close()


def follow(ha: HomeAssistant, sub: Subscriber, seen: int) -> int:
    """Feed the model what the subscriber received since ``seen``; return the new count."""
    new = sub.since(seen)
    ha.receive_all((m.topic, m.payload, m.retain) for m in new)
    return seen + len(new)


def retained_now(broker: Mosquitto, topics: list[str]) -> list[tuple[str, bytes]]:
    """Every retained message on ``topics`` now, proven complete without waiting on time.

    The broker sends a subscription's retained messages before anything the
    same client publishes afterwards, so once our own marker comes back the
    retained ones (if any) are all here.
    """
    with subscriber(broker, [*topics, MARKER]) as probe:
        probe.client.publish(MARKER, "done", qos=1)
        assert probe.wait(lambda: any(m.topic == MARKER for m in probe.messages))
        return [(m.topic, m.payload) for m in probe.messages if m.retain and m.topic != MARKER]


def closed_incident(messages: list[Message]) -> dict[str, Any] | None:
    """The newest ``incident`` message when it says closed (None: none yet, or still open)."""
    if not messages:
        return None
    last: dict[str, Any] = json.loads(messages[-1].payload)
    return None if last["open"] else last


def reply_to(sub: Subscriber, command: str, count: int = 1) -> list[ReplyMessage]:
    def replies() -> list[ReplyMessage]:
        decoded = [decode_as(ReplyMessage, m.payload) for m in sub.on("/reply")]
        return [r for r in decoded if r.command == command]

    assert sub.wait(lambda: len(replies()) >= count), f"no reply to {command}"
    return replies()


def test_home_assistant_round_trip(mosquitto: Mosquitto, device: Any, tmp_path: Path) -> None:
    reporter, calls = device
    ha = HomeAssistant(retained_topics=RETAINED)
    with subscriber(mosquitto, ["homeassistant/#", "retroguard/tm1/#"]) as sub:
        seen = 0
        reporter.start()
        reporter.publish_state("ARMED", "armed by local reset from STANDBY")
        # one incident, named on each of its events as the monitor names it
        trip = Event.now(
            EventType.STUMBLE, DEVICE, 1.0, "TRIPPED", "trunk rotated 12 deg", incident=INCIDENT
        )
        the_fall = dataclasses.replace(fall(DEVICE, 3.0), incident=INCIDENT)
        reporter.sink.handle(trip)
        reporter.sink.handle(the_fall)
        reporter.publish_state("TRIPPED", "fall: impact then lying")

        def opened() -> bool:
            return any(json.loads(m.payload).get("severity") == "fall" for m in sub.on("/incident"))

        # /progress too: it is published just after the incident, and a loaded machine can
        # deliver the one before the other
        assert sub.wait(
            lambda: sub.on(CONFIG_TOPIC) and sub.wait_events(2) and opened() and sub.on("/progress")
        )
        assert sub.wait(lambda: b"TRIPPED" in sub.on("/state")[-1].payload)
        seen = follow(ha, sub, seen)
        # The device appears with its link to the dashboard, and what happened is on it.
        assert ha.device is not None and ha.device.device["configuration_url"] == DASHBOARD
        assert ha.state("_fall") == "on" and ha.state("_incident") == "Fall"
        assert ha.attributes[ha.component("_fall").key]["incident"] == INCIDENT
        assert ha.state("_state") == "Tripped (belt stopped)" and ha.state("_fault") == "off"
        assert [t for _, t, _ in ha.events] == ["trip", "fall"]
        assert ha.triggered == [("fall", "walker")]
        assert ha.state("_session") == "No session yet" and ha.is_available("_state")

        # Home Assistant restarts: everything it shows comes back from retained messages.
        restarted = HomeAssistant()
        topics = ["homeassistant/#", "retroguard/tm1/#"]
        restarted.receive_all((t, p, True) for t, p in retained_now(mosquitto, topics))
        assert restarted.state("_fall") == "on" and restarted.state("_incident") == "Fall"
        assert restarted.state("_state") == "Tripped (belt stopped)"
        assert restarted.state("_session") == "No session yet"
        assert restarted.is_available("_state") and not restarted.events
        # ... and when it announces itself, the device announces itself again.
        configs = len(sub.on(CONFIG_TOPIC))
        sub.client.publish("homeassistant/status", "online", qos=1)
        assert sub.wait(lambda: len(sub.on(CONFIG_TOPIC)) > configs)

        # The buttons: each press reaches the device and is answered.
        for button in ("_ack", "_silence", "_self_test", "_test_alarm"):
            sub.client.publish(*ha.press(button), qos=1)
        (ack,) = reply_to(sub, "ack")
        assert ack.ok and ack.result is not None, ack.error
        assert ack.result["by"] == "home-assistant"
        assert ack.result["event_id"] == the_fall.id  # "latest": the newest open alert
        assert reporter.outbox.acknowledged_by(the_fall.id) == "home-assistant"
        # Home Assistant's static button names no alarm: whatever sounds; the loop answers
        assert calls.silenced.wait(WAIT) and calls.silences[0][0] == Silence()
        reporter.answer_silence(calls.silences[0][1], SilenceResult(silence="nothing_sounding"))
        (silenced,) = reply_to(sub, "silence")
        assert silenced.ok and silenced.result == {"silence": "nothing_sounding"}
        assert reply_to(sub, "test_alarm")[0].ok and calls.test_alarm.wait(WAIT)
        assert calls.test_alarm_by == ["home-assistant"]
        assert reply_to(sub, "self_test")[0].ok
        seen = follow(ha, sub, seen)
        assert ha.state("_self_test_outcome") == "Passed"

        # That press closed the incident on the device, which says so: a ``closed`` event,
        # and the retained incident (what Home Assistant's Fall sensor reads) no longer open.
        assert sub.wait(lambda: closed_incident(sub.on("/incident")) is not None)
        assert sub.wait(lambda: any(b'"closed"' in m.payload for m in sub.on("/event")))
        seen = follow(ha, sub, seen)
        assert ha.state("_fall") == "off" and ha.state("_incident") == "No incident"
        assert [t for _, t, _ in ha.events][-1] == "closed"
        # A Home Assistant that starts now reads the same from the retained message alone.
        (retained,) = retained_now(mosquitto, [TOPICS.incident])
        incident = json.loads(retained[1])
        assert incident["open"] is False and incident["incident"] == INCIDENT
        assert incident["closed_by"] == "home-assistant"
        fresh = HomeAssistant()
        fresh.receive_all((t, p, True) for t, p in retained_now(mosquitto, topics))
        assert fresh.state("_fall") == "off" and fresh.state("_incident") == "No incident"

        # A guided session starts: the progress follows the session log.
        conn = connect(tmp_path / "device.db")
        now = dt.datetime.now(dt.UTC)
        running = session_record(DEVICE, now, backward_min=2, longest_min=2, status="running")
        save_session(conn, running)
        conn.close()
        reporter.sessions_changed()
        assert sub.wait(lambda: b'"session":"running"' in sub.on("/progress")[-1].payload)
        seen = follow(ha, sub, seen)
        assert ha.state("_session") == "Running"


def test_the_self_test_result_names_failed_checks_and_shows_a_refusal_as_refused(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The Self-test result said "Problem" for a self-test the device refused unrun (a
    retained command: nothing was checked) and never said which check failed. Now: the
    button's press runs it and the failed checks are named; a retained self-test command is
    refused, shown as refused with why, and the device is not called faulty for it."""
    checks = {
        "imu": {"ok": False, "detail": "no samples for 2.0 s"},
        "sensor-worn": {"ok": True, "detail": "worn"},
    }

    def device() -> MqttReporter:
        return MqttReporter(
            config_for(mosquitto, caregiver_expected=False),  # the imu check alone fails
            device_id=DEVICE,
            device_name="Treadmill 1",
            database=tmp_path / "device.db",
            self_test=lambda: checks,
        )

    ha = HomeAssistant(retained_topics=RETAINED)
    command = TOPICS.command("self_test")
    reporter = device()
    try:
        with subscriber(mosquitto, ["homeassistant/#", "retroguard/tm1/#"]) as sub:
            reporter.start()
            assert sub.wait(lambda: sub.on(CONFIG_TOPIC))
            assert reporter.wait_until(lambda s: s.ready, WAIT)
            seen = follow(ha, sub, 0)
            key = ha.component("_self_test_outcome").key

            sub.client.publish(*ha.press("_self_test"), qos=1)
            (ran,) = reply_to(sub, "self_test")
            assert ran.ok and ran.result is not None and ran.result["passed"] is False
            seen = follow(ha, sub, seen)
            assert ha.state("_self_test_outcome") == "Failed"
            shown = ha.attributes[key]
            assert shown["failed_checks"] == ["imu"]
            assert shown["failures"] == "imu: no samples for 2.0 s"
            assert shown["refused_because"] is None

            # A self-test command left retained on the broker: the device, starting again,
            # is handed it at subscribe and refuses it unrun.
            reporter.close()
            sub.client.publish(command, "{}", qos=1, retain=True).wait_for_publish(WAIT)
            reporter = device()
            reporter.start()
            refused = reply_to(sub, "self_test", 2)[1]
            assert not refused.ok and refused.error is not None
            assert "retained" in refused.error
            follow(ha, sub, seen)
            assert ha.state("_self_test_outcome") == "Not run (refused)"
            shown = ha.attributes[key]
            assert shown["refused_because"] == refused.error
            assert shown["failed_checks"] == [] and shown["failures"] is None
    finally:
        reporter.close()
        with subscriber(mosquitto, [command]) as cleaner:
            cleaner.client.publish(command, b"", qos=1, retain=True).wait_for_publish(WAIT)
    assert retained_now(mosquitto, [command]) == []


def test_discovery_false_removes_the_device_from_home_assistant(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    def reporter(discovery: bool) -> MqttReporter:
        return MqttReporter(
            config_for(mosquitto, discovery=discovery),
            device_id=DEVICE,
            device_name="Treadmill 1",
            database=tmp_path / "device.db",
        )

    announcing = reporter(True)
    ha = HomeAssistant()
    with subscriber(mosquitto, ["homeassistant/#"]) as sub:
        announcing.start()
        assert sub.wait(lambda: sub.on(CONFIG_TOPIC))
        announcing.close()
        withdrawing = reporter(False)
        withdrawing.start()
        assert sub.wait(lambda: sub.on(CONFIG_TOPIC)[-1].payload == b"")
        follow(ha, sub, 0)
        assert ha.removed and ha.device is None
        assert withdrawing.wait_until(lambda s: s.ready, WAIT)
        withdrawing.close()
    assert retained_now(mosquitto, ["homeassistant/#"]) == []


@pytest.mark.parametrize("interval_s", [0.0, 60.0])
def test_the_telemetry_entities_are_announced_only_when_telemetry_is_sent(
    mosquitto: Mosquitto, tmp_path: Path, interval_s: float
) -> None:
    """``mqtt.telemetry_interval_s = 0``: the device sends no telemetry, so Outbox depth and
    Storage fault would stay unknown for ever; the reporter's announcement leaves them out."""
    reporter = MqttReporter(
        config_for(mosquitto, telemetry_interval_s=interval_s),
        device_id=DEVICE,
        device_name="Treadmill 1",
        database=tmp_path / "device.db",
    )
    ha = HomeAssistant()
    with subscriber(mosquitto, ["homeassistant/#"]) as sub:
        reporter.start()
        try:
            assert sub.wait(lambda: sub.on(CONFIG_TOPIC))
            follow(ha, sub, 0)
        finally:
            reporter.close()
    assert ha.device is not None
    on_telemetry = [
        key
        for key, c in ha.device.components.items()
        if c.config.get("state_topic") == TOPICS.telemetry
    ]
    assert len(on_telemetry) == (2 if interval_s > 0 else 0)


def test_retroguard_ha_remove_clears_a_gone_device(
    mosquitto: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = MqttReporter(
        config_for(mosquitto),
        device_id=DEVICE,
        device_name="Treadmill 1",
        database=tmp_path / "device.db",
    )
    topics = ["homeassistant/#", "retroguard/tm1/#"]
    everything = {CONFIG_TOPIC, TOPICS.availability, TOPICS.state, TOPICS.incident}
    everything |= {TOPICS.progress, TOPICS.walkers, TOPICS.caregiver}
    with subscriber(mosquitto, topics) as sub:
        gone.start()
        gone.sink.handle(fall(DEVICE))
        gone.publish_state("TRIPPED", "fall")
        assert sub.wait(lambda: {m.topic for m in sub.messages} >= everything)
    gone.close()  # the device is gone; it left "offline" retained
    assert {t for t, _ in retained_now(mosquitto, topics)} == everything
    config = tmp_path / "config.toml"
    config.write_text(
        f'[device]\nid = "{DEVICE}"\n[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\n'
    )
    assert retroguard(["ha", "show", "-c", str(config)]) == 0
    shown = capsys.readouterr().out
    assert CONFIG_TOPIC in shown and '"p": "device_automation"' in shown

    assert retroguard(["ha", "remove", "-c", str(config)]) == 0
    assert f"cleared {CONFIG_TOPIC}" in capsys.readouterr().out
    left = {t for t, _ in retained_now(mosquitto, topics)}
    assert CONFIG_TOPIC not in left and TOPICS.incident in left
    assert retroguard(["ha", "remove", "--all", "-c", str(config)]) == 0
    assert retained_now(mosquitto, topics) == []
