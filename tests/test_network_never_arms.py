"""Safety rule 2: no network message can ever start a treadmill — plans, acknowledgements and
commands included.

Every kind of message the device reads from the network is listed here with what it may do
(:data:`COMMAND_EFFECTS`, :data:`DEVICE_READS`; its own topics others could write too,
:data:`DEVICE_WRITES_ONLY`), and so is every message the courier hands the
real-time loop (:data:`LOOP_MESSAGE_EFFECTS`): a new command or link message nobody classified
fails :func:`test_every_network_input_and_loop_message_is_classified`. Each network input is
then sent over a real Mosquitto to the whole monitor (simulated hardware, its courier on a
thread, a guided session's runner attached: what a plan or a roster reaches) while it is
STARTING, in STANDBY — where one press would arm —, TRIPPED and in FAULT: valid, replayed,
retained (handed over again at the device's subscribe), out of order (naming what the device
does not have), malformed and oversized. The relay's contact never closes, the state stays,
and afterwards the local reset button still arms: the rig could
arm, the network did not.
"""

from __future__ import annotations

import json
import time
import typing
from pathlib import Path

import pytest

from core.plan_presets import PRESETS, PROGRESSIONS
from core.protocol.commands import (
    MAX_PAYLOAD_BYTES,
    MAX_PLAN_PAYLOAD_BYTES,
    MAX_PROGRESSION_PAYLOAD_BYTES,
    AssignPlan,
    AssignProgression,
    Command,
    CommandName,
    command_name,
    encode_command,
)
from firmware.link import messages
from firmware.session.runner import attach_session
from tests.app_support import Heard, Rig, TripOnDemand, close_rigs, make_rig
from tests.mqtt_helpers import WAIT, Subscriber, config_for
from tools.broker import Mosquitto

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

DEVICE = "treadmill-1"

COMMAND_EFFECTS: dict[CommandName, str] = {
    CommandName.ACK: "closes an incident in the records; a walker who asked for help hears so",
    CommandName.SILENCE: "stops the alarm sounding, if it is the one named",
    CommandName.SELF_TEST: "reads health checks",
    CommandName.PING: "answers pong",
    CommandName.TEST_ALARM: "a chirp on the buzzer and a test event",
    CommandName.PLAN: "stores a plan for the walker's next session start",
    CommandName.PROGRESSION: "stores, holds, releases or steps back a progression",
}
"""Every command a device runs, and all it may do. None holds the relay or arms."""

DEVICE_READS: dict[str, str] = {
    "receipt": "the caregiver service committed these alerts: the outbox forgets them",
    "caregiver_status": "whether the caregiver service is there: words to the walker at arming",
    "homeassistant_status": "Home Assistant is back: the discovery message again",
}
"""What the device subscribes to besides ``cmd/+``."""

DEVICE_WRITES_ONLY: dict[str, str] = {
    "stage": "a walker's progression (stage/<walker>, retained): the device publishes it from "
    "its own records and never reads it back; a forged one, advancing a walker or saying the "
    "belt may run, reaches only consumers (the caregiver service shows it), never the loop",
}
"""The device's own topics a network client could write too (the ACL stops a broker that
enforces it): sent below like the inputs, so one the device started reading would be covered."""

LOOP_MESSAGE_EFFECTS: dict[type, str] = {
    messages.Persisted: "records on disk: the loop forgets them",
    messages.StorageHealth: "alerts cannot be stored: refuses arming (never arms)",
    messages.SilenceBuzzer: "a caregiver's silence: stops the named alarm sounding",
    messages.Chirp: "a test alarm's chirp",
    messages.IncidentClosed: "a caregiver closed an incident: help_answered sounds",
    messages.OpenIncident: "an incident open from before the start: re-arming closes it",
    messages.CourierAlive: "the courier's heartbeat, the broker and the caregiver service",
    messages.PlanAssigned: "the plan of a walker's next session",
    messages.WalkerRoster: "the walker profiles and the one chosen",
}
"""Every message the courier sends the real-time loop (``messages.ToLoop``), and all it may do
there (:func:`firmware.app.build_app`, ``take_requests``; the session runner)."""


def test_every_network_input_and_loop_message_is_classified() -> None:
    """Adding a command, a link message to the loop or a command type without saying here what
    it may do (and sending it below) fails."""
    assert set(COMMAND_EFFECTS) == set(CommandName)
    assert set(LOOP_MESSAGE_EFFECTS) == set(typing.get_args(messages.ToLoop))
    assert {command_name(t.__new__(t)) for t in typing.get_args(Command)} == set(CommandName)
    assert set(_variants_by_input()) == {c.value for c in CommandName} | set(DEVICE_READS) | {
        "unknown"
    } | set(DEVICE_WRITES_ONLY)


