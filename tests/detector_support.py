"""Helpers for the detector tests: feeding samples, and comparing state.

:func:`detector_state` is the whole internal state of a FallDetector in a form
that compares by value, for tests that must show two detectors are in
*exactly* the same state (the batch and streaming paths; reset() and a fresh
build), not only that their public estimates agree.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from core.samples import ImuSample
from firmware.detection import Detection, Detector
from firmware.detection.retro import FallDetector


def run(det: Detector, samples: Iterable[ImuSample]) -> list[Detection]:
    """Every detection ``det`` makes over ``samples``, fed one by one."""
    out: list[Detection] = []
    for s in samples:
        out.extend(det.update(s))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, deque | list):
        return [_plain(v) for v in value]
    slots = getattr(type(value), "__slots__", None) or getattr(type(value), "__mypyc_attrs__", None)
    if slots and not isinstance(value, tuple):
        names = sorted(name for name in slots if not name.startswith("__"))
        return (type(value).__name__, *((name, getattr(value, name)) for name in names))
    return value


def detector_state(det: FallDetector) -> dict[str, Any]:
    """Every attribute of ``det`` (deques and landings as plain lists), for
    the pure-Python class (its ``__dict__``) and the compiled one (mypyc
    lists a native class's attributes in ``__mypyc_attrs__``)."""
    names = getattr(type(det), "__mypyc_attrs__", None)
    if names is None:
        return {name: _plain(value) for name, value in vars(det).items()}
    return {name: _plain(getattr(det, name)) for name in names if not name.startswith("__")}
