"""How often the device publishes again an alert no consumer has receipted — against a real
Mosquitto, with the reporter's clock in the test's hands.

Every copy is queued by the broker for an offline caregiver's persistent session. At a fixed
``receipt_retry_s`` (60 s) that was 1,440 copies of one alert a day: Mosquitto's per-session
queue (``max_queued_messages``, 1000 here as by default) filled with repeats and dropped the
next new alert for that session. The republication now backs off (doubling up to
``receipt_retry_max_s``) while no receipt comes, and comes back to ``receipt_retry_s`` on a
consumer's receipt and on every (re)connect; the alert still stays on the device until a
receipt names it.

The clock moves only when a test moves it; after each move the test waits for a pass of the
publisher that saw it (:meth:`MqttReporter.wait_drained`'s fresh figures), which is when a
timer due by then has fired. Nothing here waits for real time to pass.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.protocol.payloads import receipt_payload
from firmware.config import MqttConfig
from firmware.mqtt import MqttReporter, ReporterStatus
from firmware.session.record import SessionArchive
from tests.caregiver_support import session_record
from tests.mqtt_helpers import WAIT, Subscriber, config_for, fall
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

DEVICE = "treadmill-1"
EVENTS = f"retroguard/{DEVICE}/event"
BASE_S = MqttConfig().receipt_retry_s
"""The defaults, as a device runs with them: 60 s ..."""
CAP_S = MqttConfig().receipt_retry_max_s
"""... doubling to 3600 s."""
DAY_S = 86400.0


class Clock:
    """The reporter's monotonic clock: it moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rounds_in(seconds: float, base: float = BASE_S, cap: float = CAP_S) -> int:
    """Republication rounds in ``seconds`` after a (re)connect, from the documented schedule:
    the first after ``base``, each next after twice the last wait, at most ``cap``."""
    t, wait, rounds = 0.0, base, 0
    while t + wait <= seconds:
        t += wait
        rounds += 1
        wait = min(cap, wait * 2)
    return rounds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def device(mosquitto: Mosquitto, tmp_path: Path, clock: Clock) -> Iterator[MqttReporter]:
    reporter = MqttReporter(
        config_for(mosquitto),  # receipt_retry_s and receipt_retry_max_s: the defaults
        device_id=DEVICE,
        device_name="Dad's treadmill",
        database=tmp_path / "device.db",
        clock=clock,
    )
    reporter.start()
    assert reporter.wait_until(lambda s: s.ready, WAIT)
    yield reporter
    reporter.close()


