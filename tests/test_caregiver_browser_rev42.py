"""Caregiver pages, in a real browser, for defects found in session 42's review of its own
merges (rev42): real Mosquitto, the real store, the page's own script."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caregiver import story
from caregiver.service import CaregiverService
from core.protocol.payloads import reply_payload
from tests.browser_support import NEEDS_CHROMIUM, logged_in, widths_on_each_engine
from tests.caregiver_support import SimDevice, make_config, running_service, wait_all_handled
from tools.broker import Mosquitto

pytestmark = NEEDS_CHROMIUM

LISTED = 10
"""The alerts the fleet's "Recent alerts" lists (caregiver/routes/pages.py)."""


@pytest.fixture
def service(mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str) -> Iterator[CaregiverService]:
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, background=False) as s:
        yield s


@widths_on_each_engine(1280)
def test_a_close_confirmed_for_an_alert_no_longer_listed_does_not_top_recent_alerts(
    browser: Any, service: CaregiverService, mosquitto: Mosquitto, width: int
) -> None:
    """Ann acknowledged Dad's fall on treadmill 1, which was slow to confirm it; meanwhile
    treadmill 2 had ten stumbles, and her page, loaded again, lists those ten. Treadmill 1's
    confirmation then put Dad's old fall at the top of "Recent alerts", above the newest
    stumble, an eleventh row that read as the newest alert: the live feed sends a card's
    latest alert's row with every change of the card, and the page put any row it did not
    list on top. The list stays as it was: the newest ten, newest first."""
    from playwright.sync_api import expect

    dad = SimDevice(mosquitto, "treadmill-1", answers_acks=False)
    dad.online()
    dad.incident_fall()
    wait_all_handled(service, dad)
    page = logged_in(browser, service, width)
    expect(page.locator("body")).to_have_attribute("data-live", "1")
    page.locator("#card-treadmill-1 .ack-form button").click()
    command = dad.wait_command("ack")
    rows = page.locator("#incidents li.incident")
    expect(rows.first.locator(".etype")).to_contain_text(story.UNTOLD)

    other = SimDevice(mosquitto, "treadmill-2")
    other.online()
    for _ in range(LISTED):
        other.incident_trip(uuid.uuid4().hex)
    wait_all_handled(service, dad, other)
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-live", "1")
    expect(rows).to_have_count(LISTED)
    newest = rows.first.get_attribute("data-incident")
    expect(page.locator("#incidents")).not_to_contain_text("Fall")

    result = {"acknowledged": command.get("incident"), "already": False}
    dad.publish("reply", reply_payload("treadmill-1", "ack", command.get("id"), True, result))
    wait_all_handled(service, dad, other)
    # the card says the close reached the treadmill: the feed has told the page of it
    expect(page.locator("#card-treadmill-1")).not_to_contain_text(story.UNTOLD)
    expect(rows).to_have_count(LISTED)
    expect(rows.first).to_have_attribute("data-incident", str(newest))
    expect(page.locator("#incidents")).not_to_contain_text("Fall")
    page.context.close()
    dad.close()
    other.close()
