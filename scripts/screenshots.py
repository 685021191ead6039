"""Make the README's caregiver screenshots with Debian's headless Chromium (docs/img/*.png).

Starts a throwaway Mosquitto and the caregiver service (the demo's in-process
one), has three simulated monitors report (one walking armed, one whose walker
stumbled and pressed I'm OK, then fell; one offline), logs in and captures the
fleet view and the fall's incident page with its IMU plot (desktop and 360 px
phone), and the walker's progress page after five weeks of guided sessions
(summaries made by the monitor's own ``session_payload``).

    .venv/bin/python scripts/screenshots.py [--out docs/img]
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

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from caregiver.demo import start_demo_caregiver
from caregiver.headless import CHROMIUM, launch_chromium
from caregiver.service import CaregiverService
from core.protocol.messages import SessionRecord
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
    """Publish one event as a monitor does; ``extra``: incident, of, recording, figures."""
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
    """A trip that became a fall, and the recording around it; the trip's event id."""
    incident = uuid.uuid4().hex
    device(client, device_id, "TRIPPED", "stumble: trunk rotated 40 deg in 0.3 s")
    trip = event(client, device_id, 4, "stumble", "warning", "TRIPPED",
                 "trunk rotated 40 deg in 0.3 s", incident=incident,
                 figures={"tilt_deg": 40.0, "tilt_rate_dps": 130.0})  # fmt: skip
    event(client, device_id, 5, "fall", "critical", "TRIPPED", "impact 3.2 g then lying 83 deg",
          incident=incident, figures=FALL_FIGURES)  # fmt: skip
    event(client, device_id, 6, "window", "info", "TRIPPED", "IMU around the trip",
          incident=incident, of=trip,
          recording=msgspec.to_builtins(fall_recording()))  # fmt: skip
    return trip


def sessions(client: mqtt.Client, device_id: str) -> None:
    """Five weeks of a progression toward 10 straight minutes backward, this week included."""
    year, week, _ = dt.datetime.now(dt.UTC).isocalendar()
    monday = dt.datetime.combine(dt.date.fromisocalendar(year, week, 1), dt.time(), dt.UTC)
    plan = [  # (weeks ago, day, plan week, minutes backward, longest, trips, stumbles, status)
        (4, 0, 2, 9, 3, 0, 0, "completed"), (4, 2, 2, 9, 3, 1, 1, "completed"),
        (4, 4, 2, 6, 3, 0, 0, "stopped"),
        (3, 0, 4, 10, 5, 0, 0, "completed"), (3, 3, 4, 10, 5, 0, 0, "completed"),
        (2, 1, 6, 14, 7, 0, 0, "completed"), (2, 3, 6, 14, 7, 2, 1, "completed"),
        (2, 5, 6, 14, 7, 0, 0, "completed"),
        (1, 0, 9, 10, 10, 0, 0, "completed"), (1, 2, 9, 10, 10, 0, 0, "completed"),
        (1, 4, 9, 10, 10, 0, 0, "completed"),
        (0, 0, 9, 10, 10, 0, 0, "completed"), (0, 0, 9, 8, 8, 1, 0, "stopped"),
    ]  # fmt: skip
    for ago, day, plan_week, back, longest, trips, stumbles, status in plan:
        started = monday - dt.timedelta(weeks=ago) + dt.timedelta(days=day, hours=9 + ago % 2)
        if ago == 0:  # this week's, never in the future
            started = min(started, dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=40 * trips)
        total = 30.0 if status == "completed" else back + 8
        walking = total * 60 * 0.93
        steps = int(walking / 60 * 94)
        record = SessionRecord(
            id=uuid.uuid4().hex, device_id=device_id,
            plan=f"progression-week-{plan_week}", status=status,
            started_wall=started.isoformat(timespec="milliseconds"),
            ended_wall=(started + dt.timedelta(minutes=total + 2)).isoformat(
                timespec="milliseconds"),
            planned_s=1800.0, planned_backward_s=back * 60.0, done_s=total * 60,
            backward_s=back * 60.0, longest_backward_s=longest * 60.0,
            paused_s=50.0 * trips, pauses=trips, steps=steps,
            walking_s=round(walking, 1), cadence_spm=round(steps / (walking / 60), 1),
            trips=trips, stumbles=stumbles, intervals=[],
        )  # fmt: skip
        publish(client, f"retroguard/{device_id}/session", session_payload(record))


def stored_all(service: CaregiverService, device_id: str, count: int) -> None:
    """Wait until the service has stored ``count`` sessions (it commits in batches)."""
    pause = threading.Event()
    deadline = time.monotonic() + 30.0
    while len(service.store.walk_sessions(device_id)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the caregiver stored fewer than {count} sessions in 30 s")
        pause.wait(0.05)


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
                        sessions(client, "treadmill-1")
                        stored_all(svc, "treadmill-1", 13)
                        page.set_viewport_size({"width": 1024, "height": 720})
                        page.goto(f"{demo.url}/devices/treadmill-1/progress")
                        expect(page.locator("#sessions tbody tr")).to_have_count(13)
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
        print(args.out / f"caregiver-{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
