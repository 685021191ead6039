"""The KFall loader: file names, units, axes, the label workbooks (and broken ones)."""

from __future__ import annotations

import re
import statistics
import zipfile
from pathlib import Path

import pytest

from core.mounting import SISFALL_MOUNTING
from tests.kfall_support import kfall_dir, kfall_file
from tools.datasets import Activity, DatasetFormatError, describe, discover, open_samples
from tools.datasets.kfall import (
    KFALL_MOUNTING,
    KFALL_TASKS,
    iter_kfall,
    parse_name,
    read_labels,
)
from tools.datasets.xlsx import read_first_sheet

HEADER = "TimeStamp(s),FrameCounter,AccX,AccY,AccZ,GyrX,GyrY,GyrZ,EulerX,EulerY,EulerZ\n"

# --- a KFall tree written by the test -------------------------------------------


def _cell(ref: str, value: str | int | None) -> str:
    if value is None:
        return f'<c r="{ref}" t="inlineStr" />'
    if isinstance(value, int):
        return f'<c r="{ref}" t="n"><v>{value}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


def write_xlsx(path: Path, rows: list[list[str | int | None]], shared: bool = False) -> Path:
    """A minimal workbook as spreadsheet programs write it (inline strings, or
    a shared-string table when ``shared``)."""
    strings: list[str] = []
    body = []
    for i, row in enumerate(rows, start=1):
        cells = []
        for j, v in enumerate(row):
            ref = f"{'ABCDEFG'[j]}{i}"
            if shared and isinstance(v, str):
                strings.append(v)
                cells.append(f'<c r="{ref}" t="s"><v>{len(strings) - 1}</v></c>')
            else:
                cells.append(_cell(ref, v))
        body.append(f'<row r="{i}">{"".join(cells)}</row>')
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(
            "xl/workbook.xml",
            f'<workbook {rel} {ns}><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/>'
            "</sheets></workbook>",
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Target="worksheets/data.xml" Type="worksheet"/>'
            "</Relationships>",
        )
        z.writestr(
            "xl/worksheets/data.xml",
            f"<worksheet {ns}><sheetData>{''.join(body)}</sheetData></worksheet>",
        )
        if shared:
            items = "".join(f"<si><t>{s}</t></si>" for s in strings)
            z.writestr("xl/sharedStrings.xml", f"<sst {ns}>{items}</sst>")
    return path


LABEL_HEADER: list[str | int | None] = [
    "Task Code (Task ID)",
    "Description",
    "Trial ID",
    "Fall_onset_frame",
    "Fall_impact_frame",
]


def kfall_tree(root: Path, rows: list[list[str | int | None]] | None = None) -> Path:
    """``root/KFall`` with one subject (SA08): a backward slip (task 34) with
    its label, and a walk (task 6)."""
    kf = root / "KFall"
    sensor = kf / "sensor_data" / "SA08"
    sensor.mkdir(parents=True)
    (kf / "label_data").mkdir()
    lines = [HEADER]
    for i in range(1, 301):
        lines.append(f"{i * 0.01},{i},-0.05,-1.0,0.01,1.5,-2.0,0.25,88.0,-2.0,-20.0\n")
    (sensor / "S08T34R02.csv").write_text("".join(lines))
    (sensor / "S08T06R01.csv").write_text("".join(lines))
    if rows is None:
        rows = [
            LABEL_HEADER,
            ["F15 (34)", "Backward fall while walking caused by a slip", 1, 150, 210],
            [None, None, 2, 120, 185],
        ]
    write_xlsx(kf / "label_data" / "SA08_label.xlsx", rows)
    return kf


def test_names_map_to_the_task_table() -> None:
    name = parse_name("S06T34R01.csv")
    assert name is not None
    assert (name.subject, name.task_id, name.trial) == ("SA06", 34, 1)
    assert name.task is not None and name.task.code == "F15"
    assert name.task.group is Activity.WALKING_FALL and name.task.backward
    assert parse_name("F02_SA01_R01.txt") is None
    assert parse_name("SA06_label.xlsx") is None


