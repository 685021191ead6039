"""The Home Assistant discovery message against Home Assistant's rules, and its templates at work.

``tests/ha_discovery.py`` holds the rules (each with its source in Home
Assistant's code or docs) and a small model of what Home Assistant does with
each message; these tests run the device's real discovery message and real
payloads of every kind through them. The round trip over a real broker is in
``tests/test_ha_mqtt.py``.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox
import pytest

from core.gait_trends import METRICS
from core.protocol import commands, payloads
from core.protocol.commands import LATEST, Ack, SelfTest, Silence, parse_command
from core.protocol.events import EventType, Severity
from core.protocol.messages import (
    SCHEMA_VERSION,
    CaregiverLinkMessage,
    DeviceHealth,
    DeviceState,
    EventMessage,
    FaultSaid,
    IncidentMessage,
    ProgressMessage,
    ReplyMessage,
    WornSaid,
    self_test_outcome,
)
from core.protocol.topics import TopicKind, Topics, discovery_topic
from core.protocol.walker import DEFAULT_WALKER, Walker
from core.protocol.words import ALERT_SAID, EVENT_SAID, FAULT_KIND_SAID
from firmware.mqtt.discovery import (
    HA_EVENT_TYPES,
    INCIDENT_WORDS,
    LAST_EVENT_WORDS,
    SAFETY_STATE_WORDS,
    SELF_TEST_WORDS,
    WORN_WORDS,
    discovery_payload,
)
from firmware.safety import STILL_MEASURING_REASON
from tests.ha_discovery import DiscoveryError, HomeAssistant, parse_device_discovery

DEVICE = "tm-1"
TOPICS = Topics("retroguard", DEVICE)
TOPIC = discovery_topic("homeassistant", DEVICE)
INCIDENT = "1" * 32
DASHBOARD = "https://care.example.org/dashboard"


def message(dashboard_url: str = "") -> dict[str, Any]:
    return json.loads(discovery_payload(TOPICS, "Treadmill 1", dashboard_url))  # type: ignore[no-any-return]


def home_assistant(dashboard_url: str = "") -> HomeAssistant:
    ha = HomeAssistant()
    ha.receive(TOPIC, discovery_payload(TOPICS, "Treadmill 1", dashboard_url).encode())
    ha.receive(TOPICS.availability, b"online")
    return ha


def event(kind: EventType, **fields: Any) -> bytes:
    values: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "id": f"{list(EventType).index(kind) + 1:032x}",
        "seq": 1,
        "type": kind,
        "device_id": DEVICE,
        "severity": Severity.CRITICAL,
        "state": DeviceState.TRIPPED,
        "reason": f"a {kind.value}",
        "wall_time": "2026-03-02T10:00:00.000+00:00",
        "t_monotonic": 12.5,
        "figures": {"impact_g": 3.2},
    }
    values.update(fields)
    return payloads.encode(EventMessage(**values)).encode()


def incident(**fields: Any) -> bytes:
    values: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "device_id": DEVICE,
        "open": False,
        "wall_time": "2026-03-02T10:00:00.000+00:00",
    }
    values.update(fields)
    return payloads.encode(IncidentMessage(**values)).encode()


def progress(**fields: Any) -> bytes:
    values: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "device_id": DEVICE,
        "wall_time": "2026-03-02T10:00:00.000+00:00",
        "session": "none",
        "week": "2026-W10",
        "week_sessions": 0,
        "week_at_goal": 0,
        "week_backward_s": 0.0,
        "week_longest_backward_s": 0.0,
        "goal_sessions": 3,
        "goal_backward_s": 600.0,
    }
    values.update(fields)
    return payloads.encode(ProgressMessage(**values)).encode()


# ------------------------------------------------------------------ the message itself


@pytest.mark.parametrize("dashboard_url", ["", DASHBOARD])
def test_the_discovery_message_meets_home_assistants_rules(dashboard_url: str) -> None:
    device = parse_device_discovery(TOPIC, discovery_payload(TOPICS, "Tm", dashboard_url))
    by_platform: dict[str, set[str]] = {}
    for key, component in device.components.items():
        by_platform.setdefault(component.platform, set()).add(key.removeprefix("retroguard_tm-1_"))
    assert by_platform == {
        "binary_sensor": {"fall", "fault", "self_test_result", "storage", "caregiver"},
        "sensor": {
            "unreceived",
            "state",
            "self_test_outcome",
            "incident",
            "last_event",
            "session",
            "week_at_goal",
            "week_backward",
            "week_done",
            "week_longest",
            "weeks_at_goal",
            "sway",
            "step_time_cv",
            "outbox",
        },
        "event": {"event"},
        "device_automation": {"fall_trigger", "no_recovery_trigger"},
        "button": {"ack", "silence", "self_test", "test_alarm"},
    }
    components = {
        k.removeprefix("retroguard_tm-1_"): c.config for k, c in device.components.items()
    }
    assert components["fall"]["device_class"] == "safety"
    assert components["fault"]["device_class"] == "problem"
    assert components["caregiver"]["device_class"] == "connectivity"
    assert components["unreceived"]["device_class"] == "timestamp"
    assert components["state"]["device_class"] == "enum"
    assert components["state"]["options"] == [
        "Starting (belt stopped)", "Standby (belt stopped)", "Armed (belt can run)",
        "Tripped (belt stopped)", "Fault (belt stopped)",
    ]  # fmt: skip
    assert components["self_test_outcome"]["device_class"] == "enum"
    assert components["self_test_outcome"]["options"] == ["Passed", "Failed", "Not run (refused)"]
    # Home Assistant shows an MQTT enum sensor's state as it is (no translations): words a
    # family member reads on a tile, not the wire's no_recovery or STANDBY
    # (a sentence: a capital, then words, "I'm OK" and the dashboard's dash among them)
    sentence = r"[A-Z][a-z]+(?:(?:[ ,]+| — )\(?(?:[a-z]+|I'm|OK)\)?)*"
    for name, config in components.items():
        for option in config.get("options", []):
            assert re.fullmatch(sentence, option), (name, option)
            assert option != "None", (name, option)  # the MQTT sensor reads "None" as unknown
    # the problem sensor it replaced: only its platform, which removes it from Home Assistant
    assert components["self_test_result"] == {"platform": "binary_sensor"}
    assert components["event"]["event_types"] == [
        "trip", "fall", "no_recovery", "help", "fault", "ok", "closed", "reset", "test",
    ]  # fmt: skip
    triggers = {
        (c["type"], c["subtype"], c["payload"], c["topic"])
        for c in components.values()
        if c["platform"] == "device_automation"
    }
    assert triggers == {
        ("fall", "walker", "fall", TOPICS.event),
        ("no_recovery", "walker", "no_recovery", TOPICS.event),
    }
    assert device.origin["name"] == "retroguard"
    assert device.device["identifiers"] == ["retroguard_tm-1"]
    assert device.device.get("configuration_url", "") == dashboard_url
    # Every entity but the incident ones goes grey with the device; those two stay: a fall
    # nobody closed is still a fall while the device cannot be reached.
    always = {k for k, c in components.items() if c.get("availability") == []}
    assert always == {"fall", "incident"}


def test_every_button_sends_a_command_the_device_accepts() -> None:
    ha = home_assistant()
    sent = {}
    for button, name in (
        ("_ack", "ack"),
        ("_silence", "silence"),
        ("_self_test", "self_test"),
        ("_test_alarm", "test_alarm"),
    ):
        topic, payload = ha.press(button)
        assert topic == TOPICS.command(name)
        sent[name] = parse_command(name, payload.encode()).command
    assert sent == {
        "ack": Ack(LATEST, "home-assistant", via="home-assistant"),
        "silence": Silence(),
        "self_test": SelfTest(),
        "test_alarm": commands.TestAlarm("home-assistant"),
    }
    assert json.loads(ha.press("_ack")[1]) == {
        "event_id": "latest",
        "by": "home-assistant",
        "via": "home-assistant",
    }


def _component(data: dict[str, Any], suffix: str) -> dict[str, Any]:
    return next(c for k, c in data["cmps"].items() if k.endswith(suffix))


def _set(suffix: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda data: _component(data, suffix).__setitem__(key, value)


def _drop(suffix: str, key: str) -> Callable[[dict[str, Any]], None]:
    return lambda data: _component(data, suffix).pop(key)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (_drop("_outbox", "uniq_id"), "needs a unique_id"),
        (_set("_outbox", "stat_tp", "x"), "Additional properties"),
        (_set("_state", "unit_of_meas", "x"), "options cannot go with"),
        (_drop("_state", "ops"), "enum needs options"),
        (_drop("_last_event", "dev_cla"), "options need device_class enum"),
        (_set("_state", "ops", []), "empty options"),
        (_set("_fall", "dev_cla", "fall"), "is not one of"),
        (_set("_state", "stat_cla", "measurement"), "options cannot go with"),
        (_set("_week_backward", "unit_of_meas", "minutes"), "duration's unit"),
        (_set("_ack", "dev_cla", "acknowledge"), "is not one of"),
        (_set("_no_recovery_trigger", "type", "fall"), "is not unique"),
        (_set("_fall_trigger", "atype", "action"), "'trigger' was expected"),
        (_drop("_fall_trigger", "stype"), "'subtype' is a required property"),
        (_drop("_event", "evt_typ"), "'event_types' is a required property"),
        (_set("_event", "evt_typ", ["fall", "fall"]), "event_types repeat"),
        (_set("_ack", "p", "alarm"), "platform 'alarm' is not supported"),
        (_drop("_ack", "cmd_t"), "'command_topic' is a required property"),
        (_set("_fall", "val_tpl", "{{ value_json.open "), "does not compile"),
        (_set("_outbox", "stat_t", "retroguard/+/telemetry"), "does not match"),
        (_set("_outbox", "uniq_id", "retroguard_tm-1_state"), "unique_id repeats"),
        (_set("_fall", "ic", "alert"), "does not match"),
        (lambda d: d.pop("o"), "'origin' is a required property"),
        (lambda d: d.__setitem__("dashboard", "x"), "Additional properties"),
        (lambda d: d.__setitem__("avty_t", "x/availability"), "exclusive"),
        (lambda d: d["dev"].pop("ids"), "at least one of identifiers"),
        (lambda d: d["dev"].__setitem__("cu", "ftp://x"), "not a valid configuration URL"),
        (lambda d: d["dev"].__setitem__("modell", "x"), "Additional properties"),
    ],
)
def test_the_checker_refuses_what_home_assistant_refuses(
    change: Callable[[dict[str, Any]], None], complaint: str
) -> None:
    data = copy.deepcopy(message(DASHBOARD))
    change(data)
    with pytest.raises(DiscoveryError, match=complaint):
        parse_device_discovery(TOPIC, json.dumps(data))


def test_home_assistant_ignores_a_device_id_its_discovery_topic_cannot_carry() -> None:
    with pytest.raises(DiscoveryError, match="ignores this discovery topic"):
        parse_device_discovery(discovery_topic("homeassistant", "tm.1"), json.dumps(message()))


# ------------------------------------------------------------ the templates at work


def test_the_safety_state_and_the_fault_follow_the_retained_state() -> None:
    ha = home_assistant()
    for state in DeviceState:
        ha.receive(TOPICS.state, payloads.state_payload(DEVICE, state, f"now {state}").encode())
        shown = ha.attributes[ha.component("_state").key]
        assert (ha.state("_state"), shown["code"]) == (SAFETY_STATE_WORDS[state.value], state.value)
        assert ha.state("_fault") == ("on" if state is DeviceState.FAULT else "off")
        assert ha.attributes[ha.component("_fault").key]["reason"] == f"now {state}"


@pytest.mark.parametrize(
    ("state", "reason", "worn", "shown"),
    [
        (DeviceState.STANDBY, "sensor not worn: no body signal", WornSaid.NOT_WORN, "Not worn"),
        (DeviceState.FAULT, "sensor not worn while armed", WornSaid.NOT_WORN, "Not worn"),
        (DeviceState.STANDBY, STILL_MEASURING_REASON, WornSaid.MEASURING, "Still measuring"),
        (DeviceState.ARMED, "armed at the machine", None, None),
    ],
)
def test_the_safety_state_says_in_words_whether_the_sensor_is_not_worn_or_still_measuring(
    state: DeviceState, reason: str, worn: WornSaid | None, shown: str | None
) -> None:
    """Both reasons begin "sensor not worn" (a press refused while the check still measures
    keeps the prefix for older consumers): the ``worn`` attribute, from the state message's
    typed ``worn``, is what lets an automation page "not worn" and not a walker whose sensor
    is clipped on and being checked. It follows the retained state: gone once it says
    neither."""
    ha = home_assistant()
    ha.receive(
        TOPICS.state,
        payloads.state_payload(DEVICE, state, reason, worn=worn).encode(),
        retain=True,
    )
    attributes = ha.attributes[ha.component("_state").key]
    assert attributes["worn"] == shown
    assert attributes["reason"] == reason  # the words as sent beside it
    assert set(WORN_WORDS) == {w.value for w in WornSaid}
    # the Fault sensor says it of the fault it is on for, and only then
    fault = ha.attributes[ha.component("_fault").key]
    assert fault["worn"] == (shown if state is DeviceState.FAULT else None)


def test_the_fault_says_whether_the_sensor_fell_off_or_the_monitor_failed() -> None:
    """An automation on the Fault sensor tells "clip the sensor back on" from the other faults
    by its ``worn``: "Not worn" for the sensor-worn check's fault, none for any other, as the
    Safety state's ``worn`` says (it had only the reason's prefix). A stall's FAULT (a
    heartbeat gap) is one of those others, and clears by itself: the Fault goes off."""
    ha = home_assistant()
    for reason, worn, shown in (
        ("sensor not worn: no body movement for 6 s", WornSaid.NOT_WORN, "Not worn"),
        ("IMU stale 0.6 s", None, None),
        ("no heartbeat for 47 ms, against 44 ms: its latch let go", None, None),
    ):
        ha.receive(
            TOPICS.state,
            payloads.state_payload(DEVICE, DeviceState.FAULT, reason, worn=worn).encode(),
            retain=True,
        )
        assert ha.state("_fault") == "on"
        assert ha.attributes[ha.component("_fault").key]["worn"] == shown, reason
    ha.receive(  # the stall's FAULT cleared once the data was healthy: no one needed
        TOPICS.state,
        payloads.state_payload(DEVICE, DeviceState.STANDBY, "IMU healthy; press reset").encode(),
        retain=True,
    )
    assert ha.state("_fault") == "off"
    assert ha.attributes[ha.component("_fault").key]["worn"] is None


def test_the_safety_event_keeps_the_state_attribute_home_assistant_keeps_on_events() -> None:
    """Unlike a ``json_attributes_template``'s (core mqtt/entity.py MQTT_ATTRIBUTES_BLOCKED,
    hence the Last event's ``safety_state``), an MQTT event's attributes are the rendered
    object's keys but ``event_type``, unfiltered (core mqtt/event.py ``_event_received`` hands
    them to ``_trigger_event``): the Safety event's ``state`` reaches automations as it is,
    and keeps its name for the automations that read it."""
    ha = home_assistant()
    ha.receive(TOPICS.event, event(EventType.FALL, incident=INCIDENT))
    _, event_type, attributes = ha.events[-1]
    assert (event_type, attributes["state"]) == ("fall", "TRIPPED")
    assert "safety_state" not in attributes


@pytest.mark.parametrize(
    ("retained", "fall", "open_incident"),
    [
        (incident(), "off", "none"),
        (incident(open=True, incident=INCIDENT, severity="stumble"), "off", "stumble"),
        (incident(open=True, incident=INCIDENT, severity="fall"), "on", "fall"),
        (incident(open=True, incident=INCIDENT, severity="no_recovery"), "on", "no_recovery"),
        (incident(open=True, incident=INCIDENT, severity="help"), "off", "help"),
        (incident(open=True, incident=INCIDENT, severity="fault"), "off", "fault"),
        (
            incident(incident=INCIDENT, severity="fall", closed_by="Ann", closed_via="dashboard"),
            "off",
            "none",
        ),
    ],
)
def test_the_fall_sensor_and_the_incident_follow_the_retained_incident(
    retained: bytes, fall: str, open_incident: str
) -> None:
    ha = home_assistant()
    ha.receive(TOPICS.incident, retained, retain=True)
    assert ha.state("_fall") == fall
    # the dashboard's name for it (a closed incident's headline): "Monitor fault", not "Fault"
    said = "No incident" if open_incident == "none" else ALERT_SAID[open_incident].name
    assert ha.state("_incident") == INCIDENT_WORDS[open_incident] == said
    assert ha.attributes[ha.component("_incident").key]["code"] == open_incident
    attributes = ha.attributes[ha.component("_fall").key]
    assert attributes["incident"] == json.loads(retained).get("incident")
    assert attributes["closed_by"] == json.loads(retained).get("closed_by")


def test_an_open_fall_stays_on_while_the_device_is_offline() -> None:
    ha = home_assistant()
    ha.receive(TOPICS.incident, incident(open=True, incident=INCIDENT, severity="fall"))
    ha.receive(TOPICS.availability, b"offline")
    assert ha.is_available("_fall") and ha.state("_fall") == "on"
    assert ha.is_available("_incident")
    assert not ha.is_available("_state") and not ha.is_available("_fault")
    assert not ha.is_available("_ack")


def test_the_event_entity_fires_for_incident_events_with_the_trip_named_trip() -> None:
    ha = home_assistant()
    for kind in EventType:
        ha.receive(TOPICS.event, event(kind, incident=INCIDENT, by="Ann", via="dashboard"))
    fired = [(event_type, attrs["incident"]) for _, event_type, attrs in ha.events]
    assert fired == [(HA_EVENT_TYPES[k], INCIDENT) for k in EventType if k in HA_EVENT_TYPES]
    assert fired[0][0] == "trip"  # the wire's stumble
    assert not {"start", "stop", "window"} & {name for name, _ in fired}
    _, _, attrs = ha.events[0]
    assert attrs["reason"] == "a stumble" and attrs["by"] == "Ann"
    # Events from before incidents (no incident, no by) fire too, with those attributes empty.
    ha.events.clear()
    ha.receive(TOPICS.event, event(EventType.FALL))
    assert [(t, a["incident"], a["by"]) for _, t, a in ha.events] == [("fall", None, None)]
    # A retained replay is not an event (Home Assistant ignores those).
    ha.receive(TOPICS.event, event(EventType.FALL), retain=True)
    assert len(ha.events) == 1


def test_the_device_triggers_fire_on_a_fall_and_on_no_recovery_only() -> None:
    ha = home_assistant()
    for kind in EventType:
        ha.receive(TOPICS.event, event(kind, incident=INCIDENT))
    assert ha.triggered == [("fall", "walker"), ("no_recovery", "walker")]


def test_the_self_test_button_shows_its_verdict() -> None:
    ha = home_assistant()
    key = ha.component("_self_test_outcome").key
    passed = {"passed": True, "checks": {"imu": {"ok": True, "detail": "fine"}}}
    failed = {
        "passed": False,
        "checks": {
            "imu": {"ok": False, "detail": "no samples"},
            "broker": {"ok": True, "detail": "connected"},
            "storage": {"ok": False, "detail": "disk full"},
        },
    }
    retained = "retained command ignored: commands are one-off"
    none = {"failed_checks": [], "failures": None, "refused_because": None}
    steps: list[tuple[str, str, dict[str, Any]]] = [
        (payloads.reply_payload(DEVICE, "self_test", "t1", True, passed), "passed", none),
        (payloads.reply_payload(DEVICE, "ping", "p1", True, {"pong": True}), "passed", none),
        (
            payloads.reply_payload(DEVICE, "self_test", "t2", True, failed),
            "failed",
            {
                "failed_checks": ["imu", "storage"],
                "failures": "imu: no samples; storage: disk full",
                "refused_because": None,
            },
        ),
        (
            payloads.reply_payload(DEVICE, "ack", None, False, error="no open incident"),
            "failed",
            {"failed_checks": ["imu", "storage"]},
        ),
        # refused unrun: not a device problem, and it says why
        (
            payloads.reply_payload(DEVICE, "self_test", None, False, error=retained),
            "refused",
            {"failed_checks": [], "failures": None, "refused_because": retained},
        ),
        (payloads.reply_payload(DEVICE, "self_test", "t3", True, passed), "passed", none),
    ]
    for reply, verdict, attributes in steps:
        ha.receive(TOPICS.reply, reply.encode())
        assert ha.state("_self_test_outcome") == SELF_TEST_WORDS[verdict]
        shown = ha.attributes[key]
        assert {k: shown[k] for k in attributes} == attributes
        assert shown["code"] == verdict
        message = payloads.decode(TopicKind.REPLY, reply.encode())
        assert isinstance(message, ReplyMessage)
        if message.command == "self_test":  # the same words as the typed reply's
            outcome, words = self_test_outcome(message)
            assert outcome == verdict
            if verdict == "failed":
                assert words == shown["failures"]
            elif verdict == "refused":
                assert words == shown["refused_because"]


def test_a_self_test_answer_before_any_self_test_leaves_the_result_unknown() -> None:
    ha = home_assistant()
    ha.receive(TOPICS.reply, payloads.reply_payload(DEVICE, "ping", "p", True, {}).encode())
    assert ha.state("_self_test_outcome") is None


def test_the_session_sensors_follow_the_retained_progress() -> None:
    ha = home_assistant()
    ha.receive(TOPICS.progress, progress(), retain=True)
    assert ha.state("_session") == "No session yet"
    assert ha.attributes[ha.component("_session").key]["code"] == "none"
    assert ha.state("_week_at_goal") == "0"
    assert ha.state("_week_backward") == "0.0"
    ha.receive(
        TOPICS.progress,
        progress(
            session="running",
            plan="alternate-2-2",
            started_wall="2026-03-02T09:30:00+00:00",
            week_sessions=3,
            week_at_goal=2,
            week_backward_s=1830.0,
            week_longest_backward_s=640.0,
            planned_s=1800.0,
            done_s=600.0,
            backward_s=300.0,
        ),
    )
    assert ha.state("_session") == "Running"
    assert ha.state("_week_at_goal") == "2"
    assert ha.state("_week_backward") == "30.5"
    week = ha.attributes[ha.component("_week_at_goal").key]
    assert week == {
        "week": "2026-W10",
        "sessions": 3,
        "goal_sessions": 3,
        "goal_backward_s": 600.0,
        "longest_backward_s": 640.0,
        "sessions_clock_not_set": None,  # an older device: not said
        "walker": "default",  # an older device, or one walker: the default walker's
        "walker_name": "Default walker",
    }
    assert ha.attributes[ha.component("_session").key]["plan"] == "alternate-2-2"


def test_the_balance_and_gait_sensors_show_the_latest_measure_with_its_noise() -> None:
    ha = home_assistant()
    ha.receive(TOPICS.progress, progress(), retain=True)
    assert ha.state("_sway") is None and ha.state("_step_time_cv") is None  # unknown, not 0
    ha.receive(
        TOPICS.progress,
        progress(
            sway_rms_ap_ms2=0.0712,
            sway_rms_ml_ms2=0.021,
            sway_wall="2026-03-02T09:00:00+00:00",
            step_time_cv_pct=4.25,
            gait_wall="2026-03-02T09:00:00+00:00",
        ),
    )
    assert ha.state("_sway") == "0.0712"
    assert ha.state("_step_time_cv") == "4.25"
    sway = ha.attributes[ha.component("_sway").key]
    assert sway == {
        "rms_ml_ms2": 0.021,
        "session_started": "2026-03-02T09:00:00+00:00",
        "walker": "default",
        "walker_name": "Default walker",
        "mdc95": round(next(m for m in METRICS if m.key == "sway_rms_ap").mdc95, 4),
        "mdc95_unit": "m/s²",
    }
    cv = ha.attributes[ha.component("_step_time_cv").key]
    assert cv["mdc95"] == pytest.approx(3.66, abs=0.01)
    assert cv["mdc95_unit"] == "percentage points"
    assert ha.component("_sway").config["unit_of_measurement"] == "m/s²"


def test_the_last_event_and_the_outbox_keep_working() -> None:
    ha = home_assistant()
    ha.receive(TOPICS.event, event(EventType.FALL, incident=INCIDENT))
    assert ha.state("_last_event") == "Fall"
    ha.receive(TOPICS.event, event(EventType.STUMBLE, incident=INCIDENT))
    assert ha.state("_last_event") == "Stumble — belt stopped"  # the dashboard's row, dash and all
    ha.receive(TOPICS.event, event(EventType.RESET, incident=INCIDENT))
    assert ha.state("_last_event") == "Reset at the machine"
    ha.receive(TOPICS.event, event(EventType.OK, incident=INCIDENT))
    assert ha.state("_last_event") == "Walker pressed I'm OK"
    ha.receive(TOPICS.event, event(EventType.FALL, incident=INCIDENT))
    assert ha.attributes[ha.component("_last_event").key]["incident"] == INCIDENT
    health = payloads.telemetry_payload(DEVICE, 7, DeviceHealth())
    ha.receive(TOPICS.telemetry, health.encode())
    assert ha.state("_outbox") == "7"


@pytest.mark.parametrize("kind", [t for t in EventType if t is not EventType.WINDOW])
def test_the_last_event_shows_words_and_keeps_the_wire_type_for_automations(
    kind: EventType,
) -> None:
    """The Last event sensor showed the wire's type (``stumble``, ``no_recovery``) on a
    family member's tile while every enum sensor beside it showed words: it is an enum sensor
    of words now, the type in its ``code`` attribute, as theirs."""
    ha = home_assistant()
    ha.receive(TOPICS.event, event(kind, incident=INCIDENT))
    shown = ha.state("_last_event")
    assert shown == LAST_EVENT_WORDS[kind.value] and shown != kind.value
    # the dashboard timeline's label: it said "Armed again at the machine" of a reset the
    # dashboard calls "Reset at the machine", "Closed by a caregiver" for "Acknowledged"
    assert shown == EVENT_SAID[kind.value].row
    assert "_" not in shown
    assert ha.attributes[ha.component("_last_event").key]["code"] == kind.value
    assert shown in ha.component("_last_event").config["options"]


def test_the_last_event_shows_the_safety_state_under_a_name_home_assistant_keeps() -> None:
    """Home Assistant silently filters a json attribute named ``state`` (core mqtt/entity.py
    MQTT_ATTRIBUTES_BLOCKED): the Last event sensor's safety state at the event was never
    shown. It is ``safety_state`` now, and no component's attributes use a blocked name."""
    ha = home_assistant()
    ha.receive(TOPICS.event, event(EventType.FALL, incident=INCIDENT))
    attributes = ha.attributes[ha.component("_last_event").key]
    assert attributes["safety_state"] == "TRIPPED"
    assert "state" not in attributes


