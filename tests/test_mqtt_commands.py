"""Caregiver commands: validation, replies, and "no command can arm or start the treadmill".

The last is checked three ways: behaviourally against a real SafetyController
(every command name and a pile of garbage over a real broker, after which the
state, the relay and the arming are exactly as before), and structurally (no
controller, relay or buzzer is reachable from the command handler's objects).
"""

from __future__ import annotations

import gc
import json
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from core.plan_presets import PRESETS, PROGRESSIONS
from core.protocol.commands import (
    Ack,
    AssignPlan,
    AssignProgression,
    ChangeProgression,
    Silence,
    encode_command,
)
from core.protocol.events import Event
from core.protocol.messages import DeviceHealth, DeviceState, ReplyMessage, self_test_outcome
from core.samples import ImuSample
from firmware.config import SafetyConfig
from firmware.mqtt import COMMANDS, MqttReporter
from firmware.mqtt.commands import (
    FLOOD_REFUSAL,
    CommandBudget,
    CommandError,
    CommandHandler,
    SilenceRequest,
    dropped_reply,
)
from firmware.safety import SafetyController, SafetyState, SensorLimits
from tests.app_support import TripOnDemand
from tests.mqtt_helpers import WAIT, config_for, subscriber, validate
from tools.broker import Mosquitto

GARBAGE: list[tuple[str, bytes]] = [
    ("arm", b"{}"),
    ("start", b"{}"),
    ("reset", b'{"id":"r1"}'),
    ("hold", b"{}"),
    ("ARM", b"{}"),
    ("ping/extra", b"{}"),
    ("ping", b"not json"),
    ("ping", b"[1,2,3]"),
    ("ping", b'"ping"'),
    ("ping", b'{"arm": true}'),
    ("silence", b'{"state": "ARMED"}'),
    ("ack", b'{"event_id": "../../etc/passwd"}'),
    ("ack", b'{"event_id": 12}'),
    ("ack", b'{"event_id": "latest", "arm": true}'),
    ("ack", b'{"by": ""}'),
    ("self_test", b'{"relay": "hold"}'),
    ("self_test", b"\xff\xfe\x00garbage"),
    ("ping", b'{"id": {"nested": 1}}'),
    ("ping", b"{" + b'"a":1,' * 2000 + b'"b":2}'),
]


class Target:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def request_silence(self, silence: Silence, request_id: str | None) -> bool:
        self.calls.append(("silence", silence))
        return True  # the loop answers later

    def acknowledge(self, ack: Ack) -> Mapping[str, Any]:
        event_id, by = ack.event_id, ack.by
        self.calls.append(("ack", (event_id, by)))
        if event_id == "latest":
            raise CommandError("no unacknowledged alert")
        return {"event_id": event_id, "acknowledged": True}

    def self_test(self) -> Mapping[str, Any]:
        self.calls.append(("self_test", None))
        return {"passed": True, "checks": {}}

    def test_alarm(self, by: str) -> Mapping[str, Any]:
        self.calls.append(("test_alarm", by))
        return {"test_alarm": "sent", "by": by}

    def assign_plan(self, command: AssignPlan, request_id: str | None) -> Mapping[str, Any]:
        self.calls.append(("plan", (command.plan.name, request_id)))
        return {"plan": command.plan.name}

    def progression(
        self, command: AssignProgression | ChangeProgression, request_id: str | None
    ) -> Mapping[str, Any]:
        self.calls.append(("progression", request_id))
        return {}


def test_valid_commands_reach_only_their_target_verb() -> None:
    target = Target()
    handler = CommandHandler(target)
    assert handler.handle("ping", b"").result == {"pong": True}
    silenced = handler.handle("silence", b'{"id":"s1"}')
    assert silenced.request_id == "s1" and silenced.ok and silenced.later  # the loop replies
    reply = handler.handle("ack", json.dumps({"event_id": "a" * 32, "by": "Ann"}).encode())
    assert reply.ok and reply.result["event_id"] == "a" * 32
    missing = handler.handle("ack", b"{}")
    assert not missing.ok and "no unacknowledged alert" in (missing.error or "")
    assert handler.handle("self_test", b"{}").result["passed"] is True
    assert [c[0] for c in target.calls] == ["silence", "ack", "ack", "self_test"]