def test_task_table_has_kfalls_21_activities_and_15_falls() -> None:
    codes = sorted(t.code for t in KFALL_TASKS.values())
    assert codes == [f"D{i:02d}" for i in range(1, 22)] + [f"F{i:02d}" for i in range(1, 16)]
    groups = {t.code: t.group for t in KFALL_TASKS.values()}
    assert {c for c, g in groups.items() if g is Activity.WALKING} == {"D06", "D07"}
    assert {c for c, g in groups.items() if g is Activity.JOGGING} == {"D08", "D09"}
    assert {c for c, g in groups.items() if g is Activity.LYING_DOWN} == {"D17", "D18", "D19"}
    assert {c for c, g in groups.items() if g is Activity.WALKING_FALL} == {
        f"F{i:02d}" for i in range(9, 16)
    }
    assert {t.code for t in KFALL_TASKS.values() if t.backward} == {"F02", "F08", "F15"}


def test_samples_in_g_and_deg_per_s_on_the_files_clock(tmp_path: Path) -> None:
    kf = kfall_tree(tmp_path)
    s = list(iter_kfall(kf / "sensor_data" / "SA08" / "S08T34R02.csv"))
    assert len(s) == 300
    assert s[0] == (0.01, -0.05, -1.0, 0.01, 1.5, -2.0, 0.25)
    assert s[-1].t == pytest.approx(3.0)


def test_a_fall_carries_its_labelled_onset_and_impact(tmp_path: Path) -> None:
    kf = kfall_tree(tmp_path)
    rec = describe(kf / "sensor_data" / "SA08" / "S08T34R02.csv")
    assert (rec.source, rec.code, rec.subject, rec.label) == ("kfall", "F15", "SA08", "fall")
    assert rec.onset_t == pytest.approx(1.20)  # frame 120 at 100 Hz
    assert rec.impact_t == pytest.approx(1.85)
    assert rec.sample_rate_hz == 100.0
    assert rec.up == pytest.approx((0.0, -1.0, 0.0))  # y points down
    walk = describe(kf / "sensor_data" / "SA08" / "S08T06R01.csv")
    assert (walk.code, walk.label, walk.onset_t, walk.impact_t) == ("D06", "adl", None, None)
    assert walk.task is not None and walk.task.group is Activity.WALKING
    assert len(list(open_samples(walk, 200.0))) == 599  # resampled to the monitor's rate


def test_discover_takes_sensor_files_and_not_the_workbooks(tmp_path: Path) -> None:
    kf = kfall_tree(tmp_path)
    found = discover(kf)
    assert [p.name for p in found] == ["S08T06R01.csv", "S08T34R02.csv"]


def test_shared_strings_are_read_like_inline_ones(tmp_path: Path) -> None:
    rows: list[list[str | int | None]] = [LABEL_HEADER, ["F15 (34)", "slip", 2, 120, 185]]
    a = write_xlsx(tmp_path / "a.xlsx", rows)
    b = write_xlsx(tmp_path / "b.xlsx", rows, shared=True)
    assert read_first_sheet(a) == read_first_sheet(b)
    assert read_first_sheet(a)[1] == ["F15 (34)", "slip", "2", "120", "185"]


@pytest.mark.parametrize("index", ["-1", " 0", "7", "1e0"])
def test_a_shared_string_index_that_is_not_one_is_refused(tmp_path: Path, index: str) -> None:
    """Only a plain count from 0 below the table's length names a shared string: ``-1`` read
    the table's last string (Python's negative index) as the cell's text."""
    rows: list[list[str | int | None]] = [LABEL_HEADER, ["F15 (34)", "slip", 2, 120, 185]]
    good = write_xlsx(tmp_path / "good.xlsx", rows, shared=True)
    bad = tmp_path / "bad.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/data.xml":
                data = data.replace(
                    b'<c r="A1" t="s"><v>0</v>', f'<c r="A1" t="s"><v>{index}</v>'.encode()
                )
            dst.writestr(item, data)
    with pytest.raises(DatasetFormatError, match=r"shared string .* does not exist"):
        read_first_sheet(bad)


@pytest.mark.parametrize(
    ("rows", "line", "message"),
    [
        ([["Task", "Trial ID"]], 1, "no 'task code (task id)' column"),
        ([LABEL_HEADER, ["F15 (34)", "x", 2, 185, 120]], 2, "before impact"),
        ([LABEL_HEADER, ["F15 (34)", "x", 2, "soon", 185]], 2, "not a number"),
        ([LABEL_HEADER, ["F15 (34)", "x", 2, 12.5, 185]], 2, "not a whole number"),
        ([LABEL_HEADER, ["D06 (6)", "x", 2, 120, 185]], 2, "not 'Fnn (id)'"),
        ([LABEL_HEADER, ["F01 (34)", "x", 2, 120, 185]], 2, "not a fall of KFall"),
        ([LABEL_HEADER, [None, None, 2, 120, 185]], 2, "before any task code"),
        (
            [LABEL_HEADER, ["F15 (34)", "x", 2, 120, 185], [None, None, 2, 121, 186]],
            3,
            "labelled twice",
        ),
    ],
)
def test_malformed_labels_name_the_workbook_and_row(
    tmp_path: Path, rows: list[list[str | int | None]], line: int, message: str
) -> None:
    kf = kfall_tree(tmp_path, rows)
    with pytest.raises(DatasetFormatError, match=re.escape(message)) as info:
        describe(kf / "sensor_data" / "SA08" / "S08T34R02.csv")
    assert info.value.line == line
    assert info.value.path.name == "SA08_label.xlsx"


