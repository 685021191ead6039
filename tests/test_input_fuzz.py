"""Seeded adversarial inputs: bad input gets a clear error, never a crash (safety rule 6).

A small structure-aware fuzzer (no hypothesis: ``random.Random(seed)``, fixed seeds, a few
hundred cases a target) mutates valid examples — keys dropped, duplicated, retyped;
huge, negative, NaN and infinite numbers; empty and 100 kB strings; wrong nesting;
lookalike and lone-surrogate text; truncated and non-UTF-8 bytes; deep nesting — and feeds
them to what reads input from the network and from people:

* the device's command handling (every ``cmd/*`` name, a real reporter on a real SQLite
  file): each gets a reply that validates against the schema and is never an
  ``internal error``; nothing reaches anything that can arm (``tests/test_mqtt_commands.py``);
* the caregiver's ingest (a real SQLite store): a garbage message on a device's topic is
  rejected alone, and another device's fall in the same batch is stored;
* config tables (``config --check``'s checks) and plan and progression data: a
  :class:`ConfigError` or :class:`PlanInvalid`, nothing else.

What it found (a lone ``\\ud800`` escape in a command or plan file: an internal error, a
traceback) is kept below as regression tests, end to end over a real Mosquitto where the
path goes through the broker.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import logging
import random
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caregiver.config import CaregiverConfig, CaregiverMqttConfig, ServerConfig
from caregiver.service import CaregiverService
from core import strict_json
from core.errors import ConfigError
from core.plan_presets import PRESETS, PROGRESSIONS
from core.protocol import payloads
from core.protocol.commands import AssignPlan, AssignProgression, encode_command
from core.protocol.ids import is_device_id, is_event_id, is_request_id
from core.protocol.messages import (
    SCHEMA_VERSION,
    DeviceHealth,
    DeviceState,
    EventMessage,
    IncidentMessage,
    InvalidMessage,
    ProgressMessage,
    WalkersMessage,
)
from core.protocol.plan import (
    PlanInvalid,
    plan_from_json,
    plan_to_builtins,
    progression_from_builtins,
    progression_to_builtins,
)
from core.protocol.walker import DEFAULT_WALKER
from firmware.config import MqttConfig, load_config, parse_config
from firmware.mqtt import MqttReporter
from firmware.preflight import check_or_raise
from firmware.session.plan import parse_plan
from firmware.session.record import session_payload
from launcher.cli import main
from tests.caregiver_support import session_record
from tests.mqtt_helpers import WAIT, config_for, fall, subscriber, validate
from tools.broker import Mosquitto
from tools.config_example import example_config_text

DEVICE, OTHER = "treadmill-1", "treadmill-2"
WALL = "2026-03-02T09:00:00+00:00"

WEIRD: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 2**63, -(2**63) - 1, 10**400, 1e308, -1e308, 5e-324, -0.0,
    "", " ", "x" * 100_000, "\u0000", "\ud800", "\udfff x", "\u202e",
    "\uff42\uff41\uff43\uff4b\uff57\uff41\uff52\uff44", "b\u0430ckward",
    "latest\n", "f" * 32 + "\n", "a\u200bb", "1e999", "NaN", [], {}, [[[]]],
    {"a": {"b": {}}}, [1, "a"],
)  # fmt: skip
"""Values put where a valid one was: wrong types, limits, lookalikes (a Cyrillic ``a``,
full-width letters), lone surrogates (which ``ensure_ascii`` writes as ``\\ud800``)."""

TOML_WEIRD: tuple[Any, ...] = (
    *WEIRD,
    float("nan"),
    float("inf"),
    -float("inf"),
    dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    dt.date(2026, 1, 1),
    dt.time(1, 2),
    "/nonexistent/x",
    "plan.json",
)
"""What a TOML table may also hold (tomllib reads ``nan``, ``inf`` and dates)."""


def _mutate(rng: random.Random, value: Any, weird: tuple[Any, ...] = WEIRD) -> Any:
    """``value`` with one change somewhere inside it (a walk down a random path)."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        value = dict(value)
        key = rng.choice(list(value))
        op = rng.randrange(6)
        if op == 0:
            del value[key]
        elif op == 1:
            value[key] = rng.choice(weird)
        elif op == 2:
            value[key + rng.choice(("_", "\u200b", "X"))] = value[key]
        elif op == 3:
            value[key] = [value[key]]
        else:
            value[key] = _mutate(rng, value[key], weird)
        return value
    if isinstance(value, list) and value and rng.random() < 0.7:
        value = list(value)
        i = rng.randrange(len(value))
        op = rng.randrange(4)
        if op == 0:
            del value[i]
        elif op == 1:
            value.append(copy.deepcopy(value[i]))
        elif op == 2:
            value = value * rng.choice((2, 70))
        else:
            value[i] = _mutate(rng, value[i], weird)
        return value
    if isinstance(value, str) and rng.random() < 0.5:
        return _mutate_text(rng, value)
    return rng.choice(weird)


