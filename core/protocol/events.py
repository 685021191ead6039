"""Event records: what the monitor tells the world.

An :class:`Event` is created on the real-time thread, so it is cheap (a
frozen dataclass, a random id, the wall-clock time for display) and carries
everything a caregiver needs without the monitor's internals. Its JSON form
is stable: keys and types only ever grow.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgspec

from core.samples import ImuSample
from core.wallclock import WallStamper, system_stamp

SCHEMA_VERSION = 1


class EventType(StrEnum):
    STUMBLE = "stumble"
    FALL = "fall"
    NO_RECOVERY = "no_recovery"
    FAULT = "fault"
    RESET = "reset"
    START = "start"
    STOP = "stop"
    OK = "ok"
    """The walker closed the incident: the re-arming press means "I'm OK" (docs/incidents.md)."""
    CLOSED = "closed"
    """A caregiver closed the incident (``by``, ``via``); the belt stays stopped."""
    WINDOW = "window"
    """The IMU around a trip, sent 10 s after it (``of`` names the trip)."""
    TEST = "test"
    """A test alarm, travelling the whole path; pages as a test."""
    HELP = "help"
    """The walker asked for help with the button (issue 15); the belt keeps running."""


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


ALERT_TYPES = frozenset({EventType.STUMBLE, EventType.FALL, EventType.NO_RECOVERY, EventType.HELP})
"""Events a caregiver acknowledges."""
INCIDENT_TYPES = ALERT_TYPES | {EventType.FAULT}
"""Events that open (or worsen) an incident: what a caregiver is told about."""
PROTECTED_TYPES = INCIDENT_TYPES | {
    EventType.OK,
    EventType.CLOSED,
    EventType.WINDOW,
    EventType.TEST,
}
"""Events no bound ever drops on the way to a caregiver (the outbox keeps them until a
consumer's receipt): alerts, faults, and what closes or explains an incident."""

SEVERITY_ORDER: tuple[str, ...] = ("test", "stumble", "fault", "fall", "help", "no_recovery")
"""Incident severities from mildest to worst; an incident's severity is its worst event. One
order for the device's incident record, its retained ``incident`` message and the caregiver
service, so all three name the same incident alike. A call for help ranks above a fall: the
walker is saying someone must come (a fall the walker gets up from is closed by "I'm OK");
lying still after a fall is worst of all."""
_SEVERITY_RANK = {kind: rank for rank, kind in enumerate(SEVERITY_ORDER)}


def reopens(kind: str, closed_severity: str) -> bool:
    """An event of ``kind`` opens again an incident a caregiver (or the walker) closed as
    ``closed_severity``: anything worse (a fall after an acknowledged stumble), and a call
    for help or a fault whatever the severity — news someone must hear, which joining a
    closed incident would otherwise swallow."""
    return kind in (EventType.HELP.value, EventType.FAULT.value) or worse(kind, closed_severity)


def worse(a: str, b: str) -> bool:
    """Severity ``a`` is worse than ``b`` (an unknown kind ranks with a stumble, "" lowest)."""
    stumble = _SEVERITY_RANK["stumble"]
    return _SEVERITY_RANK.get(a, stumble if a else -1) > _SEVERITY_RANK.get(b, stumble if b else -1)


DEFAULT_SEVERITY: Mapping[EventType, Severity] = {
    EventType.STUMBLE: Severity.WARNING,
    EventType.FALL: Severity.CRITICAL,
    EventType.NO_RECOVERY: Severity.CRITICAL,
    EventType.FAULT: Severity.WARNING,
    EventType.RESET: Severity.INFO,
    EventType.START: Severity.INFO,
    EventType.STOP: Severity.INFO,
    EventType.OK: Severity.INFO,
    EventType.CLOSED: Severity.INFO,
    EventType.WINDOW: Severity.INFO,
    EventType.TEST: Severity.WARNING,
    EventType.HELP: Severity.CRITICAL,
}


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    device_id: str
    t_monotonic: float
    """Monotonic time of the decision (seconds); for ordering and latency, not display."""
    state: str
    """Safety state after the event (ARMED, TRIPPED, FAULT, ...)."""
    reason: str
    severity: Severity
    wall_time: str
    """ISO 8601 UTC wall-clock time, for display only."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    figures: Mapping[str, float] = field(default_factory=dict)
    imu_window: tuple[ImuSample, ...] = ()
    """Samples up to the detection, for plotting: events from before incidents (a monitor now
    sends a ``window`` event after each trip instead)."""
    incident: str | None = None
    """The incident this event belongs to (docs/incidents.md); None outside incidents."""
    of: str | None = None
    """``window``: the id of the trip event the recording is about."""
    by: str | None = None
    """``ok`` and ``closed``: who closed the incident."""
    via: str | None = None
    """``closed``: how (dashboard, home-assistant, ...)."""
    recording: _messages.ImuRecording | None = None
    """``window``: the IMU around the trip (int16 counts, zlib; :mod:`core.protocol.recording`)."""
    wall_unsynced: bool = False
    """The wall clock was not synchronised (NTP) when ``wall_time`` was read: after a power
    cut a Pi without a battery-backed clock says the time of its last shutdown, so
    ``wall_time`` may be hours or days off (the caregiver shows when it received the event
    instead)."""

    @classmethod
    def now(
        cls,
        type: EventType,
        device_id: str,
        t_monotonic: float,
        state: str,
        reason: str,
        figures: Mapping[str, float] | None = None,
        imu_window: Sequence[ImuSample] = (),
        *,
        incident: str | None = None,
        of: str | None = None,
        by: str | None = None,
        via: str | None = None,
        recording: _messages.ImuRecording | None = None,
        wall: WallStamper | None = None,
    ) -> Event:
        """An event decided now; ``wall`` stamps its wall time and whether the clock was
        synchronised (the safety loop's own, which reads ``adjtimex`` seldom), else both are
        read here (off the loop: one non-blocking ``adjtimex``)."""
        stamp = wall.stamp() if wall is not None else system_stamp()
        return cls(
            type=type,
            device_id=device_id,
            t_monotonic=t_monotonic,
            state=state,
            reason=reason,
            severity=DEFAULT_SEVERITY[type],
            wall_time=stamp.wall_time,
            figures=dict(figures or {}),
            imu_window=tuple(imu_window),
            incident=incident,
            of=of,
            by=by,
            via=via,
            recording=recording,
            wall_unsynced=not stamp.synced,
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "id": self.id,
            "type": self.type.value,
            "device_id": self.device_id,
            "severity": self.severity.value,
            "state": self.state,
            "reason": self.reason,
            "wall_time": self.wall_time,
            "t_monotonic": round(self.t_monotonic, 6),
            "figures": {k: round(float(v), 4) for k, v in self.figures.items()},
        }
        if self.imu_window:
            t0 = self.t_monotonic
            data["imu_window"] = {
                "columns": ["dt", "ax", "ay", "az", "gx", "gy", "gz"],
                "rows": [
                    [round(s.t - t0, 4), *(round(v, 3) for v in s[1:])] for s in self.imu_window
                ],
            }
        # Keys only grow, and only when set: an event without them is what it always was.
        for key in ("incident", "of", "by", "via"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.recording is not None:
            data["recording"] = msgspec.to_builtins(self.recording)
        if self.wall_unsynced:
            data["wall_unsynced"] = True
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        window: list[ImuSample] = []
        raw_window = data.get("imu_window")
        t0 = float(data["t_monotonic"])
        if raw_window:
            for row in raw_window["rows"]:
                window.append(ImuSample(t0 + row[0], *(float(v) for v in row[1:])))
        return cls(
            type=EventType(data["type"]),
            device_id=str(data["device_id"]),
            t_monotonic=t0,
            state=str(data["state"]),
            reason=str(data["reason"]),
            severity=Severity(data["severity"]),
            wall_time=str(data["wall_time"]),
            id=str(data["id"]),
            figures={str(k): float(v) for k, v in data.get("figures", {}).items()},
            imu_window=tuple(window),
            incident=_text(data.get("incident")),
            of=_text(data.get("of")),
            by=_text(data.get("by")),
            via=_text(data.get("via")),
            recording=None
            if data.get("recording") is None
            else msgspec.convert(data["recording"], _messages.ImuRecording),
            wall_unsynced=data.get("wall_unsynced") is True,
        )

    @classmethod
    def from_json(cls, text: str) -> Event:
        return cls.from_dict(json.loads(text))


def _text(value: object) -> str | None:
    return None if value is None else str(value)


# At the end, not the top: messages imports this module's enums, and the ``recording`` field's
# type (resolved by msgspec when an Event is first encoded) lives there.
from core.protocol import messages as _messages  # noqa: E402
