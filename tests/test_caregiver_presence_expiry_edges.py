"""The edges of the caregiver presence's expiry, found by mutating its code by hand.

Session 35 reviewed the ``online`` that lapses unless said again (caregiver/presence.py, the
expiry in firmware/mqtt/caregiver.py and firmware/mqtt/reporter.py) and mutated it against the
presence tests (tests/test_caregiver_presence*.py). The mutants that survived them are killed
here, each by what it broke; the rest were killed by the tests already there. Survivors argued
equivalent:

* ``CaregiverWatch.expires_at`` without its ``state == "online"`` guard: every path that leaves
  ``online`` (an ``offline`` heard, the lapse, the link lost) also sets ``_expires_at`` to None.
* ``Ingestor._say_online`` updating ``_presence_said_at`` on a renewal too: a storing change
  right after a renewal then waits up to ``PRESENCE_EVERY_S`` (5 s) more, which is the
  interval's own leave; only timing shows it, which tests do not assert.
* ``Ingestor._renew_online`` without its ``connected`` check: paho queues the renewal and sends
  it at the reconnect's CONNACK, just before the ``online`` said once subscribed (its session,
  kept by the broker, already subscribed). Not quite equivalent: without a session, or with a
  stop between the CONNACK and the SUBACK (no ``offline`` said, the DISCONNECT dropping the
  Last Will), that ``online`` stands until its expiry, 180 s at most. The check narrows the
  window to a renewal racing the link's loss (the same then: an unacknowledged QoS 1 PUBLISH
  is sent again at the reconnect); only a race shows it, and the expiry bounds it.

A hostile or broken ``expires_s`` (0, negative, longer than a day, a float, a string, a
boolean) makes the whole presence no message: refused in the log, and what was heard before
stands, its end with it, so it is never trusted longer than the broker's word.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import paho.mqtt.client as mqtt
import pytest

from caregiver import ingest as ingest_module
from caregiver.presence import PRESENCE_TIMING, PresenceRenewal, PresenceTiming
from core.protocol.messages import CaregiverPresence, CaregiverStatusMessage
from core.protocol.payloads import caregiver_status_payload, decode_as
from core.protocol.topics import caregiver_status_topic
from firmware.mqtt import MqttReporter
from firmware.mqtt.caregiver import CaregiverView, CaregiverWatch
from tests.caregiver_support import make_config as caregiver_config
from tests.caregiver_support import running_service
from tests.mqtt_helpers import WAIT, Subscriber, config_for, mqtt5_voice, validate
from tests.test_caregiver_commit_failure import _commit_refused
from tests.test_caregiver_ingest_batch import _event
from tools.broker import Mosquitto, mosquitto_available

DEVICE = "treadmill-1"
PRESENCE = caregiver_status_topic("retroguard")
DOCS = Path(__file__).resolve().parent.parent / "docs"


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _online(expires_s: object, wall: str = "2026-12-07T08:00:00Z") -> bytes:
    """An ``online`` whose ``expires_s`` is whatever JSON ``expires_s`` says (None: absent),
    stamped ``wall`` (each one the service says is stamped anew: a new message)."""
    said = {"schema": 1, "state": "online", "by": "caregiver", "wall_time": wall}
    if expires_s is not None:
        said["expires_s"] = expires_s
    return msgspec.json.encode(said)


@pytest.mark.parametrize("hostile", [0, -5, 86401, 10**12, 60.5, 1.0, "60", True, None])
def test_a_hostile_expires_s_is_refused_and_the_end_heard_before_stands(
    hostile: object, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    watch = CaregiverWatch(expected=True, clock=clock)
    assert watch.heard(_online(60), expires_at=clock.now + 3600)  # the shorter: its own
    assert watch.expires_at == 1060.0
    clock.now = 1030.0
    with caplog.at_level(logging.WARNING, "firmware.mqtt.caregiver"):
        heard = watch.heard(_online(hostile), expires_at=clock.now + 10**9)
    if hostile is None:  # absent: a service from before, believed as the broker says
        assert heard and watch.expires_at == clock.now + 10**9
        return
    assert not heard
    assert "caregiver presence ignored" in caplog.text
    assert watch.expires_at == 1060.0  # never longer than what was heard before
    clock.now = 1060.0
    view = watch.view(0, None)
    assert view.state == "unknown" and view.lapsed and view.away(clock.now)


def test_the_broker_s_end_counts_when_it_is_the_sooner_and_its_own_when_that_is() -> None:
    clock = Clock()
    watch = CaregiverWatch(expected=True, clock=clock)
    assert watch.heard(_online(60), expires_at=1010.0)
    assert watch.expires_at == 1010.0
    assert watch.heard(_online(60, "2026-12-07T08:01:00Z"), expires_at=1090.0)  # its own 60 s
    assert watch.expires_at == 1060.0
    assert watch.heard(_online(None, "2026-12-07T08:02:00Z"))  # no word of an end: none
    assert watch.expires_at is None


def test_a_view_not_yet_looked_at_again_is_away_from_its_very_end() -> None:
    """:meth:`CaregiverView.away` reads the end itself, for a pass that has not run yet."""
    view = CaregiverView("online", None, True, 0, None, expires_at=1060.0)
    assert not view.away(1059.999)
    assert view.away(1060.0)
    assert not CaregiverView("online", None, True, 0, None).away(10**9)  # no end: as before


def test_the_timing_refuses_less_than_a_second_and_renews_three_times_within_it() -> None:
    with pytest.raises(ValueError, match="at least 1 s, not 0"):
        PresenceTiming(expiry_s=0)
    assert PresenceTiming(expiry_s=1).renew_s == pytest.approx(1 / 3)
    assert PRESENCE_TIMING.online_properties().MessageExpiryInterval == 180


def test_the_documented_expiry_and_renewal_are_the_ones_said() -> None:
    """docs/mqtt.md tells the operator how long a treadmill may read a gone service as
    ``online`` (180 s) and how often it is said again (60 s): the code says the same."""
    doc = " ".join((DOCS / "mqtt.md").read_text().split())
    assert f"{PRESENCE_TIMING.expiry_s} s, said in its payload too" in doc
    assert f"service says it again every {PRESENCE_TIMING.renew_s:.0f} s while connected" in doc
    assert f'"expires_s":{PRESENCE_TIMING.expiry_s}' in doc


def test_a_renewal_that_raises_is_tried_again_and_a_stop_ends_the_thread() -> None:
    calls: list[int] = []
    again = threading.Event()

    def renew() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the broker refused, this once")
        again.set()

    renewal = PresenceRenewal(0.001, renew)
    renewal.start()
    assert again.wait(WAIT)  # tried again after the one that raised
    assert renewal.thread.is_alive()
    renewal.stop()
    assert not renewal.thread.is_alive()


pytestmark_broker = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")


@pytest.fixture
def service_voice(mosquitto: Mosquitto) -> Iterator[mqtt.Client]:
    with mqtt5_voice(mosquitto) as client:
        yield client


@pytestmark_broker
def test_the_device_s_publisher_wakes_at_the_end_by_itself(
    mosquitto: Mosquitto, tmp_path: Path, service_voice: mqtt.Client
) -> None:
    """Nothing else wakes the device's publisher (no telemetry, nothing asked of it): it wakes
    at the ``online``'s end on its own, and its ``caregiver`` topic (Home Assistant's sensor)
    says ``unknown`` then. Its real monotonic clock; the ``online`` lasts its least, a second."""
    reporter = MqttReporter(
        config_for(mosquitto),
        device_id=DEVICE,
        device_name="T",
        database=tmp_path / "d.db",
        clock=time.monotonic,
    )
    said_to_ha = Subscriber(mosquitto, [f"retroguard/{DEVICE}/caregiver"])
    reporter.start()
    try:
        assert reporter.wait_until(lambda s: s.ready, WAIT)
        payload = caregiver_status_payload(CaregiverPresence.ONLINE, "caregiver", expires_s=1)
        service_voice.publish(PRESENCE, payload, qos=1, retain=True).wait_for_publish(WAIT)

        def last_said() -> str | None:
            seen = said_to_ha.on("/caregiver")
            return str(validate("caregiver", seen[-1].payload)["state"]) if seen else None

        assert said_to_ha.wait(lambda: last_said() == "online")
        assert said_to_ha.wait(lambda: last_said() == "unknown")
    finally:
        said_to_ha.close()
        reporter.close()


@pytestmark_broker
def test_a_service_that_cannot_store_still_renews_its_own_online(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its own ``online`` saying it cannot store is not another instance's: its renewals go on
    (else its presence would lapse, and the treadmills read "unknown" instead of its words)."""
    monkeypatch.setattr(ingest_module, "PRESENCE_EVERY_S", 0.0)
    config = caregiver_config(mosquitto, tmp_path)
    sub = Subscriber(mosquitto, [PRESENCE])
    try:
        with running_service(config, web=False, presence=PresenceTiming(expiry_s=3000)) as cg:
            ingestor = cg.ingestor

            def said() -> list[CaregiverStatusMessage]:
                return [decode_as(CaregiverStatusMessage, m.payload) for m in sub.on("/status")]

            heard_own = threading.Event()  # it has heard its own "cannot store" back
            hear = ingestor._presence_heard

            def spy(client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
                hear(client, message)
                if b'"storing":false' in bytes(message.payload):
                    heard_own.set()

            monkeypatch.setattr(ingestor, "_presence_heard", spy)
            with _commit_refused(cg, config.server.database):
                assert not ingestor.handle(*_event(1, "fall"))
                assert heard_own.wait(WAIT)
                assert sub.wait(lambda: bool(said()) and not said()[-1].storing)
                count = len(said())
                ingestor._renew_online()
                assert sub.wait(lambda: len(said()) > count)
                assert said()[-1].state == CaregiverPresence.ONLINE and not said()[-1].storing
    finally:
        sub.close()
