"""The live feed when a read of the walkers fails: the names on a card or an alarm are
information, and a read that fails (a lock, a statement timing out, a damaged table) costs
the name, never the fall's alarm on an open dashboard nor its red card."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caregiver.storage import StorageFault
from tests.caregiver_support import WAIT, Http, SimDevice, make_config, running_service
from tests.test_caregiver_accounts import Stream
from tools.broker import Mosquitto, mosquitto_available

DEVICE = "treadmill-1"

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")


@pytest.fixture
def device(mosquitto: Mosquitto) -> Iterator[SimDevice]:
    sim = SimDevice(mosquitto, DEVICE)
    yield sim
    sim.close()


def test_a_failed_read_of_the_walkers_costs_the_alarm_and_the_pages_the_name_only(
    mosquitto: Mosquitto,
    tmp_path: Path,
    caregiver_db: str,
    device: SimDevice,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, background=False) as service:
        device.online()
        client = Http(service.port)
        assert client.login() == 303
        feed = Stream(service.port, client.cookies)
        try:

            def unreadable(*_: Any) -> list[tuple[str, str]]:
                raise StorageFault("caregiver database: database is locked")

            # the web side's reads only: ingest stores and pages in its own transaction
            monkeypatch.setattr(service.store, "walkers", unreadable)
            fall = device.incident_fall(walker="anna")["fall"]

            def seen() -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
                alarm = next((m for m in feed.messages if m["kind"] == "event"
                              and m["event"]["id"] == fall["id"]), None)  # fmt: skip
                red = next((m for m in feed.messages if m["kind"] == "device"
                            and m["card"]["level"] == "danger"), None)  # fmt: skip
                return alarm, red

            with feed.cond:
                assert feed.cond.wait_for(lambda: all(seen()), WAIT), feed.messages
                alarm, red = seen()
            assert alarm is not None and red is not None
            assert alarm["alarm"] and "anna" in alarm["alarm"]  # named by the id it carries
            # the pages that name it: the fleet, the device, the event, the missed alarms
            for path in ("/", f"/devices/{DEVICE}", f"/events/{fall['id']}", "/api/alarms"):
                status, _, body = client.request("GET", path, headers={"accept": "*/*"})
                assert status == 200, path
                assert "anna" in body, path
        finally:
            feed.close()
