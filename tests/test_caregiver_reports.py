"""The physio's report (CSV and one-page PDF) and the balance/gait trends it shares with the
progress page, from stored rows: a real SQLite store, real session payloads as the monitor
publishes them, the PDF read back with pypdf. The dashboard's downloads are tested in
Chromium (tests/test_caregiver_browser.py); ``retroguard caregiver report`` here."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from pypdf import PdfReader

import caregiver.report_pdf as report_pdf_module
from caregiver.progress import parse_summary, progress_view
from caregiver.report import (
    PLAN_ID_COLUMN,
    PLAN_WORDS_COLUMN,
    REPORT_PLANS,
    RESTART_COLUMN,
    PlanWalked,
    Report,
    make_report,
    report_csv,
    report_for,
    week_starts_column,
)
from caregiver.report_pdf import TABLE_WEEKS, report_pdf
from caregiver.storage import Incident, Store, WalkSession
from caregiver.trends import measures_of, trends
from core.gait_trends import METRICS
from core.progress import MAX_WEEKS, WeekSpanTooLong, week_of
from core.protocol.messages import SessionRecord
from core.protocol.plan import plan_words
from core.zones import system_zone
from firmware.session.record import session_payload
from launcher.cli import main
from tests.caregiver_support import physio_month, received, saturday_noon, session_record

DEVICE = "treadmill-1"
MONDAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # 2026-W10
NOW = (MONDAY + dt.timedelta(weeks=3, days=5)).timestamp()  # Saturday of 2026-W13


def incident(opened: dt.datetime, severity: str, *, open_: bool) -> Incident:
    return Incident(
        id=f"{int(opened.timestamp()):032x}", device_id=DEVICE, severity=severity,
        status="open" if open_ else "closed", opened_at=opened.timestamp(),
        opened_wall=opened.isoformat(), first_event_id="e" * 32,
        last_event_at=opened.timestamp(), closed_at=None if open_ else opened.timestamp() + 60,
        closed_by=None if open_ else "ann", closed_via=None if open_ else "dashboard",
        closed_severity=None if open_ else severity,
    )  # fmt: skip


WEEK_WORDS = "2 min forward, 3 min backward / 2 min forward \u00d7 4; belt 0.5 mph"
LONG_WORDS = plan_words(  # a belt speed for each interval, said beside each
    [("forward", 120.0, f"1.{n} km/h") if n % 2 else ("backward", 120.0, f"0.{n} km/h")
     for n in range(1, 10)]
)  # fmt: skip


def stored(database: str) -> Store:
    """A store (SQLite or PostgreSQL) holding :func:`physio_month`'s summaries as received."""
    store = Store(database)
    for record in physio_month(DEVICE, MONDAY):
        row, problem = parse_summary(received(record), DEVICE)
        assert row is not None, problem
        store.record_walk_session(row, session_payload(record), NOW)
    return store


def test_the_trends_come_from_the_stored_summaries_with_band_and_noise(caregiver_db: str) -> None:
    store = stored(caregiver_db)
    found = {t.metric.key: t for t in trends(measures_of(store.walk_session_payloads(DEVICE)),
                                             dt.UTC)}  # fmt: skip
    store.close()
    sway = found["sway_rms_ap"]
    assert [w.week for w in sway.weeks] == ["2026-W10", "2026-W11", "2026-W12", "2026-W13"]
    assert [round(w.median, 2) for w in sway.weeks] == [0.20, 0.18, 0.14, 0.12]
    assert all(w.low < w.median < w.high for w in sway.weeks)
    assert sway.change is not None and sway.change.verdict == "improved"
    assert sway.describe_change() == (
        "Week of 2 Mar to week of 23 Mar: -0.08 m/s², noise (MDC95) 0.046 m/s²: improved"
    )
    cv = found["step_time_cv"]
    assert cv.change is not None and cv.change.verdict == "within noise"  # -0.5 % < 3.7 %
    assert "noise (MDC95) 3.7 %" in cv.describe_change()


def test_the_csv_has_a_row_a_week_with_adherence_progression_incidents_and_trends(
    caregiver_db: str,
) -> None:
    store = stored(caregiver_db)
    report = make_report(
        DEVICE, "Anna", store.walk_sessions(DEVICE),
        measures_of(store.walk_session_payloads(DEVICE)),
        [incident(MONDAY + dt.timedelta(weeks=3, days=1), "help", open_=True),
         incident(MONDAY + dt.timedelta(weeks=1, days=2), "fall", open_=False)],
        dt.UTC, NOW,
    )  # fmt: skip
    store.close()
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert [r["week"] for r in rows] == ["2026-W10", "2026-W11", "2026-W12", "2026-W13"]
    done = [(r["sessions"], r["sessions_done"], r["sessions_prescribed"]) for r in rows]
    assert done == [("3", "3", "3"), ("3", "2", "3"), ("3", "3", "3"), ("3", "3", "3")]
    assert [r["longest_backward_min"] for r in rows] == ["2.0", "2.0", "10.0", "10.0"]
    at_goal = [r["week_at_goal (3 sessions at goal)"] for r in rows]
    assert at_goal == ["no", "no", "yes", "yes"]
    assert [(r["trips"], r["stumbles"], r["incidents"]) for r in rows] == [
        ("0", "0", "0"), ("1", "1", "1"), ("0", "0", "0"), ("0", "0", "1"),
    ]  # fmt: skip
    sway = "balance: sway RMS AP median (m/s²; MDC95 0.046)"
    assert [r[sway] for r in rows] == ["0.2", "0.18", "0.14", "0.12"]
    assert report.milestone.weeks_at_goal == 2


