"""KFall recordings as :class:`ImuSample` streams, with their fall-onset labels.

KFall (Yu, Jang & Xiong, "A Large-Scale Open Motion Dataset (KFall) and
Benchmark Algorithms for Detecting Pre-impact Fall of the Elderly Using
Wearable Inertial Sensors", *Front. Aging Neurosci.* 13:692865, 2021)
records one IMU on the low back of 32 young adults at 100 Hz: 21 activities
of daily living and 15 simulated falls (onto a 15 cm mattress), and for every
fall the **onset** and **impact** frames labelled from synchronised video.
That makes it a dataset for *pre-impact* detection: a trip counts when it
comes between the onset and the impact.

Layout (as distributed, and as ``../shared/datasets/unpack-kfall`` unpacks it)::

    KFall/sensor_data/SA06/S06T20R01.csv     subject 06, task 20, trial 01
    KFall/label_data/SA06_label.xlsx         that subject's fall labels

A sensor file has a header line ``TimeStamp(s),FrameCounter,AccX,AccY,AccZ,
GyrX,GyrY,GyrZ,EulerX,EulerY,EulerZ`` and one line per frame: time (s), the
frame number (1, 2, ...), acceleration in g, angular rate in deg/s and the
sensor's own Euler angles (not used: the detector keeps its own
orientation). In every file of the subset the time is ``frame x 0.01 s``
exactly, with no gap, so a labelled frame is the time ``frame / 100``.

Axes, verified from the data (``docs/detector.md``): standing still reads
(-0.05, -1.00, 0.00) g, so the sensor's ``y`` points down; lying on the back
after a backward fall reads ``z`` = +1 g and lying face down after a forward
fall ``z`` = -1 g, so ``z`` points forward; the gyro integrates to the
rotation the accelerometer sees with a positive gain of 0.9-1.1 in a
right-handed frame, so ``x`` points right. That is SisFall's mounting,
``x=right y=down z=forward``.

The label workbooks are read with the standard library (:mod:`tools.datasets.xlsx`).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.mounting import Mounting
from core.samples import ImuSample
from tools.datasets.errors import DatasetFormatError
from tools.datasets.limits import KFALL_BOUNDS, recording_lines
from tools.datasets.tasks import Activity, Task
from tools.datasets.xlsx import read_first_sheet

KFALL_RATE_HZ = 100.0
KFALL_MOUNTING = Mounting.parse("x=right y=down z=forward")
"""The low-back sensor's axes, as found in the data (module docstring)."""
HEADER = (
    "TimeStamp(s)",
    "FrameCounter",
    "AccX",
    "AccY",
    "AccZ",
    "GyrX",
    "GyrY",
    "GyrZ",
    "EulerX",
    "EulerY",
    "EulerZ",
)

_A = Activity
KFALL_TASKS: dict[int, Task] = {
    1: Task("D01", "Stand for 30 s", _A.OTHER_ADL),
    2: Task(
        "D02",
        "Stand, slowly bend the back with or without bending at knees, tie shoe lace, and get up",
        _A.OTHER_ADL,
    ),
    3: Task("D03", "Pick up an object from the floor", _A.OTHER_ADL),
    4: Task("D04", "Gently jump (try to reach an object)", _A.OTHER_ADL),
    5: Task(
        "D05",
        "Stand, sit to the ground, wait a moment, and get up with normal speed",
        _A.OTHER_ADL,
    ),
    6: Task("D06", "Walk normally with turn (4 m)", _A.WALKING),
    7: Task("D07", "Walk quickly with turn (4 m)", _A.WALKING),
    8: Task("D08", "Jog normally with turn (4 m)", _A.JOGGING),
    9: Task("D09", "Jog quickly with turn (4 m)", _A.JOGGING),
    10: Task("D10", "Stumble while walking", _A.STUMBLE),
    11: Task("D11", "Sit on a chair for 30 s", _A.OTHER_ADL),
    12: Task("D12", "Sit on the sofa (back is inclined to the support) for 30 s", _A.OTHER_ADL),
    13: Task("D13", "Sit down to a chair normally, and get up from a chair normally", _A.OTHER_ADL),
    14: Task("D14", "Sit down to a chair quickly, and get up from a chair quickly", _A.OTHER_ADL),
    15: Task("D15", "Sit a moment, trying to get up, and collapse into a chair", _A.OTHER_ADL),
    16: Task(
        "D16",
        "Stand, sit on the sofa (back is inclined to the support), and get up normally",
        _A.OTHER_ADL,
    ),
    17: Task("D17", "Lie on the bed for 30 s", _A.LYING_DOWN),
    18: Task(
        "D18",
        "Sit a moment, lie down to the bed normally, and get up normally",
        _A.LYING_DOWN,
    ),
    19: Task("D19", "Sit a moment, lie down to the bed quickly, and get up quickly", _A.LYING_DOWN),
    35: Task("D20", "Walk upstairs and downstairs normally (five steps)", _A.STAIRS),
    36: Task("D21", "Walk upstairs and downstairs quickly (five steps)", _A.STAIRS),
    20: Task("F01", "Forward fall when trying to sit down", _A.FALL),
    21: Task("F02", "Backward fall when trying to sit down", _A.FALL, True),
    22: Task("F03", "Lateral fall when trying to sit down", _A.FALL),
    23: Task("F04", "Forward fall when trying to get up", _A.FALL),
    24: Task("F05", "Lateral fall when trying to get up", _A.FALL),
    25: Task("F06", "Forward fall while sitting, caused by fainting", _A.FALL),
    26: Task("F07", "Lateral fall while sitting, caused by fainting", _A.FALL),
    27: Task("F08", "Backward fall while sitting, caused by fainting", _A.FALL, True),
    28: Task("F09", "Vertical (forward) fall while walking caused by fainting", _A.WALKING_FALL),
    29: Task(
        "F10",
        "Fall while walking, with use of hands in a table to dampen fall, caused by fainting",
        _A.WALKING_FALL,
    ),
    30: Task("F11", "Forward fall while walking caused by a trip", _A.WALKING_FALL),
    31: Task("F12", "Forward fall while jogging caused by a trip", _A.WALKING_FALL),
    32: Task("F13", "Forward fall while walking caused by a slip", _A.WALKING_FALL),
    33: Task("F14", "Forward lateral fall while walking caused by a slip", _A.WALKING_FALL),
    34: Task("F15", "Backward fall while walking caused by a slip", _A.WALKING_FALL, True),
}
"""KFall's protocol (the paper's Table 2; the task id is the ``T`` number of
a file name, the code the paper's), each activity in its :class:`Activity`
group: walking-type ADLs are D06-D07 (walking with a turn), D08-D09 (jogging
with a turn) and D20-D21 (stairs); walking falls F09-F15; lying down D17-D19."""

