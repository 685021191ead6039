"""Helpers for the caregiver tests: a simulated device, a notification receiver, the service."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import http.client
import http.server
import json
import math
import re
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from caregiver.config import (
    CaregiverConfig,
    CaregiverMqttConfig,
    Contact,
    EscalationConfig,
    PolicyConfig,
    ServerConfig,
)
from caregiver.service import CaregiverService
from caregiver.storage import ClockFrame, NewEvent, Role
from core.progress import week_of, week_start
from core.protocol.messages import (
    BalanceFigures,
    Direction,
    GaitFigures,
    IntervalSummary,
    RecordStatus,
    SessionRecord,
)
from core.protocol.payloads import reply_payload
from core.protocol.plan import Plan
from sim.recordings import FALL_FIGURES, fall_recording
from tools.broker import Mosquitto

WAIT = 20.0
"""Upper bound for waits: a safety net against hangs, not a timing assertion."""

PASSWORD = "correct horse battery"


def wait_until(predicate: Callable[[], bool]) -> bool:
    """Poll ``predicate`` on another party's state (a server's, another thread's) until it
    holds or :data:`WAIT` has passed: bounded, and no fixed sleep decides."""
    done = threading.Event()
    for _ in range(int(WAIT * 100)):
        if predicate():
            return True
        done.wait(0.01)
    return False


def new_event(n: int, **fields: Any) -> NewEvent:
    """Event number ``n`` as ingest stores it: a fall from treadmill-1, its id and seq from
    ``n``; ``fields`` replace any of the others."""
    event = NewEvent(
        id=f"{n:032x}",
        device_id="treadmill-1",
        seq=n,
        type="fall",
        severity="critical",
        state="TRIPPED",
        reason="impact",
        wall_time="2026-11-17T09:55:00+00:00",
        figures={},
        has_window=False,
        payload="{}",
    )
    return dataclasses.replace(event, **fields)


def wall() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def wall_on_a_second() -> str:
    """Now, stamped as a monitor stamps about one event in a thousand: on a whole second
    (".000"), whose epoch seconds are a whole number a page's script writes without ".0"."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(timespec="milliseconds")


def fall_window(rate_hz: float = 100.0, seconds: float = 3.0) -> dict[str, Any]:
    """Upright for 2 s, then a backward rotation of ~80 degrees and an impact at the end."""
    rows = []
    n = int(seconds * rate_hz)
    for i in range(n + 1):
        t = -seconds + i / rate_hz
        if t < -1.0:
            angle, rate, mag = 0.0, 2.0 * math.sin(8 * t), 1.0 + 0.1 * math.sin(12 * t)
        else:
            frac = t + 1.0
            angle, rate, mag = math.radians(80 * frac), 150.0, 1.0 + (2.2 if t > -0.05 else 0)
        rows.append(
            [
                round(t, 4),
                round(mag * math.sin(angle), 3),
                0.0,
                round(mag * math.cos(angle), 3),
                0.0,
                round(rate, 2),
                0.0,
            ]
        )
    return {"columns": ["dt", "ax", "ay", "az", "gx", "gy", "gz"], "rows": rows}


def walked(record: SessionRecord, plan: Plan) -> SessionRecord:
    """``record`` as a session of ``plan`` walked through keeps it: the plan's name and its
    intervals (direction, length, speed), what a progression's stage matches a session by
    (:func:`core.protocol.plan.plan_walk`); the figures are ``record``'s."""
    intervals = [
        IntervalSummary(
            index=n,
            direction=i.direction,
            speed=i.speed,
            planned_s=round(i.duration_s, 1),
            done_s=round(i.duration_s, 1),
            steps=0,
            walking_s=0.0,
            cadence_spm=0.0,
            trips=0,
            stumbles=0,
        )
        for n, i in enumerate(plan.intervals)
    ]
    return msgspec.structs.replace(record, plan=plan.name, intervals=intervals)


