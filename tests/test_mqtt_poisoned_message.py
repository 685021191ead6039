"""A message whose handler raises every time (poisoned) must neither hold the falls behind it
nor reconnect the service about once a second for good.

:class:`core.mqtt_callbacks.GuardedClient` drops the connection when a callback raises, so
the broker sends again what was not acknowledged. Measured on Mosquitto 2.0.11 before the
guard kept a count: a poisoned message is sent first at every reconnect, so the service
reconnected once a second (paho's least delay: a CONNACK resets its backoff), logging a
traceback each time; and as the connection dropped a moment after each CONNACK, the falls
behind it were stored a few per connection but never acknowledged, until they filled the
service's ``ReceiveMaximum`` window: with 150 falls behind one poisoned message, 98 were
stored after 30 s and still 98 after 60 s (60 reconnects), the rest held by the broker for
good. Real Mosquitto, real SQLite; the one thing not real is the bug (the product's own
handler made to raise for one message).
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import paho.mqtt.client as mqtt
import pytest

from caregiver import health_topic
from caregiver.broker_link import Connected
from caregiver.feed import BrokerMessage
from caregiver.ingest import RECEIVE_MAXIMUM, Ingestor
from core.mqtt_callbacks import HELD_MOST, CallbackFault, GuardedClient
from core.protocol.messages import CaregiverHealthMessage
from core.protocol.payloads import decode_as, receipt_payload
from core.protocol.topics import caregiver_health_topic
from firmware.mqtt import MqttReporter
from tests.browser_support import NEEDS_CHROMIUM, logged_in, shot
from tests.caregiver_support import make_config, running_service
from tests.mqtt_helpers import WAIT, Subscriber, config_for, schema, subscriber, validate
from tests.test_caregiver_health_topic import DATABASE, _home_assistant
from tests.test_caregiver_ingest_batch import DEVICE, _event, _id
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

FALLS = RECEIVE_MAXIMUM + 20
"""More falls behind the poisoned message than the broker may have in flight at once."""


def _always_raising(real: Any, marker: bytes, raised: list[int]) -> Any:
    """``real`` (a paho ``on_message`` handler), except that it raises, as a bug would, for
    every message whose payload holds ``marker``."""

    def handler(self: Any, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if marker in bytes(message.payload):
            raised.append(message.mid)
            raise RuntimeError("a bug in the handler")
        real(self, client, userdata, message)

    return handler


def _held_said(state: object) -> bool:
    return isinstance(state, Connected) and state.held is not None


def test_a_poisoned_message_holds_no_fall_behind_it_and_is_kept(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """Not real: ``Ingestor._on_message`` raises for every copy of one stumble. The first
    time the service reconnects (a passing bug is handled at the resend); the second, the
    same fault again, it keeps the connection and leaves the message unacknowledged: every
    fall behind it is stored and receipted, the banner says the held message, the log says
    the traceback once and then the count, and the broker still has the message for the
    service's session (sent again at its next connection, never lost)."""
    caplog.set_level(logging.INFO, logger="core.mqtt_callbacks")
    poisoned = _event(1, "stumble")
    raised: list[int] = []
    monkeypatch.setattr(
        Ingestor,
        "_on_message",
        _always_raising(Ingestor._on_message, _id(poisoned).encode(), raised),
    )
    falls = [_event(n + 2, "fall") for n in range(FALLS)]
    fall_ids = {_id(f) for f in falls}
    config = make_config(mosquitto, tmp_path)
    with (
        running_service(config) as service,
        subscriber(mosquitto, [f"retroguard/{DEVICE}/receipt"]) as receipts,
    ):
        device = Subscriber(mosquitto, ["retroguard/nothing"])
        sent = [
            device.client.publish(topic, payload, qos=1) for topic, payload in (poisoned, *falls)
        ]
        for info in sent:
            info.wait_for_publish(WAIT)
        ingestor = service.ingestor
        assert ingestor.wait_for(lambda: ingestor.events_stored >= FALLS, WAIT), (
            f"{ingestor.events_stored} of {FALLS} falls stored behind the poisoned message"
        )
        assert {e.id for e in service.store.events_for(DEVICE)} == fall_ids
        assert receipts.wait(
            lambda: fall_ids <= {i for m in receipts.messages for i in json.loads(m.payload)["ids"]}
        )
        # one reconnect for it, then the connection went on
        assert len(raised) == 2
        assert ingestor.link.wait_for(_held_said, WAIT)
        held = ingestor.link.state
        assert isinstance(held, Connected) and held.held is not None
        assert held.held.topic == poisoned[0] and held.held.times == 2
        # said where people look: the banner (the badge stays "live"), /healthz, status()
        banner = service.hub.broker
        assert banner.down and banner.degraded
        assert banner.lead == "A message from the treadmills cannot be handled"
        assert poisoned[0] in banner.detail and "2 times" in banner.detail
        assert banner.consequence.startswith("It is left unacknowledged")
        health = service.health()
        assert health.receiving and health.message_held
        assert service.status()["broker"]["held"]["topic"] == poisoned[0]
        failed = [r for r in caplog.records if "on_message failed" in r.getMessage()]
        assert [r.exc_info is not None for r in failed] == [True, False]  # one traceback
        assert "(2 times now)" in failed[1].getMessage()
        device.close()
    # never acknowledged: the broker sends it again at the service's next connection
    with running_service(config, web=False) as service:
        assert service.ingestor.link.wait_for(_held_said, WAIT)
        assert len(raised) > 2