def test_the_csv_says_the_plans_each_week_walked_in_words_and_by_id(caregiver_db: str) -> None:
    """The patient's file says what was prescribed, week by week: the plans the week's
    sessions walked in the dashboard's words (plan_words, from the stored summaries) and, in
    a column of their own for a program, by id; a plan changed mid-week is both, oldest first;
    a week without sessions says none. The columns before them keep their names and places."""
    store = stored(caregiver_db)
    month = physio_month(DEVICE, MONDAY)
    saturday = MONDAY + dt.timedelta(weeks=3, days=5, hours=-2)
    by_hand = session_record(DEVICE, saturday, backward_min=6, longest_min=3, plan="Anna, wk 3")
    row, problem = parse_summary(received(by_hand), DEVICE)
    assert row is not None, problem
    store.record_walk_session(row, session_payload(by_hand), NOW)
    later = (MONDAY + dt.timedelta(weeks=4)).timestamp()  # a week without sessions at the end
    report = report_for(store, DEVICE, "Anna", dt.UTC, later)
    store.close()

    def words(record: SessionRecord) -> str:
        return plan_words([(i.direction, i.planned_s, i.speed) for i in record.intervals])

    two_two, ten, hand = words(month[0]), words(month[-1]), words(by_hand)
    assert two_two == "8 min forward, 2 min backward, 12 min backward, 8 min forward; belt 0.5 mph"
    assert len({two_two, ten, hand}) == 3
    table = report_csv(report)
    header = next(csv.reader(io.StringIO(table)))
    assert header[:5] == [
        "week", week_starts_column(report.zone), "sessions", "sessions_done",
        "sessions_prescribed",
    ]  # fmt: skip
    assert header[-3] == RESTART_COLUMN
    rows = list(csv.DictReader(io.StringIO(table)))
    assert [(r["week"], r[PLAN_WORDS_COLUMN], r[PLAN_ID_COLUMN]) for r in rows] == [
        ("2026-W10", two_two, "alternate-2-2"),
        ("2026-W11", two_two, "alternate-2-2"),
        ("2026-W12", ten, "progression-week-9"),
        ("2026-W13", f"progression-week-9: {ten} | Anna, wk 3: {hand}",
         "progression-week-9 | Anna, wk 3"),
        ("2026-W14", "", ""),
    ]  # fmt: skip


def test_a_plan_named_like_a_formula_is_text_in_the_csv(tmp_path: Path) -> None:
    """A plan's name is free text from the treadmill's plan file: one that begins with "=",
    "+", "-" or "@" ("-2/+2 weeks", "=HYPERLINK(...)") was a formula to the spreadsheet the
    physio opens the file in (an error in the cell at best, a link or a command at worst).
    Such a cell is written as text, behind an apostrophe, as spreadsheets mark text."""
    store = Store(str(tmp_path / "caregiver.db"))
    for hours, plan in ((0, "-2/+2 weeks"), (1, '=HYPERLINK("http://x","open")')):
        record = session_record(DEVICE, MONDAY + dt.timedelta(hours=hours), backward_min=6,
                                longest_min=3, plan=plan)  # fmt: skip
        row, problem = parse_summary(received(record), DEVICE)
        assert row is not None, problem
        store.record_walk_session(row, session_payload(record), NOW)
    report = report_for(store, DEVICE, "Anna", dt.UTC, NOW)
    store.close()
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert rows[0][PLAN_ID_COLUMN] == '\'-2/+2 weeks | =HYPERLINK("http://x","open")'
    assert rows[0][PLAN_WORDS_COLUMN].startswith("'-2/+2 weeks: ")
    one = [dataclasses.replace(w, plans=w.plans[1:]) for w in report.weeks]
    alone = next(csv.DictReader(io.StringIO(report_csv(dataclasses.replace(report, weeks=one)))))
    assert alone[PLAN_ID_COLUMN] == '\'=HYPERLINK("http://x","open")'
    assert alone[PLAN_WORDS_COLUMN].startswith("12 min forward")  # words: a figure, as ever


def test_the_csv_counts_each_week_s_sessions_recorded_with_the_clock_not_set(
    tmp_path: Path,
) -> None:
    """A session recorded before the treadmill's clock was ever set may sit in the wrong
    week: the patient's file says which weeks hold such sessions."""
    store = Store(str(tmp_path / "caregiver.db"))
    for n, record in enumerate(physio_month(DEVICE, MONDAY)):
        if n in (3, 5):  # two of the second week's
            record = msgspec.structs.replace(record, wall_unsynced=True)
        row, problem = parse_summary(received(record), DEVICE)
        assert row is not None, problem
        store.record_walk_session(row, session_payload(record), NOW)
    sessions = store.walk_sessions(DEVICE)
    store.close()
    report = make_report(DEVICE, "Anna", sessions, [], [], dt.UTC, NOW)
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    column = "sessions_clock_not_set (their week may be wrong)"
    assert [(r["week"], r[column]) for r in rows] == [
        ("2026-W10", "0"), ("2026-W11", "2"), ("2026-W12", "0"), ("2026-W13", "0"),
    ]  # fmt: skip