class Broken(Target):
    """A target with a bug: its self-test raises."""

    def self_test(self) -> Mapping[str, Any]:
        raise RuntimeError("a bug in the health checks")


def test_a_target_that_raises_is_an_internal_error_reply_never_an_exception() -> None:
    """A bug in a target's verb is answered, ``internal error`` and the exception's type, with
    the request's id, and the next command is run: the exception never leaves ``handle``
    (rule 6: a clear error). Left to the publisher thread's guard, it was logged and no reply
    went out: the caregiver's dashboard waited for an answer that never came (mutant:
    ``except Exception`` narrowed)."""
    handler = CommandHandler(Broken())
    reply = handler.handle("self_test", b'{"id":"t1"}')
    assert not reply.ok and reply.request_id == "t1"
    assert reply.error == "internal error: RuntimeError"
    assert handler.handle("ping", b"").result == {"pong": True}


def test_the_reply_to_a_refused_command_names_it_in_64_characters_at_most() -> None:
    """Anyone who may write the device's commands picks the name (the topic's last level, up
    to 64 kB): a refusal names what it refused in 64 characters at most, so a flood of long
    names is not echoed back whole into every reply (mutant: ``name[:64]`` dropped)."""
    reply = CommandHandler(Target()).handle("arm" * 1000, b"{}")
    assert not reply.ok and reply.command == ("arm" * 1000)[:64]


def test_a_plan_reaches_only_the_plan_verb_and_a_bad_one_nothing() -> None:
    target = Target()
    handler = CommandHandler(target)
    plan = PRESETS["progression-week-3"]
    reply = handler.handle("plan", encode_command(AssignPlan(plan, "Jo"), "p1").encode())
    assert reply.ok and reply.request_id == "p1" and reply.result == {"plan": plan.name}
    bad = handler.handle("plan", b'{"id":"p2","plan":{"name":"x","intervals":[]}}')
    assert not bad.ok and bad.request_id == "p2"
    assert (bad.error or "").startswith("plan.intervals:")
    assert target.calls == [("plan", (plan.name, "p1"))]


@pytest.mark.parametrize(("name", "payload"), GARBAGE)
def test_garbage_is_refused_and_touches_nothing(name: str, payload: bytes) -> None:
    target = Target()
    reply = CommandHandler(target).handle(name, payload)
    assert not reply.ok and reply.error
    assert target.calls == []


def test_silence_request_is_taken_once() -> None:
    flag = SilenceRequest()
    assert not flag.take()
    flag.request()
    flag.request()
    assert flag.take()
    assert not flag.take()


# ------------------------------------------------------------ real controller


class FakeRelay:
    drive = "static"

    def __init__(self) -> None:
        self.holds = 0
        self.holding = False

    def hold(self) -> None:
        self.holds += 1
        self.holding = True

    def release(self) -> None:
        self.holding = False

    def close(self) -> None:
        self.holding = False


class FakeBuzzer:
    def __init__(self) -> None:
        self.pattern: str | None = None
        self.stops = 0

    def play(self, pattern: str, now: float) -> None:
        self.pattern = pattern

    def update(self, now: float) -> None:
        pass

    def stop(self) -> None:
        self.stops += 1
        self.pattern = None

    def close(self) -> None:
        pass


class Rig:
    def __init__(self) -> None:
        self.relay = FakeRelay()
        self.buzzer = FakeBuzzer()
        self.detector = TripOnDemand()
        self.events: list[Event] = []
        self.controller = SafetyController(
            relay=self.relay,
            buzzer=self.buzzer,
            detector=self.detector,
            emit=self.events.append,
            config=SafetyConfig(worn_check=False),  # its samples are made up, not a body
            limits=SensorLimits(16.0, 2000.0),
            sample_rate_hz=200.0,
            device_id="tm1",
        )
        self.t = 0.0
        self.controller.start(self.t)

    def run(self, seconds: float) -> None:
        for i in range(int(seconds * 200)):
            self.t += 0.005
            wobble = 0.001 * (i % 7)
            sample = ImuSample(self.t, wobble, 0.0, 1.0, 0.1 + wobble, 0.0, 0.0)
            self.controller.on_samples([sample], self.t)


