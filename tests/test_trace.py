"""The trace format: round trip, every malformed case, streaming."""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import re
import threading
import tracemalloc
from pathlib import Path

import pytest

from core.mounting import SISFALL_MOUNTING, UNKNOWN_MOUNTING, Mounting
from core.samples import ImuSample
from core.trace import (
    COLUMNS,
    MAX_HEADER_LINES,
    MAX_TRACE_BYTES,
    TraceFormatError,
    TraceHeader,
    TraceWriter,
    iter_trace,
    open_trace,
    read_header,
    read_trace,
    write_trace,
)

HEADER_LINES = [
    "# format: retroguard-trace/1",
    "# sample_rate_hz: 200",
    "# units: t=s accel=g gyro=deg/s",
    "# sensor: MPU-6050 (simulated)",
    "# mounting: x=right y=down z=forward",
    "# label: fall",
]
ROW = "0.000000,0.01,-1.0,0.02,0.1,0.2,0.3"


def _samples(n: int, rate: float = 200.0) -> list[ImuSample]:
    return [
        ImuSample(
            i / rate,
            0.01 * math.sin(i / 7),
            -1.0 + 0.3 * math.cos(i / 5),
            0.123456,
            25.5 * math.sin(i / 3),
            -12.25,
            0.0001 * i,
        )
        for i in range(n)
    ]


def _write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _file(header: list[str] | None = None, rows: list[str] | None = None) -> str:
    lines = (HEADER_LINES if header is None else header) + [COLUMNS]
    lines += [ROW] if rows is None else rows
    return "\n".join(lines) + "\n"


def _error(path: Path) -> TraceFormatError:
    with pytest.raises(TraceFormatError) as info:
        read_trace(path)
    return info.value


# ---------------------------------------------------------------- round trip


def test_round_trip_keeps_header_and_samples(tmp_path: Path) -> None:
    header = TraceHeader(
        sample_rate_hz=200.0,
        sensor="MPU-6050 (simulated)",
        mounting=Mounting.parse("x=down y=left z=forward"),
        label="fall",
        activity="F02",
        impact_t=12.345,
        subject="SA01",
        source="unit test",
        description="a backward slip: with colons: in it",
        extra={"operator": "jd", "treadmill_speed_mps": "0.6"},
    )
    samples = _samples(500)
    path = tmp_path / "rt.csv"
    with TraceWriter(path, header) as w:
        w.write_many(samples[:100])
        for s in samples[100:]:
            w.write(s)
        assert w.rows_written == 500

    trace = read_trace(path)
    assert trace.header == header
    assert list(trace.header.extra) == ["operator", "treadmill_speed_mps"]
    assert len(trace.samples) == len(samples)
    for got, want in zip(trace.samples, samples, strict=True):
        assert isinstance(got, ImuSample)
        assert got == pytest.approx(want, abs=1e-4)
    assert trace.duration == pytest.approx(499 / 200)
    assert list(iter_trace(path)) == trace.samples
    assert read_header(path) == header