PROGRESS_SENSORS = (
    "_session",
    "_week_at_goal",
    "_week_backward",
    "_week_done",
    "_week_longest",
    "_weeks_at_goal",
    "_sway",
    "_step_time_cv",
)


def test_every_progress_sensor_says_whose_week_it_shows() -> None:
    """On a shared treadmill the retained progress follows the walker chosen: "Sessions at
    goal this week" was Anna's, then Ben's, and nothing on the dashboard said whose. Every
    sensor of the ``progress`` topic carries the payload's walker (id and name); a device
    with one walker (and every older release) leaves it out: the default walker."""
    ha = home_assistant()
    ha.receive(TOPICS.progress, progress(walker=Walker("anna", "Anna")), retain=True)
    for suffix in PROGRESS_SENSORS:
        attributes = ha.attributes[ha.component(suffix).key]
        assert (attributes["walker"], attributes["walker_name"]) == ("anna", "Anna"), suffix
    ha.receive(TOPICS.progress, progress(), retain=True)
    for suffix in PROGRESS_SENSORS:
        attributes = ha.attributes[ha.component(suffix).key]
        assert (attributes["walker"], attributes["walker_name"]) == (
            DEFAULT_WALKER.id,
            DEFAULT_WALKER.name,
        ), suffix


def test_every_entity_of_the_device_has_its_own_name() -> None:
    """Home Assistant lists a device's entities by name (the device's name before it): two
    called "Self-test", a button and a problem sensor, read as one thing on the device page
    and in the entity picker."""
    ha = home_assistant()
    assert ha.device is not None
    names = [c.config["name"] for c in ha.device.components.values() if "name" in c.config]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert ha.component("_self_test_outcome").config["name"] == "Self-test result"


