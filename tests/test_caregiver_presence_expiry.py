"""The device lets a caregiver ``online`` nobody says again lapse.

A broker that crashed sends no Last Will and restarts with the ``online`` it last saved: before,
a device believed it for ever, and told the walker a caregiver would be paged when nobody
would. The service's ``online`` now carries an MQTT 5 Message Expiry Interval (and the same in
its payload, ``expires_s``) and is said again well before it runs out; the device counts one
not said again by then as no presence: ``unknown``, and so away.

A real Mosquitto hands the messages over, with the expiry it says remains; the device's
monotonic clock is the test's, moved by hand, so a lapse is decided by the clock the device
reads, not by waiting (the broker's own countdown is exercised in
``tests/test_caregiver_presence_broker_restart.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core.protocol.messages import CaregiverPresence
from core.protocol.payloads import caregiver_status_payload
from core.protocol.topics import caregiver_status_topic
from firmware.mqtt import MqttReporter, ReporterStatus
from tests.mqtt_helpers import WAIT, Subscriber, mqtt5_voice, ready_reporter, validate
from tests.test_caregiver_presence_storing import _PresenceBefore
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

DEVICE = "treadmill-1"
PRESENCE = caregiver_status_topic("retroguard")


class Clock:
    """The device's monotonic clock: it moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def device(mosquitto: Mosquitto, tmp_path: Path, clock: Clock) -> Iterator[MqttReporter]:
    with ready_reporter(mosquitto, tmp_path / "d.db", DEVICE, clock=clock) as reporter:
        yield reporter


@pytest.fixture
def service(mosquitto: Mosquitto) -> Iterator[mqtt.Client]:
    """A caregiver service's voice on the presence topic (MQTT 5, as the service speaks)."""
    with mqtt5_voice(mosquitto) as client:
        yield client


def _say_online(client: mqtt.Client, *, broker_expiry: int | None, own_expiry: int | None) -> None:
    """``online``, retained: ``broker_expiry`` its PUBLISH's Message Expiry Interval (None:
    none), ``own_expiry`` its payload's ``expires_s`` (None: a service from before)."""
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if broker_expiry is not None:
        props.MessageExpiryInterval = broker_expiry
    payload = caregiver_status_payload(CaregiverPresence.ONLINE, "caregiver", expires_s=own_expiry)
    client.publish(PRESENCE, payload, qos=1, retain=True, properties=props).wait_for_publish(WAIT)


def _after(device: MqttReporter, clock: Clock, now: float) -> ReporterStatus:
    """The device's view once its clock says ``now`` (a pass of its publisher after the move:
    what it then says)."""
    clock.now = now
    assert device.wait_drained(WAIT)
    return device.status


def _heard_online(device: MqttReporter, before: float | None = None) -> float | None:
    """Once the device has heard an ``online`` lasting until other than ``before``: until when
    (its clock; None: for ever). The broker counts in whole seconds, so a live one may be
    handed over with a second less than it was said with."""
    assert device.wait_until(
        lambda s: s.caregiver.state == "online" and s.caregiver.expires_at != before, WAIT
    )
    return device.status.caregiver.expires_at


def test_an_online_not_said_again_lapses_at_its_expiry_and_one_said_again_stays(
    mosquitto: Mosquitto, device: MqttReporter, clock: Clock, service: mqtt.Client
) -> None:
    said_to_ha = Subscriber(mosquitto, [f"retroguard/{DEVICE}/caregiver"])
    try:
        _say_online(service, broker_expiry=60, own_expiry=60)
        first = _heard_online(device)
        assert first is not None and clock.now + 59 <= first <= clock.now + 60
        status = _after(device, clock, first - 1)
        assert status.caregiver.state == "online" and not status.caregiver.away(clock.now)
        _say_online(service, broker_expiry=60, own_expiry=60)  # said again, a second early
        renewed = _heard_online(device, first)
        assert renewed is not None and renewed > first + 1
        status = _after(device, clock, first + 1)  # past the first one's end: the renewal holds
        assert status.caregiver.state == "online" and not status.caregiver.away(clock.now)
        status = _after(device, clock, renewed)  # the renewal's end, nothing said since
        assert status.caregiver.state == "unknown" and status.caregiver.away(clock.now)
        assert not status.caregiver.undecided(clock.now)

        # the device's own caregiver topic (Home Assistant's Caregiver service sensor) says so
        def unknown_said() -> bool:
            seen = said_to_ha.on("/caregiver")
            return bool(seen) and validate("caregiver", seen[-1].payload)["state"] == "unknown"

        assert said_to_ha.wait(unknown_said)
        check = device.commands.handle("self_test", b"{}").result["checks"]["caregiver"]
        assert not check["ok"]
        assert check["detail"].startswith(
            "the caregiver service has not said it is online again before its presence expired"
        )

        _say_online(service, broker_expiry=60, own_expiry=60)  # the service back: news again
        assert _heard_online(device) is not None
        assert not device.status.caregiver.away(clock.now)
    finally:
        said_to_ha.close()


def test_the_broker_s_remaining_expiry_counts_when_it_is_the_shorter(
    device: MqttReporter, clock: Clock, service: mqtt.Client
) -> None:
    """A retained ``online`` handed over later carries what remains of its interval, which the
    broker counts down: that, not the whole ``expires_s`` from now."""
    _say_online(service, broker_expiry=30, own_expiry=60)
    ends = _heard_online(device)
    assert ends is not None and ends <= clock.now + 30
    assert _after(device, clock, ends).caregiver.state == "unknown"