def test_written_file_is_plain_csv_with_documented_header(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    header = TraceHeader(200.0, "MPU-6050", SISFALL_MOUNTING, "adl")
    write_trace(path, header, _samples(2))
    lines = path.read_text().splitlines()
    assert lines[:6] == [*HEADER_LINES[:3], "# sensor: MPU-6050", HEADER_LINES[4], "# label: adl"]
    assert lines[6] == COLUMNS
    assert lines[7] == "0.000000,0.000000,-0.700000,0.123456,0.0000,-12.2500,0.0000"
    assert len(lines) == 8 + 1


def test_unknown_mounting_and_optional_keys_absent(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    write_trace(path, TraceHeader(100.0, "x", UNKNOWN_MOUNTING), _samples(3, 100.0))
    assert "# mounting: unknown" in path.read_text()
    header = read_header(path)
    assert header.mounting == UNKNOWN_MOUNTING
    assert header.label == "unknown"
    assert header.impact_t is None and header.activity is None and header.extra == {}


def test_empty_data_section_is_a_valid_trace(tmp_path: Path) -> None:
    path = _write(tmp_path, _file(rows=[]))
    trace = read_trace(path)
    assert trace.samples == [] and trace.duration == 0.0


def test_reader_accepts_crlf_bom_and_missing_final_newline(tmp_path: Path) -> None:
    text = "\ufeff" + _file(rows=[ROW, "0.005,0,-1,0,0,0,0"]).replace("\n", "\r\n")
    path = tmp_path / "crlf.csv"
    path.write_bytes(text.rstrip("\r\n").encode())
    trace = read_trace(path)
    assert [s.t for s in trace.samples] == [0.0, 0.005]
    assert trace.header.sensor == "MPU-6050 (simulated)"


def test_mounting_partial_knowledge_fills_the_third_axis(tmp_path: Path) -> None:
    header = [*HEADER_LINES[:4], "# mounting: x=right y=down z=unknown", HEADER_LINES[5]]
    assert read_header(_write(tmp_path, _file(header))).mounting == SISFALL_MOUNTING


# ---------------------------------------------------------------- writer checks


def test_writer_rejects_what_the_reader_would_reject(tmp_path: Path) -> None:
    header = TraceHeader(200.0, "MPU-6050", SISFALL_MOUNTING)
    with TraceWriter(tmp_path / "w.csv", header) as w:
        w.write(ImuSample(1.0, 0, 0, 1, 0, 0, 0))
        with pytest.raises(ValueError, match="does not increase"):
            w.write(ImuSample(1.0000001, 0, 0, 1, 0, 0, 0))  # equal after rounding
        with pytest.raises(ValueError, match="non-finite"):
            w.write(ImuSample(2.0, math.nan, 0, 1, 0, 0, 0))
        with pytest.raises(ValueError, match="column az: 1e\\+300 g is beyond"):
            w.write(ImuSample(2.0, 0, 0, 1e300, 0, 0, 0))
        with pytest.raises(ValueError, match="column gx: -4001 deg/s is beyond"):
            w.write(ImuSample(2.0, 0, 0, 1, -4001, 0, 0))
        with pytest.raises(ValueError, match="more than 60 s"):
            w.write(ImuSample(62.0, 0, 0, 1, 0, 0, 0))
        w.write(ImuSample(2.0, 0, 0, 1, 0, 0, 0))
    with pytest.raises(ValueError, match="closed"):
        w.write(ImuSample(3.0, 0, 0, 1, 0, 0, 0))
    assert len(read_trace(tmp_path / "w.csv").samples) == 2


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"sample_rate_hz": 0.0}, "sample_rate_hz"),
        ({"sample_rate_hz": math.inf}, "sample_rate_hz"),
        ({"sample_rate_hz": 1e300}, "sample_rate_hz 1e\\+300 is outside"),
        ({"sample_rate_hz": 0.01}, "sample_rate_hz 0.01 is outside"),
        ({"sensor": ""}, "sensor"),
        ({"description": "two\nlines"}, "single line"),
        ({"subject": " SA01"}, "blanks"),
        ({"impact_t": math.nan}, "impact_t"),
        ({"extra": {"label": "adl"}}, "collides"),
        ({"extra": {"Bad Key": "1"}}, "must match"),
    ],
)
def test_writer_validates_header(tmp_path: Path, change: dict[str, object], match: str) -> None:
    fields: dict[str, object] = {
        "sample_rate_hz": 200.0,
        "sensor": "MPU-6050",
        "mounting": SISFALL_MOUNTING,
    }
    fields.update(change)
    header = TraceHeader(**fields)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=match):
        TraceWriter(tmp_path / "h.csv", header)


# ---------------------------------------------------------------- malformed files


def _replace(key: str, line: str | None) -> list[str]:
    """HEADER_LINES with the ``key`` line replaced by ``line`` (or dropped)."""
    out = []
    for h in HEADER_LINES:
        if h.startswith(f"# {key}:"):
            if line is not None:
                out.append(line)
        else:
            out.append(h)
    return out


