""" "Last seen" is when the treadmill itself last spoke, not when the broker said it was gone.

The fleet card of a treadmill that went offline says "Monitor offline — last seen 14:02", and
the plan page counts what was sent after that time as never delivered. The broker's
"offline" is the treadmill's will (published a keepalive and a half after the drop) and,
retained, it is replayed to the caregiver service at every start: taken as a sign of life, a
service restarted at 19:00 said a treadmill gone since 14:02 was "last seen 19:00". Both ways
the service stores messages are checked (one at a time, and the ingest thread's batches), on
SQLite and PostgreSQL. No broker is needed: the messages are handed over as the MQTT thread
does.
"""

from __future__ import annotations

import time
from pathlib import Path

from caregiver import story
from caregiver.config import CaregiverConfig, CaregiverMqttConfig, ServerConfig
from caregiver.service import CaregiverService
from core.protocol.payloads import state_payload
from tests.caregiver_support import WAIT, SimDevice, make_config, running_service
from tools.broker import Mosquitto

DEVICE = "treadmill-1"
AVAILABILITY = f"retroguard/{DEVICE}/availability"
STATE = f"retroguard/{DEVICE}/state"


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _service(database: str, clock: _Clock) -> CaregiverService:
    config = CaregiverConfig(
        server=ServerConfig(host="127.0.0.1", port=0, database=database),
        mqtt=CaregiverMqttConfig(host="127.0.0.1", port=1),
    )
    service = CaregiverService(config)
    service.ingestor.clock = clock
    return service


def _last_seen(service: CaregiverService) -> float | None:
    device = service.store.device(DEVICE)
    assert device is not None
    return device["last_seen"]


def _availability(service: CaregiverService) -> str:
    device = service.store.device(DEVICE)
    assert device is not None
    return str(device["availability"])


def test_the_broker_s_offline_keeps_the_time_the_treadmill_was_last_heard(
    caregiver_db: str,
) -> None:
    clock = _Clock(1_000.0)
    service = _service(caregiver_db, clock)
    try:
        assert service.ingestor.handle(AVAILABILITY, b"online")
        clock.now = 1_030.0
        assert service.ingestor.handle(STATE, state_payload(DEVICE, "ARMED", "armed").encode())
        clock.now = 1_075.0  # its will, a keepalive and a half after it went
        assert service.ingestor.handle(AVAILABILITY, b"offline")
        assert (_availability(service), _last_seen(service)) == ("offline", 1_030.0)
    finally:
        service.store.close()
    clock.now = 19_000.0  # the service restarted hours later: the retained copy again
    service = _service(caregiver_db, clock)
    try:
        assert service.ingestor.handle_batch([(AVAILABILITY, b"offline")])
        assert (_availability(service), _last_seen(service)) == ("offline", 1_030.0)
        clock.now = 19_500.0
        assert service.ingestor.handle_batch([(AVAILABILITY, b"online")])
        assert (_availability(service), _last_seen(service)) == ("online", 19_500.0)
    finally:
        service.store.close()


def test_in_a_batch_only_what_the_treadmill_sent_renews_its_last_seen(caregiver_db: str) -> None:
    clock = _Clock(2_000.0)
    service = _service(caregiver_db, clock)
    other = "treadmill-2"
    try:
        state = state_payload(DEVICE, "STANDBY", "press reset to arm").encode()
        assert service.ingestor.handle_batch([(AVAILABILITY, b"online"), (STATE, state)])
        clock.now = 2_060.0
        # treadmill-2 speaks in the same batch as treadmill-1's will
        other_state = state_payload(other, "STANDBY", "press reset to arm").encode()
        assert service.ingestor.handle_batch(
            [(AVAILABILITY, b"offline"), (f"retroguard/{other}/state", other_state)]
        )
        assert (_availability(service), _last_seen(service)) == ("offline", 2_000.0)
        other_row = service.store.device(other)
        assert other_row is not None and other_row["last_seen"] == 2_060.0
        clock.now = 2_090.0  # its last words before the will, in the same batch: heard
        assert service.ingestor.handle_batch([(STATE, state), (AVAILABILITY, b"offline")])
        assert (_availability(service), _last_seen(service)) == ("offline", 2_090.0)
    finally:
        service.store.close()


def test_a_treadmill_only_ever_known_as_offline_says_no_time(caregiver_db: str) -> None:
    clock = _Clock(3_000.0)
    service = _service(caregiver_db, clock)
    try:
        assert service.ingestor.handle(AVAILABILITY, b"offline")
        assert (_availability(service), _last_seen(service)) == ("offline", None)
        device = service.store.device(DEVICE)
        assert device is not None
        card = story.card(device, clock.now)
        assert card.offline and card.last_seen is None
    finally:
        service.store.close()


class _Later:
    """Wall time plus however far the test has moved it on (the service's clock)."""

    def __init__(self) -> None:
        self.ahead_s = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead_s


def test_a_restarted_service_is_not_told_the_treadmill_spoke_by_its_retained_state(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    """The broker replays a treadmill's retained state with its retained "offline" to a
    service that starts (or reconnects): the state is what it said at 14:00, not a word at
    19:00. Taken as one, the card of a treadmill gone since 14:02 said "last seen 19:00",
    and the plan page counted only what was sent after 19:00 as never delivered."""
    clock = _Later()
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    device = SimDevice(mosquitto, DEVICE)
    with running_service(config, web=False, background=False, clock=clock) as service:
        device.online("STANDBY")
        device.offline()
        assert service.ingestor.wait_for(lambda: service.ingestor.messages >= 3, WAIT)
        heard = _last_seen(service)
        assert heard is not None and _availability(service) == "offline"
    clock.ahead_s = 5 * 3600.0  # the service restarted five hours later
    with running_service(config, web=False, background=False, clock=clock) as service:
        # the retained state and "offline", replayed at its subscriptions
        assert service.ingestor.wait_for(lambda: service.ingestor.messages >= 2, WAIT)
        assert (_availability(service), _last_seen(service)) == ("offline", heard)
        device_row = service.store.device(DEVICE)
        assert device_row is not None
        assert story.card(device_row, clock()).last_seen == heard
    device.close()
