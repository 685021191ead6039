"""A side row refused for its values is no longer said once its treadmill sends what is stored.

A roster the database refused for one walker's name (a data error) is said as a refused write
of the roster's table until the treadmill's own next roster stores. A treadmill whose roster
goes back to what the database holds (the walker renamed back, or removed, at the treadmill)
sends a roster that changes no row: handled without a write, which clears nothing. Before,
the walkers were said unstored from then on, until the roster next changed or the service
restarted, while the database held exactly the treadmill's walkers.

Real triggers refuse the one name (:func:`tests.test_side_faults_per_table._refuse_data`), on
SQLite files and on the suite's PostgreSQL; the messages go over a real Mosquitto.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from caregiver import health_topic as health_topic_module
from caregiver import ingest as ingest_module
from caregiver.service import CaregiverService
from caregiver.storage import Part
from core.protocol.walker import Walker
from tests.caregiver_support import Http, SimDevice, wait_all_handled
from tests.mqtt_helpers import Subscriber
from tests.test_caregiver_whose_incident import ANNA
from tests.test_ingest_side_tables import (
    WALKERS_UNSTORED,
    _allow_writes,
    _failing,
    _let_go,
    _refuse_writes,
    _roster_of,
)
from tests.test_side_faults_per_table import (
    DEVICE,
    OTHER,
    REFUSED_NAME,
    _refuse_data,
    _said_everywhere,
    _said_sound_everywhere,
    _watching,
)
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")


@pytest.fixture
def watched(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[CaregiverService, Http, Subscriber]]:
    """Each change of the health said as it happens, and a held roster tried again at once:
    what is said is the tests' point, not the service's pace (the health's limit has its own
    tests in tests/test_caregiver_health_topic.py). At the service's own 5 s and 2 s each test
    here spent most of its 15-25 s waiting them out."""
    monkeypatch.setattr(health_topic_module, "HEALTH_EVERY_S", 0.0)
    monkeypatch.setattr(ingest_module, "HELD_RETRY_S", 0.05)
    with _watching(mosquitto, tmp_path, caregiver_db) as watching:
        yield watching


def test_a_roster_refused_for_its_data_is_not_said_once_the_treadmill_s_is_the_one_stored(
    mosquitto: Mosquitto,
    watched: tuple[CaregiverService, Http, Subscriber],
    caregiver_db: str,
) -> None:
    service, http, sub = watched
    first, second = SimDevice(mosquitto, DEVICE), SimDevice(mosquitto, OTHER)
    try:
        first.online()
        second.online()
        first.publish("walkers", _roster_of(first, ANNA).decode(), retain=True)
        wait_all_handled(service, first, second)
        stored = service.store.device_walkers(DEVICE)
        assert [name for _, name in stored][1:] == [ANNA.name]
        _refuse_data(caregiver_db, "device_walkers", "name", REFUSED_NAME)
        rita = Walker("rita", REFUSED_NAME)
        _let_go(service, first, "walkers", _roster_of(first, ANNA, rita))
        _said_everywhere(service, http, sub, Part.WALKERS, WALKERS_UNSTORED)

        second.publish("walkers", _roster_of(second, rita).decode(), retain=True)
        wait_all_handled(service, first, second)  # treadmill-2's Rita refused too
        assert _failing(service) == {"walkers"}

        first.publish("walkers", _roster_of(first, ANNA).decode(), retain=True)  # Rita gone
        wait_all_handled(service, first, second)
        assert service.store.device_walkers(DEVICE) == stored  # what treadmill-1 has
        # treadmill-2's Rita is still refused: still said, in treadmill-2's name
        _said_everywhere(service, http, sub, Part.WALKERS, WALKERS_UNSTORED)

        second.publish("walkers", _roster_of(second, ANNA).decode(), retain=True)
        wait_all_handled(service, first, second)
        assert service.ingestor.wait_for(lambda: not service.store.side_faults.failing)
        _said_sound_everywhere(service, http, sub)
    finally:
        first.close()
        second.close()


def test_a_roster_handed_over_unchanged_leaves_a_table_refusing_every_write_said(
    mosquitto: Mosquitto,
    watched: tuple[CaregiverService, Http, Subscriber],
    caregiver_db: str,
) -> None:
    """treadmill-1's roster refused for a walker's name, then the roster's table refusing
    every write (its own fault: treadmill-2's roster let go for it). treadmill-1's roster going
    back to what is stored writes nothing, which says nothing of the table's writes: the part
    stays said until a roster is written again."""
    service, http, sub = watched
    first, second = SimDevice(mosquitto, DEVICE), SimDevice(mosquitto, OTHER)
    try:
        first.online()
        second.online()
        first.publish("walkers", _roster_of(first, ANNA).decode(), retain=True)
        wait_all_handled(service, first, second)
        _refuse_data(caregiver_db, "device_walkers", "name", REFUSED_NAME)
        _let_go(service, first, "walkers", _roster_of(first, ANNA, Walker("rita", REFUSED_NAME)))
        _refuse_writes(caregiver_db, "device_walkers")
        _let_go(service, second, "walkers", _roster_of(second, ANNA))
        assert service.store.device_walkers(OTHER) == []

        first.publish("walkers", _roster_of(first, ANNA).decode(), retain=True)  # Rita gone
        wait_all_handled(service, first, second)
        assert _failing(service) == {"walkers"}
        _said_everywhere(service, http, sub, Part.WALKERS, WALKERS_UNSTORED)

        _allow_writes(caregiver_db, "device_walkers")
        second.publish("walkers", _roster_of(second, ANNA).decode(), retain=True)
        wait_all_handled(service, first, second)
        assert [name for _, name in service.store.device_walkers(OTHER)][1:] == [ANNA.name]
        assert service.ingestor.wait_for(lambda: not service.store.side_faults.failing)
        _said_sound_everywhere(service, http, sub)
    finally:
        first.close()
        second.close()


def test_a_treadmill_taken_away_leaves_a_table_refusing_every_write_said(
    mosquitto: Mosquitto,
    watched: tuple[CaregiverService, Http, Subscriber],
    caregiver_db: str,
) -> None:
    """As above, but treadmill-1 is taken off the broker (``retroguard ha remove --all``: its
    retained availability cleared) instead of sending its roster as stored. Its refused
    values go with it, and nothing more: the table's own fault (every write refused, which
    let treadmill-2's roster go) stays said until a roster is written again. The rule is
    the one of a roster handed over unchanged; the treadmill's going said the walkers stored."""
    service, http, sub = watched
    first, second = SimDevice(mosquitto, DEVICE), SimDevice(mosquitto, OTHER)
    try:
        first.online()
        second.online()
        first.publish("walkers", _roster_of(first, ANNA).decode(), retain=True)
        wait_all_handled(service, first, second)
        _refuse_data(caregiver_db, "device_walkers", "name", REFUSED_NAME)
        _let_go(service, first, "walkers", _roster_of(first, ANNA, Walker("rita", REFUSED_NAME)))
        _refuse_writes(caregiver_db, "device_walkers")
        _let_go(service, second, "walkers", _roster_of(second, ANNA))

        for kind in ("state", "availability"):  # retroguard ha remove --all
            first.publish(kind, "", retain=True)
        wait_all_handled(service, first, second)
        assert _failing(service) == {"walkers"}
        _said_everywhere(service, http, sub, Part.WALKERS, WALKERS_UNSTORED)

        _allow_writes(caregiver_db, "device_walkers")
        second.publish("walkers", _roster_of(second, ANNA).decode(), retain=True)
        wait_all_handled(service, first, second)
        assert service.ingestor.wait_for(lambda: not service.store.side_faults.failing)
        _said_sound_everywhere(service, http, sub)
    finally:
        first.close()
        second.close()


def test_a_table_s_own_fault_once_written_past_leaves_no_roster_said_refused(
    mosquitto: Mosquitto,
    watched: tuple[CaregiverService, Http, Subscriber],
    caregiver_db: str,
) -> None:
    """The roster's table refused every write for a while (treadmill-2's roster let go for
    it), then took treadmill-2's roster: its own fault is over. Later treadmill-1's roster is
    refused for a walker's name, and goes back to what is stored: nothing is missing, and it
    is no longer said. (Mutation, mut37: the table's fault kept after its write committed left
    the roster said refused for good.)"""
    service, http, sub = watched
    first, second = SimDevice(mosquitto, DEVICE), SimDevice(mosquitto, OTHER)
    try:
        first.online()
        second.online()
        first.publish("walkers", _roster_of(first, ANNA).decode(), retain=True)
        wait_all_handled(service, first, second)
        stored = service.store.device_walkers(DEVICE)
        _refuse_writes(caregiver_db, "device_walkers")
        _let_go(service, second, "walkers", _roster_of(second, ANNA))
        _allow_writes(caregiver_db, "device_walkers")
        second.publish("walkers", _roster_of(second, ANNA).decode(), retain=True)
        wait_all_handled(service, first, second)
        assert service.ingestor.wait_for(lambda: not service.store.side_faults.failing)

        _refuse_data(caregiver_db, "device_walkers", "name", REFUSED_NAME)
        _let_go(service, first, "walkers", _roster_of(first, ANNA, Walker("rita", REFUSED_NAME)))
        _said_everywhere(service, http, sub, Part.WALKERS, WALKERS_UNSTORED)
        first.publish("walkers", _roster_of(first, ANNA).decode(), retain=True)  # Rita gone
        wait_all_handled(service, first, second)
        assert service.store.device_walkers(DEVICE) == stored
        assert service.ingestor.wait_for(lambda: not service.store.side_faults.failing)
        _said_sound_everywhere(service, http, sub)
    finally:
        first.close()
        second.close()
