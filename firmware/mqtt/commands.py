"""Caregiver commands: ``ack``, ``silence``, ``self_test``, ``ping``, ``test_alarm``, ``plan``.

The safety argument is structural. A :class:`CommandHandler` is built from a
:class:`CommandTarget` and nothing else, and that interface has no verb that
could hold the relay or arm the controller: silencing is a request flag the
real-time loop applies (it only ever stops an alarm sounding:
:func:`firmware.app.silence_alarm`), acknowledging
is bookkeeping in the database (closing an incident stores and publishes a
``closed`` event; the belt stays stopped), the self-test only reads, and ping
only answers. So no payload, however crafted, can start the treadmill — the code
that could is not reachable from here (``tests/test_mqtt_commands.py``
checks this by walking the object graph as well as by behaviour).

Every payload is validated before anything happens; a malformed or unknown
command gets an error reply and changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.protocol.commands import (
    Ack,
    AssignPlan,
    AssignProgression,
    ChangeProgression,
    Command,
    CommandRefused,
    Ping,
    SelfTest,
    Silence,
    TestAlarm,
    parse_command,
)
from core.protocol.ids import is_request_id

log = logging.getLogger(__name__)


class CommandError(Exception):
    """A command that was understood but cannot be carried out (the reply says why)."""


class CommandTarget(Protocol):
    """Everything a network command may touch — deliberately nothing that can arm."""

    def request_silence(self, silence: Silence, request_id: str | None) -> bool:
        """Ask the real-time loop to stop the alarm sounding at its next iteration, if it is
        the one ``silence`` names (a walker's cue is left playing:
        :func:`firmware.app.silence_alarm`); never blocks. True: the loop will answer, and
        the reply is sent then (:meth:`firmware.mqtt.reporter.MqttReporter.answer_silence`);
        False: no loop to answer (the reply says only "requested")."""
        ...

    def acknowledge(self, ack: Ack) -> Mapping[str, Any]:
        """Close the incident the ack names, once (docs/incidents.md); raise
        :class:`CommandError` if it names nothing this device knows."""
        ...

    def self_test(self) -> Mapping[str, Any]:
        """Read-only health checks: ``{"passed": bool, "checks": {...}}``."""
        ...

    def test_alarm(self, by: str) -> Mapping[str, Any]:
        """A test alarm: a chirp on the buzzer and a ``test`` event to every consumer."""
        ...

    def assign_plan(self, command: AssignPlan, request_id: str | None) -> Mapping[str, Any]:
        """Store the plan (checked already) for the next session start; say so."""
        ...

    def progression(
        self, command: AssignProgression | ChangeProgression, request_id: str | None
    ) -> Mapping[str, Any]:
        """Store a progression (its stage's plan with it), or hold, release or step it back;
        :class:`CommandError` for a change without a progression."""
        ...


_BLANK = Silence()
"""A silence naming no alarm: whatever alarm sounds."""


class SilenceRequest:
    """A flag set from the network side, and the way a silence reaches the loop.

    ``on_request`` hands each silence on (the courier sends it over the link; the loop
    answers it, and the answer is the reply). Without one the flag alone is kept: a counter
    with one writer (the MQTT publisher thread) and one reader needs no lock under the GIL.
    """

    def __init__(self, on_request: Callable[[Silence, str | None], object] | None = None) -> None:
        self._requested = 0
        self._taken = 0
        self._on_request = on_request

    def request(self, silence: Silence = _BLANK, request_id: str | None = None) -> bool:
        """Count it and hand it on; True when it was handed on (an answer will come).
        :class:`CommandError` when ``on_request`` says it could not be (returns False)."""
        self._requested += 1
        if self._on_request is None:
            return False
        if self._on_request(silence, request_id) is False:  # the link refused it: no answer
            raise CommandError("the monitor loop cannot be reached: nothing was silenced")
        return True

    def take(self) -> bool:
        """True once per batch of requests since the last call."""
        requested = self._requested
        if requested != self._taken:
            self._taken = requested
            return True
        return False


class CommandBudget:
    """A token bucket for incoming commands: a flood is dropped where it arrives.

    Any account allowed to write a device's commands (anyone, on an anonymous
    broker) could send thousands a second; each would be parsed, answered and
    logged. The budget takes ``mqtt.command_rate_per_s`` on average and a burst of
    ``mqtt.command_burst`` (:class:`firmware.config.MqttConfig`); the rest are dropped
    and counted, so the courier's work stays bounded whatever arrives (the real-time loop
    is in another process either way). A second budget answers a few of the dropped ones
    with a refusal (:func:`dropped_reply`), so a caller is told instead of waiting.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        rate_per_s: float = 20.0,
        burst: float = 40.0,
    ) -> None:
        self._clock = clock
        self._rate = rate_per_s
        self._burst = burst
        self._tokens = burst
        self._at = clock()
        self.dropped = 0
        self.taken = 0

    def take(self) -> bool:
        """True if a command may be run now (one token spent)."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self.taken += 1
            return True
        self.dropped += 1
        return False


FLOOD_REFUSALS_PER_S = 1.0
"""Commands dropped by :class:`CommandBudget` that are still answered (refused), a second on
average: a caller (the dashboard's self-test, a physio's plan) hears why nothing happened
instead of waiting for ever, and a flood cannot turn into a flood of replies."""
FLOOD_REFUSAL_BURST = 3.0
"""Dropped commands answered at once before :data:`FLOOD_REFUSALS_PER_S` applies."""
FLOOD_REFUSAL = (
    "not run: the device is receiving more commands than it handles (mqtt.command_rate_per_s); "
    "nothing was done, send it again in a moment"
)


@dataclass(frozen=True, slots=True)
class Reply:
    command: str
    request_id: str | None
    ok: bool
    result: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    later: bool = False
    """Accepted, and answered later by someone else: a ``silence`` handed to the loop, whose
    answer is the reply (:meth:`firmware.mqtt.reporter.MqttReporter.answer_silence`)."""


def dropped_reply(name: str, payload: bytes) -> Reply:
    """The refusal of a command dropped by the flood limit: not run, and it says so, echoing
    the request id when the payload names a well-formed one (nothing else of it is read).
    Sent for at most :data:`FLOOD_REFUSALS_PER_S` of the dropped ones (the caller's budget)."""
    request_id: str | None = None
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict) and is_request_id(raw := data.get("id")):
        request_id = raw
    return Reply(name[:64], request_id, False, error=FLOOD_REFUSAL)


