"""The physio's report as one A4 page, drawn with fpdf2 (vector charts, a Unicode font).

Imported only when a PDF is asked for: fpdf2 is the ``caregiver`` extra's, and the
service runs without it (the CSV needs nothing). The page holds the newest
:data:`TABLE_WEEKS` weeks and at most :data:`INCIDENT_ROWS` incidents (as many as fit
above the footnote), so it is always one page; the CSV has every week.

The text is set in Liberation Sans, with DejaVu Sans for what it lacks, embedded as subsets
of the glyphs the page uses (Debian's ``fonts-liberation2`` and ``fonts-dejavu-core``): a
patient's file must show the patient's name as written ("Ζωή Παπαδοπούλου", "Łukasz Żółć",
"Анна"), which the PDF core font Helvetica (Latin-1 only) printed as "????". Without the font
the page is still made, in Helvetica, and says which characters it could not show and why;
so does a character no installed font has (see :class:`_Page`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path

from fpdf import FPDF
from fpdf.bidi import BidiParagraph
from fpdf.enums import TextDirection, XPos, YPos
from fpdf.fonts import TTFFont

from caregiver.localtime import day_words, words, zone_said
from caregiver.report import Report, ReportWeek
from caregiver.story import COUNTED, closed_how, incident_kind
from core.progress import (
    GOAL_BACKWARD_MIN,
    GOAL_SESSIONS_PER_WEEK,
    MILESTONE_WEEKS,
    short_of_goal,
    stretch_value,
    week_start,
)

log = logging.getLogger(__name__)
# fontTools, which fpdf2 subsets the embedded fonts with, logs every table of every subset at
# INFO: about 100 lines a PDF, in the terminal of `retroguard caregiver report --pdf` and in the
# service's journal for each download. Its warnings and errors still show.
logging.getLogger("fontTools").setLevel(logging.WARNING)

TABLE_WEEKS = 12
CHART_WEEKS = 12
INCIDENT_ROWS = 6
_INK = (0, 0, 0)
_BAR = (31, 63, 119)
_GOAL = (176, 0, 0)
_GREY = (110, 110, 110)
_MARGIN = 14.0
_WIDTH = 210.0 - 2 * _MARGIN
_HEADING_MM = 8.0
"""A heading's height with the space above it."""
_HEADER_ROW_MM = 5.2
_ROW_MM = 4.6
"""A table's header row and each of its rows."""

