"""Encoding and decoding MQTT payloads: typed messages in, bytes out, and back.

Producers build a :mod:`core.protocol.messages` type and call :func:`encode`;
consumers call :func:`decode` (or one of the ``decode_*`` helpers) and get
that type back, or a :class:`~core.protocol.messages.ProtocolError` that says
which field is wrong. Payloads are compact JSON with sorted keys (no spaces:
the IMU window of a fall is a few thousand numbers), written by the standard
library's encoder so the bytes on the wire do not depend on the decoder.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar, cast

import msgspec

from core.protocol.events import Event
from core.protocol.messages import (
    JSON_MESSAGES,
    RECEIPT_MAX_IDS,
    SCHEMA_VERSION,
    Availability,
    CaregiverPresence,
    CaregiverStatusMessage,
    DeviceHealth,
    DeviceState,
    EventMessage,
    FaultSaid,
    ImuWindow,
    InvalidMessage,
    NotJson,
    ProtocolError,
    ReceiptMessage,
    ReplyMessage,
    SessionSummary,
    StateMessage,
    TelemetryMessage,
    WornSaid,
)
from core.protocol.topics import TopicKind
from core.protocol.walker import DEFAULT_WALKER_ID

__all__ = [
    "OFFLINE",
    "ONLINE",
    "SCHEMA_VERSION",
    "decode",
    "decode_availability",
    "dumps",
    "encode",
    "event_message",
    "event_payload",
    "reply_payload",
    "state_payload",
    "telemetry_payload",
    "wall_now",
]

ONLINE = Availability.ONLINE.value
OFFLINE = Availability.OFFLINE.value

M = TypeVar("M", bound=msgspec.Struct)


def wall_now() -> str:
    """ISO 8601 UTC wall-clock time, for display only."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def dumps(data: Any) -> str:
    """Compact JSON with sorted keys: the one JSON writer of the wire format."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def encode(message: msgspec.Struct) -> str:
    """The payload of a typed message."""
    return dumps(msgspec.to_builtins(message))


def decode(kind: TopicKind, payload: bytes) -> msgspec.Struct:
    """The typed message a payload on a ``kind`` topic carries (JSON kinds only)."""
    message_type = JSON_MESSAGES.get(kind.value)
    if message_type is None:
        raise ProtocolError(f"{kind.value} payloads are not JSON messages")
    return decode_as(message_type, payload)


_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
"""A JSON string's escape for U+0000 (an odd run of backslashes before ``u0000``)."""