class CommandHandler:
    """Checks and runs one command; returns the reply. Holds only a :class:`CommandTarget`."""

    def __init__(self, target: CommandTarget) -> None:
        self._target = target

    def handle(self, name: str, payload: bytes) -> Reply:
        request_id: str | None = None
        try:
            request = parse_command(name, payload)
            request_id = request.request_id
            result = self._run(request.command, request_id)
            if result is None:
                log.info("MQTT command %s handed to the loop (request %s)", name, request_id)
                return Reply(name, request_id, True, later=True)
        except (CommandRefused, CommandError) as exc:
            if isinstance(exc, CommandRefused):
                request_id = exc.request_id
            log.warning("MQTT command %r refused: %s", name[:64], exc)
            return Reply(name[:64], request_id, False, error=str(exc))
        except Exception as exc:  # a bug in a target must not kill the publisher
            log.exception("MQTT command %r failed", name[:64])
            return Reply(
                name[:64], request_id, False, error=f"internal error: {type(exc).__name__}"
            )
        log.info("MQTT command %s done (request %s)", name, request_id)
        return Reply(name, request_id, True, result=result)

    def _run(self, command: Command, request_id: str | None) -> Mapping[str, Any] | None:
        """The reply's result; None when another answers later (a silence the loop decides)."""
        match command:
            case Ping():
                return {"pong": True}
            case Silence():
                if self._target.request_silence(command, request_id):
                    return None
                return {"silence": "requested"}
            case SelfTest():
                return dict(self._target.self_test())
            case Ack():
                return dict(self._target.acknowledge(command))
            case TestAlarm(by=by):
                return dict(self._target.test_alarm(by))
            case AssignPlan():
                return dict(self._target.assign_plan(command, request_id))
            case AssignProgression() | ChangeProgression():
                return dict(self._target.progression(command, request_id))
