"""In a browser: a part of the database the service goes on without (a side table renamed
behind its back) is said by every page's banner as it happens, without a reload, and the
badge by the brand stays "live" (the service still receives and pages); the banner goes when
the table is back. Before, only the log said it (docs/caregiver.md, *Parts of the database
the service goes on without*)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from caregiver.service import CaregiverService
from caregiver.storage import Role
from tests.browser_support import NEEDS_CHROMIUM
from tests.caregiver_db import execute
from tests.caregiver_support import PASSWORD, WAIT, Receiver, SimDevice, make_config
from tests.test_caregiver_service import _contacts
from tests.test_caregiver_whose_incident import _roster
from tools.broker import Mosquitto, mosquitto_available

pytestmark = [
    NEEDS_CHROMIUM,
    pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed"),
]


def test_the_banner_says_the_walkers_unreadable_live_and_the_badge_stays_live(
    browser: Any, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    receiver = Receiver()
    config = make_config(mosquitto, tmp_path, contacts=_contacts(receiver))
    database = config.server.database
    service = CaregiverService(config)
    service.accounts.add_user("ann", PASSWORD, Role.PHYSIO)
    device = SimDevice(mosquitto, "treadmill-1")
    context = browser.new_context(viewport={"width": 360, "height": 800})
    try:
        service.start(background=False, port=0)
        assert service.ingestor.connected.wait(WAIT)
        device.online()
        _roster(device)
        assert service.ingestor.wait_for(lambda: len(service.store.device_walkers("treadmill-1")))
        context.set_default_timeout(WAIT * 1000)
        page = context.new_page()
        page.goto(f"{service.url}/login")
        page.fill("#username", "ann")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("body")).to_have_attribute("data-live", "1")
        banner, badge = page.locator("#broker-banner"), page.locator("#live-status")
        expect(badge).to_have_text("live")
        expect(banner).to_be_hidden()

        execute(database, "ALTER TABLE device_walkers RENAME TO device_walkers_damaged")
        ids = device.incident_fall(walker="anna")  # ingest names the walker: by id
        assert service.ingestor.wait_for(lambda: service.store.event(ids["window"]["id"]))
        expect(banner).to_be_visible()  # the live feed says it: no reload
        expect(banner.locator(".broker-lead")).to_have_text(
            "Part of the service's database cannot be used:"
        )
        expect(banner).to_contain_text("the walkers' names cannot be read or stored")
        expect(banner).to_contain_text("Alerts are still stored and notified")
        expect(badge).to_have_text("live")  # it still receives and pages
        page.reload()  # as rendered: the same
        expect(page.locator("body")).to_have_attribute("data-live", "1")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("the walkers' names cannot be read or stored")
        expect(badge).to_have_text("live")

        execute(database, "ALTER TABLE device_walkers_damaged RENAME TO device_walkers")
        service.store.probe_side_faults()  # the ticker's look
        expect(banner).to_be_hidden()
        expect(badge).to_have_text("live")
    finally:
        context.close()
        device.close()
        service.stop()
        receiver.close()
