"""``/api/alarms``: the critical events a dashboard page whose live feed broke must still alarm for.

A page remembers the server's time it was rendered at and moves it on with every event its
feed brings; once a broken feed is back it asks for the open (unacknowledged) incidents with
a critical event since (``static/app.js``). The answer is the caregiver's devices' only, as
every other page and endpoint is. Both engines; the service's clock is the test's, so the
events' arrival times are known. The browser's side: tests/test_caregiver_browser.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caregiver.routes.api import ARRIVAL_LAG_S
from caregiver.service import CaregiverService
from tests.caregiver_support import FakeClock, Http, SimDevice, make_config, running_service
from tools.broker import Mosquitto

JSON = {"accept": "application/json"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str, clock: FakeClock
) -> Iterator[CaregiverService]:
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, background=False, clock=clock) as s:
        yield s


def _alarms(client: Http, since: float) -> list[dict[str, Any]]:
    status, _, body = client.request("GET", f"/api/alarms?since={since!r}", headers=JSON)
    assert status == 200, body
    alarms: list[dict[str, Any]] = json.loads(body)["alarms"]
    return alarms


def _stored(service: CaregiverService, event: dict[str, Any]) -> None:
    assert service.ingestor.wait_for(lambda: service.store.event(event["id"]) is not None)


def test_open_critical_incidents_since_a_time_of_the_caregiver_s_devices_only(
    service: CaregiverService, mosquitto: Mosquitto, clock: FakeClock
) -> None:
    service.accounts.add_user("bob", "another good password")
    assert service.accounts.limit("bob", ["treadmill-2"])
    dad, mine, third = (SimDevice(mosquitto, f"treadmill-{n}") for n in (1, 2, 3))
    try:
        for device in (dad, mine, third):
            device.online()
        before = dad.incident_fall()  # before the page's time: not missed
        _stored(service, before["window"])
        clock.advance(ARRIVAL_LAG_S + 60)
        since = clock()
        clock.advance(5)
        missed = dad.incident_fall()
        _stored(service, missed["window"])
        theirs = mine.incident_fall()
        _stored(service, theirs["window"])
        stumble = third.stumble()  # open, but not critical
        _stored(service, stumble)
        acknowledged = third.incident_fall()
        _stored(service, acknowledged["window"])
        ann, bob = Http(service.port), Http(service.port)
        assert ann.login() == 303 and bob.login("bob", "another good password") == 303
        status, _, _ = ann.request(
            "POST",
            f"/events/{acknowledged['fall']['id']}/ack",
            {"csrf": _csrf(ann)},
            headers={"accept": "text/html"},
        )
        assert status in (200, 303)

        # oldest first; both came at one time here (the test's clock): in device order
        assert sorted(_alarms(ann, since), key=lambda a: str(a["device_id"])) == [
            {
                "device_id": "treadmill-1",
                "device_name": "Dad's treadmill",
                "incident": missed["incident"],
                "text": "FALL — not acknowledged",
                "link": f"/events/{missed['trip']['id']}",
                "events": [missed["fall"]["id"]],
                "received_at": since + 5,
            },
            {
                "device_id": "treadmill-2",
                "device_name": "treadmill-2",
                "incident": theirs["incident"],
                "text": "FALL — not acknowledged",
                "link": f"/events/{theirs['trip']['id']}",
                "events": [theirs["fall"]["id"]],
                "received_at": since + 5,
            },
        ]
        assert [a["device_id"] for a in _alarms(bob, since)] == ["treadmill-2"]
        # the lag: an event that came just before the page's time is looked at too (the page
        # skips those it heard); later than every event, nothing
        assert {a["incident"] for a in _alarms(ann, since + 5 + ARRIVAL_LAG_S / 2)} == {
            missed["incident"],
            theirs["incident"],
        }
        assert _alarms(ann, since + 5 + ARRIVAL_LAG_S * 2) == []

        anybody = Http(service.port)
        status, _, _ = anybody.request("GET", f"/api/alarms?since={since}", headers=JSON)
        assert status == 401
        for bad in ("", "soon", "nan"):
            status, _, _ = ann.request("GET", f"/api/alarms?since={bad}", headers=JSON)
            assert status == 400, bad
    finally:
        for device in (dad, mine, third):
            device.close()


def _csrf(client: Http) -> str:
    _, _, page = client.request("GET", "/")
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found[1]