def test_the_pdf_marks_the_weeks_with_sessions_recorded_with_the_clock_not_set(
    tmp_path: Path,
) -> None:
    store = stored(str(tmp_path / "caregiver.db"))
    report = make_report(
        DEVICE, "Anna", store.walk_sessions(DEVICE), [], [], dt.UTC, NOW
    )  # fmt: skip
    store.close()
    text = PdfReader(io.BytesIO(report_pdf(report))).pages[0].extract_text()
    assert "clock was not set" not in text
    weeks = list(report.weeks)
    weeks[1] = dataclasses.replace(weeks[1], clock_not_set=2)
    marked = dataclasses.replace(report, weeks=weeks)
    text = " ".join(PdfReader(io.BytesIO(report_pdf(marked))).pages[0].extract_text().split())
    assert "* The treadmill's clock was not set (no network time) during some of" in text
    assert f"{weeks[1].day} 3*" in text  # the week's sessions, marked
    assert f"{weeks[0].day} 3 " in text


def restarted_month(database: str) -> list[WalkSession]:
    """:func:`physio_month`'s sessions as stored, two of the second week's and one of the
    fourth closed by the device's next start (``interrupted``), the first of them also
    recorded with the clock not set."""
    store = Store(database)
    for n, record in enumerate(physio_month(DEVICE, MONDAY)):
        if n in (3, 4, 10):
            record = msgspec.structs.replace(record, interrupted=True, wall_unsynced=n == 3)
        row, problem = parse_summary(received(record), DEVICE)
        assert row is not None, problem
        store.record_walk_session(row, session_payload(record), NOW)
    sessions = store.walk_sessions(DEVICE)
    store.close()
    return sessions


def test_the_csv_counts_each_week_s_sessions_closed_by_a_restart(tmp_path: Path) -> None:
    """A session the treadmill's next start closed (the monitor stopped before recording its
    end) holds what was recorded until then: the patient's file says how many of each week's
    were, in a column after every other (a sheet reading the others by position still does)."""
    sessions = restarted_month(str(tmp_path / "caregiver.db"))
    report = make_report(DEVICE, "Anna", sessions, measures_of([]), [], dt.UTC, NOW)
    table = report_csv(report)
    header = next(csv.reader(io.StringIO(table)))
    # after every column before it; only the plans walked, which came later, follow it
    assert header[-3:] == [RESTART_COLUMN, PLAN_WORDS_COLUMN, PLAN_ID_COLUMN]
    rows = list(csv.DictReader(io.StringIO(table)))
    assert [(r["week"], r[RESTART_COLUMN]) for r in rows] == [
        ("2026-W10", "0"), ("2026-W11", "2"), ("2026-W12", "0"), ("2026-W13", "1"),
    ]  # fmt: skip
    clock = "sessions_clock_not_set (their week may be wrong)"
    assert [r[clock] for r in rows] == ["0", "1", "0", "0"]
    # without such sessions the column is there, every week 0
    plain = make_report(DEVICE, "Anna", [dataclasses.replace(s, interrupted=0)
                                         for s in sessions], [], [], dt.UTC, NOW)  # fmt: skip
    assert {r[RESTART_COLUMN] for r in csv.DictReader(io.StringIO(report_csv(plain)))} == {"0"}


def test_the_pdf_marks_the_weeks_with_sessions_closed_by_a_restart(tmp_path: Path) -> None:
    """The weekly table marks the weeks some of whose sessions the next start closed, and the
    footnote says in plain words what that means; a report without such a week is unchanged
    (no mark, no note)."""
    sessions = restarted_month(str(tmp_path / "caregiver.db"))
    report = make_report(DEVICE, "Anna", sessions, [], [], dt.UTC, NOW)
    text = " ".join(PdfReader(io.BytesIO(report_pdf(report))).pages[0].extract_text().split())
    assert (
        "** The treadmill restarted before the end of some of the week's sessions was recorded "
        "(a power cut or the monitor stopped): they were closed at its next start" in text
    )
    assert "9 Mar 2026 3* ** " in text  # the clock not set too: both marks
    assert "23 Mar 2026 3** " in text
    assert "16 Mar 2026 3 " in text and "2 Mar 2026 3 " in text
    plain = make_report(DEVICE, "Anna", [dataclasses.replace(s, interrupted=0)
                                         for s in sessions], [], [], dt.UTC, NOW)  # fmt: skip
    text = " ".join(PdfReader(io.BytesIO(report_pdf(plain))).pages[0].extract_text().split())
    assert "restarted" not in text and "**" not in text
    assert "9 Mar 2026 3* " in text and "23 Mar 2026 3 " in text