@pytest.mark.parametrize(
    ("header", "line", "match"),
    [
        ([], 1, "not a trace"),
        (HEADER_LINES[1:], 1, "not a trace"),
        (_replace("format", "# format: retroguard-trace/2"), 1, "unsupported format"),
        ([*HEADER_LINES, "# label: adl"], 7, r"duplicate header key 'label' \(first on line 6\)"),
        ([*HEADER_LINES, "# note: a", "# note: b"], 8, "duplicate header key 'note'"),
        (_replace("mounting", None), 6, "lacks required key mounting"),
        (_replace("units", None)[:4], 5, "lacks required keys units, label"),
        (_replace("sample_rate_hz", "# sample_rate_hz: fast"), 2, "not a finite number"),
        (_replace("sample_rate_hz", "# sample_rate_hz: nan"), 2, "not a finite number"),
        (_replace("sample_rate_hz", "# sample_rate_hz: 2_00"), 2, "not a finite number"),
        (_replace("sample_rate_hz", "# sample_rate_hz: -5"), 2, "positive"),
        (
            _replace("sample_rate_hz", "# sample_rate_hz: 1e300"),
            2,
            r"outside 0.0166667-1e\+06 Hz \(one sample every 60 s",
        ),
        (_replace("sample_rate_hz", "# sample_rate_hz: 1e-300"), 2, "outside"),
        (_replace("units", "# units: t=ms accel=m/s2 gyro=rad/s"), 3, "units"),
        (_replace("sensor", "# sensor:"), 4, "sensor must not be empty"),
        (_replace("mounting", "# mounting: x=right y=down z=backward"), 5, "left-handed"),
        (_replace("mounting", "# mounting: x=up y=down z=left"), 5, "same body axis"),
        (_replace("mounting", "# mounting: x=up y=left"), 5, "does not name axis z"),
        (_replace("mounting", "# mounting: x=up y=sideways z=left"), 5, "sideways"),
        (_replace("label", "# label: maybe"), 6, "label 'maybe' unknown"),
        ([*HEADER_LINES, "# impact_t: soon"], 7, "impact_t"),
        ([*HEADER_LINES, "# Bad Key: 1"], 7, "bad header line"),
        ([*HEADER_LINES, "#comment without colon"], 7, "bad header line"),
        ([*HEADER_LINES, ""], 7, "expected a '# key: value' header line"),
        ([*HEADER_LINES, "t, ax, ay, az, gx, gy, gz"], 7, "column line"),
    ],
)
def test_malformed_header(tmp_path: Path, header: list[str], line: int, match: str) -> None:
    path = _write(tmp_path, _file(header))
    err = _error(path)
    assert err.line == line
    assert err.path == str(path)
    assert str(err).startswith(f"{path}:{line}: ")
    assert err.message in str(err)
    assert re.search(match, err.message), err.message


def test_file_ending_inside_the_header(tmp_path: Path) -> None:
    err = _error(_write(tmp_path, "\n".join(HEADER_LINES) + "\n"))
    assert (err.line, err.message) == (
        6,
        "file ends inside the header: no column line 't,ax,ay,az,gx,gy,gz'",
    )
    assert _error(_write(tmp_path, "", "empty.csv")).message.startswith("empty file")


GOOD = "0.010000,0,-1,0,0,0,0"


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (["0.01,0,-1,0,0,0"], r"expected 7 fields \(t,ax,ay,az,gx,gy,gz\), got 6"),
        (["0.01,0,-1,0,0,0,0,0"], "got 8"),
        (["0.01,0,-1.0.0,0,0,0,0"], "column ay: '-1.0.0' is not a number"),
        (["0.01,0,-1,0,0,0,"], "column gz: '' is not a number"),
        (["0.01,0,-1,0,1_0,0,0"], "column gx: '1_0' is not a number"),
        (["0.01,0,-1,0,0,nan,0"], "non-finite value in column gy"),
        (["inf,0,-1,0,0,0,-inf"], "non-finite value in column t, gz"),
        (["-0.01,0,-1,0,0,0,0"], r"t=-0.01 is not after the previous sample's t=0.0"),
        (["0.0,0,-1,0,0,0,0"], "strictly increase"),
        (["0.01,1e300,-1,0,0,0,0"], r"column ax: 1e\+300 g is beyond ±32 g, .*±16 g"),
        (["0.01,0,-32.001,0,0,0,0"], "column ay: -32.001 g is beyond ±32 g"),
        (["0.01,0,-1,0,0,4000.1,0"], r"column gy: 4000.1 deg/s is beyond ±4000 deg/s, .*±2000"),
        (["0.01,0,-1,0,0,0,-1e300"], "column gz: -1e\\+300 deg/s"),
        (["0.01,0,-1,inf,0,0,0"], "non-finite value in column az"),
        (["1e-300,0,-1,0,0,0,0"], "1e-300 s after .* closer than the format's 1 µs resolution"),
        (["0.0000004,0,-1,0,0,0,0"], "closer than the format's 1 µs resolution"),
        (["60.001,0,-1,0,0,0,0"], "60.001 s after .* more than 60 s is two recordings"),
        (["1e300,0,-1,0,0,0,0"], "more than 60 s"),
        ([""], "blank line"),
        (["# label: adl"], "header line after the column line"),
    ],
)
def test_malformed_row(tmp_path: Path, rows: list[str], match: str) -> None:
    path = _write(tmp_path, _file(rows=[ROW, *rows, GOOD]))
    err = _error(path)
    assert err.line == len(HEADER_LINES) + 3
    assert re.search(match, err.message), err.message


