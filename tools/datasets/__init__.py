"""Recordings from datasets as :class:`~core.samples.ImuSample` streams.

Three sources, one shape: SisFall files (:mod:`tools.datasets.sisfall`),
KFall files with their onset labels (:mod:`tools.datasets.kfall`) and
project traces (:mod:`tools.datasets.traces`, the format every other
dataset is converted to). :func:`describe` reads what a file says about
itself (cheaply: a file name or a header), :func:`open_samples` streams its
samples at the monitor's rate, resampling when the source rate differs.
Malformed input raises :class:`DatasetFormatError` naming the file and line.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.mounting import SISFALL_MOUNTING, up_vector
from core.samples import ImuSample
from tools.datasets.errors import DatasetFormatError
from tools.datasets.header_checked import rows_at_header_rate, rows_reach_labels
from tools.datasets.kfall import HEADER as KFALL_HEADER
from tools.datasets.kfall import KFALL_MOUNTING, KFALL_RATE_HZ, fall_label, iter_kfall
from tools.datasets.kfall import parse_name as parse_kfall_name
from tools.datasets.limits import MAX_LINE_CHARS
from tools.datasets.resample import MAX_RATE_HZ, MIN_RATE_HZ, at_rate, resample
from tools.datasets.sisfall import SISFALL_RATE_HZ, SISFALL_TASKS, iter_sisfall, parse_name
from tools.datasets.tasks import Activity, Task, task_from_words
from tools.datasets.traces import (
    iter_trace_samples,
    looks_like_trace,
    read_trace_header,
)

__all__ = [
    "MAX_RATE_HZ",
    "MIN_RATE_HZ",
    "Activity",
    "DatasetFormatError",
    "Recording",
    "Task",
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
    source: Literal["sisfall", "kfall", "trace"]
    code: str | None
    """Activity code (SisFall ``F02``/``D01``, KFall's, or a trace's ``activity``)."""
    subject: str | None
    label: Label
    sample_rate_hz: float
    """The file's own rate (before any resampling)."""
    impact_t: float | None
    """Labelled impact time, when the data has one (SisFall has none)."""
    up: tuple[float, float, float] | None
    """Sensor-frame "up" from the recording's mounting, when fully known."""
    onset_t: float | None = None
    """Labelled fall onset (KFall, or a trace's ``onset_t``): when the body
    starts to fall, on the samples' clock."""
    task: Task | None = None
    """What the person was doing, from the dataset's task table (or a
    trace's activity name): decides which figures the recording counts in."""


_SISFALL_UP = up_vector(SISFALL_MOUNTING)
_KFALL_UP = up_vector(KFALL_MOUNTING)


def describe(path: str | Path) -> Recording:
    """Describe a SisFall file (from its name), a KFall file (from its name
    and its subject's label file) or a trace (from its header)."""
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
            task=SISFALL_TASKS.get(name.code),
        )
    if _is_kfall(p):
        return _describe_kfall(p)
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
        onset_t=header.onset_t,
        task=task_from_words(header.activity, header.label),
    )


def _is_kfall(p: Path) -> bool:
    """A KFall file name and a KFall header line (a trace may not be named so)."""
    if parse_kfall_name(p) is None:
        return False
    try:
        with open(p, encoding="ascii", errors="replace") as f:
            first = f.readline(MAX_LINE_CHARS)  # binary data has no line break to stop at
    except OSError:
        return False
    return first.strip().startswith(KFALL_HEADER[0])


def _describe_kfall(p: Path) -> Recording:
    name = parse_kfall_name(p)
    assert name is not None
    task = name.task
    if task is None:
        raise DatasetFormatError(p, 1, f"task {name.task_id} is not in KFall's task table")
    onset = impact = None
    if task.is_fall:
        label = fall_label(p, name)
        onset, impact = label.onset_t, label.impact_t
    return Recording(
        path=p,
        source="kfall",
        code=task.code,
        subject=name.subject,
        label="fall" if task.is_fall else "adl",
        sample_rate_hz=KFALL_RATE_HZ,
        impact_t=impact,
        up=_KFALL_UP,
        onset_t=onset,
        task=task,
    )


def open_samples(
    recording: Recording, rate_hz: float, sisfall_accelerometer: str = "adxl345"
) -> Iterator[ImuSample]:
    """Stream the recording's samples at ``rate_hz`` (resampled if needed).
    ``sisfall_accelerometer``: which of a SisFall line's two accelerometers
    to read (:data:`tools.datasets.sisfall.ACCELEROMETERS`)."""
    raw: Iterator[ImuSample]
    if recording.source == "sisfall":
        raw = iter_sisfall(recording.path, sisfall_accelerometer)
    elif recording.source == "kfall":
        raw = iter_kfall(recording.path)
    else:
        raw = rows_at_header_rate(
            iter_trace_samples(recording.path), recording.path, recording.sample_rate_hz
        )
        labelled = {"onset_t": recording.onset_t, "impact_t": recording.impact_t}
        raw = rows_reach_labels(raw, recording.path, labelled)
    return at_rate(raw, recording.sample_rate_hz, rate_hz)


def discover(root: str | Path) -> list[Path]:
    """Recording files under ``root`` (a file or a directory), sorted.

    SisFall-named ``*.txt`` files, KFall sensor files and traces (``*.csv``,
    ``*.trace`` or any file starting with ``# format:``); everything else
    (``Readme.txt``, KFall's label workbooks) is ignored. Sorted so that
    runs and their summaries are deterministic. A file given as ``root`` is
    judged the same way (a ``Readme.txt`` is no recording).
    """
    r = Path(root)
    if r.is_file():
        return [r] if _is_recording(r) else []
    found = [
        p for p in r.rglob("*") if p.is_file() and not p.name.startswith(".") and _is_recording(p)
    ]
    return sorted(found)


def unlisted(root: str | Path) -> str | None:
    """Why the folder ``root`` cannot be listed ("cannot read: Permission denied"), or None
    (it can, or it is no folder). :func:`discover`'s ``rglob`` finds nothing in a folder this
    user may not read and says nothing: the commands said "no recordings found in" it."""
    r = Path(root)
    if not r.is_dir():
        return None
    try:
        with os.scandir(r):
            return None
    except OSError as exc:
        return f"{r}: cannot read: {exc.strerror or exc}"


def _is_recording(p: Path) -> bool:
    return parse_name(p) is not None or looks_like_trace(p)


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