def test_the_pdf_is_one_page_with_the_table_adherence_longest_stretch_and_incidents(
    tmp_path: Path,
) -> None:
    store = stored(str(tmp_path / "caregiver.db"))
    report = make_report(
        DEVICE, "Anna", store.walk_sessions(DEVICE),
        measures_of(store.walk_session_payloads(DEVICE)),
        [
            incident(MONDAY + dt.timedelta(weeks=1, days=2), "fall", open_=False),
            dataclasses.replace(
                incident(MONDAY + dt.timedelta(weeks=2), "no_recovery", open_=False),
                closed_by="walker", closed_via="walker",
            ),
        ],
        ZoneInfo("Europe/Berlin"), NOW,
    )  # fmt: skip
    store.close()
    pdf = PdfReader(io.BytesIO(report_pdf(report)))
    assert len(pdf.pages) == 1
    text = pdf.pages[0].extract_text()
    assert "RetroGuard walking report: Anna" in text
    assert "Adherence: 11 of 12 prescribed sessions done over 4 weeks (92 %)" in text
    assert "Longest backward stretch: 10.0 of 10 min" in text
    assert "Weeks at goal: 2 of 4." in text
    assert "Sessions done per week" in text and "Longest backward stretch (min)" in text
    assert "16 Mar 2026 3 3 of 3" in text  # a row of the weekly table: its week with its year
    assert "balance: sway RMS AP" in text and "improved" in text and "within noise" in text
    # the incidents in words, not the wire's terms ("no_recovery", "closed by walker (walker)")
    assert "acknowledged by ann on the dashboard" in text and "Fall" in text
    assert "Fall, not getting up" in text and "walker pressed I'm OK" in text
    assert "no_recovery" not in text and "(walker)" not in text
    # the footnote says what the figures mean, for a patient's file: no source paths
    about = " ".join(text.split())
    assert "not a diagnosis" in about and "Weeks run Monday to Sunday (CET time)" in about
    # the zone named as the banner names it, and the time it was made says its zone
    assert "(ISO weeks, CET)" in about and "Made Sat 28 Mar 2026, 10:00 CET." in about
    assert "Wed 11 Mar 2026, 10:00 CET" in about  # an incident's opening, as the pages say it
    assert "Europe/Berlin" not in about
    assert "at goal when its longest continuous backward stretch reached 10 min" in about
    assert "with 3 sessions at goal, and 4 weeks at goal" in about
    assert "the median of its sessions with its 95 % band" in about
    assert "beyond the MDC95, the minimal detectable change" in about
    assert ".py" not in about and "docs/" not in about and ".md" not in about


def test_a_report_across_a_year_s_end_says_each_date_with_its_year(tmp_path: Path) -> None:
    """A report is read months later, and this one spans New Year: the PDF's weeks, the
    trends' first week and the charts' axes say the year ("28 Dec" and "4 Jan" alone read as
    one winter or two); the CSV, opened in a spreadsheet, keeps ISO dates that sort."""
    december = dt.datetime(2026, 12, 14, 9, 0, tzinfo=dt.UTC)  # 2026-W51
    store = Store(str(tmp_path / "caregiver.db"))
    # a year's end to come: read by the report's own clock, its last Saturday
    for record in physio_month(DEVICE, december, now=december + dt.timedelta(weeks=3, days=5)):
        row, problem = parse_summary(received(record), DEVICE)
        assert row is not None, problem
        store.record_walk_session(row, session_payload(record), NOW)
    now = (december + dt.timedelta(weeks=3, days=5)).timestamp()
    fall = incident(december + dt.timedelta(weeks=1, days=2), "fall", open_=False)
    report = make_report(
        DEVICE, "Anna", store.walk_sessions(DEVICE),
        measures_of(store.walk_session_payloads(DEVICE)), [fall], ZoneInfo("Europe/Berlin"), now,
    )  # fmt: skip
    store.close()
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    # each week's Monday in the zone its weeks are counted in, which the column names
    starts = "week_starts (weeks counted in Europe/Berlin)"
    assert [(r["week"], r[starts]) for r in rows] == [
        ("2026-W51", "2026-12-14"), ("2026-W52", "2026-12-21"),
        ("2026-W53", "2026-12-28"), ("2027-W01", "2027-01-04"),
    ]  # fmt: skip
    page = PdfReader(io.BytesIO(report_pdf(report))).pages[0]
    text = " ".join(page.extract_text().split())
    for week in ("4 Jan 2027 3 3 of 3", "28 Dec 2026 3 3 of 3", "14 Dec 2026 3 3 of 3"):
        assert week in text, week  # the weekly table's rows, newest first
    assert "(2026-W" not in text and "(2027-W" not in text  # no week code a person decodes
    assert "0.2 (14 Dec 2026)" in text  # the trends' first week
    assert "Made Sat 9 Jan 2027, 10:00 CET." in text  # as the pages say a moment
    # the fall's row, its zone kept on its time's line as the pages and notifications keep it
    # (caregiver.localtime.words): a plain space let a narrow column end a line at "10:00"
    assert "Wed 23 Dec 2026, 10:00\u00a0CET" in page.extract_text()
    # each chart names the year under its first week and under the first week of the next
    at: list[tuple[str, float, float]] = []  # (words, x, y) in pt, y from the page's foot
    page.extract_text(
        visitor_text=lambda t, cm, tm, font, size: at.append((t.strip(), tm[4], tm[5]))
    )  # fmt: skip
    for first, year in (("14 Dec", "2026"), ("4 Jan", "2027")):
        labels = [(x, y) for t, x, y in at if t == first]
        years = [(x, y) for t, x, y in at if t == year]
        assert len(labels) == len(years) == 2, (first, labels, years)  # one each chart
        for (lx, ly), (yx, yy) in zip(sorted(labels), sorted(years), strict=True):
            assert yy < ly and abs(yx - lx) < 8, (first, lx, ly, yx, yy)  # under it