# The fonts are looked up at the fixed paths where Debian and Raspberry Pi OS install them,
# not asked of fontconfig (``fc-match``): fc-match always answers with some font, a
# substitute of other widths when the one asked for is missing (the page is laid out for
# Helvetica's and must stay one page), needs fontconfig's tools, and costs a process a report.
_TRUETYPE = Path("/usr/share/fonts/truetype")
FONT_NAME = "Liberation Sans"
FONT_PACKAGE = "fonts-liberation2"
FONT_FILES: tuple[dict[str, Path], ...] = tuple(
    {
        "": _TRUETYPE / d / "LiberationSans-Regular.ttf",
        "B": _TRUETYPE / d / "LiberationSans-Bold.ttf",
    }
    for d in ("liberation2", "liberation")  # fonts-liberation2, else fonts-liberation (1.07)
)
"""The page's font, regular and bold, the first of these found: Liberation Sans has
Helvetica's widths (it is Arial's metric twin, Arial Helvetica's), so the page is laid out
as with the core font it replaces, and it has Latin, Greek, Cyrillic (version 2: Vietnamese
and Hebrew too)."""
FALLBACK_FONTS: tuple[tuple[str, dict[str, Path]], ...] = (
    ("DejaVu Sans", {"": _TRUETYPE / "dejavu/DejaVuSans.ttf",  # fonts-dejavu-core
                     "B": _TRUETYPE / "dejavu/DejaVuSans-Bold.ttf"}),
    ("Droid Sans Fallback", {"": _TRUETYPE / "droid/DroidSansFallbackFull.ttf"}),
    ("Noto Sans CJK", {"": Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")}),
)  # fmt: skip
"""Fonts for the characters Liberation Sans lacks, tried in turn, each loaded only for a page
that needs it: DejaVu Sans (Debian's ``fonts-dejavu-core``, a dependency: Arabic, Hebrew,
Vietnamese, Armenian, Georgian ...), then for Chinese, Japanese and Korean whichever of
``fonts-droid-fallback`` and ``fonts-noto-cjk`` is installed (none is a dependency: megabytes
each)."""
_DEJAVU, _DEJAVU_PACKAGE = "dejavu sans", "fonts-dejavu-core"  # (fpdf2's key: family lower case)
_CJK_HINT = "install fonts-noto-cjk for Chinese, Japanese or Korean"
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    """A missing font is said once a process, not on every report the service makes."""
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


class _Page:
    """The page and the fonts its text is set in. Every text goes through :meth:`text`, which
    keeps the characters the font (or a fallback font) has and puts "?" for the others,
    noting them in :attr:`missing`: the footnote then says which and why (:meth:`notice`)."""

    def __init__(self) -> None:
        pdf = FPDF(orientation="portrait", unit="mm", format="A4")
        pdf.set_auto_page_break(False)
        pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
        pdf.add_page()
        self.pdf = pdf
        self.family = FONT_NAME if self._add_font() else "Helvetica"
        self.fallbacks: list[TTFFont] = []
        self.untried = list(FALLBACK_FONTS)  # loaded in turn when a character needs them
        self.missing: set[str] = set()

    def _add(self, family: str, files: dict[str, Path]) -> list[TTFFont]:
        """The family's fonts added to the page; an exception for a missing or damaged file."""
        for style, path in files.items():
            self.pdf.add_font(family, style, path)
        fonts = [self.pdf.fonts[f"{family.lower()}{style}"] for style in files]
        return [font for font in fonts if isinstance(font, TTFFont)]

    def _add_font(self) -> bool:
        """Add the first of :data:`FONT_FILES` found; False (and a warning) for none."""
        problems = []
        for files in FONT_FILES:
            try:
                self._add(FONT_NAME, files)
            except Exception as exc:  # a missing or damaged file: the page is made all the same
                problems.append(str(exc))
                continue
            return True
        _warn_once(
            f"PDF report: no usable font {FONT_NAME} ({'; '.join(problems)}): install the Debian "
            f"package {FONT_PACKAGE}; until then letters outside Latin-1 (names in Greek, "
            "Cyrillic, Polish ...) are printed as ? in the report, which says so"
        )
        return False

    def _fallback_has(self, code: int) -> bool:
        """Whether a fallback font has the character, loading the next ones until one does."""
        if any(code in font.cmap for font in self.fallbacks):
            return True
        while self.untried:
            family, files = self.untried.pop(0)
            if not all(path.is_file() for path in files.values()):
                continue  # not installed: optional, or said in the footnote if needed
            try:
                fonts = self._add(family, files)
            except Exception as exc:
                _warn_once(f"PDF report: fallback font {family} not usable ({exc})")
                continue
            self.fallbacks.extend(fonts)
            self.pdf.set_fallback_fonts(
                sorted({f.fontkey.rstrip("BI") for f in self.fallbacks}), exact_match=False
            )
            if any(code in font.cmap for font in fonts):
                return True
        return False

    def text(self, value: str) -> str:
        """``value`` as the current font can show it: each character it (or a fallback font)
        has, "?" for the others (noted in :attr:`missing`)."""
        font = self.pdf.current_font
        out = []
        for ch in unicodedata.normalize("NFC", value):
            code = ord(ch)
            if isinstance(font, TTFFont):
                shown = ch == "\n" or code in font.cmap or self._fallback_has(code)
            else:  # the core font: Latin-1
                shown = code < 256
            out.append(ch if shown else "?")
            if not shown:
                self.missing.add(ch)
        text = "".join(out)
        if any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text):
            # A Hebrew or Arabic name, written right to left: fpdf2 puts text in visual order
            # only with text shaping (uharfbuzz, not a dependency), else prints it backwards.
            # Its pure-Python bidi algorithm orders it; Arabic letters stay unjoined.
            text = BidiParagraph(text, base_direction=TextDirection.LTR).get_reordered_string()
        return text

    def notice(self) -> str:
        """The footnote's line on the characters shown as "?", empty when there were none."""
        if not self.missing:
            return ""
        if self.family != FONT_NAME:
            return (
                f" Characters shown as ?: the font {FONT_NAME} (Debian package {FONT_PACKAGE}) "
                "is not installed."
            )
        codes = " ".join(f"U+{ord(ch):04X}" for ch in sorted(self.missing))
        hint = _CJK_HINT
        if not any(font.fontkey.startswith(_DEJAVU) for font in self.fallbacks):
            hint = f"install {_DEJAVU_PACKAGE}, and {hint.removeprefix('install ')}"
        return f" Characters shown as ? are in no installed font ({codes}: {hint})."

    def font(self, size: float, style: str = "") -> None:
        self.pdf.set_font(self.family, style, size)

    def line(self, text: str, size: float = 9.5, style: str = "", height: float = 5.0) -> None:
        self.font(size, style)
        self.pdf.multi_cell(_WIDTH, height, self.text(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def heading(self, text: str) -> None:
        self.pdf.ln(_HEADING_MM - 6.5)
        self.line(text, 11.5, "B", 6.5)

    def one_line(self, text: str) -> str:
        """``text`` cut to one line of the page in the current font, ending "...", when it is
        longer: a line whose length the page cannot bound (a custom plan's words, each
        interval's belt speed said) takes no room the rest of the page needs."""
        room = _WIDTH - 2 * self.pdf.c_margin

        def fits(candidate: str) -> bool:
            return self.pdf.get_string_width(self.text(candidate)) <= room

        if fits(text):
            return text
        short, long = 0, len(text)  # the longest prefix that fits with "..." after it
        while short < long:
            middle = (short + long + 1) // 2
            if fits(text[:middle].rstrip() + "..."):
                short = middle
            else:
                long = middle - 1
        return text[:short].rstrip(" ,;:") + "..."

    def table(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        widths: Sequence[float],
        align: str = "",
    ) -> None:
        """``align``: a column's "L" or "R", one letter each; by default the first column's
        words are set left and the rest, figures, right. A column of words set right ("Fall,
        not getting up" over "Stumble") read as ragged figures."""
        pdf = self.pdf
        align = align or "L" + "R" * (len(widths) - 1)
        self.font(8, "B")
        pdf.set_fill_color(225, 230, 240)
        for text, w in zip(header, widths, strict=True):
            pdf.cell(w, _HEADER_ROW_MM, self.text(text), border=1, align="C", fill=True)
        pdf.ln(_HEADER_ROW_MM)
        self.font(8)
        for row in rows:
            for text, w, side in zip(row, widths, align, strict=True):
                pdf.cell(w, _ROW_MM, self.text(text), border=1, align=side)
            pdf.ln(_ROW_MM)


def _plans_stretch(weeks: Sequence[ReportWeek]) -> float | None:
    """The longest backward stretch the plans walked in the report prescribe (None: not known,
    :attr:`ReportWeek.plan_stretch_s`): what the stretch is said against."""
    stretches = [w.plan_stretch_s for w in weeks if w.progress.sessions]
    if not stretches or None in stretches:
        return None
    return max(s for s in stretches if s is not None)


def _bars(
    page: _Page,
    x: float,
    y: float,
    w: float,
    h: float,
    title: str,
    weeks: Sequence[ReportWeek],
    value: Callable[[ReportWeek], float],
    goal: float,
    goal_label: str,
) -> None:
    """A small bar chart with a dashed goal line, axis labels in the chart's units."""
    pdf = page.pdf
    page.font(9, "B")
    pdf.set_xy(x, y)
    pdf.cell(w, 5, page.text(title))
    top_value = max([goal * 1.2, *(value(wk) * 1.1 for wk in weeks)])
    left, bottom, plot_w, plot_h = x + 9, y + 6 + h, w - 10, h
    pdf.set_draw_color(*_INK)
    pdf.set_line_width(0.25)
    pdf.line(left, bottom, left + plot_w, bottom)
    pdf.line(left, bottom, left, bottom - plot_h)
    page.font(7)
    for tick in (0.0, goal):
        ty = bottom - plot_h * tick / top_value
        pdf.set_xy(x - 1, ty - 2)
        pdf.cell(9, 4, f"{tick:g}", align="R")
    n = max(1, len(weeks))
    slot = plot_w / n
    pdf.set_fill_color(*_BAR)
    year = None  # the year under the first week named and under each a new year starts
    for i, wk in enumerate(weeks):
        bar_h = plot_h * value(wk) / top_value
        if bar_h > 0:
            pdf.rect(left + i * slot + slot * 0.15, bottom - bar_h, slot * 0.7, bar_h, style="F")
        if i % max(1, n // 6) == 0 or i == n - 1:
            pdf.set_xy(left + i * slot - 2, bottom + 0.5)
            pdf.cell(slot + 4, 3.5, page.text(wk.label), align="C")
            if wk.monday.year != year:
                year = wk.monday.year
                pdf.set_xy(left + i * slot - 2, bottom + 3.5)
                pdf.cell(slot + 4, 3.5, str(year), align="C")
    gy = bottom - plot_h * goal / top_value
    pdf.set_draw_color(*_GOAL)
    pdf.set_line_width(0.5)
    pdf.set_dash_pattern(dash=1.6, gap=1.0)
    pdf.line(left, gy, left + plot_w, gy)
    pdf.set_dash_pattern()
    pdf.set_text_color(*_GOAL)
    page.font(7, "B")
    pdf.set_xy(left + 1, gy - 4)
    pdf.cell(plot_w - 2, 3.5, page.text(goal_label))
    pdf.set_text_color(*_INK)
    pdf.set_draw_color(*_INK)


def _when(report: Report, timestamp: float) -> str:
    """ "Sun 6 Dec 2026, 10:47 UTC": in the report's zone, named as the banner names it (an
    incident in summer says "CEST" in a report made in winter), in the pages' words
    (:func:`caregiver.localtime.words`)."""
    zone = report.generated.tzinfo or dt.UTC
    return words(dt.datetime.fromtimestamp(timestamp, dt.UTC), zone, seconds=False)


def _zone(report: Report) -> str:
    """The report's zone as a person knows it ("UTC", "CET"), not its IANA key ("Etc/UTC")."""
    return zone_said(report.generated.tzinfo or dt.UTC, report.generated)


def report_pdf(report: Report) -> bytes:
    """The report as a one-page PDF."""
    page = _Page()
    pdf = page.pdf
    page.line(f"RetroGuard walking report: {report.walker}", 16, "B", 8)
    profile = report.walker_id != "default" or report.shared  # whose, on a shared treadmill
    page.line(
        f"Device {report.device_id}"
        f"{f', walker profile {report.walker_id}' if profile else ''}. "
        f"Weeks {report.period} (ISO weeks, {_zone(report)}). "
        f"Made {_when(report, report.generated.timestamp())}.",
        8.5,
    )
    page.line(
        # The goal, not the prescription: a progression schedule prescribes its own count a
        # week (the adherence below says it), and "Prescription: ... 3 times a week" read as
        # the physio's prescription beside "this week 0 of 4".
        f"Goal: backward walking on the treadmill, {GOAL_BACKWARD_MIN:g} straight "
        f"minutes backward, {GOAL_SESSIONS_PER_WEEK} times a week; a difference in balance "
        f"and joint strength is expected after about {report.milestone.needed} weeks at goal.",
        8.5,
    )
    for n, plan in enumerate(report.plans):  # what was walked, not only its name
        page.font(8.5)  # (one_line measures in the line's font)
        page.line(
            page.one_line(
                f"{'Plans walked (newest first): ' if n == 0 else ''}{plan.name} "
                f"({plan.sessions} session{'s' if plan.sessions != 1 else ''}): {plan.words}."
            ),
            8.5,
        )
    weeks = report.weeks
    page.heading("Summary")
    if report.sessions:
        now = weeks[-1].progress
        # The report's last week is the one under way: it counts in the total once its
        # sessions are done, never as sessions missed while the walker still has days for them.
        counted = [w.progress for w in weeks[:-1]] + ([now] if now.adherence_met else [])
        # Each week against its own prescription: six sessions one week and none the next
        # read "6 of 6 (100 %)" when a week's extra sessions made up for a missed week.
        done = sum(min(w.done, w.prescribed) for w in counted)
        extra = sum(w.done for w in counted) - done
        prescribed = sum(w.prescribed for w in counted)
        beyond = f", and {extra} more beyond a week's prescription" if extra else ""
        page.line(
            f"Adherence: {done} of {prescribed} prescribed sessions done over {len(counted)} "
            f"week{'s' if len(counted) != 1 else ''} ({100 * done / max(1, prescribed):.0f} %)"
            f"{beyond}; this week {now.done} of {now.prescribed}."
            if counted
            else f"Adherence: this week {now.done} of {now.prescribed} prescribed sessions done "
            "so far."
        )
        longest = max(w.progress.longest_backward_s for w in weeks)
        # in the words of the progress page and the session summary (core.progress): a walker
        # whose plans could not yet hold 10 minutes is not read as short of them
        value = stretch_value(longest, _plans_stretch(weeks))
        # a week with no session yet says so, as the progress page does ("none (no session
        # walked)"), not "0.0 min", a figure that looked measured
        this_week = (
            f"this week {now.longest_backward_s / 60:.1f} min"
            if now.sessions
            else "this week no session walked"
        )
        # one bracket, not two in a row: "2.0 min (the 10-minute goal comes with later
        # plans; this week 2.0 min)"
        said = f"{value[:-1]}; {this_week})" if value.endswith(")") else f"{value} ({this_week})"
        page.line(f"Longest backward stretch: {said}.")
    elif weeks:  # the walker has not walked yet: their week as prescribed, none done
        now = weeks[-1].progress
        page.line(
            f"No guided session recorded yet: this week {now.done} of {now.prescribed} "
            "prescribed sessions done."
        )
    else:
        page.line("No guided session recorded yet.")
    m = report.milestone
    page.line(
        f"Weeks at goal: {m.weeks_at_goal} of {m.needed}"
        + (" - the milestone is reached." if m.reached else ".")
        + f" {COUNTED['incidents']} (falls, stumbles, calls for help, monitor faults): "
        + f"{len(report.incidents)}, {sum(1 for i in report.incidents if i.open)} still open."
    )

    chart_weeks = weeks[-CHART_WEEKS:]
    y = pdf.get_y() + 2
    half = (_WIDTH - 6) / 2
    _bars(page, _MARGIN, y, half, 31, "Sessions done per week", chart_weeks,
          lambda wk: float(wk.progress.done), float(chart_weeks[-1].progress.prescribed)
          if chart_weeks else float(GOAL_SESSIONS_PER_WEEK), "prescribed")  # fmt: skip
    _bars(page, _MARGIN + half + 6, y, half, 31, "Longest backward stretch (min)", chart_weeks,
          lambda wk: wk.progress.longest_backward_s / 60, GOAL_BACKWARD_MIN,
          f"goal {GOAL_BACKWARD_MIN:g} min" + (", with later plans" if short_of_goal(
              max((w.progress.longest_backward_s for w in weeks), default=0.0),
              _plans_stretch(weeks)) else ""))  # fmt: skip
    pdf.set_xy(_MARGIN, y + 46)  # under the charts, 3 mm shorter for the years under their weeks

    page.heading(f"Week by week (newest {min(len(weeks), TABLE_WEEKS)} of {len(weeks)})")
    # Words, not abbreviations ("Done/presc.", "Stumb./falls"), each fitting its column in
    # one line at 8 pt: the full page has no room for a header of two.
    header = ["Week of", "Sessions", "Done", "At goal", "Week at goal", "Min backward",
              "Longest (min)", COUNTED["trips"], COUNTED["stumbles"], COUNTED["falls"],
              COUNTED["incidents"]]  # fmt: skip
    widths: list[float] = [30, 15, 12, 13, 20, 21, 21, 16, 15, 10, 11]
    rows = [
        [
            w.day,  # with its year; the ISO week code is the CSV's, for programs
            f"{w.progress.sessions}{_marks(w)}",
            f"{w.progress.done} of {w.progress.prescribed}",
            str(w.progress.at_goal),
            "yes" if w.progress.goal_met else "no",
            f"{w.progress.backward_s / 60:.1f}",
            # a week with no session says none, as the line above and the progress page do,
            # not "0.0", a figure that looked measured
            f"{w.progress.longest_backward_s / 60:.1f}" if w.progress.sessions else "none",
            str(w.trips),
            str(w.stumbles),
            str(w.falls),
            str(w.incidents),
        ]
        for w in reversed(weeks[-TABLE_WEEKS:])
    ]
    widths[0] = _WIDTH - sum(widths[1:])
    page.table(header, rows, widths)

    page.heading("Balance and gait (weekly medians; a change counts only beyond MDC95)")
    if report.trends:
        t_rows = []
        for t in report.trends:
            unit = t.unit or "-"
            first, last = t.weeks[0], t.weeks[-1]
            c = t.change
            t_rows.append(
                [
                    t.metric.label,
                    unit,
                    f"{first.median:.3g} ({day_words(week_start(first.week))})",
                    f"{last.median:.3g} [{last.low:.3g} to {last.high:.3g}]",
                    "-" if c is None else f"{c.delta:+.3g}",
                    t.noise,
                    "one week only" if c is None else c.verdict,
                ]
            )
        page.table(
            [
                "Metric",
                "Unit",
                "First week",
                "Latest week [95 % band]",
                "Change",
                "MDC95",
                "Reading",
            ],
            t_rows,
            [42, 15, 31, 42, 14, 14, _WIDTH - 158],  # the first week with its year
            "LLRRRRL",  # the unit and the reading are words
        )
    else:
        page.line("No balance check or gait measured yet.")

    candidates = [
        [
            _when(report, i.opened_at),
            incident_kind(i.severity),
            "still open" if i.open else closed_how(i.closed_by, i.closed_via),
        ]
        for i in report.incidents[:INCIDENT_ROWS]
    ]
    page.font(8)  # the rows' characters noted before the footnote says which have no font
    for cell in (c for row in candidates for c in row):
        page.text(cell)
    page.font(_ABOUT_PT[0])
    about = page.text(about_figures(report))
    if any(w.clock_not_set for w in weeks[-TABLE_WEEKS:]):
        about += " " + page.text(CLOCK_NOTE)
    if any(w.closed_by_restart for w in weeks[-TABLE_WEEKS:]):
        about += " " + page.text(RESTART_NOTE)
    notice = page.notice()  # after every text on the page went through page.text
    if notice:
        if page.family == FONT_NAME:  # (no font at all was said once, in _add_font)
            log.warning("PDF report of %s:%s", report.device_id, notice)
        about += page.text(notice)
    # As many of the newest incidents as fit above the footnote at its smallest: the lines
    # above vary (the plans walked, up to REPORT_PLANS), and the fullest page drew its last
    # rows over the footnote (one page: no page break moves them).
    rows_top = pdf.get_y() + _HEADING_MM + _HEADER_ROW_MM
    fit = math.floor((_footnote_top(page, about, _ABOUT_PT[-1]) - 1 - rows_top) / _ROW_MM)
    i_rows = candidates[: max(0, fit)]
    page.heading(f"{COUNTED['incidents']} (newest {len(i_rows)} of {len(report.incidents)})")
    if i_rows:
        page.table(["When", "What happened", "How it ended"], i_rows, [44, 30, _WIDTH - 74], "LLL")
    elif report.incidents:
        page.line("No room for their rows on this page: the dashboard lists them.")
    else:
        page.line("No alert recorded.")
    # The footnote sits on the bottom margin, clear of the fullest page at 7 pt; the line on
    # characters shown as "?" can make it one line too many there: then it is set smaller.
    end = pdf.get_y() + 1
    for size in _ABOUT_PT:
        top = _footnote_top(page, about, size)
        if top >= end:
            break
    height = _ABOUT_MM * size / _ABOUT_PT[0]
    pdf.set_xy(_MARGIN, top)
    pdf.set_text_color(*_GREY)
    pdf.multi_cell(_WIDTH, height, about)
    return bytes(pdf.output())


def _footnote_top(page: _Page, about: str, size: float) -> float:
    """Where the footnote ``about`` starts (mm from the top) set at ``size`` pt on the bottom
    margin; the page's font is left at ``size``."""
    page.font(size)
    height = _ABOUT_MM * size / _ABOUT_PT[0]
    wrapped = page.pdf.multi_cell(_WIDTH, height, about, dry_run=True, output="LINES")
    return 297 - _MARGIN - (len(wrapped) if isinstance(wrapped, list) else 1) * height


_ABOUT_PT = (7.0, 6.5, 6.0)
"""The footnote's font size, and smaller ones for when it does not fit at that."""
_ABOUT_MM = 3.2
"""The footnote's line height at its first size."""


CLOCK_MARK = "*"
"""Marks a week's sessions in the table when some were recorded with the clock not set."""
CLOCK_NOTE = (
    f"{CLOCK_MARK} The treadmill's clock was not set (no network time) during some of the "
    "week's sessions: they may belong to another week."
)
RESTART_MARK = "**"
"""Marks a week's sessions in the table when the treadmill's next start closed some of them
(:attr:`ReportWeek.closed_by_restart`): without it a physio could not tell them from
sessions the walker ended. ASCII, so the Helvetica fallback shows it too."""
RESTART_NOTE = (
    f"{RESTART_MARK} The treadmill restarted before the end of some of the week's sessions "
    "was recorded (a power cut or the monitor stopped): they were closed at its next start "
    "with what was recorded until then, done only if every interval was walked."
)


def _marks(week: ReportWeek) -> str:
    """The marks after a week's sessions in the table ("3*", "3**", "3* **"), each explained
    in the footnote, which says only those some shown week has."""
    marks = [CLOCK_MARK] if week.clock_not_set else []
    marks += [RESTART_MARK] if week.closed_by_restart else []
    return " ".join(marks)


def about_figures(report: Report) -> str:
    """The page's footnote: what its figures mean and how they were worked out, in the words
    of the physiotherapist whose patient file it goes into. Before, it pointed at source
    files ("core/progress.py, docs/gait.md"), which nobody reading a patient's file can open
    or should have to; the rules themselves are those of :mod:`core.progress` and
    :mod:`core.gait_trends` (docs/gait.md, "What change is meaningful")."""
    return (
        "Measures of walking and standing from the sensor at the waist, not a diagnosis and not a "
        f"fall-risk score. Weeks run Monday to Sunday ({_zone(report)} time). A session is "
        f"done when its plan was walked through, and at goal when its longest continuous "
        f"backward stretch reached {GOAL_BACKWARD_MIN:g} min; a week is at goal with "
        f"{GOAL_SESSIONS_PER_WEEK} sessions at goal, and {MILESTONE_WEEKS} weeks at goal, "
        "in any order, are the milestone. Balance and gait: a week's value is the median of "
        "its sessions with its 95 % band. A change from the first week to the latest counts "
        "only beyond the MDC95, the minimal detectable change: a difference measurement "
        "noise alone exceeds less than 5 % of the time, measured in healthy adults within "
        "one visit, so the least a real change must be (smaller: within noise). It is called "
        "improved or worsened only where the better direction is agreed, else up or down. "
        "The CSV report has every week."
    )
