"""Local time: the system's zone with its daylight-saving rules, and weeks counted in a zone
(core.zones, core.progress, ``retroguard sessions``, ``retroguard plan show``)."""

from __future__ import annotations

import datetime as dt
import io
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.plan_presets import PRESETS, PROGRESSIONS
from core.progress import week_of, weekly_progress
from core.zones import named_zone, system_zone, zone_key, zone_name, zone_said, zones_said
from firmware.storage.database import connect
from firmware.storage.plans import assign_plan
from firmware.storage.progressions import start_progression
from firmware.storage.sessions import StoredSession
from launcher.cli import main
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
    # UTC under the name Debian's /etc/localtime links to is named as the pages name it
    assert zone_name(ZoneInfo("Etc/UTC")) == zone_name(ZoneInfo("Zulu")) == "UTC"
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        named_zone("Mars/Olympus")


def test_retroguard_sessions_prints_local_times_and_local_weeks() -> None:
    sunday_late_utc = dt.datetime(2025, 11, 23, 23, 30, tzinfo=dt.UTC)  # Monday 00:30 Berlin
    stored = [StoredSession(session_record("t", sunday_late_utc, backward_min=10, longest_min=10))]
    now = sunday_late_utc + dt.timedelta(hours=1)  # the weekly table runs to this week
    out = io.StringIO()
    print_sessions(stored, out, BERLIN, now=now)
    text = out.getvalue()
    assert text.startswith("Times in CET.")
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


WINTER = dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC)  # 10:00 in Berlin, CET
SUMMER = dt.datetime(2026, 7, 15, 9, 0, tzinfo=dt.UTC)  # 11:00 in Berlin, CEST


def test_a_zone_is_said_as_its_clock_named_itself_then() -> None:
    """Every page, the PDF and the offline tools name a zone as its clock does ("CET" in
    winter, "CEST" in summer, "UTC"), never its IANA key; one function, in core (the tools may
    not import the caregiver service), which the service's modules still import from
    caregiver.localtime."""
    from caregiver import localtime

    assert (zone_said(BERLIN, WINTER), zone_said(BERLIN, SUMMER)) == ("CET", "CEST")
    assert zone_said(ZoneInfo("Etc/UTC"), SUMMER) == zone_said(dt.UTC, WINTER) == "UTC"
    assert localtime.zone_said is zone_said
    assert zones_said(BERLIN, [WINTER]) == "CET"
    assert zones_said(BERLIN, [SUMMER, WINTER, SUMMER]) == "CET/CEST"  # earliest first, once
    assert zones_said(BERLIN, []) in ("CET", "CEST")  # now's


SAO_PAULO = ZoneInfo("America/Sao_Paulo")  # the tz database names it "-03": no abbreviation


def test_a_zone_without_an_abbreviation_is_said_as_its_offset_from_utc() -> None:
    """The tz database names a zone with no abbreviation by its offset ("-03", "+0530"):
    "Times in -03." read as a subtraction. It is "UTC-03", "UTC+05:30" wherever a zone is
    said: the pages' and notifications' times (caregiver.localtime.words), the progress page,
    the PDF, ``retroguard sessions``, ``plan show`` and ``watch``."""
    from caregiver.localtime import words
    from tools.watch import _when

    assert zone_said(SAO_PAULO, WINTER) == "UTC-03"
    assert zone_said(ZoneInfo("Asia/Colombo"), WINTER) == "UTC+05:30"
    assert zones_said(ZoneInfo("Pacific/Chatham"), [SUMMER, WINTER]) == "UTC+13:45/UTC+12:45"
    assert zones_said(ZoneInfo("Atlantic/Azores"), [WINTER, SUMMER]) == "UTC-01/UTC"  # "+00"
    assert zone_said(dt.timezone(dt.timedelta(hours=-3)), WINTER) == "UTC-03"  # "UTC-03:00"
    assert zone_said(ZoneInfo("Asia/Kolkata"), WINTER) == "IST"  # an abbreviation: kept
    assert zone_said(ZoneInfo("Europe/London"), WINTER) == "GMT"
    assert words(WINTER, SAO_PAULO) == "Thu 15 Jan 2026, 06:00:00\u00a0UTC-03"
    assert _when("2026-01-15T09:00:00.250", SAO_PAULO) == "2026-01-15 06:00:00.250 UTC-03"
    stored = [StoredSession(session_record("t", WINTER, backward_min=10, longest_min=10))]
    out = io.StringIO()
    print_sessions(stored, out, SAO_PAULO, now=WINTER)
    assert out.getvalue().splitlines()[0] == "Times in UTC-03."


@pytest.mark.parametrize(
    ("moments", "said", "shown"),
    [
        ([WINTER], "CET", ["2026-01-15 10:00"]),
        ([SUMMER], "CEST", ["2026-07-15 11:00"]),
        ([WINTER, SUMMER], "CET/CEST", ["2026-01-15 10:00", "2026-07-15 11:00"]),
    ],
)
def test_retroguard_sessions_names_the_zone_its_times_were_in(
    moments: list[dt.datetime], said: str, shown: list[str]
) -> None:
    """``retroguard sessions`` said "Times in Europe/Berlin." where the dashboard says "CET":
    it names the zone of the times it lists, a summer session's "CEST"."""
    stored = [
        StoredSession(session_record("t", m, backward_min=10, longest_min=10)) for m in moments
    ]
    out = io.StringIO()
    print_sessions(stored, out, BERLIN, now=SUMMER)
    text = out.getvalue()
    assert text.splitlines()[0] == f"Times in {said}."
    assert "Europe/Berlin" not in text
    for time in shown:
        assert f"{time}  progression-week-9" in text


def test_plan_show_and_progression_show_name_the_zone_their_times_were_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``retroguard plan show`` said "Times in Europe/Berlin." and a progression's stage
    "since 2026-07-15 11:30 Europe/Berlin": the zone as its clock named it then, the dashboard's
    "CEST" in summer and "CET" in winter."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    for started, said in ((WINTER, "CET"), (SUMMER, "CEST")):
        db = tmp_path / f"{said}.db"
        conn = connect(db)
        try:
            with conn:
                assign_plan(conn, PRESETS["alternate-2-2"], by="Jo", via="cli", assigned_wall="x")
                assign_plan(
                    conn,
                    PRESETS["alternate-2-2"],
                    by="Jo",
                    via="cli",
                    assigned_wall=started.isoformat(),
                )
                start_progression(
                    conn,
                    PROGRESSIONS["toward-10-minutes"],
                    stage=0,
                    by="Jo",
                    wall=(started + dt.timedelta(minutes=30)).isoformat(),
                )
        finally:
            conn.close()
        assert main(["plan", "--db", str(db), "show"]) == 0
        shown = capsys.readouterr().out
        assert f"Times in {said}." in shown  # the unreadable "x" is shown as it is, unnamed
        assert main(["plan", "--db", str(db), "progression", "show"]) == 0
        local = started.astimezone(BERLIN) + dt.timedelta(minutes=30)
        assert f"since {local:%Y-%m-%d %H:%M} {said} (assigned by Jo)" in capsys.readouterr().out
    # a winter's and a summer's assignment
    conn = connect(db)
    try:
        with conn:
            assign_plan(
                conn, PRESETS["alternate-2-2"], by="Jo", via="cli", assigned_wall=WINTER.isoformat()
            )
    finally:
        conn.close()
    assert main(["plan", "--db", str(db), "show"]) == 0
    assert "Times in CET/CEST." in capsys.readouterr().out