def session_record(
    device_id: str,
    started: dt.datetime,
    *,
    backward_min: float,
    longest_min: float,
    total_min: float = 30.0,
    plan: str = "progression-week-9",
    trips: int = 0,
    stumbles: int = 0,
    status: RecordStatus = "completed",
    session_id: str | None = None,
) -> SessionRecord:
    """A guided-session record as the monitor's runner keeps it (one backward interval of
    ``longest_min``, the rest of ``backward_min`` in a second one, forward walking around)."""
    walking_s = total_min * 60 * 0.95
    steps = int(walking_s / 60 * 96)
    second = max(0.0, backward_min - longest_min)

    def interval(
        index: int, direction: Direction, minutes: float, trips: int = 0, stumbles: int = 0
    ) -> IntervalSummary:
        share = minutes / total_min if total_min else 0.0
        return IntervalSummary(
            index=index, direction=direction, speed="0.5 mph",
            planned_s=minutes * 60, done_s=minutes * 60,
            steps=int(steps * share), walking_s=round(walking_s * share, 1),
            cadence_spm=96.0, trips=trips, stumbles=stumbles,
        )  # fmt: skip

    forward = max(0.0, total_min - backward_min)
    intervals = [
        interval(0, "forward", forward / 2),
        interval(1, "backward", longest_min, trips, stumbles),
        interval(2, "backward", second),
        interval(3, "forward", forward / 2),
    ]
    return SessionRecord(
        id=session_id or uuid.uuid4().hex,
        device_id=device_id,
        plan=plan,
        status=status,
        started_wall=started.isoformat(timespec="milliseconds"),
        ended_wall=(started + dt.timedelta(minutes=total_min + 2)).isoformat(
            timespec="milliseconds"
        ),
        planned_s=total_min * 60,
        planned_backward_s=backward_min * 60,
        done_s=total_min * 60,
        backward_s=backward_min * 60,
        longest_backward_s=longest_min * 60,
        paused_s=45.0 * trips,
        pauses=trips,
        steps=steps,
        walking_s=round(walking_s, 1),
        cadence_spm=96.0,
        trips=trips,
        stumbles=stumbles,
        intervals=intervals,
    )


def with_measures(
    record: SessionRecord,
    *,
    sway_ap: float,
    sway_ml: float,
    step_cv: float,
    cadence: float = 88.0,
    regularity: float = 0.7,
) -> SessionRecord:
    """``record`` with a measured eyes-open balance check and backward gait, as the monitor's
    measurement thread adds them (figures in m/s², %, steps/min)."""
    balance = BalanceFigures(
        condition="eyes open", status="measured", duration_s=30.0, axes="mounting",
        rms_ap_ms2=sway_ap, rms_ml_ms2=sway_ml, rms_ms2=math.hypot(sway_ap, sway_ml),
        path_ms2=7.3, noise_floor_ms2=0.004,
    )  # fmt: skip
    gait = GaitFigures(
        analysed_s=record.backward_s, steady_s=record.backward_s * 0.8, steady_share=0.8,
        steps=int(record.backward_s * 0.8 * cadence / 60), axes="mounting",
        cadence_spm=cadence, step_time_s=60 / cadence, step_time_cv_pct=step_cv,
        step_regularity=regularity, stride_regularity=regularity + 0.05, rms_ml_ms2=0.9,
    )  # fmt: skip
    return msgspec.structs.replace(record, balance=[balance], gait_backward=gait)


def month_before_this_week(clock: Callable[[], float]) -> dt.datetime:
    """The Monday four weeks before the week ``clock`` (the service's: the one the page counts
    in) is in, at 09:00 UTC: :func:`physio_month` from it ends last Friday. From three weeks
    before, its last week was this one, and a physio reading the page on a Monday read
    sessions of Wednesday and Friday, days to come (and every session at midnight). Read from
    the wall clock, a second reading beside the service's, it named another week than the
    page's when the run crossed Sunday's midnight."""
    return week_monday(clock) - dt.timedelta(weeks=4) + dt.timedelta(hours=9)


def session_this_morning(device_id: str, clock: Callable[[], float]) -> SessionRecord:
    """This week's session after :func:`physio_month`'s month, by ``clock`` (the service's):
    16 minutes, 12 backward and 10 of them straight, ended two minutes ago (in the first 20
    minutes of a week, from its Monday's midnight: its end then still to come, by minutes)."""
    at = clock()  # one reading: the week and the time in it alike
    monday = week_monday(lambda: at)
    now = dt.datetime.fromtimestamp(at, dt.UTC)
    started = max(monday, now - dt.timedelta(minutes=20))
    return session_record(device_id, started, backward_min=12, longest_min=10, total_min=16)


