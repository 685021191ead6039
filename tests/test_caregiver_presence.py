"""The caregiver service's presence, end to end over a real Mosquitto.

Before, nothing told anyone the caregiver service was down: the device kept its alerts, but
the walker, Home Assistant and the self-test all looked healthy while a fall would page
nobody. The service now announces itself (retained ``online``, ``offline`` on a clean stop and
as its MQTT 5 Last Will); the device hears it, says so on its retained ``caregiver`` topic, and
its self-test fails in words while a service is expected and not online.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.protocol.messages import CaregiverPresence, CaregiverStatusMessage
from core.protocol.payloads import decode_as
from core.protocol.topics import caregiver_status_topic
from tests.caregiver_support import make_config as caregiver_config
from tests.caregiver_support import running_service
from tests.mqtt_helpers import Subscriber, validate
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

DEVICE = "treadmill-1"
PRESENCE = caregiver_status_topic("retroguard")


def _presence(sub: Subscriber) -> list[CaregiverStatusMessage]:
    return [decode_as(CaregiverStatusMessage, m.payload) for m in sub.on("/caregiver/status")]


def test_the_service_says_online_when_subscribed_and_offline_when_it_stops(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    sub = Subscriber(mosquitto, [PRESENCE])
    config = caregiver_config(mosquitto, tmp_path)
    with running_service(config, web=False):
        assert sub.wait(lambda: bool(_presence(sub)))
        online = _presence(sub)[-1]
        assert online.state == CaregiverPresence.ONLINE and online.by == "caregiver-test"
        validate("caregiver_status", sub.on("/caregiver/status")[-1].payload)
    assert sub.wait(lambda: _presence(sub)[-1].state == CaregiverPresence.OFFLINE)
    assert _presence(sub)[-1].wall_time is not None  # a clean stop says when
    sub.close()
    late = Subscriber(mosquitto, [PRESENCE])  # retained: a device that starts later knows
    assert late.wait(lambda: bool(late.on("/caregiver/status")))
    assert late.on("/caregiver/status")[-1].retain
    assert _presence(late)[-1].state == CaregiverPresence.OFFLINE
    late.close()
