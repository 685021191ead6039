"""A treadmill's state or availability that the database refuses for its own values is said
where people look, not only logged.

Tried alone, such a message would be refused on every try, so it is let go (held, it would
stop every message behind it); a side message so refused is said as its table's part
(443fa90), an alert as ``alerts`` (5526dfb). A state or an availability was only logged:
the card showed the belt and whether the treadmill was online as they were before, an
offline while walking opened no alert, and the banner, ``/healthz`` and the health message
said all was well. Now it is said as the part ``states``, naming the treadmill and what
was refused, until the next message of that kind from that treadmill stores (it replaces
the refused one: both are the latest-wins kind, retained). Real Mosquitto, SQLite and
PostgreSQL; the refusal is the engine's own data error raised by a trigger.
"""

from __future__ import annotations

import pytest

from caregiver.service import CaregiverService
from caregiver.storage import Part
from tests.caregiver_support import Http, SimDevice, wait_all_handled
from tests.mqtt_helpers import Subscriber
from tests.test_side_faults_per_table import (
    DEVICE,
    _allow_data,
    _refuse_data,
    _said_at_once,  # noqa: F401  (an autouse fixture: health said at once)
    _said_everywhere,
    _said_sound_everywhere,
    watched,  # noqa: F401  (a fixture)
)
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

STATES_UNSTORED = "a treadmill's state or availability cannot be stored"


@pytest.mark.parametrize("kind", ["state", "availability"])
def test_a_state_or_availability_refused_for_its_values_is_said_until_the_next_stores(
    mosquitto: Mosquitto,
    watched: tuple[CaregiverService, Http, Subscriber],  # noqa: F811
    caregiver_db: str,
    kind: str,
) -> None:
    service, http, sub = watched
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()  # online, ARMED
        wait_all_handled(service, device)
        if kind == "state":
            _refuse_data(caregiver_db, "devices", "state", "FAULT")
            device.set_state("FAULT", "imu: no samples for 2.0 s")
        else:
            _refuse_data(caregiver_db, "devices", "availability", "offline")
            device.offline()
        wait_all_handled(service, device)
        # let go: the database works, nothing waits behind it
        assert service.ingestor.wait_for(lambda: service.ingestor.storage_fault is None)
        assert service.ingestor.wait_for(lambda: service.ingestor.held == 0)
        row = service.store.device(DEVICE)
        assert row is not None and (row["state"], row["availability"]) == ("ARMED", "online")
        _said_everywhere(service, http, sub, Part.STATES, STATES_UNSTORED)
        refused = "FAULT" if kind == "state" else "offline"
        assert f"{DEVICE}'s {kind} {refused} refused" in service.hub.broker.detail

        # the other kind stored says nothing of it
        if kind == "state":
            device.publish("availability", "online", retain=True)
        else:
            device.set_state("STANDBY", "stopped by the walker")
        wait_all_handled(service, device)
        _said_everywhere(service, http, sub, Part.STATES, STATES_UNSTORED)

        # the next of its kind, stored, replaces it: no longer said
        _allow_data(caregiver_db, "devices")
        if kind == "state":
            device.set_state("FAULT", "imu: no samples for 2.0 s")
        else:
            device.offline()
        wait_all_handled(service, device)
        row = service.store.device(DEVICE)
        assert row is not None and refused in (row["state"], row["availability"])
        _said_sound_everywhere(service, http, sub)
    finally:
        device.close()


def test_a_treadmill_taken_off_the_broker_takes_its_refused_state_with_it(
    mosquitto: Mosquitto,
    watched: tuple[CaregiverService, Http, Subscriber],  # noqa: F811
    caregiver_db: str,
) -> None:
    """Treadmill-1's state was refused for its values and said; then the treadmill is taken
    away, its retained topics cleared from the broker as ``retroguard ha remove --all`` does
    (empty retained availability and state). Nothing of it will replace the refused state,
    so it is no longer said; before, the banner, ``/healthz`` and the health message said it
    until the service restarted (the service reads its config's treadmills once, and they
    are only names: a treadmill goes from the broker, not from the config)."""
    service, http, sub = watched
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        wait_all_handled(service, device)
        _refuse_data(caregiver_db, "devices", "state", "FAULT")
        device.set_state("FAULT", "imu: no samples for 2.0 s")
        wait_all_handled(service, device)
        _said_everywhere(service, http, sub, Part.STATES, STATES_UNSTORED)

        for kind in ("state", "availability"):  # retroguard ha remove --all
            device.publish(kind, "", retain=True)
        wait_all_handled(service, device)
        _said_sound_everywhere(service, http, sub)
    finally:
        device.close()


def test_a_treadmill_taken_away_leaves_another_s_refused_state_said_whatever_its_name(
    mosquitto: Mosquitto,
    watched: tuple[CaregiverService, Http, Subscriber],  # noqa: F811
    caregiver_db: str,
) -> None:
    """Treadmill-10's state was refused for its values; then treadmill-1 is taken off the
    broker. Treadmill-10's refusal is its own, still missing: still said (treadmill-1's name
    begins treadmill-10's, and a taken-away treadmill's refusals are found by its name).
    (Mutation, mut37: matched without the space after the name, it was cleared too.)"""
    service, http, sub = watched
    first, tenth = SimDevice(mosquitto, DEVICE), SimDevice(mosquitto, f"{DEVICE}0")
    try:
        first.online()
        tenth.online()
        wait_all_handled(service, first, tenth)
        _refuse_data(caregiver_db, "devices", "state", "FAULT")
        tenth.set_state("FAULT", "imu: no samples for 2.0 s")
        wait_all_handled(service, first, tenth)
        _said_everywhere(service, http, sub, Part.STATES, STATES_UNSTORED)

        for kind in ("state", "availability"):  # retroguard ha remove --all, of treadmill-1
            first.publish(kind, "", retain=True)
        wait_all_handled(service, first, tenth)
        assert [f.part for f in service.store.side_faults.now()] == [Part.STATES]
        _said_everywhere(service, http, sub, Part.STATES, STATES_UNSTORED)
    finally:
        first.close()
        tenth.close()
