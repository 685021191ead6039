"""A physio's own progression schedule, typed on the plan page in Chromium (Playwright).

The physio names a schedule, types its stages a line each in the page's shorthand
(:mod:`caregiver.schedule_form`) and assigns it to the walker from a stage: the simulated
device (the monitor and its courier, on a real Mosquitto) stores it, its answer shows in the
row as a preset's does, and the stage's plan is the walker's from the next session start with
the relay untouched. A schedule with mistakes comes back with every one named by stage and
field, the text as typed, nothing sent, at a phone's width. Waits are Playwright's ``expect``
and the link's own polling, never sleeps; screenshots at 1280 and 360 px (looked at).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.protocol.plan import Interval, Plan
from firmware.session.runner import attach_session, detach_session
from firmware.storage.progressions import current_progression
from tests.app_support import make_rig, pump_link_until
from tests.browser_support import NEEDS_CHROMIUM, logged_in, shot
from tests.caregiver_support import WAIT, SimDevice, make_config, running_service
from tests.mqtt_helpers import config_for
from tools.broker import Mosquitto

pytestmark = NEEDS_CHROMIUM

DEVICE = "treadmill-1"
SCHEDULE = (
    "2/2 x7, 2 forward | 2 weeks | 3 a week\n"
    "Week 3: 2 forward, 3/2 x4 | twice a week\n"
    "10 back | 4 weeks | 0.4 mph"
)


def _fill(page: Any, name: str, stages: str, start: str) -> None:
    page.fill("#schedule-name", name)
    page.fill("#schedule-stages", stages)
    page.fill("#schedule-stage", start)
    page.click("#schedule-form button[type=submit]")


def test_a_physio_s_own_schedule_reaches_the_device_and_its_answer_shows(
    browser: Any, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Three stages typed, assigned from stage 2: the device's answer fills the row without a
    reload, the device keeps the schedule as typed, the walker's next session walks stage 2's
    plan, and the relay was never touched."""
    from playwright.sync_api import expect

    rig = make_rig(tmp_path, mqtt=config_for(mosquitto))
    assert rig.courier.reporter is not None
    assert rig.courier.reporter.wait_until(lambda s: s.ready, WAIT)
    rig.run_for(1.0)
    rig.press_reset()
    assert rig.state == "ARMED"
    relay_before = list(rig.hardware.history)
    runner = attach_session(rig.app, Plan("before", (Interval("backward", 1.0),)))
    (tmp_path / "cg").mkdir()
    with running_service(make_config(mosquitto, tmp_path / "cg"), background=False) as cg:
        assert cg.ingestor.wait_for(lambda: cg.store.device(DEVICE) is not None)
        page = logged_in(browser, cg, 1280)
        page.goto(f"{cg.url}/devices/{DEVICE}/plan")
        _fill(page, "Anna, spring", SCHEDULE, "2")
        row = page.locator("#plan-answers tr.just-sent")
        expect(row.locator("td[data-label=What]")).to_have_text(
            "progression schedule Anna, spring, from stage 2 of 3 (Week 3: 2 min forward, "
            "3 min backward / 2 min forward \u00d7 4; belt 0.5 mph; twice a week)"
        )
        expect(row).to_have_attribute("data-state", "accepted")  # plan.js followed it
        expect(row.locator(".answer")).to_have_text(
            "Accepted. Progression schedule Anna, spring: assigned, stage 2 of 3."
        )
        state = rig.courier.db.read(current_progression)
        assert state is not None and state.stage == 1 and state.by == "ann"
        stages = state.progression.stages
        assert [(s.plan.name, s.weeks, s.sessions_per_week) for s in stages] == [
            ("2/2 x7, 2 forward", 2, 3),
            ("Week 3", 1, 2),
            ("10 back", 4, 3),
        ]
        assert stages[2].plan.intervals == (Interval("backward", 10.0, "0.4 mph"),)
        week_3 = stages[1].plan
        assert week_3.intervals == (
            Interval("forward", 2.0),
            *(Interval(d, m) for _ in range(4) for d, m in (("backward", 3.0), ("forward", 2.0))),
        )
        assert pump_link_until(rig.app.link, lambda: rig.app.link._new_plan is not None)
        rig.run_for(0.05)
        assert runner.next_plan == week_3  # from the next session start
        assert rig.hardware.history == relay_before and rig.state == "ARMED"
        # the stage as the device keeps it, after a reload: its retained stage message
        page.reload()
        expect(page.locator("#in-force-progression")).to_have_attribute("data-stage", "2")
        expect(page.locator("#in-force-progression")).to_contain_text(
            "Progression schedule Anna, spring, as the treadmill keeps it"
        )
        page.locator("#schedule-form").scroll_into_view_if_needed()
        page.screenshot(path=shot(tmp_path, cg, "schedule-sent-1280.png"), full_page=True)
    detach_session(rig.app, runner)


def test_a_schedule_with_mistakes_names_each_stage_and_field_and_keeps_the_text(
    browser: Any, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """At a phone's width: a stage's minutes over the most, a part that is no part and a
    start past the last stage each come back named by stage and field, with the name, the
    lines and the start as typed (a stage per line is no small thing to type twice); nothing
    reaches the device. The form fits the screen."""
    from playwright.sync_api import expect

    typed = "2/2 x7 | 2 weeks\n\n3/75 x4 | 3 a wek\n10 back"
    with running_service(make_config(mosquitto, tmp_path), background=False) as service:
        device = SimDevice(mosquitto, DEVICE)
        try:
            device.online()
            assert service.ingestor.wait_for(lambda: service.store.device(DEVICE) is not None)
            page = logged_in(browser, service, 360)
            page.goto(f"{service.url}/devices/{DEVICE}/plan")
            _fill(page, "Anna, spring", typed, "2")
            problems = page.locator("#plan-problems")
            expect(problems).to_contain_text("The progression schedule was not sent:")
            expect(problems.locator("li")).to_have_text(
                [
                    "stage 2 (line 3): '3 a wek' is none of weeks ('2 weeks'), sessions a "
                    "week ('3 a week') or a belt speed ('0.5 mph', 'belt slow')",
                    "stage 2 (line 3): '3/75 x4', forward minutes: must be at most 60 min",
                ]
            )
            expect(page.locator("#schedule-stages")).to_have_value(typed)
            expect(page.locator("#schedule-name")).to_have_value("Anna, spring")
            expect(page.locator("#schedule-stage")).to_have_value("2")
            assert page.evaluate("document.documentElement.scrollWidth") <= 360
            box = page.locator("#schedule-stages").bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 360, box
            page.screenshot(path=shot(tmp_path, service, "schedule-refused-360.png"))
            page.locator("#schedule-form").screenshot(
                path=shot(tmp_path, service, "schedule-form-360.png")
            )
            # the lines put right, a start past the last stage is named too
            page.fill("#schedule-stages", "2/2 x7 | 2 weeks\n3/2 x4 | 3 a week")
            page.fill("#schedule-stage", "3")
            page.click("#schedule-form button[type=submit]")
            expect(problems.locator("li")).to_have_text(
                ["start at stage: '3' is not a stage of this schedule: 1 to 2"]
            )
            assert device.commands == []  # nothing sent for a refused schedule
        finally:
            device.close()
