"""The retained status topics: the open incident and the session progress, from the database.

The incident rules (docs/incidents.md) on event sequences, then the same
through a real device database, and the weekly progress from real session
rows. The publication over a real broker is in ``tests/test_ha_mqtt.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import get_args

import jsonschema
import msgspec
import pytest

from core.protocol import payloads
from core.protocol.events import INCIDENT_TYPES, SEVERITY_ORDER, Event, EventType
from core.protocol.messages import IncidentMessage, IncidentSeverity, ProgressMessage
from core.protocol.payloads import decode_as
from core.protocol.topics import Topics
from firmware.mqtt.status import (
    SEVERITY_NAME,
    RetainedStatus,
    incident_message,
)
from firmware.storage.database import connect
from firmware.storage.events import EventStore
from firmware.storage.sessions import save_session
from firmware.storage.status import IncidentEventRow
from tests.caregiver_support import session_record
from tests.mqtt_helpers import schema

DEVICE = "tm-1"
I1, I2 = "1" * 32, "2" * 32
NOW = "2026-03-02T12:00:00.000+00:00"


def row(
    n: int,
    kind: EventType,
    incident: str | None = None,
    by: str | None = None,
    via: str | None = None,
) -> IncidentEventRow:
    return IncidentEventRow(
        n, f"{n:032x}", kind, f"2026-03-02T10:00:{n:02d}.000+00:00", incident, by, via
    )


def test_every_incident_type_has_a_rank_and_a_wire_name() -> None:
    assert set(SEVERITY_NAME) == INCIDENT_TYPES
    assert set(SEVERITY_NAME.values()) <= set(SEVERITY_ORDER)
    assert set(SEVERITY_NAME.values()) == set(get_args(IncidentSeverity))
    assert {k.value for k in SEVERITY_NAME} == set(SEVERITY_NAME.values())


def test_no_incident_yet() -> None:
    message = incident_message(DEVICE, [], NOW)
    assert message == IncidentMessage(schema=1, device_id=DEVICE, open=False, wall_time=NOW)


def test_an_incident_opens_with_its_first_alert_and_takes_its_worst_event() -> None:
    events = [
        row(1, EventType.STUMBLE, I1),
        row(2, EventType.WINDOW, I1),
        row(3, EventType.FALL, I1),
    ]
    message = incident_message(DEVICE, events, NOW)
    assert message.open and message.incident == I1 and message.severity == "fall"
    assert message.opened_wall == events[0].wall_time
    assert message.wall_time == events[2].wall_time  # when it last changed, not "now"
    assert message.last_event == events[2].id
    events.append(row(4, EventType.NO_RECOVERY, I1))
    assert incident_message(DEVICE, events, NOW).severity == "no_recovery"
    # A lesser event later does not lower the severity.
    events.append(row(5, EventType.STUMBLE, I1))
    later = incident_message(DEVICE, events, NOW)
    assert later.severity == "no_recovery" and later.last_event == events[-1].id


@pytest.mark.parametrize(
    ("closing", "by", "via"),
    [
        (row(3, EventType.OK, I1, by="walker"), "walker", None),
        (row(3, EventType.OK, I1), "walker", None),
        (row(3, EventType.RESET, I1), "walker", None),
        (row(3, EventType.CLOSED, I1, by="Ann", via="dashboard"), "Ann", "dashboard"),
        (row(3, EventType.CLOSED, I1, by="home-assistant", via="home-assistant"), "home-assistant",
         "home-assistant"),
    ],
)  # fmt: skip
def test_ok_closed_and_reset_close_the_incident_and_say_who(
    closing: IncidentEventRow, by: str, via: str | None
) -> None:
    events = [row(1, EventType.STUMBLE, I1), row(2, EventType.FALL, I1), closing]
    message = incident_message(DEVICE, events, NOW)
    assert not message.open and message.incident == I1 and message.severity == "fall"
    assert (message.closed_by, message.closed_via) == (by, via)
    assert message.closed_wall == closing.wall_time == message.wall_time


def test_a_more_severe_event_reopens_a_closed_incident_and_a_lesser_one_does_not() -> None:
    events = [row(1, EventType.STUMBLE, I1), row(2, EventType.CLOSED, I1, by="Ann")]
    events.append(row(3, EventType.STUMBLE, I1))
    still = incident_message(DEVICE, events, NOW)
    assert not still.open and still.closed_by == "Ann"
    events.append(row(4, EventType.FALL, I1))
    reopened = incident_message(DEVICE, events, NOW)
    assert reopened.open and reopened.severity == "fall" and reopened.closed_by is None


def test_a_closing_event_of_another_incident_leaves_the_open_one_open() -> None:
    events = [row(1, EventType.FALL, I1), row(2, EventType.CLOSED, I2, by="Ann")]
    assert incident_message(DEVICE, events, NOW).open


def test_after_a_reset_the_next_trip_is_a_new_incident() -> None:
    events = [
        row(1, EventType.FALL, I1),
        row(2, EventType.RESET, I1),
        row(3, EventType.STUMBLE, I2),
    ]
    message = incident_message(DEVICE, events, NOW)
    assert message.open and message.incident == I2 and message.severity == "stumble"


def test_events_from_before_incidents_group_until_the_reset() -> None:
    fall = row(1, EventType.FALL)
    events = [fall, row(2, EventType.NO_RECOVERY), row(3, EventType.FAULT)]
    message = incident_message(DEVICE, events, NOW)
    assert message.open and message.incident == fall.id and message.severity == "no_recovery"
    events.append(row(4, EventType.RESET))
    closed = incident_message(DEVICE, events, NOW)
    assert not closed.open and closed.closed_by == "walker"


def test_a_fault_outside_armed_is_an_incident_too() -> None:
    message = incident_message(DEVICE, [row(1, EventType.FAULT, I1)], NOW)
    assert message.open and message.severity == "fault"


# ----------------------------------------------------------- from a real device database


def _event(kind: EventType, t: float, state: str = "TRIPPED") -> Event:
    return Event.now(kind, DEVICE, t, state, f"a {kind.value}")


def _store_with_incident(db: Path, event: Event, incident: str, **extra: str) -> None:
    """An event as a monitor with incidents writes it: the record carries ``incident``."""
    body = event.to_dict() | {"incident": incident, **extra}
    connect(db).close()  # the device's schema, as the courier makes it
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO events (id, device_id, type, severity, wall_time, body)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (event.id, DEVICE, event.type.value, event.severity.value, event.wall_time,
             json.dumps(body)),
        )  # fmt: skip
    conn.close()


def test_the_incident_is_read_from_the_event_log(tmp_path: Path) -> None:
    db = tmp_path / "device.db"
    status = RetainedStatus(db, Topics("retroguard", DEVICE))
    first = status.incident()
    assert first is not None and first.topic == "retroguard/tm-1/incident"
    none_yet = decode_as(IncidentMessage, first.payload.encode())
    assert not none_yet.open and none_yet.incident is None
    jsonschema.validate(json.loads(first.payload), schema("incident"))
    assert status.incident() is not None  # not handed to the client yet: still owed
    status.published(first)
    assert status.incident() is None  # nothing changed: nothing to publish

    with EventStore(db) as store:  # a monitor before incidents
        store.append(_event(EventType.START, 0.0, "STARTING"))
        fall = _event(EventType.FALL, 1.0)
        store.append(fall)
        store.append(_event(EventType.STOP, 2.0))
    opened = status.incident()
    assert opened is not None
    message = decode_as(IncidentMessage, opened.payload.encode())
    assert message.open and message.incident == fall.id and message.severity == "fall"

    _store_with_incident(db, _event(EventType.STUMBLE, 3.0), I1)  # a monitor with incidents
    _store_with_incident(db, _event(EventType.CLOSED, 4.0), I1, by="Ann", via="home-assistant")
    after = status.incident()
    assert after is not None
    message = decode_as(IncidentMessage, after.payload.encode())
    assert (message.open, message.incident, message.closed_by, message.closed_via) == (
        False,
        I1,
        "Ann",
        "home-assistant",
    )
    jsonschema.validate(json.loads(after.payload), schema("incident"))
    status.forget()  # after a reconnect: the same message again, byte for byte
    again = status.incident()
    assert again is not None and again.payload == after.payload
    status.close()


def test_the_progress_counts_this_weeks_sessions_and_shows_the_newest(tmp_path: Path) -> None:
    db = tmp_path / "device.db"
    monday = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # ISO week 2026-W10
    now = monday + dt.timedelta(days=2)
    clock = [now]
    status = RetainedStatus(db, Topics("retroguard", DEVICE), now=lambda: clock[0], zone=dt.UTC)
    first = status.progress()
    assert first is not None
    empty = decode_as(ProgressMessage, first.payload.encode())
    assert (empty.session, empty.week, empty.week_sessions, empty.week_at_goal) == (
        "none",
        "2026-W10",
        0,
        0,
    )
    assert empty.goal_sessions == 3 and empty.goal_backward_s == 600.0

    conn = connect(db)
    last_week = session_record(
        DEVICE, monday - dt.timedelta(hours=10), backward_min=12, longest_min=11
    )
    at_goal = session_record(DEVICE, monday, backward_min=14, longest_min=10.5)
    short = session_record(DEVICE, monday + dt.timedelta(days=1), backward_min=8, longest_min=4)
    for record in (last_week, at_goal, short):
        save_session(conn, record)
    running = msgspec.structs.replace(
        session_record(DEVICE, now - dt.timedelta(minutes=5), backward_min=2, longest_min=2),
        status="running",
        ended_wall=None,
    )
    save_session(conn, running)
    conn.close()

    changed = status.progress()
    assert changed is not None and changed.topic == "retroguard/tm-1/progress"
    message = decode_as(ProgressMessage, changed.payload.encode())
    jsonschema.validate(json.loads(changed.payload), schema("progress"))
    assert message.session == "running" and message.session_id == running.id
    assert message.ended_wall is None and message.started_wall == running.started_wall
    assert message.week_sessions == 3  # not last week's
    assert message.week_at_goal == 1
    assert message.week_backward_s == (14 + 8 + 2) * 60
    assert message.week_longest_backward_s == 10.5 * 60
    status.published(changed)
    assert status.progress() is None  # the same figures: nothing new to publish

    clock[0] = now + dt.timedelta(days=5)  # next Monday: the week starts from nothing
    rolled = status.progress()
    assert rolled is not None
    next_week = decode_as(ProgressMessage, rolled.payload.encode())
    assert (next_week.week, next_week.week_sessions, next_week.week_backward_s) == (
        "2026-W11",
        0,
        0.0,
    )
    assert next_week.session == "running"  # the newest session is still the newest
    status.close()


def test_a_restarted_reporter_reads_the_open_incident_back(tmp_path: Path) -> None:
    db = tmp_path / "device.db"
    topics = Topics("retroguard", DEVICE)
    _store_with_incident(db, _event(EventType.STUMBLE, 1.0), I1)
    _store_with_incident(db, _event(EventType.FALL, 2.0), I1)
    with EventStore(db) as store:
        for i in range(300):  # more than a first read takes, none of them about incidents
            store.append(_event(EventType.WINDOW if i % 2 else EventType.TEST, 3.0 + i))
    before = RetainedStatus(db, topics).incident()
    assert before is not None
    message = decode_as(IncidentMessage, before.payload.encode())
    assert message.open and message.incident == I1 and message.severity == "fall"

    running = RetainedStatus(db, topics)
    assert running.incident() is not None
    _store_with_incident(db, _event(EventType.NO_RECOVERY, 400.0), I1)
    worse = running.incident()  # only the new event is read, folded into what was known
    assert worse is not None
    assert decode_as(IncidentMessage, worse.payload.encode()).severity == "no_recovery"
    _store_with_incident(db, _event(EventType.CLOSED, 401.0), I1, by="Ann", via="dashboard")
    closed = running.incident()
    fresh = RetainedStatus(db, topics).incident()  # a restart now reads the same
    assert closed is not None and fresh is not None and closed.payload == fresh.payload
    assert decode_as(IncidentMessage, closed.payload.encode()).closed_by == "Ann"


def test_the_progress_carries_the_latest_balance_check_and_step_time_variability(
    tmp_path: Path,
) -> None:
    from core.protocol.messages import BalanceFigures, GaitFigures

    db = tmp_path / "device.db"
    monday = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    status = RetainedStatus(db, Topics("retroguard", DEVICE), now=lambda: monday, zone=dt.UTC)
    first = status.progress()
    assert first is not None
    none_yet = decode_as(ProgressMessage, first.payload.encode())
    assert none_yet.sway_rms_ap_ms2 is None and none_yet.step_time_cv_pct is None

    def check(rms_ap: float | None) -> BalanceFigures:
        if rms_ap is None:
            return BalanceFigures(condition="eyes open", status="moved", duration_s=9.0)
        return BalanceFigures(
            condition="eyes open",
            status="measured",
            duration_s=30.0,
            rms_ap_ms2=rms_ap,
            rms_ml_ms2=0.02,
        )

    gait = GaitFigures(
        analysed_s=600.0, steady_s=500.0, steady_share=0.83, steps=700, step_time_cv_pct=4.2
    )
    conn = connect(db)
    # Two weeks ago: measured check and gait; last week: a check the walker moved in, gait
    # too short to measure; this week: not yet walked.
    older = msgspec.structs.replace(
        session_record(DEVICE, monday - dt.timedelta(days=14), backward_min=10, longest_min=10),
        balance=[check(0.07)],
        gait_backward=gait,
    )
    moved = msgspec.structs.replace(
        session_record(DEVICE, monday - dt.timedelta(days=7), backward_min=10, longest_min=10),
        balance=[check(None)],
        gait_backward=GaitFigures(analysed_s=20.0, steady_s=0.0, steady_share=0.0, steps=0),
    )
    for record in (older, moved):
        save_session(conn, record)
    conn.close()
    changed = status.progress()
    assert changed is not None
    message = decode_as(ProgressMessage, changed.payload.encode())
    jsonschema.validate(json.loads(changed.payload), schema("progress"))
    assert message.session_id == moved.id  # the newest session ...
    # ... but the newest *measured* balance check and step-time variability are the older's
    assert (message.sway_rms_ap_ms2, message.sway_rms_ml_ms2) == (0.07, 0.02)
    assert message.sway_wall == older.started_wall
    assert message.step_time_cv_pct == 4.2 and message.gait_wall == older.started_wall
    status.close()


def test_the_progress_counts_weeks_in_the_devices_zone(tmp_path: Path) -> None:
    """Monday 00:30 in Berlin is still Sunday in UTC: in Berlin it is this week's session."""
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    db = tmp_path / "device.db"
    monday_early = dt.datetime(2026, 3, 2, 0, 30, tzinfo=berlin)  # 2026-W10; Sunday 23:30 UTC
    conn = connect(db)
    save_session(conn, session_record(DEVICE, monday_early, backward_min=12, longest_min=11))
    conn.close()
    now = lambda: monday_early + dt.timedelta(hours=8)  # noqa: E731
    counted = {}
    for zone in (berlin, dt.UTC):
        status = RetainedStatus(db, Topics("retroguard", DEVICE), now=now, zone=zone)
        message = status.progress()
        assert message is not None
        progress = decode_as(ProgressMessage, message.payload.encode())
        counted[str(zone)] = (progress.week, progress.week_sessions)
        status.close()
    assert counted == {"Europe/Berlin": ("2026-W10", 1), "UTC": ("2026-W10", 0)}