def live_for(device: MqttReporter, clock: Clock, seconds: float) -> None:
    """Let ``seconds`` of the device's time pass in steps of ``receipt_retry_s`` (every moment
    the old fixed timer fired), each seen by a pass of the publisher, and after each wait until
    the broker has acknowledged every copy handed to it: a copy still in flight is not sent
    again (paho re-sends it itself), so the count would depend on how fast the broker
    answered."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now = min(end, clock.now + BASE_S)
        assert device.wait_drained(WAIT)
        all_acked(device)


def all_acked(device: MqttReporter) -> None:
    """Until the broker has acknowledged every first publication and every copy (no
    telemetry or other rows in these tests: each acknowledgement is one of those)."""
    assert device.wait_until(lambda s: s.acked == s.depth + device.receipted + s.republished, WAIT)


def copies(sub: Subscriber, event_id: str) -> int:
    return sum(1 for m in sub.on("/event") if json.loads(m.payload)["id"] == event_id)


def test_an_offline_caregiver_session_queues_a_bounded_number_of_copies_a_day(
    mosquitto: Mosquitto, device: MqttReporter, clock: Clock
) -> None:
    """The fault: 1,440 copies a day of one alert, the broker's queue for the caregiver full of
    them, and the next new alert dropped for it. Now 29 copies a day; the new alert is queued,
    and both reach the caregiver and leave the device once it receipts them."""
    caregiver = Subscriber(mosquitto, [EVENTS], client_id="caregiver", persistent=True)
    caregiver.close()  # down, its session kept by the broker: every copy is queued for it
    alert = fall(DEVICE)
    device.sink.handle(alert)
    assert device.wait_until(lambda s: s.awaiting == 1, WAIT)

    live_for(device, clock, DAY_S)
    assert device.status.republished == rounds_in(DAY_S) == 28  # before: 1,440
    assert device.status.depth == 1  # kept: nothing is dropped for want of a receipt

    later = fall(DEVICE, 2.0)  # a new alert after a day of that: the session still takes it
    device.sink.handle(later)
    assert device.wait_until(lambda s: s.awaiting == 2, WAIT)
    all_acked(device)

    caregiver = Subscriber(mosquitto, [EVENTS], client_id="caregiver", persistent=True)
    queued = 1 + device.status.republished  # the first publication and every copy
    assert caregiver.wait(lambda: copies(caregiver, alert.id) == queued)
    assert caregiver.wait(lambda: copies(caregiver, later.id) == 1)
    assert queued == 29
    caregiver.client.publish(
        f"retroguard/{DEVICE}/receipt", receipt_payload([alert.id, later.id], "caregiver"), qos=1
    )
    assert device.wait_until(lambda s: s.depth == 0, WAIT)
    assert device.receipted == 2
    caregiver.close()


def test_a_receipt_brings_the_republication_back_to_its_first_interval(
    mosquitto: Mosquitto, device: MqttReporter, clock: Clock
) -> None:
    """A consumer that receipts anything is alive: an alert it did not confirm (its copy was
    lost) goes again after ``receipt_retry_s``, not after the backoff reached so far."""
    lost, seen = fall(DEVICE, 1.0), fall(DEVICE, 2.0)
    device.sink.handle(lost)
    device.sink.handle(seen)
    assert device.wait_until(lambda s: s.awaiting == 2, WAIT)
    quiet = BASE_S * (1 + 2 + 4 + 8 + 16)  # five unanswered rounds: the next wait is 32 * 60 s
    live_for(device, clock, quiet)
    assert device.status.republished == 2 * rounds_in(quiet) == 10
    live_for(device, clock, BASE_S)
    assert device.status.republished == 10  # backing off: nothing after one more minute

    sub = Subscriber(mosquitto, [EVENTS])
    sub.client.publish(f"retroguard/{DEVICE}/receipt", receipt_payload([seen.id], "care"), qos=1)
    assert device.wait_until(lambda s: s.depth == 1, WAIT)
    live_for(device, clock, BASE_S)
    assert device.status.republished == 11  # the one not confirmed, a minute later
    assert sub.wait(lambda: copies(sub, lost.id) == 1)
    sub.close()


def test_a_reconnect_republishes_at_once_and_then_after_the_first_interval(
    mosquitto: Mosquitto, device: MqttReporter, clock: Clock
) -> None:
    """A new broker session may have lost what it queued: the reconnect sends every unreceipted
    alert again at once, and the backoff starts over."""
    alert = fall(DEVICE)
    device.sink.handle(alert)
    assert device.wait_until(lambda s: s.awaiting == 1, WAIT)
    quiet = BASE_S * (1 + 2 + 4 + 8 + 16)
    live_for(device, clock, quiet + BASE_S)
    assert device.status.republished == rounds_in(quiet) == 5  # the last minute: backing off

    mosquitto.restart()
    assert device.wait_until(lambda s: s.connects == 2 and s.ready, WAIT)
    assert device.wait_drained(WAIT)
    assert device.status.republished == 6  # at once, on the new connection
    all_acked(device)
    live_for(device, clock, BASE_S)
    assert device.status.republished == 7  # and a minute later, not 64 minutes later
    assert device.status.depth == 1


ACL = (Path(__file__).resolve().parent.parent / "docs" / "mqtt" / "mosquitto.acl").read_text()
WITHOUT_SESSIONS = ACL.replace("pattern write retroguard/%u/session\n", "")
"""The documented ACL with the device's ``session`` line lost (a provider's copy gone wrong)."""


def refused_and_acked(tries: int, status: ReporterStatus) -> bool:
    """The broker refused the summary ``tries`` times and acknowledged every alert copy."""
    return status.refused == tries and status.acked == 1 + status.republished


def test_a_message_the_broker_refuses_is_tried_every_receipt_retry_s_without_backoff(
    tmp_path: Path, clock: Clock
) -> None:
    """The broker queued no copy of a refused row for anyone: it is offered again every
    ``receipt_retry_s`` (an ACL fixed and reloaded delivers it within that), while an alert
    the broker took and no consumer confirmed backs off beside it. (A guard: it held before
    the backoff too; a backoff that took the refused rows along fails it.)"""
    assert WITHOUT_SESSIONS != ACL
    broker = Mosquitto(users={DEVICE: "dev1-pw"}, acl=WITHOUT_SESSIONS).start()
    try:
        config = dataclasses.replace(config_for(broker), username=DEVICE, password="dev1-pw")
        device = MqttReporter(
            config, device_id=DEVICE, device_name="T", database=tmp_path / "d.db", clock=clock
        )
        device.start()
        assert device.wait_until(lambda s: s.ready, WAIT)
        device.sink.handle(fall(DEVICE))
        archive = SessionArchive(
            device.outbox.database, summary_topic=device.topics.session, on_queued=device.wake
        )
        record = session_record(DEVICE, dt.datetime.now(dt.UTC), backward_min=12, longest_min=10)
        assert archive.save(record, final=True)
        assert device.wait_until(functools.partial(refused_and_acked, 1), WAIT)
        minutes = 10
        for tries in range(2, minutes + 2):
            clock.now += BASE_S
            device.wake()
            assert device.wait_until(functools.partial(refused_and_acked, tries), WAIT), tries
        assert device.status.refused == 1 + minutes  # every minute
        assert device.status.republished == rounds_in(minutes * BASE_S) == 3  # backing off
        assert device.status.depth == 2  # both kept
        device.close()
    finally:
        broker.cleanup()


class WatchedQueue(queue.SimpleQueue[Any]):
    """The publisher's wake-up queue, recording each wait for a token (its timeout) and each
    token taken, so a test can see how long the publisher means to sleep."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []
        self.cond = threading.Condition()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self.cond:
            self.log.append(("wait", timeout))
            self.cond.notify_all()
        item = super().get(block, timeout)
        with self.cond:
            self.log.append(("took", item))
            self.cond.notify_all()
        return item

    def next_wait_after_a_token(self, since: int) -> float | None:
        """The timeout of the first wait begun after the first token taken past ``since``
        (None: not yet)."""
        took = next((i for i in range(since, len(self.log)) if self.log[i][0] == "took"), None)
        if took is None:
            return None
        return next((t for what, t in self.log[took + 1 :] if what == "wait"), None)


