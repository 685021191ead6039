"""Caregiver commands: ``ack``, ``silence``, ``self_test``, ``ping``.

The safety argument is structural. A :class:`CommandHandler` is built from a
:class:`CommandTarget` and nothing else, and that interface has no verb that
could hold the relay or arm the controller: silencing is a request flag the
real-time loop applies (it only ever calls ``buzzer.stop()``), acknowledging
is bookkeeping in the database, the self-test only reads, and ping only
answers. So no payload, however crafted, can start the treadmill — the code
that could is not reachable from here (``tests/test_mqtt_commands.py``
checks this by walking the object graph as well as by behaviour).

Every payload is validated before anything happens; a malformed or unknown
command gets an error reply and changes nothing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.protocol.topics import COMMANDS

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 4096
_EVENT_ID = re.compile(r"^(latest|[0-9a-f]{32})$")
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,64}$")


class CommandError(Exception):
    """A command that was understood but cannot be carried out (the reply says why)."""


class CommandTarget(Protocol):
    """Everything a network command may touch — deliberately nothing that can arm."""

    def request_silence(self) -> None:
        """Ask the real-time loop to silence the buzzer at its next iteration; never blocks."""
        ...

    def acknowledge(self, event_id: str, by: str) -> Mapping[str, Any]:
        """Record a caregiver's acknowledgement; raise :class:`CommandError` if impossible."""
        ...

    def self_test(self) -> Mapping[str, Any]:
        """Read-only health checks: ``{"passed": bool, "checks": {...}}``."""
        ...


class SilenceRequest:
    """A flag set from the network side and taken by the real-time loop.

    A counter with one writer (the MQTT publisher thread) and one reader (the
    real-time loop) needs no lock under the GIL, so the loop never waits on
    network code. In the loop: ``if silence.take(): buzzer.stop()``.
    """

    def __init__(self) -> None:
        self._requested = 0
        self._taken = 0

    def request(self) -> None:
        self._requested += 1

    def take(self) -> bool:
        """True once per batch of requests since the last call."""
        requested = self._requested
        if requested != self._taken:
            self._taken = requested
            return True
        return False


@dataclass(frozen=True, slots=True)
class Reply:
    command: str
    request_id: str | None
    ok: bool
    result: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


def _parse(payload: bytes) -> dict[str, Any]:
    """Decode a command payload: empty means ``{}``, otherwise a JSON object."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CommandError(f"payload too large ({len(payload)} bytes, at most {MAX_PAYLOAD_BYTES})")
    if not payload.strip():
        return {}
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CommandError("payload is not valid UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise CommandError("payload must be a JSON object")
    return data


def _only(data: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed - {"id"})
    if unknown:
        raise CommandError(f"unknown field(s): {', '.join(unknown)}")


class CommandHandler:
    """Validates and runs one command; returns the reply. Holds only a :class:`CommandTarget`."""

    def __init__(self, target: CommandTarget) -> None:
        self._target = target

    def handle(self, name: str, payload: bytes) -> Reply:
        request_id: str | None = None
        try:
            data = _parse(payload)
            raw_id = data.get("id")
            if raw_id is not None:
                if not isinstance(raw_id, str) or not _REQUEST_ID.match(raw_id):
                    raise CommandError("id must be 1-64 printable ASCII characters")
                request_id = raw_id
            if name not in COMMANDS:
                raise CommandError(f"unknown command {name!r} (known: {', '.join(COMMANDS)})")
            result = self._run(name, data)
        except CommandError as exc:
            log.warning("MQTT command %r refused: %s", name[:64], exc)
            return Reply(name[:64], request_id, False, error=str(exc))
        except Exception as exc:  # a bug in a target must not kill the publisher
            log.exception("MQTT command %r failed", name[:64])
            return Reply(
                name[:64], request_id, False, error=f"internal error: {type(exc).__name__}"
            )
        log.info("MQTT command %s done (request %s)", name, request_id)
        return Reply(name, request_id, True, result=result)

    def _run(self, name: str, data: Mapping[str, Any]) -> Mapping[str, Any]:
        if name == "ping":
            _only(data, set())
            return {"pong": True}
        if name == "silence":
            _only(data, set())
            self._target.request_silence()
            return {"silence": "requested"}
        if name == "self_test":
            _only(data, set())
            return dict(self._target.self_test())
        if name == "ack":
            _only(data, {"event_id", "by"})
            event_id = data.get("event_id", "latest")
            if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
                raise CommandError('event_id must be "latest" or a 32-hex-digit event id')
            by = data.get("by", "caregiver")
            if not isinstance(by, str) or not 1 <= len(by) <= 64 or not by.isprintable():
                raise CommandError("by must be 1-64 printable characters")
            return dict(self._target.acknowledge(event_id, by))
        raise CommandError(f"unknown command {name!r}")  # pragma: no cover - COMMANDS checked
