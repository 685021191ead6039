"""Commands to a device (``<prefix>/<device>/cmd/<name>``): names, fields, parsing, encoding.

None of them can arm: the vocabulary has no such verb, and the device runs
them against a target that holds nothing able to arm
(:mod:`firmware.mqtt.commands`). Every payload is checked here before a
device acts on it; a malformed or unknown command is refused with the reason,
and the reply still carries the request id when one could be read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core import strict_json
from core.protocol.ids import EVENT_ID_BODY, is_event_id, is_request_id
from core.protocol.plan import (
    MAX_STAGES,
    Plan,
    PlanInvalid,
    Progression,
    plan_from_builtins,
    plan_to_builtins,
    progression_from_builtins,
    progression_to_builtins,
)
from core.protocol.walker import DEFAULT_WALKER_ID, is_walker_id

MAX_PAYLOAD_BYTES = 4096
MAX_PLAN_PAYLOAD_BYTES = 16384
"""A ``plan`` carries up to :data:`core.protocol.plan.MAX_INTERVALS` intervals."""
MAX_PROGRESSION_PAYLOAD_BYTES = 49152
"""A ``progression`` carries up to :data:`core.protocol.plan.MAX_STAGES` plans."""
PROGRESSION_ACTIONS = ("hold", "release", "step_back")
LATEST = "latest"
"""``ack``'s event id meaning "the newest alert not yet acknowledged"."""


class CommandName(StrEnum):
    ACK = "ack"
    SILENCE = "silence"
    SELF_TEST = "self_test"
    PING = "ping"
    TEST_ALARM = "test_alarm"
    PLAN = "plan"
    PROGRESSION = "progression"


COMMANDS = tuple(c.value for c in CommandName)
"""Every command name a device accepts on ``.../cmd/<name>``. None of them can arm."""


@dataclass(frozen=True, slots=True)
class Ack:
    """A caregiver acknowledged: close the incident (bookkeeping only; the belt stays stopped).

    ``incident`` names the incident; otherwise ``event_id`` names an event of
    it, or ``"latest"`` the newest open one (Home Assistant's button).
    ``via`` says how the caregiver answered (dashboard, notification, ...).
    """

    event_id: str = LATEST
    by: str = "caregiver"
    incident: str | None = None
    via: str | None = None


@dataclass(frozen=True, slots=True)
class Silence:
    """Ask the monitor to stop the alarm sounding (an alarm or safety signal; a guided
    session's cue sounding when no alarm is plays on).

    ``event_id`` / ``incident`` name the alarm the caregiver heard or saw: the loop stops the
    alarm sounding only if it belongs to that event (and/or that incident), so a silence that
    reaches the device late never stops a newer alarm nobody has seen — a second fall after
    the walker re-armed, say (:func:`firmware.app.silence_alarm`). Neither (Home Assistant's
    static button, older clients): whatever alarm is sounding, as before."""

    event_id: str | None = None
    incident: str | None = None


@dataclass(frozen=True, slots=True)
class SelfTest:
    """Read-only health checks."""


@dataclass(frozen=True, slots=True)
class Ping:
    """Answered with ``pong``."""


@dataclass(frozen=True, slots=True)
class TestAlarm:
    """Send a test alarm the whole way: the device chirps, then a ``test`` event goes out."""

    __test__ = False  # a protocol message, not a pytest test class

    by: str = "caregiver"


@dataclass(frozen=True, slots=True)
class AssignPlan:
    """A physio's plan for this treadmill: stored, used from the next session start on.

    It never starts, stops or restarts anything: a session under way keeps its
    plan, and the relay and the safety controller are out of reach as for
    every command.
    """

    plan: Plan
    by: str = "caregiver"
    walker: str = DEFAULT_WALKER_ID
    """Whose plan (a walker id of the device; refused there when it has no such walker)."""


@dataclass(frozen=True, slots=True)
class AssignProgression:
    """A physio's schedule (stages of plans), starting at ``stage`` (0-based): the stage's plan
    is assigned at once, like :class:`AssignPlan`; later stages follow when the walker has
    completed the prescribed sessions."""

    progression: Progression
    stage: int = 0
    by: str = "caregiver"
    walker: str = DEFAULT_WALKER_ID


@dataclass(frozen=True, slots=True)
class ChangeProgression:
    """``hold`` (no automatic advance), ``release`` (advance again) or ``step_back``
    (the previous stage's plan from the next session; its count starts again)."""

    action: str
    by: str = "caregiver"
    walker: str = DEFAULT_WALKER_ID