UNKNOWN_IDS = ("9" * 32, "8" * 32)
"""An event and an incident this device never had (out of order: a message about the future)."""


def _oversized(name: str) -> bytes:
    limit = {
        CommandName.PLAN.value: MAX_PLAN_PAYLOAD_BYTES,
        CommandName.PROGRESSION.value: MAX_PROGRESSION_PAYLOAD_BYTES,
    }.get(name, MAX_PAYLOAD_BYTES)
    return b'{"id":"big","by":"' + b"x" * limit + b'"}'


GARBAGE = (
    b"not json",
    b"\xff\xfe\x00",
    b"[1,2,3]",
    b'"arm"',
    b"{" * 1000,
    b'{"id":"g1","arm":true,"state":"ARMED","relay":"hold"}',
)


def _command_variants(name: CommandName) -> tuple[list[bytes], list[bytes]]:
    """(live payloads, payloads sent retained before the device starts) for one command."""
    valid: bytes
    if name is CommandName.PLAN:
        valid = encode_command(AssignPlan(PRESETS["alternate-2-2"]), "v").encode()
    elif name is CommandName.PROGRESSION:
        valid = encode_command(AssignProgression(PROGRESSIONS["toward-10-minutes"]), "v").encode()
    else:
        valid = b'{"id":"v"}'
    out_of_order = {
        CommandName.ACK: [
            json.dumps({"id": "o1", "event_id": UNKNOWN_IDS[0]}),
            json.dumps({"id": "o2", "incident": UNKNOWN_IDS[1]}),
        ],
        CommandName.SILENCE: [
            json.dumps({"id": "o1", "event_id": UNKNOWN_IDS[0]}),
            json.dumps({"id": "o2", "incident": UNKNOWN_IDS[1]}),
            json.dumps({"id": "o3", "event_id": "latest"}),
        ],
        CommandName.PLAN: [
            encode_command(AssignPlan(PRESETS["alternate-2-2"], walker="nobody"), "o1"),
        ],
        CommandName.PROGRESSION: [
            json.dumps({"id": "o1", "action": "release"}),
            json.dumps({"id": "o2", "action": "step_back"}),
        ],
    }.get(name, [])
    live = [valid, valid, *(p.encode() for p in out_of_order), *GARBAGE, _oversized(name)]
    return live, [valid]


def _variants_by_input() -> dict[str, tuple[str, list[bytes], list[bytes]]]:
    """Input name → (topic suffix, live payloads, retained payloads)."""
    variants: dict[str, tuple[str, list[bytes], list[bytes]]] = {
        c.value: (f"cmd/{c.value}", *_command_variants(c)) for c in CommandName
    }
    variants["unknown"] = ("cmd/arm", [b"", b"{}", b'{"id":"a"}', b'{"state":"ARMED"}'], [b"{}"])
    variants["receipt"] = (
        "receipt",
        [
            json.dumps({"schema": 1, "ids": [UNKNOWN_IDS[0]], "by": "x"}).encode(),
            *GARBAGE,
            b'{"schema":1,"ids":[' + b'"' + b"a" * 32 + b'",' * 5000 + b"]}",
        ],
        [],
    )
    status = [
        json.dumps({"schema": 1, "state": s, "by": "spoof"}).encode() for s in ("online", "offline")
    ]
    variants["caregiver_status"] = ("../caregiver/status", [*status, *GARBAGE], status[:1])
    forged_stage = json.dumps({
        "schema": 1, "device_id": DEVICE, "walker": {"id": "bob", "name": "Bob"},
        "wall_time": "2026-03-02T09:00:00.000+00:00", "progression": "forged", "stage": 2,
        "stages": 2, "stage_name": "arm now", "stage_started_wall": "2026-03-02T09:00:00+00:00",
        "status": "complete", "held": False, "change": "advanced", "sessions_per_week": 3,
        "changed_wall": "2026-03-02T09:00:00+00:00", "stage_weeks": 1, "weeks_done": 1,
        "week": "2026-W10", "week_done": 3, "state": "ARMED", "relay": "hold",
    }).encode()  # fmt: skip
    variants["stage"] = ("stage/bob", [forged_stage, b"", *GARBAGE], [forged_stage])
    variants["homeassistant_status"] = (
        "../../homeassistant/status",
        [b"online", b"offline", *GARBAGE],
        [b"online"],
    )
    return variants


def _topic(suffix: str) -> str:
    parts = f"retroguard/{DEVICE}/{suffix}".split("/")
    out: list[str] = []
    for part in parts:
        if part == "..":
            out.pop()
        else:
            out.append(part)
    return "/".join(out)