def test_rows_far_slower_than_the_header_s_rate_are_refused_by_reader_and_writer(
    tmp_path: Path,
) -> None:
    """Rows a minute apart under a 200 Hz header: each step is allowed, but 438,596 of them
    (9 MB) were 7,300 hours, which replay and evaluate resample, 5 billion samples (2,000
    rows took 46 s). Rows may span twice their nominal time and one minute's gap more."""
    rows = ["0,0,-1,0,0,0,0", "60,0,-1,0,0,0,0", "120,0,-1,0,0,0,0"]
    err = _error(_write(tmp_path, _file(rows=rows)))
    assert err.line == len(HEADER_LINES) + 4
    assert err.message == (
        "t=120.0: 3 rows span 120 s, over twice the 0.01 s they take at the header's "
        "sample_rate_hz 200 (with 60 s of gaps): the rows are not at the header's rate"
    )
    with TraceWriter(tmp_path / "w.csv", TraceHeader(200.0, "MPU-6050", SISFALL_MOUNTING)) as w:
        w.write(ImuSample(0.0, 0, -1, 0, 0, 0, 0))
        w.write(ImuSample(60.0, 0, -1, 0, 0, 0, 0))
        with pytest.raises(ValueError, match=r"3 rows span 120 s, over twice the 0\.01 s"):
            w.write(ImuSample(120.0, 0, -1, 0, 0, 0, 0))
    # at the bound: 3 rows at twice the period, and a minute's gap
    rows = ["0,0,-1,0,0,0,0", "60,0,-1,0,0,0,0", "60.02,0,-1,0,0,0,0"]
    assert len(read_trace(_write(tmp_path, _file(rows=rows), "edge.csv")).samples) == 3


def test_saturated_readings_and_extreme_but_real_steps_are_accepted(tmp_path: Path) -> None:
    rows = [
        "0,16,-16,15.999512,2000,-2000,1998.0488",  # an MPU-6050 saturated at ±16 g, ±2000 deg/s
        "0.000001,-16.5,16.5,-16,-2040,2040,-2000",  # ... with calibration offsets removed
        "0.000002,32,-32,32,4000,-4000,4000",  # the limits themselves
        "60.000002,0,-1,0,0,0,0",  # a minute without a sample
        "1000000000.0,0,-1,0,0,0,0",  # any origin, e.g. a clock counting since 1994
        "1000000000.000001,0,-1,0,0,0,0",  # one microsecond on, that far from zero
    ]
    samples = read_trace(_write(tmp_path, _file(rows=rows[:4]))).samples
    assert [s.ax for s in samples] == [16, -16.5, 32, 0]
    assert samples[2].gy == -4000
    assert len(read_trace(_write(tmp_path, _file(rows=rows[4:]), "far.csv")).samples) == 2


def test_writer_writes_one_microsecond_steps_far_from_zero_that_the_reader_reads(
    tmp_path: Path,
) -> None:
    path = tmp_path / "far.csv"
    start = 4_000_000_000.0  # past 2**31 s: a double's step there is 0.48 µs
    samples = [ImuSample(start + i * 1e-6, 0, -1, 0, 0, 0, 0) for i in range(200)]
    write_trace(path, TraceHeader(200.0, "MPU-6050", SISFALL_MOUNTING), samples)
    assert len(read_trace(path).samples) == 200


@pytest.mark.parametrize("cut", ["1.005,0.01", "1.005,0.01,-1,0,0,0,", "1.0"])
def test_truncated_last_line(tmp_path: Path, cut: str) -> None:
    rows = [f"{i / 200:.6f},0,-1,0,0,0,0" for i in range(201)]
    path = _write(tmp_path, _file(rows=rows) + cut)
    err = _error(path)
    assert err.line == len(HEADER_LINES) + 2 + 201
    assert err.message.startswith("truncated last line")
    assert "no newline" in err.message


@pytest.mark.parametrize("where", ["header", "rows"])
def test_binary_garbage_is_a_format_error(tmp_path: Path, where: str) -> None:
    path = tmp_path / "bin.csv"
    head = b"# format: retroguard-trace/1\n\xff\xfe\x00garbage\n"
    path.write_bytes(head if where == "header" else _file().encode() + b"\x80\x81\n")
    err = _error(path)
    assert "not UTF-8 text" in err.message
    assert err.line >= 1


def test_column_line_without_newline_is_truncated(tmp_path: Path) -> None:
    path = _write(tmp_path, "\n".join([*HEADER_LINES, COLUMNS]))
    assert _error(path).message.startswith("file ends after the column line")


# ---------------------------------------------------------------- streaming


