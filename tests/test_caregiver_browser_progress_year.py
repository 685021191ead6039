"""A walker's progress page after a year, in Debian's headless Chromium at 1280 and 360 px.

A year of three sessions a week (the 2/2 plan for the first ten weeks, then 10 straight
minutes; a missed week in the spring; a balance check and gait in each summary) is stored
through ingest. The page lists the last 12 weeks in full (each week in words, each session
a row, each trend's weekly medians) and the weeks before them a month a line, in the week's
words; its goal, weeks at goal and trends still count the whole year; its "all weeks" link
lists every week and session, and the CSV report keeps every week (caregiver.earlier_weeks).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caregiver.earlier_weeks import RECENT_WEEKS
from caregiver.service import CaregiverService
from core.protocol.messages import SessionRecord
from firmware.session.plan import alternate_2_2
from firmware.session.record import session_payload
from tests.browser_support import NEEDS_CHROMIUM, ON_SQLITE, logged_in, widths_on_each_engine
from tests.browser_support import shot as _shot
from tests.caregiver_support import (
    FakeClock,
    make_config,
    running_service,
    saturday_noon,
    session_record,
    walked,
    week_monday,
    with_measures,
)
from tools.broker import Mosquitto

pytestmark = NEEDS_CHROMIUM

WEEKS = 53
"""This week and the 52 before it."""
TWO_TWO_WEEKS = 10
"""The first weeks, on the 2/2 plan (2 minutes backward at a time)."""
MISSED = 30
"""The week this many weeks ago had no session (a holiday)."""
SMALL_PAGE = 120_000
"""The year's page is under this many characters of HTML: about 87,000 (the last 12 weeks'
rows and trend tables), whatever the history; every week listed, it was 290,000."""


@pytest.fixture
def service(mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str) -> Iterator[CaregiverService]:
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, background=False, clock=FakeClock(CLOCK.now)) as s:
        yield s


CLOCK = saturday_noon()
"""The service's clock, stopped: "this week" is the one it counts in, and this week's
Wednesday and Friday sessions have ended (on a real Monday they were days to come)."""


def _monday(weeks_ago: int) -> dt.datetime:
    """09:00 on the Monday ``weeks_ago`` weeks before the service's this week."""
    return week_monday(CLOCK) + dt.timedelta(hours=9) - dt.timedelta(weeks=weeks_ago)


def _year() -> list[SessionRecord]:
    """Three sessions a week (Monday, Wednesday, Friday) for :data:`WEEKS` weeks, oldest first."""
    two_two = alternate_2_2()
    out = []
    for ago in range(WEEKS - 1, -1, -1):
        if ago == MISSED:
            continue
        for n, day in enumerate((0, 2, 4)):
            started = _monday(ago) + dt.timedelta(days=day)
            if ago >= WEEKS - TWO_TWO_WEEKS:
                record = walked(
                    session_record("treadmill-1", started, backward_min=two_two.backward_s / 60,
                                   longest_min=2, total_min=two_two.duration_s / 60),
                    two_two,
                )  # fmt: skip
            else:
                record = session_record("treadmill-1", started, backward_min=12, longest_min=10)
            out.append(with_measures(record, sway_ap=0.20 - 0.001 * (WEEKS - ago), sway_ml=0.08,
                                     step_cv=4.0 - 0.01 * n))  # fmt: skip
    return out


def _earlier_month(ago: int) -> tuple[str, int]:
    """The month (``"2026-05"``) of the week ``ago`` weeks back, and how many of the weeks
    before the recent ones have their Monday in it."""
    month = _monday(ago).strftime("%Y-%m")
    weeks = [w for w in range(RECENT_WEEKS, WEEKS) if _monday(w).strftime("%Y-%m") == month]
    return month, len(weeks)


