"""What the guided session may know of the safety controller: a read-only view.

The session runner and its parts read the controller's state through this protocol only:
no relay, no buzzer, no way to arm (docs/sessions.md, "Safety, by construction").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from firmware.detection.base import Detection
from firmware.safety import FaultClass, SafetyState, Transition


class SafetyView(Protocol):
    """What the runner may know of the safety controller: read-only, no relay, no buzzer."""

    @property
    def state(self) -> SafetyState: ...

    @property
    def since(self) -> float: ...

    @property
    def transitions(self) -> Sequence[Transition]: ...

    @property
    def reason(self) -> str: ...

    @property
    def last_detection(self) -> Detection | None:
        """The newest detection, also one while TRIPPED (a fall confirmed after the stumble
        that tripped, a no-recovery): a new object each time."""
        ...

    @property
    def incident(self) -> str | None:
        """The incident open now: from a trip (or fault) until the walker re-arms."""
        ...

    @property
    def fault_class(self) -> FaultClass | None:
        """What the fault holding it in FAULT means to the walker; None outside FAULT."""
        ...

    @property
    def help_waiting(self) -> bool:
        """The walker called for help in the incident open now; no caregiver answered yet."""
        ...
