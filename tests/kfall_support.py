"""Locating the shared KFall subset for tests that run real recordings.

Like :mod:`tests.sisfall_support`: the recordings live in ``../shared`` beside
the project root (never in it), unpacked once by
``../shared/datasets/unpack-kfall``; ``RETROGUARD_KFALL`` points elsewhere.
Tests that need them skip, saying why, when they are absent.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNPACK = ROOT.parent / "shared" / "datasets" / "unpack-kfall"


@functools.cache
def _kfall_dir() -> Path | None:
    override = os.environ.get("RETROGUARD_KFALL")
    if override:
        return Path(override)
    if not UNPACK.exists():
        return None
    out = subprocess.run([str(UNPACK)], check=True, capture_output=True, text=True).stdout
    return Path(out.strip().splitlines()[-1])


def kfall_dir() -> Path:
    """The unpacked ``KFall`` directory, or skip the calling test."""
    d = _kfall_dir()
    if d is None or not d.is_dir():
        pytest.skip(f"KFall recordings not available ({UNPACK} is absent, RETROGUARD_KFALL unset)")
    return d


def kfall_file(name: str) -> Path:
    """One sensor file, e.g. ``"S06T34R01.csv"``, or skip the calling test."""
    path = kfall_dir() / "sensor_data" / f"SA{name[1:3]}" / name
    if not path.exists():
        pytest.skip(f"{name} is not in this KFall subset")
    return path
