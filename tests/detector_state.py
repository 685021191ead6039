"""The whole internal state of a FallDetector, in a form that compares by value.

For tests that must show two detectors are in *exactly* the same state (the
batch and streaming paths; reset() and a fresh build), not only that their
public estimates agree.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from firmware.detection.retro import FallDetector


def _plain(value: Any) -> Any:
    if isinstance(value, deque | list):
        return [_plain(v) for v in value]
    slots = getattr(type(value), "__slots__", None)
    if slots and not isinstance(value, tuple):
        return (type(value).__name__, *(getattr(value, name) for name in slots))
    return value


def detector_state(det: FallDetector) -> dict[str, Any]:
    """Every attribute of ``det`` (deques and landings as plain lists)."""
    return {name: _plain(value) for name, value in vars(det).items()}
