"""Falls in the caregiver's session records: a stumble the device confirmed as a fall counts as
a fall (not a stumble) on the progress page, in the CSV report and in the stored rows; a summary
from an older device (no ``falls``) and a row stored before caregiver schema 14 read as
``trips - stumbles`` falls."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path

import pytest
from msgspec.structs import replace

from caregiver.progress import parse_summary
from caregiver.storage import SCHEMA_VERSION, Store
from firmware.session.record import session_payload
from tests.caregiver_db import store_at_schema
from tests.caregiver_support import (
    WAIT,
    Http,
    SimDevice,
    make_config,
    received,
    running_service,
    session_record,
)
from tools.broker import Mosquitto

DEVICE = "treadmill-1"
MONDAY = dt.datetime(2025, 11, 17, 9, 0, tzinfo=dt.UTC)
SCHEMA_13_COLUMNS = (
    "id", "device_id", "plan", "status", "started_wall", "ended_wall", "planned_s", "done_s",
    "backward_s", "longest_backward_s", "steps", "walking_s", "cadence_spm", "trips",
    "stumbles", "received_at", "payload",
)  # fmt: skip
"""The required columns of ``walk_sessions`` before schema 14 (walker ones have defaults)."""


def fallen(started: dt.datetime = MONDAY) -> dict[str, object]:
    """A stopped session with a recovered stumble and a stumble confirmed as a fall (no
    recovery after it): trips 2, stumbles 1, falls 1."""
    record = session_record(
        DEVICE, started, backward_min=4, longest_min=2, trips=2, stumbles=1, status="stopped"
    )
    return received(replace(record, falls=1, no_recovery=1))


def test_a_summary_s_falls_are_stored_and_an_older_one_s_are_derived() -> None:
    row, problem = parse_summary(fallen(), DEVICE)
    assert row is not None, problem
    assert (row.trips, row.stumbles, row.falls, row.no_recovery) == (2, 1, 1, 1)
    older = {k: v for k, v in fallen().items() if k not in ("falls", "no_recovery")}
    row, problem = parse_summary(older, DEVICE)
    assert row is not None, problem
    assert (row.falls, row.no_recovery) == (1, 0)  # every release kept trips = stumbles + falls
    for change, reason in (
        ({"falls": 2}, "more stumbles and falls than trips"),
        ({"falls": -1}, "falls is not a non-negative integer"),
        ({"no_recovery": 2}, "more falls with no recovery than falls"),
    ):
        assert parse_summary({**fallen(), **change}, DEVICE) == (None, reason)


@pytest.mark.empty_database  # the upgrade from that schema's rows
def test_rows_stored_before_schema_14_have_trips_minus_stumbles_falls(caregiver_db: str) -> None:
    with store_at_schema(caregiver_db, 13) as old:  # the schema of the release before falls
        columns = SCHEMA_13_COLUMNS
        values = {
            "id": "a" * 32, "device_id": DEVICE, "plan": "p", "status": "stopped",
            "started_wall": "2025-11-17T09:00:00+00:00", "ended_wall": "", "planned_s": 60.0,
            "done_s": 60.0, "backward_s": 60.0, "longest_backward_s": 60.0, "steps": 0,
            "walking_s": 0.0, "cadence_spm": 0.0, "trips": 3, "stumbles": 1,
            "received_at": 1.0, "payload": "{}",
        }  # fmt: skip
        with old.transaction() as tx:
            tx._db.execute(
                f"INSERT INTO walk_sessions ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})",
                tuple(values[c] for c in columns),
            )
    store = Store(caregiver_db)
    try:
        assert (store.schema.before, store.schema.after) == (13, SCHEMA_VERSION)
        (row,) = store.walk_sessions(DEVICE, 10)
        assert (row.trips, row.stumbles, row.falls, row.no_recovery) == (3, 1, 2, 0)
    finally:
        store.close()


def test_the_progress_page_and_the_csv_show_the_fall(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with running_service(config, web=True, background=False) as service:
        device = SimDevice(mosquitto, DEVICE)
        record = session_record(
            DEVICE, now, backward_min=4, longest_min=2, trips=2, stumbles=1, status="stopped"
        )
        device.session(replace(record, falls=1, no_recovery=1))
        ingestor = service.ingestor
        assert ingestor.wait_for(lambda: ingestor.sessions_stored >= 1, WAIT)
        (row,) = service.store.walk_sessions(DEVICE, 10)
        assert (row.stumbles, row.falls, row.no_recovery) == (1, 1, 1)
        web = Http(service.port)
        assert web.login() == 303
        status, _, page = web.request("GET", f"/devices/{DEVICE}/progress")
        assert status == 200
        table = page[page.index('id="sessions"') :]
        assert '<th scope="col">Falls</th>' in table
        falls = (
            r'data-label="Falls" class="num">(?:<span class="cell">)?'
            r"([^<]*)<span[^>]*>([^<]*)</span>"
        )
        cell = re.search(falls, table)
        assert cell is not None and (cell[1].strip(), cell[2]) == ("1", "(1 no recovery)")
        status, _, body = web.request("GET", f"/devices/{DEVICE}/report.csv")
        assert status == 200, body
        rows = list(csv.DictReader(io.StringIO(body)))
        week = [r for r in rows if r["sessions"] == "1"]
        assert [(r["trips"], r["stumbles"], r["falls"], r["falls_no_recovery"]) for r in week] == [
            ("2", "1", "1", "1")
        ]
        device.close()


def test_an_amended_summary_replaces_the_row_and_an_earlier_one_redelivered_does_not(
    caregiver_db: str,
) -> None:
    """The device amends a stopped session's record when the fall is confirmed after the stop
    (docs/sessions.md) and sends its summary again under the same id: the caregiver's one row
    of that session now says fall, not stumble; the earlier summary delivered again after it
    (a republication overtaken by the amendment) leaves the row as it is, and so does the
    amended one again, even with other bytes (a later ``wall_time``: it is no order); a second
    amendment (no recovery after the fall) replaces it again.

    Each payload's ``wall_time`` is given: a test that let the clock choose it once saw the
    amended summary's second delivery as 'updated' or 'same' by whether the millisecond had
    turned."""
    stumbled = session_record(
        DEVICE, MONDAY, backward_min=4, longest_min=2, trips=1, stumbles=1, status="stopped"
    )
    stumbled = replace(stumbled, falls=0)
    intervals = [replace(i, stumbles=0, falls=1) if i.trips else i for i in stumbled.intervals]
    fell = replace(stumbled, stumbles=0, falls=1, intervals=intervals, amended=1)
    lay = [replace(i, no_recovery=1) if i.trips else i for i in intervals]
    lay_there = replace(fell, no_recovery=1, intervals=lay, amended=2)
    queued = [
        (MONDAY + dt.timedelta(minutes=40 + n)).isoformat(timespec="milliseconds") for n in range(4)
    ]
    deliveries = (
        (stumbled, queued[0]),
        (fell, queued[1]),
        (stumbled, queued[0]),  # the first summary redelivered
        (fell, queued[2]),  # the amendment again, queued later
        (lay_there, queued[3]),
    )
    store = Store(caregiver_db)
    try:
        outcomes, stored = [], []
        for record, wall_time in deliveries:
            payload = session_payload(record, wall_time)
            row, problem = parse_summary(json.loads(payload), DEVICE)
            assert row is not None, problem
            outcomes.append(store.record_walk_session(row, payload, 1.0))
            (kept,) = store.walk_session_payloads(DEVICE, 10)
            summary = json.loads(kept)
            stored.append((summary.get("amended", 0), summary["wall_time"]))
        assert outcomes == ["new", "updated", "same", "same", "updated"]
        assert stored == [
            (0, queued[0]),
            (1, queued[1]),
            (1, queued[1]),
            (1, queued[1]),
            (2, queued[3]),
        ]
        (row,) = store.walk_sessions(DEVICE, 10)
        assert (row.id, row.trips, row.stumbles, row.falls, row.no_recovery, row.amended) == (
            fell.id, 1, 0, 1, 1, 2,
        )  # fmt: skip
    finally:
        store.close()
