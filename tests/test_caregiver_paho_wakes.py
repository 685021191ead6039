"""One wake-up of paho's network thread for a batch of sends (caregiver.paho_wakes): what a
thread sends inside ``quiet`` all goes out, in order, after one wake-up; other threads' sends
are not held; a client unlike the one it was written for is left alone."""

from __future__ import annotations

import logging
import socket
import threading
from types import SimpleNamespace

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from caregiver.paho_wakes import coalesce_wakeups
from tests.mqtt_helpers import WAIT, subscriber
from tools.broker import Mosquitto


def _started_client(broker: Mosquitto) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    assert connected.wait(WAIT)
    return client


def _readable(sock: socket.socket) -> bytes:
    try:
        return sock.recv(100)
    except BlockingIOError:
        return b""


def test_a_quiet_threads_sends_wake_once_at_the_end() -> None:
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    client = SimpleNamespace(_sockpairW=writer)
    wakes = coalesce_wakeups(client)
    try:
        with wakes.quiet():
            for _ in range(5):
                client._sockpairW.send(b"0")  # what paho does for each packet queued
            assert _readable(reader) == b""
        assert _readable(reader) == b"0"
        client._sockpairW.send(b"0")  # outside the block: at once, as paho always did
        assert _readable(reader) == b"0"
        assert coalesce_wakeups(client)._stand_in is wakes._stand_in  # installed once
    finally:
        reader.close()
        writer.close()


def test_what_is_sent_quietly_is_delivered_in_order(mosquitto: Mosquitto) -> None:
    with subscriber(mosquitto, ["quiet/#"]) as sub:
        client = _started_client(mosquitto)
        try:
            wakes = coalesce_wakeups(client)
            with wakes.quiet():
                for i in range(20):
                    client.publish("quiet/n", str(i), qos=1)
            assert sub.wait(lambda: len(sub.on("quiet/n")) == 20)
            assert [int(m.payload) for m in sub.on("quiet/n")] == list(range(20))
        finally:
            client.disconnect()
            client.loop_stop()


def test_other_threads_are_not_held_by_a_quiet_one(mosquitto: Mosquitto) -> None:
    with subscriber(mosquitto, ["quiet/#"]) as sub:
        client = _started_client(mosquitto)
        try:
            wakes = coalesce_wakeups(client)
            inside, leave = threading.Event(), threading.Event()

            def quiet_thread() -> None:
                with wakes.quiet():
                    inside.set()
                    leave.wait(WAIT)

            thread = threading.Thread(target=quiet_thread)
            thread.start()
            assert inside.wait(WAIT)
            client.publish("quiet/other", "x", qos=1)
            assert sub.wait(lambda: len(sub.on("quiet/other")) == 1)  # while the other is quiet
            leave.set()
            thread.join(WAIT)
        finally:
            client.disconnect()
            client.loop_stop()


def test_a_client_without_the_wakeup_socket_is_left_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = SimpleNamespace(_sockpairW=None)
    with caplog.at_level(logging.WARNING, logger="caregiver.paho_wakes"):
        wakes = coalesce_wakeups(client)
    assert client._sockpairW is None
    assert "each packet wakes it" in caplog.text
    with wakes.quiet():  # does nothing
        pass
