"""Adherence counts against the sessions the progression's stage prescribes, not always three.

The rule is :func:`core.progress.prescribed_weeks` and :func:`core.progress.prescribed_in`:
a week in which the stage changed counts against the least in force during it (an
advance earned by the week's sessions never makes it a missed week after the fact; a
step back counts at once), the weeks after it against the stage in force, until it
changes; 3 before any progression. ``retroguard sessions`` reads the stages from the device's own
progression history; the caregiver service from the device's retained progress
message (over a real Mosquitto here), on its progress page, its JSON and the report.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import msgspec
import pytest

from core.plan_presets import PRESETS
from core.progress import (
    PRESCRIBED_SESSIONS_PER_WEEK,
    prescribed_in,
    prescribed_weeks,
    week_of,
    weekly_progress,
)
from core.protocol.messages import ProgressMessage, SessionRecord
from core.protocol.payloads import SCHEMA_VERSION, encode
from core.protocol.plan import Progression, Stage
from firmware.storage.database import connect
from firmware.storage.progressions import change_progression, start_progression
from firmware.storage.sessions import save_session
from launcher.cli import main
from tests.caregiver_support import (
    Http,
    SimDevice,
    make_config,
    running_service,
    saturday_noon,
    session_record,
    week_monday,
)
from tests.mqtt_helpers import validate
from tools.broker import Mosquitto

MONDAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # ISO week 2026-W10
TWO_TWO = PRESETS["alternate-2-2"]
TWICE_THEN_FOUR = Progression(
    "twice, then four times a week",
    (
        Stage(TWO_TWO, weeks=2, sessions_per_week=2),
        Stage(PRESETS["progression-week-2"], weeks=1, sessions_per_week=4),
    ),
)


def _walked(device_id: str, started: dt.datetime) -> SessionRecord:
    """A 2/2 session walked through (it counts as done)."""
    return session_record(
        device_id,
        started,
        backward_min=TWO_TWO.backward_s / 60,
        longest_min=2,
        total_min=TWO_TWO.duration_s / 60,
        plan=TWO_TWO.name,
    )


def test_a_week_counts_against_its_stage_and_the_stage_carries_on_until_it_changes() -> None:
    known = {"2026-W10": 2, "2026-W13": 4}
    assert prescribed_in("2026-W09", known) == PRESCRIBED_SESSIONS_PER_WEEK  # before any
    assert [prescribed_in(f"2026-W{n}", known) for n in (10, 11, 12, 13, 14)] == [2, 2, 2, 4, 4]
    assert prescribed_in("2027-W01", known) == 4  # the year turns; the stage stays
    assert prescribed_in("2026-W10", {}) == PRESCRIBED_SESSIONS_PER_WEEK
    sessions = [
        _walked("tm", MONDAY + dt.timedelta(weeks=w, days=d)) for w in (0, 3) for d in (0, 2)
    ]
    w10, w13 = weekly_progress(sessions, dt.UTC, known)
    assert (w10.done, w10.prescribed, w10.adherence_met) == (2, 2, True)
    assert (w13.done, w13.prescribed, w13.adherence_met) == (2, 4, False)
    assert [w.prescribed for w in weekly_progress(sessions, dt.UTC)] == [3, 3]  # as before


def test_a_change_counts_in_full_from_the_next_week_and_a_step_back_at_once() -> None:
    # twice a week from W10; moved on to four in W12 (the week's two were done); stepped
    # back to one and on to three within W15
    known = prescribed_weeks([("2026-W10", 2), ("2026-W12", 4), ("2026-W15", 1), ("2026-W15", 3)])
    weeks = [prescribed_in(f"2026-W{n}", known) for n in range(9, 18)]
    assert weeks == [3, 2, 2, 2, 4, 4, 1, 3, 3]
    assert prescribed_weeks([("2026-W53", 4)])["2027-W01"] == 4  # the year turns


def test_retroguard_sessions_counts_each_week_against_the_stage_in_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "UTC")
    db = tmp_path / "events.db"
    conn = connect(db)
    for week, days in ((-1, (0, 2, 4)), (0, (0, 3)), (1, (0, 1, 2)), (2, (0, 2)), (3, (0, 1))):
        for d in days:
            save_session(conn, _walked("tm", MONDAY + dt.timedelta(weeks=week, days=d)))
    wall = (MONDAY - dt.timedelta(hours=2)).isoformat()  # assigned on Monday of 2026-W10
    start_progression(conn, TWICE_THEN_FOUR, stage=0, by="Jo", wall=wall)
    # the physio moves the walker on in 2026-W12 (and holds there)
    later = (MONDAY + dt.timedelta(weeks=2, days=1)).isoformat()
    start_progression(conn, TWICE_THEN_FOUR, stage=1, by="Jo", wall=later)
    change_progression(conn, "hold", by="Jo", wall=later)
    conn.commit()
    conn.close()
    assert main(["sessions", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "of those prescribed (the progression stage's count that week, else 3)" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("2026-W")}
    assert rows["2026-W09"][5] == "3/3"  # before the progression: three
    assert rows["2026-W10"][5] == "2/2"  # stage 1: twice a week
    assert rows["2026-W11"][5] == "3/2"
    assert rows["2026-W12"][5] == "2/2"  # moved on to four this week: counts from the next
    assert rows["2026-W13"][5] == "2/4"


def _progress(device_id: str, week: str, prescribed: int, done: int) -> str:
    """The retained progress message as the device publishes it (only what matters here)."""
    payload = encode(
        ProgressMessage(
            schema=SCHEMA_VERSION,
            device_id=device_id,
            wall_time=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            session="none",
            week=week,
            week_sessions=done,
            week_at_goal=0,
            week_backward_s=0.0,
            week_longest_backward_s=0.0,
            goal_sessions=3,
            goal_backward_s=600.0,
            week_done=done,
            week_prescribed=prescribed,
        )
    )
    validate("progress", payload)
    return payload


def test_the_dashboard_and_the_report_count_against_what_the_device_prescribes(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    device_id = "treadmill-1"
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    # the week the service counts in, read from its clock: one clock, not a second reading
    # seconds apart (across Sunday's midnight, the next week's page)
    with running_service(config, background=False, clock=saturday_noon()) as service:
        store, ingestor = service.store, service.ingestor
        monday = week_monday(service.clock) + dt.timedelta(minutes=30)
        this_week, last_week = (
            week_of(monday, dt.UTC),
            week_of(monday - dt.timedelta(weeks=1), dt.UTC),
        )
        two_ago = week_of(monday - dt.timedelta(weeks=2), dt.UTC)
        device = SimDevice(mosquitto, device_id)
        device.online()
        for weeks_ago, count in ((2, 3), (1, 2), (0, 1)):
            for n in range(count):
                # a day each: a day counts once (core.progress.days_done)
                started = monday - dt.timedelta(weeks=weeks_ago) + dt.timedelta(days=n)
                device.session(_walked(device_id, started))
        # the device said last week's stage prescribed 2, and this week's (advanced) 4
        device.publish("progress", _progress(device_id, last_week, 2, 2), retain=True)
        device.publish("progress", _progress(device_id, this_week, 4, 1), retain=True)
        assert ingestor.wait_for(
            lambda: store.walk_session_count() == 6 and len(store.prescribed_weeks(device_id)) == 2
        )
        assert store.prescribed_weeks(device_id) == {last_week: 2, this_week: 4}

        web = Http(service.port)
        assert web.login() == 303
        _, _, page = web.request("GET", f"/devices/{device_id}/progress")
        assert "<strong>1 of 4</strong> prescribed sessions done" in page
        _, _, plan_page = web.request("GET", f"/devices/{device_id}/plan")  # read-only too
        assert "The walker's latest session (" in plan_page
        assert ") walked the plan <strong>alternate-2-2</strong>" in plan_page
        assert "This week <strong>4</strong> sessions are prescribed to the walker (as" in plan_page

        def week_done(week: str) -> str:
            found = re.search(
                rf'data-week="{week}".*?<span class="week-done">([^<]+)</span>', page, re.S
            )
            assert found, week
            return found[1]

        assert week_done(this_week) == "1 of 4 prescribed sessions done"
        assert week_done(last_week) == "2 of 2 prescribed sessions done"
        assert week_done(two_ago) == "3 of 3 prescribed sessions done"  # before the device: 3
        _, _, chart = web.request("GET", f"/api/devices/{device_id}/progress")
        assert msgspec.json.decode(chart)["prescribed"] == 4
        _, _, report = web.request("GET", f"/devices/{device_id}/report.csv")
        rows = {r["week"]: r for r in csv.DictReader(io.StringIO(report))}
        assert [rows[w]["sessions_prescribed"] for w in (two_ago, last_week, this_week)] == [
            "3",
            "2",
            "4",
        ]
        # a new message for the week (the physio stepped back) changes its count
        device.publish("progress", _progress(device_id, this_week, 2, 1), retain=True)
        assert ingestor.wait_for(lambda: store.prescribed_weeks(device_id)[this_week] == 2)
        device.close()


def test_a_stored_week_no_calendar_has_does_not_set_the_next_year_s_count(
    caregiver_db: str,
) -> None:
    """A prescription stored under "2026-W60" before the progress message refused such a week
    sorted after every week of 2026: 2027's first weeks, with no message of their own yet,
    read 14 prescribed from it, not December's 3. It is read as no week."""
    from caregiver.storage import Store
    from core.progress import prescribed_in

    store = Store(caregiver_db)
    try:
        for walker in ("default", "ann"):
            store.set_prescribed("tm-1", "2026-W52", 3, walker)
            store.set_prescribed("tm-1", "2026-W60", 14, walker)
            known = store.prescribed_weeks("tm-1", walker)
            assert known == {"2026-W52": 3}
            assert prescribed_in("2027-W01", known) == 3
    finally:
        store.close()


