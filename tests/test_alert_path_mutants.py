"""The alert path's decisions that hand mutation (store23) found no test noticing.

On a real SQLite file, and where the publisher is concerned against a real Mosquitto with the
reporter's clock in the test's hands (as :mod:`tests.test_mqtt_republish`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.protocol.events import Event, EventType
from core.protocol.topics import Topics
from firmware.mqtt import MqttReporter, ReporterStatus
from firmware.storage.database import FileDatabase
from firmware.storage.outbox import PRIORITY_PROTECTED, MessageKind, Outbox, queue_message
from tests.mqtt_helpers import WAIT, config_for, fall
from tests.test_mqtt_receipts import ACL, WITHOUT_EVENTS
from tests.test_mqtt_republish import BASE_S, Clock, rounds_in
from tools.broker import Mosquitto, mosquitto_available

DEVICE = "tm-1"


def _outbox(tmp_path: Path) -> Outbox:
    return Outbox(FileDatabase(tmp_path / "d.db"), Topics("retroguard", DEVICE), receipts=True)


def test_a_protected_row_no_receipt_can_name_leaves_at_the_puback(tmp_path: Path) -> None:
    """A protected row without a message id (queued before receipts, its id not recoverable
    from its payload by the migration) can never be named by a receipt: it leaves at the
    broker's PUBACK as before receipts, beside an alert that waits for one. Mutant that
    survived: ``message_id IS NOT NULL`` dropped from :meth:`Outbox.settle`, so such a row
    waited for ever and was sent again at every round, for ever."""
    outbox = _outbox(tmp_path)
    alert = Event.now(EventType.FALL, DEVICE, 1.0, "TRIPPED", "fall")
    outbox.enqueue_event(alert)
    outbox.database.write(
        lambda conn: queue_message(
            conn, MessageKind.EVENT, PRIORITY_PROTECTED, outbox.topics.event, '{"old":1}'
        )
    )
    outbox.settle(r.id for r in outbox.fetch_after(0, 10))
    assert [r.payload for r in outbox.fetch_after(0, 10)] == [
        r.payload for r in outbox.awaiting_receipt(10)
    ]
    assert outbox.depth() == 1 and outbox.awaiting_count() == 1
    assert alert.id in outbox.awaiting_receipt(10)[0].payload
    outbox.close()


def _live_for(device: MqttReporter, clock: Clock, seconds: float, deleted: int = 0) -> None:
    """:func:`tests.test_mqtt_republish.live_for`, counting ``deleted`` rows the broker had
    acknowledged and that left without a receipt."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now = min(end, clock.now + BASE_S)
        assert device.wait_drained(WAIT)
        assert device.wait_until(
            lambda s: s.acked == s.depth + device.receipted + s.republished + deleted, WAIT
        )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def device(mosquitto: Mosquitto, tmp_path: Path, clock: Clock) -> Iterator[MqttReporter]:
    reporter = MqttReporter(
        config_for(mosquitto),
        device_id="treadmill-1",
        device_name="T",
        database=tmp_path / "device.db",
        clock=clock,
    )
    reporter.start()
    assert reporter.wait_until(lambda s: s.ready, WAIT)
    yield reporter
    reporter.close()


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")
def test_a_round_with_nothing_waiting_brings_the_republication_back_to_its_first_interval(
    device: MqttReporter, clock: Clock
) -> None:
    """Rows that stopped waiting without a receipt (forgotten by :meth:`Outbox.delete`, as a
    damaged file's unsalvageable queue is) leave the next round with nothing to send: the
    backoff starts over there, so the next alert's first copy comes ``receipt_retry_s`` after
    it, not after the wait the old one had reached. Mutant that survived: the reset dropped,
    the new alert's copy four minutes late."""
    old = fall("treadmill-1", 1.0)
    device.sink.handle(old)
    assert device.wait_until(lambda s: s.awaiting == 1, WAIT)
    _live_for(device, clock, BASE_S * (1 + 2))  # two unanswered rounds: the next wait is 4 min
    assert device.status.republished == 2
    device.outbox.delete(r.id for r in device.outbox.awaiting_receipt(10))
    _live_for(device, clock, BASE_S * 4, deleted=1)  # the round falls due, nothing to send
    assert device.status.republished == 2
    device.sink.handle(fall("treadmill-1", 2.0))
    assert device.wait_until(lambda s: s.awaiting == 1, WAIT)
    _live_for(device, clock, BASE_S, deleted=1)
    assert device.status.republished == 3  # its first copy, a minute after the round


def _taken_or_refused(refusals: int, status: ReporterStatus) -> bool:
    """The broker took the alert at last, or refused it ``refusals`` times."""
    return status.awaiting == 1 or status.refused == refusals


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")
def test_an_alert_refused_then_taken_backs_off_as_any_alert_waiting_for_its_receipt(
    tmp_path: Path, clock: Clock
) -> None:
    """An alert the broker refused (its ACL) is offered every ``receipt_retry_s``; once the
    fixed ACL lets it through it waits for a consumer's receipt like any other alert, sent
    again on the backoff, not every minute as a refused row. Mutant that survived: a row
    the broker took at last not struck off the refused ones, so it went out twice a minute
    (as refused, and as waiting) until a receipt came."""
    broker = Mosquitto(users={"treadmill-1": "dev1-pw"}, acl=WITHOUT_EVENTS).start()
    try:
        config = dataclasses.replace(config_for(broker), username="treadmill-1", password="dev1-pw")
        device = MqttReporter(
            config,
            device_id="treadmill-1",
            device_name="T",
            database=tmp_path / "d.db",
            clock=clock,
        )
        device.start()
        assert device.wait_until(lambda s: s.ready, WAIT)
        device.sink.handle(fall("treadmill-1"))
        assert device.wait_until(lambda s: s.refused == 1, WAIT)
        broker.reload_acl(ACL)  # SIGHUP: read when the broker gets to it
        tries = 1
        while device.status.awaiting == 0:  # offered each minute until the broker takes it
            assert tries < 20
            clock.now += BASE_S
            device.wake()  # (not drained meanwhile: the refused row is not the broker's)
            assert device.wait_until(functools.partial(_taken_or_refused, tries + 1), WAIT)
            tries = device.status.refused
        minutes = 9
        for _ in range(minutes):
            clock.now += BASE_S
            device.wake()
            assert device.wait_drained(WAIT)
            assert device.wait_until(lambda s: s.acked == 1 + s.republished, WAIT)
        assert device.status.refused == tries
        assert device.status.republished == rounds_in(minutes * BASE_S) == 3
        assert device.status.depth == 1  # kept until a receipt names it
        device.close()
    finally:
        broker.cleanup()
