"""Dataset loaders: units, scaling, resampling, malformed files, the split."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.mounting import Mounting
from core.samples import ImuSample
from core.trace import TraceHeader, write_trace
from tests.sisfall_support import sisfall_file
from tools.datasets import (
    DatasetFormatError,
    describe,
    discover,
    is_tuning_subject,
    open_samples,
    resample,
)
from tools.datasets.resample import at_rate
from tools.datasets.sisfall import (
    ACCEL_G_PER_COUNT,
    GYRO_DPS_PER_COUNT,
    _read_well_formed,
    iter_sisfall,
    parse_name,
    read_sisfall,
)

# --- SisFall ------------------------------------------------------------------


def test_sisfall_scaling_follows_the_dataset_readme() -> None:
    assert ACCEL_G_PER_COUNT == 32 / 8192  # ADXL345 +-16 g, 13 bit
    assert GYRO_DPS_PER_COUNT == 4000 / 65536  # ITG3200 +-2000 deg/s, 16 bit


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_sisfall_line_in_physical_units(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "D01_SA01_R01.txt",
        "  256,-512,   0, 16384,-16384, 0, 1, 2, 3;\n   0,   0, 256, 0, 0, 0, 9, 9, 9;\n",
    )
    s = read_sisfall(p)
    assert s[0] == ImuSample(0.0, 1.0, -2.0, 0.0, 1000.0, -1000.0, 0.0)
    assert s[1].t == pytest.approx(1 / 200)
    assert s[1].az == 1.0


def test_sisfall_second_accelerometer_in_physical_units(tmp_path: Path) -> None:
    """The MMA8451Q columns (14 bit, +-8 g: 1024 counts per g), same gyro."""
    p = write(tmp_path, "D01_SA01_R01.txt", "  256,-512, 0, 16384,-16384, 0, 1024,-2048, 512;\n")
    (s,) = read_sisfall(p, accelerometer="mma8451q")
    assert s == ImuSample(0.0, 1.0, -2.0, 0.5, 1000.0, -1000.0, 0.0)


def test_sisfall_names() -> None:
    n = parse_name("F02_SA01_R03.txt")
    assert n is not None
    assert (n.code, n.subject, n.trial, n.is_fall) == ("F02", "SA01", "R03", True)
    assert parse_name("Readme.txt") is None


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("1,2,3,4,5,6,7,8,9;\n1,2,3,4,5,6,7,8,9\n", 2, "does not end with ';'"),
        ("1,2,3,4,5,6,7,8,9;\n1,2,3,4,5,6,7,8;\n", 2, "expected 9"),
        ("1,2,3,4,5,6,7,8,9;\n\n1,2,x,4,5,6,7,8,9;\n", 3, "non-integer"),
        ("1,2,3,4,5,6,7,8,9;\n1,2,3,4,5,6,", 2, "truncated"),
        ("", 1, "no samples"),
    ],
)
def test_malformed_sisfall_names_file_and_line(
    tmp_path: Path, text: str, line: int, what: str
) -> None:
    p = write(tmp_path, "D01_SA01_R01.txt", text)
    with pytest.raises(DatasetFormatError, match=what) as info:
        read_sisfall(p)
    assert info.value.path == p
    assert info.value.line == line
    assert str(info.value).startswith(f"{p}:{line}: ")


@pytest.mark.parametrize(
    "text",
    [
        "1,2,3,4,5,6,7,8,9;",  # no line break at the end
        "\t-1 ,\t2,3,4,5,6,7,8,9 ; \n\n \t\n-0,0,0,0,0,0,0,0,0;\n  \n",  # blanks around
        "1,2,3,4,5,6,7,8,9;\r\n1,2,3,4,5,6,7,8,9;\r2,2,2,2,2,2,2,2,2;\n",  # Windows, old Mac
        "1,2,3,4,5,6,7,8,9;\x0b\n\x0c\n1,2,3,4,5,6,7,8,9;",  # blanks that are not spaces
        "1,2,3,4,5,6,7,8,9;1,2,3,4,5,6,7,8,9;\n",  # two rows on one line
        "1,2,3,4,5,6,7,8,9;\n1,2,3,4,5,6,7,8,9; 5\n",  # a number after the ';'
        "1,2,3,4,5,6,7,8,9;\n5\n1,2,3,4,5,6,7,8,9;\n",  # a line of one number
        "1,2,3,4,5,6,7,8,9;\n-\n",  # a line of a sign
        "1,2,3,4,5,6,7,8,9;\n1,2,3 4,5,6,7,8,9;\n",  # two numbers in a cell
        "1,2,3,4,5,6,7,8,9;\n1,2,,5,6,7,8,9,0;\n",  # an empty cell
        "1,2,3,4,5,6,7,8,9;\n1,2,--3,4,5,6,7,8,9;\n",
        "1,2,3,4,5,6,7,8,9;\n1,2,3-,4,5,6,7,8,9;\n",
        "1,2,3,4,5,6,7,8,9;\n1,2,+3,4,5,6,7,8,9;\n",
        "1,2,3,4,5,6,7,8,9;\n1,2,1_0,4,5,6,7,8,9;\n",
        "1,2,3,4,5,6,7,8,9;\n1,2,\u0663,4,5,6,7,8,9;\n",  # a digit that is not ASCII
        "1,2,3,4,5,6,7,8,9;\n1,2,3,4,5,6,7,8,9;\x00\n",
        "1,2,3,4,5,6,7,8,9;\n" + " " * 990 + "1,2,3,4,5,6,7,8,9;\n",  # a line too long
        " " * 980 + "1,2,3,4,5,6,7,8,9;\n",  # one just short of it
        "\n \n",
    ],
)
@pytest.mark.parametrize("accelerometer", ["adxl345", "mma8451q"])
def test_a_sisfall_file_read_whole_reads_as_line_by_line(
    tmp_path: Path, text: str, accelerometer: str
) -> None:
    """``read_sisfall`` reads a well-formed file in one pass and any other line by line: the
    same samples, or the same refusal at the same line, as ``iter_sisfall`` gives."""
    p = tmp_path / "D01_SA01_R01.txt"
    p.write_bytes(text.encode("utf-8"))
    try:
        expected: list[ImuSample] | str = list(iter_sisfall(p, accelerometer))
    except DatasetFormatError as exc:
        expected = str(exc)
    try:
        found: list[ImuSample] | str = read_sisfall(p, accelerometer)
    except DatasetFormatError as exc:
        found = str(exc)
    assert found == expected
    assert not isinstance(found, list) or all(type(s) is ImuSample for s in found)


@pytest.mark.parametrize("name", ["D01_SA01_R01.txt", "D15_SA01_R01.txt", "F05_SE06_R01.txt"])
def test_a_real_sisfall_file_read_whole_reads_as_line_by_line(name: str) -> None:
    path = sisfall_file(name)
    assert _read_well_formed(path, "adxl345") is not None  # read whole, not line by line
    assert read_sisfall(path) == list(iter_sisfall(path))
    assert read_sisfall(path, "mma8451q") == list(iter_sisfall(path, "mma8451q"))


def test_real_sisfall_file_reads_at_rest_as_one_g() -> None:
    samples = read_sisfall(sisfall_file("D01_SA01_R01.txt"))
    assert len(samples) > 19000
    assert samples[-1].t == pytest.approx((len(samples) - 1) / 200)
    # Averaged over the walk, the accelerometer reads gravity: 1 g, mostly on
    # the SisFall y axis (which points down on the body).
    n = len(samples)
    mean = [sum(s[i] for s in samples) / n for i in (1, 2, 3)]
    assert sum(m * m for m in mean) ** 0.5 == pytest.approx(1.0, abs=0.1)
    assert mean[1] < -0.8


# --- resampling ---------------------------------------------------------------


def ramp(rate: float, seconds: float) -> list[ImuSample]:
    """Every channel linear in time: linear interpolation must reproduce it exactly."""
    n = int(seconds * rate)
    return [
        ImuSample(i / rate, i / rate, 2 * i / rate, -1.0, 10 * i / rate, 0.0, 5.0)
        for i in range(n + 1)
    ]


@pytest.mark.parametrize("source", [20.0, 50.0, 100.0, 333.0, 1000.0])
def test_resampling_a_ramp_is_exact(source: float) -> None:
    out = list(resample(ramp(source, 2.0), 200.0))
    assert len(out) == 401
    for k, s in enumerate(out):
        assert s.t == pytest.approx(k / 200, abs=1e-9)
        assert s.ax == pytest.approx(s.t, abs=1e-9)
        assert s.ay == pytest.approx(2 * s.t, abs=1e-9)
        assert s.gx == pytest.approx(10 * s.t, abs=1e-9)
        assert (s.az, s.gz) == (pytest.approx(-1.0), pytest.approx(5.0))


def test_resampling_is_streaming() -> None:
    """Each output needs at most one input sample beyond it (no look-ahead)."""
    pulled: list[float] = []

    def source() -> object:
        for s in ramp(100.0, 1.0):
            pulled.append(s.t)
            yield s

    it = resample(source(), 200.0)  # type: ignore[arg-type]
    for _ in range(11):
        out = next(it)
        assert pulled[-1] <= out.t + 1 / 100 + 1e-12


def test_same_rate_passes_through_unchanged() -> None:
    src = ramp(200.0, 1.0)
    assert list(at_rate(src, 200.0, 200.0)) == src


@pytest.mark.parametrize("bad", [10.0, 2000.0])
def test_unsupported_source_rates_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="outside the supported"):
        at_rate(ramp(bad, 0.1), bad, 200.0)


def test_resampler_skips_non_increasing_time() -> None:
    src = [ImuSample(0.0, 0, 0, 1, 0, 0, 0), ImuSample(0.0, 5, 5, 5, 5, 5, 5)]
    src.append(ImuSample(0.01, 0, 0, 1, 0, 0, 0))
    out = list(resample(src, 200.0))
    assert [s.t for s in out] == [0.0, 0.005, 0.01]
    assert all(s.ax == 0.0 for s in out)


# --- traces -------------------------------------------------------------------


def make_trace(path: Path, rate: float = 100.0, **header: object) -> Path:
    h = TraceHeader(
        sample_rate_hz=rate,
        sensor="test",
        mounting=Mounting.parse("x=forward y=left z=up"),
        label="fall",
        activity="F02",
        subject="XY07",
        impact_t=1.5,
    )
    for k, v in header.items():
        setattr(h, k, v)
    write_trace(path, h, ramp(rate, 2.0))
    return path


def test_trace_recording_is_described_from_its_header(tmp_path: Path) -> None:
    rec = describe(make_trace(tmp_path / "a.csv"))
    assert (rec.source, rec.code, rec.subject, rec.label) == ("trace", "F02", "XY07", "fall")
    assert rec.sample_rate_hz == 100.0
    assert rec.impact_t == 1.5
    assert rec.up == pytest.approx((0.0, 0.0, 1.0))


def test_trace_is_resampled_to_the_monitor_rate(tmp_path: Path) -> None:
    rec = describe(make_trace(tmp_path / "a.csv", rate=50.0))
    out = list(open_samples(rec, 200.0))
    assert len(out) == 401
    assert out[123].ax == pytest.approx(out[123].t, abs=1e-6)


def test_malformed_trace_names_file_and_line(tmp_path: Path) -> None:
    p = make_trace(tmp_path / "a.csv")
    lines = p.read_text().splitlines(keepends=True)
    lines[20] = "0.5,1,2\n"
    p.write_text("".join(lines))
    rec = describe(p)
    with pytest.raises(DatasetFormatError) as info:
        list(open_samples(rec, 200.0))
    assert info.value.line == 21
    assert str(p) in str(info.value)


def test_trace_with_an_unsupported_rate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError, match="outside the supported"):
        describe(make_trace(tmp_path / "a.csv", rate=5000.0))


def test_sisfall_recording_carries_its_mounting(tmp_path: Path) -> None:
    p = write(tmp_path, "F02_SA01_R01.txt", "0,-256,0,0,0,0,0,0,0;\n")
    rec = describe(p)
    assert (rec.source, rec.code, rec.subject, rec.label) == ("sisfall", "F02", "SA01", "fall")
    assert rec.impact_t is None
    assert rec.up == pytest.approx((0.0, -1.0, 0.0))
    assert list(open_samples(rec, 200.0)) == list(iter_sisfall(p))


def test_discover_finds_sisfall_files_and_traces_only(tmp_path: Path) -> None:
    sub = tmp_path / "SA01"
    sub.mkdir()
    a = write(sub, "D01_SA01_R01.txt", "0,-256,0,0,0,0,0,0,0;\n")
    write(tmp_path, "Readme.txt", "SisFall\n")
    b = make_trace(tmp_path / "walk.csv")
    c = write(tmp_path, "broken.trace", "garbage\n")
    assert discover(tmp_path) == sorted([a, b, c])
    assert discover(a) == [a]


# --- the subject split ----------------------------------------------------------


def test_subject_split_is_by_parity_of_the_subject_number() -> None:
    assert [is_tuning_subject(f"SA{i:02d}") for i in range(1, 5)] == [True, False, True, False]
    assert is_tuning_subject("SE06") is False  # the elderly subject with falls is held out
    assert is_tuning_subject("alice") == is_tuning_subject("alice")
    assert is_tuning_subject(None, "x3.csv") is True


def test_downsampling_averages_instead_of_aliasing() -> None:
    """40 Hz vibration at 200 Hz, taken down to 25 Hz: a real 25 Hz sensor would not see it."""
    rate_in = 200.0
    source = [
        ImuSample(
            i / rate_in, 0.0, 0.0, 1.0, 300.0 * math.sin(2 * math.pi * 40.0 * i / rate_in), 0, 0
        )
        for i in range(2000)
    ]
    out = list(at_rate(source, rate_in, 25.0))
    assert len(out) == pytest.approx(250, abs=1)
    settled = [abs(s.gx) for s in out[2:]]
    # Point-sampling would give up to ~300 deg/s of aliased rate; an 8-sample mean leaves < 20 %.
    assert max(settled) < 0.25 * 300.0
    assert all(s.az == pytest.approx(1.0) for s in out)


# --- bad and oversized recording files (safety rule 6) -------------------------------------

SISFALL_LINE = "  2,-255, 17, -27, 121,-208, -70,-982, 234;\n"
KFALL_ROW = "0.01,1,-0.04,-1.002,-0.027,-3.72,-13.12,-1.66,91.51,1.27,-40.09\n"


def _kfall_text(*rows: str) -> str:
    from tools.datasets.kfall import HEADER

    return ",".join(HEADER) + "\n" + "".join(rows)


def _read(kind: str, path: Path) -> list[ImuSample]:
    from tools.datasets.kfall import read_kfall

    return read_sisfall(path) if kind == "sisfall" else read_kfall(path)


BAD_RECORDINGS = [
    ("sisfall", SISFALL_LINE + "  2,-255, x, -27, 121,-208, -70,-982, 234;\n", 2, "non-integer"),
    ("sisfall", SISFALL_LINE + "  2,-255, 1_7, -27, 121,-208, -70,-982, 234;\n", 2, "non-int"),
    ("sisfall", SISFALL_LINE * 2 + " 1, 2, 3;\n", 3, "expected 9 comma-separated columns"),
    ("sisfall", "", 1, "no samples"),
    ("sisfall", "\n\n", 1, "no samples"),
    ("sisfall", SISFALL_LINE + "\x00\x01\x02;\n", 2, "bytes that are not ASCII text"),
    ("sisfall", SISFALL_LINE + "\xe9t\xe9;\n", 2, "bytes that are not ASCII text"),
    ("sisfall", SISFALL_LINE + "1" * 5000, 2, "a line over 1000 characters"),
    ("kfall", _kfall_text(KFALL_ROW, KFALL_ROW.replace("-0.04", "abc")), 3, "non-numeric"),
    ("kfall", _kfall_text(KFALL_ROW, KFALL_ROW.replace("-0.04", "nan")), 3, "non-numeric"),
    ("kfall", _kfall_text(KFALL_ROW.replace("-1.002", "inf")), 2, "non-numeric"),
    ("kfall", _kfall_text(KFALL_ROW, "1,2\n"), 3, "expected 11 columns, found 2"),
    ("kfall", _kfall_text(), 1, "no samples"),
    ("kfall", "", 1, "no samples"),
    ("kfall", "Time,Acc\n" + KFALL_ROW, 1, "not a KFall sensor file header"),
    ("kfall", _kfall_text(KFALL_ROW, "\x00" * 100 + "\n"), 3, "bytes that are not ASCII text"),
    ("kfall", _kfall_text("2" * 100_000), 2, "a line over 1000 characters"),
]


@pytest.mark.parametrize(
    ("kind", "text", "line", "says"),
    BAD_RECORDINGS,
    ids=[f"{k}-{n}" for n, (k, *_) in enumerate(BAD_RECORDINGS)],
)
def test_a_bad_recording_is_refused_at_its_file_and_line(
    tmp_path: Path, kind: str, text: str, line: int, says: str
) -> None:
    """A bad cell, a short row, an empty or binary file: a DatasetFormatError at file:line
    (evaluate skips the file, saying so), never a traceback nor a NaN sample; the message
    quotes no more than a line's start."""
    name = "D01_SA01_R01.txt" if kind == "sisfall" else "S06T06R01.csv"
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(DatasetFormatError) as err:
        _read(kind, path)
    assert (err.value.path, err.value.line) == (path, line)
    assert says in err.value.message and len(str(err.value)) < 400