def test_the_report_download_says_why_a_wrong_clock_s_century_of_weeks_is_not_made(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    """The dashboard's downloads answer 422 naming the week a wrong clock dated a session in
    (year 2), not 105,655 weekly rows; the progress page still shows the walked weeks."""
    from caregiver.progress import parse_summary
    from firmware.session.record import session_payload
    from tests.caregiver_support import received

    device_id = "treadmill-1"
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, background=False) as service:
        now = dt.datetime.fromtimestamp(service.clock(), dt.UTC)
        for started in (now - dt.timedelta(days=1), dt.datetime(2, 1, 7, 9, tzinfo=dt.UTC)):
            record = _walked(device_id, started)
            row, problem = parse_summary(received(record), device_id)
            assert row is not None, problem
            service.store.record_walk_session(row, session_payload(record), service.clock())
        web = Http(service.port)
        assert web.login() == 303
        for kind in ("csv", "pdf"):
            status, _, body = web.request("GET", f"/devices/{device_id}/report.{kind}")
            assert status == 422, kind
            assert body.startswith("No report: the weeks from 0002-W02 to ")
            assert (
                "a session dated in 0002-W02 was recorded with the treadmill's clock wrong" in body
            )
        # summed up by its month, as every week before the last 12 is; listed in all weeks
        status, _, page = web.request("GET", f"/devices/{device_id}/progress")
        assert status == 200 and 'data-month="0002-01"' in page
        status, _, page = web.request("GET", f"/devices/{device_id}/progress?weeks=all")
        assert status == 200 and 'data-week="0002-W02"' in page
