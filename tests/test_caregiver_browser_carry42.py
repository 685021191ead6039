"""Caregiver pages, in a real browser, for defects carried from earlier reviews (session 42):
real Mosquitto, the real store, the page's own script; screenshots at phone and desk widths
(``$RETROGUARD_SCREENSHOTS``, else the test's temporary folder)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caregiver import story
from caregiver.broker_link import Connected
from caregiver.ingest import ReconnectDelays
from caregiver.service import CaregiverService
from core.protocol.payloads import reply_payload
from tests.browser_support import NEEDS_CHROMIUM, logged_in, widths_on_each_engine
from tests.browser_support import shot as _shot
from tests.caregiver_support import WAIT, SimDevice, make_config, running_service, wait_all_handled
from tools.broker import Mosquitto

pytestmark = NEEDS_CHROMIUM

QUICK_RECONNECT = ReconnectDelays(first_s=0.05, most_s=0.5)


@pytest.fixture
def service(mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str) -> Iterator[CaregiverService]:
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    # the broker comes back within the wait however long its outage took on a loaded machine
    # (the service's own waits between tries double up to 30 s)
    with running_service(config, background=False, reconnect=QUICK_RECONNECT) as s:
        yield s


@widths_on_each_engine(1280, 360)
def test_while_the_service_cannot_reach_the_broker_each_card_says_it_is_not_live(
    browser: Any, service: CaregiverService, mosquitto: Mosquitto, tmp_path: Path, width: int
) -> None:
    """The service lost its broker: an amber banner said so at the top, but Dad's card below
    stayed green, "Monitor armed", for as long as the link was down, and a caregiver glancing
    at the phone read it as live (a fall meanwhile reaches neither the card nor them). While
    the service cannot hear the treadmills, each card says "Not live — may be out of date"
    as it does while the page's own feed reconnects: on the page that was open, on a page
    loaded meanwhile (the fleet and the treadmill's own), without moving; once the service
    hears the broker again, they stop saying it, without a reload."""
    from playwright.sync_api import expect

    dad = SimDevice(mosquitto, "treadmill-1")
    mum = SimDevice(mosquitto, "treadmill-2")
    dad.online()
    mum.online()
    wait_all_handled(service, dad, mum)
    page = logged_in(browser, service, width, has_touch=width < 600)
    expect(page.locator("body")).to_have_attribute("data-live", "1")
    cards = page.locator(".card")
    stale = page.locator(".card .card-stale")
    for card in ("treadmill-1", "treadmill-2"):
        expect(page.locator(f"#card-{card}")).to_have_attribute("data-level", "ok")
        expect(page.locator(f"#card-{card} .card-stale")).to_be_hidden()
    heights = [box["height"] for box in (c.bounding_box() for c in cards.all()) if box]

    # the treadmills leave cleanly (their retained "online" stays; no will to race the stop)
    dad.close()
    mum.close()
    mosquitto.stop()
    assert service.ingestor.link.wait_for(lambda s: not isinstance(s, Connected), WAIT)
    expect(page.locator("#broker-banner")).to_be_visible()
    expect(page.locator("#live-status")).to_have_text("not receiving")
    for card in ("treadmill-1", "treadmill-2"):
        expect(page.locator(f"#card-{card} .card-stale")).to_be_visible()
        expect(page.locator(f"#card-{card} .card-stale")).to_have_text(story.NOT_LIVE)
    # the tag takes no room: each card as tall as it was (the banner above moved them down)
    assert [box["height"] for box in (c.bounding_box() for c in cards.all()) if box] == heights
    page.screenshot(path=_shot(tmp_path, service, f"broker-not-live-{width}.png"), full_page=True)

    page.reload()  # the page's own cards, rendered while the link is down
    expect(page.locator("body")).to_have_attribute("data-live", "1")
    expect(page.locator("#broker-banner")).to_be_visible()
    expect(stale).to_have_count(2)
    for card in ("treadmill-1", "treadmill-2"):
        expect(page.locator(f"#card-{card} .card-stale")).to_be_visible()
    page.goto(service.url + "/devices/treadmill-1")
    expect(page.locator("#card-treadmill-1 .card-stale")).to_be_visible()
    expect(page.locator("#card-treadmill-1 .card-stale")).to_have_text(story.NOT_LIVE)
    page.screenshot(
        path=_shot(tmp_path, service, f"broker-not-live-device-{width}.png"), full_page=True
    )

    mosquitto.start()
    assert service.ingestor.link.wait_for(lambda s: isinstance(s, Connected), WAIT)
    expect(page.locator("#broker-banner")).to_be_hidden()
    expect(page.locator("#live-status")).to_have_text("live")
    expect(page.locator("#card-treadmill-1 .card-stale")).to_be_hidden()
    page.goto(service.url + "/")
    expect(page.locator("body")).to_have_attribute("data-live", "1")
    expect(stale.first).to_be_hidden()
    expect(stale.last).to_be_hidden()
    page.context.close()


@widths_on_each_engine(360, 1280)
def test_an_older_alert_s_row_says_the_treadmill_confirmed_its_close_after_a_newer_one(
    browser: Any, service: CaregiverService, mosquitto: Mosquitto, tmp_path: Path, width: int
) -> None:
    """Ann acknowledged Dad's fall; before the treadmill confirmed the close, Dad fell again.
    The treadmill's confirmation of the first came next: its row in Recent alerts went on
    saying "not yet confirmed by the treadmill" until the page was reloaded (the live feed
    sent only the row of the card's newest alert). The row says it at once, live; the new
    fall's row and card stay as they are."""
    from playwright.sync_api import expect

    device = SimDevice(mosquitto, "treadmill-1", answers_acks=False)
    device.online()
    device.incident_fall()
    wait_all_handled(service, device)
    page = logged_in(browser, service, width, has_touch=width < 600)
    expect(page.locator("body")).to_have_attribute("data-live", "1")
    rows = page.locator("#incidents li.incident .etype")
    card = page.locator("#card-treadmill-1 .headline a")
    expect(rows).to_have_count(1)
    page.locator("#card-treadmill-1 .ack-form button").click()
    command = device.wait_command("ack")
    acknowledged = "Fall — acknowledged by ann on the dashboard"
    pending = f"{acknowledged} — {story.UNTOLD}"
    expect(rows.first).to_have_text(pending)

    device.incident_fall()  # the second fall: the card's alert now
    expect(rows).to_have_count(2)
    expect(card).to_have_text("FALL — not acknowledged")
    expect(rows.nth(1)).to_have_text(pending)

    result = {"acknowledged": command.get("incident"), "already": False}
    device.publish("reply", reply_payload("treadmill-1", "ack", command.get("id"), True, result))
    expect(rows.nth(1)).to_have_text(acknowledged)  # live, without a reload
    expect(rows.first).to_have_text("FALL — not acknowledged")
    expect(card).to_have_text("FALL — not acknowledged")
    page.screenshot(path=_shot(tmp_path, service, f"older-confirmed-{width}.png"), full_page=True)
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-live", "1")
    expect(rows.nth(1)).to_have_text(acknowledged)
    page.context.close()
    device.close()
