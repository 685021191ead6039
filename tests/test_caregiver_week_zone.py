"""A walker's weeks are the treadmill's: the dashboard counts them in the zone the device names
in its progress message, as the device's progression does, not in ``[server] timezone``.

The service runs in UTC; the treadmill in New York. A session at Sunday 23:30 New York time is
Monday 04:30 in UTC: the device's progression counts it in the week it ends, and the dashboard
did not (2 of 3 done that week, and the third in the next week) while the stage had advanced.
Real Mosquitto, the firmware's own progress message and the progression's own rule.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest

from core.plan_presets import PRESETS
from core.progression import StageSession, completed_in
from core.protocol.messages import SessionRecord
from core.protocol.payloads import encode
from core.protocol.plan import Stage
from firmware.mqtt.status import progress_message
from launcher.cli import main
from tests.caregiver_support import (
    WAIT,
    FakeClock,
    Http,
    SimDevice,
    make_config,
    running_service,
    session_record,
    walked,
)
from tests.mqtt_helpers import validate
from tools.broker import Mosquitto

DEVICE = "treadmill-1"
NEW_YORK = ZoneInfo("America/New_York")
PLAN = PRESETS["alternate-2-2"]
STAGE = Stage(plan=PLAN, weeks=1, sessions_per_week=3)


def _at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """February 2026 in New York (EST all month: no daylight-saving change in the test)."""
    return dt.datetime(2026, 2, day, hour, minute, tzinfo=NEW_YORK)


def _stage_session(record: SessionRecord) -> StageSession:
    """The record as the device's progression reads its stored row."""
    return StageSession(
        started_wall=record.started_wall,
        plan=record.plan,
        status=record.status,
        planned_s=record.planned_s,
        done_s=record.done_s,
        backward_s=record.backward_s,
        longest_backward_s=record.longest_backward_s,
        walk=tuple((i.direction, i.planned_s, i.speed) for i in record.intervals),
    )