_NAME = re.compile(r"^S(?P<subject>\d\d)T(?P<task>\d\d)R(?P<trial>\d\d)\.csv$")


@dataclass(frozen=True, slots=True)
class KFallName:
    """What a KFall file name says about its recording."""

    subject: str
    """``SA06`` (the folder's and the label file's spelling)."""
    task_id: int
    trial: int

    @property
    def task(self) -> Task | None:
        return KFALL_TASKS.get(self.task_id)


@dataclass(frozen=True, slots=True)
class FallLabel:
    """The video-labelled frames of one fall."""

    onset_frame: int
    impact_frame: int

    @property
    def onset_t(self) -> float:
        return self.onset_frame / KFALL_RATE_HZ

    @property
    def impact_t(self) -> float:
        return self.impact_frame / KFALL_RATE_HZ


def parse_name(path: str | Path) -> KFallName | None:
    """Subject, task and trial of a KFall sensor file (``S06T20R01.csv``), or None."""
    m = _NAME.match(Path(path).name)
    if m is None:
        return None
    return KFallName(f"SA{m['subject']}", int(m["task"]), int(m["trial"]))


def label_path(sensor_file: str | Path, subject: str) -> Path:
    """``KFall/label_data/SAxx_label.xlsx`` for ``KFall/sensor_data/SAxx/<file>``."""
    return Path(sensor_file).resolve().parent.parent.parent / "label_data" / f"{subject}_label.xlsx"


_TASK_CELL = re.compile(r"^\s*(F\d\d)\s*\(\s*(\d+)\s*\)\s*$")
_COLUMNS = {
    "task": "task code (task id)",
    "trial": "trial id",
    "onset": "fall_onset_frame",
    "impact": "fall_impact_frame",
}


@functools.cache
def read_labels(path: Path) -> dict[tuple[int, int], FallLabel]:
    """One subject's fall labels: ``(task id, trial) -> FallLabel``.

    The sheet has a header row (``Task Code (Task ID)``, ``Description``,
    ``Trial ID``, ``Fall_onset_frame``, ``Fall_impact_frame``) and one row
    per fall trial; the task cell (``F01 (20)``) is written on the first
    trial of each task only and holds for the rows below it. Columns are
    found by their header, so an added column does not shift them.
    """
    rows = read_first_sheet(path)
    if not rows:
        raise DatasetFormatError(path, 1, "empty label sheet")
    header = [c.strip().lower() for c in rows[0]]
    cols: dict[str, int] = {}
    for key, title in _COLUMNS.items():
        if title not in header:
            raise DatasetFormatError(path, 1, f"no {title!r} column in the label sheet")
        cols[key] = header.index(title)
    labels: dict[tuple[int, int], FallLabel] = {}
    task_id: int | None = None
    for number, row in enumerate(rows[1:], start=2):
        cells = [*row, *([""] * (max(cols.values()) + 1 - len(row)))]
        if not any(c.strip() for c in cells):
            continue
        task_cell = cells[cols["task"]].strip()
        if task_cell:
            m = _TASK_CELL.match(task_cell)
            if m is None:
                raise DatasetFormatError(path, number, f"task cell {task_cell!r} is not 'Fnn (id)'")
            task_id = int(m.group(2))
            task = KFALL_TASKS.get(task_id)
            if task is None or task.code != m.group(1) or not task.is_fall:
                raise DatasetFormatError(
                    path, number, f"task {task_cell!r} is not a fall of KFall's task table"
                )
        if task_id is None:
            raise DatasetFormatError(path, number, "a trial row before any task code")
        trial = _whole(cells[cols["trial"]], path, number, "trial id")
        onset = _whole(cells[cols["onset"]], path, number, "onset frame")
        impact = _whole(cells[cols["impact"]], path, number, "impact frame")
        if not 0 < onset < impact:
            raise DatasetFormatError(
                path, number, f"onset frame {onset} must be positive and before impact {impact}"
            )
        if (task_id, trial) in labels:
            raise DatasetFormatError(path, number, f"task {task_id} trial {trial} labelled twice")
        labels[(task_id, trial)] = FallLabel(onset, impact)
    return labels