def decode_as(message_type: type[M], payload: bytes) -> M:
    """Decode and check ``payload`` as ``message_type``; :class:`ProtocolError` if it is not.

    Text holding U+0000 is refused: PostgreSQL cannot store it, and a message its database
    refuses would be held, and hold every message after it, as if the database had failed.
    """
    # the plain substring search first (a match needs it): the pattern alone costs ~50 ns a
    # byte, 0.34 ms for a 7 kB recording, about a sixth of the caregiver's CPU in a burst
    if b"\\u0000" in payload and _NUL_ESCAPE.search(payload):
        raise InvalidMessage(f"invalid {message_type.__name__}: text holds a NUL (\\u0000)")
    try:
        return msgspec.json.decode(payload, type=message_type)
    except msgspec.ValidationError as exc:
        if message_type is StateMessage:
            known = _state_without_later_words(payload)
            if known is not None:
                return cast(M, known)
        raise InvalidMessage(f"invalid {message_type.__name__}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise NotJson(f"not JSON: {exc}") from None
    except RecursionError:  # msgspec's own limit on nesting: no message of ours nests so
        raise NotJson("not JSON we read: nested too deeply") from None


_LATER_WORDS: tuple[tuple[str, type[StrEnum]], ...] = (("worn", WornSaid), ("fault", FaultSaid))
"""A state message's typed words a later release may add to: a word this release does not
know is read as none (``fault``: a FAULT of unknown kind; ``worn``: the reason says)."""


def _state_without_later_words(payload: bytes) -> StateMessage | None:
    """The state message read without the words of a later release (:data:`_LATER_WORDS`),
    or None: it is bad input even without them (it is refused as such). A newer monitor's
    FAULT of a kind this service does not know was refused whole, and the card went on
    saying the state before it (the belt can run)."""
    try:
        fields = msgspec.json.decode(payload)
    except (msgspec.DecodeError, RecursionError):
        return None
    if not isinstance(fields, dict):
        return None
    unknown = [
        key
        for key, words in _LATER_WORDS
        if isinstance(fields.get(key), str) and fields[key] not in words._value2member_map_
    ]
    if not unknown:
        return None
    for key in unknown:
        del fields[key]
    try:
        return msgspec.json.decode(msgspec.json.encode(fields), type=StateMessage)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None


def decode_availability(payload: bytes) -> Availability:
    text = payload.decode("utf-8", "replace").strip()
    try:
        return Availability(text)
    except ValueError:
        raise ProtocolError(f"availability must be online or offline, not {text[:20]!r}") from None


# --------------------------------------------------------------- producers


def event_message(event: Event, seq: int, walker: str | None = None) -> EventMessage:
    """The ``/event`` message: the event record plus its per-device sequence number, and
    ``walker``, its incident's walker (the default walker is left out: a device with one
    walker sends what it sent before profiles)."""
    data = event.to_dict()
    window = data.get("imu_window")
    return EventMessage(
        schema=data["schema"],
        id=event.id,
        seq=seq,
        type=event.type,
        device_id=event.device_id,
        severity=event.severity,
        state=DeviceState(event.state),
        reason=event.reason,
        wall_time=event.wall_time,
        t_monotonic=data["t_monotonic"],
        figures=data["figures"],
        imu_window=None
        if window is None
        else ImuWindow(columns=window["columns"], rows=[tuple(r) for r in window["rows"]]),
        incident=event.incident,
        of=event.of,
        by=event.by,
        via=event.via,
        recording=event.recording,
        walker=None if walker == DEFAULT_WALKER_ID else walker,
        wall_unsynced=event.wall_unsynced,
    )


def event_payload(event: Event, seq: int, walker: str | None = None) -> str:
    return encode(event_message(event, seq, walker))


def state_payload(
    device_id: str,
    state: str,
    reason: str,
    wall_time: str | None = None,
    *,
    wall_unsynced: bool = False,
    worn: WornSaid | None = None,
    fault: FaultSaid | None = None,
) -> str:
    return encode(
        StateMessage(
            schema=SCHEMA_VERSION,
            device_id=device_id,
            state=DeviceState(state),
            reason=reason,
            wall_time=wall_time or wall_now(),
            wall_unsynced=wall_unsynced,
            worn=worn,
            fault=fault,
        )
    )


def telemetry_payload(device_id: str, outbox_depth: int, health: DeviceHealth) -> str:
    """Periodic health: the monitor's figures plus what only the reporter knows."""
    return encode(
        TelemetryMessage(
            schema=SCHEMA_VERSION,
            device_id=device_id,
            wall_time=wall_now(),
            outbox_depth=outbox_depth,
            state=health.state,
            sample_rate_hz=health.sample_rate_hz,
            imu_ok=health.imu_ok,
            imu_errors=health.imu_errors,
            bus_errors=health.bus_errors,
            belt_enabled=health.belt_enabled,
            storage_ok=health.storage_ok,
        )
    )


def caregiver_status_payload(
    state: CaregiverPresence,
    by: str,
    *,
    stamped: bool = True,
    fault: str | None = None,
    expires_s: int | None = None,
) -> str:
    """The caregiver service's presence message; ``stamped=False`` for its Last Will, which
    the broker sends later (its time would be the connect's, not the loss's). ``fault``: why
    it cannot store what it receives now (``storing`` false); None while it can. ``expires_s``:
    an ``online``'s lifetime unless said again (its PUBLISH carries it as its expiry too)."""
    return encode(
        CaregiverStatusMessage(
            schema=SCHEMA_VERSION,
            state=state,
            by=by,
            wall_time=wall_now() if stamped else None,
            storing=fault is None,
            fault=fault,
            expires_s=expires_s,
        )
    )


def reply_payload(
    device_id: str,
    command: str,
    request_id: str | None,
    ok: bool,
    result: Mapping[str, object] | None = None,
    error: str | None = None,
) -> str:
    return encode(
        ReplyMessage(
            schema=SCHEMA_VERSION,
            device_id=device_id,
            command=command,
            request_id=request_id,
            ok=ok,
            wall_time=wall_now(),
            result=dict(result or {}) if ok else None,
            error=None if ok else (error or "error"),
        )
    )


def session_payload(summary: SessionSummary) -> str:
    return encode(summary)


def receipt_payload(ids: list[str], by: str) -> str:
    """What an alert consumer publishes on ``.../receipt`` once ``ids`` are on its disk
    (at most :data:`RECEIPT_MAX_IDS`: see :func:`receipt_payloads`)."""
    return encode(ReceiptMessage(schema=SCHEMA_VERSION, ids=ids, by=by))


def receipt_payloads(ids: list[str], by: str) -> list[str]:
    """``ids`` as receipts a device accepts: one per :data:`RECEIPT_MAX_IDS` of them."""
    step = RECEIPT_MAX_IDS
    return [receipt_payload(ids[i : i + step], by) for i in range(0, len(ids), step)]