Command = (
    Ack | Silence | SelfTest | Ping | TestAlarm | AssignPlan | AssignProgression | ChangeProgression
)


@dataclass(frozen=True, slots=True)
class CommandRequest:
    name: CommandName
    request_id: str | None
    command: Command


class CommandRefused(Exception):
    """A command that cannot be accepted; ``request_id`` is echoed in the error reply."""

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


def _decode(payload: bytes, limit: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """An empty payload means ``{}``, otherwise a JSON object."""
    if len(payload) > limit:
        raise CommandRefused(f"payload too large ({len(payload)} bytes, at most {limit})")
    if not payload.strip():
        return {}
    try:
        data = strict_json.loads(payload)
    except (
        strict_json.DuplicateKey,
        strict_json.NotANumber,
        strict_json.LoneSurrogate,
    ) as exc:  # json alone took them
        raise CommandRefused(f"payload is not valid JSON: {exc}") from None
    except ValueError:  # UnicodeDecodeError too
        raise CommandRefused("payload is not valid UTF-8 JSON") from None
    except RecursionError:  # json's limit on nesting: no command nests so
        raise CommandRefused("payload is nested too deeply") from None
    if not isinstance(data, dict):
        raise CommandRefused("payload must be a JSON object")
    return data


def _only(data: dict[str, Any], allowed: set[str], request_id: str | None) -> None:
    unknown = sorted(set(data) - allowed - {"id"})
    if unknown:
        raise CommandRefused(f"unknown field(s): {', '.join(unknown)}", request_id)


_ACK_TARGET = re.compile(rf"^({LATEST}|{EVENT_ID_BODY})$(?!\n)")


def parse_command(name: str, payload: bytes) -> CommandRequest:
    """Check a command; :class:`CommandRefused` says what is wrong with it."""
    limit = {"plan": MAX_PLAN_PAYLOAD_BYTES, "progression": MAX_PROGRESSION_PAYLOAD_BYTES}
    data = _decode(payload, limit.get(name, MAX_PAYLOAD_BYTES))
    request_id: str | None = None
    raw_id = data.get("id")
    if raw_id is not None:
        if not is_request_id(raw_id):
            raise CommandRefused("id must be 1-64 printable ASCII characters")
        request_id = raw_id
    try:
        command_name = CommandName(name)
    except ValueError:
        raise CommandRefused(
            f"unknown command {name!r} (known: {', '.join(COMMANDS)})", request_id
        ) from None
    command: Command
    match command_name:
        case CommandName.PING:
            _only(data, set(), request_id)
            command = Ping()
        case CommandName.SILENCE:
            _only(data, {"event_id", "incident"}, request_id)
            silenced_event = data.get("event_id")
            if silenced_event is not None and not is_event_id(silenced_event):
                raise CommandRefused(
                    "event_id must be a 32-hex-digit event id (the alarm's event)", request_id
                )
            silenced_incident = data.get("incident")
            if silenced_incident is not None and not is_event_id(silenced_incident):
                raise CommandRefused("incident must be a 32-hex-digit incident id", request_id)
            command = Silence(silenced_event, silenced_incident)
        case CommandName.SELF_TEST:
            _only(data, set(), request_id)
            command = SelfTest()
        case CommandName.ACK:
            _only(data, {"event_id", "by", "incident", "via"}, request_id)
            event_id = data.get("event_id", LATEST)
            if not isinstance(event_id, str) or not _ACK_TARGET.match(event_id):
                raise CommandRefused(
                    'event_id must be "latest" or a 32-hex-digit event id', request_id
                )
            incident = data.get("incident")
            if incident is not None and not is_event_id(incident):
                raise CommandRefused("incident must be a 32-hex-digit incident id", request_id)
            via = data.get("via")
            if via is not None and not (
                isinstance(via, str) and 1 <= len(via) <= 32 and via.isprintable()
            ):
                raise CommandRefused("via must be 1-32 printable characters", request_id)
            command = Ack(event_id, _by(data, request_id), incident, via)
        case CommandName.TEST_ALARM:
            _only(data, {"by"}, request_id)
            command = TestAlarm(_by(data, request_id))
        case CommandName.PLAN:
            _only(data, {"plan", "by", "walker"}, request_id)
            if "plan" not in data:
                raise CommandRefused("plan: missing (the plan to assign)", request_id)
            try:
                plan = plan_from_builtins(data["plan"], prefix="plan.")
            except PlanInvalid as exc:
                raise CommandRefused(str(exc), request_id) from None
            command = AssignPlan(plan, _by(data, request_id), _walker(data, request_id))
        case CommandName.PROGRESSION:
            _only(data, {"progression", "stage", "action", "by", "walker"}, request_id)
            command = _progression_command(data, request_id)
    return CommandRequest(command_name, request_id, command)


def _progression_command(
    data: dict[str, Any], request_id: str | None
) -> AssignProgression | ChangeProgression:
    if ("progression" in data) == ("action" in data):
        raise CommandRefused(
            "progression: give either a progression to assign or an action "
            f"({', '.join(PROGRESSION_ACTIONS)})",
            request_id,
        )
    by = _by(data, request_id)
    if "action" in data:
        if "stage" in data:
            raise CommandRefused("stage: only with a progression to assign", request_id)
        action = data["action"]
        if action not in PROGRESSION_ACTIONS:
            raise CommandRefused(
                f"action: must be one of {', '.join(PROGRESSION_ACTIONS)}, not {action!r}",
                request_id,
            )
        return ChangeProgression(action, by, _walker(data, request_id))
    try:
        progression = progression_from_builtins(data["progression"], prefix="progression.")
    except PlanInvalid as exc:
        raise CommandRefused(str(exc), request_id) from None
    stage = data.get("stage", 0)
    if isinstance(stage, bool) or not isinstance(stage, int):
        raise CommandRefused("stage: must be a whole number (0 = the first stage)", request_id)
    if not 0 <= stage < len(progression.stages):
        raise CommandRefused(
            f"stage: must be 0 to {len(progression.stages) - 1} (of at most {MAX_STAGES}), "
            f"not {stage}",
            request_id,
        )
    return AssignProgression(progression, stage, by, _walker(data, request_id))


def _walker(data: dict[str, Any], request_id: str | None) -> str:
    walker = data.get("walker", DEFAULT_WALKER_ID)
    if not is_walker_id(walker):
        raise CommandRefused(
            "walker: must be a walker id (1-32 lowercase letters, digits, '_' or '-')",
            request_id,
        )
    return str(walker)


def _by(data: dict[str, Any], request_id: str | None) -> str:
    by = data.get("by", "caregiver")
    if not isinstance(by, str) or not 1 <= len(by) <= 64 or not by.isprintable():
        raise CommandRefused("by must be 1-64 printable characters", request_id)
    return by


def command_name(command: Command) -> CommandName:
    match command:
        case Ack():
            return CommandName.ACK
        case Silence():
            return CommandName.SILENCE
        case SelfTest():
            return CommandName.SELF_TEST
        case Ping():
            return CommandName.PING
        case TestAlarm():
            return CommandName.TEST_ALARM
        case AssignPlan():
            return CommandName.PLAN
        case AssignProgression() | ChangeProgression():
            return CommandName.PROGRESSION


def encode_command(command: Command, request_id: str | None = None) -> str:
    """The payload a sender publishes on ``.../cmd/<command_name(command)>``."""
    data: dict[str, Any] = {}
    if request_id is not None:
        data["id"] = request_id
    if isinstance(command, Ack):
        data["event_id"] = command.event_id
        data["by"] = command.by
        if command.incident is not None:
            data["incident"] = command.incident
        if command.via is not None:
            data["via"] = command.via
    elif isinstance(command, Silence):
        if command.event_id is not None:
            data["event_id"] = command.event_id
        if command.incident is not None:
            data["incident"] = command.incident
    elif isinstance(command, TestAlarm):
        data["by"] = command.by
    elif isinstance(command, AssignPlan):
        data["plan"] = plan_to_builtins(command.plan)
        data["by"] = command.by
    elif isinstance(command, AssignProgression):
        data["progression"] = progression_to_builtins(command.progression)
        data["stage"] = command.stage
        data["by"] = command.by
    elif isinstance(command, ChangeProgression):
        data["action"] = command.action
        data["by"] = command.by
    walker = getattr(command, "walker", DEFAULT_WALKER_ID)
    if walker != DEFAULT_WALKER_ID:  # absent: as every release before profiles
        data["walker"] = walker
    return json.dumps(data, separators=(",", ":"))