@widths_on_each_engine(1280, 360)
def test_a_year_s_progress_page_lists_the_last_weeks_and_sums_up_the_rest_by_month(
    browser: Any, service: CaregiverService, tmp_path: Path, width: int
) -> None:
    from playwright.sync_api import expect

    sessions = _year()
    summaries = [("retroguard/treadmill-1/session", session_payload(r).encode()) for r in sessions]
    assert service.ingestor.handle_batch(summaries)
    recent = [r for r in sessions if r.started_wall >= _monday(RECENT_WEEKS - 1).isoformat()]

    page = logged_in(browser, service, width)
    response = page.goto(service.url + "/devices/treadmill-1/progress")
    assert response is not None and len(response.text()) < SMALL_PAGE
    # the goal, the weeks at goal and the trends still count the whole year
    expect(page.locator("#goal")).to_contain_text("This week: 3 of 3 prescribed sessions done")
    at_goal_weeks = WEEKS - TWO_TWO_WEEKS - 1  # every 10-minute week but the missed one
    expect(page.locator("#milestone .stat-value")).to_have_text(
        f"{at_goal_weeks} \u2014 the 4-week milestone reached"
    )
    # the last 12 weeks in full, newest first, each in the week's words
    weeks = page.locator("#weeks li")
    expect(weeks).to_have_count(RECENT_WEEKS)
    expect(page.locator("#weeks-heading")).to_have_text(f"The last {RECENT_WEEKS} weeks")
    expect(weeks.last).to_contain_text(
        "3 of 3 prescribed sessions done; longest backward stretch 10.0 of 10 min "
        "(3 of 3 sessions at goal)"
    )
    expect(page.locator("#sessions tbody tr")).to_have_count(len(recent))
    expect(page.locator("#earlier-sessions")).to_contain_text(
        f"{len(sessions) - len(recent)} earlier sessions"
    )
    # the weeks before them a month a line: the missed week's month counts it as 0 done...
    months = page.locator("#months li")
    missed_month, missed_weeks = _earlier_month(MISSED)
    expect(page.locator(f'#months li[data-month="{missed_month}"]')).to_contain_text(
        f"({missed_weeks} weeks): {3 * missed_weeks - 3} of {3 * missed_weeks} prescribed "
        f"sessions done; longest backward stretch 10.0 of 10 min; {missed_weeks - 1} weeks at "
        "goal"
    )
    # ...and the 2/2 plan's first month is not measured against 10 minutes
    first_month, first_weeks = _earlier_month(WEEKS - 1)
    expect(page.locator(f'#months li[data-month="{first_month}"]')).to_contain_text(
        f"({first_weeks} week{'' if first_weeks == 1 else 's'}): {3 * first_weeks} of "
        f"{3 * first_weeks} prescribed sessions done; longest backward stretch 2.0 min (the "
        "10-minute goal comes with later plans); 0 weeks at goal"
    )
    assert months.count() >= 9
    # the browser says each month as it says every date (headless Chromium: "May 2026")
    newest = dt.date.fromisoformat(months.first.get_attribute("data-month") + "-01")
    expect(months.first.locator("strong")).to_have_text(f"{newest:%B} {newest.year}")
    # each trend's table its recent weeks, its chart and its change the whole year
    sway = page.locator("#trend-sway_rms_ap")
    expect(sway.locator("tbody tr")).to_have_count(RECENT_WEEKS)
    expect(sway.locator(".trend-earlier")).to_contain_text(
        f"{WEEKS - RECENT_WEEKS - 1} earlier weeks in the chart"
    )
    first = _monday(WEEKS - 1)
    expect(sway.locator(".trend-change")).to_contain_text(f"Week of {first:%b} {first.day}")
    expect(page.locator("#trends")).to_have_attribute("data-rendered", "7")
    expect(page.locator("#progress-chart")).to_have_attribute("data-rendered", "1")
    for chart in (page.locator("#progress-chart"), sway.locator(".trend-chart")):
        expect(chart).to_have_attribute("data-axis", re.compile(r"\S"))
        _named_evenly_from_the_newest(chart.get_attribute("data-axis") or "")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=_shot(tmp_path, service, f"progress-year-{width}.png"), full_page=True)

    # every week and session, one click away
    expect(page.locator("#all-weeks-link a")).to_have_text(
        f"All {WEEKS} weeks and {len(sessions)} sessions, one by one"
    )
    expect(page.locator("#sessions-cut")).to_have_count(0)
    page.locator("#all-weeks-link a").click()
    expect(page).to_have_url(service.url + "/devices/treadmill-1/progress?walker=default&weeks=all")
    expect(page.locator("#weeks li")).to_have_count(WEEKS)
    expect(page.locator(f'#weeks li[data-week="{_week(MISSED)}"]')).to_contain_text(
        "0 of 3 prescribed sessions done"
    )
    expect(page.locator("#months li")).to_have_count(0)
    expect(page.locator("#sessions tbody tr")).to_have_count(len(sessions))
    expect(sway.locator("tbody tr")).to_have_count(WEEKS - 1)
    expect(page.locator("#milestone .stat-value")).to_contain_text(str(at_goal_weeks))
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.locator("#recent-weeks-link a").click()
    expect(page.locator("#weeks li")).to_have_count(RECENT_WEEKS)

    # the report keeps every week
    with page.expect_download() as csv_download:
        page.click("#report-csv")
    rows = list(csv.DictReader(io.StringIO(Path(csv_download.value.path()).read_text())))
    assert len(rows) == WEEKS
    page.context.close()


@ON_SQLITE
def test_past_the_table_s_bound_the_page_says_which_sessions_it_lists(
    browser: Any, service: CaregiverService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The every-week view lists at most ``TABLE_SESSIONS`` sessions (500: three years at
    three a week), the newest; its link said "All 53 weeks and 700 sessions, one by one" and
    the page listed 500 without a word. The bound lowered to 100 for a year's 156 here."""
    from playwright.sync_api import expect

    monkeypatch.setattr("caregiver.routes.progress.TABLE_SESSIONS", 100)
    sessions = _year()
    summaries = [("retroguard/treadmill-1/session", session_payload(r).encode()) for r in sessions]
    assert service.ingestor.handle_batch(summaries)
    page = logged_in(browser, service, 1280)
    page.goto(service.url + "/devices/treadmill-1/progress")
    expect(page.locator("#all-weeks-link a")).to_have_text(
        f"All {WEEKS} weeks and the newest 100 of {len(sessions)} sessions, one by one"
    )
    page.locator("#all-weeks-link a").click()
    expect(page.locator("#weeks li")).to_have_count(WEEKS)
    expect(page.locator("#sessions tbody tr")).to_have_count(100)
    expect(page.locator("#sessions-cut")).to_have_text(
        f"The newest 100 are listed one by one; the {len(sessions) - 100} before them count "
        "in the weeks above and in the CSV and PDF reports."
    )
    page.context.close()


def _named_evenly_from_the_newest(axis: str) -> None:
    """A chart's x axis (its ``data-axis``: each week's name, or "" where none is drawn) names
    its newest week and every n-th back from it, no two closer: at 1280 px the newest was
    drawn one week from the last counted from the oldest, "Nov 23Nov 30"."""
    names = axis.split("|")
    named = [i for i, name in enumerate(names) if name]
    assert len(names) > len(named) > 1 and named[-1] == len(names) - 1, names
    assert len({b - a for a, b in itertools.pairwise(named)}) == 1, names


def _week(ago: int) -> str:
    year, week, _ = _monday(ago).isocalendar()
    return f"{year:04d}-W{week:02d}"
