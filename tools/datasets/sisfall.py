"""SisFall recordings as :class:`ImuSample` streams.

SisFall (Sucerquia, López, Vargas-Bonilla, *Sensors* 17(1):198, 2017) records
a waist device at 200 Hz. Each line holds nine integer columns and ends with
``;``: ADXL345 acceleration x, y, z (13 bit, ±16 g), ITG3200 angular rate x, y,
z (16 bit, ±2000 °/s), MMA8451Q acceleration x, y, z (14 bit, ±8 g). Raw counts
become physical units with ``value * (2 * range) / 2**bits``. The ADXL345 is
the accelerometer by default; the MMA8451Q (same board, same axes) can be
read instead (``accelerometer="mma8451q"``): a second sensor with its own
noise, scale errors and an 8 g ceiling, i.e. another "dataset" to check
that the detector does not depend on one chip.

The sensor axes differ from our belt's; that is fine, because the detector
learns gravity online. Timestamps are synthesised from the line index (the
files have none): ``t = index / 200``.

File names are ``<CODE>_<SUBJECT>_<TRIAL>.txt`` (``F02_SA01_R01.txt``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.samples import ImuSample
from tools.datasets.errors import DatasetFormatError
from tools.datasets.limits import MAX_LINE_CHARS, SISFALL_BOUNDS, recording_lines
from tools.datasets.tasks import Activity, Task

SISFALL_RATE_HZ = 200.0
ACCEL_G_PER_COUNT = 2 * 16 / 2**13
"""ADXL345 at ±16 g, 13 bit: 32/8192 g per count."""
GYRO_DPS_PER_COUNT = 2 * 2000 / 2**16
"""ITG3200 at ±2000 °/s, 16 bit: 4000/65536 °/s per count."""
MMA8451Q_G_PER_COUNT = 2 * 8 / 2**14
"""MMA8451Q at ±8 g, 14 bit: 16/16384 g per count."""
_COLUMNS = 9
ACCELEROMETERS: dict[str, tuple[int, float]] = {
    "adxl345": (0, ACCEL_G_PER_COUNT),
    "mma8451q": (6, MMA8451Q_G_PER_COUNT),
}
"""The two accelerometers of a SisFall line: first column, g per count."""

_NAME = re.compile(r"^(?P<code>[DF]\d\d)_(?P<subject>S[AE]\d\d)_(?P<trial>R\d\d)\.txt$")

_A = Activity
SISFALL_TASKS: dict[str, Task] = {
    t.code: t
    for t in (
        Task("D01", "Walking slowly", _A.WALKING),
        Task("D02", "Walking quickly", _A.WALKING),
        Task("D03", "Jogging slowly", _A.JOGGING),
        Task("D04", "Jogging quickly", _A.JOGGING),
        Task("D05", "Walking upstairs and downstairs slowly", _A.STAIRS),
        Task("D06", "Walking upstairs and downstairs quickly", _A.STAIRS),
        Task(
            "D07",
            "Slowly sit in a half height chair, wait a moment, and up slowly",
            _A.OTHER_ADL,
        ),
        Task(
            "D08",
            "Quickly sit in a half height chair, wait a moment, and up quickly",
            _A.OTHER_ADL,
        ),
        Task("D09", "Slowly sit in a low height chair, wait a moment, and up slowly", _A.OTHER_ADL),
        Task(
            "D10",
            "Quickly sit in a low height chair, wait a moment, and up quickly",
            _A.OTHER_ADL,
        ),
        Task("D11", "Sitting a moment, trying to get up, and collapse into a chair", _A.OTHER_ADL),
        Task("D12", "Sitting a moment, lying slowly, wait a moment, and sit again", _A.LYING_DOWN),
        Task("D13", "Sitting a moment, lying quickly, wait a moment, and sit again", _A.LYING_DOWN),
        Task(
            "D14",
            "Being on one's back change to lateral position, wait a moment, "
            "and change to one's back",
            _A.LYING_DOWN,
        ),
        Task("D15", "Standing, slowly bending at knees, and getting up", _A.OTHER_ADL),
        Task("D16", "Standing, slowly bending without bending knees, and getting up", _A.OTHER_ADL),
        Task("D17", "Standing, get into a car, remain seated and get out of the car", _A.OTHER_ADL),
        Task("D18", "Stumble while walking", _A.STUMBLE),
        Task("D19", "Gently jump without falling (trying to reach a high object)", _A.OTHER_ADL),
        Task("F01", "Fall forward while walking caused by a slip", _A.WALKING_FALL),
        Task("F02", "Fall backward while walking caused by a slip", _A.WALKING_FALL, True),
        Task("F03", "Lateral fall while walking caused by a slip", _A.WALKING_FALL),
        Task("F04", "Fall forward while walking caused by a trip", _A.WALKING_FALL),
        Task("F05", "Fall forward while jogging caused by a trip", _A.WALKING_FALL),
        Task("F06", "Vertical fall while walking caused by fainting", _A.WALKING_FALL),
        Task(
            "F07",
            "Fall while walking, with use of hands in a table to dampen fall, caused by fainting",
            _A.WALKING_FALL,
        ),
        Task("F08", "Fall forward when trying to get up", _A.FALL),
        Task("F09", "Lateral fall when trying to get up", _A.FALL),
        Task("F10", "Fall forward when trying to sit down", _A.FALL),
        Task("F11", "Fall backward when trying to sit down", _A.FALL, True),
        Task("F12", "Lateral fall when trying to sit down", _A.FALL),
        Task("F13", "Fall forward while sitting, caused by fainting or falling asleep", _A.FALL),
        Task(
            "F14",
            "Fall backward while sitting, caused by fainting or falling asleep",
            _A.FALL,
            backward=True,
        ),
        Task("F15", "Lateral fall while sitting, caused by fainting or falling asleep", _A.FALL),
    )
}
"""SisFall's protocol (its Readme), each activity in its :class:`Activity` group."""

