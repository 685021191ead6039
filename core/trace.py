"""RetroGuard IMU traces: a small, self-describing CSV format (``retroguard-trace/1``).

One format for everything that records or replays samples: the monitor's
recorder, converted datasets (SisFall), synthesised scenarios and the
``replay``/``evaluate`` tools. Plain CSV so that a spreadsheet, pandas or
``awk`` read it without RetroGuard; a ``# key: value`` header so a file alone
says what its numbers mean (units, sensor, how the sensor sat on the body,
whether it holds a fall). The full specification is ``docs/trace-format.md``.

The reader is strict: a recording that is silently misread (a truncated copy,
a column shifted, time running backwards) would make a detector evaluation
lie, so every defect is an error naming the file and line.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, Self, get_args

from core.mounting import Mounting, MountingError
from core.samples import ImuSample

FORMAT = "retroguard-trace/1"
UNITS = "t=s accel=g gyro=deg/s"
COLUMNS = "t,ax,ay,az,gx,gy,gz"

Label = Literal["fall", "adl", "unknown"]
LABELS: tuple[Label, ...] = get_args(Label)
_LABEL_BY_NAME: dict[str, Label] = {lb: lb for lb in LABELS}

REQUIRED_KEYS = ("format", "sample_rate_hz", "units", "sensor", "mounting", "label")
OPTIONAL_KEYS = ("activity", "impact_t", "onset_t", "subject", "source", "description")
KNOWN_KEYS = REQUIRED_KEYS + OPTIONAL_KEYS

_KEY_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
_HEADER_RE = re.compile(r"# ([a-z][a-z0-9_]*): ?(.*)\Z")
_N_FIELDS = 7
_FIELD_NAMES = COLUMNS.split(",")

MAX_ACCEL_G = 32.0
"""Largest |ax|, |ay|, |az| a row may hold: twice the widest full scale of the MPU-6050 (and of
the datasets' ADXL345 and KFall's sensor), ±16 g. A saturated reading is the full scale, and a
calibration offset of a working chip is a few per cent of it, so a value beyond twice the
full scale is no reading of any of them (1e300 g, a column shifted into a counter)."""
MAX_GYRO_DPS = 4000.0
"""Largest |gx|, |gy|, |gz|: twice the widest gyro full scale, ±2000 deg/s, for the same reason
(the MPU-6050's zero-rate offset is ±20 deg/s, plus as much again over temperature)."""
MIN_INTERVAL_S = 0.5e-6
"""Shortest step from one sample's t to the next: half the format's 1 µs resolution. The writer
rounds t to 1 µs, so two times closer than that are one instant written twice (a 1 µs step is
already a 1 MHz rate; the MPU-6050 samples at 8 kHz at most). Half, not whole: two adjacent
microseconds read back as doubles may differ by a little less than 1e-6."""
MAX_INTERVAL_S = 60.0
"""Longest step from one sample's t to the next. A recording is one stream: the monitor counts
the IMU lost after at most 1 s without a sample (``safety.sample_timeout_s``) and ``record``
stops there; a minute without one is two recordings, not a gap to interpolate across (a
resampler would make rate x gap samples of it, for ever when the gap is 1e300 s)."""
MIN_RATE_HZ = 1.0 / MAX_INTERVAL_S
"""Slowest nominal ``sample_rate_hz``: one sample a minute (:data:`MAX_INTERVAL_S`)."""
MAX_RATE_HZ = 1e6
"""Fastest nominal ``sample_rate_hz``: one sample a microsecond, the format's resolution."""

PathLike = str | Path


class TraceFormatError(ValueError):
    """A defect in a trace file, located: ``str()`` is ``path:line: message``.

    The ``path:line:`` prefix is the compiler convention, so editors and CI
    logs link straight to the offending line.
    """

    def __init__(self, path: PathLike, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = str(path)
        self.line = line
        self.message = message


@dataclass(slots=True)
class TraceHeader:
    """The typed header of a trace; ``format`` and ``units`` are fixed and implied.

    ``extra`` keeps keys this version does not know, in file order, so a
    newer writer's metadata survives a read-modify-write by an older tool.
    """

    sample_rate_hz: float
    """Nominal output data rate; timestamps may jitter around it."""
    sensor: str
    """Free text, e.g. ``MPU-6050 (simulated)`` or ``ADXL345+ITG3200 (SisFall)``."""
    mounting: Mounting
    """Body direction of each sensor axis (:mod:`core.mounting`)."""
    label: Label = "unknown"
    """Ground truth of the whole trace: ``fall`` if it contains a fall, else ``adl``."""
    activity: str | None = None
    """Free activity code, e.g. SisFall's ``F02`` or ``D01``, or a scenario name."""
    impact_t: float | None = None
    """Time (same clock as the ``t`` column) of the labelled fall impact."""
    subject: str | None = None
    source: str | None = None
    """Where the data came from (file, dataset, generator and seed)."""
    description: str | None = None
    onset_t: float | None = None
    """Time of the labelled fall onset (the body starts to fall), as KFall labels it."""
    extra: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ``ValueError`` for a header that could not round-trip through a file."""
        if not (math.isfinite(self.sample_rate_hz) and self.sample_rate_hz > 0):
            raise ValueError(
                f"sample_rate_hz must be positive and finite, not {self.sample_rate_hz}"
            )
        problem = _rate_problem(self.sample_rate_hz)
        if problem is not None:
            raise ValueError(problem)
        if self.label not in LABELS:
            raise ValueError(f"label must be one of {', '.join(LABELS)}, not {self.label!r}")
        if self.impact_t is not None and not math.isfinite(self.impact_t):
            raise ValueError(f"impact_t must be finite, not {self.impact_t}")
        if self.onset_t is not None and not math.isfinite(self.onset_t):
            raise ValueError(f"onset_t must be finite, not {self.onset_t}")
        for key, value in self._items():
            if key in self.extra and key in KNOWN_KEYS:
                raise ValueError(f"extra key {key!r} collides with a standard header key")
            if not _KEY_RE.match(key):
                raise ValueError(f"header key {key!r} must match [a-z][a-z0-9_]*")
            if "\n" in value or "\r" in value:
                raise ValueError(f"header value of {key!r} must be a single line")
            if value != value.strip():
                raise ValueError(f"header value of {key!r} has leading or trailing blanks")
        if not self.sensor:
            raise ValueError("sensor must not be empty")

    def _items(self) -> list[tuple[str, str]]:
        """Header lines in writing order (the same text the reader parses back)."""
        items = [
            ("format", FORMAT),
            ("sample_rate_hz", _fmt_float(self.sample_rate_hz)),
            ("units", UNITS),
            ("sensor", self.sensor),
            ("mounting", str(self.mounting)),
            ("label", self.label),
        ]
        optional: list[tuple[str, str | None]] = [
            ("activity", self.activity),
            ("impact_t", None if self.impact_t is None else _fmt_float(self.impact_t)),
            ("onset_t", None if self.onset_t is None else _fmt_float(self.onset_t)),
            ("subject", self.subject),
            ("source", self.source),
            ("description", self.description),
        ]
        items.extend((k, v) for k, v in optional if v is not None)
        items.extend(self.extra.items())
        return items


@dataclass(slots=True)
class Trace:
    """A whole trace in memory. For long recordings prefer :func:`iter_trace`."""

    header: TraceHeader
    samples: list[ImuSample]

    @property
    def duration(self) -> float:
        """Seconds from the first to the last sample (0 for fewer than two)."""
        return self.samples[-1].t - self.samples[0].t if len(self.samples) > 1 else 0.0


def _rate_problem(rate: float) -> str | None:
    """Why a positive nominal rate cannot be a trace's (None if it can)."""
    if MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        return None
    return (
        f"sample_rate_hz {rate:g} is outside {MIN_RATE_HZ:g}-{MAX_RATE_HZ:g} Hz "
        f"(one sample every {MAX_INTERVAL_S:g} s to one every µs, the format's resolution)"
    )


def _value_problem(sample: ImuSample) -> str | None:
    """Why a sample's values are no IMU reading: the first column that is not finite or is
    beyond :data:`MAX_ACCEL_G` / :data:`MAX_GYRO_DPS` (None if every one is a reading)."""
    bad = [n for n, v in zip(_FIELD_NAMES, sample, strict=True) if not math.isfinite(v)]
    if bad:
        return f"non-finite value in column {', '.join(bad)}"
    for name, value in zip(_FIELD_NAMES[1:], sample[1:], strict=True):
        accel = name.startswith("a")
        limit = MAX_ACCEL_G if accel else MAX_GYRO_DPS
        if abs(value) > limit:
            unit, full = ("g", 16) if accel else ("deg/s", 2000)
            return (
                f"column {name}: {value:g} {unit} is beyond ±{limit:g} {unit}, twice the widest "
                f"full scale of an MPU-6050 (±{full} {unit}): not a reading"
            )
    return None


def _step_problem(t: float, last_t: float) -> str | None:
    """Why ``t`` cannot follow ``last_t`` (None if it can)."""
    if t <= last_t:
        return (
            f"t={t!r} is not after the previous sample's t={last_t!r} (time must strictly increase)"
        )
    step = t - last_t
    if step < MIN_INTERVAL_S:
        return (
            f"t={t!r} is {step:g} s after the previous sample's t={last_t!r}: closer than the "
            "format's 1 µs resolution (no sensor samples that fast)"
        )
    if step > MAX_INTERVAL_S:
        return (
            f"t={t!r} is {step:g} s after the previous sample's t={last_t!r}: a gap of more "
            f"than {MAX_INTERVAL_S:g} s is two recordings, not one (split the file there)"
        )
    return None


SPAN_SLACK = 2.0
"""How much longer than their nominal time (rows at ``sample_rate_hz``) a trace's rows may
span, beside one :data:`MAX_INTERVAL_S` of gaps: jitter and the odd lost second are far less.
Unbounded, 438,596 rows a minute apart under a 100 Hz header (9 MB) were 7,300 hours, which
``replay`` and ``evaluate`` resample to 200 Hz: 5 billion samples, hours of a "hang"."""


def _span_problem(t: float, first_t: float, rows: int, rate: float) -> str | None:
    """Why ``rows`` rows from ``first_t`` to ``t`` are not a trace at ``rate`` (None if they
    can be): they span more than :data:`SPAN_SLACK` times their nominal time plus a gap."""
    span = t - first_t
    nominal = (rows - 1) / rate
    if span <= SPAN_SLACK / rate * (rows - 1) + MAX_INTERVAL_S:  # as the reader computes it
        return None
    return (
        f"t={t!r}: {rows:,} rows span {span:g} s, over twice the {nominal:g} s they take at the "
        f"header's sample_rate_hz {rate:g} (with {MAX_INTERVAL_S:g} s of gaps): the rows are "
        "not at the header's rate"
    )


def _fmt_float(x: float) -> str:
    """Shortest text that reads back as exactly ``x`` (``200`` rather than ``200.0``)."""
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


# ---------------------------------------------------------------- writing


class TraceWriter:
    """Stream samples into a new trace file.

    The header is written (and flushed) on construction, rows as they come.
    :meth:`write_many` flushes after each batch and :meth:`close` flushes, so
    a recorder that dies loses at most the batch in progress; the reader
    reports a half-written last line as truncated rather than misreading it.
    Rows hold t to 1 µs, acceleration to 1e-6 g and angular rate to 1e-4 °/s,
    finer than the MPU-6050's least significant bit at any range.

    Writing is file I/O: keep it off the real-time thread (hand batches over a
    queue), as ``architecture.md`` requires.
    """

    def __init__(self, path: PathLike, header: TraceHeader) -> None:
        header.validate()
        self.path = Path(path)
        self.header = header
        self._last_t = -math.inf
        self._first_t = 0.0
        self._rows = 0
        self._file: IO[str] | None = open(  # noqa: SIM115 - closed by close()/__exit__
            self.path, "w", encoding="utf-8", newline="\n"
        )
        lines = [f"# {k}: {v}".rstrip() for k, v in header._items()]
        self._file.write("\n".join(lines) + "\n" + COLUMNS + "\n")
        self._file.flush()

    @property
    def rows_written(self) -> int:
        return self._rows

    def write(self, sample: ImuSample) -> None:
        """Append one sample (buffered). Raises ``ValueError`` on an invalid sample.

        Checks the same rules the reader enforces, after rounding, so a writer
        can never produce a file its reader rejects.
        """
        f = self._file
        if f is None:
            raise ValueError(f"trace {self.path} is closed")
        problem = _value_problem(sample)
        if problem is not None:
            raise ValueError(f"{problem} (sample {sample})")
        row = (
            f"{sample.t:.6f},{sample.ax:.6f},{sample.ay:.6f},{sample.az:.6f},"
            f"{sample.gx:.4f},{sample.gy:.4f},{sample.gz:.4f}\n"
        )
        t = float(row[: row.index(",")])
        if t <= self._last_t:
            raise ValueError(
                f"t={sample.t!r} does not increase on the previous sample (t={self._last_t!r}) "
                "at the file's 1 µs resolution"
            )
        if self._last_t != -math.inf:
            problem = _step_problem(t, self._last_t) or _span_problem(
                t, self._first_t, self._rows + 1, self.header.sample_rate_hz
            )
            if problem is not None:
                raise ValueError(problem)
        else:
            self._first_t = t
        self._last_t = t
        f.write(row)
        self._rows += 1

    def write_many(self, samples: Iterable[ImuSample]) -> None:
        """Append a batch of samples and flush them to the operating system."""
        for s in samples:
            self.write(s)
        self.flush()

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Flush and close. Idempotent."""
        f, self._file = self._file, None
        if f is not None:
            f.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def write_trace(path: PathLike, header: TraceHeader, samples: Iterable[ImuSample]) -> None:
    """Write a whole trace in one call."""
    with TraceWriter(path, header) as w:
        w.write_many(samples)


# ---------------------------------------------------------------- reading


MAX_LINE = 4096
"""Characters read per line at most: a row is about 60, a header line well under 1,000."""
MAX_TRACE_BYTES = 25_000_000
"""The largest trace a reader opens: 33 minutes at 200 Hz (a row is 63 bytes), ten times the
longest recording RetroGuard makes or converts (SisFall's 180 s, a ``record`` of a session's
stage) and as long as the datasets' own bound (``tools.datasets.limits``, 30 minutes).
Why a bound: :func:`read_trace` (a replayed scenario) and ``evaluate`` (a fall's samples, a
time-reversed run) hold a recording whole, some 285 bytes a sample in Python, 4.5 times the
file: 25 MB of trace is 113 MB, which a 512 MB Pi holds beside the monitor; a disk image or a
runaway capture under a trace's name would not fit. Checked before the first line is read."""
MAX_TRACE_LINES = MAX_TRACE_BYTES // 57
"""Lines read at most (header included): :data:`MAX_TRACE_BYTES` of the shortest row the writer
writes (57 bytes, every value zero). A device or a pipe (``/dev/zero``, ``yes``) has no size
to check first; this bound stops it as it is read."""
MAX_HEADER_LINES = 200
"""Header lines read at most: the format has 12 keys, and a writer's extra keys are a few; each
line is kept until the header is parsed (up to :data:`MAX_LINE` characters), so 200 of them are
at most 0.8 MB where a pipe of endless distinct keys would fill memory."""


class TraceReader:
    """An open trace: the header is parsed on construction, samples on iteration.

    Iterating streams rows one by one with constant memory, so an hours-long
    recording replays on a Pi Zero. Use as a context manager (or call
    :meth:`close`) to release the file early.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = str(path)
        # utf-8-sig: tolerate the byte-order mark some spreadsheet exports add.
        self._file: IO[str] = open(path, encoding="utf-8-sig")  # noqa: SIM115 - closed by close()
        self._line = 0
        try:
            size = os.fstat(self._file.fileno()).st_size  # a device or pipe says 0
            if size > MAX_TRACE_BYTES:
                raise self._error(
                    f"{size:,} bytes, over the {MAX_TRACE_BYTES:,} ({_megabytes(MAX_TRACE_BYTES)}, "
                    "33 minutes at 200 Hz) a trace may have: not a recording? (split a longer "
                    "one)",
                    1,
                )
            self.header = self._read_header()
        except UnicodeDecodeError:
            self._file.close()
            raise self._not_text(self._line) from None
        except BaseException:
            self._file.close()
            raise

    def _lines(self) -> Iterator[str]:
        """The file's lines, none longer than :data:`MAX_LINE` characters.

        A plain ``for line in file`` reads a line whole, however long: a file
        with no newline (``/dev/zero``, a corrupted dump) would fill memory.
        Cut at the limit, such a line simply fails to parse as a row.
        """
        return iter(functools.partial(self._file.readline, MAX_LINE), "")

    def _not_text(self, line: int) -> TraceFormatError:
        # The decoder works in chunks, so the bad byte is on this line or a later one.
        return self._error("not UTF-8 text (at or after this line): not a trace file", line + 1)

    def _too_long(self) -> TraceFormatError:
        return self._error(
            f"more than {MAX_TRACE_LINES:,} lines, the most {_megabytes(MAX_TRACE_BYTES)} of rows "
            "hold (a trace's bound): not a recording?"
        )

    def _error(self, message: str, line: int | None = None) -> TraceFormatError:
        return TraceFormatError(self.path, self._line if line is None else line, message)

    def _read_header(self) -> TraceHeader:
        values: dict[str, str] = {}
        key_lines: dict[str, int] = {}
        for raw in self._lines():
            self._line += 1
            text = raw.rstrip("\n")
            if not text.startswith("#"):
                if not values:
                    raise self._error(f"not a trace: the first line must be '# format: {FORMAT}'")
                if text.rstrip("\r") == COLUMNS:
                    if not raw.endswith("\n"):
                        raise self._error("file ends after the column line without a newline")
                    return self._build_header(values, key_lines)
                raise self._error(
                    f"expected a '# key: value' header line or the column line {COLUMNS!r}, "
                    f"got {_clip(text)!r}"
                )
            if self._line > MAX_HEADER_LINES:  # every line so far was a header line
                raise self._error(
                    f"more than {MAX_HEADER_LINES} header lines and no column line: not a trace?"
                )
            m = _HEADER_RE.match(text.rstrip("\r"))
            if m is None:
                raise self._error(
                    f"bad header line {_clip(text)!r}: expected '# key: value' "
                    "with a lower-case key"
                )
            key, value = m.group(1), m.group(2).strip()
            if key in values:
                raise self._error(f"duplicate header key {key!r} (first on line {key_lines[key]})")
            if not values and key != "format":
                raise self._error(f"not a trace: the first line must be '# format: {FORMAT}'")
            if key == "format" and value != FORMAT:
                raise self._error(
                    f"unsupported format {value!r}: this reader understands {FORMAT!r}"
                )
            values[key] = value
            key_lines[key] = self._line
        if not values:
            raise self._error(f"empty file: expected '# format: {FORMAT}'")
        raise self._error(f"file ends inside the header: no column line {COLUMNS!r}")

    def _build_header(self, values: dict[str, str], lines: dict[str, int]) -> TraceHeader:
        missing = [k for k in REQUIRED_KEYS if k not in values]
        if missing:
            raise self._error(
                f"header lacks required key{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
            )

        def number(key: str) -> float:
            try:
                x = float(values[key])
            except ValueError:
                x = math.nan
            if not math.isfinite(x) or "_" in values[key]:
                raise self._error(f"{key}: {values[key]!r} is not a finite number", lines[key])
            return x

        rate = number("sample_rate_hz")
        if rate <= 0:
            raise self._error(
                f"sample_rate_hz must be positive, not {rate}", lines["sample_rate_hz"]
            )
        problem = _rate_problem(rate)
        if problem is not None:
            raise self._error(problem, lines["sample_rate_hz"])
        if " ".join(values["units"].split()) != UNITS:
            raise self._error(
                f"units {values['units']!r} unsupported: expected {UNITS!r}", lines["units"]
            )
        if not values["sensor"]:
            raise self._error("sensor must not be empty", lines["sensor"])
        try:
            mounting = Mounting.parse(values["mounting"])
        except MountingError as e:
            raise self._error(f"mounting: {e}", lines["mounting"]) from None
        label = values["label"]
        if label not in _LABEL_BY_NAME:
            raise self._error(
                f"label {label!r} unknown: expected one of {', '.join(LABELS)}", lines["label"]
            )
        return TraceHeader(
            sample_rate_hz=rate,
            sensor=values["sensor"],
            mounting=mounting,
            label=_LABEL_BY_NAME[label],
            activity=values.get("activity"),
            impact_t=number("impact_t") if "impact_t" in values else None,
            subject=values.get("subject"),
            source=values.get("source"),
            description=values.get("description"),
            onset_t=number("onset_t") if "onset_t" in values else None,
            extra={k: v for k, v in values.items() if k not in KNOWN_KEYS},
        )

    def __iter__(self) -> Iterator[ImuSample]:
        """Yield the samples, validating each row; closes the file at the end."""
        f = self._file
        line = self._line
        last_t = -math.inf
        isfinite = math.isfinite
        sample = ImuSample
        a_max, g_max = MAX_ACCEL_G, MAX_GYRO_DPS
        min_step, max_step = MIN_INTERVAL_S, MAX_INTERVAL_S
        max_lines = MAX_TRACE_LINES
        rate = self.header.sample_rate_hz
        slack = SPAN_SLACK / rate  # seconds a row may add to the span, beside one gap
        first_t = 0.0
        rows = 0
        try:
            for raw in self._lines():
                line += 1
                if line > max_lines:
                    self._line = line
                    raise self._too_long()
                parts = raw.split(",")
                try:
                    if "_" in raw:  # float() accepts "1_0"; the format does not
                        raise ValueError
                    t, ax, ay, az, gx, gy, gz = map(float, parts)
                except ValueError:
                    self._line = line
                    raise self._row_error(raw, parts) from None
                # One chain of comparisons for the common case; nan fails every one, and
                # inf is beyond the bounds, so this is also the finiteness test.
                if not (
                    isfinite(t)
                    and -a_max <= ax <= a_max
                    and -a_max <= ay <= a_max
                    and -a_max <= az <= a_max
                    and -g_max <= gx <= g_max
                    and -g_max <= gy <= g_max
                    and -g_max <= gz <= g_max
                ):
                    self._line = line
                    problem = _value_problem(sample(t, ax, ay, az, gx, gy, gz))
                    assert problem is not None
                    raise self._error(problem)
                if not min_step <= t - last_t <= max_step and last_t != -math.inf:
                    self._line = line
                    problem = _step_problem(t, last_t)
                    assert problem is not None
                    raise self._error(problem)
                if rows == 0:
                    first_t = t
                elif t - first_t > slack * rows + max_step:
                    self._line = line
                    problem = _span_problem(t, first_t, rows + 1, rate)
                    assert problem is not None
                    raise self._error(problem)
                rows += 1
                last_t = t
                yield sample(t, ax, ay, az, gx, gy, gz)
            self._line = line
        except UnicodeDecodeError:
            raise self._not_text(line) from None
        finally:
            f.close()

    def _row_error(self, raw: str, parts: list[str]) -> TraceFormatError:
        text = raw.rstrip("\r\n")
        if not text.strip():
            return self._error("blank line in the data section")
        if text.startswith("#"):
            return self._error("header line after the column line")
        if not raw.endswith("\n"):
            # A row cut short mid-write: name it as such rather than as a bad number.
            return self._error(
                f"truncated last line {_clip(text)!r}: {len(parts)} of {_N_FIELDS} fields "
                "and no newline (the file was probably cut off while being written)"
            )
        if len(parts) != _N_FIELDS:
            return self._error(f"expected {_N_FIELDS} fields ({COLUMNS}), got {len(parts)}")
        for name, part in zip(_FIELD_NAMES, parts, strict=True):
            try:
                if "_" in part:
                    raise ValueError
                float(part)
            except ValueError:
                return self._error(f"column {name}: {_clip(part.strip())!r} is not a number")
        return self._error(f"unparseable row {_clip(text)!r}")  # pragma: no cover - defensive

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _megabytes(n: int) -> str:
    return f"{n / 1e6:g} MB"


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def open_trace(path: PathLike) -> TraceReader:
    """Open a trace: ``reader.header`` at once, samples by iterating ``reader``."""
    return TraceReader(path)


def iter_trace(path: PathLike) -> Iterator[ImuSample]:
    """Stream the samples of a trace with constant memory (the header is validated too).

    The file is opened on the first ``next()``, as for any generator, and
    closed when the iteration ends or the generator is closed.
    """
    reader = TraceReader(path)
    yield from reader


def read_header(path: PathLike) -> TraceHeader:
    """Read and validate only the header of a trace."""
    with TraceReader(path) as reader:
        return reader.header


def read_trace(path: PathLike) -> Trace:
    """Read a whole trace into memory, validating every line."""
    reader = TraceReader(path)
    return Trace(reader.header, list(reader))
