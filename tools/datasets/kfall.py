"""KFall recordings as :class:`ImuSample` streams.

KFall (Yu, Jang, Xiong, *Frontiers in Aging Neuroscience* 13:692865, 2021)
records a 9-axis sensor on the lower back (L5) of 32 young adults at 100 Hz.
Each ``sensor_data/SAxx/SxxTyyRzz.csv`` has a header line and the columns
``TimeStamp(s), FrameCounter, AccX, AccY, AccZ`` (g), ``GyrX, GyrY, GyrZ``
(°/s), ``EulerX, EulerY, EulerZ``. Tasks T01-T21 are activities of daily
living (T01: standing for 30 s, T06-T09: walking and jogging with turns, T11:
sitting on a chair for 30 s), T22-T36 falls.

Timestamps are synthesised from the line index (``t = index / 100``), as for
SisFall: the recorded ones carry float rounding that would make two samples
look simultaneous.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.samples import ImuSample
from tools.datasets.errors import DatasetFormatError

KFALL_RATE_HZ = 100.0
_NAME = re.compile(r"^S(?P<subject>\d\d)T(?P<task>\d\d)R(?P<trial>\d\d)\.csv$")
_GYRO_LAST_COLUMN = 7
"""Columns 2-4 are the accelerometer, 5-7 the gyro (0-based)."""

STANDING_TASKS = frozenset({1})
"""T01: standing still for 30 s."""
SITTING_TASKS = frozenset({11})
"""T11: sitting on a chair for 30 s."""
WALKING_TASKS = frozenset({6, 7, 8, 9})
"""T06-T09: walking and jogging (normal, quick) with turns."""


@dataclass(frozen=True, slots=True)
class KFallName:
    """What a KFall file name says about its recording."""

    subject: int
    task: int
    trial: int

    @property
    def is_fall(self) -> bool:
        return self.task >= 22


def parse_name(path: str | Path) -> KFallName | None:
    """Subject, task and trial of a KFall file, or None for other files."""
    m = _NAME.match(Path(path).name)
    if m is None:
        return None
    return KFallName(int(m["subject"]), int(m["task"]), int(m["trial"]))


def iter_kfall(path: str | Path) -> Iterator[ImuSample]:
    """Stream a KFall file at its native 100 Hz, raising on the first bad line."""
    period = 1.0 / KFALL_RATE_HZ
    i = 0
    with open(path, encoding="ascii", errors="replace") as f:
        for lineno, text in enumerate(f, start=1):
            if lineno == 1 or not text.strip():
                continue  # the header
            parts = text.split(",")
            if len(parts) <= _GYRO_LAST_COLUMN:
                problem = f"expected at least 8 columns: {text.strip()!r}"
                raise DatasetFormatError(path, lineno, problem)
            try:
                ax, ay, az, gx, gy, gz = (float(p) for p in parts[2 : _GYRO_LAST_COLUMN + 1])
            except ValueError:
                raise DatasetFormatError(path, lineno, f"non-numeric column: {text!r}") from None
            yield ImuSample(i * period, ax, ay, az, gx, gy, gz)
            i += 1
    if i == 0:
        raise DatasetFormatError(path, 1, "no samples")


def read_kfall(path: str | Path) -> list[ImuSample]:
    """The whole KFall file as a list (100 Hz)."""
    return list(iter_kfall(path))


def find_kfall(root: str | Path, tasks: frozenset[int] | None = None) -> list[Path]:
    """Every KFall recording under ``root`` (of ``tasks``, when given), sorted by name."""
    found = []
    for p in Path(root).rglob("*.csv"):
        name = parse_name(p)
        if name is not None and (tasks is None or name.task in tasks):
            found.append(p)
    return sorted(found, key=lambda p: p.name)
