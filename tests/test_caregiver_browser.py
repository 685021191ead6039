"""The dashboard in Debian's headless Chromium, driven by Playwright, against the real service.

A simulated device (a plain paho client publishing the documented payloads)
falls; the card turns red and the event appears without a reload, the plot
renders, and the acknowledge button's command reaches the device. Waits are
Playwright's ``expect`` (condition polling), never sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caregiver.service import CaregiverService
from firmware.mqtt.broker import Mosquitto
from tests.caregiver_support import PASSWORD, SimDevice, make_config, running_service

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian chromium not installed (apt-get install -y chromium); "
    "Playwright's own browser download cannot work here",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def service(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[CaregiverService]:
    with running_service(make_config(mosquitto, tmp_path), background=False) as s:
        yield s


def _login(browser: Any, service: CaregiverService, width: int = 1024) -> Any:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.goto(service.url + "/")
    expect(page).to_have_url(service.url + "/login?next=/")
    page.fill("#username", "ann")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Treadmills")
    expect(page.locator("body")).to_have_attribute("data-live", "1")  # the live feed is open
    return page


def test_fall_turns_the_card_red_live_plot_renders_and_ack_reaches_the_device(
    browser: Any, service: CaregiverService, mosquitto: Mosquitto
) -> None:
    from playwright.sync_api import expect

    device = SimDevice(mosquitto, "treadmill-1")
    device.online()
    page = _login(browser, service)
    card = page.locator("#card-treadmill-1")
    expect(card).to_have_attribute("data-level", "ok")
    expect(card.locator(".state")).to_have_text("ARMED")

    event = device.fall()  # no reload from here on
    expect(card).to_have_attribute("data-level", "danger")
    expect(card.locator(".state")).to_have_text("TRIPPED")
    expect(card).to_have_css("background-color", "rgb(176, 0, 0)")
    row = page.locator(f'#timeline [data-event="{event["id"]}"]')
    expect(row).to_contain_text("FALL")
    expect(page.locator("#alarm-banner")).to_be_visible()
    expect(page.locator("#alarm-text")).to_have_text("FALL on Dad's treadmill")

    row.locator("a").click()
    expect(page).to_have_url(f"{service.url}/events/{event['id']}")
    expect(page.locator("#plots")).to_have_attribute("data-rendered", "1")
    canvases = page.locator("#plots canvas")
    expect(canvases).to_have_count(3)
    # non-empty: the acceleration trace and the red trip line put dark and red pixels down
    painted = page.evaluate(
        """() => Array.from(document.querySelectorAll('#plots canvas')).map(c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let ink = 0, red = 0;
            for (let i = 0; i < d.length; i += 4) {
                if (d[i + 3] > 0) ink++;
                if (d[i] > 180 && d[i + 1] < 60 && d[i + 2] < 60 && d[i + 3] > 0) red++;
            }
            return [c.width, c.height, ink, red];
        })"""
    )
    for width, height, ink, red in painted:
        assert width > 0 and height > 0 and ink > 500 and red > 20, painted

    page.click("#ack-form button")
    command = device.wait_command("ack")
    assert command["event_id"] == event["id"] and command["by"] == "ann"
    expect(page.locator(".acked")).to_contain_text("Acknowledged by ann")
    stored = service.store.event(event["id"])
    assert stored is not None and stored.acked_by == "ann" and stored.acked_at is not None
    page.context.close()
    device.close()


def test_phone_width_one_column_no_horizontal_scroll(
    browser: Any, service: CaregiverService, mosquitto: Mosquitto
) -> None:
    from playwright.sync_api import expect

    devices = [SimDevice(mosquitto, f"treadmill-{i}") for i in (1, 2)]
    for d in devices:
        d.online()
    page = _login(browser, service, width=360)
    expect(page.locator(".card")).to_have_count(2)
    boxes = [page.locator(".card").nth(i).bounding_box() for i in range(2)]
    assert boxes[0]["x"] == boxes[1]["x"]  # stacked: one column
    assert boxes[0]["width"] <= 360
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    font = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert font >= 18
    page.context.close()
    for d in devices:
        d.close()
