"""The dashboard in Debian's headless Chromium, driven by Playwright, against the real service.

A simulated device (a plain paho client publishing the documented payloads)
falls; the card turns red and the event appears without a reload, the plot
renders, and the acknowledge button's command reaches the device. A device's
guided sessions show on its progress page (table, weekly goal, chart). Waits are
Playwright's ``expect`` (condition polling), never sleeps.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caregiver.headless import CHROMIUM, launch_chromium
from caregiver.service import CaregiverService
from tests.caregiver_support import (
    PASSWORD,
    WAIT,
    SimDevice,
    make_config,
    running_service,
    session_record,
)
from tools.broker import Mosquitto

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian chromium not installed (apt-get install -y chromium); "
    "Playwright's own browser download cannot work here",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = launch_chromium(pw)
        # Playwright's 5 s default is too tight for a loaded 2-core CI machine; WAIT is a
        # safety net against hangs, not a timing assertion.
        sync_api.expect.set_options(timeout=int(WAIT * 1000))
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def service(mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str) -> Iterator[CaregiverService]:
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, background=False) as s:
        yield s


def _login(browser: Any, service: CaregiverService, width: int = 1024) -> Any:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": width, "height": 800})
    context.set_default_timeout(WAIT * 1000)
    page = context.new_page()
    page.goto(service.url + "/")
    expect(page).to_have_url(service.url + "/login?next=/")
    page.fill("#username", "ann")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Treadmills")
    expect(page.locator("body")).to_have_attribute("data-live", "1")  # the live feed is open
    return page


def test_a_fall_is_one_red_incident_card_that_tells_its_story_and_one_click_closes(
    browser: Any, service: CaregiverService, mosquitto: Mosquitto
) -> None:
    from playwright.sync_api import expect

    device = SimDevice(mosquitto, "treadmill-1")
    device.online()
    page = _login(browser, service)
    card = page.locator("#card-treadmill-1")
    expect(card).to_have_attribute("data-level", "ok")
    expect(card.locator(".belt")).to_have_text("Monitor armed: the belt can run")

    ids = device.incident_fall()  # trip, fall, recording: one incident; no reload from here on
    expect(card).to_have_attribute("data-level", "danger")
    expect(card.locator(".headline a")).to_have_text("FALL — not acknowledged")
    expect(card.locator(".belt")).to_have_text("Belt stopped, waiting for a reset at the machine")
    expect(card).to_have_css("background-color", "rgb(176, 0, 0)")
    incidents = page.locator("#incidents li")  # one incident, not a trip and a fall
    expect(incidents).to_have_count(1)
    expect(incidents.first).to_contain_text("FALL — not acknowledged")
    expect(page.locator("#alarm-text")).to_have_text("FALL on Dad's treadmill")

    card.locator(".headline a").click()
    expect(page).to_have_url(f"{service.url}/events/{ids['trip']['id']}")
    expect(page.locator("h1")).to_contain_text("FALL — not acknowledged")
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Impact")
    expect(facts).to_contain_text("firm (3.2 g")
    expect(facts).to_contain_text("83° from upright — lying down")
    expect(facts).to_contain_text(
        "not yet: the recording shows them still down and not moving 10 s after the trip"
    )
    expect(page.locator("ol.steps li")).to_have_text(
        [re.compile("Stumble: the monitor stopped the belt"), re.compile("Fall confirmed")]
    )
    # the engineering figures wait behind the details toggle
    raw = page.locator("details.details")
    expect(raw.get_by_text("impulse")).to_be_hidden()
    raw.locator("summary").click()
    expect(raw).to_contain_text("g·s")

    plots = page.locator("#plots")
    expect(plots).to_have_attribute("data-rendered", "1")
    expect(plots).to_have_attribute("data-marks", "trip: belt stopped|impact|fall confirmed")
    expect(plots).to_contain_text("learned before the trip")
    expect(page.locator("#plots canvas")).to_have_count(3)
    # non-empty: each trace puts ink down, and each plot has the red trip line
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

    page.go_back()
    card = page.locator("#card-treadmill-1")
    expect(card).to_have_attribute("data-level", "danger")
    card.locator(".ack-form button").click()  # the one click
    command = device.wait_command("ack")
    assert command["incident"] == ids["incident"] and command["by"] == "ann"
    expect(card).to_have_attribute("data-level", "idle")
    expect(card.locator(".headline a")).to_have_text("Fall — acknowledged by ann on the dashboard")
    expect(card.locator(".belt")).to_have_text("Belt stopped, waiting for a reset at the machine")
    expect(card.locator(".ack-form")).to_have_count(0)
    expect(incidents.first).to_contain_text("Fall — acknowledged by ann on the dashboard")
    incident = service.store.incident(ids["incident"])
    assert incident is not None and not incident.open and incident.closed_by == "ann"
    assert all(a.status not in ("paging", "held") for a in service.store.alerts())
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


PAINT = """(sel) => {
    const c = document.querySelector(sel);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let bar = 0, red = 0;
    for (let i = 0; i < d.length; i += 4) {
        if (d[i] < 60 && d[i + 1] < 90 && d[i + 2] > 100 && d[i + 3] > 0) bar++;
        if (d[i] > 150 && d[i + 1] < 40 && d[i + 2] < 40 && d[i + 3] > 0) red++;
    }
    return [c.width, c.height, bar, red];
}"""


def test_progress_page_sessions_weekly_goal_and_chart(
    browser: Any, service: CaregiverService, mosquitto: Mosquitto
) -> None:
    from playwright.sync_api import expect

    device = SimDevice(mosquitto, "treadmill-1")
    device.online()
    year, week, _ = dt.datetime.now(dt.UTC).isocalendar()
    monday = dt.datetime.combine(dt.date.fromisocalendar(year, week, 1), dt.time(), dt.UTC)
    sessions = [  # three weeks ago to this week, the backward blocks growing toward 10 minutes
        session_record("treadmill-1", monday - dt.timedelta(days=20), backward_min=6,
                       longest_min=3, plan="progression-week-2"),
        session_record("treadmill-1", monday - dt.timedelta(days=12), backward_min=8,
                       longest_min=4, plan="progression-week-3", trips=2, stumbles=1),
        session_record("treadmill-1", monday - dt.timedelta(days=5), backward_min=10,
                       longest_min=10),
        session_record("treadmill-1", monday + dt.timedelta(minutes=1), backward_min=10,
                       longest_min=10),
        session_record("treadmill-1", monday + dt.timedelta(minutes=2), backward_min=7,
                       longest_min=7, status="stopped", trips=1),
        session_record("treadmill-1", monday + dt.timedelta(minutes=3), backward_min=12,
                       longest_min=10),
    ]  # fmt: skip
    for record in sessions:
        device.session(record)
    store = service.store
    assert service.ingestor.wait_for(lambda: store.walk_session_count() == len(sessions), WAIT)

    anonymous = browser.new_context()  # behind the login like everything else
    anonymous.set_default_timeout(WAIT * 1000)
    page = anonymous.new_page()
    page.goto(service.url + "/devices/treadmill-1/progress")
    expect(page).to_have_url(service.url + "/login?next=/devices/treadmill-1/progress")
    assert anonymous.request.get(service.url + "/api/devices/treadmill-1/progress").status == 401
    anonymous.close()

    page = _login(browser, service)
    page.locator("#card-treadmill-1 .links a").click()
    expect(page).to_have_url(service.url + "/devices/treadmill-1/progress")
    rows = page.locator("#sessions tbody tr")
    expect(rows).to_have_count(len(sessions))
    expect(page.locator("#goal")).to_contain_text(
        "2 of 3 sessions with 10 straight minutes backward this week"
    )
    expect(page.locator("#goal")).to_contain_text("3 sessions, 29 min backward")
    newest = rows.first  # newest first
    expect(newest.locator(".backward")).to_have_text("12.0")
    expect(newest.locator(".longest")).to_have_text("longest 10.0")
    expect(newest.locator(".badge")).to_have_text("\u2713 goal")
    tripped = page.locator(f'#sessions [data-session="{sessions[1].id}"]')
    expect(tripped.locator('[data-label="Trips"]')).to_have_text("2")
    expect(tripped.locator('[data-label="Stumbles"]')).to_have_text("1")
    expect(tripped.locator('[data-label="Plan"]')).to_have_text("progression-week-3")
    expect(page.locator("#weeks li")).to_have_count(4)
    expect(page.locator("#weeks li").first).to_contain_text("3 sessions, 2 of 3 at goal")
    expect(page.locator("#progress-chart")).to_have_attribute("data-rendered", "1")
    width, height, bar, red = page.evaluate(PAINT, "#progress-chart canvas")
    assert width > 0 and height > 0 and bar > 500 and red > 100, (width, height, bar, red)

    # a session ending now reaches the open page without a reload by hand
    device.session(session_record("treadmill-1", monday + dt.timedelta(minutes=4),
                                  backward_min=10, longest_min=10))  # fmt: skip
    expect(page.locator("#goal")).to_contain_text("3 of 3 sessions")
    expect(page.locator("#goal")).to_contain_text("goal met")
    expect(rows).to_have_count(len(sessions) + 1)

    # 360 px: one labelled block per session, no sideways scrolling, large type
    page.set_viewport_size({"width": 360, "height": 800})
    page.reload()
    expect(page.locator("#progress-chart")).to_have_attribute("data-rendered", "1")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 18
    width, _, bar, red = page.evaluate(PAINT, "#progress-chart canvas")
    assert bar > 200 and red > 50
    box = page.locator("#sessions tbody tr").first.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    page.context.close()
    device.close()
