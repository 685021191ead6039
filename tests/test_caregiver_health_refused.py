"""A broker that refuses the service's health message or its discovery says so in the log.

A broker whose ACL predates these topics (a provider's, or one configured from an older
docs/mqtt/mosquitto.acl) refuses them: over MQTT 5 Mosquitto answers the PUBACK with 0x87 (not
authorized) and drops the message. Nobody read those codes, so Home Assistant silently never got
the Database sensor and staff thought the database watched. Here a real Mosquitto with such an
ACL refuses the health topic: the service warns once a connection, naming the topic, and goes
on storing alerts; with the documented ACL it says nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from caregiver import health_topic as health_topic_module
from caregiver.config import CaregiverConfig
from caregiver.service import CaregiverService
from tests.caregiver_support import SimDevice, make_config, running_service, session_record
from tests.mqtt_helpers import subscriber
from tests.storage_support import wait_for
from tests.test_ingest_side_tables import _refuse_writes
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

ACL = (Path(__file__).resolve().parent.parent / "docs" / "mqtt" / "mosquitto.acl").read_text()
HEALTH_LINE = "pattern write retroguard/caregiver/health/%u\n"
OLD_ACL = ACL.replace(HEALTH_LINE, "")
"""The documented ACL before the health topic: the broker refuses the service's health."""
USERS = {"treadmill-1": "tm-pw", "caregiver": "carer-pw", "homeassistant": "ha-pw"}
HEALTH = "retroguard/caregiver/health/caregiver"


@pytest.fixture(autouse=True)
def _said_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every change said as it happens (caregiver.health_topic's limit is tested elsewhere)."""
    monkeypatch.setattr(health_topic_module, "HEALTH_EVERY_S", 0.0)


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> Iterator[Mosquitto]:
    assert HEALTH_LINE in ACL, "the documented ACL no longer has the health's pattern"
    started = Mosquitto(users=USERS, acl=request.param).start()
    try:
        yield started
    finally:
        started.cleanup()


def _config(broker: Mosquitto, tmp_path: Path) -> CaregiverConfig:
    config = make_config(broker, tmp_path)
    account = dataclasses.replace(config.mqtt, username="caregiver", password="carer-pw")
    return dataclasses.replace(config, mqtt=account)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "caregiver.refused_publishes" and r.levelno == logging.WARNING
    ]


def _settled(service: CaregiverService) -> bool:
    """Every health and discovery message the service sent has the broker's verdict."""
    return service.health_topic.refusals.awaiting() == 0


def _fall_and_a_part_failing(broker: Mosquitto, service: CaregiverService, database: str) -> None:
    """A fall stored while the sessions' table refuses a session: the health changes (a
    second message on the health topic) and the alert is stored all the same."""
    device = SimDevice(broker, "treadmill-1", username="treadmill-1", password="tm-pw")
    try:
        device.online()
        _refuse_writes(database, "walk_sessions")
        started = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        device.session(session_record("treadmill-1", started, backward_min=12, longest_min=4))
        sent = device.incident_fall()
        store = service.store
        assert wait_for(lambda: service.store.side_faults.failing)
        fall = sent["fall"]["id"]
        assert wait_for(lambda: any(e.id == fall for e in store.events_for("treadmill-1")))
    finally:
        device.close()


@pytest.mark.parametrize("broker", [OLD_ACL], indirect=True, ids=["acl-before-health"])
def test_a_refused_health_is_said_once_a_connection_and_alerts_still_store(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="caregiver.refused_publishes")
    config = _config(broker, tmp_path)
    with (
        subscriber(broker, [HEALTH], username="homeassistant", password="ha-pw") as ha,
        running_service(config, web=False) as service,
    ):
        assert wait_for(lambda: len(_warnings(caplog)) >= 1), "the refusal was not said"
        [said] = _warnings(caplog)
        assert HEALTH in said and "check the broker's ACL" in said
        assert "caregiver-caregiver/config" not in said  # the discovery was accepted
        _fall_and_a_part_failing(broker, service, config.server.database)
        assert wait_for(lambda: _settled(service))
        assert _warnings(caplog) == [said]  # the second refused message: nothing more
        assert service.ingestor.connected.is_set()
        assert ha.messages == []  # the broker dropped them all
        broker.restart()  # a new connection: its first refusal is said again
        assert wait_for(lambda: len(_warnings(caplog)) == 2), "not said on the new connection"
        assert _warnings(caplog) == [said, said]


@pytest.mark.parametrize("broker", [ACL], indirect=True, ids=["documented-acl"])
def test_a_broker_with_the_documented_acl_hears_the_health_and_nothing_is_said(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="caregiver.refused_publishes")
    config = _config(broker, tmp_path)
    with (
        subscriber(broker, [HEALTH], username="homeassistant", password="ha-pw") as ha,
        running_service(config, web=False) as service,
    ):
        _fall_and_a_part_failing(broker, service, config.server.database)
        assert ha.wait(lambda: len(ha.messages) >= 2)  # ok, then degraded
        assert wait_for(lambda: _settled(service))
        assert _warnings(caplog) == []
