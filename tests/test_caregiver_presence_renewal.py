"""The caregiver service's ``online`` expires unless it says it again.

A broker that crashed sends no Last Will and restarts with the ``online`` it last saved: before,
that ``online`` stood for ever for a service that was gone. The service's ``online`` now
carries an MQTT 5 Message Expiry Interval and its payload's ``expires_s`` (:mod:`caregiver.
presence`), and is said again every third of it while connected. Real Mosquitto; the expiry is
made short where the renewals must be seen (they come on the real clock).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from caregiver import ingest as ingest_module
from caregiver.ingest import Ingestor
from caregiver.presence import PresenceTiming
from core.protocol.messages import CaregiverPresence, CaregiverStatusMessage
from core.protocol.payloads import caregiver_status_payload, decode_as
from core.protocol.topics import caregiver_status_topic
from tests.caregiver_support import make_config as caregiver_config
from tests.caregiver_support import running_service
from tests.mqtt_helpers import WAIT, Subscriber, mqtt5_voice, retained_v5, validate
from tests.storage_support import wait_for
from tests.test_caregiver_commit_failure import _commit_refused
from tests.test_caregiver_ingest_batch import _event
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

PRESENCE = caregiver_status_topic("retroguard")


@pytest.fixture
def other_instance(mosquitto: Mosquitto) -> Iterator[mqtt.Client]:
    """Another instance's voice on the presence topic (MQTT 5, as the service speaks)."""
    with mqtt5_voice(mosquitto) as client:
        yield client