def _whole(text: str, path: Path, row: int, what: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise DatasetFormatError(path, row, f"{what} {text!r} is not a number") from None
    if not (math.isfinite(value) and value == int(value)):
        raise DatasetFormatError(path, row, f"{what} {text!r} is not a whole number")
    return int(value)


def fall_label(sensor_file: str | Path, name: KFallName) -> FallLabel:
    """The onset and impact of a fall recording, from its subject's label file."""
    labels_at = label_path(sensor_file, name.subject)
    if not labels_at.is_file():
        raise DatasetFormatError(
            sensor_file, 1, f"a KFall fall without its label file ({labels_at} is missing)"
        )
    label = read_labels(labels_at).get((name.task_id, name.trial))
    if label is None:
        raise DatasetFormatError(
            labels_at, 1, f"no label for task {name.task_id} trial {name.trial} ({sensor_file})"
        )
    return label


_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
"""A decimal number as KFall writes them (``-0.027000000000000003``, ``1e-05``): not the
``nan``, ``inf`` or ``1_0`` that ``float`` takes too (a NaN sample passes every threshold
test unnoticed)."""
_N = r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"
_ROW = re.compile(rf"{_N},[^,]*,{_N},{_N},{_N},{_N},{_N},{_N},[^,]*,[^,]*,[^,]*")
"""A whole row that passes every check of :func:`iter_kfall` (eleven columns, the time and
the six readings each a :data:`_NUMBER`), those seven as groups: one match instead of a
split and seven."""


def iter_kfall(path: str | Path) -> Iterator[ImuSample]:
    """Stream a KFall sensor file at its native 100 Hz, raising on the first bad line."""
    n = 0
    for lineno, text in recording_lines(path, KFALL_BOUNDS):  # refuses a file too large
        body = text.strip()
        if lineno == 1:
            if tuple(c.strip() for c in body.split(",")) != HEADER:
                raise DatasetFormatError(path, 1, f"not a KFall sensor file header: {body!r}")
            continue
        if not body:
            continue
        row = _ROW.fullmatch(body)
        if row is not None:  # a well-formed row, in one match: what the checks below accept
            t, ax, ay, az, gx, gy, gz = map(float, row.groups())
            yield ImuSample(t, ax, ay, az, gx, gy, gz)
            n += 1
            continue
        parts = body.split(",")
        if len(parts) != len(HEADER):
            raise DatasetFormatError(
                path, lineno, f"expected {len(HEADER)} columns, found {len(parts)}"
            )
        if not all(_NUMBER.match(p) for p in (parts[0], *parts[2:8])):  # not nan, inf, 1_0
            raise DatasetFormatError(path, lineno, f"non-numeric column in {body!r}")
        t, ax, ay, az, gx, gy, gz = (float(p) for p in (parts[0], *parts[2:8]))
        yield ImuSample(t, ax, ay, az, gx, gy, gz)
        n += 1
    if n == 0:
        raise DatasetFormatError(path, 1, "no samples")


STANDING_TASKS = frozenset({1})
"""T01: standing still for 30 s."""
SITTING_TASKS = frozenset({11})
"""T11: sitting on a chair for 30 s."""
WALKING_TASKS = frozenset({6, 7, 8, 9})
"""T06-T09: walking and jogging (normal, quick) with turns."""


def read_kfall(path: str | Path) -> list[ImuSample]:
    """The whole KFall sensor file as a list (100 Hz)."""
    return list(iter_kfall(path))


def find_kfall(root: str | Path, tasks: frozenset[int] | None = None) -> list[Path]:
    """Every KFall sensor file under ``root`` (of task ids ``tasks``, when given), by name."""
    found = []
    for p in Path(root).rglob("*.csv"):
        name = parse_name(p)
        if name is not None and (tasks is None or name.task_id in tasks):
            found.append(p)
    return sorted(found, key=lambda p: p.name)