BACKWARD_FALL_CODES = frozenset(c for c, t in SISFALL_TASKS.items() if t.backward)
"""SisFall falls that go backward (the ones that matter most for RetroGuard)."""
WALKING_FALL_CODES = frozenset(
    c for c, t in SISFALL_TASKS.items() if t.group is Activity.WALKING_FALL
)
"""Falls that start while walking or jogging: the trip must come before impact."""
WALKING_ADL_CODES = frozenset(
    c for c, t in SISFALL_TASKS.items() if t.group in (Activity.WALKING, Activity.JOGGING)
)
"""Walking and jogging: the trip output must never fire on these."""


@dataclass(frozen=True, slots=True)
class SisFallName:
    """What a SisFall file name says about its recording."""

    code: str
    subject: str
    trial: str

    @property
    def is_fall(self) -> bool:
        return self.code.startswith("F")


def parse_name(path: str | Path) -> SisFallName | None:
    """The code, subject and trial of a SisFall file, or None for other files."""
    m = _NAME.match(Path(path).name)
    if m is None:
        return None
    return SisFallName(m["code"], m["subject"], m["trial"])


def parse_line(
    text: str, path: str | Path, lineno: int, t: float, accelerometer: str = "adxl345"
) -> ImuSample:
    """One SisFall line (``"  2,-255, 17, -27, 121,-208, -70,-982, 234;"``) as a
    sample, the acceleration from ``accelerometer`` (a key of :data:`ACCELEROMETERS`)."""
    first, a = ACCELEROMETERS[accelerometer]
    body = text.strip()
    w = GYRO_DPS_PER_COUNT
    line = _LINE.fullmatch(body)
    if line is not None:  # a well-formed line, in one match: what the checks below accept
        ax, ay, az = map(int, line.group(first + 1, first + 2, first + 3))
        gx, gy, gz = map(int, line.group(4, 5, 6))
        return ImuSample(t, ax * a, ay * a, az * a, gx * w, gy * w, gz * w)
    if not body.endswith(";"):
        raise DatasetFormatError(
            path, lineno, f"line does not end with ';' (truncated?): {_shown(body)}"
        )
    parts = body[:-1].split(",")
    if len(parts) != _COLUMNS:
        raise DatasetFormatError(
            path, lineno, f"expected {_COLUMNS} comma-separated columns, found {len(parts)}"
        )
    if not all(_INTEGER.match(p) for p in parts):  # int() would take "1_000" and "+5"
        raise DatasetFormatError(path, lineno, f"non-integer column in {_shown(body)}")
    ax, ay, az = (int(p) for p in parts[first : first + 3])
    gx, gy, gz = (int(p) for p in parts[3:6])
    return ImuSample(t, ax * a, ay * a, az * a, gx * w, gy * w, gz * w)


_INTEGER = re.compile(r"^\s*-?\d+\s*$")
_LINE = re.compile(r"\s*(-?\d+)\s*," * (_COLUMNS - 1) + r"\s*(-?\d+)\s*;")
"""A whole line that passes every check of :func:`parse_line` (nine :data:`_INTEGER` columns
and the ``;``), its columns as groups: one match instead of a split and nine."""
_SHOWN = 80
"""How much of a bad line a message quotes."""


