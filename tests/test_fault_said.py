"""The card and Home Assistant say what kind of FAULT holds the belt, typed, not guessed.

A caregiver's card said "Belt stopped by a monitor fault: heartbeat gap ..." for a stall that
clears by itself within seconds, and the same opening for a relay contact that disagrees,
where the relay may not stop the belt at all: nothing told the one who can wait from the one
who must stop anybody walking. The state message now carries the fault's kind (``fault``:
stall, not_worn, sensor, contact, monitor) from the safety controller through the link and
the courier; the service stores it (schema 32) and the card says, after the reason, who must
act. A release before the field is said as before: the reason alone. Device to card over real
Mosquitto, the real caregiver service, both engines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caregiver import story
from caregiver.storage import SCHEMA_VERSION, Store
from core.protocol.events import EventType
from core.protocol.messages import DeviceState, FaultSaid, InvalidMessage, StateMessage, WornSaid
from core.protocol.payloads import decode_as, state_payload
from core.protocol.words import FAULT_KIND_SAID
from firmware.config import SafetyConfig
from firmware.safety import FaultKind
from tests.app_support import Rig, close_rigs, make_rig  # noqa: F401 - fixture
from tests.caregiver_db import store_at_schema
from tests.caregiver_support import SimDevice, card_belt, make_config, running_service
from tests.mqtt_helpers import Subscriber, config_for, validate
from tools.broker import Mosquitto, mosquitto_available

pytestmark = [
    pytest.mark.usefixtures("close_rigs"),
    pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed"),
]

DEVICE = "treadmill-1"
STALL_WORDS = FAULT_KIND_SAID[FaultSaid.STALL].then
CONTACT_WORDS = FAULT_KIND_SAID[FaultSaid.CONTACT].then


def _armed_then_stalled(rig: Rig, sub: Subscriber) -> None:
    """Arm the rig, stall its loop past the relay's hold, and see the stall said on the wire."""
    rig.run_for(2.5)
    rig.press_reset()
    assert rig.state == "ARMED"
    rig.clock.advance(4 * rig.hardware.hold_s)  # type: ignore[attr-defined]
    rig.run_for(0.05)
    assert rig.app.controller.fault_kind is FaultKind.HEARTBEAT_GAP
    assert sub.wait(lambda: _fault_told(sub) == ("FAULT", "stall"))


def _fault_told(sub: Subscriber) -> tuple[str, str | None] | None:
    """The state and ``fault`` of the newest state message the subscriber has."""
    told = sub.on("/state")
    if not told:
        return None
    message = json.loads(told[-1].payload)
    return message["state"], message.get("fault")


def test_a_stall_is_said_to_clear_by_itself_and_is_gone_once_it_has(
    tmp_path: Path, mosquitto: Mosquitto, caregiver_db: str
) -> None:
    """The monitor's own messages: an armed walk whose loop paused past the relay's hold is a
    FAULT of kind ``stall``; the card says it clears by itself; back in STANDBY the message
    has no kind and the card no longer says it."""
    config = make_config(mosquitto, tmp_path / "caregiver", database=caregiver_db)
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/state"])
    with running_service(config) as service:
        (tmp_path / "device").mkdir()
        rig = make_rig(
            tmp_path / "device",
            safety=SafetyConfig(worn_check=False, healthy_before_arm_s=2.0),
            mqtt=config_for(mosquitto),
        )

        def belt() -> str:
            return card_belt(service, DEVICE)

        _armed_then_stalled(rig, sub)
        validate("state", sub.on("/state")[-1].payload)
        assert service.ingestor.wait_for(lambda: STALL_WORDS in belt()), belt()
        assert belt().startswith("Belt stopped by a monitor fault: ")
        rig.run_for(3.0)  # healthy data: the stall clears by itself
        assert rig.state == "STANDBY"
        assert sub.wait(lambda: _fault_told(sub) == ("STANDBY", None))
        assert service.ingestor.wait_for(lambda: "ready to be armed" in belt()), belt()
        assert STALL_WORDS not in belt()
    sub.close()


def test_each_kind_is_said_and_an_older_monitors_fault_keeps_its_reason_alone(
    tmp_path: Path, mosquitto: Mosquitto, caregiver_db: str
) -> None:
    """A contact fault says nobody walks; a FAULT without the field (a release before it)
    says the reason alone, as before, and is not guessed from its words; a kind sent with a
    state that is not FAULT is not stored (the card would say it of a running belt)."""
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config) as service:
        device = SimDevice(mosquitto, DEVICE)
        try:

            def belt() -> str:
                return card_belt(service, DEVICE)

            def fault_stored() -> str:
                row = service.store.device(DEVICE)
                return "" if row is None else row["state_fault"]

            device.publish(
                "state",
                state_payload(
                    DEVICE, "FAULT", "relay contact open while armed", fault=FaultSaid.CONTACT
                ),
                retain=True,
            )
            assert service.ingestor.wait_for(lambda: CONTACT_WORDS in belt()), belt()
            assert belt() == (
                "Belt stopped by a monitor fault: relay contact open while armed — "
                "the relay may not stop the belt: nobody walks until someone has checked "
                "the treadmill"
            )
            device.set_state("FAULT", "heartbeat gap: no edge for 62 ms")  # no ``fault``
            assert service.ingestor.wait_for(
                lambda: (
                    belt() == "Belt stopped by a monitor fault: heartbeat gap: no edge for 62 ms"
                )
            ), belt()
            assert fault_stored() == ""
            device.publish(
                "state",
                state_payload(DEVICE, "ARMED", "armed by local reset", fault=FaultSaid.STALL),
                retain=True,
            )
            assert service.ingestor.wait_for(lambda: "the belt can run" in belt()), belt()
            assert fault_stored() == "" and STALL_WORDS not in belt()
            # a later release's kind, one this service does not know: the FAULT is stored,
            # said by its reason alone, not refused whole (the card said the belt can run)
            newer = json.loads(state_payload(DEVICE, "FAULT", "a later kind of fault"))
            device.publish("state", json.dumps({**newer, "fault": "later"}), retain=True)
            assert service.ingestor.wait_for(
                lambda: belt() == "Belt stopped by a monitor fault: a later kind of fault"
            ), belt()
            assert fault_stored() == ""
        finally:
            device.close()


