"""Typed payloads of every RetroGuard MQTT message, as msgspec Structs.

Why msgspec: it decodes JSON straight into these types and checks every
field's type, range and pattern on the way (one C pass, no dict walking), so
a consumer holds either a valid message or a :class:`ProtocolError` naming
the bad field — never a half-checked dict. It is small, typed and fast
enough for a Pi Zero, and imports in a few milliseconds.

Compatibility rules, which the JSON Schemas in ``docs/mqtt/schemas`` state
for outsiders (``tests/test_protocol.py`` checks those files against these
types):

* keys only ever grow: decoders ignore fields they do not know, and every
  field added later gets a default;
* ``schema`` says which version a producer wrote.

Producers build these types and encode them with :mod:`core.protocol.payloads`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from core.protocol.events import EventType, Severity
from core.protocol.ids import DEVICE_ID_PATTERN, EVENT_ID_PATTERN

SCHEMA_VERSION = 1

DeviceId = Annotated[str, Meta(pattern=DEVICE_ID_PATTERN)]
EventId = Annotated[str, Meta(pattern=EVENT_ID_PATTERN)]
Seconds = Annotated[float, Meta(ge=0)]
Count = Annotated[int, Meta(ge=0)]
WallTime = str
"""ISO 8601 UTC wall-clock time, for display only."""
SchemaVersion = Annotated[int, Meta(ge=1)]
"""Which version of the contract the producer wrote (always sent; producers pass
:data:`SCHEMA_VERSION`)."""


class ProtocolError(ValueError):
    """A payload that is not a valid message of its kind; the text names the problem."""


class NotJson(ProtocolError):
    """The payload is not JSON at all (or not UTF-8)."""


class InvalidMessage(ProtocolError):
    """JSON, but not a message of this kind: a missing or mistyped field, a broken rule."""


class Availability(StrEnum):
    """The retained availability payload (plain text, not JSON)."""

    ONLINE = "online"
    OFFLINE = "offline"


class DeviceState(StrEnum):
    """The monitor's safety state as reported on the wire."""

    STARTING = "STARTING"
    STANDBY = "STANDBY"
    ARMED = "ARMED"
    TRIPPED = "TRIPPED"
    FAULT = "FAULT"


IMU_WINDOW_COLUMNS = ("dt", "ax", "ay", "az", "gx", "gy", "gz")

ImuRow = tuple[float, float, float, float, float, float, float]


class ImuWindow(Struct, forbid_unknown_fields=True):
    """IMU samples up to a detection: ``dt`` in seconds relative to it (<= 0), g, deg/s."""

    columns: tuple[
        Literal["dt"],
        Literal["ax"],
        Literal["ay"],
        Literal["az"],
        Literal["gx"],
        Literal["gy"],
        Literal["gz"],
    ]
    rows: list[ImuRow]


class EventMessage(Struct, kw_only=True, omit_defaults=True):
    """``<prefix>/<device>/event``: one event record plus its per-device sequence number."""

    schema: SchemaVersion
    id: EventId
    seq: Annotated[int, Meta(ge=1)]
    type: EventType
    device_id: DeviceId
    severity: Severity
    state: DeviceState
    """Safety state after the event."""
    reason: str
    wall_time: WallTime
    t_monotonic: float
    """Device monotonic seconds of the decision (ordering, latency), not a time of day."""
    figures: dict[str, float]
    """The detector's measurements at decision time."""
    imu_window: ImuWindow | None = None
    """Stumble and fall only."""


class StateMessage(Struct, kw_only=True):
    """``<prefix>/<device>/state`` (retained): the safety state and why, in words."""

    schema: SchemaVersion
    device_id: DeviceId
    state: DeviceState
    reason: str
    wall_time: WallTime


class DeviceHealth(Struct, kw_only=True, omit_defaults=True):
    """The monitor's own figures in each telemetry message."""

    state: DeviceState | None = None
    sample_rate_hz: Seconds | None = None
    """IMU sample rate achieved over the last interval."""
    imu_ok: bool | None = None
    """IMU delivering plausible data."""
    imu_errors: Count | None = None
    bus_errors: Count | None = None
    belt_enabled: bool | None = None
    """The relay's key-loop contact read back closed: the treadmill may run. None when the
    contact is not read back (``gpio.relay_sense_wired = false``)."""


class TelemetryMessage(Struct, kw_only=True, omit_defaults=True):
    """``<prefix>/<device>/telemetry``: periodic health (the device's figures, flat)."""

    schema: SchemaVersion
    device_id: DeviceId
    wall_time: WallTime
    outbox_depth: Count
    """Messages waiting for a broker acknowledgement when this was queued."""
    state: DeviceState | None = None
    sample_rate_hz: Seconds | None = None
    imu_ok: bool | None = None
    imu_errors: Count | None = None
    bus_errors: Count | None = None
    belt_enabled: bool | None = None
    """The relay's contact read back closed: the treadmill may run (absent: not read back)."""
    uptime_s: Seconds | None = None

    @property
    def health(self) -> DeviceHealth:
        return DeviceHealth(
            state=self.state,
            sample_rate_hz=self.sample_rate_hz,
            imu_ok=self.imu_ok,
            imu_errors=self.imu_errors,
            bus_errors=self.bus_errors,
            belt_enabled=self.belt_enabled,
        )


class ReplyMessage(Struct, kw_only=True, omit_defaults=True):
    """``<prefix>/<device>/reply``: the answer to one command, matched by ``request_id``."""

    schema: SchemaVersion
    device_id: DeviceId
    command: Annotated[str, Meta(max_length=64)]
    request_id: str | None
    ok: bool
    wall_time: WallTime
    result: dict[str, Any] | None = None
    """ok replies: ping {pong}; silence {silence: requested}; ack {event_id, acknowledged,
    already, by}; self_test {passed, checks}."""
    error: str | None = None
    """Refused commands: why. Nothing was changed."""


Direction = Literal["backward", "forward", "rest"]
SessionStatus = Literal["completed", "stopped", "abandoned"]


class IntervalSummary(Struct, kw_only=True):
    """One planned interval of a guided session and what was measured in it."""

    index: Count
    direction: Direction
    """Planned direction (the IMU measures walking, not its direction)."""
    speed: str
    """Prescribed treadmill speed, a note (e.g. "0.5 mph")."""
    planned_s: Seconds
    done_s: Seconds
    steps: Count
    walking_s: Seconds
    cadence_spm: Seconds
    trips: Count
    stumbles: Count


class SessionSummary(Struct, kw_only=True):
    """``<prefix>/<device>/session``: a guided session when it ends (idempotent by ``id``)."""

    schema: SchemaVersion
    id: EventId
    device_id: DeviceId
    plan: str
    status: SessionStatus
    started_wall: WallTime
    ended_wall: WallTime
    wall_time: WallTime
    """When the summary was queued."""
    planned_s: Seconds
    planned_backward_s: Seconds
    done_s: Seconds
    backward_s: Seconds
    longest_backward_s: Seconds
    paused_s: Seconds
    pauses: Count
    steps: Count
    walking_s: Seconds
    cadence_spm: Seconds
    trips: Count
    stumbles: Count
    intervals: list[IntervalSummary]


JSON_MESSAGES: dict[str, type[Struct]] = {
    "event": EventMessage,
    "state": StateMessage,
    "telemetry": TelemetryMessage,
    "reply": ReplyMessage,
    "session": SessionSummary,
}
"""Topic kind -> payload type, for the JSON-encoded kinds (availability is plain text)."""