def _shown(body: str) -> str:
    return repr(body) if len(body) <= _SHOWN else f"{body[:_SHOWN]!r}..."


def iter_sisfall(path: str | Path, accelerometer: str = "adxl345") -> Iterator[ImuSample]:
    """Stream a SisFall file at its native 200 Hz, raising on the first bad line.

    Blank lines (the files end with one) are skipped; a file with no sample at
    all is an error, because silently scoring nothing would look like a pass.
    """
    period = 1.0 / SISFALL_RATE_HZ
    i = 0
    for lineno, text in recording_lines(path, SISFALL_BOUNDS):  # refuses a file too large
        if not text.strip():
            continue
        yield parse_line(text, path, lineno, i * period, accelerometer)
        i += 1
    if i == 0:
        raise DatasetFormatError(path, 1, "no samples")


def read_sisfall(path: str | Path, accelerometer: str = "adxl345") -> list[ImuSample]:
    """The whole SisFall file as a list (200 Hz): what :func:`iter_sisfall` yields, read in
    one pass when every line is well-formed (:func:`_read_well_formed`), else line by line,
    which refuses the first bad line at file:line."""
    samples = _read_well_formed(path, accelerometer)
    return samples if samples is not None else list(iter_sisfall(path, accelerometer))


_SHAPE = str.maketrans("", "", "0123456789- \t")
"""Deletes a well-formed line's numbers and blanks, leaving its shape: ``,,,,,,,,;``."""
_ROW_SHAPE = "," * (_COLUMNS - 1) + ";"


def _read_well_formed(path: str | Path, accelerometer: str) -> list[ImuSample] | None:
    """The file's samples when it holds nothing :func:`iter_sisfall` would refuse, read with
    no Python per line; None otherwise (or when it cannot be read), for the line-by-line
    reading to refuse it, saying where.

    What it accepts is what the line-by-line reading accepts with blanks that are spaces or
    tabs (anything else, a line break other than ``\\n`` included, goes line by line): within
    :data:`SISFALL_BOUNDS` (bytes, rows, line length), every line blank or, its numbers and
    blanks taken out, ``,,,,,,,,;`` (so ASCII, no NUL, no stray character), and every cell
    between two separators one whole number with blanks around it, which ``int`` checks (it
    refuses ``1 2``, ``--1``, ``1-`` and an empty cell; ``+``, ``_`` and letters are not in a
    line that got this far). The same samples, value for value: the same columns, scales and
    ``t = index / 200`` (``tests/test_datasets.py`` compares the two readings, on real
    recordings and on lines at the edge of what is well-formed). The whole text is in memory
    at once, as its samples are anyway."""
    try:
        if Path(path).stat().st_size > SISFALL_BOUNDS.max_bytes:
            return None
        with open(path, encoding="ascii", errors="replace") as f:  # as recording_lines reads
            text = f.read(SISFALL_BOUNDS.max_bytes + 1)
    except OSError:
        return None
    if len(text) > SISFALL_BOUNDS.max_bytes:
        return None
    lines = text.split("\n")
    if max(map(len, lines)) >= MAX_LINE_CHARS:  # with its line break, one more
        return None
    if not set(text.translate(_SHAPE).split("\n")) <= {"", _ROW_SHAPE}:
        return None
    cells = text.replace(";", ",").split(",")
    if cells.pop().strip():  # what follows the last row's ';' (its shape passed: digits)
        return None
    try:
        values = list(map(int, cells))  # each a whole number, blanks and line breaks around
    except ValueError:
        return None
    rows = len(values) // _COLUMNS
    if not 0 < rows <= SISFALL_BOUNDS.max_rows:
        return None
    first, a = ACCELEROMETERS[accelerometer]
    w = GYRO_DPS_PER_COUNT
    period = 1.0 / SISFALL_RATE_HZ

    def column(n: int, scale: float) -> list[float]:
        return [v * scale for v in values[n::_COLUMNS]]

    fields = zip(
        [i * period for i in range(rows)],
        column(first, a),
        column(first + 1, a),
        column(first + 2, a),
        column(3, w),
        column(4, w),
        column(5, w),
        strict=True,
    )
    # What ImuSample(*fields) makes (a NamedTuple's __new__ is tuple.__new__ in Python),
    # without a Python call a sample.
    return list(map(tuple.__new__, itertools.repeat(ImuSample, rows), fields))


def find_sisfall(root: str | Path) -> list[Path]:
    """Every SisFall recording under ``root``, sorted by name (deterministic)."""
    return sorted(
        (p for p in Path(root).rglob("*.txt") if parse_name(p) is not None),
        key=lambda p: (p.name, str(p)),
    )
