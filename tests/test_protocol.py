"""The wire contract (core.protocol): topics, typed payloads, commands, and the docs' schemas."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest
from referencing import Registry, Resource

from caregiver.storage import Part
from core.plan_presets import PRESETS, PROGRESSIONS
from core.protocol.commands import (
    COMMANDS,
    LATEST,
    Ack,
    AssignPlan,
    AssignProgression,
    ChangeProgression,
    CommandName,
    CommandRefused,
    Ping,
    SelfTest,
    Silence,
    TestAlarm,
    command_name,
    encode_command,
    parse_command,
)
from core.protocol.events import (
    ALERT_TYPES,
    INCIDENT_TYPES,
    PROTECTED_TYPES,
    Event,
    EventType,
    Severity,
)
from core.protocol.ids import (
    DEVICE_ID_PATTERN,
    NAME_RULE,
    check_device_id,
    discovery_id_problem,
    is_device_id,
    is_event_id,
    is_topic_name,
)
from core.protocol.messages import (
    JSON_MESSAGES,
    CaregiverHealthMessage,
    CaregiverLinkMessage,
    CaregiverStatusMessage,
    DeviceHealth,
    DeviceState,
    EventMessage,
    IncidentMessage,
    InvalidMessage,
    NotJson,
    ProgressMessage,
    ProtocolError,
    ReceiptMessage,
    ReplyMessage,
    SessionSummary,
    StageMessage,
    StateMessage,
    TelemetryMessage,
    WalkersMessage,
)
from core.protocol.payloads import (
    decode,
    decode_as,
    decode_availability,
    event_payload,
    reply_payload,
    state_payload,
    telemetry_payload,
)
from core.protocol.topics import (
    CONSUMED_KINDS,
    BadTopic,
    DeviceTopic,
    TopicKind,
    Topics,
    all_devices,
    caregiver_health_topic,
    caregiver_status_topic,
    parse_topic,
    topic_level_problem,
)
from core.samples import ImuSample

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "mqtt" / "schemas"


def doc_schema(kind: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text())  # type: ignore[no-any-return]


def fixed_event(window: bool) -> Event:
    samples = (
        tuple(
            ImuSample(9.99 + 0.005 * i, 0.1 * i, -0.25, 0.98, 12.5, -3.25, 0.125) for i in range(3)
        )
        if window
        else ()
    )
    return Event(
        type=EventType.FALL,
        device_id="tm-1",
        t_monotonic=10.0,
        state="TRIPPED",
        reason="impact 3.1 g then lying",
        severity=Severity.CRITICAL,
        wall_time="2026-12-01T21:00:00.123+00:00",
        id="0123456789abcdef0123456789abcdef",
        figures={"impact_g": 3.14159, "tilt_deg": 80.0},
        imu_window=samples,
    )


# ----------------------------------------------------------------- topics


def test_topics_are_built_and_parsed_by_the_same_rules() -> None:
    topics = Topics("retroguard", "tm-1")
    for kind in CONSUMED_KINDS:
        assert parse_topic("retroguard", topics.of(kind)) == DeviceTopic("tm-1", kind)
    assert parse_topic("retroguard", topics.command("ack")) == DeviceTopic(
        "tm-1", TopicKind.COMMAND, "ack"
    )
    assert topics.command_name(topics.command("self_test")) == "self_test"
    assert topics.command_name("retroguard/other/cmd/ack") is None
    assert all_devices("retroguard", TopicKind.EVENT) == "retroguard/+/event"


@pytest.mark.parametrize(
    "topic",
    [
        "elsewhere/tm-1/event",
        "retroguard/tm-1",
        "retroguard/tm-1/event/extra",
        "retroguard/tm-1/unknown",
        "retroguard/tm-1/cmd",
        "homeassistant/status",
    ],
)
def test_topics_that_are_not_ours_parse_to_none(topic: str) -> None:
    assert parse_topic("retroguard", topic) is None


def test_a_device_topic_with_a_bad_device_id_is_refused() -> None:
    with pytest.raises(BadTopic, match="not a device id"):
        parse_topic("retroguard", "retroguard/bad id/event")
    assert not is_device_id("a/b") and not is_device_id("") and is_device_id("tm_1.a-b")
    with pytest.raises(ValueError, match="cannot be used in MQTT topics"):
        check_device_id("tm#1")


@pytest.mark.parametrize("dots", [".", ".."])
def test_dot_segments_are_no_device_id(dots: str) -> None:
    """A device id is one segment of the dashboard's addresses: a browser resolves
    ``/devices/..`` to ``/`` (and ``%2E%2E`` as well), so no device may be so named; the
    documented schemas agree (their pattern is the type's)."""
    assert not is_device_id(dots) and is_device_id(dots + "a") and is_device_id("a" + dots)
    assert is_device_id("...")
    with pytest.raises(ValueError, match=re.escape("not '.' or '..' alone")):
        check_device_id(dots)
    with pytest.raises(BadTopic, match="not a device id"):
        parse_topic("retroguard", f"retroguard/{dots}/event")
    schema = json.loads((SCHEMA_DIR / "event.schema.json").read_text())
    assert schema["properties"]["device_id"]["pattern"] == DEVICE_ID_PATTERN


def test_a_device_id_holds_what_the_name_rule_says_and_nothing_else() -> None:
    """:data:`NAME_RULE` in words, the pattern in fact (mutants, found by mut34: the length a
    step either way, a character widened into the class or one of its own dropped, the final
    newline's lookahead gone). The schema tests say the type and the documented schemas read
    one pattern, not what that pattern takes; a name the broker's topics cannot carry as one
    level, or that no reader of the rule would expect, must not become a device's."""
    assert NAME_RULE.startswith("1-64 letters, digits, '_', '.' or '-'")
    assert is_device_id("z" * 64) and not is_device_id("z" * 65)
    assert is_device_id("AZaz09_.-") and is_topic_name("AZaz09_.-")
    for c in "@/+# :\t\u00e9":
        assert not is_device_id(f"tm{c}1"), repr(c)
    assert not is_device_id("tm1\n") and not is_topic_name("tm1\n")
    with pytest.raises(ValueError, match=re.escape(NAME_RULE)):
        check_device_id("z" * 65)


@pytest.mark.parametrize("value", [None, 64, b"tm1", ["tm1"]])
def test_what_is_not_text_is_no_name_and_no_error(value: object) -> None:
    """A device id read from a payload may be anything JSON holds: it is no name, said as
    such, not a TypeError out of the regex (mutant: the ``isinstance`` check dropped)."""
    assert not is_topic_name(value) and not is_device_id(value)


@pytest.mark.parametrize("value", ["", "tm.1", "tm 1", "tm1\n", "caregiver-care@clinic.example"])
def test_home_assistant_ignores_a_discovery_id_with_other_characters_or_none(value: str) -> None:
    """An empty id and one with a final newline are ignored too (mutants: ``+`` for ``*``,
    the lookahead dropped): the monitor's preflight and the service's warn with these words,
    the value in them as it is."""
    problem = discovery_id_problem(value)
    assert problem is not None and repr(value) in problem
    assert discovery_id_problem("Tm-1_z9") is None


@pytest.mark.parametrize(
    "level", ["", " care", "care ", "a/b", "a+", "#", "ca\x1fre", "ca\x7fre", "ca\x9fre"]
)
def test_what_no_topic_level_can_carry_is_named(level: str) -> None:
    """A topic prefix, a discovery prefix or the service's name on the broker is one level of
    every topic it makes: an empty one, one with spaces about it, a separator, a wildcard or a
    control character the broker drops is refused at ``config --check`` and at the start
    (mutants, found by mut34: the empty level, the surrounding spaces and each end of the
    control characters' ranges let through)."""
    assert topic_level_problem(level) is not None
    assert topic_level_problem("care@clinic.example") is None


@pytest.mark.parametrize("account", ["caregiver", "homeassistant", "caregiver-a", "caregiver-b2"])
def test_no_device_is_named_after_a_broker_account(account: str) -> None:
    """The documented ACL's per-device patterns apply to every account: a device named like
    one would be a device that account may publish for."""
    assert not is_device_id(account) and is_device_id(account.capitalize())
    with pytest.raises(ValueError, match="is a broker account"):
        check_device_id(account)
    with pytest.raises(BadTopic, match="not a device id"):
        parse_topic("retroguard", f"retroguard/{account}/event")
    assert parse_topic("retroguard", caregiver_status_topic("retroguard")) is None


# --------------------------------------------------------------- payloads


def test_the_event_payload_bytes_are_those_of_the_format_before_the_protocol_module() -> None:
    # Written by Event.to_dict + seq + compact sorted JSON at 3f29ca7: the wire must not move.
    assert event_payload(fixed_event(window=False), 7) == (
        '{"device_id":"tm-1","figures":{"impact_g":3.1416,"tilt_deg":80.0},'
        '"id":"0123456789abcdef0123456789abcdef","reason":"impact 3.1 g then lying",'
        '"schema":1,"seq":7,"severity":"critical","state":"TRIPPED","t_monotonic":10.0,'
        '"type":"fall","wall_time":"2026-12-01T21:00:00.123+00:00"}'
    )
    with_window = json.loads(event_payload(fixed_event(window=True), 8))
    assert with_window["imu_window"] == {
        "columns": ["dt", "ax", "ay", "az", "gx", "gy", "gz"],
        "rows": [
            [-0.01, 0.0, -0.25, 0.98, 12.5, -3.25, 0.125],
            [-0.005, 0.1, -0.25, 0.98, 12.5, -3.25, 0.125],
            [0.0, 0.2, -0.25, 0.98, 12.5, -3.25, 0.125],
        ],
    }


def test_every_producer_payload_decodes_to_its_type_and_meets_the_docs_schema() -> None:
    produced: dict[str, str] = {
        "event": event_payload(fixed_event(window=True), 3),
        "state": state_payload("tm-1", "ARMED", "armed by local reset from STANDBY"),
        "telemetry": telemetry_payload(
            "tm-1", 4, DeviceHealth(state=DeviceState.ARMED, sample_rate_hz=199.9, imu_ok=True)
        ),
        "reply": reply_payload("tm-1", "ping", "r1", True, {"pong": True}),
    }
    for kind, payload in produced.items():
        message = decode(TopicKind(kind), payload.encode())
        assert isinstance(message, JSON_MESSAGES[kind])
        jsonschema.validate(json.loads(payload), doc_schema(kind))
    refused = reply_payload("tm-1", "arm", None, False, error="unknown command 'arm'")
    jsonschema.validate(json.loads(refused), doc_schema("reply"))
    reply = decode_as(ReplyMessage, refused.encode())
    assert not reply.ok and reply.error == "unknown command 'arm'" and reply.result is None


def test_telemetry_says_whether_the_belt_is_enabled_only_when_it_is_read_back() -> None:
    for belt_enabled in (True, False):
        health = DeviceHealth(state=DeviceState.TRIPPED, belt_enabled=belt_enabled)
        payload = telemetry_payload("tm-1", 0, health)
        jsonschema.validate(json.loads(payload), doc_schema("telemetry"))
        message = decode_as(TelemetryMessage, payload.encode())
        assert message.belt_enabled is belt_enabled and message.health == health
    unsensed = telemetry_payload("tm-1", 0, DeviceHealth(state=DeviceState.ARMED))
    assert "belt_enabled" not in json.loads(unsensed)  # not read back: absent, never a guess


def test_decoding_names_what_is_wrong() -> None:
    with pytest.raises(NotJson):
        decode(TopicKind.EVENT, b"\xff not json")
    with pytest.raises(NotJson, match="nested too deeply"):  # was RecursionError, uncaught
        decode(TopicKind.EVENT, b'{"a":' * 5000)
    good = json.loads(event_payload(fixed_event(window=False), 1))
    del good["seq"]
    with pytest.raises(InvalidMessage, match="seq"):
        decode_as(EventMessage, json.dumps(good).encode())
    good["seq"] = 1
    good["id"] = "not-an-id"
    with pytest.raises(InvalidMessage, match=r"\$\.id"):
        decode_as(EventMessage, json.dumps(good).encode())
    good["id"] = "0123456789abcdef0123456789abcdef"
    good["newer_key"] = {"anything": [1, 2]}  # keys only grow: a newer producer is fine
    assert decode_as(EventMessage, json.dumps(good).encode()).seq == 1
    assert decode_availability(b"online\n").value == "online"
    with pytest.raises(ProtocolError, match="online or offline"):
        decode_availability(b"maybe")


# --------------------------------------------------- docs' schemas == types

_TYPED = {
    "event": EventMessage,
    "state": StateMessage,
    "telemetry": TelemetryMessage,
    "reply": ReplyMessage,
    "session": SessionSummary,
    "receipt": ReceiptMessage,
    "incident": IncidentMessage,
    "progress": ProgressMessage,
    "walkers": WalkersMessage,
    "caregiver": CaregiverLinkMessage,
    "stage": StageMessage,
}


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return _resolve(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in node:  # ``X | None``: the X
        return _resolve(next(n for n in node["anyOf"] if n.get("type") != "null"), defs)
    return node


def _enums(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, set[Any]]:
    found = {}
    for name, node in schema.get("properties", {}).items():
        node = _resolve(node, defs)
        if "enum" in node:
            found[name] = set(node["enum"])
    return found


@pytest.mark.parametrize("kind", sorted(_TYPED))
def test_the_documented_schema_agrees_with_the_type(kind: str) -> None:
    assert JSON_MESSAGES[kind] is _TYPED[kind]
    generated = msgspec.json.schema(_TYPED[kind])
    defs = generated["$defs"]
    typed = _resolve(generated, defs)
    documented = doc_schema(kind)
    assert set(documented["required"]) == set(typed["required"])
    assert set(typed["properties"]) <= set(documented["properties"])
    doc_enums = _enums(documented, documented.get("$defs", {}))
    for name, values in _enums(typed, defs).items():
        assert doc_enums.get(name) == values, name
    for name, node in typed["properties"].items():
        node = _resolve(node, defs)
        if "pattern" in node:
            assert documented["properties"][name].get("pattern") == node["pattern"], name


def test_the_caregiver_status_schema_agrees_with_its_type() -> None:
    """The service's presence is no device topic (no kind of its own), so not in the table."""
    generated = msgspec.json.schema(CaregiverStatusMessage)
    defs = generated["$defs"]
    typed = _resolve(generated, defs)
    documented = doc_schema("caregiver_status")
    assert set(documented["required"]) == set(typed["required"]) == {"schema", "state", "by"}
    assert set(typed["properties"]) <= set(documented["properties"])
    assert _enums(documented, {})["state"] == _enums(typed, defs)["state"]
    assert parse_topic("retroguard", caregiver_status_topic("retroguard")) is None


def test_the_caregiver_health_schema_agrees_with_its_type() -> None:
    """The service's health is no device topic either; its parts are the store's own."""
    generated = msgspec.json.schema(CaregiverHealthMessage)
    defs = generated["$defs"]
    typed = _resolve(generated, defs)
    documented = doc_schema("caregiver_health")
    assert set(documented["required"]) == set(typed["required"])
    assert set(typed["properties"]) <= set(documented["properties"])
    assert _enums(documented, {})["status"] == _enums(typed, defs)["status"]
    part = documented["properties"]["parts"]["items"]
    assert set(part["required"]) == set(defs["DatabasePart"]["required"])
    assert set(part["properties"]["part"]["enum"]) == {p.value for p in Part}
    topic = caregiver_health_topic("retroguard", "caregiver")
    assert topic == "retroguard/caregiver/health/caregiver"
    assert parse_topic("retroguard", topic) is None


def test_the_session_intervals_schema_agrees_with_its_type() -> None:
    generated = msgspec.json.schema(SessionSummary)
    defs = generated["$defs"]
    typed = defs["IntervalSummary"]
    documented = doc_schema("session")["properties"]["intervals"]["items"]
    assert set(documented["required"]) == set(typed["required"])
    assert set(typed["properties"]) <= set(documented["properties"])
    doc_defs = doc_schema("session")["$defs"]
    assert _enums(documented, doc_defs)["direction"] == _enums(typed, defs)["direction"]


@pytest.mark.parametrize(
    ("documented_name", "type_name"), [("balance", "BalanceFigures"), ("gait", "GaitFigures")]
)
def test_the_session_balance_and_gait_schemas_agree_with_their_types(
    documented_name: str, type_name: str
) -> None:
    generated = msgspec.json.schema(SessionSummary)
    defs = generated["$defs"]
    typed = defs[type_name]
    documented = doc_schema("session")["$defs"][documented_name]
    assert set(documented["required"]) == set(typed["required"])
    assert set(typed["properties"]) <= set(documented["properties"])
    assert _enums(documented, {}) == _enums(typed, defs)
    session = doc_schema("session")["properties"]
    assert session["balance"]["items"]["$ref"] == "#/$defs/balance"
    assert session["gait_backward"]["$ref"] == session["gait_forward"]["$ref"] == "#/$defs/gait"
    assert session["intervals"]["items"]["properties"]["gait"]["$ref"] == "#/$defs/gait"


def test_event_types_and_alerts_are_listed_once() -> None:
    documented = set(doc_schema("event")["properties"]["type"]["enum"])
    assert documented == {t.value for t in EventType}
    assert {EventType.STUMBLE, EventType.FALL, EventType.NO_RECOVERY, EventType.HELP} == (
        ALERT_TYPES
    )
    assert ALERT_TYPES | {EventType.FAULT} == INCIDENT_TYPES
    assert (
        INCIDENT_TYPES
        | {
            EventType.OK,
            EventType.CLOSED,
            EventType.WINDOW,
            EventType.TEST,
        }
        == PROTECTED_TYPES
    )
    assert DeviceState.ARMED.value in doc_schema("state")["properties"]["state"]["enum"]


# --------------------------------------------------------------- commands


def test_commands_round_trip_and_the_home_assistant_payload_is_unchanged() -> None:
    for command, request_id in (
        (Ack("0123456789abcdef0123456789abcdef", "ann"), "cg-1"),
        (Ack(incident="0123456789abcdef0123456789abcdef", by="ann", via="dashboard"), "cg-2"),
        (TestAlarm("ann"), "t1"),
        (Ack(), None),
        (Silence(), "r"),
        (SelfTest(), None),
        (Ping(), "x"),
    ):
        request = parse_command(command_name(command), encode_command(command, request_id).encode())
        assert request.command == command and request.request_id == request_id
        jsonschema.validate(json.loads(encode_command(command, request_id)), doc_schema("command"))
    assert encode_command(Ack(LATEST, "home-assistant")) == (
        '{"event_id":"latest","by":"home-assistant"}'
    )
    assert (
        {c.value for c in CommandName}
        == set(COMMANDS)
        == {"ack", "silence", "self_test", "ping", "test_alarm", "plan", "progression"}
    )


def _command_schema(name: str) -> jsonschema.Draft202012Validator:
    """The documented rules of one command (``$defs/<name>``), its references resolved."""
    schemas = [doc_schema(kind) for kind in ("command", "plan", "progression")]
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas
    )
    return jsonschema.Draft202012Validator(
        {"$ref": f"{schemas[0]['$id']}#/$defs/{name}"}, registry=registry
    )


def test_each_command_s_schema_takes_the_fields_the_device_takes() -> None:
    """``$defs/<name>`` lists exactly the fields the device's parser takes for that command
    (another is refused as unknown), so the schema can say what the one shared list of fields
    cannot: a silence's ``event_id`` is never ``latest`` (the device refuses it: a remote
    silence must name an alarm someone saw, or none)."""
    documented = doc_schema("command")
    assert set(documented["$defs"]) == set(COMMANDS)
    for name, rules in documented["$defs"].items():
        assert set(rules["properties"]) <= set(documented["properties"])
        for field in documented["properties"]:
            try:
                parse_command(name, json.dumps({field: None}).encode())
                unknown = False
            except CommandRefused as refused:
                unknown = str(refused).startswith("unknown field")
            assert unknown == (field not in rules["properties"]), (name, field)
    walker_plan = AssignPlan(PRESETS["alternate-2-2"], "physio", "anna")
    progression = AssignProgression(PROGRESSIONS["toward-10-minutes"], 1, "physio")
    for command in (
        Ack(),
        Ack("0123456789abcdef0123456789abcdef", "ann", via="dashboard"),
        Silence(),
        Silence("0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"),
        SelfTest(),
        Ping(),
        TestAlarm("ann"),
        walker_plan,
        progression,
        ChangeProgression("hold", "physio"),
    ):
        _command_schema(command_name(command)).validate(json.loads(encode_command(command, "r")))
    latest = {"id": "s1", "event_id": LATEST}
    assert not _command_schema("silence").is_valid(latest)
    with pytest.raises(CommandRefused, match="event_id must be a 32-hex-digit event id"):
        parse_command("silence", json.dumps(latest).encode())
    _command_schema("ack").validate(latest)
    assert not _command_schema("progression").is_valid({"action": "hold", "stage": 1})
    assert not _command_schema("plan").is_valid({"id": "p"})


@pytest.mark.parametrize(
    ("name", "payload", "message", "request_id"),
    [
        ("arm", b'{"id":"r1"}', "unknown command 'arm'", "r1"),
        ("ping", b'{"id":"r2","arm":true}', "unknown field(s): arm", "r2"),
        ("ack", b'{"event_id":"x"}', 'event_id must be "latest"', None),
        ("ack", b'{"by":""}', "by must be 1-64 printable characters", None),
        ("ping", b'{"id":"has space"}', "id must be 1-64 printable ASCII", None),
        ("ping", b"[1]", "payload must be a JSON object", None),
        ("ping", b"\xff", "not valid UTF-8 JSON", None),
        ("ping", b"{" + b" " * 5000 + b"}", "payload too large", None),
        # nesting past json's limit raised RecursionError: an internal error and a traceback
        ("progression", b'{"a":' * 5000, "payload is nested too deeply", None),
        # json kept the last of a key given twice, silently: which "by", which "minutes"?
        (
            "ack",
            b'{"by":"Jo","by":"Max"}',
            "payload is not valid JSON: key 'by' appears twice in one object",
            None,
        ),
        (
            "plan",
            b'{"id":"r3","plan":{"name":"a","intervals":'
            b'[{"direction":"backward","minutes":2,"minutes":20}]}}',
            "payload is not valid JSON: key 'minutes' appears twice in one object",
            None,
        ),
        # json takes NaN as a number: the refusal names it rather than blaming the encoding
        (
            "plan",
            b'{"id":"r4","plan":{"name":"a","intervals":[{"direction":"backward","minutes":NaN}]}}',
            "payload is not valid JSON: NaN is not a JSON number",
            None,
        ),
    ],
)
def test_bad_commands_are_refused_with_the_reason_and_the_request_id(
    name: str, payload: bytes, message: str, request_id: str | None
) -> None:
    with pytest.raises(
        CommandRefused, match=message.replace("(", r"\(").replace(")", r"\)")
    ) as info:
        parse_command(name, payload)
    assert info.value.request_id == request_id


def test_an_empty_payload_is_an_empty_command() -> None:
    assert parse_command("ack", b"  ").command == Ack()
    assert is_event_id("0123456789abcdef0123456789abcdef") and not is_event_id("latest")


def test_a_recording_round_trips_within_a_count_and_is_small() -> None:
    import math as m

    from core.protocol.messages import ImuMarks
    from core.protocol.recording import decode_recording, encode_recording

    samples = [
        ImuSample(
            100.0 + i * 0.01,
            0.3 * m.sin(i / 7),
            0.05 * m.cos(i / 3),
            1.0 + 0.4 * m.sin(i / 11),
            120.0 * m.sin(i / 13),
            -40.0,
            3.3,
        )
        for i in range(1400)  # 14 s at 100 Hz
    ]
    rec = encode_recording(
        samples, trip_t=104.0, accel_range_g=8, gyro_range_dps=1000, marks=ImuMarks(impact=1.2)
    )
    back = decode_recording(rec)
    assert rec.start_s == pytest.approx(-4.0) and rec.count == 1400
    for a, b in zip(samples, back, strict=True):
        assert b.t == pytest.approx(a.t - 104.0, abs=1e-6)
        assert all(abs(x - y) <= 8 / 32767 for x, y in zip(a[1:4], b[1:4], strict=True))
        assert all(abs(x - y) <= 1000 / 32767 for x, y in zip(a[4:], b[4:], strict=True))
    wire = msgspec.json.encode(rec)
    assert len(rec.samples) < len(samples) * 6 * 2  # compressed below raw int16
    assert len(wire) < 24_000
    with pytest.raises(ValueError, match="not zlib"):
        decode_recording(msgspec.structs.replace(rec, samples=b"garbage"))
    with pytest.raises(ValueError, match=r"holds more than 60 bytes, not 12 \(6 x int16\) x 5"):
        decode_recording(msgspec.structs.replace(rec, count=5))


def test_a_recording_claiming_more_samples_than_one_holds_is_refused_before_unpacking() -> None:
    """``count`` sized the buffer the samples were unpacked into, and they unpacked as far as
    they went: 2**40 samples was a MemoryError out of the plot's route (its 500), 10**8 a
    1.2 GB buffer for each view; a 12 kB zlib stream of 12 MB of zeros unpacked whole."""
    import zlib

    from core.protocol.recording import decode_recording, encode_recording

    rec = encode_recording(
        [ImuSample(i * 0.01, 0, 0, 1, 0, 0, 0) for i in range(10)],
        trip_t=0.05,
        accel_range_g=8,
        gyro_range_dps=1000,
    )
    with pytest.raises(ValueError) as err:
        decode_recording(msgspec.structs.replace(rec, count=2**40))
    assert (
        str(err.value) == "recording claims 1,099,511,627,776 samples, over the 100,000 one holds"
    )
    bomb = msgspec.structs.replace(rec, samples=zlib.compress(bytes(12_000_000)))
    with pytest.raises(ValueError) as err:
        decode_recording(bomb)  # unpacked only as far as the claim, 120 bytes, and one more
    assert str(err.value) == "recording holds more than 120 bytes, not 12 (6 x int16) x 10"
    short = msgspec.structs.replace(rec, samples=zlib.compress(bytes(7)))
    with pytest.raises(ValueError, match=r"^recording holds 7 bytes, not 12 \(6 x int16\) x 10$"):
        decode_recording(short)
    assert len(decode_recording(msgspec.structs.replace(rec, count=10))) == 10


def test_the_retained_status_topics_are_device_topics_no_consumer_is_made_to_read() -> None:
    topics = Topics("retroguard", "tm-1")
    assert topics.incident == "retroguard/tm-1/incident"
    assert topics.progress == "retroguard/tm-1/progress"
    for kind in (TopicKind.INCIDENT, TopicKind.PROGRESS, TopicKind.WALKERS):
        assert parse_topic("retroguard", topics.of(kind)) == DeviceTopic("tm-1", kind)
        assert kind not in CONSUMED_KINDS  # additive: existing consumers subscribe as before
    assert set(_TYPED) == set(JSON_MESSAGES)  # every JSON kind has a documented schema