def test_the_card_of_a_monitor_gone_offline_does_not_promise_the_stall_clears() -> None:
    """Last known FAULT of an offline monitor: whether it cleared is not known any more."""
    online = story.belt("FAULT", "heartbeat gap", False, "", "stall")
    offline = story.belt("FAULT", "heartbeat gap", True, "", "stall")
    assert STALL_WORDS in online and STALL_WORDS not in offline
    assert offline == "Last known — belt stopped by a monitor fault: heartbeat gap"
    # a kind this service does not know (a later release's): the reason alone
    assert story.belt("FAULT", "x", False, "", "later") == "Belt stopped by a monitor fault: x"


def test_every_kind_has_words_and_the_field_round_trips() -> None:
    assert set(FAULT_KIND_SAID) == {k.value for k in FaultSaid}
    for kind in FaultSaid:
        message = decode_as(StateMessage, state_payload(DEVICE, "FAULT", "r", fault=kind).encode())
        assert message.fault is kind
    older = state_payload(DEVICE, "FAULT", "r").encode()
    assert b"fault" not in older and decode_as(StateMessage, older).fault is None


def test_a_later_releases_words_are_not_known_and_the_state_is_kept() -> None:
    """A kind (``fault``) or a worn word (``worn``) added by a later release is one this
    release does not know: the message is read without it (a FAULT of unknown kind, the worn
    check said by the reason), not refused whole. A value that is no word at all is still
    bad input."""
    fields = json.loads(state_payload(DEVICE, "FAULT", "sensor not worn: x"))
    for newer in ({"fault": "later"}, {"worn": "later"}, {"fault": "later", "worn": "later"}):
        message = decode_as(StateMessage, json.dumps({**fields, **newer}).encode())
        assert (message.state, message.reason) == (DeviceState.FAULT, "sensor not worn: x")
        assert message.fault is None and message.worn is None, newer
    both = decode_as(
        StateMessage, json.dumps({**fields, "fault": "later", "worn": "measuring"}).encode()
    )
    assert both.worn is WornSaid.MEASURING
    for bad in ({"fault": 5}, {"fault": "later", "state": "LATER"}, {"fault": ["stall"]}):
        with pytest.raises(InvalidMessage):
            decode_as(StateMessage, json.dumps({**fields, **bad}).encode())


@pytest.mark.empty_database  # the upgrade from that schema's rows
def test_states_stored_before_the_field_have_no_kind(caregiver_db: str) -> None:
    """Schema 32 adds each device's ``state_fault``: '' for the rows already there."""
    with store_at_schema(caregiver_db, 31) as old, old.transaction() as tx:
        tx._db.execute(
            "INSERT INTO devices (device_id, state, state_reason) VALUES (?, 'FAULT', ?)",
            (DEVICE, "heartbeat gap"),
        )
    store = Store(caregiver_db)
    try:
        assert (store.schema.before, store.schema.after) == (31, SCHEMA_VERSION)
        (row,) = store.devices()
        assert row["state_fault"] == ""
        assert story.card(row, 0.0).belt == "Belt stopped by a monitor fault: heartbeat gap"
    finally:
        store.close()


def test_a_sensor_that_dies_after_a_stall_is_no_longer_said_to_clear_by_itself(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """An armed walk's loop paused past the relay's hold: a FAULT of kind ``stall``, said to
    clear by itself within seconds, nobody needing to come. Then the sensor stops making
    samples. The FAULT stayed a stall for ever: the card and Home Assistant went on saying it
    clears by itself, no FAULT event told the caregivers otherwise, and the monitor, holding
    a stall, was never restarted to bring the sensor back. The sensor's fault replaces it:
    the state says ``sensor``, a FAULT event goes out, a restart may cure it."""
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/state"])
    rig = make_rig(
        tmp_path,
        safety=SafetyConfig(worn_check=False, healthy_before_arm_s=2.0),
        mqtt=config_for(mosquitto),
    )
    _armed_then_stalled(rig, sub)
    assert rig.sim_imu is not None
    rig.sim_imu.chip.stalled = True  # no sample from here on
    rig.run_for(2.0)
    assert rig.state == "FAULT"
    assert rig.app.controller.fault_kind is FaultKind.IMU_SILENT
    assert rig.app.controller.reason.startswith("no IMU sample for ")
    assert rig.events().count(EventType.FAULT) == 2
    assert rig.app.monitor.restart_may_cure
    assert sub.wait(lambda: _fault_told(sub) == ("FAULT", "sensor"))
    sub.close()