def test_iter_trace_is_lazy(tmp_path: Path) -> None:
    """Samples before a defect arrive before the defect is even read."""
    rows = [f"{i / 200:.6f},0,-1,0,0,0,0" for i in range(1000)] + ["garbage"]
    path = _write(tmp_path, _file(rows=rows))
    stream = iter_trace(path)
    first = list(itertools.islice(stream, 10))
    assert [s.t for s in first] == [i / 200 for i in range(10)]
    with pytest.raises(TraceFormatError, match="expected 7 fields"):
        list(stream)


def test_large_file_streams_in_constant_memory(tmp_path: Path) -> None:
    n = 100_000
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write(_file(rows=[]))
        f.writelines(
            f"{i * 0.005:.6f},0.01,-0.98,0.05,{i % 97 * 0.25:.4f},-1.5,2.25\n" for i in range(n)
        )
    assert path.stat().st_size > 4_000_000
    tracemalloc.start()
    try:
        count = 0
        last = -1.0
        for s in iter_trace(path):
            count += 1
            last = s.t
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n
    assert last == pytest.approx((n - 1) * 0.005)
    # A list of 100k samples alone takes ~20 MB; streaming stays in the file buffer.
    assert peak < 1_000_000, peak


def test_open_trace_gives_header_before_rows(tmp_path: Path) -> None:
    path = _write(tmp_path, _file(rows=[ROW, GOOD]))
    with open_trace(path) as reader:
        assert reader.header.label == "fall"
        assert [s.t for s in reader] == [0.0, 0.01]


def test_error_str_is_path_line_message() -> None:
    err = TraceFormatError("a/b.csv", 12, "bad thing")
    assert str(err) == "a/b.csv:12: bad thing"
    assert isinstance(err, ValueError)


def test_a_file_without_newlines_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    """``replay /dev/zero`` died with MemoryError: lines are read 4,096 characters at most."""
    with pytest.raises(TraceFormatError, match="first line must be"):
        read_header("/dev/zero")
    huge = tmp_path / "huge.trace"
    huge.write_text("# format: retroguard-trace/1\n" + "9" * 10_000_000)
    with pytest.raises(TraceFormatError):
        read_header(huge)


def test_a_trace_over_the_size_bound_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """A disk image or a runaway capture under a trace's name: refused by its size, giving the
    size and the bound, before a line is read (the lines here would be read as rows)."""
    path = _write(tmp_path, _file(rows=[ROW]), "huge.csv")
    with path.open("r+b") as f:
        f.truncate(MAX_TRACE_BYTES + 1)  # sparse: no disk, and NULs after the first row
    tracemalloc.start()
    try:
        with pytest.raises(TraceFormatError) as info:
            read_trace(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.line == 1
    assert info.value.message.startswith(
        f"{MAX_TRACE_BYTES + 1:,} bytes, over the {MAX_TRACE_BYTES:,} (25 MB, 33 minutes at "
        "200 Hz) a trace may have"
    )
    assert peak < 1_000_000, peak
    with path.open("r+b") as f:
        f.truncate(MAX_TRACE_BYTES)  # exactly the bound: opened, its header read
    assert read_header(path).label == "fall"


def test_a_pipe_of_endless_rows_is_stopped_at_the_line_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipe or a device has no size to check: the line count bounds it as it is read."""
    monkeypatch.setattr("core.trace.MAX_TRACE_LINES", 1_000)
    fifo = tmp_path / "endless.trace"
    os.mkfifo(fifo)

    def endless() -> None:  # as good as endless: five times the bound
        with contextlib.suppress(BrokenPipeError), fifo.open("w") as f:
            f.write(_file(rows=[]))
            for i in range(5_000):
                f.write(f"{i * 0.005:.6f},0.01,-0.98,0.05,0.25,-1.5,2.25\n")

    writer = threading.Thread(target=endless, daemon=True)
    writer.start()
    with pytest.raises(TraceFormatError) as info:
        read_trace(fifo)
    writer.join()
    assert info.value.line == 1_001
    assert info.value.message.startswith("more than 1,000 lines, the most 25 MB of rows hold")


def test_a_header_of_endless_keys_is_refused_at_the_header_bound(tmp_path: Path) -> None:
    extra = [f"# extra_{n}: value" for n in range(MAX_HEADER_LINES - len(HEADER_LINES))]
    assert read_header(_write(tmp_path, _file(HEADER_LINES + extra))).extra["extra_0"] == "value"
    path = _write(tmp_path, _file([*HEADER_LINES, *extra, "# one_more: value"]))
    with pytest.raises(TraceFormatError) as info:
        read_header(path)
    assert info.value.line == MAX_HEADER_LINES + 1
    assert info.value.message == (
        f"more than {MAX_HEADER_LINES} header lines and no column line: not a trace?"
    )