def _two_alerts(tmp_path: Path, second: str) -> Report:
    """Anna's report with two alerts: a stumble closed by ann, then an open ``second``."""
    store = stored(str(tmp_path / "caregiver.db"))
    report = make_report(
        DEVICE, "Anna", store.walk_sessions(DEVICE),
        measures_of(store.walk_session_payloads(DEVICE)),
        [
            incident(MONDAY + dt.timedelta(days=2), "stumble", open_=False),
            incident(MONDAY + dt.timedelta(weeks=1, days=2), second, open_=True),
        ],
        ZoneInfo("UTC"), NOW,
    )  # fmt: skip
    store.close()
    return report


def test_the_pdf_says_its_counts_and_alerts_in_words_not_abbreviations(tmp_path: Path) -> None:
    """A physio read "Stumb./falls", "Done/presc.", "Trips" (the monitor's word for stopping
    the belt) and "Incidents" (the dashboard says alerts): each in words that fit its column,
    the stumbles and the falls each their own."""
    report = _two_alerts(tmp_path, "fall")
    pdf = PdfReader(io.BytesIO(report_pdf(report)))
    assert len(pdf.pages) == 1
    text = " ".join(pdf.pages[0].extract_text().split())
    assert (
        "Week of Sessions Done At goal Week at goal Min backward Longest (min) Belt stops "
        "Stumbles Falls Alerts" in text
    )
    assert "9 Mar 2026 3 2 of 3 0 no 36.0 2.0 1 1 0 1" in text  # one stumble, no fall
    assert "Alerts (falls, stumbles, calls for help, monitor faults): 2, 1 still open." in text
    assert "Alerts (newest 2 of 2) When What happened How it ended" in text
    assert "still open" in text and "acknowledged by ann on the dashboard" in text
    for jargon in ("Incidents", "Stumb.", "presc.", "Trips", "Worst", "Opened", "Min back "):
        assert jargon not in text, jargon


def test_the_pdf_sets_a_column_of_words_from_its_left_edge(tmp_path: Path) -> None:
    """The alerts' "What happened" and "How it ended" and the trends' "Reading" are words:
    set right, as the figures are, "Stumble" under "Fall, not getting up" read as a ragged
    column of numbers (a screenshot of the demo's report looked at)."""
    report = _two_alerts(tmp_path, "no_recovery")
    assert report.trends  # the trends' table is drawn too
    page = PdfReader(io.BytesIO(report_pdf(report))).pages[0]
    at: dict[str, float] = {}  # each cell's words: where they start, pt from the page's left
    page.extract_text(
        visitor_text=lambda text, cm, tm, font, size: at.setdefault(text.strip(), tm[4])
    )  # fmt: skip
    mm = 72 / 25.4
    left = at["Wed 4 Mar 2026, 09:00\u00a0UTC"]  # the first column's, as before
    for words, column in (
        ("Stumble", 44), ("Fall, not getting up", 44),
        ("still open", 74), ("acknowledged by ann on the dashboard", 74),
        ("within noise", 158),  # the trends' Reading
    ):  # fmt: skip
        assert abs(at[words] - (left + column * mm)) < 3, (words, at[words], left)