def physio_month(
    device_id: str, first_monday: dt.datetime, *, now: dt.datetime | None = None
) -> list[SessionRecord]:
    """Four weeks from ``first_monday``, three sessions a week: the 2/2 plan for two weeks (one
    session stopped early in the second, one with a stumble), then 10 straight minutes
    backward; eyes-open sway falls by more than its noise (0.20 to 0.12 m/s² against an MDC95
    of 0.046), step-time CV by less (4.0 to 3.5 % against 3.7). ValueError when a session
    would end after ``now`` (the clock's now unless given: a report's own clock): the data a
    page shows is what a monitor could have sent (:func:`month_before_this_week` is a
    ``first_monday`` that ends last week)."""
    from firmware.session.plan import alternate_2_2

    plan = alternate_2_2()
    sway = iter([0.20, 0.21, 0.19, 0.18, 0.17, 0.19, 0.14, 0.15, 0.13, 0.12, 0.12, 0.13])
    cv = iter([4.0, 4.2, 3.9, 4.1, 3.8, 4.0, 3.7, 3.6, 3.8, 3.5, 3.6, 3.4])
    out: list[SessionRecord] = []
    for week in range(4):
        for n, day in enumerate((0, 2, 4)):
            started = first_monday + dt.timedelta(weeks=week, days=day)
            if week < 2:
                record = session_record(
                    device_id, started, backward_min=plan.backward_s / 60, longest_min=2,
                    total_min=plan.duration_s / 60, plan=plan.name,
                )  # fmt: skip
                if week == 1 and n == 2:
                    # stopped after 15 of 30 minutes: four 2-minute stretches backward
                    record = msgspec.structs.replace(
                        record, status="stopped", done_s=900.0, backward_s=480.0
                    )
            else:
                record = session_record(device_id, started, backward_min=12, longest_min=10)
            if week == 1 and n == 1:
                record = msgspec.structs.replace(record, trips=1, stumbles=1)
            out.append(with_measures(record, sway_ap=next(sway), sway_ml=0.08, step_cv=next(cv)))
    now = now or dt.datetime.now(dt.UTC)
    if any(r.ended_wall and dt.datetime.fromisoformat(r.ended_wall) > now for r in out):
        raise ValueError(f"physio_month from {first_monday} has sessions after now ({now})")
    return out


def month_to_now(
    device_id: str, clock: Callable[[], float], *, this_morning: bool = True
) -> list[SessionRecord]:
    """:func:`physio_month` from :func:`month_before_this_week`, then (``this_morning``)
    :func:`session_this_morning`: the month a physio reads on the progress page, seeded by the
    service's ``clock`` (read once), the one the page counts its weeks by."""
    at = clock()
    now = dt.datetime.fromtimestamp(at, dt.UTC)
    sessions = physio_month(device_id, month_before_this_week(lambda: at), now=now)
    if this_morning:
        sessions.append(session_this_morning(device_id, lambda: at))
    return sessions


def received(record: SessionRecord) -> dict[str, Any]:
    """``record``'s summary as the caregiver's ingest hands it to ``parse_summary``: the
    decoded JSON the monitor publishes."""
    from firmware.session.record import session_payload

    return json.loads(session_payload(record))  # type: ignore[no-any-return]


