"""The one place a detector is built.

The monitor, ``retroguard replay`` and ``retroguard evaluate`` all call
:func:`build_detector`, so the figures ``evaluate`` reports are the figures of
the object that runs on the belt — not of a look-alike.

It builds the *compiled* detector when one was installed (mypyc, see
``setup.py``: ``firmware.detection.compiled``) and it was built from the
sources as they are now; otherwise the pure-Python one. Both run the same
code and give identical detections (``tests/test_detector_compiled.py``);
the compiled one is about three times faster.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import os
from pathlib import Path
from typing import TYPE_CHECKING

from core.digest import sha256
from firmware.detection.base import Detector
from firmware.detection.config import DetectorConfig

if TYPE_CHECKING:  # imported where it is built: the compiled one makes it needless
    from firmware.detection.retro import FallDetector

_SOURCES = ("retro", "rules")


def source_digest() -> str:
    """SHA-256 over the detector's sources (``setup.py`` stamps it into the compiled copy)."""
    here = Path(__file__).resolve().parent
    h = sha256()  # hashlib's digest, without loading OpenSSL (core.digest)
    for name in _SOURCES:
        h.update((here / f"{name}.py").read_bytes())
    return h.hexdigest()


@functools.cache
def compiled_class() -> type[FallDetector] | None:
    """The compiled ``FallDetector``, or None: not built (no compiler,
    ``RETROGUARD_PURE`` at install), built from other sources than the
    current ones (edited since), or ``RETROGUARD_PURE=1`` now."""
    if os.environ.get("RETROGUARD_PURE"):
        return None
    try:
        package = importlib.import_module("firmware.detection.compiled")
        module = importlib.import_module("firmware.detection.compiled.retro")
    except ImportError:
        return None
    if getattr(package, "SOURCE_DIGEST", None) != source_digest():
        return None
    origin = getattr(module, "__file__", "") or ""
    if not origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        return None  # the copies were written but not compiled
    cls: type[FallDetector] = module.FallDetector
    return cls


def detector_class() -> type[FallDetector]:
    """The class :func:`build_detector` builds: compiled when available, else pure Python
    (imported only then: beside the compiled one its code would be memory the monitor never
    runs)."""
    compiled = compiled_class()
    if compiled is not None:
        return compiled
    from firmware.detection.retro import FallDetector

    return FallDetector


def build_detector(
    config: DetectorConfig,
    sample_rate_hz: float,
    up: tuple[float, float, float] | None = None,
) -> Detector:
    """A fresh streaming detector for samples arriving at ``sample_rate_hz``.

    ``up`` is optional: the sensor-frame direction that points up when the
    wearer stands (from a known mounting, e.g. ``core.mounting``). Without it
    the detector learns gravity online during its warm-up, which is what makes
    it work for a belt clipped in any orientation and for datasets with other
    axes.
    """
    return detector_class()(config, sample_rate_hz, up=up)
