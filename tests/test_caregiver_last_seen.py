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

from caregiver import story
from caregiver.config import CaregiverConfig, CaregiverMqttConfig, ServerConfig
from caregiver.service import CaregiverService
from core.protocol.payloads import state_payload

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