def test_a_broken_workbook_is_a_clear_error(tmp_path: Path) -> None:
    kf = kfall_tree(tmp_path)
    book = kf / "label_data" / "SA08_label.xlsx"
    book.write_bytes(b"PK\x03\x04 not really a zip")
    read_labels.cache_clear()
    with pytest.raises(DatasetFormatError, match=r"not a readable \.xlsx"):
        describe(kf / "sensor_data" / "SA08" / "S08T34R02.csv")


def _damage(book: Path, how: str) -> None:
    """Damage the archive as a disk or a foreign tool might: a deflate stream that does not
    inflate, an encrypted part, or a compression method zipfile does not have."""
    data = bytearray(book.read_bytes())
    if how == "deflate":  # the first part's data: a block of the reserved type 3
        name_len, extra_len = int.from_bytes(data[26:28], "little"), data[28] | data[29] << 8
        data[30 + name_len + extra_len] = 0xFF
    else:
        at = data.find(b"PK\x01\x02")  # the first central directory entry
        if how == "encrypted":
            data[at + 8] |= 1  # general purpose flag bit 0: encrypted
        else:
            data[at + 10 : at + 12] = (99).to_bytes(2, "little")  # compression method 99
    book.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("deflate", "invalid block type"),
        ("encrypted", "is encrypted, password required"),
        ("method", "compression method is not supported"),
    ],
)
def test_a_damaged_workbook_archive_is_a_clear_error(tmp_path: Path, how: str, says: str) -> None:
    """zipfile raises more than BadZipFile for a damaged archive (zlib.error, RuntimeError,
    NotImplementedError): each ended evaluate with a traceback instead of skipping the file."""
    book = tmp_path / "SA08_label.xlsx"
    with zipfile.ZipFile(book, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/workbook.xml", "<workbook>" + "<sheets/>" * 20 + "</workbook>")
    _damage(book, how)
    with pytest.raises(DatasetFormatError, match=r"not a readable \.xlsx workbook: ") as info:
        read_first_sheet(book)
    assert says in info.value.message
    assert info.value.line == 1


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ('<row r="\u00b2"><c><v>1</v></c></row>', "bad row number '\u00b2'"),  # isdigit, not int
        (f'<row r="{"1" * 5000}"/>', "bad row number '11111111111111111111'"),  # int()'s limit
        ('<row r="1"><c r="ZZZZZZZZZ1"><v>1</v></c></row>', "bad cell reference 'ZZZZZZZZZ1'"),
        ('<row r="1"><c r="XFE1"><v>1</v></c></row>', "bad cell reference 'XFE1'"),
    ],
    ids=["superscript-row", "5000-digit-row", "column-ZZZZZZZZZ", "column-past-XFD"],
)
def test_a_row_number_or_cell_reference_no_sheet_has_is_a_clear_error(
    tmp_path: Path, row: str, says: str
) -> None:
    """A row numbered "²" (str.isdigit takes it, int() does not) or with 5,000 digits raised
    ValueError; a cell in column ZZZZZZZZZ had the reader fill in the 5.4 trillion empty cells
    before it (MemoryError). Excel's last column is XFD."""
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    book = tmp_path / "SA08_label.xlsx"
    with zipfile.ZipFile(book, "w") as z:
        z.writestr("xl/workbook.xml", f"<workbook {ns}><sheets><sheet/></sheets></workbook>")
        z.writestr(
            "xl/worksheets/sheet1.xml", f"<worksheet {ns}><sheetData>{row}</sheetData></worksheet>"
        )
    with pytest.raises(DatasetFormatError) as info:
        read_first_sheet(book)
    assert info.value.message == says
    assert info.value.line == 1
    last = '<row r="1"><c r="XFD1"><v>1</v></c></row>'
    with zipfile.ZipFile(book, "w") as z:
        z.writestr("xl/workbook.xml", f"<workbook {ns}><sheets><sheet/></sheets></workbook>")
        z.writestr(
            "xl/worksheets/sheet1.xml", f"<worksheet {ns}><sheetData>{last}</sheetData></worksheet>"
        )
    assert read_first_sheet(book) == [[""] * 16_383 + ["1"]]


