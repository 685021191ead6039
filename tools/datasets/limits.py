"""How large a recording file may be before a loader refuses it, and the reading that holds
every file to it.

A loader used to read whatever it was given: a file named like a recording but gigabytes long
(a disk image, a log, a runaway capture) filled memory row by row (``read_sisfall`` keeps
every sample), and a binary file without line breaks was one "line" read whole. Each bound
is ten times the largest recording of the dataset, measured on the development subsets
(``../shared/datasets/unpack`` and ``unpack-kfall``), rounded up:

* SisFall: the largest file 1,724,078 bytes (``SE01/D04_SE01_R01.txt``), the longest
  36,000 rows (180 s at 200 Hz);
* KFall: the largest sensor file 431,740 bytes (``SA07/S07T12R01.csv``), the longest 3,311
  rows (33 s at 100 Hz); the largest label workbook part 12,690 bytes, 78 rows.

A file over a bound is a :class:`DatasetFormatError` naming it and the bound (``evaluate``
counts it as skipped), before it is read; the bounds are also kept while reading, as a
device or pipe (``/dev/zero`` under a recording's name) has no size to check first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tools.datasets.errors import DatasetFormatError

MAX_LINE_CHARS = 1_000
"""A recording's line is some 50 (SisFall) or 200 (KFall) characters; a longer one is not a
recording's (binary data has no line breaks to stop at)."""
MAX_LABEL_PART_BYTES = 1_000_000
"""An ``.xlsx`` part (a label sheet, its shared strings) unpacked: KFall's are 13 kB."""
MAX_LABEL_ROWS = 10_000
"""A label sheet's rows: KFall's have 78 (a row numbered a billion would be a billion rows)."""


@dataclass(frozen=True)
class Bounds:
    """One dataset's bounds and how its files are named in the messages."""

    what: str
    max_bytes: int
    max_rows: int


SISFALL_BOUNDS = Bounds("SisFall recording", 20_000_000, 360_000)
"""10x the largest SisFall file (1.7 MB) and the longest one's rows (36,000, 180 s at 200 Hz):
at most 30 minutes at 200 Hz."""
KFALL_BOUNDS = Bounds("KFall sensor file", 5_000_000, 40_000)
"""10x the largest KFall sensor file (432 kB) and the longest one's rows (3,311, 33 s at
100 Hz): at most 6.7 minutes at 100 Hz."""


def _megabytes(n: int) -> str:
    return f"{n / 1e6:g} MB"


def recording_lines(path: str | Path, bounds: Bounds) -> Iterator[tuple[int, str]]:
    """The file's lines, numbered from 1, each with its line break; a
    :class:`DatasetFormatError` naming the file and line, instead of the line, for a file
    over ``bounds`` (its size first, then as read), a line over :data:`MAX_LINE_CHARS` and
    a line with bytes that are not text (NUL, or not ASCII)."""
    try:
        size = Path(path).stat().st_size
    except OSError as exc:
        raise DatasetFormatError(path, 1, f"cannot read: {exc.strerror or exc}") from None
    if size > bounds.max_bytes:
        raise DatasetFormatError(
            path,
            1,
            f"{_megabytes(size)}, over the {_megabytes(bounds.max_bytes)} a {bounds.what} may "
            "have (ten times the largest known): not a recording?",
        )
    read = rows = lineno = 0
    with open(path, encoding="ascii", errors="replace") as f:
        while text := f.readline(MAX_LINE_CHARS + 1):  # blank lines too: bounded by bytes
            lineno += 1
            read += len(text)
            if len(text) > MAX_LINE_CHARS:
                raise DatasetFormatError(
                    path,
                    lineno,
                    f"a line over {MAX_LINE_CHARS} characters: not a {bounds.what} (binary data?)",
                )
            if "\x00" in text or "\ufffd" in text:
                raise DatasetFormatError(
                    path, lineno, f"bytes that are not ASCII text: not a {bounds.what}"
                )
            if read > bounds.max_bytes:
                raise DatasetFormatError(
                    path,
                    lineno,
                    f"over the {_megabytes(bounds.max_bytes)} a {bounds.what} may have",
                )
            if text.strip():
                rows += 1
                if rows > bounds.max_rows:
                    raise DatasetFormatError(
                        path,
                        lineno,
                        f"over the {bounds.max_rows:,} rows a {bounds.what} may have "
                        "(ten times the longest known)",
                    )
            yield lineno, text
