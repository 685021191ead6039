"""A caregiver ``online`` that lapses while the device's database fails costs no busy loop.

The reporter's publisher thread wakes at the end of the ``online`` it heard, so the device's
``caregiver`` topic says the lapse at once; the lapse itself was decided only by a pass's
look at the presence, which comes after the outbox is read. While the database failed, no
pass got that far: the end stayed in the past, and every turn of the loop woke at once for
it, its back-off skipping the pass that would have moved it, a whole core spent until the
database worked again (on the Pi whose real-time loop shares those cores).

A real Mosquitto hands the ``online`` over; the device's monotonic clock is the test's and
stands still, so a loop that waits for nothing turns for ever: the publisher's own queue says
whether it waits (a ``get`` with a time to wait) or turns (``get`` without one, again and
again). Nothing is timed.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core.protocol.messages import CaregiverPresence
from core.protocol.payloads import caregiver_status_payload
from core.protocol.topics import caregiver_status_topic
from firmware.mqtt import MqttReporter
from firmware.storage.outbox import Outbox
from tests.mqtt_helpers import WAIT, config_for, mqtt5_voice
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

DEVICE = "treadmill-1"
PRESENCE = caregiver_status_topic("retroguard")
TURNS = 1000
"""Gets without a wait in a row, the clock standing still: a loop that turns for nothing."""


class Clock:
    """The device's monotonic clock: it moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class WatchedWake(queue.SimpleQueue):  # type: ignore[type-arg]
    """The publisher's wake-up queue, saying, once :attr:`armed`, whether it was asked to wait
    (:attr:`waited`, twice) or asked :data:`TURNS` times not to (:attr:`turned`)."""

    armed = False
    waited = threading.Event()
    turned = threading.Event()
    decided = threading.Event()
    """Set with either."""
    turns = 0
    waits = 0

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        cls = type(self)
        if cls.armed:
            if timeout is not None and timeout <= 0:
                cls.turns += 1
                if cls.turns >= TURNS:
                    cls.turned.set()
                    cls.decided.set()
            else:
                cls.waits += 1
                if cls.waits >= 2:  # the first may have been reckoned before the clock moved
                    cls.waited.set()
                    cls.decided.set()
        return super().get(block, timeout)


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> type[WatchedWake]:
    WatchedWake.armed, WatchedWake.turns, WatchedWake.waits = False, 0, 0
    WatchedWake.waited, WatchedWake.turned = threading.Event(), threading.Event()
    WatchedWake.decided = threading.Event()
    monkeypatch.setattr(
        "firmware.mqtt.reporter.queue",
        types.SimpleNamespace(SimpleQueue=WatchedWake, Empty=queue.Empty),
    )
    return WatchedWake


@pytest.fixture
def failing(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set: the outbox's database refuses every read (a disk that went away)."""
    fail = threading.Event()
    real_fetch = Outbox.fetch_after

    def fetch_after(self: Outbox, after_id: int, limit: int) -> list[object]:
        if fail.is_set():
            raise sqlite3.OperationalError("disk I/O error")
        return real_fetch(self, after_id, limit)  # type: ignore[return-value]

    monkeypatch.setattr(Outbox, "fetch_after", fetch_after)
    return fail


@pytest.fixture
def device(
    mosquitto: Mosquitto, tmp_path: Path, watched: type[WatchedWake], failing: threading.Event
) -> Iterator[tuple[MqttReporter, Clock]]:
    clock = Clock()
    reporter = MqttReporter(
        config_for(mosquitto),
        device_id=DEVICE,
        device_name="T",
        database=tmp_path / "d.db",
        clock=clock,
    )
    reporter.start()
    assert reporter.wait_until(lambda s: s.ready, WAIT)
    yield reporter, clock
    failing.clear()
    reporter.close()


def test_an_online_lapsing_while_the_database_fails_is_waited_for_not_spun_on(
    mosquitto: Mosquitto,
    device: tuple[MqttReporter, Clock],
    watched: type[WatchedWake],
    failing: threading.Event,
) -> None:
    reporter, clock = device
    with mqtt5_voice(mosquitto) as service:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.MessageExpiryInterval = 60
        payload = caregiver_status_payload(CaregiverPresence.ONLINE, "caregiver", expires_s=60)
        service.publish(PRESENCE, payload, qos=1, retain=True, properties=props).wait_for_publish(
            WAIT
        )
        assert reporter.wait_until(
            lambda s: s.caregiver.state == "online" and s.caregiver.expires_at is not None, WAIT
        )
    ends = reporter.status.caregiver.expires_at
    assert ends is not None
    failing.set()
    reporter.wake()
    assert reporter.wait_until(lambda s: (s.last_error or "").startswith("database error"), WAIT)
    clock.now = ends + 1  # the online's end has passed, and no pass gets as far as to look
    watched.armed = True  # from here the publisher backs off: it must wait, not turn
    reporter.wake()
    assert watched.decided.wait(WAIT)
    assert not watched.turned.is_set(), f"{watched.turns} turns without a wait"
    assert reporter.status.caregiver.away(clock.now)  # the walker is told at arming meanwhile

    failing.clear()  # the database back: the device's topic says the lapse
    clock.now += 60
    reporter.wake()
    assert reporter.wait_until(lambda s: s.caregiver.state == "unknown", WAIT)
    assert reporter.status.caregiver.lapsed