def test_a_numeric_sensor_fed_text_is_refused_as_home_assistant_does() -> None:
    """The checker's model: a sensor with a state class, a unit or a display precision must
    get a number (core sensor/__init__.py); empty is ignored, ``None`` is unknown."""
    ha = home_assistant()
    telemetry = payloads.telemetry_payload(DEVICE, 3, DeviceHealth())
    config = ha.component("_outbox").config
    config["value_template"] = "{{ value_json.wall_time }}"
    with pytest.raises(DiscoveryError, match="not numeric"):
        ha.receive(TOPICS.telemetry, telemetry.encode())
    config["value_template"] = "{{ '' }}"
    ha.receive(TOPICS.telemetry, telemetry.encode())
    assert ha.state("_outbox") is None  # ignored: still unknown


def _docs_fall_automation() -> tuple[str, str]:
    """The message and tag templates of docs/mqtt.md's "page the caregiver" automation."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "mqtt.md").read_text()
    block = text[text.index("alias: RetroGuard fall - page the caregiver") :]
    block = block[: block.index("```")]
    lines = block.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "message: >-")
    indent = len(lines[start + 1]) - len(lines[start + 1].lstrip())
    folded = []
    for line in lines[start + 1 :]:
        if len(line) - len(line.lstrip()) < indent:
            break
        folded.append(line.strip())
    tag = re.search(r'tag: "(.*)"', block)
    assert tag is not None
    return " ".join(folded), tag.group(1)


def test_the_documented_fall_automation_renders_for_every_real_fall() -> None:
    """docs/mqtt.md's example reads the device trigger's ``payload_json``; the device leaves
    ``wall_unsynced`` out when false (and ``incident`` when none), and Home Assistant logs a
    template warning for every attribute that is not there, on every page of a fall. The
    templates read them with ``.get`` and render, strictly, against real fall events."""
    message_template, tag_template = _docs_fall_automation()
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    now = dt.datetime(2026, 3, 2, 10, 0, 5, tzinfo=dt.UTC)
    for payload, clock_not_set in (
        (event(EventType.FALL, incident=INCIDENT), False),
        (event(EventType.FALL, incident=INCIDENT, wall_unsynced=True), True),
    ):
        trigger = {"payload": payload.decode(), "payload_json": json.loads(payload)}
        message = env.from_string(message_template).render(trigger=trigger, now=lambda: now)
        assert ("the treadmill clock was not set" in message) is clock_not_set, message
        assert env.from_string(tag_template).render(trigger=trigger) == INCIDENT


def caregiver_link(**fields: Any) -> bytes:
    values: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "device_id": DEVICE,
        "wall_time": "2026-03-02T14:05:00.000+00:00",
        "state": "online",
        "expected": True,
        "since": "2026-03-02T14:03:00.000+00:00",
    }
    values.update(fields)
    return payloads.encode(CaregiverLinkMessage(**values)).encode()


@pytest.mark.parametrize(
    ("retained", "connected", "oldest"),
    [
        (caregiver_link(), "on", None),
        (caregiver_link(state="unknown", since=None), "off", None),
        (
            caregiver_link(
                state="offline", awaiting=2, oldest_awaiting="2026-03-02T14:04:00.000+00:00"
            ),
            "off",
            "2026-03-02T14:04:00.000+00:00",
        ),
        (  # online, but it stores nothing: nobody is paged, off as while it is away
            caregiver_link(
                storing=False, fault="database damaged", fault_since="2026-03-02T14:04:00+00:00"
            ),
            "off",
            None,
        ),
    ],
)
def test_the_caregiver_service_sensor_follows_what_the_device_hears(
    retained: bytes, connected: str, oldest: str | None
) -> None:
    """Caregiver service is a connectivity sensor: on while the device hears the caregiver
    service online; the oldest unreceived alert is a timestamp (unknown when none waits)."""
    ha = home_assistant()
    ha.receive(TOPICS.caregiver, retained, retain=True)
    assert ha.state("_caregiver") == connected
    assert ha.state("_unreceived") == oldest
    attributes = ha.attributes[ha.component("_caregiver").key]
    assert attributes["since"] == json.loads(retained).get("since")
    assert attributes["cannot_store"] == json.loads(retained).get("fault")
    assert attributes["cannot_store_since"] == json.loads(retained).get("fault_since")
    ha.receive(TOPICS.availability, b"offline")  # the device cannot tell then: greyed out
    assert not ha.is_available("_caregiver") and not ha.is_available("_unreceived")


def test_without_a_caregiver_service_its_sensors_are_removed() -> None:
    device = parse_device_discovery(TOPIC, discovery_payload(TOPICS, "Tm", caregiver=False))
    components = {
        k.removeprefix("retroguard_tm-1_"): c.config for k, c in device.components.items()
    }
    assert components["caregiver"] == {"platform": "binary_sensor"}
    assert components["unreceived"] == {"platform": "sensor"}


def test_without_telemetry_no_entity_waits_on_the_telemetry_topic() -> None:
    """``mqtt.telemetry_interval_s = 0`` sends no telemetry at all: Outbox depth and Storage
    fault were announced anyway and stayed "unknown" for ever (a storage fault sensor that
    never turns on). They are announced only when telemetry is sent."""
    with_telemetry = HomeAssistant()
    with_telemetry.receive(TOPIC, discovery_payload(TOPICS, "Treadmill 1").encode())
    assert with_telemetry.device is not None
    on_telemetry = {
        key.removeprefix(f"retroguard_{DEVICE}_")
        for key, c in with_telemetry.device.components.items()
        if c.config.get("state_topic") == TOPICS.telemetry
    }
    assert on_telemetry == {"outbox", "storage"}
    without = HomeAssistant()
    without.receive(TOPIC, discovery_payload(TOPICS, "Treadmill 1", telemetry=False).encode())
    assert without.device is not None
    assert not [
        key
        for key, c in without.device.components.items()
        if TOPICS.telemetry in (c.config.get("state_topic"), c.config.get("json_attributes_topic"))
    ]
    assert len(without.device.components) == len(with_telemetry.device.components) - 2


def test_the_last_event_is_not_overwritten_by_the_imu_window_after_a_trip() -> None:
    """The device sends a ``window`` event (the IMU around a trip) 10 s after every trip: the
    Last event sensor showed "window" after every stumble and fall, with the window's
    attributes. It keeps the event it showed, attributes and all; Safety event ignores
    windows too."""
    ha = home_assistant()
    ha.receive(TOPICS.event, event(EventType.STUMBLE, incident=INCIDENT))
    ha.receive(TOPICS.event, event(EventType.FALL, incident=INCIDENT, walker="anna"))
    shown = dict(ha.attributes[ha.component("_last_event").key])
    fall_id = shown["id"]
    window = event(
        EventType.WINDOW,
        severity=Severity.INFO,
        incident=INCIDENT,
        of=fall_id,
        reason="IMU -10.0 .. +5.0 s around the fall",
    )
    ha.receive(TOPICS.event, window)
    assert ha.state("_last_event") == "Fall"
    assert ha.attributes[ha.component("_last_event").key] == shown
    assert shown["walker"] == "anna" and shown["safety_state"] == "TRIPPED"
    assert shown["code"] == "fall"
    assert [t for _, t, _ in ha.events] == ["trip", "fall"]
    fresh = home_assistant()  # a window first (Home Assistant started after the trip)
    fresh.receive(TOPICS.event, window)
    assert fresh.state("_last_event") is None  # unknown
    assert set(fresh.attributes[fresh.component("_last_event").key].values()) == {None}


def test_an_empty_discovery_message_removes_the_device() -> None:
    ha = home_assistant()
    ha.receive(TOPICS.state, payloads.state_payload(DEVICE, "ARMED", "armed").encode())
    ha.receive(TOPIC, b"")
    assert ha.removed and ha.device is None and not ha.states


def test_the_goal_sensors_show_adherence_progression_and_weeks_at_goal() -> None:
    ha = home_assistant()
    ha.receive(TOPICS.progress, progress(), retain=True)
    assert ha.state("_week_done") is None  # an older device: unknown, not 0 of 3
    assert ha.state("_weeks_at_goal") is None
    ha.receive(
        TOPICS.progress,
        progress(
            week_sessions=2,
            week_longest_backward_s=120.0,
            week_done=2,
            week_prescribed=3,
            weeks_at_goal=1,
            milestone_weeks=4,
        ),
    )
    assert ha.state("_week_done") == "2"
    assert ha.attributes[ha.component("_week_done").key] == {
        "week": "2026-W10",
        "prescribed": 3,
        "sessions_clock_not_set": None,
        "walker": "default",
        "walker_name": "Default walker",
    }
    assert ha.state("_week_longest") == "2.0"
    assert ha.state("_weeks_at_goal") == "1"
    assert ha.attributes[ha.component("_weeks_at_goal").key] == {
        "milestone_weeks": 4,
        "walker": "default",
        "walker_name": "Default walker",
    }


def test_the_week_s_backward_minutes_are_a_measurement_not_a_running_total() -> None:
    """On a shared treadmill the progress follows the chosen walker: Anna's 30 minutes, Ben's
    5, Anna's 30 again. A "total_increasing" sensor reads the fall as a meter reset and the
    rise as 25 new minutes, so Home Assistant's long-term sum counted Anna's week twice."""
    ha = home_assistant()
    component = ha.component("_week_backward")
    assert component.config["state_class"] == "measurement"


def test_the_week_and_session_sensors_say_when_the_treadmill_s_clock_was_not_set() -> None:
    """A session recorded before the clock was ever set may count in the wrong week: the
    sensors that count the week, and the session's, say so beside their figures."""
    ha = home_assistant()
    ha.receive(
        TOPICS.progress,
        progress(
            session="completed",
            week_sessions=3,
            week_done=3,
            week_prescribed=3,
            week_clock_not_set=1,
            clock_not_set=True,
        ),
        retain=True,
    )
    assert ha.attributes[ha.component("_session").key]["clock_not_set"] is True
    assert ha.attributes[ha.component("_week_at_goal").key]["sessions_clock_not_set"] == 1
    assert ha.attributes[ha.component("_week_done").key]["sessions_clock_not_set"] == 1
    ha.receive(
        TOPICS.progress, progress(session="completed", week_clock_not_set=0, clock_not_set=False)
    )
    assert ha.attributes[ha.component("_session").key]["clock_not_set"] is False
    assert ha.attributes[ha.component("_week_done").key]["sessions_clock_not_set"] == 0