def _answered(topic: str) -> bool:
    """Every publish on ``cmd/<anything>`` gets a reply (unknown names too)."""
    return "/cmd/" in topic


def _never_closed_since(rig: Rig, start: int) -> bool:
    return not any(closed for _, closed in rig.hardware.history[start:])


def _send_all(
    rig: Rig, sub: Subscriber, topic: str, payloads: list[bytes], replies_before: int
) -> None:
    """Publish every payload (QoS 1, the loop running meanwhile), then a ping as a sentinel,
    and run the loop until every reply is in: commands answered, a silence by the loop."""
    for payload in payloads:
        sub.client.publish(topic, payload, qos=1).wait_for_publish(WAIT)
        rig.run_for(0.01)
    sub.client.publish(_topic("cmd/ping"), b'{"id":"sentinel"}', qos=1).wait_for_publish(WAIT)
    expected = replies_before + 1 + (len(payloads) if _answered(topic) else 0)
    deadline = time.monotonic() + WAIT  # a bound against hangs, not a timing
    while len(sub.on("/reply")) < expected:
        assert time.monotonic() < deadline, f"{len(sub.on('/reply'))} of {expected} replies"
        rig.run_for(0.02)


@pytest.mark.parametrize("name", sorted(_variants_by_input()))
def test_no_network_message_arms_in_any_state(
    name: str, tmp_path: Path, mosquitto: Mosquitto
) -> None:
    suffix, live, retained = _variants_by_input()[name]
    topic = _topic(suffix)
    publisher = Subscriber(mosquitto, [f"retroguard/{DEVICE}/reply"])
    try:
        # Retained copies wait on the broker: the device is handed them at its subscribe,
        # while STARTING — as a replay at every reconnect would.
        for payload in retained:
            publisher.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(WAIT)
        detector = TripOnDemand()
        rig = make_rig(
            tmp_path,
            detector=detector,
            mqtt=config_for(mosquitto, command_burst=1000, caregiver_expected=True),
        )
        # The guided session's runner takes the plans and rosters the courier hands the loop:
        # attached, so a path from a plan to an arming would be taken here.
        attach_session(rig.app, record=False, speaker=Heard())
        assert rig.state == "STARTING"
        reporter = rig.courier.reporter
        assert reporter is not None and reporter.wait_until(lambda s: s.ready, WAIT)
        replies = len(retained) if _answered(topic) else 0  # each refused, unrun
        assert publisher.wait(lambda: len(publisher.on("/reply")) >= replies)
        rig.run_for(1.0)
        assert rig.state == "STANDBY" and _never_closed_since(rig, 0)

        # STANDBY: healthy and worn, one press from ARMED.
        transitions = len(rig.app.controller.transitions)
        _send_all(rig, publisher, topic, live, len(publisher.on("/reply")))
        rig.run_for(0.5)
        assert rig.state == "STANDBY" and _never_closed_since(rig, 0)
        assert len(rig.app.controller.transitions) == transitions  # not even ARMED for a moment
        assert not rig.app.gpio.relay.holding

        # ARMED by the reset button, then TRIPPED: the belt stopped, the alarm sounding.
        rig.press_reset()
        assert rig.state == "ARMED" and rig.hardware.contact_closed()
        detector.trip = True
        rig.run_for(0.1)
        assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
        stopped_at = len(rig.hardware.history)
        transitions = len(rig.app.controller.transitions)
        _send_all(rig, publisher, topic, live, len(publisher.on("/reply")))
        rig.run_for(1.0)
        assert rig.state == "TRIPPED" and _never_closed_since(rig, stopped_at)
        assert len(rig.app.controller.transitions) == transitions
        assert not rig.app.gpio.relay.holding

        # Not vacuous: the local button still arms it.
        rig.press_reset()
        assert rig.state == "ARMED" and rig.hardware.contact_closed()

        # FAULT: the sensor's bus cut, the belt stopped until the data is healthy again.
        rig.sim_imu.bus.disconnect()
        rig.run_for(0.5)
        assert rig.state == "FAULT" and not rig.hardware.contact_closed()
        stopped_at = len(rig.hardware.history)
        transitions = len(rig.app.controller.transitions)
        _send_all(rig, publisher, topic, live, len(publisher.on("/reply")))
        assert rig.state == "FAULT" and _never_closed_since(rig, stopped_at)
        assert len(rig.app.controller.transitions) == transitions
        rig.sim_imu.bus.reconnect()
        rig.run_for(1.5)
        assert rig.state == "STANDBY" and _never_closed_since(rig, stopped_at)
        rig.press_reset()
        assert rig.state == "ARMED" and rig.hardware.contact_closed()
        if retained:  # leave the broker clean
            publisher.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(WAIT)
    finally:
        publisher.close()
