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

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.samples import ImuSample
from tools.datasets.errors import DatasetFormatError

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

BACKWARD_FALL_CODES = frozenset({"F02", "F11", "F14"})
"""SisFall falls that go backward (the ones that matter most for RetroGuard)."""
WALKING_FALL_CODES = frozenset({"F01", "F02", "F03", "F04", "F05", "F06", "F07"})
"""Falls that start while walking or jogging: the trip must come before impact."""
WALKING_ADL_CODES = frozenset({"D01", "D02", "D03", "D04"})
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
    if not body.endswith(";"):
        raise DatasetFormatError(path, lineno, f"line does not end with ';' (truncated?): {body!r}")
    parts = body[:-1].split(",")
    if len(parts) != _COLUMNS:
        raise DatasetFormatError(
            path, lineno, f"expected {_COLUMNS} comma-separated columns, found {len(parts)}"
        )
    try:
        ax, ay, az = (int(p) for p in parts[first : first + 3])
        gx, gy, gz = (int(p) for p in parts[3:6])
    except ValueError:
        raise DatasetFormatError(path, lineno, f"non-integer column in {body!r}") from None
    w = GYRO_DPS_PER_COUNT
    return ImuSample(t, ax * a, ay * a, az * a, gx * w, gy * w, gz * w)


def iter_sisfall(path: str | Path, accelerometer: str = "adxl345") -> Iterator[ImuSample]:
    """Stream a SisFall file at its native 200 Hz, raising on the first bad line.

    Blank lines (the files end with one) are skipped; a file with no sample at
    all is an error, because silently scoring nothing would look like a pass.
    """
    period = 1.0 / SISFALL_RATE_HZ
    i = 0
    with open(path, encoding="ascii", errors="replace") as f:
        for lineno, text in enumerate(f, start=1):
            if not text.strip():
                continue
            yield parse_line(text, path, lineno, i * period, accelerometer)
            i += 1
    if i == 0:
        raise DatasetFormatError(path, 1, "no samples")


def read_sisfall(path: str | Path, accelerometer: str = "adxl345") -> list[ImuSample]:
    """The whole SisFall file as a list (200 Hz)."""
    return list(iter_sisfall(path, accelerometer))


def find_sisfall(root: str | Path) -> list[Path]:
    """Every SisFall recording under ``root``, sorted by name (deterministic)."""
    return sorted(
        (p for p in Path(root).rglob("*.txt") if parse_name(p) is not None),
        key=lambda p: (p.name, str(p)),
    )
