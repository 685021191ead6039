"""Every way an incident closes refreshes the device's retained ``incident`` at once.

The whole monitor on simulated hardware reports to a real Mosquitto; a trip
opens an incident, and it is closed by Home Assistant's Acknowledge button,
by a caregiver on the dashboard (the real caregiver service sends the ack),
or by the walker re-arming at the machine ("I'm OK", then ``reset``). Each
time the retained message — what Home Assistant's Fall sensor and a late
``retroguard watch`` read — says closed, and by whom, without a restart. The
belt stays stopped until the walker's own reset: no acknowledgement arms.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.protocol.topics import Topics
from firmware.mqtt.discovery import ACK_PRESS_PAYLOAD
from tests.app_support import Rig, TripAt, close_rigs, make_rig
from tests.caregiver_support import make_config as caregiver_config
from tests.caregiver_support import running_service
from tests.mqtt_helpers import WAIT, Subscriber, config_for, subscriber
from tools.broker import Mosquitto

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

DEVICE = "treadmill-1"
TOPICS = Topics("retroguard", DEVICE)
MARKER = "retroguard-test/marker"


def tripped(tmp_path: Path, broker: Mosquitto, sub: Subscriber) -> tuple[Rig, str]:
    """A walker armed, then tripped: the rig and the incident the retained message shows
    open."""
    rig = make_rig(tmp_path, detector=TripAt(3.0), mqtt=config_for(broker))
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(2.0)
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    incident = rig.app.controller.incident
    assert incident is not None
    assert sub.wait(lambda: (last_incident(sub) or {}).get("incident") == incident)
    assert last_incident(sub)["open"] is True  # type: ignore[index]
    return rig, incident


def last_incident(sub: Subscriber) -> dict[str, Any] | None:
    messages = sub.on("/incident")
    return json.loads(messages[-1].payload) if messages else None


def closed(sub: Subscriber, incident: str) -> bool:
    last = last_incident(sub)
    return last is not None and last.get("incident") == incident and last["open"] is False


def retained_incident(broker: Mosquitto) -> dict[str, Any]:
    """The retained ``incident`` a client starting now reads (a fresh subscriber; once its own
    marker comes back, the retained message the broker holds has arrived before it)."""
    with subscriber(broker, [TOPICS.incident, MARKER]) as fresh:
        fresh.client.publish(MARKER, "done", qos=1)
        assert fresh.wait(lambda: any(m.topic == MARKER for m in fresh.messages))
        (retained,) = [m for m in fresh.messages if m.topic == TOPICS.incident and m.retain]
        return json.loads(retained.payload)  # type: ignore[no-any-return]


def still_stopped(rig: Rig) -> None:
    rig.run_for(0.5)
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    assert not rig.app.gpio.relay.holding


def test_home_assistant_s_acknowledge_closes_the_retained_incident(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    with subscriber(mosquitto, [TOPICS.incident, TOPICS.reply]) as sub:
        rig, incident = tripped(tmp_path, mosquitto, sub)
        # what the Acknowledge button publishes (its payload_press in the discovery message)
        sub.client.publish(TOPICS.command("ack"), ACK_PRESS_PAYLOAD, qos=1)
        assert sub.wait(lambda: closed(sub, incident))
    retained = retained_incident(mosquitto)
    assert retained["incident"] == incident and retained["open"] is False
    assert (retained["closed_by"], retained["closed_via"]) == ("home-assistant", "home-assistant")
    still_stopped(rig)


def test_a_caregiver_s_acknowledge_on_the_dashboard_closes_the_retained_incident(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    (tmp_path / "cg").mkdir()
    with (
        running_service(caregiver_config(mosquitto, tmp_path / "cg"), web=False) as cg,
        subscriber(mosquitto, [TOPICS.incident]) as sub,
    ):
        rig, incident = tripped(tmp_path, mosquitto, sub)
        assert cg.ingestor.wait_for(lambda: len(cg.store.incidents_for(DEVICE, 10)) == 1, WAIT)
        newest = max(cg.store.incident_events(incident), key=lambda e: e.seq)
        cg.acknowledge(DEVICE, newest.id, "Ann")  # as the incident's page, all of it seen
        assert sub.wait(lambda: closed(sub, incident))
    retained = retained_incident(mosquitto)
    assert retained["incident"] == incident and retained["open"] is False
    assert (retained["closed_by"], retained["closed_via"]) == ("Ann", "dashboard")
    still_stopped(rig)


def test_the_walker_re_arming_closes_the_retained_incident(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    with subscriber(mosquitto, [TOPICS.incident]) as sub:
        rig, incident = tripped(tmp_path, mosquitto, sub)
        rig.press_reset()  # "I'm OK": the walker re-arms at the machine
        assert rig.state == "ARMED"
        assert sub.wait(lambda: closed(sub, incident))
    retained = retained_incident(mosquitto)
    assert retained["incident"] == incident and retained["open"] is False
    assert retained["closed_by"] == "walker"
