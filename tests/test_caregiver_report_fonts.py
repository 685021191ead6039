"""The PDF report shows a walker's name as written, in any script its fonts have: it was set
in the PDF core font Helvetica, which has Latin-1 only, so "Ζωή Παπαδοπούλου" went into the
patient's file as "??? ????????????". Now Liberation Sans (Debian's fonts-liberation2, or
fonts-liberation) with DejaVu Sans (fonts-dejavu-core) for what it lacks, embedded; without
them, or for a character no installed font has, the page is still made and says so.
Read back with pypdf, as in tests/test_caregiver_reports.py."""

from __future__ import annotations

import datetime as dt
import io
import logging
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

import caregiver.report_pdf as report_pdf_module
from caregiver.report import make_report
from caregiver.report_pdf import report_pdf

NOW = dt.datetime(2026, 3, 28, 9, 0, tzinfo=dt.UTC).timestamp()
WARNING = "caregiver.report_pdf"


def page_of(walker: str) -> tuple[str, set[str]]:
    """The one page's text (whitespace runs made one space) and the fonts it embeds."""
    pdf = PdfReader(io.BytesIO(report_pdf(make_report("tm-1", walker, [], [], [], dt.UTC, NOW))))
    assert len(pdf.pages) == 1
    page = pdf.pages[0]
    fonts: Any = page["/Resources"]["/Font"]
    names = {str(font.get_object()["/BaseFont"]) for font in fonts.values()}
    return " ".join(page.extract_text().split()), names


@pytest.mark.parametrize(
    "walker",
    ["Ζωή Παπαδοπούλου", "Łukasz Żółć", "Анна Смирнова", "Nguyễn Thị Hương", "Zoë Ødegård"],
)
def test_the_walker_s_name_is_printed_as_written(
    walker: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=WARNING):
        text, fonts = page_of(walker)
    assert f"RetroGuard walking report: {walker}" in text
    assert "Characters shown as ?" not in text and not caplog.records
    assert any("LiberationSans" in f for f in fonts), fonts  # embedded (a subset), not core
    assert not any("Helvetica" in f for f in fonts), fonts


def test_a_name_in_a_right_to_left_script_comes_from_the_fallback_font_in_reading_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Liberation Sans has no Arabic: DejaVu Sans draws it. fpdf2 without text shaping drew
    right-to-left text left to right, backwards (read back as "دمحم": pypdf turns runs of
    right-to-left letters back into reading order); it is now drawn in visual order."""
    with caplog.at_level(logging.WARNING, logger=WARNING):
        text, fonts = page_of("محمد")
    assert "RetroGuard walking report: محمد" in text, text[:80]
    assert any("DejaVuSans" in f for f in fonts), fonts
    assert "?" not in text.split(".")[0] and not caplog.records


def test_without_the_font_the_report_is_made_in_helvetica_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No usable Liberation Sans (the lookup pointed at a damaged file, then at an empty
    folder): the page is made as before, in the core font, the name with "?"; the footnote
    says why and a warning says it once a process (not at every report)."""
    (tmp_path / "damaged").mkdir()
    damaged = tmp_path / "damaged" / "LiberationSans-Regular.ttf"
    damaged.write_bytes(b"\0\1\0\0 not a font")
    missing = {"": tmp_path / "LiberationSans-Regular.ttf", "B": tmp_path / "Bold.ttf"}
    monkeypatch.setattr(report_pdf_module, "FONT_FILES", ({"": damaged}, missing))
    monkeypatch.setattr(report_pdf_module, "_warned", set())
    with caplog.at_level(logging.WARNING, logger=WARNING):
        text, fonts = page_of("Ζωή Παπαδοπούλου")
        again, _ = page_of("Ζωή Παπαδοπούλου")
    assert "RetroGuard walking report: ??? ????????????" in text
    assert fonts == {"/Helvetica", "/Helvetica-Bold"}
    assert (
        "Characters shown as ?: the font Liberation Sans (Debian package fonts-liberation2) "
        "is not installed." in text
    )
    assert again == text
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "no usable font Liberation Sans" in warning and "fonts-liberation2" in warning
    # a name the core font has: nothing shown as ?, nothing said on the page
    latin, _ = page_of("Zoë Ødegård")
    assert "RetroGuard walking report: Zoë Ødegård" in latin
    assert "Characters shown as ?" not in latin


def test_a_character_no_installed_font_has_is_a_question_mark_the_page_names(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Chinese with no CJK font installed (the fallbacks limited to DejaVu Sans, which has
    none, whatever this machine has): "?" for each, its code point in the footnote and the
    log, with the package that has it; the rest of the name as written."""
    monkeypatch.setattr(report_pdf_module, "FALLBACK_FONTS", report_pdf_module.FALLBACK_FONTS[:1])
    with caplog.at_level(logging.WARNING, logger=WARNING):
        text, _ = page_of("王芳 (Anna)")
    assert "RetroGuard walking report: ?? (Anna)" in text
    assert (
        "Characters shown as ? are in no installed font (U+738B U+82B3: install fonts-noto-cjk "
        "for Chinese, Japanese or Korean)." in text
    )
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "PDF report of tm-1: Characters shown as ?" in warning and "U+738B" in warning
    # without DejaVu Sans either, the footnote names its package too
    monkeypatch.setattr(report_pdf_module, "FALLBACK_FONTS", ())
    text, _ = page_of("王芳 (Anna)")
    assert (
        "(U+738B U+82B3: install fonts-dejavu-core, and fonts-noto-cjk for Chinese, Japanese or "
        "Korean)." in text
    )


def test_dates_are_written_without_a_leading_zero_as_on_every_other_page() -> None:
    """The report's dates read "Made Thu 5 Mar 2026", as the dashboard writes them; "%d" wrote
    "05 Mar 2026"."""
    fifth = dt.datetime(2026, 3, 5, 9, 0, tzinfo=dt.UTC).timestamp()
    pdf = PdfReader(io.BytesIO(report_pdf(make_report("tm-1", "Ann", [], [], [], dt.UTC, fifth))))
    text = " ".join(pdf.pages[0].extract_text().split())
    assert "Made Thu 5 Mar 2026, 09:00 UTC." in text, text[:300]
    assert "05 Mar" not in text
