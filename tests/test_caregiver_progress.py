"""Guided-session summaries in the caregiver service: the week/goal rule, loose validation,
and ingest by session id against a real Mosquitto (a plain paho client publishes)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from msgspec.structs import replace

from caregiver.progress import parse_summary, progress_view
from core.progress import at_goal, week_of, weekly_progress
from tests.caregiver_support import (
    WAIT,
    SimDevice,
    make_config,
    received,
    running_service,
    session_record,
)
from tests.mqtt_helpers import validate
from tools.broker import Mosquitto

MONDAY = dt.datetime(2025, 11, 17, 9, 0, tzinfo=dt.UTC)


def test_the_browser_tests_month_is_seeded_by_the_service_s_clock() -> None:
    """The progress pages' browser tests seed a physio's month up to this morning; the helpers
    read the wall clock where the service counts its weeks by its own (injected) clock, so a
    service stopped on a Saturday, or a run across Sunday's midnight, read another week than
    the one seeded. Seeded by the service's clock, a Sunday night's month ends in that week,
    every session over by then, whatever the wall clock says."""
    from tests.caregiver_support import FakeClock, month_to_now

    sunday_night = dt.datetime(2026, 3, 1, 23, 50, tzinfo=dt.UTC)  # 2026-W09's last minutes
    sessions = month_to_now("t", FakeClock(sunday_night.timestamp()))
    weeks = [week_of(dt.datetime.fromisoformat(s.started_wall), dt.UTC) for s in sessions]
    assert sorted(set(weeks)) == ["2026-W05", "2026-W06", "2026-W07", "2026-W08", "2026-W09"]
    assert weeks[-1] == "2026-W09" and weeks.count("2026-W09") == 1  # this morning's, alone
    assert all(dt.datetime.fromisoformat(s.ended_wall) <= sunday_night for s in sessions)


def test_weekly_progress_counts_sessions_at_goal_per_iso_week() -> None:
    records = [
        session_record("t", MONDAY, backward_min=10, longest_min=10),
        session_record("t", MONDAY + dt.timedelta(days=2), backward_min=12, longest_min=6),
        session_record(
            "t", MONDAY + dt.timedelta(days=6, hours=14), backward_min=10, longest_min=10
        ),
        session_record("t", MONDAY + dt.timedelta(days=7), backward_min=10, longest_min=9.99),
    ]
    sunday_late = MONDAY + dt.timedelta(days=6, hours=14)
    assert week_of(sunday_late, dt.UTC) == "2025-W47"  # Sunday 23:00 UTC
    weeks = weekly_progress(records, dt.UTC)
    assert [(w.week, w.sessions, w.at_goal, w.goal_met) for w in weeks] == [
        ("2025-W47", 3, 2, False),
        ("2025-W48", 1, 1, False),
    ]
    assert weeks[0].backward_s == 32 * 60 and weeks[0].longest_backward_s == 600
    assert at_goal(records[3])  # 9.99 min: within the plan clock's one second of slack
    assert not at_goal(session_record("t", MONDAY, backward_min=9.9, longest_min=9.9))


def test_progress_view_this_week_and_a_chart_without_gaps() -> None:
    rows = [
        parse_summary(received(session_record("t", MONDAY - dt.timedelta(weeks=2),
                                              backward_min=8, longest_min=4)), "t")[0],
        *(parse_summary(received(session_record("t", MONDAY + dt.timedelta(days=d),
                                                backward_min=10, longest_min=10)), "t")[0]
          for d in (0, 2, 4)),
    ]  # fmt: skip
    assert all(r is not None for r in rows)
    view = progress_view(
        [r for r in rows if r], (MONDAY + dt.timedelta(days=5)).timestamp(), dt.UTC
    )
    assert (view["this_week"].sessions, view["this_week"].at_goal) == (3, 3)
    assert view["this_week"].goal_met and view["week_label"] == "17 Nov"
    chart = view["chart"]
    assert chart["labels"] == ["3 Nov", "10 Nov", "17 Nov"]  # the empty week is a zero bar
    assert chart["backward_min"] == [8.0, 0.0, 30.0] and chart["goal_min"] == 30.0


def test_malformed_summaries_are_refused_with_a_reason() -> None:
    good = received(session_record("t", MONDAY, backward_min=10, longest_min=10))
    row, _ = parse_summary(good, "from-topic")
    assert row is not None and row.device_id == "from-topic"  # the topic names the device
    assert row.started_wall == "2025-11-17T09:00:00+00:00"
    for change, reason in (
        ({"id": "not-hex"}, "no valid session id"),
        ({"started_wall": "yesterday"}, "no valid started_wall"),
        ({"backward_s": -1}, "backward_s is not a non-negative number"),
        ({"backward_s": "600"}, "backward_s is not a non-negative number"),
        ({"trips": 1.5}, "trips is not a non-negative integer"),
        ({"trips": 0, "stumbles": 1}, "more stumbles than trips"),
    ):
        assert parse_summary({**good, **change}, "t") == (None, reason)
    assert parse_summary({k: v for k, v in good.items() if k != "trips"}, "t") == (
        None,
        "missing trips",
    )


def test_a_session_summary_is_stored_once_by_id_updated_when_republished(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, web=False, background=False) as service:
        ingestor = service.ingestor
        device = SimDevice(mosquitto, "treadmill-1")
        record = session_record("treadmill-1", MONDAY, backward_min=8, longest_min=4)
        payload = device.session(record)
        validate("session", payload)  # the simulated device speaks the documented schema
        device.publish("session", payload)  # a QoS 1 redelivery: the same bytes again
        assert ingestor.wait_for(lambda: ingestor.duplicates >= 1, WAIT)
        assert service.store.walk_session_count() == 1

        # a re-published summary for the same session replaces it: the device re-publishes
        # one only when it amends the record (docs/sessions.md)
        device.session(replace(record, backward_s=600.0, longest_backward_s=600.0, trips=1,
                               stumbles=1, status="stopped", amended=1))  # fmt: skip
        assert ingestor.wait_for(lambda: ingestor.sessions_stored >= 2, WAIT)
        # malformed ones are logged and skipped; ingestion goes on
        device.publish("session", b"{not json")
        device.publish("session", json.dumps({**received(record), "id": "x"}))
        device.publish("session", json.dumps([1, 2]))
        other = session_record("treadmill-1", MONDAY + dt.timedelta(days=1), backward_min=10,
                               longest_min=10)  # fmt: skip
        device.session(other)
        assert ingestor.wait_for(lambda: ingestor.sessions_stored >= 3, WAIT)
        assert ingestor.rejected == 3
        assert service.store.walk_session_count() == 2
        stored = {s.id: s for s in service.store.walk_sessions("treadmill-1")}
        first = stored[record.id]
        assert (first.backward_s, first.trips, first.stumbles, first.status) == (
            600.0,
            1,
            1,
            "stopped",
        )
        assert list(stored) == [other.id, record.id]  # newest first
        # another device cannot overwrite this device's session
        intruder = SimDevice(mosquitto, "treadmill-2")
        intruder.session(replace(record, device_id="treadmill-2", backward_s=0.0))
        assert ingestor.wait_for(lambda: ingestor.duplicates >= 2, WAIT)
        assert service.store.walk_sessions("treadmill-2") == []
        assert service.store.walk_sessions("treadmill-1")[1].backward_s == 600.0
        device.close()
        intruder.close()


def test_weeks_count_in_the_configured_zone_and_a_bad_zone_is_refused() -> None:
    from zoneinfo import ZoneInfo

    from caregiver.config import parse_config
    from core.errors import ConfigError

    berlin = ZoneInfo("Europe/Berlin")
    sunday_late_utc = MONDAY + dt.timedelta(days=6, hours=14, minutes=30)  # Mon 00:30 Berlin
    row, _ = parse_summary(
        received(session_record("t", sunday_late_utc, backward_min=10, longest_min=10)), "t"
    )
    assert row is not None
    now = (MONDAY + dt.timedelta(days=8)).timestamp()  # Tuesday of the next week
    view = progress_view([row], now, berlin)
    assert (view["this_week"].week, view["this_week"].sessions) == ("2025-W48", 1)
    # the zone as the banner names it, not its IANA key ("Europe/Berlin", "Etc/UTC" before)
    assert (view["week_label"], view["zone"]) == ("24 Nov", "CET")
    view = progress_view([row], now, dt.UTC)
    assert (view["this_week"].week, view["this_week"].sessions) == ("2025-W48", 0)
    assert view["zone"] == "UTC"
    assert progress_view([row], now, ZoneInfo("Etc/UTC"))["zone"] == "UTC"
    assert parse_config({"server": {"timezone": "Europe/Berlin"}}).zone == berlin
    with pytest.raises(ConfigError, match=r"server\.timezone: unknown time zone 'Berlin'"):
        parse_config({"server": {"timezone": "Berlin"}})


def test_the_progress_page_lists_a_missed_week_and_this_one_with_none_done() -> None:
    """The page's list of the last weeks (newest first) is every week from the first session's
    to this one: a walker who walked two weeks ago and not since sees last week and this week
    as 0 of 3 done. The list skipped weeks without a session, so its top line was the week two
    weeks ago and the missed weeks showed nowhere but as empty bars."""
    rows = [
        parse_summary(received(session_record("t", MONDAY - dt.timedelta(weeks=2, days=-d),
                                              backward_min=10, longest_min=10)), "t")[0]
        for d in (0, 2, 4)
    ]  # fmt: skip
    view = progress_view([r for r in rows if r], (MONDAY + dt.timedelta(days=1)).timestamp(),
                         dt.UTC)  # fmt: skip
    assert [(w.week, w.sessions, w.done, w.prescribed) for w in view["weeks"]] == [
        ("2025-W47", 0, 0, 3),
        ("2025-W46", 0, 0, 3),
        ("2025-W45", 3, 3, 3),
    ]
    assert view["milestone"].weeks_at_goal == 1
    assert progress_view([], MONDAY.timestamp(), dt.UTC)["weeks"] == []  # no sessions: none


def test_the_plan_a_week_without_a_session_is_measured_by_is_the_walker_s_next() -> None:
    """This week has no session yet: the stretch is said against the plan the walker walks
    next (their stage's, while it moves on by itself; else their latest session's), so a
    walker on a short plan is not read against 10 minutes before they have walked."""
    import msgspec

    from caregiver.progress import next_plan_stretch
    from core.plan_presets import PRESETS
    from tests.caregiver_support import walked
    from tests.stage_support import STAGE_EXAMPLE

    record = session_record("t", MONDAY, backward_min=3, longest_min=3, total_min=6)
    row = parse_summary(received(walked(record, PRESETS["alternate-2-2"])), "t")[0]
    assert row is not None
    short = {row.id: (("backward", 180.0, ""), ("forward", 180.0, ""))}  # a 6-minute plan
    assert next_plan_stretch(None, [row], short) == 180.0  # the latest session's plan
    assert next_plan_stretch(None, [], {}) is None  # nothing known
    assert next_plan_stretch(None, [row], {}) is None  # its intervals not known
    # a stage moving on by itself: its plan (alternate-2-2: 2 min), not the session's
    assert next_plan_stretch(STAGE_EXAMPLE, [row], short) == 120.0
    held = msgspec.structs.replace(STAGE_EXAMPLE, status="held", held=True)
    assert next_plan_stretch(held, [row], short) == 180.0  # held: maybe a plan by hand