def test_an_online_the_broker_kept_without_its_expiry_lapses_by_its_own_word(
    device: MqttReporter, clock: Clock, service: mqtt.Client
) -> None:
    """Mosquitto 2.0.11 restores a retained message whose expiry ends in the very second it
    restarts with no expiry at all (measured: tests/test_caregiver_presence_broker_restart.py);
    a bridge or an MQTT 3.1.1 hop drops it too. The payload's ``expires_s`` still bounds it."""
    _say_online(service, broker_expiry=None, own_expiry=60)
    assert _heard_online(device) == clock.now + 60
    assert _after(device, clock, clock.now + 59).caregiver.state == "online"
    status = _after(device, clock, clock.now + 1)
    assert status.caregiver.state == "unknown" and status.caregiver.away(clock.now)


def _reconnected(device: MqttReporter, mosquitto: Mosquitto, clock: Clock) -> dict[str, object]:
    """Take the device's connection over (its client id, a clean start: its session and
    subscriptions gone), let it connect and subscribe again, and return its self-test's
    ``caregiver`` check once it has heard the retained presence the broker hands it at the
    subscribe: a command round trip on its new connection comes after that presence in the
    device's one queue, and a drained pass after the answer has handled both."""
    connects = device.status.connects
    thief = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"retroguard-{DEVICE}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    accepted = threading.Event()
    thief.on_connect = lambda *args: accepted.set()
    assert thief.connect(mosquitto.host, mosquitto.port, clean_start=True) == 0
    thief.loop_start()
    assert accepted.wait(WAIT)
    thief.disconnect()
    thief.loop_stop()
    assert device.wait_until(lambda s: s.connects > connects and s.ready, WAIT)
    asker = Subscriber(mosquitto, [f"retroguard/{DEVICE}/reply"])
    try:
        asker.client.publish(f"retroguard/{DEVICE}/cmd/self_test", b'{"id":"after"}', qos=1)
        assert asker.wait(lambda: bool(asker.on("/reply")))
    finally:
        asker.close()
    _after(device, clock, clock.now)
    check: dict[str, object] = device.commands.handle("self_test", b"{}").result["checks"][
        "caregiver"
    ]
    return check


def test_a_reconnect_does_not_give_the_same_online_a_new_expiry(
    mosquitto: Mosquitto, device: MqttReporter, clock: Clock, service: mqtt.Client
) -> None:
    """An ``online`` the broker keeps without its expiry (restored in its last second, or past
    a bridge) is handed over again at every subscribe, the very same message. Before, each
    reconnect of the device counted its ``expires_s`` again from then: a device whose link
    dropped more often than that believed a service gone for good for ever, and one that had
    let it lapse believed it again for another ``expires_s`` after each reconnect. The same
    message keeps the end it was first given; only one said again (a new message) moves it."""
    _say_online(service, broker_expiry=None, own_expiry=60)
    ends = _heard_online(device)
    assert ends == clock.now + 60
    clock.now += 30
    check = _reconnected(device, mosquitto, clock)
    assert check["ok"]
    status = _after(device, clock, clock.now)
    assert status.caregiver.state == "online" and status.caregiver.expires_at == ends
    status = _after(device, clock, ends)
    assert status.caregiver.state == "unknown" and status.caregiver.away(clock.now)
    check = _reconnected(device, mosquitto, clock)  # lapsed: heard again, still lapsed
    assert not check["ok"]
    assert str(check["detail"]).startswith(
        "the caregiver service has not said it is online again before its presence expired"
    )
    status = _after(device, clock, clock.now)  # away once the subscribe's grace is over
    assert status.caregiver.state == "unknown" and status.caregiver.lapsed
    settles = status.caregiver.settles_at
    assert settles is not None and status.caregiver.away(settles)
    _say_online(service, broker_expiry=None, own_expiry=60)  # said again: a new message
    assert _heard_online(device) == clock.now + 60


def test_an_online_of_a_service_from_before_is_believed_as_before(
    device: MqttReporter, clock: Clock, service: mqtt.Client
) -> None:
    """No expiry anywhere (a service from before this change): believed until something else is
    heard, as then, so a new device does not call an old service away."""
    _say_online(service, broker_expiry=None, own_expiry=None)
    assert device.wait_until(lambda s: s.caregiver.state == "online", WAIT)
    status = _after(device, clock, clock.now + 86400.0)
    assert status.caregiver.state == "online" and not status.caregiver.away(clock.now)
    assert status.caregiver.expires_at is None


def test_a_device_from_before_reads_the_expiring_online_as_online() -> None:
    """A device from before this change decodes the presence with a type without ``expires_s``
    (msgspec ignores what a type does not name: it never forbade unknown fields) and never
    looks at paho's properties: it reads ``online``, believed until an ``offline`` or a Last
    Will, as it did; only the broker dropping the retained copy at its end is new to it."""
    payload = caregiver_status_payload(CaregiverPresence.ONLINE, "caregiver", expires_s=180)
    before = msgspec.json.decode(payload, type=_PresenceBefore)
    assert before.state == CaregiverPresence.ONLINE and before.by == "caregiver"
