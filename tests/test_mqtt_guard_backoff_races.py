"""A repeated callback fault's reconnect back-off must hold for the reconnect it causes, on
whichever thread the callbacks run.

:class:`core.mqtt_callbacks.GuardedClient` lengthens paho's least reconnect delay when a
callback fails again the same way, and gives the owner's back once that callback returns.
``on_publish`` may run on a publisher's thread (a QoS 0 message sent at once) while paho's
thread runs another callback, and it runs once per message: a review found (session 36) that
a restore computed before a longer delay was set could be given to paho after it, and that
any other message's ``on_publish`` returning, before paho even waited, undid the back-off of
a fault tied to one message. Driven here as paho drives them (the wrapped callbacks), from
two threads held at the racy moment by events, on a client connected to a real Mosquitto
(its connection attempts are what a success must come after).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from core.mqtt_callbacks import GuardedClient
from tests.mqtt_helpers import WAIT
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

LEAST_S, MOST_S = 1, 64


class _Callbacks:
    """``on_publish`` and ``on_subscribe`` that raise (a bug) while ``failing`` says so."""

    def __init__(self) -> None:
        self.failing = {"on_publish": True, "on_subscribe": True}

    def on_publish(self, *args: Any) -> None:
        if self.failing["on_publish"]:
            raise RuntimeError("a bug in on_publish")

    def on_subscribe(self, *args: Any) -> None:
        if self.failing["on_subscribe"]:
            raise RuntimeError("a bug in on_subscribe")


def _client(callbacks: _Callbacks) -> GuardedClient:
    client = GuardedClient(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.reconnect_delay_set(LEAST_S, MOST_S)
    client.on_publish = callbacks.on_publish
    client.on_subscribe = callbacks.on_subscribe
    return client


def _publish_returned(client: GuardedClient, mid: int) -> None:
    """paho's call of ``on_publish`` for message ``mid`` (acknowledged by the broker)."""
    on_publish = client.on_publish
    assert on_publish is not None
    on_publish(client, None, mid, mqtt.ReasonCode(mqtt.PacketTypes.PUBACK), None)


def _subscribed(client: GuardedClient) -> None:
    on_subscribe = client.on_subscribe
    assert on_subscribe is not None
    on_subscribe(client, None, 1, [], None)


@contextmanager
def _connected(client: GuardedClient, mosquitto: Mosquitto) -> Iterator[None]:
    """A real connection (a later attempt than the faults before it); no network loop:
    the test runs the callbacks itself."""
    client.connect(mosquitto.host, mosquitto.port)
    try:
        yield
    finally:
        client.disconnect()


class _TellingLock:
    """A lock that tells ``contended`` when a thread finds it held and waits for it."""

    def __init__(self, contended: threading.Event) -> None:
        self._lock = threading.Lock()
        self._contended = contended

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            self._contended.set()
            self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def test_a_restore_on_one_thread_cannot_undo_a_longer_delay_set_on_another(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``on_publish`` backed off (two faults), then returns on a publisher's thread after a
    reconnect: the owner's least again. Meanwhile paho's thread has ``on_subscribe`` fail a
    second time, asking twice the least. Held by events: the publisher's thread gives paho
    its restore only after the other thread either gave paho its longer delay (the old code:
    the restore, computed under the lock and given outside it, then overwrote it, and the
    reconnect the fault caused waited the least) or found the guard's lock held (computed
    and given under one lock: the longer delay is given last)."""
    callbacks = _Callbacks()
    client = _client(callbacks)
    _subscribed(client)  # on_subscribe's first fault: no back-off yet
    _publish_returned(client, 1)
    _publish_returned(client, 2)  # on_publish's second: backed off
    assert client._reconnect_min_delay == 2 * LEAST_S

    restoring = threading.Event()
    other_went_on = threading.Event()  # gave paho its delay, or waits for the guard's lock
    client._faults_lock = _TellingLock(other_went_on)  # type: ignore[assignment]
    real = mqtt.Client.reconnect_delay_set

    def reconnect_delay_set(self: mqtt.Client, min_delay: int, max_delay: int) -> None:
        if threading.current_thread() is publisher_thread:
            restoring.set()
            assert other_went_on.wait(WAIT)
        real(self, min_delay, max_delay)
        if threading.current_thread() is paho_thread:
            other_went_on.set()

    monkeypatch.setattr(mqtt.Client, "reconnect_delay_set", reconnect_delay_set)
    with _connected(client, mosquitto):
        callbacks.failing["on_publish"] = False
        publisher_thread = threading.Thread(target=_publish_returned, args=(client, 3))
        paho_thread = threading.Thread(target=_subscribed, args=(client,))
        publisher_thread.start()
        assert restoring.wait(WAIT)
        paho_thread.start()
        publisher_thread.join(WAIT)
        paho_thread.join(WAIT)
        assert not publisher_thread.is_alive() and not paho_thread.is_alive()
        assert client._reconnect_min_delay == 2 * LEAST_S  # on_subscribe's second fault


def test_another_message_s_on_publish_on_the_same_attempt_keeps_the_back_off(
    mosquitto: Mosquitto,
) -> None:
    """``on_publish`` runs once per message: one message's fails (a second time, the same
    way), the connection is dropped, and before paho waits to reconnect the next PUBACK of
    the same read runs it for another message, which returns. Before, that undid the back-
    off at once (paho waited its least: a fault tied to some messages barely backed off).
    Now only a success on a later connection attempt gives the owner's least back."""
    callbacks = _Callbacks()
    client = _client(callbacks)
    _publish_returned(client, 1)
    _publish_returned(client, 2)
    assert client._reconnect_min_delay == 2 * LEAST_S
    callbacks.failing["on_publish"] = False
    _publish_returned(client, 3)  # the same attempt: says nothing of the one dropped
    assert client._reconnect_min_delay == 2 * LEAST_S
    with _connected(client, mosquitto):  # a later attempt
        _publish_returned(client, 4)
        assert client._reconnect_min_delay == LEAST_S