@pytest.mark.parametrize("plans", [0, REPORT_PLANS])
@pytest.mark.parametrize("font", ["installed", "missing"])
def test_the_pdf_s_footnote_stays_clear_of_a_full_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, font: str, plans: int
) -> None:
    """The footnote in words is six lines where the paths' was two: at its fullest (every
    week row, every trend, every incident row) the page must still end above it; so it must
    with the footnote's added line on a name shown with "?" (no font for it), which ran
    into the last incident row (tests/test_caregiver_report_fonts.py has the rest of that),
    and with the plans walked said above (their lines drew the last incident rows over the
    footnote): the newest incidents that fit are listed, the heading saying how many, and a
    plan too long for a line is cut to one."""
    if font == "missing":
        monkeypatch.setattr(report_pdf_module, "FONT_FILES", ({"": tmp_path / "none.ttf"},))
    store = stored(str(tmp_path / "caregiver.db"))
    report = make_report(
        DEVICE, "Ζωή Παπαδοπούλου", store.walk_sessions(DEVICE),
        measures_of(store.walk_session_payloads(DEVICE)),
        [incident(MONDAY + dt.timedelta(days=d), "fall", open_=False) for d in range(9)],
        ZoneInfo("America/Argentina/Buenos_Aires"), NOW,
    )  # fmt: skip
    store.close()
    full = dataclasses.replace(
        report,
        weeks=[  # and every week with sessions recorded with the clock not set, and closed
            dataclasses.replace(w, clock_not_set=1, closed_by_restart=1)  # by a restart
            for w in (report.weeks * TABLE_WEEKS)[:TABLE_WEEKS]
        ],
        trends=(report.trends * len(METRICS))[: len(METRICS)],
        plans=tuple(
            PlanWalked(f"Anna, week {n}", LONG_WORDS if n == 1 else WEEK_WORDS, 3)
            for n in range(plans)
        ),
    )
    page = PdfReader(io.BytesIO(report_pdf(full))).pages[0]
    lines: list[tuple[float, float, str]] = []  # baseline (pt from the bottom), size, text
    page.extract_text(
        visitor_text=lambda text, cm, tm, font, size: lines.append((tm[5], tm[0], text))
        if text.strip() else None
    )  # fmt: skip
    first = next(  # (a justified line's words are set apart by more than one space)
        i for i, (_, _, t) in enumerate(sorted(lines)) if "Measures of" in " ".join(t.split())
    )
    footnote = sorted(lines)[: first + 1]
    above = sorted(lines)[first + 1 :]
    said = " ".join(" ".join(t for _, _, t in reversed(footnote)).split())  # top down
    assert "The CSV report has every week." in said
    assert "* The treadmill's clock was not set" in said
    assert "** The treadmill restarted before the end" in said
    assert ("Characters shown as ?" in said) == (font == "missing")
    top_of_footnote = footnote[-1][0] + footnote[-1][1]  # its first line's cap height and more
    lowest_above = min(y for y, _, _ in above)
    # the row above: its text's baseline sits 1/3 of its 4.6 mm cell above the cell's bottom
    assert lowest_above - 13.0 / 3 > top_of_footnote, (lowest_above, top_of_footnote)
    assert footnote[0][0] > 14 * 72 / 25.4 - 2  # its last line within the bottom margin
    text = " ".join(page.extract_text().split())
    listed = re.search(r"Alerts \(newest (\d) of 9\)", text)
    assert listed is not None and 0 < int(listed[1]) <= 6
    assert sum(t.strip() == "Fall" for _, _, t in above) == int(listed[1])  # as many drawn
    # every row there is room for: the line on characters shown as "?" takes one row's room
    # from the fullest page (its footnote, naming the zone "UTC-03", is a line longer)
    assert int(listed[1]) == (5 if font == "missing" else 6) or plans
    for n in range(plans):  # each plan on its line, the long one cut
        assert f"Anna, week {n} (3 sessions): " in text
    if plans:
        assert f"Anna, week 0 (3 sessions): {WEEK_WORDS}. Anna, week 1" in text
        assert LONG_WORDS not in text and "Anna, week 1 (3 sessions): 2 min forward (1" in text


def _reports_as_of(monkeypatch: pytest.MonkeyPatch, now: float) -> None:
    """The command's reports made as of ``now``, its one reading of the clock given to it
    (:func:`caregiver.report.report_for`'s ``now``): the test's "this week" is then read
    from the clock the command uses, not from a second ``time.time()`` seconds apart that
    named another week when the run crossed Sunday's midnight (local time)."""
    import caregiver.report as report_module

    made = report_module.report_for

    def as_of(store: Store, device: str, walker: str, zone: dt.tzinfo, _: float, *more: Any,
              **named: Any) -> Report:  # fmt: skip
        return made(store, device, walker, zone, now, *more, **named)

    monkeypatch.setattr(report_module, "report_for", as_of)