def _mutate_text(rng: random.Random, text: str) -> str:
    """``text`` nearly as it was: what slips past a check that looks only at the type."""
    i = rng.randrange(len(text) + 1)
    insert = rng.choice(("\ud800", "\udc00", "\u0000", "\n", "\u200b", "\u0301", "\ufeff"))
    return rng.choice(
        (
            text[:i] + insert + text[i:],
            text.replace("a", "\u0430").replace("o", "\u043e"),  # Cyrillic lookalikes
            text.upper(),
            f" {text} ",
            (text * 2000)[:100_000],
            text[:i],
        )
    )


def _every_text(rng: random.Random, value: Any) -> Any:
    """``value`` with a few of its strings (keys too) holding an odd character: a field deep
    in a plan is reached as often as one at the top, and the rest stays valid."""
    if isinstance(value, str):
        if rng.random() >= 0.08:
            return value
        i = rng.randrange(len(value) + 1)
        odd = rng.choice(("\ud800", "\udfff", "\u0000", "\n", "\u200b", "\u0430", "\ufeff"))
        return value[:i] + odd + value[i:]
    if isinstance(value, dict):
        return {_every_text(rng, k): _every_text(rng, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_every_text(rng, v) for v in value]
    return value


def _mutated(rng: random.Random, valid: list[Any], weird: tuple[Any, ...] = WEIRD) -> Any:
    value = copy.deepcopy(rng.choice(valid))
    if rng.random() < 0.3:
        value = _every_text(rng, value)
        if rng.random() < 0.5:
            return value
    for _ in range(rng.randint(1, 3)):
        value = _mutate(rng, value, weird)
    return value


def _payloads(rng: random.Random, valid: list[Any], count: int) -> Iterator[bytes]:
    """``count`` payloads: mutated JSON, some of them then damaged as bytes."""
    for _ in range(count):
        data = json.dumps(_mutated(rng, valid)).encode()  # ensure_ascii: surrogates escaped
        r = rng.random()
        if r < 0.1:
            data = data[: rng.randrange(len(data) + 1)]
        elif r < 0.2:
            i = rng.randrange(len(data) + 1)
            data = data[:i] + rng.choice((b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80")) + data[i:]
        elif r < 0.25:
            depth = rng.choice((100, 5000))
            data = b"[" * depth + b"]" * depth
        elif r < 0.3:
            data = data.replace(b"1", rng.choice((b"NaN", b"-Infinity")), 1)
        elif r < 0.35:
            data = data.replace(b"{", b'{"id":"dup","id":"dup",', 1)
        yield data


@pytest.fixture
def device(tmp_path: Path) -> Iterator[MqttReporter]:
    """A reporter on a real database with a fall stored, not connected: its command handler
    driven directly."""
    rep = MqttReporter(
        MqttConfig(host="127.0.0.1", port=1),
        device_id="tm1",
        device_name="T1",
        database=tmp_path / "courier.db",
        on_test_alarm=lambda by: None,
    )
    rep.sink.handle(fall("tm1"))
    yield rep
    rep.close()


def _valid_commands(incident: str) -> dict[str, list[dict[str, Any]]]:
    plan = json.loads(encode_command(AssignPlan(PRESETS["alternate-2-2"]), "p-1"))
    progression = PROGRESSIONS["toward-10-minutes"]
    return {
        "ping": [{"id": "r-1"}, {}],
        "silence": [{"id": "s"}],
        "self_test": [{}],
        "ack": [
            {"id": "a", "event_id": "latest", "by": "Ann", "via": "dashboard"},
            {"incident": incident, "by": "Bo"},
        ],
        "test_alarm": [{"by": "Ann", "id": "t"}],
        "plan": [plan, {**plan, "walker": "default"}],
        "progression": [
            json.loads(encode_command(AssignProgression(progression, 1), "q")),
            {"action": "hold", "id": "h"},
            {"action": "step_back", "walker": "default"},
        ],
    }


def test_malformed_commands_get_a_clear_reply_never_an_internal_error(
    device: MqttReporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)  # the refusals' warnings are not the point here
    rng = random.Random(18)
    incident = "0" * 32  # an ack naming no incident of the device: refused, clearly
    cases = 0
    for name, valid in _valid_commands(incident).items():
        for payload in _payloads(rng, valid, 45):
            cases += 1
            reply = device.commands.handle(name, payload)
            assert reply.ok or not (reply.error or "").startswith("internal error"), (
                name,
                payload[:300],
                reply.error,
            )
            text = payloads.reply_payload(
                "tm1", reply.command, reply.request_id, reply.ok, reply.result, reply.error
            )
            validate("reply", text)
    assert cases == 315
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_lone_surrogate_in_a_command_is_refused_as_not_json(device: MqttReporter) -> None:
    """Before: ``internal error: UnicodeEncodeError`` (msgspec cannot encode the direction to
    compare it), and the request id was lost; the progression's nested plan the same."""
    plan = rb'{"id":"r","plan":{"name":"x","intervals":[{"direction":"\ud800","minutes":2}]}}'
    progression = (
        rb'{"id":"q","progression":{"name":"x","stages":[{"plan":{"name":"x",'
        rb'"intervals":[{"direction":"backward","minutes":2,"speed":"\udfff"}]}}]}}'
    )
    for name, payload in (("plan", plan), ("progression", progression)):
        reply = device.commands.handle(name, payload)
        assert not reply.ok
        assert reply.error is not None and "half of a UTF-16 pair" in reply.error
    # a pair escaped as two halves is one character, and fine
    pair = rb'{"id":"r","plan":{"name":"smile \ud83d\ude00","intervals":[{"direction":"backward","minutes":2}]}}'  # noqa: E501
    assert device.commands.handle("plan", pair).ok


def test_a_lone_surrogate_command_over_mqtt_gets_a_clear_refusal(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    rep = MqttReporter(
        config_for(mosquitto), device_id="tm1", device_name="T1", database=tmp_path / "c.db"
    )
    rep.start()
    try:
        assert rep.wait_until(lambda s: s.ready, WAIT)
        bad = rb'{"plan":{"name":"x","intervals":[{"direction":"\ud800","minutes":2}]}}'
        with subscriber(mosquitto, ["retroguard/tm1/reply"]) as sub:
            sub.client.publish("retroguard/tm1/cmd/plan", bad, qos=1)
            sub.client.publish("retroguard/tm1/cmd/ping", b'{"id":"after"}', qos=1)
            assert sub.wait(lambda: len(sub.messages) == 2)
            refused, pong = (validate("reply", m.payload) for m in sub.messages)
        assert not refused["ok"] and "half of a UTF-16 pair" in refused["error"]
        assert pong["ok"] and pong["request_id"] == "after"  # the courier goes on
    finally:
        rep.close()


def test_plan_and_progression_files_with_a_lone_surrogate_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: ``retroguard plan set x.json`` ended in a UnicodeEncodeError traceback."""
    monkeypatch.chdir(tmp_path)
    Path("plan.json").write_text(
        r'{"name":"\ud800","intervals":[{"direction":"backward","minutes":2}]}'
    )
    Path("progression.json").write_text(
        r'{"name":"p","stages":[{"plan":{"name":"x",'
        r'"intervals":[{"direction":"\udc00","minutes":2}]}}]}'
    )
    db = str(tmp_path / "d.db")
    for argv in (["set", "plan.json"], ["progression", "set", "progression.json"]):
        assert main(["plan", "--db", db, *argv]) == 2
        err = capsys.readouterr().err
        assert "not valid JSON" in err and "half of a UTF-16 pair" in err, err
        assert "Traceback" not in err


def test_strict_json_tells_a_lone_surrogate_from_an_escaped_pair() -> None:
    assert strict_json.loads(r'{"k": ["\ud83d\ude00", "\u00e9"]}') == {"k": ["\U0001f600", "é"]}
    for text in (r'["\ud800"]', r'{"\uDFFF": 1}', r'"a\udbff"', '["\ud800"]'):
        with pytest.raises(strict_json.LoneSurrogate):
            strict_json.loads(text)


def _device_messages() -> dict[str, list[str]]:
    event = fall(DEVICE, with_window=True)
    record = session_record(
        DEVICE, dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC), backward_min=4, longest_min=2
    )
    return {
        "event": [payloads.event_payload(event, 1)],
        "state": [payloads.state_payload(DEVICE, "ARMED", "button pressed")],
        "telemetry": [
            payloads.telemetry_payload(DEVICE, 3, DeviceHealth(state=DeviceState("ARMED")))
        ],
        "reply": [payloads.reply_payload(DEVICE, "ping", "r1", True, {"pong": True})],
        "session": [session_payload(record)],
        "progress": [
            payloads.encode(
                ProgressMessage(
                    schema=SCHEMA_VERSION,
                    device_id=DEVICE,
                    wall_time=WALL,
                    session="none",
                    week="2026-W10",
                    week_sessions=0,
                    week_at_goal=0,
                    week_backward_s=0.0,
                    week_longest_backward_s=0.0,
                    goal_sessions=3,
                    goal_backward_s=600.0,
                    week_prescribed=2,
                )
            )
        ],
        "walkers": [
            payloads.encode(
                WalkersMessage(
                    schema=SCHEMA_VERSION,
                    device_id=DEVICE,
                    wall_time=WALL,
                    walkers=[DEFAULT_WALKER],
                )
            )
        ],
        "incident": [
            payloads.encode(
                IncidentMessage(
                    schema=SCHEMA_VERSION,
                    device_id=DEVICE,
                    open=True,
                    wall_time=WALL,
                    incident=event.id,
                    severity="fall",
                    last_event=event.id,
                )
            )
        ],
    }


def _other_fall(n: int) -> tuple[str, bytes]:
    return f"retroguard/{OTHER}/event", payloads.event_payload(fall(OTHER, float(n)), n).encode()


def test_garbage_from_one_device_never_stops_ingest_for_another(tmp_path: Path) -> None:
    config = CaregiverConfig(
        server=ServerConfig(host="127.0.0.1", port=0, database=str(tmp_path / "c.db")),
        mqtt=CaregiverMqttConfig(host="127.0.0.1", port=1),
    )
    service = CaregiverService(config)
    ingestor = service.ingestor
    rng = random.Random(18)
    try:
        batch: list[tuple[str, bytes]] = []
        good: list[str] = []
        for kind, texts in _device_messages().items():
            valid = [json.loads(t) for t in texts]
            for payload in [*_payloads(rng, valid, 40), b"online", b"", b"\xff"]:
                batch.append((f"retroguard/{DEVICE}/{kind}", payload))
                if len(batch) % 7 == 0:
                    topic, fall_payload = _other_fall(len(good) + 1)
                    good.append(json.loads(fall_payload)["id"])
                    batch.append((topic, fall_payload))
        for i in range(0, len(batch), 10):  # batches as the ingest thread takes them
            assert ingestor.handle_batch(batch[i : i + 10])
            assert ingestor.storage_fault is None and ingestor.held == 0
        assert len(batch) - len(good) == 344
        assert {e.id for e in service.store.events_for(OTHER)} == set(good)
    finally:
        service.store.close()


def test_mutated_config_tables_are_refused_as_config_errors() -> None:
    base = tomllib.loads(example_config_text())
    rng = random.Random(18)
    accepted = 0
    for _ in range(300):
        data = base
        for _ in range(rng.randint(1, 3)):
            data = _mutate_table(rng, data)
        try:
            check_or_raise(parse_config(data, "fuzz.toml"), "fuzz.toml")
            accepted += 1
        except ConfigError:
            pass
    assert 0 < accepted < 300  # both ways: the mutations are neither all harmless nor all fatal


def _mutate_table(rng: random.Random, data: dict[str, Any]) -> dict[str, Any]:
    """A change inside one of the config's tables (or, now and then, at the top)."""
    tables = [k for k, v in data.items() if isinstance(v, dict)]
    if tables and rng.random() < 0.8:
        key = rng.choice(tables)
        changed = _mutate(rng, data[key], TOML_WEIRD)
        return {**data, key: changed}
    mutated = _mutate(rng, data, TOML_WEIRD)
    return mutated if isinstance(mutated, dict) else data


def test_mutated_plans_and_progressions_are_refused_with_the_field() -> None:
    rng = random.Random(18)
    plans = [plan_to_builtins(p) for p in PRESETS.values()]
    plans.append(
        {"name": "file form", "speed": "0.5 mph", "interval": [
            {"direction": "backward", "minutes": 2}, {"direction": "rest", "seconds": 30},
        ]}
    )  # fmt: skip
    progressions = [progression_to_builtins(p) for p in PROGRESSIONS.values()]
    cases = 0
    for _ in range(200):  # anything but the clear refusal fails the test with its traceback
        data = _mutated(rng, plans, TOML_WEIRD)
        with contextlib.suppress(ConfigError):
            if isinstance(data, dict) and _readable(data):
                cases += 1
                parse_plan(data, "fuzz.toml")
        data = _mutated(rng, progressions)
        with contextlib.suppress(PlanInvalid):
            if _readable(data):
                cases += 1
                progression_from_builtins(data)
    for payload in _payloads(rng, plans, 200):
        with contextlib.suppress(PlanInvalid):
            cases += 1
            plan_from_json(payload)
    assert cases > 450


def _readable(value: Any) -> bool:
    """False for data holding a lone surrogate: no file or command can carry one any more
    (TOML has no escape for one; :mod:`core.strict_json` refuses JSON's), so the plan checks
    never see one. The JSON cases above keep them, as text."""
    try:
        json.dumps(value, ensure_ascii=False, default=str).encode()
    except UnicodeEncodeError:
        return False
    return True


def test_an_id_with_a_final_newline_is_refused_as_the_schemas_refuse_it(
    device: MqttReporter, tmp_path: Path
) -> None:
    """Python's ``$`` matches before a final newline: before, ``"r1\\n"`` was a request id,
    ``"<32 hex>\\n"`` an ack target and an event id, ``"tm1\\n"`` a device id (config
    --check passed it), although the documented JSON schemas refuse all of them."""
    event_id = fall("tm1").id
    assert is_event_id(event_id) and not is_event_id(event_id + "\n")
    assert is_request_id("r1") and not is_request_id("r1\n")
    assert is_device_id("tm1") and not is_device_id("tm1\n")
    for payload, problem in (
        ({"id": "r1\n"}, "id must be"),
        ({"id": "a", "event_id": event_id + "\n"}, "event_id must be"),
        ({"id": "b", "incident": event_id + "\n"}, "incident must be"),
    ):
        reply = device.commands.handle("ack", json.dumps(payload).encode())
        assert not reply.ok and reply.error is not None and problem in reply.error, payload
    with pytest.raises(InvalidMessage):
        payloads.decode_as(EventMessage, payloads.event_payload(fall("tm1\n"), 1).encode())
    config = tmp_path / "monitor.toml"
    config.write_text('[device]\nid = "tm1\\n"\n')
    with pytest.raises(ConfigError, match="device id"):
        check_or_raise(load_config(config), str(config))