def test_the_incident_sensors_and_the_events_name_the_walker_the_default_one_when_absent() -> None:
    """The walker whose incident it is, as an attribute of the Fall and Incident sensors, the
    Last event sensor and the Safety event entity: the payload's ``walker``, ``default`` when
    the payload leaves the default walker out; without an incident, the session's walker the
    event names, else none."""
    ha = home_assistant()
    ha.receive(TOPICS.incident, incident(open=True, incident=INCIDENT, severity="fall",
                                         walker="anna"))  # fmt: skip
    assert ha.state("_fall") == "on"
    for key in ("_fall", "_incident"):
        assert ha.attributes[ha.component(key).key]["walker"] == "anna"
    ha.receive(TOPICS.incident, incident(open=True, incident=INCIDENT, severity="fall"))
    assert ha.attributes[ha.component("_fall").key]["walker"] == "default"
    ha.receive(TOPICS.incident, incident())  # none yet
    assert ha.attributes[ha.component("_incident").key]["walker"] is None
    ha.receive(TOPICS.event, event(EventType.FALL, incident=INCIDENT, walker="ben"))
    ha.receive(TOPICS.event, event(EventType.FALL, incident=INCIDENT))
    ha.receive(TOPICS.event, event(EventType.FALL))  # from before incidents
    assert [attrs["walker"] for _, _, attrs in ha.events] == ["ben", "default", None]
    assert ha.attributes[ha.component("_last_event").key]["walker"] is None
    # no incident, raised during Anna's session (a test alarm): hers
    ha.receive(TOPICS.event, event(EventType.TEST, severity=Severity.INFO, walker="anna"))
    assert ha.events[-1][2]["walker"] == "anna"
    assert ha.attributes[ha.component("_last_event").key]["walker"] == "anna"


