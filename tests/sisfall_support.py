"""Locating the shared SisFall subset for tests that run real recordings.

The recordings are never part of the repository: they live in ``../shared``
beside the project root and are unpacked once by ``../shared/datasets/unpack``.
Tests that need them skip, saying why, when that folder is absent.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNPACK = ROOT.parent / "shared" / "datasets" / "unpack"


@functools.cache
def _sisfall_dir() -> Path | None:
    override = os.environ.get("RETROGUARD_SISFALL")
    if override:
        return Path(override)
    if not UNPACK.exists():
        return None
    out = subprocess.run([str(UNPACK)], check=True, capture_output=True, text=True).stdout
    return Path(out.strip().splitlines()[-1])


def sisfall_dir() -> Path:
    """The unpacked ``SisFall_dataset`` directory, or skip the calling test."""
    d = _sisfall_dir()
    if d is None or not d.is_dir():
        pytest.skip(f"SisFall recordings not available ({UNPACK} is absent)")
    return d


def sisfall_file(name: str) -> Path:
    """One recording, e.g. ``"F02_SA05_R01.txt"``, or skip the calling test."""
    subject = name.split("_")[1]
    path = sisfall_dir() / subject / name
    if not path.exists():
        pytest.skip(f"{name} is not in this SisFall subset")
    return path
