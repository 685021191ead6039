"""Make the README's caregiver screenshots with Debian's headless Chromium (docs/img/*.png).

Starts a throwaway Mosquitto and the caregiver service (the demo's in-process
one), has three simulated monitors report (one walking armed, one whose walker
stumbled and pressed I'm OK, then fell; one offline), logs in and captures the
fleet view and the fall's incident page with its IMU plot (desktop and 360 px
phone), and the walker's progress page after five weeks of the toward-10-minutes
progression (each session's intervals from its preset plan, the summaries made by
the monitor's own ``session_payload``, and the walker's stage as the monitor
publishes it), so the cards and pages say the plan in words as a real fleet's do.
The sessions are reported before the fleet is taken: its card says the plan.
Each PNG is then cut to 256 colours with Pillow (about a third of the size).

    .venv/bin/python scripts/screenshots.py [--out docs/img]

docs/caregiver.md, "Screenshots", says when to run it and what to look at.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from caregiver.demo import start_demo_caregiver
from caregiver.headless import CHROMIUM, launch_chromium
from caregiver.service import CaregiverService
from core.plan_presets import PRESETS, PROGRESSIONS
from core.progress import week_of
from core.protocol.messages import (
    SCHEMA_VERSION,
    IntervalSummary,
    RecordStatus,
    SessionRecord,
    StageMessage,
)
from core.protocol.payloads import encode
from core.protocol.plan import Plan
from core.protocol.walker import DEFAULT_WALKER
from firmware.session.record import session_payload
from sim.recordings import FALL_FIGURES, fall_recording
from tools.broker import Mosquitto


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def publish(client: mqtt.Client, topic: str, payload: str, retain: bool = False) -> None:
    client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)


def device(client: mqtt.Client, device_id: str, state: str, reason: str) -> None:
    publish(client, f"retroguard/{device_id}/availability", "online", retain=True)
    body = {"schema": 1, "device_id": device_id, "state": state, "reason": reason,
            "wall_time": now()}  # fmt: skip
    publish(client, f"retroguard/{device_id}/state", json.dumps(body), retain=True)


def event(client: mqtt.Client, device_id: str, seq: int, kind: str, severity: str, state: str,
          reason: str, **extra: object) -> str:  # fmt: skip
    """Publish one event as a monitor does; ``extra``: incident, of, recording, figures, and
    wall_time (else now)."""
    event_id = uuid.uuid4().hex
    body: dict[str, object] = {
        "schema": 1, "id": event_id, "seq": seq, "type": kind, "device_id": device_id,
        "severity": severity, "state": state, "reason": reason, "wall_time": now(),
        "t_monotonic": 100.0 + seq, "figures": {},
    }  # fmt: skip
    body.update(extra)
    publish(client, f"retroguard/{device_id}/event", json.dumps(body))
    return event_id


def stumble_closed_by_walker(client: mqtt.Client, device_id: str) -> None:
    incident = uuid.uuid4().hex
    event(client, device_id, 1, "stumble", "warning", "TRIPPED",
          "trunk rotated 31 deg in 0.3 s", incident=incident,
          figures={"tilt_deg": 31.0, "tilt_rate_dps": 104.0})  # fmt: skip
    event(client, device_id, 2, "ok", "info", "TRIPPED", "walker pressed I'm OK",
          incident=incident)  # fmt: skip
    event(client, device_id, 3, "reset", "info", "ARMED", "armed by local reset from TRIPPED",
          incident=incident)  # fmt: skip


def fall_incident(client: mqtt.Client, device_id: str) -> str:
    """A trip that became a fall, and the recording around it; the trip's event id. The trip
    is stamped as long before the fall as the recording's confirmation comes after the belt
    stopped, so the event page's "What happened" reads two moments, not one."""
    incident = uuid.uuid4().hex
    confirmed = dt.datetime.now(dt.UTC)
    tripped = confirmed - dt.timedelta(seconds=fall_recording().marks.confirm or 0.0)
    device(client, device_id, "TRIPPED", "stumble: trunk rotated 40 deg in 0.3 s")
    trip = event(client, device_id, 4, "stumble", "warning", "TRIPPED",
                 "trunk rotated 40 deg in 0.3 s", incident=incident,
                 figures={"tilt_deg": 40.0, "tilt_rate_dps": 130.0},
                 wall_time=tripped.isoformat(timespec="milliseconds"))  # fmt: skip
    event(client, device_id, 5, "fall", "critical", "TRIPPED", "impact 3.2 g then lying 83 deg",
          incident=incident, figures=FALL_FIGURES,
          wall_time=confirmed.isoformat(timespec="milliseconds"))  # fmt: skip
    event(client, device_id, 6, "window", "info", "TRIPPED", "IMU around the trip",
          incident=incident, of=trip,
          recording=msgspec.to_builtins(fall_recording()))  # fmt: skip
    return trip