def test_the_publisher_sleeps_while_the_broker_is_away_though_a_round_is_due(
    mosquitto: Mosquitto, tmp_path: Path, clock: Clock
) -> None:
    """A receipt round that fell due while the broker was away made the publisher wait 0 s for
    its next token, again and again (a whole core while the broker was down, measured: 0.9 CPU
    s a second). It now sleeps until something happens: the reconnect sends the round."""
    device = MqttReporter(
        config_for(mosquitto), device_id=DEVICE, device_name="T", database=tmp_path / "d.db",
        clock=clock,
    )  # fmt: skip
    watched = WatchedQueue()
    device._wake = watched  # before start: every token goes through it
    device.start()
    assert device.wait_until(lambda s: s.ready, WAIT)
    device.sink.handle(fall(DEVICE))
    assert device.wait_until(lambda s: s.awaiting == 1, WAIT)
    mosquitto.stop()
    assert device.wait_until(lambda s: not s.connected, WAIT)

    clock.now += 2 * BASE_S  # the round is due, and there is no broker to send it to
    with watched.cond:
        since = len(watched.log)
    device.wake()
    with watched.cond:
        assert watched.cond.wait_for(
            lambda: watched.next_wait_after_a_token(since) is not None, WAIT
        )
        timeout = watched.next_wait_after_a_token(since)
    assert timeout is not None and timeout > 0  # before: 0, and so on without end

    mosquitto.start()  # the round goes out on the new connection
    assert device.wait_until(lambda s: s.connects == 2 and s.republished >= 1, WAIT)
    device.close()