def test_the_cli_writes_both_reports_from_the_services_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = saturday_noon()()
    _reports_as_of(monkeypatch, now)
    stored(str(tmp_path / "caregiver.db")).close()
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{tmp_path / "caregiver.db"}"\n'
                      '[devices]\n"treadmill-1" = "Anna"\n')  # fmt: skip
    pdf, table = tmp_path / "r.pdf", tmp_path / "r.csv"
    args = [
        "caregiver",
        "report",
        "-c",
        str(config),
        DEVICE,
        "--pdf",
        str(pdf),
        "--csv",
        str(table),
    ]
    assert main(args) == 0
    # what the command says: where it wrote, not fontTools' ~100 INFO lines of its subsetting
    # per PDF (each download's in the service's journal too)
    err = capsys.readouterr().err
    assert "fontTools" not in err
    assert f"PDF report of {DEVICE} written to {pdf}" in err
    assert "RetroGuard walking report: Anna" in PdfReader(pdf).pages[0].extract_text()
    assert table.read_text().splitlines()[0].startswith("week,week_starts (weeks counted in ")
    assert main(["caregiver", "report", "-c", str(config), "nobody"]) == 2
    assert "no device 'nobody'" in capsys.readouterr().err
    # no file named: the CSV on standard output, every week up to this one (empty ones 0 done)
    assert main(["caregiver", "report", "-c", str(config), DEVICE]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("2026-W10,2026-03-02,3,3,3,0,no,")
    assert lines[-1].startswith(
        week_of(dt.datetime.fromtimestamp(now, dt.UTC), system_zone()) + ","
    )
    # report_for reads the same through the store's named operations
    store = Store(str(tmp_path / "caregiver.db"))
    assert len(report_for(store, DEVICE, "Anna", dt.UTC, NOW).weeks) == 4
    store.close()


def test_the_cli_reports_on_a_roster_walker_who_has_not_walked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ben is on the treadmill's roster but has no session: his report is this week, none
    done, "no sessions yet" (not a refusal naming only those who walked); a walker neither on
    the roster nor in sessions is still refused, the walkers offered named."""
    now = saturday_noon()()
    _reports_as_of(monkeypatch, now)
    stored(str(tmp_path / "caregiver.db")).close()
    store = Store(str(tmp_path / "caregiver.db"))
    store.set_device_walkers(DEVICE, [("default", "Default walker"), ("ben", "Ben")])
    store.close()
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{tmp_path / "caregiver.db"}"\n')
    base = ["caregiver", "report", "-c", str(config), DEVICE]
    assert main([*base, "--walker", "ben"]) == 0
    weeks = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(w["week"], w["sessions"], w["sessions_done"]) for w in weeks] == [
        (week_of(dt.datetime.fromtimestamp(now, dt.UTC), system_zone()), "0", "0")
    ]
    pdf = tmp_path / "ben.pdf"
    assert main([*base, "--walker", "ben", "--pdf", str(pdf)]) == 0
    text = " ".join(PdfReader(pdf).pages[0].extract_text().split())
    assert "RetroGuard walking report: Ben" in text and "Weeks no sessions yet" in text
    assert main([*base, "--walker", "zed"]) == 2
    assert "no walker 'zed' on treadmill-1 (default, ben)" in capsys.readouterr().err


def test_the_cli_asks_which_walker_when_a_treadmill_has_several(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A report is one walker's: without --walker on a shared treadmill the command refuses
    (exit 2), names the walkers to choose from and writes nothing — never the walkers' sessions
    mixed into one report, nor silently one of them. With one walker it needs no --walker."""
    store = stored(str(tmp_path / "caregiver.db"))
    store.set_device_walkers(DEVICE, [("default", "Default walker"), ("ben", "Ben")])
    store.close()
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{tmp_path / "caregiver.db"}"\n')
    pdf, table = tmp_path / "r.pdf", tmp_path / "r.csv"
    base = ["caregiver", "report", "-c", str(config), DEVICE]
    assert main([*base, "--pdf", str(pdf), "--csv", str(table)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not pdf.exists() and not table.exists()
    assert captured.err == (
        "retroguard caregiver report: treadmill-1 has 2 walkers and a report is one walker's: "
        "give --walker with one of default (Default walker), ben (Ben)\n"
    )
    assert main([*base, "--walker", "default"]) == 0
    assert len(list(csv.DictReader(io.StringIO(capsys.readouterr().out)))) >= 4
    # the default walker of a shared treadmill is named as a walker, not as the treadmill
    # (before: "RetroGuard walking report: treadmill-1", read as all its walkers' report)
    assert main([*base, "--walker", "default", "--pdf", str(pdf)]) == 0
    text = PdfReader(pdf).pages[0].extract_text()
    assert "RetroGuard walking report: Default walker" in text
    assert "walker profile default" in text
    pdf.unlink()
    # One walker on the roster: theirs, without --walker, named as the dashboard names them.
    store = Store(str(tmp_path / "caregiver.db"))
    store.set_device_walkers("treadmill-2", [("anna", "Anna")])
    store.set_telemetry("treadmill-2", {}, NOW)
    store.close()
    alone = ["caregiver", "report", "-c", str(config), "treadmill-2", "--pdf", str(pdf)]
    assert main(alone) == 0
    assert "RetroGuard walking report: Anna" in PdfReader(pdf).pages[0].extract_text()


def test_the_pdf_s_adherence_does_not_count_a_week_still_under_way_as_missed(
    tmp_path: Path,
) -> None:
    """A report printed on Monday morning, after four weeks with 11 of 12 sessions done: the
    adherence for the patient's file is 11 of 12 over those 4 weeks, with this week's 0 of 3
    said apart. It said "11 of 15 ... over 5 weeks (73 %)": the week just begun counted as
    three missed sessions. A week under way counts in the total once its sessions are done."""
    store = stored(str(tmp_path / "caregiver.db"))
    monday = (MONDAY + dt.timedelta(weeks=4, hours=1)).timestamp()  # 2026-W14, none yet
    sessions = store.walk_sessions(DEVICE)
    store.close()
    report = make_report(DEVICE, "Anna", sessions, [], [], dt.UTC, monday)
    assert [w.progress.week for w in report.weeks][-1] == "2026-W14"
    text = " ".join(PdfReader(io.BytesIO(report_pdf(report))).pages[0].extract_text().split())
    assert "Adherence: 11 of 12 prescribed sessions done over 4 weeks (92 %); this week 0 of 3" in (
        text
    )
    # the first week under way, nothing done yet: that week alone, no total of nothing
    oldest = sessions[-1]
    now = dt.datetime.fromisoformat(oldest.started_wall).timestamp() + 3600
    first = make_report(DEVICE, "Anna", [oldest], [], [], dt.UTC, now)
    text = " ".join(PdfReader(io.BytesIO(report_pdf(first))).pages[0].extract_text().split())
    assert "Adherence: this week 1 of 3 prescribed sessions done so far." in text


def test_the_pdf_s_adherence_counts_each_week_against_its_own_prescription(
    tmp_path: Path,
) -> None:
    """Six sessions in one week and none the next are 3 of 6 prescribed (50 %), with the
    three extra said apart: they read "6 of 6 (100 %)", a missed week made up by another."""
    store = Store(str(tmp_path / "caregiver.db"))
    for day in range(6):  # Monday to Saturday of 2026-W10; nothing in 2026-W11
        record = session_record(
            DEVICE, MONDAY + dt.timedelta(days=day), backward_min=12, longest_min=10
        )
        row, problem = parse_summary(received(record), DEVICE)
        assert row is not None, problem
        store.record_walk_session(row, session_payload(record), NOW)
    sessions = store.walk_sessions(DEVICE)
    store.close()
    now = (MONDAY + dt.timedelta(weeks=2, hours=1)).timestamp()  # Monday of 2026-W12
    report = make_report(DEVICE, "Anna", sessions, [], [], dt.UTC, now)
    text = " ".join(PdfReader(io.BytesIO(report_pdf(report))).pages[0].extract_text().split())
    assert (
        "Adherence: 3 of 6 prescribed sessions done over 2 weeks (50 %), and 3 more beyond a "
        "week's prescription; this week 0 of 3." in text
    )


def test_a_session_dated_after_the_report_is_in_it_not_dropped(tmp_path: Path) -> None:
    """A device whose clock ran ahead dated a session next week: the report's weeks stopped at
    the week it was made, so that session was in no row (though the weeks at goal counted it);
    every stored session is in a row, the rows then run on to its week."""
    store = stored(str(tmp_path / "caregiver.db"))
    sessions = store.walk_sessions(DEVICE)
    store.close()
    ahead = dataclasses.replace(
        sessions[0], id="f" * 32, started_wall=(MONDAY + dt.timedelta(weeks=4)).isoformat()
    )
    report = make_report(DEVICE, "Anna", [ahead, *sessions], [], [], dt.UTC, NOW)
    assert report.sessions == len(sessions) + 1
    assert [w.progress.week for w in report.weeks][-2:] == ["2026-W13", "2026-W14"]


@pytest.mark.parametrize("dated", ["0002-01-07T09:00:00+00:00", "9998-06-01T09:00:00+00:00"])
def test_a_session_dated_by_a_wrong_clock_is_said_not_made_into_a_century_of_weeks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dated: str
) -> None:
    """A wall time is read from year 2 to 9998: a session a wrong clock stamped in year 2 made
    a report of 105,655 weekly rows (5.5 MB of CSV, every download and every look at the
    progress page working through them). The report refuses, naming the week and the
    limit (the CLI exits 2, no file written); the progress page still shows the weeks that
    have sessions; ``every_week`` refuses before making a week."""
    database = tmp_path / "caregiver.db"
    store = stored(str(database))
    record = msgspec.structs.replace(
        physio_month(DEVICE, MONDAY)[0], id="e" * 32, started_wall=dated
    )
    odd, problem = parse_summary(received(record), DEVICE)
    assert odd is not None, problem
    store.record_walk_session(odd, session_payload(record), NOW)
    sessions = store.walk_sessions(DEVICE)
    store.close()
    week = week_of(dt.datetime.fromisoformat(dated), dt.UTC)
    with pytest.raises(WeekSpanTooLong, match=f"a session dated in {week} was recorded"):
        make_report(DEVICE, "Anna", sessions, [], [], dt.UTC, NOW)
    view = progress_view(sessions, NOW, dt.UTC)
    assert week in [w.week for w in view["weeks"]]
    assert len(view["weeks"]) == 5  # the four weeks walked and the odd one, none filled in

    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{database}"\n')
    table = tmp_path / "r.csv"
    assert main(["caregiver", "report", "-c", str(config), DEVICE, "--csv", str(table)]) == 2
    err = capsys.readouterr().err
    assert f"no report of {DEVICE} ({DEVICE}): the weeks from " in err
    assert f"more than the {MAX_WEEKS} (ten years) a week-by-week table lists" in err
    assert not table.exists()
    # the week before the limit is still a report, every week in it
    back = dt.datetime.fromtimestamp(NOW, dt.UTC) - dt.timedelta(weeks=MAX_WEEKS - 1)
    early = dataclasses.replace(odd, started_wall=back.isoformat())
    others = [s for s in sessions if s.id != odd.id]
    assert (
        len(make_report(DEVICE, "Anna", [early, *others], [], [], dt.UTC, NOW).weeks) == MAX_WEEKS
    )


def test_the_pdf_says_the_three_a_week_goal_as_the_goal_not_as_the_prescription(
    tmp_path: Path,
) -> None:
    """A walker whose progression schedule prescribes 4 sessions a week: the PDF, for the
    patient's file, said "Prescription: ... 3 times a week" above "this week 0 of 4", the
    physio's prescription said wrong. The 3 a week is the goal (a week at goal: 3 sessions of
    10 straight minutes), and the page says it so; the prescription is each week's count."""
    store = stored(str(tmp_path / "caregiver.db"))
    sessions = store.walk_sessions(DEVICE)
    store.close()
    report = make_report(DEVICE, "Anna", sessions, [], [], dt.UTC, NOW, {"2026-W10": 4})
    text = " ".join(PdfReader(io.BytesIO(report_pdf(report))).pages[0].extract_text().split())
    assert "Prescription:" not in text
    assert (
        "Goal: backward walking on the treadmill, 10 straight minutes backward, 3 times a week;"
        in text
    )
    assert "this week 3 of 4" in text
