"""An alert one instance saw refused is no longer said once another instance stored it.

Instances sharing the devices (``shared_group``) share the events' stream: the broker hands
each copy of an alert to one of them. An alert the database refused for its own values is said
by the instance that let it go (the banner, ``/healthz``, its health message) until that alert
stores, and it learnt so only by storing it itself. The device's resend once the database took
it went to the other instance, which stored and receipted it: nothing sent it again, and the
first said a fall unstored that was stored, on its every page, until it restarted.

A real Mosquitto shares the stream between two services on one PostgreSQL database (the
suite's cluster); a real trigger refuses the fall with the engine's data error.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from caregiver import service as service_module
from caregiver.config import CaregiverConfig
from caregiver.service import CaregiverService
from caregiver.storage import Part
from tests.caregiver_support import SimDevice, make_config, running_service
from tests.storage_support import wait_for
from tests.test_side_faults_per_table import REFUSED_REASON, _allow_data, _refuse_data
from tools.broker import Mosquitto, mosquitto_available
from tools.pgcluster import PostgresCluster

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

DEVICE = "treadmill-1"
SENDS_AT_MOST = 40
"""Copies of the refused fall sent until each instance has been handed one (Mosquitto hands
a shared subscription's messages round robin: two do, as a rule)."""


def _instance(mosquitto: Mosquitto, tmp_path: Path, database: str, name: str) -> CaregiverConfig:
    config = make_config(mosquitto, tmp_path / name, database=database, client_id=f"care-{name}")
    return dataclasses.replace(
        config, mqtt=dataclasses.replace(config.mqtt, shared_group="caregivers")
    )


def _says_alert_refused(service: CaregiverService) -> bool:
    return any(f.part is Part.ALERTS for f in service.store.side_faults.now())


def test_an_alert_refused_here_and_stored_by_another_instance_is_no_longer_said(
    mosquitto: Mosquitto,
    tmp_path: Path,
    postgres_cluster: PostgresCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service_module, "SIDE_PROBE_EVERY_S", 0.0)  # each housekeeping turn
    url = postgres_cluster.new_database()
    device = SimDevice(mosquitto, DEVICE)
    device.online()
    with (
        running_service(_instance(mosquitto, tmp_path, url, "a"), web=False) as a,
        running_service(_instance(mosquitto, tmp_path, url, "b"), web=False) as b,
    ):
        instances = (a, b)
        _refuse_data(url, "events", "reason", REFUSED_REASON)

        def send() -> dict[str, object]:
            rejected = sum(s.ingestor.rejected for s in instances)
            sent = device.event(
                "fall",
                severity="critical",
                state="TRIPPED",
                reason=REFUSED_REASON,
                event_id=fall["id"] if fall else None,
            )
            assert wait_for(lambda: sum(s.ingestor.rejected for s in instances) > rejected)
            return sent

        fall: dict[str, object] = {}
        fall = send()
        for _ in range(SENDS_AT_MOST):  # the device sends it again, unreceipted
            if all(_says_alert_refused(s) for s in instances):
                break
            send()
        assert all(_says_alert_refused(s) for s in instances), "one instance never had it"

        _allow_data(url, "events")  # the database takes it now: its next copy stores
        device.event(
            "fall",
            severity="critical",
            state="TRIPPED",
            reason=REFUSED_REASON,
            event_id=str(fall["id"]),
        )
        assert wait_for(lambda: a.store.event(str(fall["id"])) is not None)
        assert wait_for(lambda: not any(_says_alert_refused(s) for s in instances)), [
            s.config.mqtt.client_id for s in instances if _says_alert_refused(s)
        ]
    device.close()
