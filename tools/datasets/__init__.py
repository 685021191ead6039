"""Recordings from datasets as :class:`~core.samples.ImuSample` streams.

Two sources, one shape: SisFall files (:mod:`tools.datasets.sisfall`) and
project traces (:mod:`tools.datasets.traces`, the format every other
dataset is converted to). :func:`describe` reads what a file says about
itself (cheaply: a file name or a header), :func:`open_samples` streams its
samples at the monitor's rate, resampling when the source rate differs.
Malformed input raises :class:`DatasetFormatError` naming the file and line.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.mounting import SISFALL_MOUNTING, up_vector
from core.samples import ImuSample
from tools.datasets.errors import DatasetFormatError
from tools.datasets.resample import MAX_RATE_HZ, MIN_RATE_HZ, at_rate, resample
from tools.datasets.sisfall import SISFALL_RATE_HZ, iter_sisfall, parse_name
from tools.datasets.traces import (
    iter_trace_samples,
    looks_like_trace,
    read_trace_header,
)

__all__ = [
    "MAX_RATE_HZ",
    "MIN_RATE_HZ",
    "DatasetFormatError",
    "Recording",
    "describe",
    "discover",
    "is_tuning_subject",
    "open_samples",
    "resample",
]

Label = Literal["fall", "adl", "unknown"]


@dataclass(frozen=True, slots=True)
class Recording:
    """What a recording file says about itself, before its samples are read."""

    path: Path
    source: Literal["sisfall", "trace"]
    code: str | None
    """Activity code (SisFall ``F02``/``D01``, or a trace's ``activity``)."""
    subject: str | None
    label: Label
    sample_rate_hz: float
    """The file's own rate (before any resampling)."""
    impact_t: float | None
    """Labelled impact time, when the data has one (SisFall has none)."""
    up: tuple[float, float, float] | None
    """Sensor-frame "up" from the recording's mounting, when fully known."""


_SISFALL_UP = up_vector(SISFALL_MOUNTING)


def describe(path: str | Path) -> Recording:
    """Describe a SisFall file (from its name) or a trace (from its header)."""
    p = Path(path)
    name = parse_name(p)
    if name is not None:
        return Recording(
            path=p,
            source="sisfall",
            code=name.code,
            subject=name.subject,
            label="fall" if name.is_fall else "adl",
            sample_rate_hz=SISFALL_RATE_HZ,
            impact_t=None,
            up=_SISFALL_UP,
        )
    header = read_trace_header(p)
    if not MIN_RATE_HZ <= header.sample_rate_hz <= MAX_RATE_HZ:
        raise DatasetFormatError(
            p,
            1,
            f"sample_rate_hz {header.sample_rate_hz:g} is outside the supported "
            f"{MIN_RATE_HZ:g}-{MAX_RATE_HZ:g} Hz",
        )
    return Recording(
        path=p,
        source="trace",
        code=header.activity,
        subject=header.subject,
        label=header.label,
        sample_rate_hz=header.sample_rate_hz,
        impact_t=header.impact_t,
        up=up_vector(header.mounting),
    )


def open_samples(
    recording: Recording, rate_hz: float, sisfall_accelerometer: str = "adxl345"
) -> Iterator[ImuSample]:
    """Stream the recording's samples at ``rate_hz`` (resampled if needed).
    ``sisfall_accelerometer``: which of a SisFall line's two accelerometers
    to read (:data:`tools.datasets.sisfall.ACCELEROMETERS`)."""
    raw = (
        iter_sisfall(recording.path, sisfall_accelerometer)
        if recording.source == "sisfall"
        else iter_trace_samples(recording.path)
    )
    return at_rate(raw, recording.sample_rate_hz, rate_hz)


def discover(root: str | Path) -> list[Path]:
    """Recording files under ``root`` (a file or a directory), sorted.

    SisFall-named ``*.txt`` files and traces (``*.csv``, ``*.trace`` or any
    file starting with ``# format:``); everything else (``Readme.txt``) is
    ignored. Sorted so that runs and their summaries are deterministic.
    """
    r = Path(root)
    if r.is_file():
        return [r]
    found = [
        p
        for p in r.rglob("*")
        if p.is_file()
        and not p.name.startswith(".")
        and (parse_name(p) is not None or looks_like_trace(p))
    ]
    return sorted(found)


_DIGITS = re.compile(r"(\d+)\D*$")


def is_tuning_subject(subject: str | None, fallback: str = "") -> bool:
    """The documented, deterministic subject split: tuning half or held-out half.

    A subject whose id ends in a number goes by its parity: odd numbers tune
    (SisFall SA01, SA03, ..., SE01, ...), even numbers are held out (SA02,
    ..., SE06 — the only elderly subject with falls). Ids without digits go
    by the parity of their CRC-32. A recording without a subject is split by
    ``fallback`` (its file name), so it is at least stable across runs.
    """
    key = subject if subject else fallback
    m = _DIGITS.search(key)
    n = int(m.group(1)) if m else zlib.crc32(key.encode())
    return n % 2 == 1