def test_the_retained_incident_names_its_walker_and_leaves_the_default_one_out(
    tmp_path: Path,
) -> None:
    """The walker the device's incident record holds (the walker of the session under way
    when it opened) is on the retained incident; the default walker's incident has no
    ``walker`` key, byte for byte what a device with one walker published before."""
    db = tmp_path / "device.db"
    status = RetainedStatus(db, Topics("retroguard", DEVICE))
    with EventStore(db) as store:
        # stamped with the clock set (this host's may not be): the message of every older release
        trip = dataclasses.replace(_event(EventType.STUMBLE, 1.0), incident=I1, wall_unsynced=False)
        store.append(trip)  # no session under way, none chosen: the default walker's
    first = status.incident()
    assert first is not None
    body = json.loads(first.payload)
    assert body["incident"] == I1 and "walker" not in body
    assert first.payload == payloads.encode(
        IncidentMessage(
            schema=1, device_id=DEVICE, open=True, wall_time=trip.wall_time, incident=I1,
            severity="stumble", opened_wall=trip.wall_time, last_event=trip.id,
        )
    )  # fmt: skip
    with EventStore(db) as store:
        store.append(dataclasses.replace(_event(EventType.RESET, 2.0, "ARMED"), incident=I1))
        anna_s = dataclasses.replace(_event(EventType.FALL, 3.0), incident=I2)
        store.append(anna_s, walker="anna")  # during Anna's session
    after = status.incident()
    assert after is not None
    message = decode_as(IncidentMessage, after.payload.encode())
    assert (message.incident, message.open, message.walker) == (I2, True, "anna")
    jsonschema.validate(json.loads(after.payload), schema("incident"))
    with EventStore(db) as store:  # it stays hers when it closes
        closing = dataclasses.replace(_event(EventType.OK, 4.0, "ARMED"), incident=I2)
        store.append(closing, walker="ben")
    closed = status.incident()
    assert closed is not None
    message = decode_as(IncidentMessage, closed.payload.encode())
    assert (message.open, message.walker) == (False, "anna")
    status.close()
    bad = json.loads(closed.payload) | {"walker": "Anna B"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema("incident"))