@pytest.fixture
def tripped() -> Rig:
    rig = Rig()
    rig.run(1.0)
    assert rig.controller.state is SafetyState.STANDBY
    rig.controller.on_button(rig.t, rig.t + 0.001)
    rig.run(0.1)
    assert rig.controller.state is SafetyState.ARMED
    rig.detector.trip = True
    rig.run(0.1)
    assert rig.controller.state is SafetyState.TRIPPED
    assert not rig.relay.holding
    return rig


@pytest.fixture
def reporter(mosquitto: Mosquitto, tmp_path: Path, tripped: Rig) -> Iterator[MqttReporter]:
    controller = tripped.controller
    # A realistic telemetry provider does reference the controller: fine, commands can't reach it.
    rep = MqttReporter(
        config_for(mosquitto),
        device_id="tm1",
        device_name="T1",
        database=tmp_path / "c.db",
        telemetry=lambda: DeviceHealth(state=DeviceState(controller.state.value)),
        on_test_alarm=lambda by: None,  # the courier chirps the buzzer and sends a test event
    )
    for event in tripped.events:
        rep.sink.handle(event)
    rep.start()
    assert rep.wait_until(lambda s: s.ready, WAIT)
    yield rep
    rep.close()


def _reachable(root: object) -> Iterator[object]:
    """Objects reachable from ``root``, not following modules, classes or function globals."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, types.ModuleType | type):
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, types.FunctionType):
            stack.extend(c.cell_contents for c in obj.__closure__ or ())
            stack.extend(obj.__defaults__ or ())
            continue
        stack.extend(gc.get_referents(obj))


def test_no_arming_object_is_reachable_from_the_command_handler(
    reporter: MqttReporter, tripped: Rig
) -> None:
    forbidden = (SafetyController, FakeRelay, FakeBuzzer)
    found = [type(o).__name__ for o in _reachable(reporter.commands) if isinstance(o, forbidden)]
    assert found == []
    # The walk does find the controller where it is referenced (the telemetry provider).
    assert any(isinstance(o, SafetyController) for o in _reachable(reporter._telemetry))


def _valid_payload(name: str, request_id: str) -> bytes:
    """``{"id": ...}`` is a whole command, except ``plan`` and ``progression``, which carry one."""
    if name == "plan":
        return encode_command(AssignPlan(PRESETS["alternate-2-2"]), request_id).encode()
    if name == "progression":
        progression = PROGRESSIONS["toward-10-minutes"]
        return encode_command(AssignProgression(progression), request_id).encode()
    return json.dumps({"id": request_id}).encode()


def test_every_command_and_garbage_over_mqtt_leave_safety_unchanged(
    mosquitto: Mosquitto, reporter: MqttReporter, tripped: Rig
) -> None:
    controller, relay = tripped.controller, tripped.relay
    holds_before, transitions_before = relay.holds, len(controller.transitions)
    sent: list[tuple[str, bytes]] = [
        (name, _valid_payload(name, f"c-{i}")) for i, name in enumerate(COMMANDS)
    ]
    sent += [(name, payload) for name, payload in GARBAGE if "/" not in name]
    with subscriber(mosquitto, ["retroguard/tm1/reply"]) as sub:
        for name, payload in sent:
            sub.client.publish(f"retroguard/tm1/cmd/{name}", payload, qos=1)
        assert sub.wait(lambda: len(sub.messages) == len(sent))
        replies = [validate("reply", m.payload) for m in sub.messages]
    by_id = {r["request_id"]: r for r in replies if r["request_id"]}
    assert all(by_id[f"c-{i}"]["ok"] for i in range(len(COMMANDS)))
    assert by_id["c-0"]["command"] == COMMANDS[0]
    assert sum(not r["ok"] for r in replies) == len(sent) - len(COMMANDS)

    # The real-time loop applies what the commands asked for, then keeps running healthy.
    if reporter.silence.take():
        tripped.buzzer.stop()
    tripped.run(2.0)
    assert controller.state is SafetyState.TRIPPED
    assert not relay.holding and relay.holds == holds_before
    assert len(controller.transitions) == transitions_before
    assert tripped.buzzer.stops >= 1 and tripped.buzzer.pattern is None


def test_a_self_test_dropped_by_the_flood_limit_is_refused_and_so_are_only_a_few(
    mosquitto: Mosquitto, reporter: MqttReporter, tripped: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """A self-test the flood limit dropped got no reply at all: the dashboard asking for it
    could only say "no answer" (the device looked off line). Now a dropped command is
    refused, naming the limit and echoing its id — a few a second at most, so a flood of
    commands is not answered by a flood of replies."""
    # budgets on a stopped clock: one command runs, two dropped ones are refused, no more
    reporter._budget = CommandBudget(lambda: 0.0, 1.0, 1.0)
    reporter._refusals = CommandBudget(lambda: 0.0, 1.0, 2.0)
    holds_before = tripped.relay.holds
    with subscriber(mosquitto, ["retroguard/tm1/reply"]) as sub:
        for request_id in ("st-1", "st-2", "st-3", "st-4"):
            sub.client.publish("retroguard/tm1/cmd/self_test", f'{{"id":"{request_id}"}}', qos=1)
        sub.client.publish("retroguard/tm1/cmd/self_test", b"not json", qos=1)
        # the last two dropped unanswered: decided where they arrived, before these counts
        assert sub.wait(lambda: reporter._refusals.dropped == 2 and len(sub.messages) == 3)
        replies = {r["request_id"]: r for r in (validate("reply", m.payload) for m in sub.messages)}
    assert sorted(replies) == ["st-1", "st-2", "st-3"]
    assert replies["st-1"]["ok"] and "checks" in replies["st-1"]["result"]
    for refused in (replies["st-2"], replies["st-3"]):
        assert refused["ok"] is False and refused["command"] == "self_test"
        assert refused["error"] == FLOOD_REFUSAL
        assert self_test_outcome(ReplyMessage(**refused)) == ("refused", FLOOD_REFUSAL)
    assert reporter._budget.dropped == 4
    assert not tripped.relay.holding and tripped.relay.holds == holds_before
    # the log says what happened and what limits it, once (it read "1 commands dropped so far")
    floods = [m for m in caplog.messages if "dropped so far" in m]
    assert floods == [
        "MQTT commands arrive faster than mqtt.command_rate_per_s and mqtt.command_burst "
        "allow: 1 dropped so far, not run (a few answered with a refusal); something is "
        "flooding the device's cmd/ topics (logged again every 1000)"
    ]


def test_the_command_budget_takes_its_burst_at_once_then_only_whole_tokens_at_its_rate() -> None:
    """The flood limit is ``command_burst`` at once and ``command_rate_per_s`` after it: a
    fraction of a token runs nothing (mutant: ``tokens > 0`` ran a command on half a token),
    and a long quiet spell saves up no more than the burst (mutant: no cap let a flood after
    an idle hour all through)."""
    now = [0.0]
    budget = CommandBudget(lambda: now[0], rate_per_s=2.0, burst=3.0)
    assert [budget.take() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.25  # half a token earned
    assert not budget.take()
    now[0] = 0.5  # a whole one
    assert budget.take() and not budget.take()
    now[0] = 3600.0  # an idle hour: the burst again, no more
    assert [budget.take() for _ in range(4)] == [True, True, True, False]
    assert (budget.taken, budget.dropped) == (7, 4)


def test_a_dropped_command_s_refusal_echoes_only_a_well_formed_id() -> None:
    assert dropped_reply("ping", b'{"id":"p-1"}').request_id == "p-1"
    nested = b'{"id": ' + b"[" * 100_000  # too deep for json: RecursionError, not ValueError
    for payload in (b"", b"[1]", b'{"id": 5}', b'{"id":"' + b"x" * 200 + b'"}', b"\xff", nested):
        reply = dropped_reply("ping", payload)
        assert reply.request_id is None and not reply.ok and reply.error == FLOOD_REFUSAL
    assert dropped_reply("x" * 100, b"{}").command == "x" * 64


def test_ack_records_latest_alert_and_self_test_reports(
    mosquitto: Mosquitto, reporter: MqttReporter, tripped: Rig
) -> None:
    fall_id = next(e.id for e in tripped.events if e.type.value == "fall")

    def closed_ids() -> set[str]:
        events = (json.loads(m.payload) for m in sub.on("/event"))
        return {e["id"] for e in events if e["type"] == "closed"}

    with subscriber(mosquitto, ["retroguard/tm1/reply", "retroguard/tm1/event"]) as sub:
        sub.client.publish("retroguard/tm1/cmd/ack", '{"id":"a1","by":"Ann"}', qos=1)
        sub.client.publish("retroguard/tm1/cmd/ack", '{"id":"a2"}', qos=1)
        sub.client.publish("retroguard/tm1/cmd/self_test", "", qos=1)
        assert sub.wait(lambda: len(sub.on("/reply")) == 3 and len(closed_ids()) == 1)
        first, second, test = (validate("reply", m.payload) for m in sub.on("/reply"))
        (closed_id,) = closed_ids()
    assert first["ok"] and first["result"]["event_id"] == fall_id
    # "latest" (Home Assistant's button) is the incident the retained message showed: a
    # second press is told who closed it. Its newest event, as shown, is the fall, or the
    # ``closed`` event once the retained message told the close (the publisher may hand it
    # over between the two commands): either way the same incident, already closed by Ann.
    assert second["ok"] and second["result"]["already"] is True
    assert second["result"]["by"] == "Ann"
    assert second["result"]["incident"] == first["result"]["incident"] is not None
    assert second["result"]["event_id"] in (fall_id, closed_id)
    assert test["ok"] and test["result"]["checks"]["broker"]["ok"] is True
    assert reporter.outbox.acknowledged_by(fall_id) == "Ann"


def test_one_ack_closes_the_incident_and_a_closed_event_says_who_and_how(
    mosquitto: Mosquitto, reporter: MqttReporter, tripped: Rig
) -> None:
    trip = next(e for e in tripped.events if e.type.value == "fall")
    assert trip.incident is not None
    ack = {"id": "h1", "by": "home-assistant", "via": "home-assistant"}
    again = {"id": "h2", "by": "Ann", "incident": trip.incident, "via": "dashboard"}
    unknown = {"id": "h3", "by": "Ann", "incident": "0" * 32}
    with subscriber(mosquitto, ["retroguard/tm1/reply", "retroguard/tm1/event"]) as sub:
        for payload in (ack, again, unknown):
            sub.client.publish("retroguard/tm1/cmd/ack", json.dumps(payload), qos=1)
        assert sub.wait(lambda: len(sub.on("/reply")) == 3)
        assert sub.wait(lambda: any(b'"closed"' in m.payload for m in sub.on("/event")))
        first, second, third = (validate("reply", m.payload) for m in sub.on("/reply"))
        closed = [
            validate("event", m.payload) for m in sub.on("/event") if b'"closed"' in m.payload
        ]
    # The first ack (Home Assistant's button: "latest") closes the incident, once.
    assert first["ok"] and first["result"]["incident"] == trip.incident
    assert not first["result"]["already"] and first["result"]["via"] == "home-assistant"
    (event,) = closed
    assert event["incident"] == trip.incident and event["state"] == "TRIPPED"
    assert (event["by"], event["via"]) == ("home-assistant", "home-assistant")
    # The dashboard's ack of the same incident is told who closed it; nothing more is sent.
    assert second["ok"] and second["result"]["already"]
    assert (second["result"]["by"], second["result"]["via"]) == ("home-assistant", "home-assistant")
    assert not third["ok"] and "no incident" in third["error"]
    # Every alert of the incident counts as acknowledged, by whoever closed it.
    assert reporter.outbox.acknowledged_by(trip.id) == "home-assistant"
    # The belt stays stopped: closing is bookkeeping.
    tripped.run(1.0)
    assert tripped.controller.state is SafetyState.TRIPPED and not tripped.relay.holding
