"""Session 35's new code: decisions that hand mutation (mut36) found no test noticing.

The code session 35 wrote that no mutation pass had looked at: the caregiver presence's renewal
(caregiver/presence.py and its use in caregiver/ingest.py and caregiver/service.py, beyond what
tests/test_caregiver_presence_expiry_edges.py found), the device's lapse of an ``online`` nobody
says again (firmware/mqtt/caregiver.py, firmware/mqtt/reporter.py, and ``expires_s`` in
core/protocol), :class:`core.mqtt_callbacks.GuardedClient`'s poisoned-message hold (f6aa14e) and
capped back-off (8244c38), :func:`caregiver.notify.retry_delay` (9d7c37f),
:class:`caregiver.auth.LoginThrottle`'s cap (5fce4e6) and the login form's kept name and
``next`` (6aba28f). 74 mutants by hand, each run against the tests of its module
(tests/test_caregiver_presence*.py, tests/test_caregiver_liveness.py, tests/test_protocol.py,
tests/test_fuzz_protocol.py, tests/test_mqtt_poisoned_message.py,
tests/test_mqtt_callback_faults.py, tests/test_caregiver_notify_deadline.py and the escalation
and config tests, tests/test_caregiver_login_throttle.py, tests/test_caregiver_accounts.py,
tests/test_caregiver_browser_edges.py's mistyped password): 45 killed at first, 66 in the end, 8
left (below). The brokers and databases are real (Mosquitto, SQLite files, the suite's
PostgreSQL for the browser tests); the guard's tests call its wrapped callbacks as paho's thread
does, with no connection open (nothing to drop), as tests/test_mqtt_poisoned_message.py's
day-long test does.

Killed here or beside, surviving before: a held message said "left unacknowledged" by a client
that acknowledges as it receives (or never said so); fewer faults remembered than
:data:`FAULTS_REMEMBERED` says, or them forgotten in the order first seen rather than last, or
the newest dropped instead of the oldest; a fault counted as the same one without its error, its
topic or its callback (another message failing the same way held at its first fault); the
owner's least delay brought back while another callback still fails, and paho's most set to the
lengthened delay; ``retry_delay`` cutting a ``retry_s`` longer than the hour to the hour,
doubling uncapped (an ``OverflowError`` from the 1025th attempt) or capped at a few doublings;
an ``expires_s`` of exactly a day refused; a lapsed ``online`` heard again keeping the lapsed
one's "since"; the same ``online`` handed over again keeping its first end though the broker now
says a sooner one; a renewal that raises anything but a ``RuntimeError`` ending the renewal
thread; the throttle's wait (429) forgetting the name and the link's page, and the first visit's
cursor not in the name (tests/test_caregiver_browser_edges.py); a presence cleared (or not one)
after another instance's "cannot store" still holding this instance's renewals back, and a
stopped service's renewal thread left running (tests/test_caregiver_presence_renewal.py).

Survivors left alone, each equivalent (no input tells it from the original) unless said:

* mqtt_callbacks: ``_returned`` without its "not backed off: nothing to do" return (the
  wrapped callback calls it only after seeing its name backed off; two threads racing there
  discard the name twice and restore the owner's least twice, the same end).
* presence, *survive, not equivalent*: the renewal said every expiry instead of every third of
  it (``PresenceRenewal`` given ``expiry_s``, or its wait three times as long). The renewal
  test sees three ``online`` within its wait either way; only the real clock tells them apart
  (the broker's retained ``online`` then gone for a moment before each renewal), and tests
  assert no timing.
* ingest: ``_other_not_storing`` without its ``online and`` (an ``offline`` says ``storing``
  only as true: the service never says a fault with it, and any ``offline`` heard makes this
  instance say ``online`` again, which it hears back and clears the flag with).
* firmware caregiver: ``_online_ends`` kept from an earlier ``online`` when one with no end is
  heard (only the same payload heard again reads it, and that payload's kept end is its own
  either way).
* firmware caregiver: the self-test's lapse words asked only while connected (the branch
  before them takes every view of a device not connected); ``lapse_if_due`` leaving
  ``_expires_at`` set (read only through :attr:`CaregiverWatch.expires_at`, None once the
  state is not ``online``; a hearing or a lost link sets it anew).
* mqtt_callbacks: :data:`FAULTS_REMEMBERED` a step down (a size, not a rule: the test below
  reads it, and no other code or document says 64).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from caregiver.notify import RETRY_EVERY_AT_MOST_S, retry_delay
from caregiver.presence import PresenceRenewal
from core.mqtt_callbacks import FAULTS_REMEMBERED, CallbackFault, GuardedClient
from core.protocol.messages import PRESENCE_EXPIRY_MAX_S, CaregiverStatusMessage, ProtocolError
from core.protocol.payloads import decode_as
from firmware.mqtt.caregiver import CaregiverWatch
from tests.mqtt_helpers import WAIT
from tests.test_caregiver_presence_expiry_edges import Clock, _online


def _guarded(
    *, manual_ack: bool = False, least: int = 1, most: int = 120
) -> tuple[GuardedClient, list[CallbackFault]]:
    """A guarded client (no connection: nothing to drop) and the faults it tells."""
    faults: list[CallbackFault] = []
    client = GuardedClient(
        mqtt.CallbackAPIVersion.VERSION2,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
        on_fault=faults.append,
    )
    client.reconnect_delay_set(least, most)
    return client, faults


def _failing_on_message(client: GuardedClient) -> Any:
    """``client``'s ``on_message`` as paho calls it, raising whatever the message's payload
    names (a bug that fails so for that message)."""

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        raise RuntimeError(bytes(message.payload).decode())

    client.on_message = on_message
    guarded = client.on_message
    assert guarded is not None
    return guarded


def _message(topic: str, error: str = "a bug") -> mqtt.MQTTMessage:
    message = mqtt.MQTTMessage(mid=1, topic=topic.encode())
    message.qos = 1  # as the treadmills send (paho's default, 0, has nothing to acknowledge)
    message.payload = error.encode()
    return message


def test_a_held_message_is_said_unacknowledged_only_where_acknowledged_by_hand() -> None:
    """The caregiver's ingest acknowledges by hand: its held message stays with the broker,
    sent again at the next connection, and the log and status say so. A device acknowledges
    as paho receives: its held message is gone, and saying "the broker sends it again" would
    promise what will not happen."""
    for manual_ack, kept in ((True, True), (False, False)):
        client, faults = _guarded(manual_ack=manual_ack)
        on_message = _failing_on_message(client)
        for _ in range(2):
            on_message(client, None, _message("retroguard/treadmill-1/event"))
        assert [f.held for f in faults] == [False, True]
        assert faults[1].unacknowledged is kept
        words = faults[1].words()
        assert ("left unacknowledged" in words) is kept
        assert words.startswith(
            "MQTT on_message failed (a message on retroguard/treadmill-1/event): "
            "RuntimeError: a bug (2 times now); reconnecting did not help"
        )


def test_the_client_remembers_its_newest_faults_and_forgets_the_oldest_first() -> None:
    """:data:`FAULTS_REMEMBERED` faults are counted; one more forgets the one least recently
    seen (a fault seen again is the newest): so a poisoned message that keeps failing stays
    held while passing faults come and go, and a forgotten one is reconnected for again."""
    client, faults = _guarded(manual_ack=True)
    on_message = _failing_on_message(client)
    for n in range(FAULTS_REMEMBERED):
        on_message(client, None, _message(f"t/{n}"))
    on_message(client, None, _message("t/0"))  # all 64 remembered: the second time, held
    assert faults[-1].times == 2 and faults[-1].held
    on_message(client, None, _message("t/new"))  # one too many: t/1 goes, not t/0 (seen last)
    on_message(client, None, _message("t/0"))
    assert faults[-1].times == 3 and faults[-1].held
    on_message(client, None, _message("t/1"))
    assert faults[-1].times == 1 and not faults[-1].held  # forgotten: news again
    on_message(client, None, _message("t/new"))  # the newest kept, not the one just counted
    assert faults[-1].times == 2 and faults[-1].held


def test_a_fault_is_the_same_only_for_the_same_callback_topic_and_error() -> None:
    """Held (or backed off) only when the very fault came before: another message failing the
    same way, the same message failing another way, or another callback with the same words
    is a first fault, reconnected for at once (a passing bug is handled at the resend)."""
    client, faults = _guarded(manual_ack=True)
    on_message = _failing_on_message(client)
    on_message(client, None, _message("t/a", "KeyError"))
    on_message(client, None, _message("t/b", "KeyError"))  # another message
    on_message(client, None, _message("t/a", "ValueError"))  # another error
    assert [f.times for f in faults] == [1, 1, 1] and not any(f.held for f in faults)

    def raising(*args: Any) -> None:
        raise RuntimeError("the same words")

    client.on_connect = raising
    client.on_subscribe = raising
    assert client.on_connect is not None and client.on_subscribe is not None
    client.on_connect(client, None, None, 0, None)
    client.on_subscribe(client, None, 1, [], None)
    assert [f.times for f in faults[3:]] == [1, 1]
    assert [f.reconnect_in_s for f in faults[3:]] == [None, None]


def test_the_owner_s_least_delay_comes_back_only_once_every_failing_callback_returned() -> None:
    """Two callbacks fail again (their delay doubled from the owner's least, its most kept
    for paho's own back-off against a broker that does not answer); the first to return
    leaves the other's delay, the second brings the owner's least back."""
    client, _ = _guarded(least=1, most=120)

    def fails(*args: Any) -> None:
        raise RuntimeError("a bug")

    def works(*args: Any) -> None:
        return None

    for name in ("on_connect", "on_subscribe"):
        setattr(client, name, fails)
        for _ in range(3):
            getattr(client, name)(client, None, None, 0, None)
    assert client._reconnect_min_delay == 4.0  # the third fault of on_subscribe: 1 * 2 ** 2
    assert client._reconnect_max_delay == 120  # paho still backs off to the owner's most
    client._attempt += 1  # they return on a later connection attempt (paho's reconnect())
    client.on_connect = works
    client.on_connect(client, None, None, 0, None)
    assert client._reconnect_min_delay == 4.0  # on_subscribe still fails: its delay stays
    client.on_subscribe = works
    client.on_subscribe(client, None, 1, [], None)
    assert client._reconnect_min_delay == 1.0  # both returned: the owner's least
    assert client._reconnect_max_delay == 120


def test_a_failing_page_s_retry_doubles_from_retry_s_to_an_hour_and_no_further() -> None:
    """The default ``retry_s`` (30 s) doubles at each failure up to the hour (9d7c37f); a
    ``retry_s`` longer than the hour is kept, not cut to it (an operator who asked for a retry
    every two hours gets that); and a page failing for good (``max_attempts`` has no bound)
    still gets the hour, not an ``OverflowError`` on the notifier's thread."""
    assert [retry_delay(30.0, n) for n in range(1, 10)] == [
        30.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 3600.0, 3600.0
    ]  # fmt: skip
    assert [retry_delay(7200.0, n) for n in (1, 2, 3)] == [7200.0, 7200.0, 7200.0]
    assert retry_delay(30.0, 1100) == RETRY_EVERY_AT_MOST_S == 3600.0


def test_an_online_heard_again_after_its_lapse_is_online_since_its_own_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A lapse forgets what was heard: the service back (a new ``online``) is news, logged,
    and online since it said so, not since the ``online`` that lapsed (the device's topic,
    Home Assistant's sensor and the self-test say "online since 08:05", not "since 08:00")."""
    clock = Clock()
    watch = CaregiverWatch(expected=True, clock=clock)
    assert watch.heard(_online(60, "2026-12-07T08:00:00Z"))
    clock.now = 1060.0
    assert watch.view(0, None).lapsed
    with caplog.at_level(logging.INFO, "firmware.mqtt.caregiver"):
        assert watch.heard(_online(60, "2026-12-07T08:05:00Z"))
    view = watch.view(0, None)
    assert view.state == "online" and view.since == "2026-12-07T08:05:00Z"
    assert not view.lapsed and not view.away(clock.now)
    assert "the caregiver service (caregiver) is online" in caplog.text


def test_the_same_online_handed_over_again_keeps_the_sooner_of_its_ends() -> None:
    """The same message handed over again keeps the end first given it (8ee8b59), unless the
    broker now says it ends sooner (heard first past a hop that dropped the expiry, then from a
    broker counting it down): never believed longer than the broker's word."""
    clock = Clock()
    watch = CaregiverWatch(expected=True, clock=clock)
    payload = _online(60, "2026-12-07T08:00:00Z")
    assert watch.heard(payload, expires_at=None)  # no expiry from the broker: its own 60 s
    assert watch.expires_at == 1060.0
    clock.now = 1010.0
    assert watch.heard(payload, retained=True, expires_at=1020.0)
    assert watch.expires_at == 1020.0
    assert watch.heard(payload, retained=True, expires_at=1050.0)  # later than kept: kept
    assert watch.expires_at == 1020.0


def test_a_renewal_that_raises_anything_is_tried_again() -> None:
    """Whatever a renewal raises (paho refuses a publish with a ``ValueError``, a socket an
    ``OSError``), the thread goes on to the next period: the presence must not lapse on every
    treadmill for one failed renewal."""
    calls: list[int] = []
    again = threading.Event()

    def renew() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("the broker refused, this once")
        if len(calls) == 2:
            raise OSError("the socket closed, this once")
        again.set()

    renewal = PresenceRenewal(0.001, renew)
    renewal.start()
    try:
        assert again.wait(WAIT)
        assert renewal.thread.is_alive()
    finally:
        renewal.stop()


def test_an_online_lasting_a_day_is_believed_and_one_a_second_longer_is_not() -> None:
    """``expires_s`` is at most :data:`PRESENCE_EXPIRY_MAX_S`, a day, that day included (the
    schema says ``maximum: 86400``): a service configured for a day's presence is heard."""
    clock = Clock()
    watch = CaregiverWatch(expected=True, clock=clock)
    assert watch.heard(_online(PRESENCE_EXPIRY_MAX_S, "2026-12-07T08:00:00Z"))
    assert watch.expires_at == 1000.0 + 86400
    said = decode_as(CaregiverStatusMessage, _online(86400, "2026-12-07T08:00:00Z"))
    assert said.expires_s == 86400
    with pytest.raises(ProtocolError):
        decode_as(CaregiverStatusMessage, _online(86401, "2026-12-07T08:00:00Z"))