@pytest.mark.parametrize("kind", ["sisfall", "kfall"])
def test_a_recording_far_larger_than_any_known_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Ten times the largest recording of the dataset (bytes, then rows as read: a pipe or
    device has no size to check first) is refused, not read into memory."""
    from tools.datasets import kfall, sisfall
    from tools.datasets.limits import KFALL_BOUNDS, SISFALL_BOUNDS, Bounds

    bounds = SISFALL_BOUNDS if kind == "sisfall" else KFALL_BOUNDS
    assert bounds.max_bytes >= 10 * (1_724_078 if kind == "sisfall" else 431_740)
    assert bounds.max_rows >= 10 * (36_000 if kind == "sisfall" else 3_311)
    name = "D01_SA01_R01.txt" if kind == "sisfall" else "S06T06R01.csv"
    huge = tmp_path / name
    with huge.open("wb") as f:  # sparse: no disk used, and nothing may read it
        f.truncate(bounds.max_bytes + 1)
    with pytest.raises(DatasetFormatError) as err:
        _read(kind, huge)
    assert err.value.line == 1
    assert f"over the {bounds.max_bytes / 1e6:g} MB a {bounds.what} may have" in err.value.message
    # rows: a smaller bound, as a file of 360,001 rows would be a slow test
    small = Bounds(bounds.what, bounds.max_bytes, 3)
    monkeypatch.setattr(sisfall if kind == "sisfall" else kfall, f"{kind.upper()}_BOUNDS", small)
    rows = tmp_path / "rows" / name
    rows.parent.mkdir()
    rows.write_text(SISFALL_LINE * 3 if kind == "sisfall" else _kfall_text(KFALL_ROW * 2))
    assert len(_read(kind, rows)) == (3 if kind == "sisfall" else 2)
    rows.write_text(SISFALL_LINE * 4 if kind == "sisfall" else _kfall_text(KFALL_ROW * 3))
    with pytest.raises(DatasetFormatError) as err:
        _read(kind, rows)
    assert err.value.line == 4
    assert f"over the 3 rows a {bounds.what} may have" in err.value.message


def test_a_label_workbook_that_unpacks_too_large_or_numbers_a_huge_row_is_refused(
    tmp_path: Path,
) -> None:
    import zipfile

    from tools.datasets.xlsx import read_first_sheet

    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    far = tmp_path / "far.xlsx"
    with zipfile.ZipFile(far, "w") as z:
        z.writestr("xl/workbook.xml", f"<workbook {ns}><sheets><sheet/></sheets></workbook>")
        z.writestr(  # 200 bytes that would be a billion rows
            "xl/worksheets/sheet1.xml",
            f'<worksheet {ns}><sheetData><row r="1000000000"/></sheetData></worksheet>',
        )
    with pytest.raises(DatasetFormatError) as err:
        read_first_sheet(far)
    assert "over the 10,000 rows a label sheet may have" in err.value.message
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/workbook.xml", f"<workbook {ns}><sheets><sheet/></sheets></workbook>")
        z.writestr("xl/worksheets/sheet1.xml", " " * 50_000_000)  # some 50 kB packed
    assert bomb.stat().st_size < 200_000
    with pytest.raises(DatasetFormatError) as err:
        read_first_sheet(bomb)
    assert "xl/worksheets/sheet1.xml unpacks to 50,000,000 bytes" in err.value.message


def test_evaluate_skips_bad_recordings_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from launcher.cli import main

    (tmp_path / "D01_SA01_R01.txt").write_bytes(bytes(range(256)) * 400)
    assert main(["evaluate", str(tmp_path), "--no-progress", "-j", "1"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"{tmp_path / 'D01_SA01_R01.txt'}:1: bytes that are not ASCII text" in err