PROGRESS: list[tuple[int, int, int, RecordStatus, int, int]] = [
    # (weeks ago, day, plan week, status, trips, stumbles)
    (4, 0, 2, "completed", 0, 0), (4, 2, 2, "completed", 1, 1), (4, 4, 2, "stopped", 0, 0),
    (3, 0, 4, "completed", 0, 0), (3, 3, 4, "completed", 0, 0),
    (2, 1, 6, "completed", 0, 0), (2, 3, 6, "completed", 2, 1), (2, 5, 6, "completed", 0, 0),
    (1, 0, 9, "completed", 0, 0), (1, 2, 9, "completed", 0, 0), (1, 4, 9, "completed", 0, 0),
    (0, 0, 9, "completed", 0, 0), (0, 0, 9, "stopped", 1, 0),
]  # fmt: skip
"""Five weeks of the toward-10-minutes progression, this week included: the walker's stage
of each week (``core.plan_presets``), a session stopped early now and then, a few trips."""
CADENCE_SPM = 94.0
WALKING_SHARE = 0.93
"""Of the plan time, the share the IMU measured as walking (the rest standing at changes)."""


def walked(plan: Plan, stopped: bool, trips: int, stumbles: int) -> dict[str, Any]:
    """The figures of one session of ``plan`` as the monitor records them, interval by
    interval: all of it walked, or (``stopped``) the walker stopped a little over halfway
    through (every interval is recorded, those not reached at 0 s, as the runner records
    them); ``trips`` (``stumbles`` of them stumbles) in the first backward interval."""
    budget = plan.duration_s * (0.6 if stopped else 1.0)
    intervals: list[IntervalSummary] = []
    backward = longest = run = 0.0
    for index, interval in enumerate(plan.intervals):
        direction, planned = interval.direction, round(interval.duration_s, 1)
        done = round(min(planned, budget), 1)
        budget -= done  # an interval not reached is recorded too, as walked for 0 s
        walking = round(done * WALKING_SHARE, 1)
        steps = int(walking / 60 * CADENCE_SPM)
        cadence = CADENCE_SPM if steps else 0.0
        first_back = direction == "backward" and backward == 0.0
        if direction == "backward":
            backward += done
            run += done
            longest = max(longest, run)
        if done < planned or direction != "backward":
            run = 0.0
        intervals.append(
            IntervalSummary(
                index=index, direction=direction, speed=interval.speed, planned_s=planned,
                done_s=done, steps=steps, walking_s=walking, cadence_spm=cadence,
                trips=trips if first_back else 0, stumbles=stumbles if first_back else 0,
            )
        )  # fmt: skip
    done_s = sum(i.done_s for i in intervals)
    walking_s = round(sum(i.walking_s for i in intervals), 1)
    steps = sum(i.steps for i in intervals)
    return {
        "planned_s": plan.duration_s, "planned_backward_s": plan.backward_s, "done_s": done_s,
        "backward_s": backward, "longest_backward_s": longest, "paused_s": 50.0 * trips,
        "pauses": trips, "steps": steps, "walking_s": walking_s,
        "cadence_spm": round(steps / (walking_s / 60), 1), "trips": trips,
        "stumbles": stumbles, "intervals": intervals,
    }  # fmt: skip


def sessions(client: mqtt.Client, device_id: str) -> None:
    """:data:`PROGRESS`'s sessions as the monitor reports them (its own ``session_payload``),
    and the walker's stage as it publishes it: the last stage of toward-10-minutes, its one
    week at three sessions met last week (complete: the walker stays there)."""
    year, week, _ = dt.datetime.now(dt.UTC).isocalendar()
    monday = dt.datetime.combine(dt.date.fromisocalendar(year, week, 1), dt.time(), dt.UTC)
    for ago, day, plan_week, status, trips, stumbles in PROGRESS:
        plan = PRESETS[f"progression-week-{plan_week}"]
        started = monday - dt.timedelta(weeks=ago) + dt.timedelta(days=day, hours=9 + ago % 2)
        if ago == 0:  # this week's, never in the future
            started = min(started, dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=40 * trips)
        figures = walked(plan, status == "stopped", trips, stumbles)
        ended = started + dt.timedelta(seconds=figures["done_s"] + figures["paused_s"] + 120)
        record = SessionRecord(
            id=uuid.uuid4().hex, device_id=device_id, plan=plan.name, status=status,
            started_wall=started.isoformat(timespec="milliseconds"),
            ended_wall=ended.isoformat(timespec="milliseconds"), **figures,
        )  # fmt: skip
        publish(client, f"retroguard/{device_id}/session", session_payload(record))
    progression = PROGRESSIONS["toward-10-minutes"]
    last = progression.stages[-1]
    began = (monday - dt.timedelta(weeks=1)).isoformat(timespec="milliseconds")
    stage = StageMessage(
        schema=SCHEMA_VERSION, device_id=device_id, walker=DEFAULT_WALKER, wall_time=now(),
        progression=progression.name, stage=len(progression.stages),
        stages=len(progression.stages), stage_name=last.plan.name, stage_started_wall=began,
        status="complete", held=False, change="advanced", changed_wall=began,
        sessions_per_week=last.sessions_per_week, stage_weeks=last.weeks, weeks_done=1,
        week=week_of(dt.datetime.now(dt.UTC), dt.UTC), week_done=1, zone="UTC",
    )  # fmt: skip
    publish(client, f"retroguard/{device_id}/stage/{DEFAULT_WALKER.id}", encode(stage), True)