@dataclass
class SimDevice:
    """A plain paho client publishing what a RetroGuard monitor publishes (docs/mqtt.md)."""

    broker: Mosquitto
    device_id: str
    prefix: str = "retroguard"
    seq: int = 0
    commands: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    got_command: threading.Condition = field(default_factory=threading.Condition)
    username: str = ""
    """The device's broker account (a broker with users makes it the client id)."""
    password: str = ""
    answers_acks: bool = True
    """Reply ``ok`` to each ``ack`` command, as a monitor does."""
    sent: int = 0
    """Messages published to the broker (:func:`wait_all_handled` counts them in)."""

    def __post_init__(self) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.username or f"sim-{self.device_id}-{uuid.uuid4().hex[:6]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if self.username:
            self.client.username_pw_set(self.username, self.password)
        self.client.will_set(self.topic("availability"), "offline", qos=1, retain=True)
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()
        self.client.subscribe(self.topic("cmd/+"), qos=1)
        assert subscribed.wait(WAIT)

    def topic(self, kind: str) -> str:
        return f"{self.prefix}/{self.device_id}/{kind}"

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self.got_command:
            name = message.topic.rsplit("/", 1)[-1]
            command = json.loads(message.payload or b"{}")
            self.commands.append((name, command))
            self.got_command.notify_all()
        if name == "ack" and self.answers_acks:
            # as a monitor confirms a close (the card stops saying the treadmill is not yet
            # told); published as is, never waited for on paho's thread
            result = {"acknowledged": command.get("incident"), "already": False}
            payload = reply_payload(self.device_id, "ack", command.get("id"), True, result)
            self.sent += 1
            self.client.publish(self.topic("reply"), payload, qos=1)

    def wait_command(self, name: str) -> dict[str, Any]:
        with self.got_command:
            assert self.got_command.wait_for(
                lambda: any(n == name for n, _ in self.commands), WAIT
            ), f"no {name} command reached {self.device_id}"
            return next(p for n, p in self.commands if n == name)

    def publish(self, kind: str, payload: str, retain: bool = False) -> None:
        self.sent += 1
        info = self.client.publish(self.topic(kind), payload, qos=1, retain=retain)
        info.wait_for_publish(WAIT)

    def online(self, state: str = "ARMED") -> None:
        self.publish("availability", "online", retain=True)
        self.set_state(state, "armed by local reset from STANDBY")

    def offline(self) -> None:
        self.publish("availability", "offline", retain=True)

    def set_state(self, state: str, reason: str = "") -> None:
        payload = {
            "schema": 1,
            "device_id": self.device_id,
            "state": state,
            "reason": reason or state.lower(),
            "wall_time": wall(),
        }
        self.publish("state", json.dumps(payload), retain=True)

    def event(
        self,
        kind: str,
        *,
        severity: str,
        state: str,
        reason: str,
        window: dict[str, Any] | None = None,
        event_id: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        self.seq += 1
        data: dict[str, Any] = {
            "schema": 1,
            "id": event_id or uuid.uuid4().hex,
            "seq": self.seq,
            "type": kind,
            "device_id": self.device_id,
            "severity": severity,
            "state": state,
            "reason": reason,
            "wall_time": wall(),
            "t_monotonic": 100.0 + self.seq,
            "figures": {"peak_g": 3.2, "tilt_deg": 80.0} if kind == "fall" else {},
        }
        if window is not None:
            data["imu_window"] = window
        data.update(extra)  # incident, of, by, via, recording (docs/incidents.md)
        self.publish("event", json.dumps(data, separators=(",", ":")))
        return data

    def fall(self) -> dict[str, Any]:
        self.set_state("TRIPPED", "fall: impact 3.2 g then lying")
        return self.event(
            "fall",
            severity="critical",
            state="TRIPPED",
            reason="impact 3.2 g then lying",
            window=fall_window(),
        )

    def incident_fall(
        self, walker: str | None = None, wall_time: str | None = None
    ) -> dict[str, Any]:
        """A trip that became a fall, as a monitor with incidents sends it: the stumble that
        stopped the belt, the fall confirmed 2.4 s later, then the recording around the trip
        (each naming ``walker``, when given: a device with several walkers; each stamped
        ``wall_time``, when given, else now).
        Returns the three events by name and the incident id."""
        incident = uuid.uuid4().hex
        named: dict[str, Any] = {} if walker is None else {"walker": walker}
        if wall_time is not None:
            named["wall_time"] = wall_time
        trip = self.incident_trip(incident, **named)
        fall = self.incident_confirmed_fall(incident, **named)
        window = self.incident_window(incident, trip["id"], **named)
        return {"incident": incident, "trip": trip, "fall": fall, "window": window}

    def incident_trip(self, incident: str, **named: Any) -> dict[str, Any]:
        """:meth:`incident_fall`'s first event: the stumble that stopped the belt."""
        self.set_state("TRIPPED", "stumble: trunk rotated 40 deg in 0.3 s")
        return self.event(
            "stumble",
            severity="warning",
            state="TRIPPED",
            reason="trunk rotated 40 deg in 0.3 s",
            incident=incident,
            **named,
            figures={"tilt_deg": 40.0, "tilt_rate_dps": 130.0},
        )

    def incident_window(self, incident: str, trip_id: str, **named: Any) -> dict[str, Any]:
        """:meth:`incident_fall`'s last event: the recording around the trip ``trip_id``."""
        return self.event(
            "window",
            severity="info",
            state="TRIPPED",
            reason="IMU around the trip",
            incident=incident,
            **named,
            of=trip_id,
            recording=msgspec.to_builtins(fall_recording()),
        )

    def incident_confirmed_fall(self, incident: str, **named: Any) -> dict[str, Any]:
        """:meth:`incident_fall`'s second event: the fall confirmed after the trip."""
        return self.event(
            "fall",
            severity="critical",
            state="TRIPPED",
            reason="impact 3.2 g then lying 83 deg",
            incident=incident,
            **named,
            figures=FALL_FIGURES,
        )

    def stumble(self) -> dict[str, Any]:
        self.set_state("TRIPPED", "stumble")
        return self.event(
            "stumble",
            severity="warning",
            state="TRIPPED",
            reason="sudden trunk rotation",
            window=fall_window(),
        )

    def reset(self) -> dict[str, Any]:
        self.set_state("ARMED", "armed by local reset from TRIPPED")
        return self.event(
            "reset", severity="info", state="ARMED", reason="armed by local reset from TRIPPED"
        )

    def session(self, record: SessionRecord) -> str:
        """Publish a guided-session summary exactly as the monitor's outbox does; the payload."""
        from firmware.session.record import session_payload

        payload = session_payload(record)
        self.publish("session", payload)
        return payload

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def card_belt(service: CaregiverService, device_id: str) -> str:
    """The device card's line on the belt, as the dashboard says it now ('' before any
    message from the device)."""
    from caregiver import story

    device = service.store.device(device_id)
    return "" if device is None else story.card(device, service.clock()).belt


def wait_all_handled(service: CaregiverService, *devices: SimDevice) -> None:
    """Wait until ``service`` has handled every message ``devices`` published (its broker and
    service fresh, no other publisher) and told the pages of it: ingest counts a batch's
    messages only after its changes went to the live feed (:meth:`Ingestor._count_messages`).
    A page opened after this shows all of it and its feed brings nothing older. Waiting for
    an open incident instead held at the trip, the first of a fall's three events: on a
    loaded machine the fall and its recording came in a later batch, after the test had
    opened its pages, and the card the feed then sent replaced the one pressed."""
    sent = sum(d.sent for d in devices)
    assert service.ingestor.wait_for(lambda: service.ingestor.messages >= sent, WAIT), (
        f"{service.ingestor.messages} of the {sent} messages sent were handled"
    )


class Receiver:
    """A local HTTP endpoint for Apprise's json:// target (stdlib http.server in a thread)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.fail_next = 0
        self.cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.cond:
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        self.send_response(500)
                        self.end_headers()
                        return
                    receiver.messages.append(
                        {"path": self.path, "headers": dict(self.headers), **json.loads(body)}
                    )
                    receiver.cond.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        # its shutdown is looked for every 20 ms, not http.server's 0.5 s, which each close
        # waited out
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, name: str, scheme: str = "json") -> str:
        """An Apprise URL of ``scheme`` (json, ntfy, gotify: each posts JSON) to this receiver;
        ``name`` is the path (json), topic (ntfy) or application token (gotify)."""
        return f"{scheme}://127.0.0.1:{self.port}/{name}"

    def for_(self, name: str) -> list[dict[str, Any]]:
        with self.cond:
            return [m for m in self.messages if m["path"] == f"/{name}"]

    def wait(self, count: int) -> list[dict[str, Any]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.messages) >= count, WAIT), self.messages
            return list(self.messages)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Http:
    """A tiny cookie-keeping client that never follows redirects."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        status, answered, body = self.download(method, path, form, headers)
        return status, answered, body.decode()

    def download(
        self,
        method: str,
        path: str,
        form: dict[str, str] | list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """:meth:`request` with the body as it came (a PDF, say)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
        hdrs = {"accept": "text/html", **(headers or {})}
        if self.cookies:
            hdrs["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            hdrs["content-type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        body_bytes = resp.read()
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                val = rest.split(";", 1)[0].strip('"')
                if val and "max-age=0" not in value.lower():
                    self.cookies[key] = val
                else:
                    self.cookies.pop(key, None)
        conn.close()
        received: dict[str, str] = {}
        for name, value in resp.getheaders():  # several Set-Cookie headers: one per line
            key = name.lower()
            received[key] = f"{received[key]}\n{value}" if key in received else value
        return resp.status, received, body_bytes

    def acknowledge(
        self, page: str, action: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        """Open ``page`` and post its Acknowledge form to ``action`` as a browser without
        scripts does: with the fields that say what the page showed (caregiver/seen.py)."""
        _, _, shown = self.request("GET", page)
        return self.request("POST", action, ack_fields(shown, action), headers=headers)

    def login(
        self,
        username: str = "ann",
        password: str = PASSWORD,
        headers: dict[str, str] | None = None,
    ) -> int:
        _, _, page = self.request("GET", "/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token
        status, _, _ = self.request(
            "POST",
            "/login",
            {"csrf": token.group(1), "username": username, "password": password, "next": "/"},
            headers=headers,
        )
        return status


def ack_fields(page: str, action: str) -> dict[str, str]:
    """The fields of ``page``'s Acknowledge form that posts to ``action`` (its CSRF token and
    what it says the page showed)."""
    form = re.search(
        rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', page, re.S
    )
    assert form is not None, f"no Acknowledge form posting to {action}"
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(1))
    return {name: html.unescape(value) for name, value in fields}


BY_HAND = ClockFrame("tests", 0.0)
"""The frame of alerts a test writes by hand (no instance measures it: a step the ticker
measures moves them, as one from before a restart)."""


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def saturday_noon(today: dt.date | None = None) -> FakeClock:
    """A service's clock stopped at the latest Saturday noon (UTC) not after now, for a test
    about "this week": the test reads the week from it (:func:`week_monday`) and the service
    counts in it, one clock (a second ``time.time()`` a few seconds apart named the next
    week when the run crossed Sunday's midnight), and every session seeded from the week's
    Monday to its Friday has ended by it (on a real Monday they were days to come). A week
    whose Monday is in the year before is passed over for the one before it: the browser
    writes a date of another year with its year ("Dec 28, 2026"). ``today``: a day to count
    from in place of the real one (a January, whose month of weeks began the year before)."""
    day = today or (dt.datetime.now(dt.UTC) - dt.timedelta(hours=12)).date()  # noon not after now
    while True:
        day -= dt.timedelta(days=(day.weekday() - 5) % 7)
        clock = FakeClock(dt.datetime.combine(day, dt.time(12), dt.UTC).timestamp())
        if week_monday(clock).year == day.year:
            return clock
        day -= dt.timedelta(days=1)


def week_monday(clock: Callable[[], float], zone: dt.tzinfo = dt.UTC) -> dt.datetime:
    """The midnight (in ``zone``, the service's) the week ``clock`` is in now began, by the
    product's own rule (:func:`core.progress.week_of`, :func:`core.progress.week_start`)."""
    week = week_of(dt.datetime.fromtimestamp(clock(), zone), zone)
    return dt.datetime.combine(week_start(week), dt.time(), zone)


def make_config(
    broker: Mosquitto,
    tmp_path: Path,
    *,
    contacts: tuple[Contact, ...] = (),
    policy: PolicyConfig | None = None,
    escalation: EscalationConfig | None = None,
    client_id: str = "caregiver-test",
    database: str | None = None,
) -> CaregiverConfig:
    """A service config on ``broker``; its database is ``database`` (the ``caregiver_db``
    fixture: a SQLite file or a PostgreSQL URL), else a SQLite file in ``tmp_path``."""
    return CaregiverConfig(
        server=ServerConfig(
            host="127.0.0.1",
            port=0,
            database=database or str(tmp_path / "caregiver.db"),
            public_url="http://dash.example",
            login_attempts=3,
            timezone="UTC",  # the tests' weeks are UTC weeks, whatever the machine's zone
        ),
        mqtt=CaregiverMqttConfig(host=broker.host, port=broker.port, client_id=client_id),
        policy=policy or PolicyConfig(),
        escalation=escalation or EscalationConfig(ack_timeout_s=300, resends=1, retry_s=10),
        contacts=contacts,
        devices={"treadmill-1": "Dad's treadmill"},
    )


@contextmanager
def running_service(
    config: CaregiverConfig, *, web: bool = True, background: bool = True, **kwargs: Any
) -> Iterator[CaregiverService]:
    service = CaregiverService(config, **kwargs)
    service.accounts.add_user("ann", PASSWORD, Role.PHYSIO)  # she sets plans in the tests
    service.start(web=web, background=background, port=0)
    try:
        assert service.ingestor.connected.wait(WAIT), "the service did not connect to the broker"
        yield service
    finally:
        service.stop()