def test_the_events_say_when_the_treadmill_s_clock_was_not_set() -> None:
    """An event stamped before NTP set the device's clock carries ``clock_not_set`` beside its
    ``time`` (the Safety event entity and the Last event sensor): that time may be days off."""
    ha = home_assistant()
    ha.receive(TOPICS.event, event(EventType.FALL, incident=INCIDENT, wall_unsynced=True))
    assert ha.events[-1][2]["clock_not_set"] is True
    assert ha.attributes[ha.component("_last_event").key]["clock_not_set"] is True
    ha.receive(TOPICS.event, event(EventType.FALL, incident=INCIDENT))  # as every older release
    assert ha.events[-1][2]["clock_not_set"] is False
    assert ha.attributes[ha.component("_last_event").key]["clock_not_set"] is False


def test_the_fault_says_its_kind_so_an_automation_waits_only_for_a_stall() -> None:
    """The Fault sensor's ``kind``, from the state message's typed ``fault``: a stall clears by
    itself (an automation waits for it), a relay contact that disagrees may not stop the belt
    (it pages at once). None while off, and for a FAULT from a release before the field."""
    ha = home_assistant()
    for kind in FaultSaid:
        ha.receive(
            TOPICS.state,
            payloads.state_payload(DEVICE, DeviceState.FAULT, "why", fault=kind).encode(),
            retain=True,
        )
        assert ha.attributes[ha.component("_fault").key]["kind"] == FAULT_KIND_SAID[kind].name
    assert ha.attributes[ha.component("_fault").key]["kind"] == "Monitor"
    ha.receive(  # an older monitor's FAULT: of unknown kind, not guessed
        TOPICS.state, payloads.state_payload(DEVICE, DeviceState.FAULT, "IMU stale").encode()
    )
    assert ha.state("_fault") == "on"
    assert ha.attributes[ha.component("_fault").key]["kind"] is None
    ha.receive(
        TOPICS.state,
        payloads.state_payload(
            DEVICE, DeviceState.STANDBY, "IMU healthy", fault=FaultSaid.STALL
        ).encode(),
    )
    assert ha.state("_fault") == "off"
    assert ha.attributes[ha.component("_fault").key]["kind"] is None
