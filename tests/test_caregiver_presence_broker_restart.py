"""A caregiver service stopped while its broker is away: what its retained presence says.

A clean stop says ``offline`` itself, then a DISCONNECT (which drops its Last Will), but only
while connected: stopped while it is reconnecting, it says nothing, and only its Last Will
can say it. Measured on Mosquitto 2.0.11 (the fixture's broker keeps its persistence, as a
deployment does): a graceful stop (SIGTERM, a restart or an upgrade) sends the Last Will of
every client it had before it saves, so the presence reads ``offline``; a broker that crashes
(SIGKILL, a power cut) sends none, and restarts with the ``online`` it last saved (the restored
session does not bring the will back). Before, that ``online`` stood for ever: every treadmill
told the walker a caregiver would be paged when nobody would. Now the ``online`` carries an MQTT
5 Message Expiry Interval the service renews (:mod:`caregiver.presence`), Mosquitto keeps it
across its persistence file, and an ``online`` nobody renews leaves the broker by itself and the
device's view (docs/mqtt.md, "Caregiver presence"). Real Mosquitto, killed for real; the
service's expiry is made short so the test need not wait three minutes: the broker's own
expiry and the device's reading of it are what is exercised, whatever its length.
"""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from caregiver.broker_link import Connected
from caregiver.presence import PresenceTiming
from core.protocol.messages import CaregiverPresence, CaregiverStatusMessage
from core.protocol.payloads import caregiver_status_payload, decode_as
from core.protocol.topics import caregiver_status_topic
from firmware.mqtt import MqttReporter, ReporterStatus
from tests.caregiver_support import make_config, running_service
from tests.mqtt_helpers import WAIT, Subscriber, config_for, retained_v5
from tests.storage_support import wait_for
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

PRESENCE = caregiver_status_topic("retroguard")
SHORT = PresenceTiming(expiry_s=2)
"""The service's presence expiry in these tests (three minutes in service)."""


def _retained_presence(mosquitto: Mosquitto) -> CaregiverStatusMessage:
    """The retained presence a device that starts now reads."""
    late = Subscriber(mosquitto, [PRESENCE])
    try:
        assert late.wait(lambda: bool(late.on("/caregiver/status")))
        return decode_as(CaregiverStatusMessage, late.on("/caregiver/status")[-1].payload)
    finally:
        late.close()


def test_a_service_stopped_while_its_broker_restarts_gracefully_reads_offline(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = make_config(mosquitto, tmp_path)
    with running_service(config, web=False) as service:
        assert _retained_presence(mosquitto).state == CaregiverPresence.ONLINE
        mosquitto.stop()  # graceful: retained messages and sessions saved, no will sent
        link = service.ingestor.link
        assert link.wait_for(lambda s: not isinstance(s, Connected), WAIT)
    # stopped while reconnecting: it could say nothing
    mosquitto.start()
    assert _retained_presence(mosquitto).state == CaregiverPresence.OFFLINE


def test_the_broker_keeps_a_retained_online_s_expiry_across_a_crash_and_its_restart(
    mosquitto: Mosquitto,
) -> None:
    """What the fix stands on: Mosquitto saves a retained message's expiry with it and, started
    again on its file after a SIGKILL, hands what remains of it to a new subscriber (Mosquitto
    1.6 lost it across restarts, eclipse-mosquitto/mosquitto#1464: a broker like that would
    bring the stale ``online`` back, unending, and this test would say so)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.MessageExpiryInterval = 600
    online = caregiver_status_payload(CaregiverPresence.ONLINE, "caregiver")
    try:
        client.publish(PRESENCE, online, qos=1, retain=True, properties=props).wait_for_publish(
            WAIT
        )
    finally:
        client.disconnect()
        client.loop_stop()
    saved = mosquitto.workdir / "data" / "mosquitto.db"
    assert wait_for(lambda: saved.exists() and b'"online"' in saved.read_bytes(), WAIT)
    mosquitto.kill()
    mosquitto.start()
    restored = retained_v5(mosquitto, PRESENCE)
    assert restored is not None and restored.payload == online.encode()
    assert restored.expiry_s is not None and 0 < restored.expiry_s <= 600


def test_a_service_stopped_while_its_broker_is_down_after_a_crash_is_not_read_online(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The broker crashes after saving the service's ``online``; the service stops before it is
    back. Restarted on its file, the broker hands out that ``online`` only until its expiry
    ends, then nothing, or (restored in its expiry's last second, Mosquitto 2.0.11 drops the
    expiry) with its payload's ``expires_s``: never an ``online`` no device lets lapse. A
    treadmill connected across the crash, and one that starts once the broker is back, read
    the service lapsed: ``unknown``, and so away (the walker is told nobody will be called).
    Before, both read ``online`` for as long as nobody cleared it by hand."""
    config = make_config(mosquitto, tmp_path)
    saved = mosquitto.workdir / "data" / "mosquitto.db"
    across = _device(mosquitto, tmp_path, "treadmill-1")
    try:
        with running_service(config, web=False, presence=SHORT) as service:
            # said right behind the SUBACK that ends running_service's wait
            assert wait_for(lambda: retained_v5(mosquitto, PRESENCE) is not None, WAIT)
            online = retained_v5(mosquitto, PRESENCE)
            assert online is not None and online.expiry_s is not None
            said = decode_as(CaregiverStatusMessage, online.payload)
            assert said.state == CaregiverPresence.ONLINE and said.expires_s == SHORT.expiry_s
            assert across.wait_until(lambda s: s.caregiver.state == "online", WAIT)
            # the broker's autosave has the online: a crash after it restarts with it
            assert wait_for(lambda: saved.exists() and b'"online"' in saved.read_bytes(), WAIT)
            mosquitto.kill()
            link = service.ingestor.link
            assert link.wait_for(lambda s: not isinstance(s, Connected), WAIT)
        # stopped while its broker was down: it could say nothing, and no will was kept
        mosquitto.start()
        restored = retained_v5(mosquitto, PRESENCE)
        if restored is not None and restored.expiry_s is not None:  # it leaves by itself
            assert wait_for(lambda: retained_v5(mosquitto, PRESENCE) is None, WAIT)
        elif restored is not None:  # Mosquitto restored it in its last second, unending
            assert decode_as(CaregiverStatusMessage, restored.payload).expires_s is not None
        late = _device(mosquitto, tmp_path, "treadmill-2")
        try:
            for device in (across, late):  # polled: "away" comes with time, not a message
                assert wait_for(lambda d=device: _lapsed(d.status), WAIT)
        finally:
            late.close()
    finally:
        across.close()


def _device(mosquitto: Mosquitto, tmp_path: Path, device_id: str) -> MqttReporter:
    device = MqttReporter(
        config_for(mosquitto), device_id=device_id, device_name="T", database=tmp_path / device_id
    )
    device.start()
    return device


def _lapsed(status: ReporterStatus) -> bool:
    """Connected and subscribed, and reading the service as no presence: away."""
    caregiver = status.caregiver
    return status.ready and caregiver.state == "unknown" and caregiver.away(time.monotonic())
