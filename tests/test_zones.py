"""Local time: the system's zone with its daylight-saving rules, and weeks counted in a zone
(core.zones, core.progress, ``retroguard sessions``)."""

from __future__ import annotations

import datetime as dt
import io
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.progress import week_of, weekly_progress
from core.zones import named_zone, system_zone, zone_key, zone_name
from firmware.storage.sessions import StoredSession
from tests.caregiver_support import session_record
from tools.sessions import print_sessions

BERLIN = ZoneInfo("Europe/Berlin")
ZONEINFO = Path("/usr/share/zoneinfo")


def test_a_session_counts_in_the_week_of_the_walkers_calendar() -> None:
    # Monday 00:30 in Berlin is still Sunday 23:30 in UTC: last week there, this week here
    monday_night = dt.datetime(2025, 11, 24, 0, 30, tzinfo=BERLIN)
    assert week_of(monday_night, dt.UTC) == "2025-W47"
    assert week_of(monday_night, BERLIN) == "2025-W48"
    # across the spring change (30 Mar 2025): Monday 00:30 CEST is Sunday 22:30 UTC; a fixed
    # +01:00 (what datetime.astimezone() gives in winter) would put it in the old week too
    after_change = dt.datetime(2025, 3, 31, 0, 30, tzinfo=BERLIN)
    assert week_of(after_change, BERLIN) == "2025-W14"
    assert week_of(after_change, dt.timezone(dt.timedelta(hours=1))) == "2025-W13"
    records = [
        session_record("t", monday_night, backward_min=10, longest_min=10),
        session_record("t", monday_night - dt.timedelta(days=1), backward_min=10, longest_min=10),
    ]
    assert [(w.week, w.sessions) for w in weekly_progress(records, BERLIN)] == [
        ("2025-W47", 1),
        ("2025-W48", 1),
    ]
    assert [(w.week, w.sessions) for w in weekly_progress(records, dt.UTC)] == [("2025-W47", 2)]


def test_the_system_zone_is_tz_else_what_etc_localtime_names_or_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (ZONEINFO / "Europe" / "Berlin").exists():
        pytest.skip("no system zoneinfo (Debian package tzdata)")
    monkeypatch.setenv("TZ", "America/New_York")
    assert zone_name(system_zone(tmp_path / "none")) == "America/New_York"
    monkeypatch.setenv("TZ", ":Europe/Berlin")
    assert zone_name(system_zone(tmp_path / "none")) == "Europe/Berlin"
    monkeypatch.delenv("TZ")
    link = tmp_path / "localtime"
    link.symlink_to(ZONEINFO / "Europe" / "Berlin")
    assert zone_name(system_zone(link)) == "Europe/Berlin"
    copy = tmp_path / "copied"  # some images copy the file instead of linking it
    shutil.copyfile(ZONEINFO / "Europe" / "Berlin", copy)
    zone = system_zone(copy)
    # a copy has rules but no name another machine can read it back by: none is sent (its
    # abbreviation, "CET" in winter and "CEST" in summer, is no zone with those rules)
    assert zone_key(zone) is None and zone_key(system_zone(link)) == "Europe/Berlin"
    assert zone_key(dt.UTC) == "UTC" and zone_key(dt.timezone(dt.timedelta(hours=1))) is None
    assert dt.datetime(2025, 7, 1, 12, tzinfo=zone).utcoffset() == dt.timedelta(hours=2)
    assert dt.datetime(2025, 1, 1, 12, tzinfo=zone).utcoffset() == dt.timedelta(hours=1)
    assert system_zone(tmp_path / "none") is dt.UTC
    assert zone_name(named_zone("Asia/Tokyo")) == "Asia/Tokyo"
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        named_zone("Mars/Olympus")


def test_retroguard_sessions_prints_local_times_and_local_weeks() -> None:
    sunday_late_utc = dt.datetime(2025, 11, 23, 23, 30, tzinfo=dt.UTC)  # Monday 00:30 Berlin
    stored = [StoredSession(session_record("t", sunday_late_utc, backward_min=10, longest_min=10))]
    now = sunday_late_utc + dt.timedelta(hours=1)  # the weekly table runs to this week
    out = io.StringIO()
    print_sessions(stored, out, BERLIN, now=now)
    text = out.getvalue()
    assert text.startswith("Times in Europe/Berlin.")
    assert "2025-11-24 00:30  progression-week-9" in text
    assert _sessions_in_week(text, "2025-W48") == 1  # Monday in Berlin
    out = io.StringIO()
    print_sessions(stored, out, dt.UTC, now=now)
    assert "2025-11-23 23:30" in out.getvalue()
    assert _sessions_in_week(out.getvalue(), "2025-W47") == 1  # still Sunday in UTC
    assert _sessions_in_week(out.getvalue(), "2025-W48") == 0


def _sessions_in_week(text: str, week: str) -> int:
    """The weekly table's session count for ``week`` (its row's second column)."""
    (row,) = [line for line in text.splitlines() if line.startswith(f"{week} ")]
    return int(row.split()[1])
