"""Helpers for the MQTT tests: a collecting subscriber, schemas, event factories."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from core.protocol.events import Event, EventType
from core.samples import ImuSample
from firmware.config import MqttConfig
from firmware.mqtt import MqttReporter
from tools.broker import Mosquitto

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "mqtt" / "schemas"
WAIT = 20.0
"""Upper bound for any wait on the broker: a safety net against hangs, not a timing assertion."""


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())  # type: ignore[no-any-return]


def validate(name: str, payload: bytes | str) -> dict[str, Any]:
    data = json.loads(payload)
    jsonschema.validate(data, schema(name), format_checker=jsonschema.FormatChecker())
    return data  # type: ignore[no-any-return]


def config_for(broker: Mosquitto, **overrides: Any) -> MqttConfig:
    values: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.5,
        "telemetry_interval_s": 0.0,
    }
    values.update(overrides)
    return MqttConfig(**values)


@contextmanager
def ready_reporter(
    broker: Mosquitto,
    database: Path,
    device_id: str,
    device_name: str = "T",
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[MqttReporter]:
    """A device's reporter on ``broker`` (alert receipts on, the default), started and
    connected, on ``clock`` (the test's, or the real monotonic one); closed at the end."""
    reporter = MqttReporter(
        config_for(broker),
        device_id=device_id,
        device_name=device_name,
        database=database,
        clock=clock,
    )
    reporter.start()
    try:
        assert reporter.wait_until(lambda s: s.ready, WAIT)
        yield reporter
    finally:
        reporter.close()


def fall(device_id: str, t: float = 1.0, with_window: bool = False) -> Event:
    window = (
        [ImuSample(t - 0.01 * (10 - i), 0.1 * i, 0.0, 1.0, 5.0, -2.0, 0.5) for i in range(10)]
        if with_window
        else []
    )
    return Event.now(
        EventType.FALL,
        device_id,
        t,
        "TRIPPED",
        "impact 3.1 g then lying",
        figures={"peak_g": 3.1, "tilt_deg": 72.0},
        imu_window=window,
    )


def info(device_id: str, kind: EventType = EventType.START, t: float = 0.0) -> Event:
    return Event.now(kind, device_id, t, "STARTING", "monitor started")


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool
    qos: int = 1
    """As delivered: the lower of the publisher's QoS and the subscription's (1)."""


class Subscriber:
    """A caregiver-side client that records every message it receives."""

    def __init__(
        self,
        broker: Mosquitto,
        topics: list[str],
        *,
        client_id: str = "",
        persistent: bool = False,
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        self._subscribed = 0
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=not persistent,
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        if username:
            self.client.username_pw_set(username, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.client.reconnect_delay_set(0, 1)
        self._topics = topics
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        assert self.wait(lambda: self._subscribed >= 1), "subscription not confirmed"

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe([(t, 1) for t in self._topics])

    def _on_subscribe(self, *args: Any) -> None:
        with self._cond:
            self._subscribed += 1
            self._cond.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(
                Message(msg.topic, bytes(msg.payload), bool(msg.retain), int(msg.qos))
            )
            self._cond.notify_all()

    def wait(
        self, predicate: Callable[[], bool], timeout: float = WAIT, *, poll_s: float | None = None
    ) -> bool:
        """Until ``predicate()`` holds (False after ``timeout``). It is checked at each message;
        ``poll_s``: also that often, for a predicate that reads state outside this subscriber,
        whose changes nothing here hears of (a bounded poll of a condition, not a sleep)."""
        with self._cond:
            if poll_s is None:
                return self._cond.wait_for(predicate, timeout)
            deadline = time.monotonic() + timeout
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(poll_s, remaining))
            return True

    def on(self, suffix: str) -> list[Message]:
        with self._cond:
            return [m for m in self.messages if m.topic.endswith(suffix)]

    def since(self, count: int) -> list[Message]:
        """The messages after the first ``count`` (to follow a stream in steps)."""
        with self._cond:
            return self.messages[count:]

    def event_ids(self) -> list[str]:
        return [json.loads(m.payload)["id"] for m in self.on("/event")]

    def wait_events(self, count: int, timeout: float = WAIT) -> bool:
        return self.wait(lambda: len(set(self.event_ids())) >= count, timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def mqtt5_voice(broker: Mosquitto) -> Iterator[mqtt.Client]:
    """A bare MQTT 5 client on ``broker``, its network loop running: a caregiver service's (or
    another instance's) voice on a topic, as the service speaks, with properties it sets."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


@contextmanager
def subscriber(broker: Mosquitto, topics: list[str], **kwargs: Any) -> Iterator[Subscriber]:
    sub = Subscriber(broker, topics, **kwargs)
    try:
        yield sub
    finally:
        sub.close()


def login(broker: Mosquitto, user: str | None, password: str | None, client_id: str = "") -> Any:
    """The broker's answer (a CONNACK reason code) to a CONNECT as ``user`` (None:
    anonymous)."""
    answered = threading.Event()
    codes: list[Any] = []

    def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        codes.append(rc)
        answered.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    if user is not None:
        client.username_pw_set(user, password)
    client.on_connect = on_connect
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert answered.wait(WAIT)
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


@dataclass(frozen=True)
class Retained:
    """A retained message as a subscriber starting now is handed it (MQTT 5)."""

    payload: bytes
    expiry_s: int | None
    """What remains of its Message Expiry Interval, as the broker says it (None: it has none)."""


def retained_v5(broker: Mosquitto, topic: str) -> Retained | None:
    """The message ``broker`` retains on ``topic`` right now as an MQTT 5 subscriber is handed
    it (what remains of its expiry with it), or None when it retains none.

    "None" is known, not waited for (as ``tests/test_ha_mqtt.retained_now``, which speaks MQTT
    3.1.1 and so never sees an expiry): after the SUBACK the client publishes to a fence topic
    it also subscribes to, and the broker handles one client's packets in order, so a retained
    message of the subscription reaches it before the fence comes back."""
    fence = f"retroguard-test/fence/{id(object())}"
    got: list[Retained] = []
    fenced = threading.Event()

    def on_subscribe(client: mqtt.Client, *args: Any) -> None:
        client.publish(fence, b"", qos=1)

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == fence:
            fenced.set()
        elif msg.retain:
            got.append(
                Retained(bytes(msg.payload), getattr(msg.properties, "MessageExpiryInterval", None))
            )

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.subscribe([(topic, 1), (fence, 1)])
    client.loop_start()
    try:
        assert fenced.wait(WAIT), "the fence never came back"
    finally:
        client.disconnect()
        client.loop_stop()
    return got[-1] if got else None