def test_the_service_says_online_again_before_it_expires_and_offline_without_one(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Its ``online`` carries the expiry twice (the PUBLISH's interval, the payload's
    ``expires_s``) and is said again every third of it while connected; its ``offline`` carries
    none (a stale ``offline`` errs on the safe side)."""
    timing = PresenceTiming(expiry_s=3)  # said again every second: three within the wait
    sub = Subscriber(mosquitto, [PRESENCE])
    try:
        with running_service(
            caregiver_config(mosquitto, tmp_path), web=False, presence=timing
        ) as running:
            renewal = running.ingestor.renewal_thread
            assert renewal is not None and renewal.is_alive()

            def onlines() -> list[CaregiverStatusMessage]:
                said = [decode_as(CaregiverStatusMessage, m.payload) for m in sub.on("/status")]
                return [p for p in said if p.state == CaregiverPresence.ONLINE]

            assert sub.wait(lambda: len(onlines()) >= 3)
            assert {p.expires_s for p in onlines()} == {3}
            validate("caregiver_status", sub.on("/status")[-1].payload)
            kept = retained_v5(mosquitto, PRESENCE)
            assert kept is not None and kept.expiry_s is not None and 0 < kept.expiry_s <= 3
        assert not renewal.is_alive()  # a stopped service leaves no renewal behind
        offline = retained_v5(mosquitto, PRESENCE)
        assert offline is not None and offline.expiry_s is None
        said = decode_as(CaregiverStatusMessage, offline.payload)
        assert said.state == CaregiverPresence.OFFLINE and said.expires_s is None
    finally:
        sub.close()


def test_a_renewal_leaves_another_instance_s_not_storing_standing(
    mosquitto: Mosquitto, tmp_path: Path, other_instance: mqtt.Client
) -> None:
    """Instances sharing the devices (``shared_group``) share the one presence: another's
    ``online`` saying it cannot store (some alerts then page nobody) is not said over by this
    one's renewal, which would make every treadmill flip between "storing" and "not storing"
    each period. That one's own renewals keep it alive; its stop or Last Will is answered as
    before. Anything else heard (its storing again) and the renewal speaks."""
    config = caregiver_config(mosquitto, tmp_path)
    with running_service(config, web=False, presence=PresenceTiming(expiry_s=3000)) as running:
        ingestor = running.ingestor
        client = ingestor.client
        assert client is not None

        def other(fault: str | None) -> bytes:
            said = caregiver_status_payload(
                CaregiverPresence.ONLINE, "caregiver-b", fault=fault, expires_s=180
            )
            other_instance.publish(PRESENCE, said, qos=1, retain=True).wait_for_publish(WAIT)
            return said.encode()

        def renewed_then_kept() -> bytes:
            ingestor._renew_online()
            # its own later PUBLISH acknowledged: the broker has handled the renewal, if any
            client.publish("retroguard-test/fence", b"", qos=1).wait_for_publish(WAIT)
            kept = retained_v5(mosquitto, PRESENCE)
            assert kept is not None
            return kept.payload

        def said_mine() -> bool:
            kept = retained_v5(mosquitto, PRESENCE)
            return kept is not None and b'"caregiver-test"' in kept.payload

        assert wait_for(said_mine, WAIT)  # its own online, said once subscribed, is in first
        damaged = other("database damaged")
        assert wait_for(lambda: ingestor._other_not_storing, WAIT)
        assert renewed_then_kept() == damaged
        other(None)  # it stores again
        assert wait_for(lambda: not ingestor._other_not_storing, WAIT)
        mine = decode_as(CaregiverStatusMessage, renewed_then_kept())
        assert mine.by == "caregiver-test" and mine.storing


def test_a_renewal_says_again_what_was_said_not_a_storing_change_the_interval_holds_back(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change of storing goes out at most once a ``PRESENCE_EVERY_S`` (here an hour, longer
    than the test), so a fault that comes and goes does not flap every treadmill. A renewal
    repeats what the presence last said: before, it said the state of that instant, so a
    renewal falling inside a fault's flap said "cannot store" and the next one "stores" (a
    treadmill's self-test, Home Assistant and log flipping) without the interval's leave."""
    monkeypatch.setattr(ingest_module, "PRESENCE_EVERY_S", 3600.0)
    config = caregiver_config(mosquitto, tmp_path)
    with running_service(config, web=False, presence=PresenceTiming(expiry_s=3000)) as running:
        ingestor = running.ingestor
        client = ingestor.client
        assert client is not None

        def renewed() -> CaregiverStatusMessage:
            ingestor._renew_online()
            # its own later PUBLISH acknowledged: the broker has handled the renewal
            client.publish("retroguard-test/fence", b"", qos=1).wait_for_publish(WAIT)
            kept = retained_v5(mosquitto, PRESENCE)
            assert kept is not None
            return decode_as(CaregiverStatusMessage, kept.payload)

        assert wait_for(lambda: retained_v5(mosquitto, PRESENCE) is not None, WAIT)
        assert renewed().storing  # the online said once subscribed
        with _commit_refused(running, config.server.database):
            assert not ingestor.handle(*_event(1, "fall"))
            assert ingestor.storage_fault is not None  # not said: within the interval
            assert renewed().storing
        assert ingestor.handle(*_event(1, "fall"))
        assert ingestor.storage_fault is None
        said = renewed()
        assert said.storing and said.state == CaregiverPresence.ONLINE


def test_a_presence_cleared_after_another_s_not_storing_is_renewed_over(
    mosquitto: Mosquitto,
    tmp_path: Path,
    other_instance: mqtt.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another instance's ``online`` saying it cannot store holds this one's renewals back; the
    retained presence then cleared (an empty message: an operator's ``mosquitto_pub -r -n``) or
    replaced by something that is no presence leaves nothing to hold them back for. Found by
    mut36 mutating it: without that, this instance never said its ``online`` again, and every
    treadmill read nobody there while it stored and paged."""
    heard: list[bytes] = []
    hear = Ingestor._presence_heard

    def spy(self: Ingestor, client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
        hear(self, client, message)
        heard.append(bytes(message.payload))

    monkeypatch.setattr(Ingestor, "_presence_heard", spy)
    config = caregiver_config(mosquitto, tmp_path)
    with running_service(config, web=False, presence=PresenceTiming(expiry_s=3000)) as running:
        ingestor = running.ingestor
        client = ingestor.client
        assert client is not None
        assert wait_for(lambda: any(b'"caregiver-test"' in h for h in heard), WAIT)  # its own
        for nothing in (b"", b"not a presence"):
            said = caregiver_status_payload(
                CaregiverPresence.ONLINE, "caregiver-b", fault="database damaged", expires_s=180
            ).encode()
            for payload in (said, nothing):
                other_instance.publish(PRESENCE, payload, qos=1, retain=True).wait_for_publish(WAIT)
                assert wait_for(lambda p=payload: bool(heard) and heard[-1] == p, WAIT)
            ingestor._renew_online()
            client.publish("retroguard-test/fence", b"", qos=1).wait_for_publish(WAIT)
            kept = retained_v5(mosquitto, PRESENCE)
            assert kept is not None
            mine = decode_as(CaregiverStatusMessage, kept.payload)
            assert mine.by == "caregiver-test" and mine.storing
