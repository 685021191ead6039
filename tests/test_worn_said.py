"""The card tells "still measuring" from "not worn" by a typed field, not by the words.

A reset press in the first seconds after a start (or a fault) is refused because the
sensor-worn check has no verdict yet; its reason begins "sensor not worn: still measuring"
(the prefix every release has sent). The caregiver's card read the prefix and said "the sensor
is not worn - it must be clipped on" of a sensor clipped on and just starting. The state
message now says, typed, what its reason says of the check (``worn``: ``measuring`` or
``not_worn``); a message from a release before the field is read from its reason's prefix,
the still-measuring one first, and the rows stored before are upgraded the same way.
Device to card over real Mosquitto, the real caregiver service, both engines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caregiver import story
from caregiver.storage import SCHEMA_VERSION, Store
from core.protocol.messages import SENSOR_NOT_WORN, StateMessage, WornSaid
from core.protocol.payloads import decode_as, state_payload
from firmware.safety import STILL_MEASURING_REASON
from sim import scenarios as sc
from tests.app_support import close_rigs, make_rig  # noqa: F401 - fixture
from tests.caregiver_db import store_at_schema
from tests.caregiver_support import SimDevice, card_belt, make_config, running_service
from tests.mqtt_helpers import Subscriber, config_for, validate
from tools.broker import Mosquitto, mosquitto_available

pytestmark = [
    pytest.mark.usefixtures("close_rigs"),
    pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed"),
]

DEVICE = "treadmill-1"
MEASURING_WORDS = "starting, checking the sensor is worn"
NOT_WORN_WORDS = "the sensor is not worn"
NOT_WORN_REASON = f"{SENSOR_NOT_WORN}: no body movement (0.010 deg/s, a body shows 0.05 deg/s)"


def _worn_told(sub: Subscriber) -> str | None:
    """The ``worn`` of the newest state message the subscriber has (one read of the list)."""
    told = sub.on("/state")
    return json.loads(told[-1].payload).get("worn") if told else None


def test_a_press_before_the_check_has_a_verdict_is_starting_on_the_card_not_not_worn(
    tmp_path: Path, mosquitto: Mosquitto, caregiver_db: str
) -> None:
    """The monitor's own messages: the refused press says ``measuring``, the verdict on a
    sensor lying on the console ``not_worn``; the card says each in its words."""
    config = make_config(mosquitto, tmp_path / "caregiver", database=caregiver_db)
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/state"])
    with running_service(config) as service:
        (tmp_path / "device").mkdir()
        rig = make_rig(
            tmp_path / "device",
            motion=sc.scenario(sc.Resting(60.0)),
            worn_check=True,
            mqtt=config_for(mosquitto),
        )

        def belt() -> str:
            return card_belt(service, DEVICE)

        rig.run_for(1.0)
        rig.press_reset()
        assert rig.app.controller.reason == STILL_MEASURING_REASON
        assert service.ingestor.wait_for(lambda: MEASURING_WORDS in belt()), belt()
        assert NOT_WORN_WORDS not in belt()
        assert sub.wait(lambda: _worn_told(sub) == "measuring")
        validate("state", sub.on("/state")[-1].payload)
        rig.run_for(8.0)  # the check's verdict: no body
        assert rig.app.controller.reason.startswith(f"{SENSOR_NOT_WORN}: no body movement")
        assert service.ingestor.wait_for(lambda: NOT_WORN_WORDS in belt()), belt()
        assert sub.wait(lambda: _worn_told(sub) == "not_worn")
    sub.close()


def test_an_older_monitors_state_is_read_from_its_reasons_prefix(
    tmp_path: Path, mosquitto: Mosquitto, caregiver_db: str
) -> None:
    """A release before the field sends the same words without ``worn``: still measuring is
    still not "not worn", and "not worn" still is."""
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config) as service:
        device = SimDevice(mosquitto, DEVICE)
        try:

            def belt() -> str:
                return card_belt(service, DEVICE)

            device.set_state("STANDBY", STILL_MEASURING_REASON)
            assert service.ingestor.wait_for(lambda: MEASURING_WORDS in belt()), belt()
            device.set_state("STANDBY", NOT_WORN_REASON)
            assert service.ingestor.wait_for(lambda: NOT_WORN_WORDS in belt()), belt()
            device.set_state("STANDBY", "IMU healthy; sensor worn; press reset to arm")
            assert service.ingestor.wait_for(lambda: "ready to be armed" in belt()), belt()
        finally:
            device.close()


def test_the_field_decides_over_the_words() -> None:
    """Typed beats text: a new reason's wording may change; what it is said to be may not."""
    payload = state_payload(DEVICE, "STANDBY", "checking", worn=WornSaid.MEASURING)
    message = decode_as(StateMessage, payload.encode())
    assert message.worn is WornSaid.MEASURING
    assert MEASURING_WORDS in story.belt("STANDBY", "checking", False, "measuring")
    assert NOT_WORN_WORDS in story.belt("STANDBY", "anything", False, "not_worn")
    # stored as neither: the words do not make it "not worn"
    assert NOT_WORN_WORDS not in story.belt("STANDBY", NOT_WORN_REASON, False, "")
    older = decode_as(StateMessage, state_payload(DEVICE, "STANDBY", "x").encode())
    assert older.worn is None and b"worn" not in state_payload(DEVICE, "STANDBY", "x").encode()


@pytest.mark.empty_database  # the upgrade from that schema's rows
def test_states_stored_before_the_field_are_read_from_their_reasons(caregiver_db: str) -> None:
    """Schema 21 adds each device's ``state_worn``, filled for the rows already there."""
    with store_at_schema(caregiver_db, 20) as old, old.transaction() as tx:
        for device_id, reason in (
            ("measuring", STILL_MEASURING_REASON),
            ("off", NOT_WORN_REASON),
            ("armed", "armed by local reset from STANDBY"),
        ):
            tx._db.execute(
                "INSERT INTO devices (device_id, state, state_reason) VALUES (?, 'STANDBY', ?)",
                (device_id, reason),
            )
    store = Store(caregiver_db)
    try:
        assert (store.schema.before, store.schema.after) == (20, SCHEMA_VERSION)
        worn = {d["device_id"]: d["state_worn"] for d in store.devices()}
        assert worn == {"measuring": "measuring", "off": "not_worn", "armed": ""}
    finally:
        store.close()