def stored_all(service: CaregiverService, device_id: str, count: int) -> None:
    """Wait until the service has stored ``count`` sessions (it commits in batches)."""
    pause = threading.Event()
    deadline = time.monotonic() + 30.0
    while len(service.store.walk_sessions(device_id)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the caregiver stored fewer than {count} sessions in 30 s")
        pause.wait(0.05)


def optimise(path: Path) -> None:
    """Keep ``path`` small in the repository: a page's screenshot is flat colours and
    antialiased text, which 256 colours (no dithering) show as taken at a third of the
    size. Pillow comes with fpdf2 (the PDF report), so no PNG tool need be installed."""
    from PIL import Image

    with Image.open(path) as taken:
        image = taken.convert("RGB")
    palette = image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    palette.save(path, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print("screenshots: needs Debian's chromium (apt-get install -y chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import expect, sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="retroguard-shots-"))
    with Mosquitto() as broker:
        demo = start_demo_caregiver(broker.host, broker.port, work)
        svc = demo.service
        svc.config = type(svc.config)(
            **{**{f: getattr(svc.config, f) for f in ("server", "mqtt", "policy", "escalation",
               "contacts")}, "devices": {"treadmill-1": "Dad's treadmill",
               "clinic-2": "Clinic, lane 2", "clinic-3": "Clinic, lane 3"}}
        )  # fmt: skip
        svc.alerting.config = svc.config
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="shots",
                             protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
        client.connect(broker.host, broker.port)
        client.loop_start()
        try:
            device(client, "clinic-2", "ARMED", "armed by local reset from STANDBY")
            event(client, "clinic-2", 1, "start", "info", "STARTING", "monitor started")
            device(client, "clinic-3", "ARMED", "armed by local reset from STANDBY")
            publish(client, "retroguard/clinic-3/availability", "offline", retain=True)
            device(client, "treadmill-1", "ARMED", "armed by local reset from STANDBY")
            stumble_closed_by_walker(client, "treadmill-1")
            sessions(client, "treadmill-1")  # before the fleet: its card says the plan
            stored_all(svc, "treadmill-1", len(PROGRESS))
            with sync_playwright() as pw:
                browser = launch_chromium(pw)
                for name, width, height in (("fleet", 1280, 720), ("phone", 360, 900)):
                    page = browser.new_page(viewport={"width": width, "height": height})
                    page.goto(demo.url + "/login")
                    page.fill("#username", demo.username)
                    page.fill("#password", demo.password)
                    page.click("button[type=submit]")
                    expect(page.locator("body")).to_have_attribute("data-live", "1")
                    if name == "fleet":
                        expect(page.locator("#card-treadmill-1 .headline")).to_contain_text(
                            "walker pressed I'm OK"
                        )
                        fall_id = fall_incident(client, "treadmill-1")
                        expect(page.locator("#card-treadmill-1")).to_have_attribute(
                            "data-level", "danger"
                        )
                        expect(page.locator("#alarm-banner")).to_be_visible()
                    page.screenshot(path=str(args.out / f"caregiver-{name}.png"), full_page=True)
                    page.goto(f"{demo.url}/events/{fall_id}")
                    expect(page.locator("#plots")).to_have_attribute("data-rendered", "1")
                    shot = "caregiver-event.png" if name == "fleet" else "caregiver-event-phone.png"
                    page.screenshot(path=str(args.out / shot), full_page=True)
                    if name == "fleet":
                        page.set_viewport_size({"width": 1024, "height": 720})
                        page.goto(f"{demo.url}/devices/treadmill-1/progress")
                        expect(page.locator("#sessions tbody tr")).to_have_count(len(PROGRESS))
                        expect(page.locator("#progress-chart")).to_have_attribute(
                            "data-rendered", "1"
                        )
                        page.screenshot(
                            path=str(args.out / "caregiver-progress.png"), full_page=True
                        )
                    page.close()
                browser.close()
        finally:
            client.loop_stop()
            client.disconnect()
            demo.stop()
    for name in ("fleet", "phone", "event", "event-phone", "progress"):
        path = args.out / f"caregiver-{name}.png"
        before = path.stat().st_size
        optimise(path)
        print(f"{path}: {before // 1024} KiB as taken, {path.stat().st_size // 1024} KiB kept")
    return 0


if __name__ == "__main__":
    sys.exit(main())
