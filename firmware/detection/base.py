"""The detector's stable interface."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from core.samples import ImuSample


class DetectionKind(StrEnum):
    STUMBLE = "stumble"
    """Loss of balance before any impact: opens the relay at once."""
    FALL = "fall"
    """Confirmed fall: impact followed by lying or no recovery."""
    NO_RECOVERY = "no_recovery"
    """Still lying without moving for the configured time after a fall."""


TRIPPING_KINDS = frozenset({DetectionKind.STUMBLE, DetectionKind.FALL})
"""Detections that open the relay (a no-recovery only escalates the alert)."""


@dataclass(frozen=True, slots=True)
class Detection:
    kind: DetectionKind
    t: float
    """Timestamp of the sample that completed the decision (monotonic seconds)."""
    reason: str
    """Short human-readable cause, e.g. ``"tilt 48 deg at 160 deg/s"``."""
    figures: Mapping[str, float] = field(default_factory=dict)
    """The detector's measurements at decision time, for the event record."""


NO_DETECTIONS: Sequence[Detection] = ()


class Detector(Protocol):
    """One sample in, zero or more detections out; state inside; no look-ahead."""

    def update(self, sample: ImuSample) -> Sequence[Detection]:
        """Consume one sample (timestamps strictly increasing) and return new detections."""
        ...

    def reset(self) -> None:
        """Forget everything (e.g. after re-arming), as if freshly built."""
        ...


@runtime_checkable
class KnowsPosture(Protocol):
    """A detector that can say whether the wearer lies, and end a fall episode when a person
    at the machine re-arms (:class:`firmware.safety.SafetyController` before and after it
    arms)."""

    @property
    def lying(self) -> bool: ...

    def end_fall(self) -> None: ...
