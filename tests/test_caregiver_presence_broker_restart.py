"""A caregiver service stopped while its broker is away: what its retained presence says.

A clean stop says ``offline`` itself, then a DISCONNECT (which drops its Last Will), but only
while connected: stopped while it is reconnecting, it says nothing, and only its Last Will
can say it. The suspicion (session 34's review): a broker restarted from its persistence
sends no Last Will, so the retained presence says ``online`` for a stopped service. Measured
on Mosquitto 2.0.11 (the fixture's broker keeps its persistence, as a deployment does): a
graceful stop (SIGTERM, a restart or an upgrade) sends the Last Will of every client it had
before it saves, so the presence reads ``offline``; a broker that crashes (SIGKILL, a power
cut) sends none, and restarts with the ``online`` it last saved (the restored session does
not bring the will back): that case is real and left open (docs/mqtt.md, "Caregiver
presence"). Real Mosquitto.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from caregiver.broker_link import Connected
from core.protocol.messages import CaregiverPresence, CaregiverStatusMessage
from core.protocol.payloads import decode_as
from core.protocol.topics import caregiver_status_topic
from tests.caregiver_support import make_config, running_service
from tests.mqtt_helpers import WAIT, Subscriber
from tests.storage_support import wait_for
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

PRESENCE = caregiver_status_topic("retroguard")


def _retained_presence(mosquitto: Mosquitto) -> CaregiverStatusMessage:
    """The retained presence a device that starts now reads."""
    late = Subscriber(mosquitto, [PRESENCE])
    try:
        assert late.wait(lambda: bool(late.on("/caregiver/status")))
        return decode_as(CaregiverStatusMessage, late.on("/caregiver/status")[-1].payload)
    finally:
        late.close()


def test_a_service_stopped_while_its_broker_restarts_gracefully_reads_offline(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = make_config(mosquitto, tmp_path)
    with running_service(config, web=False) as service:
        assert _retained_presence(mosquitto).state == CaregiverPresence.ONLINE
        mosquitto.stop()  # graceful: retained messages and sessions saved, no will sent
        link = service.ingestor.link
        assert link.wait_for(lambda s: not isinstance(s, Connected), WAIT)
    # stopped while reconnecting: it could say nothing
    mosquitto.start()
    assert _retained_presence(mosquitto).state == CaregiverPresence.OFFLINE


@pytest.mark.xfail(
    strict=True,
    reason="a broker that crashes sends no Last Will: the stopped service reads online "
    "(known, docs/mqtt.md 'Caregiver presence'; a fix needs an expiring presence)",
)
def test_a_service_stopped_while_its_broker_is_down_after_a_crash_reads_offline(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = make_config(mosquitto, tmp_path)
    saved = mosquitto.workdir / "data" / "mosquitto.db"
    with running_service(config, web=False) as service:
        assert _retained_presence(mosquitto).state == CaregiverPresence.ONLINE
        # the broker's autosave has the online: a crash after it restarts with it
        assert wait_for(lambda: saved.exists() and b'"online"' in saved.read_bytes(), WAIT)
        mosquitto.kill()
        link = service.ingestor.link
        assert link.wait_for(lambda s: not isinstance(s, Connected), WAIT)
    mosquitto.start()
    assert _retained_presence(mosquitto).state == CaregiverPresence.OFFLINE