def test_a_sunday_late_session_counts_in_the_treadmill_s_week_on_the_dashboard(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # ISO week 2026-W07 in New York: Monday 9 to Sunday 15 February
    starts = [_at(10, 18), _at(12, 18), _at(15, 23, 30)]  # Tue, Thu, Sunday 23:30
    records = [
        walked(session_record(DEVICE, s.astimezone(dt.UTC), backward_min=14, longest_min=2), PLAN)
        for s in starts
    ]
    assert records[2].started_wall.startswith("2026-02-16T04:30")  # Monday in UTC
    # The device: its progression completes the stage in W07, and its progress says 3 done
    assert completed_in(STAGE, "2026-02-09T05:00:00+00:00", map(_stage_session, records),
                        NEW_YORK) == "2026-W07"  # fmt: skip
    now = _at(15, 23, 45)
    told = progress_message(DEVICE, records[2], records, now, NEW_YORK, prescribed=3)
    assert (told.week, told.week_done, told.zone) == ("2026-W07", 3, "America/New_York")
    payload = encode(told)
    validate("progress", payload)  # the documented schema has the zone

    config = make_config(mosquitto, tmp_path)
    assert config.server.timezone == "UTC"  # the service counts in UTC: Monday already
    with running_service(config, background=False, clock=FakeClock(now.timestamp())) as cg:
        device = SimDevice(mosquitto, DEVICE)
        try:
            for record in records:
                device.session(record)
            device.publish("progress", payload, retain=True)
            assert cg.ingestor.wait_for(
                lambda: (
                    cg.ingestor.sessions_stored >= 3
                    and cg.store.device_zone(DEVICE) == "America/New_York"
                ),
                WAIT,
            )
        finally:
            device.close()
        web = Http(cg.port)
        assert web.login() == 303
        status, _, page = web.request("GET", f"/devices/{DEVICE}/progress")
        assert status == 200
        # this week is the treadmill's W07, all three done: what its progression counted
        # the week by its Monday, for the browser to say as it says every date (static/time.js)
        assert 'Week of <time datetime="2026-02-09" data-format="day">9 Feb</time> (EST)' in page
        assert "<strong>3 of 3</strong> prescribed sessions done" in page
        _, _, chart = web.request("GET", f"/api/devices/{DEVICE}/progress")
        figures = json.loads(chart)
        assert (figures["labels"][-1], figures["done"][-1]) == ("9 Feb", 3)
        _, _, trends = web.request("GET", f"/api/devices/{DEVICE}/trends")
        assert json.loads(trends)["zone"] == "America/New_York"
        # the report's weeks are the same: W07 with its three sessions, no W08
        status, _, text = web.request("GET", f"/devices/{DEVICE}/report.csv")
        assert status == 200
        rows = [r for r in csv.reader(io.StringIO(text)) if r and r[0].startswith("2026-W")]
        assert [r[0] for r in rows] == ["2026-W07"], rows
        # and the file says the zone they are counted in, the treadmill's: by the service's
        # UTC its Sunday 23:30 is a Monday, and the sheet read as that said the other week
        weeks = {r["week"]: r for r in csv.DictReader(io.StringIO(text))}
        starts = "week_starts (weeks counted in America/New_York)"
        assert weeks["2026-W07"][starts] == "2026-02-09", list(weeks["2026-W07"])


def test_a_device_that_names_no_zone_is_counted_in_the_service_s_zone(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """An older release names no zone (and a zone this machine's tzdata lacks is not stored):
    its walkers' weeks are counted in ``[server] timezone``, as before."""
    record = walked(
        session_record(DEVICE, _at(15, 23, 30).astimezone(dt.UTC), backward_min=14,
                       longest_min=2),
        PLAN,
    )  # fmt: skip
    now = _at(15, 23, 45)
    older = msgspec.structs.replace(
        progress_message(DEVICE, record, [record], now, NEW_YORK), zone=None
    )
    unknown = msgspec.structs.replace(older, zone="Mars/Olympus_Mons", week_prescribed=2)
    with running_service(
        make_config(mosquitto, tmp_path), background=False, clock=FakeClock(now.timestamp())
    ) as cg:
        device = SimDevice(mosquitto, DEVICE)
        try:
            device.session(record)
            device.publish("progress", encode(unknown))
            device.publish("progress", encode(older))  # after it, in order: its 3 is last
            assert cg.ingestor.wait_for(
                lambda: (
                    cg.ingestor.sessions_stored >= 1
                    and cg.store.prescribed_weeks(DEVICE) == {"2026-W07": 3}
                ),
                WAIT,
            )
        finally:
            device.close()
        assert cg.store.device_zone(DEVICE) == ""
        web = Http(cg.port)
        assert web.login() == 303
        _, _, page = web.request("GET", f"/devices/{DEVICE}/progress")
        # Monday 04:30 in the service's zone
        assert 'Week of <time datetime="2026-02-16" data-format="day">16 Feb</time> (UTC)' in page
        _, _, text = web.request("GET", f"/devices/{DEVICE}/report.csv")
        weeks = {r["week"]: r for r in csv.DictReader(io.StringIO(text))}  # named: the service's
        assert weeks["2026-W08"]["week_starts (weeks counted in UTC)"] == "2026-02-16"


def test_on_a_utc_machine_the_csv_names_the_zone_as_the_pages_do(
    mosquitto: Mosquitto,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The machine's zone is ``Etc/UTC`` (Debian's /etc/localtime), ``[server] timezone`` is
    unset and the treadmill names no zone: the progress page says the weeks' zone "UTC", and
    so does the CSV's header, from the dashboard and from ``retroguard caregiver report``.
    Before, the header said "Etc/UTC", the tz database's name of the same zone, which no
    page says. "UTC" is an IANA name too: a program reads the header back as a zone."""
    monkeypatch.setenv("TZ", "Etc/UTC")  # as /etc/localtime -> zoneinfo/Etc/UTC reads
    record = walked(
        session_record(DEVICE, _at(12, 18).astimezone(dt.UTC), backward_min=14, longest_min=2),
        PLAN,
    )
    config = make_config(mosquitto, tmp_path)
    config = dataclasses.replace(config, server=dataclasses.replace(config.server, timezone=""))
    starts = "week_starts (weeks counted in UTC)"
    with running_service(config, background=False, clock=FakeClock(_at(12, 19).timestamp())) as cg:
        device = SimDevice(mosquitto, DEVICE)
        try:
            device.session(record)
            assert cg.ingestor.wait_for(lambda: cg.ingestor.sessions_stored >= 1, WAIT)
        finally:
            device.close()
        web = Http(cg.port)
        assert web.login() == 303
        _, _, page = web.request("GET", f"/devices/{DEVICE}/progress")
        assert 'data-format="day">9 Feb</time> (UTC)' in page
        _, _, text = web.request("GET", f"/devices/{DEVICE}/report.csv")
        assert next(csv.reader(io.StringIO(text)))[1] == starts
    toml = tmp_path / "caregiver.toml"
    toml.write_text(f'[server]\ndatabase = "{config.server.database}"\n')
    capsys.readouterr()
    assert main(["caregiver", "report", "-c", str(toml), DEVICE]) == 0
    assert capsys.readouterr().out.splitlines()[0].split(",")[1] == starts