class _HealthBeforeHeld(msgspec.Struct, kw_only=True):
    """The health message as a reader from before ``message_held`` knew it (Home Assistant's
    template reads only the fields it names; a device's decoder ignores unknown fields)."""

    schema: int
    by: str
    wall_time: str
    status: str
    storing: bool = True


def test_a_held_message_is_said_in_the_retained_health_message(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not real: ``Ingestor._on_message`` raises for every copy of one stumble. ``/healthz``
    and the banner said the message held, the retained health message (Home Assistant's
    Database sensor, whatever reads the broker and not the dashboard) did not: it says
    ``message_held`` now, Home Assistant an attribute of that name (the database's state
    left alone: the database is sound), and a reader from before it still reads the rest."""
    monkeypatch.setattr(health_topic, "HEALTH_EVERY_S", 0.0)
    poisoned = _event(1, "stumble")
    raised: list[int] = []
    monkeypatch.setattr(
        Ingestor,
        "_on_message",
        _always_raising(Ingestor._on_message, _id(poisoned).encode(), raised),
    )
    config = make_config(mosquitto, tmp_path)
    topic = caregiver_health_topic("retroguard", config.mqtt.identity)
    with (
        subscriber(mosquitto, [topic]) as health,
        running_service(config, web=False) as service,
    ):

        def said() -> list[CaregiverHealthMessage]:
            for message in list(health.messages):
                validate("caregiver_health", message.payload)
            return [decode_as(CaregiverHealthMessage, m.payload) for m in health.messages]

        assert health.wait(lambda: bool(said()))
        assert not said()[-1].message_held
        assert b"message_held" not in health.messages[-1].payload  # absent while none is
        device = Subscriber(mosquitto, ["retroguard/nothing"])
        device.client.publish(*poisoned, qos=1).wait_for_publish(WAIT)
        assert service.ingestor.link.wait_for(_held_said, WAIT)
        assert health.wait(lambda: said()[-1].message_held)
        assert service.health().message_held
        last = said()[-1]
        assert (last.status, last.storing) == ("ok", True)  # the database is sound
        payload = health.messages[-1].payload
        # a reader from before: the old schema (no message_held) and an old decoder take it
        old = schema("caregiver_health")
        del old["properties"]["message_held"]
        jsonschema.validate(json.loads(payload), old)
        assert decode_as(_HealthBeforeHeld, payload).status == "ok"
        # Home Assistant, started now: the attribute from the retained message alone
        ha = _home_assistant(mosquitto)
        attributes = ha.attributes[ha.component(DATABASE).key]
        assert attributes["message_held"] is True and attributes["status"] == "ok"
        assert ha.state(DATABASE) == "off"
        device.close()


def test_a_message_held_mid_connection_is_said_in_the_health_message_at_once(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker sends a poisoned message again first at the reconnect, so it is mostly
    held before the subscription is confirmed, and the health said then says it. One held
    after that (the broker's resend behind others) changes the link, not the database: the
    link's change says the health again, not only the database's changes."""
    monkeypatch.setattr(health_topic, "HEALTH_EVERY_S", 0.0)
    config = make_config(mosquitto, tmp_path)
    topic = caregiver_health_topic("retroguard", config.mqtt.identity)
    with (
        subscriber(mosquitto, [topic]) as health,
        running_service(config, web=False) as service,
    ):
        assert health.wait(lambda: bool(health.messages))
        assert b"message_held" not in health.messages[-1].payload
        service.ingestor.link.message_held(f"retroguard/{DEVICE}/event", "RuntimeError: bug", 2)
        assert health.wait(
            lambda: decode_as(CaregiverHealthMessage, health.messages[-1].payload).message_held
        )


def _reporter(mosquitto: Mosquitto, tmp_path: Path, **overrides: Any) -> MqttReporter:
    return MqttReporter(
        config_for(mosquitto, **overrides),
        device_id=DEVICE,
        device_name="Dad's treadmill",
        database=tmp_path / "device.db",
    )


def test_a_device_callback_fault_is_logged_once_with_everything(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """Not real: the device's ``MqttReporter._on_message`` raises for a receipt. Before, two
    ERROR lines said it: the guard's, with the traceback, and the reporter's status
    ("MQTT: MQTT on_message failed ..."), the same words again. Now one: the guard's, with
    the topic, the error, the traceback and what follows."""
    caplog.set_level(logging.INFO)
    raised: list[int] = []
    monkeypatch.setattr(
        MqttReporter, "_on_message", _always_raising(MqttReporter._on_message, b"ids", raised)
    )
    reporter = _reporter(mosquitto, tmp_path)
    reporter.start()
    try:
        assert reporter.wait_until(lambda s: s.ready, WAIT)
        with subscriber(mosquitto, ["retroguard/nothing"]) as caregiver:
            receipt = receipt_payload([uuid.uuid4().hex], "caregiver")
            caregiver.client.publish(f"retroguard/{DEVICE}/receipt", receipt, qos=1)
            # the guard reconnects after it (the status said it meanwhile: a moment only)
            assert reporter.wait_until(lambda s: s.connects >= 2 and s.ready, WAIT)
        assert raised
        said = [
            r
            for r in caplog.records
            if r.levelno >= logging.ERROR and "on_message failed" in r.getMessage()
        ]
        assert len(said) == 1, [r.getMessage() for r in said]
        assert said[0].exc_info is not None and f"{DEVICE}/receipt" in said[0].getMessage()
    finally:
        reporter.close()


def test_a_callback_that_fails_again_reconnects_later_each_time(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """Not real: the device's ``MqttReporter._on_subscribe`` raises at every connection (no
    message to hold: a reconnect is the only way to subscribe again). Before, the device
    reconnected at its least delay for good, a traceback each time. Now the delay doubles
    at each repeat, said in one line with the count, up to ``reconnect_max_s``; once the
    callback returns, the next loss waits the least again."""
    caplog.set_level(logging.INFO, logger="core.mqtt_callbacks")
    failing = [True]
    real = MqttReporter._on_subscribe

    def on_subscribe(self: MqttReporter, *args: Any) -> None:
        if failing[0]:
            raise RuntimeError("a bug in on_subscribe")
        real(self, *args)

    monkeypatch.setattr(MqttReporter, "_on_subscribe", on_subscribe)
    reporter = _reporter(mosquitto, tmp_path, reconnect_min_s=0.05, reconnect_max_s=0.2)
    reporter.start()
    try:

        def said() -> list[str]:
            guard = [r for r in caplog.records if r.name == "core.mqtt_callbacks"]
            return [r.getMessage() for r in guard if "on_subscribe failed" in r.getMessage()]

        assert reporter.wait_until(lambda s: s.connects >= 5, WAIT)  # after the 4th fault
        assert said()[:4] == [
            "MQTT on_subscribe failed: RuntimeError: a bug in on_subscribe; reconnecting",
            "MQTT on_subscribe failed: RuntimeError: a bug in on_subscribe (2 times now); "
            "reconnecting in 0.1 s (its traceback was logged the first time)",
            "MQTT on_subscribe failed: RuntimeError: a bug in on_subscribe (3 times now); "
            "reconnecting in 0.2 s (its traceback was logged the first time)",
            "MQTT on_subscribe failed: RuntimeError: a bug in on_subscribe (4 times now); "
            "reconnecting in 0.2 s (its traceback was logged the first time)",
        ]
        failing[0] = False
        assert reporter.wait_until(lambda s: s.ready, WAIT)
        client = reporter._client
        assert client is not None
        assert client._reconnect_min_delay == 0.05  # the owner's least again
    finally:
        reporter.close()


def test_a_callback_that_fails_for_days_keeps_its_longest_delay_and_paho_s_thread() -> None:
    """A callback with no message that fails at every connection (an ``on_connect`` bug) backs
    off to the client's most, 120 s by default: its 1026th fault comes after some 34 hours.
    The doubling was computed as ``least * 2 ** (times - 1)``, and from there ``int too large
    to convert to float`` was raised inside the guard, on paho's thread, ending it: the one
    thing the guard is for. Called here as paho calls it (the wrapped callback, no connection
    open, so nothing to drop)."""
    faults: list[CallbackFault] = []
    client = GuardedClient(
        mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, on_fault=faults.append
    )

    def on_connect(*args: Any) -> None:
        raise RuntimeError("a bug in on_connect")

    client.on_connect = on_connect
    guarded = client.on_connect
    assert guarded is not None
    for _ in range(1100):
        guarded(client, None, None, 0, None)  # type: ignore[arg-type]
    assert len(faults) == 1100
    assert faults[-1].times == 1100 and faults[-1].reconnect_in_s == 120.0
    assert client._reconnect_max_delay == 120 and client._reconnect_min_delay == 120.0


@NEEDS_CHROMIUM
@pytest.mark.parametrize("width", [1280, 360])
def test_a_held_message_is_said_on_the_page_live_with_the_badge_still_live(
    browser: Any,
    tmp_path: Path,
    mosquitto: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
    width: int,
) -> None:
    """A caregiver with the dashboard open sees the held message said without a reload (the
    live feed), its topic named, and the badge still "live": the others are received."""
    from playwright.sync_api import expect

    poisoned = _event(1, "stumble")
    raised: list[int] = []
    monkeypatch.setattr(
        Ingestor,
        "_on_message",
        _always_raising(Ingestor._on_message, _id(poisoned).encode(), raised),
    )
    with running_service(make_config(mosquitto, tmp_path), background=False) as service:
        page = logged_in(browser, service, width)
        expect(page.locator("body")).to_have_attribute("data-live", "1")  # the feed is open
        banner = page.locator("#broker-banner")
        expect(banner).to_be_hidden()
        device = Subscriber(mosquitto, ["retroguard/nothing"])
        try:
            device.client.publish(*poisoned, qos=1).wait_for_publish(WAIT)
            expect(banner).to_be_visible()
            expect(banner.locator(".broker-lead")).to_have_text(
                "A message from the treadmills cannot be handled:"
            )
            expect(banner).to_contain_text(f"a message on {poisoned[0]} the same way 2 times")
            expect(banner).to_contain_text("Other messages are received, stored and notified.")
            expect(page.locator("#live-status")).to_have_text("live")
            page.screenshot(path=shot(tmp_path, service, f"held-{width}.png"), full_page=True)
        finally:
            device.close()


def test_a_held_qos_0_message_is_not_said_to_be_sent_again(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not real: ``Ingestor._on_message`` raises for two stumbles sent at QoS 0 (as a person's
    ``mosquitto_pub`` sends, or Home Assistant its birth message). The first is said and
    reconnects; the second, the same fault again, is held. Before, the banner said it "left
    unacknowledged: the broker keeps it and sends it again at the next connection": a QoS 0
    message has no acknowledgement and is never sent again. Now the banner says it is not
    handled, and the guard's fault says QoS 0."""
    first, second = _event(1, "stumble"), _event(2, "stumble")
    raised: list[int] = []
    monkeypatch.setattr(
        Ingestor, "_on_message", _always_raising(Ingestor._on_message, b"stumble", raised)
    )
    with running_service(make_config(mosquitto, tmp_path), web=False) as service:
        link = service.ingestor.link
        said: list[object] = []
        banner = link.on_change

        def told(state: Any) -> None:
            said.append(state)
            banner(state)

        link.on_change = told
        faults: list[CallbackFault] = []
        callback_failed = service.ingestor._callback_failed

        def fault_said(fault: CallbackFault) -> None:
            faults.append(fault)
            callback_failed(fault)

        client = service.ingestor.client
        assert client is not None
        client._on_fault = fault_said  # what make_client was given, and the faults seen
        device = Subscriber(mosquitto, ["retroguard/nothing"])
        try:
            device.client.publish(*first, qos=0).wait_for_publish(WAIT)
            # said and reconnected: a QoS 0 message sent meanwhile would not be kept for it
            assert link.wait_for(
                lambda state: isinstance(state, Connected) and len(said) >= 2, WAIT
            )
            device.client.publish(*second, qos=0).wait_for_publish(WAIT)
            assert link.wait_for(_held_said, WAIT)
        finally:
            device.close()
        assert len(raised) == 2
        words = service.hub.broker
        assert words.lead == "A message from the treadmills cannot be handled"
        assert "sends it again" not in words.consequence
        assert words.consequence.startswith("It came at QoS 0, which the broker never sends")
        held = faults[-1]
        assert held.held and not held.unacknowledged
        assert "unacknowledged" not in held.words()
        assert "QoS 0 message (the broker never sends it again)" in held.words()


def _falls_behind(
    tmp_path: Path,
    mosquitto: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
    poisoned: list[tuple[str, bytes]],
    marker: bytes,
) -> tuple[Connected, BrokerMessage]:
    """``poisoned`` (each failing ``Ingestor._on_message``, for ``marker``), then ten falls,
    sent at QoS 1 to a running service: the first poisoned one alone until it is held (a
    reconnect, then the connection goes on without it), the rest on that connection, as
    they come over hours and days. Every fall must be stored; the link's held state and the
    banner's words once they are."""
    raised: list[int] = []
    monkeypatch.setattr(
        Ingestor, "_on_message", _always_raising(Ingestor._on_message, marker, raised)
    )
    falls = [_event(n + 1000, "fall") for n in range(10)]
    with running_service(make_config(mosquitto, tmp_path), web=False) as service:
        ingestor = service.ingestor
        device = Subscriber(mosquitto, ["retroguard/nothing"])
        try:
            device.client.publish(*poisoned[0], qos=1).wait_for_publish(WAIT)
            assert ingestor.link.wait_for(_held_said, WAIT)
            sent = [device.client.publish(t, p, qos=1) for t, p in (*poisoned[1:], *falls)]
            for info in sent:
                info.wait_for_publish(WAIT)
            assert ingestor.wait_for(lambda: ingestor.events_stored >= len(falls), WAIT), (
                f"{ingestor.events_stored} of {len(falls)} falls stored behind "
                f"{len(poisoned)} poisoned messages"
            )
        finally:
            device.close()
        assert {e.id for e in service.store.events_for(DEVICE)} == {_id(f) for f in falls}
        state = ingestor.link.state
        assert isinstance(state, Connected) and state.held is not None
        return state, service.hub.broker


def test_copies_of_a_held_message_do_not_fill_the_window(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not real: every copy of one stumble fails its handler. A treadmill sends an alert again
    until it is receipted (every hour, for days); before, each copy failing the same way was
    held at once, each keeping one of the broker's ``ReceiveMaximum`` in-flight slots, so
    after 100 copies no message of any treadmill was sent to the service (0 of the ten falls
    here). Now one is held (the broker keeps it), its copies are acknowledged, and the falls
    behind 119 copies are stored."""
    stumble = _event(1, "stumble")
    state, banner = _falls_behind(
        tmp_path, mosquitto, monkeypatch, [stumble] * FALLS, _id(stumble).encode()
    )
    assert state.held is not None and state.held.kept and state.held.held == 1
    assert not state.held.let_go
    assert banner.consequence.startswith("It is left unacknowledged: the broker keeps it")


def test_past_a_bound_a_failing_message_is_let_go_and_said(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not real: the handler fails on every stumble (a bug on one kind of message). Before,
    each was held at once once the fault had come twice: 100 stumbles filled the window and
    the falls behind them were never sent (0 of ten). Now :data:`HELD_MOST` are held and the
    rest let go (acknowledged unhandled: a treadmill sends a stumble again until receipted),
    said on the banner; the falls are stored."""
    assert HELD_MOST <= RECEIVE_MAXIMUM // 4  # most of the window stays for the others
    stumbles = [_event(n + 1, "stumble") for n in range(FALLS)]
    state, banner = _falls_behind(tmp_path, mosquitto, monkeypatch, stumbles, b'"stumble"')
    assert state.held is not None and state.held.let_go and state.held.held == HELD_MOST
    assert banner.consequence.startswith(f"{HELD_MOST} messages are held, each keeping one")
    assert "Other messages are received, stored and notified." in banner.consequence
