"""The cells of a spreadsheet's first sheet, read with the standard library.

An ``.xlsx`` file is a zip archive of XML parts (ECMA-376, "Office Open
XML"): ``xl/workbook.xml`` lists the sheets, ``xl/_rels/workbook.xml.rels``
says which part holds each, and a sheet part holds ``<row>``s of ``<c>``
cells whose text is a number (``<v>``), an inline string (``<is><t>``) or an
index into ``xl/sharedStrings.xml``. Reading that takes ``zipfile`` and
``xml.etree`` and some forty lines, so the KFall labels need no third-party
dependency (openpyxl would be the alternative: well kept, but 4 MB and a
dependency of the offline tools for one table per subject).

Only what a data table needs is supported: cell text as strings, no
formulas evaluated (their cached value is read), no dates, no styles.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path
from xml.etree import ElementTree

from tools.datasets.errors import DatasetFormatError
from tools.datasets.limits import MAX_LABEL_PART_BYTES, MAX_LABEL_ROWS

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_CELL_REF = re.compile(r"^([A-Z]{1,3})([0-9]+)$")
"""A cell reference: one to three column letters (up to ``XFD``) and ASCII digits."""
MAX_COLUMNS = 16_384
"""A sheet's columns, as in Excel (``A`` to ``XFD``): the cells before a cell are filled in,
so ``ZZZZZZZZZ1`` would have been 5.4 trillion empty cells (a MemoryError, or a Pi's swap)."""
MAX_CELLS = 1_000_000
"""Cells in a sheet, empty ones filled in included: KFall's sheets have some 400. A 1 MB part
can put a cell in column XFD on each of 10,000 rows: 164 million cells (1.3 GB of list)."""
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)
"""What :mod:`zipfile` raises for a damaged or foreign archive besides ``BadZipFile``: a
deflate stream that does not inflate (``zlib.error``), one cut short (``EOFError``), a
compression method it lacks (``NotImplementedError``) and an encrypted part
(``RuntimeError``, "password required")."""


def read_first_sheet(path: str | Path) -> list[list[str]]:
    """Every row of the workbook's first sheet as a list of cell texts
    (``""`` for an empty cell), rows in sheet order, gaps kept as empty rows.

    Raises :class:`DatasetFormatError` (line = the sheet row, or 1 for the
    file as a whole) for anything that is not a readable workbook.
    """
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as z:
            names = set(z.namelist())
            shared = _shared_strings(z) if "xl/sharedStrings.xml" in names else []
            sheet = _first_sheet_part(z, names)
            root = ElementTree.fromstring(_part(z, sheet))
    except (*_DAMAGED, KeyError, ElementTree.ParseError, OSError) as e:
        raise DatasetFormatError(p, 1, f"not a readable .xlsx workbook: {e}") from None
    except _TooLarge as e:
        raise DatasetFormatError(p, 1, str(e)) from None
    rows: list[list[str]] = []
    cell_count = 0
    data = root.find(f"{_MAIN}sheetData")
    if data is None:
        raise DatasetFormatError(p, 1, "the first sheet has no sheetData")
    for row in data.iter(f"{_MAIN}row"):
        number = len(rows) + 1
        r = row.get("r")
        if r is not None:
            if not (r.isascii() and r.isdigit() and len(r) <= 18):  # str.isdigit takes "²"
                raise DatasetFormatError(p, number, f"bad row number {r[:20]!r}")
            if int(r) < number:
                raise DatasetFormatError(p, number, f"row number {r!r} out of order")
            number = int(r)
        if number > MAX_LABEL_ROWS:  # row r="1000000000" would be that many empty rows
            raise DatasetFormatError(
                p, number, f"over the {MAX_LABEL_ROWS:,} rows a label sheet may have"
            )
        while len(rows) < number - 1:
            rows.append([])
        cells: list[str] = []
        for c in row.iter(f"{_MAIN}c"):
            ref = c.get("r")
            if ref is not None:
                m = _CELL_REF.match(ref)
                col = -1 if m is None else _column_index(m.group(1))
                if m is None or col >= MAX_COLUMNS:
                    raise DatasetFormatError(p, number, f"bad cell reference {ref[:20]!r}")
                if cell_count + col > MAX_CELLS:
                    raise DatasetFormatError(
                        p, number, f"over the {MAX_CELLS:,} cells a label sheet may have"
                    )
                while len(cells) < col:
                    cells.append("")
            cells.append(_cell_text(c, shared, p, number))
        cell_count += len(cells)
        rows.append(cells)
    return rows


def _column_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ord(ch) - ord("A") + 1)
    return n - 1


def _cell_text(c: ElementTree.Element, shared: list[str], path: Path, row: int) -> str:
    kind = c.get("t", "n")
    if kind == "inlineStr":
        node = c.find(f"{_MAIN}is")
        return "" if node is None else "".join(t.text or "" for t in node.iter(f"{_MAIN}t"))
    v = c.find(f"{_MAIN}v")
    text = "" if v is None or v.text is None else v.text
    if kind == "s" and text:
        # int() takes " -1 " and Python's index takes -1 (the last string): neither is a
        # shared string's number, which is a plain count from 0
        if text.isdecimal() and text.isascii() and int(text) < len(shared):
            return shared[int(text)]
        raise DatasetFormatError(path, row, f"shared string {text!r} does not exist")
    return text


class _TooLarge(Exception):
    """A part that unpacks to more than :data:`MAX_LABEL_PART_BYTES`."""


def _part(z: zipfile.ZipFile, name: str) -> bytes:
    """A part's bytes, refused (before unpacking) over :data:`MAX_LABEL_PART_BYTES`: a few
    kilobytes of zip can unpack to gigabytes. zipfile reads no more than the size the
    archive states (a part whose data runs longer fails its CRC check)."""
    size = z.getinfo(name).file_size
    if size > MAX_LABEL_PART_BYTES:
        raise _TooLarge(
            f"{name} unpacks to {size:,} bytes, over the {MAX_LABEL_PART_BYTES:,} a label "
            "sheet's part may have: not a label workbook?"
        )
    return z.read(name)


def _shared_strings(z: zipfile.ZipFile) -> list[str]:
    root = ElementTree.fromstring(_part(z, "xl/sharedStrings.xml"))
    return ["".join(t.text or "" for t in si.iter(f"{_MAIN}t")) for si in root.iter(f"{_MAIN}si")]


def _first_sheet_part(z: zipfile.ZipFile, names: set[str]) -> str:
    """The zip member holding the workbook's first sheet."""
    workbook = ElementTree.fromstring(_part(z, "xl/workbook.xml"))
    sheet = workbook.find(f"{_MAIN}sheets/{_MAIN}sheet")
    if sheet is None:
        raise KeyError("the workbook lists no sheet")
    rel_id = sheet.get(f"{_REL}id")
    if rel_id is not None and "xl/_rels/workbook.xml.rels" in names:
        rels = ElementTree.fromstring(_part(z, "xl/_rels/workbook.xml.rels"))
        for rel in rels.iter(f"{_PKG_REL}Relationship"):
            if rel.get("Id") == rel_id:
                target = rel.get("Target", "")
                part = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
                if part in names:
                    return part
    if "xl/worksheets/sheet1.xml" in names:
        return "xl/worksheets/sheet1.xml"
    raise KeyError("the first sheet's part is missing")