def test_a_sheet_of_more_cells_than_a_label_sheet_has_is_refused(tmp_path: Path) -> None:
    """A cell in column XFD on each row: 16,384 cells a row, so 10,000 rows of them (1 MB of
    XML) were 164 million cells, 1.3 GB of lists. A label sheet has some 400."""
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rows = "".join(f'<row r="{i}"><c r="XFD{i}"><v>1</v></c></row>' for i in range(1, 101))
    book = tmp_path / "SA08_label.xlsx"
    with zipfile.ZipFile(book, "w") as z:
        z.writestr("xl/workbook.xml", f"<workbook {ns}><sheets><sheet/></sheets></workbook>")
        z.writestr(
            "xl/worksheets/sheet1.xml", f"<worksheet {ns}><sheetData>{rows}</sheetData></worksheet>"
        )
    with pytest.raises(DatasetFormatError) as info:
        read_first_sheet(book)
    assert info.value.message == "over the 1,000,000 cells a label sheet may have"
    assert info.value.line == 62  # 61 rows are 999,424 cells


def test_a_fall_without_its_label_is_an_error_an_adl_is_not(tmp_path: Path) -> None:
    kf = kfall_tree(tmp_path)
    (kf / "label_data" / "SA08_label.xlsx").unlink()
    with pytest.raises(DatasetFormatError, match="without its label file"):
        describe(kf / "sensor_data" / "SA08" / "S08T34R02.csv")
    assert describe(kf / "sensor_data" / "SA08" / "S08T06R01.csv").label == "adl"
    write_xlsx(kf / "label_data" / "SA08_label.xlsx", [LABEL_HEADER])
    read_labels.cache_clear()
    with pytest.raises(DatasetFormatError, match="no label for task 34 trial 2"):
        describe(kf / "sensor_data" / "SA08" / "S08T34R02.csv")


def test_malformed_sensor_lines_name_file_and_line(tmp_path: Path) -> None:
    kf = kfall_tree(tmp_path)
    p = kf / "sensor_data" / "SA08" / "S08T06R01.csv"
    lines = p.read_text().splitlines(keepends=True)
    lines[5] = "0.05,5,-0.05,oops,0.01,1.5,-2.0,0.25,88.0,-2.0,-20.0\n"
    p.write_text("".join(lines))
    with pytest.raises(DatasetFormatError, match="non-numeric") as info:
        list(iter_kfall(p))
    assert info.value.line == 6
    p.write_text("t,ax\n1,2\n")
    with pytest.raises(DatasetFormatError, match="header"):
        list(iter_kfall(p))


# --- the real data ----------------------------------------------------------------


def _mean(samples: list[tuple[float, ...]], i: int) -> float:
    return statistics.fmean(s[i] for s in samples)


def test_axes_verified_on_the_data() -> None:
    """Standing reads -1 g on y (y points down); lying on the back after a
    backward fall reads +1 g on z and face down after a forward fall -1 g
    (z points forward): SisFall's mounting, x=right y=down z=forward."""
    assert KFALL_MOUNTING == SISFALL_MOUNTING
    stand = list(iter_kfall(kfall_file("S06T01R01.csv")))
    assert _mean(stand[:300], 2) == pytest.approx(-1.0, abs=0.05)
    for name in ("S06T34R01.csv", "S07T21R01.csv"):  # backward slip, backward sit-down fall
        end = list(iter_kfall(kfall_file(name)))[-100:]
        assert _mean(end, 3) == pytest.approx(1.0, abs=0.1)
    forward = list(iter_kfall(kfall_file("S06T20R01.csv")))[-100:]
    assert _mean(forward, 3) == pytest.approx(-1.0, abs=0.1)


def test_every_real_fall_has_its_label_and_lasts_past_its_impact() -> None:
    root = kfall_dir()
    falls = [describe(p) for p in discover(root / "sensor_data" / "SA06")]
    falls = [r for r in falls if r.label == "fall"]
    assert len(falls) > 60
    for rec in falls:
        assert rec.onset_t is not None and rec.impact_t is not None
        assert 0.0 < rec.onset_t < rec.impact_t
        samples = list(iter_kfall(rec.path))
        assert samples[-1].t > rec.impact_t
