"""Caregiver service figures on loopback: event to browser, fall to phone, and its memory.

Three kinds of process, so that what is measured is the service alone:

* the **caregiver service**, as deployed: ``retroguard caregiver -c <config>`` in its
  own process (paho ingest, SQLite, Starlette/uvicorn, the live feed) and its notifier
  process, its contact a ``json://`` URL to a receiver in this process (sent with the
  standard library since caregiver/notify_http.py; through Apprise before);
* the **load generator**, another process (``multiprocessing``, spawned): one paho
  client per simulated device publishing the documented payloads;
* this process: a real Mosquitto, Debian's headless Chromium (Playwright) logged in
  through the login form on the fleet page, each event timed as the page's own live
  feed delivers it (:class:`Browser`), the notification receiver, and the clock all
  latencies are taken with (one machine, one wall clock: ``time.time()`` here and in the
  generator, ``Date.now()`` in Chromium).

For each fleet size (``--devices 50 200``):

1. steady load: every device sends telemetry every ``--telemetry-interval`` s (60 times
   the devices' default of 60 s unless told otherwise);
2. falls, one every ``--fall-interval`` s (``--falls`` of them; each, as this release's
   monitor sends it, a trip, the fall and the 14 s recording around the trip under one
   incident id; ``--format json``: one event with a 3 s JSON-float window as older
   monitors sent): fall to notification delivered at the local receiver (the service
   pages the first contact at once), and fall to the browser;
3. a burst: ``--burst`` events at once across the fleet (whole falls: trips, falls and
   recordings): event to browser, and how long until the last is there;
4. the service's memory, over every process it runs (the service and its notifier
   process): their resident pages each counted once (:class:`MemoryWatch`) at its
   highest, which the target is checked on; beside it their summed RSS, each one's
   VmHWM summed, and at the end USS and PSS (``/proc/<pid>/smaps_rollup``).

Targets (issue 14): event to browser p99 < 500 ms, fall to notification p99 < 2 s,
caregiver peak RSS <= 60 MB. Memory, last measured (2026-12-02, 50 devices, ``--burst 500
--falls 40``): 73.0 MB over both processes (the service 46.6 MB RSS at the end, 49.3 MB at
its peak, a login's Argon2 buffer; the notifier 39.0 MB RSS, 26.3 MB of it private); what
each part costs and why no setting brings it under 60 MB: docs/caregiver.md, Figures.

Measured (2 cores shared with other work, Dec 2026): the 500-event burst's event to browser
p99 was 485 ms (50 devices) and 450 ms (200) at load average 0.2-0.5; after a batch's
receipts and acknowledgements woke paho once, batches went without a savepoint per message
and SQLite reads got a connection of their own, 298 and 290 ms at load 3 (burst CPU 0.16-0.20
s, was 0.21-0.25 s); alternating old and new at 200 devices: p99 481/530/532 ms against
399/501/509 ms. During a burst the two cores are full (the service 0.2-0.3 s of CPU, its
notifier 0.25-0.5 s for the 167 pages, Chromium 0.3-0.5 s, the generator, the broker): the
ingest thread's wall time is three to four times its CPU time, so the figure follows the
machine's load (p99 280-750 ms for one build over one afternoon).

    .venv/bin/python benchmarks/caregiver.py [--devices 50 200] [--burst 500] [--falls 40]
"""

from __future__ import annotations

import argparse
import array
import atexit
import contextlib
import http.client
import http.server
import json
import multiprocessing
import multiprocessing.connection
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# This file is named like the package it measures: run as a script, its own directory comes
# first on sys.path and would shadow the ``caregiver`` package. Take it out before importing.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))  # the project: benchmarks.feed_client

from benchmarks.feed_client import PASSWORD, SseClient, login_cookie, percentile  # noqa: E402
from caregiver.headless import CHROMIUM, launch_chromium  # noqa: E402
from tools.broker import Mosquitto, free_port  # noqa: E402
from tools.pgcluster import PostgresCluster  # noqa: E402

WAIT = 120.0
"""Upper bound for every wait: a guard against hangs, not a measurement."""

BROWSER_P99_MS = 500.0
NOTIFY_P99_MS = 2000.0
PEAK_RSS_MB = 60.0


# ------------------------------------------------------------------ the load generator


def window() -> dict[str, Any]:
    rows = [[round(-3.0 + i / 200, 3), 0.01, 0.02, 0.98, 0.4, -0.2, 0.1] for i in range(601)]
    return {"columns": ["dt", "ax", "ay", "az", "gx", "gy", "gz"], "rows": rows}


FORMATS = ("incident", "json", "none")
"""What the simulated monitors send (``--format``): ``incident``, this release's monitor —
each fall a trip, the fall and the recording around the trip (14 s at 200 Hz as int16
counts, zlib: :class:`core.protocol.messages.ImuRecording`), all under one incident id;
``json``, an older monitor — one event carrying a 3 s IMU window as JSON floats; ``none``,
events without any window."""


class Device:
    def __init__(self, host: str, port: int, device_id: str, form: str = "incident") -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        self.device_id = device_id
        self.form = form
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-{device_id}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port)
        self.client.loop_start()
        self.seq = 0

    def send(self, kind: str, payload: str, retain: bool = False) -> Any:
        return self.client.publish(
            f"retroguard/{self.device_id}/{kind}", payload, qos=1, retain=retain
        )

    def announce(self) -> None:
        self.send("availability", "online", retain=True)
        state = {
            "schema": 1,
            "device_id": self.device_id,
            "state": "ARMED",
            "reason": "armed",
            "wall_time": _now_iso(),
        }
        self.send("state", json.dumps(state), retain=True).wait_for_publish(WAIT)

    def telemetry(self) -> None:
        data = {
            "schema": 1,
            "device_id": self.device_id,
            "wall_time": _now_iso(),
            "outbox_depth": 0,
            "sample_rate_hz": 200.0,
            "imu_ok": True,
            "state": "ARMED",
        }
        self.send("telemetry", json.dumps(data))

    def fall(self) -> list[Prepared]:
        """The messages of one fall, encoded (a real device encodes its own events on its
        own CPU: what is timed is from the first publish on)."""
        if self.form != "incident":
            return [self.prepare("fall")]
        incident = uuid.uuid4().hex
        trip = self.prepare("stumble", incident=incident, figures={"tilt_deg": 40.0})
        fall = self.prepare("fall", incident=incident)
        window = self.prepare("window", incident=incident, of=trip.event_id)
        return [trip, fall, window]

    def prepare(self, kind: str, **extra: Any) -> Prepared:
        self.seq += 1
        event_id = uuid.uuid4().hex
        severity = {"fall": "critical", "stumble": "warning"}.get(kind, "info")
        data: dict[str, Any] = {
            "schema": 1,
            "id": event_id,
            "seq": self.seq,
            "type": kind,
            "device_id": self.device_id,
            "severity": severity,
            "state": "TRIPPED",
            "reason": "benchmark",
            "wall_time": _now_iso(),
            "t_monotonic": float(self.seq),
            "figures": {"impact_g": 3.2, "tilt_deg": 83.0} if kind == "fall" else {},
        }
        data.update(extra)
        if kind == "window":
            data["recording"] = recording()
        elif self.form == "json":
            data["imu_window"] = json_window()
        return Prepared(
            event_id, kind, extra.get("incident"), json.dumps(data, separators=(",", ":"))
        )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass(frozen=True)
class Prepared:
    """One encoded event, ready to publish."""

    event_id: str
    kind: str
    incident: str | None
    text: str


_RECORDING: dict[str, Any] = {}


def recording() -> dict[str, Any]:
    """The recording of sim.recordings (a trip that became a fall), at the belt's 200 Hz, as
    the monitor's JSON carries it (samples in base64)."""
    if not _RECORDING:
        import msgspec

        from sim.recordings import fall_recording

        _RECORDING.update(msgspec.to_builtins(fall_recording(rate_hz=200.0)))
    return _RECORDING


def json_window() -> dict[str, Any]:
    rows = [[round(-3.0 + i / 200, 3), 0.01, 0.02, 0.98, 0.4, -0.2, 0.1] for i in range(601)]
    return {"columns": ["dt", "ax", "ay", "az", "gx", "gy", "gz"], "rows": rows}


def _now_iso() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclass
class Sent:
    """What the generator published, by event id: when, and the fall's other ids."""

    at: dict[str, float] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    incident_of: dict[str, str] = field(default_factory=dict)
    """Each event id of an incident -> the incident's fall id (the notification names one)."""


def generator(
    conn: multiprocessing.connection.Connection, host: str, port: int, n: int, form: str
) -> None:
    """The load generator's process: does what the pipe asks, answers with its figures."""
    devices = [Device(host, port, f"treadmill-{i:03d}", form) for i in range(n)]
    for d in devices:
        d.announce()
    stop = threading.Event()
    sent_telemetry = [0]

    def telemetry(interval: float) -> None:
        i = 0
        while not stop.wait(interval / len(devices)):
            devices[i % len(devices)].telemetry()
            sent_telemetry[0] += 1
            i += 1

    def note(sent: Sent, messages: list[Prepared]) -> None:
        fall = next((m.event_id for m in messages if m.kind == "fall"), None)
        for m in messages:
            sent.kinds[m.event_id] = m.kind
            if fall is not None:
                sent.incident_of[m.event_id] = fall

    conn.send(("ready", None))
    next_device = 0
    while True:
        command, arg = conn.recv()
        if command == "telemetry":
            threading.Thread(target=telemetry, args=(arg,), daemon=True).start()
            conn.send(("ok", None))
        elif command == "falls":
            count, interval = arg
            sent = Sent()
            for i in range(count):
                device = devices[(next_device + i) % n]
                messages = device.fall()
                note(sent, messages)
                for m in messages:
                    sent.at[m.event_id] = time.time()
                    device.send("event", m.text)
                stop.wait(interval)
            next_device += count
            conn.send(("sent", (sent.at, sent.kinds, sent.incident_of)))
        elif command == "burst":
            ready: list[tuple[Device, Prepared]] = []
            sent = Sent()
            i = 0
            while len(ready) < arg:  # whole falls (a trip, the fall, its recording)
                device = devices[(next_device + i) % n]
                messages = device.fall()[: arg - len(ready)]
                note(sent, messages)
                ready += [(device, m) for m in messages]
                i += 1
            for device, m in ready:
                sent.at[m.event_id] = time.time()
                device.send("event", m.text)
            next_device += i
            conn.send(("sent", (sent.at, sent.kinds, sent.incident_of)))
        elif command == "stop":
            stop.set()
            for d in devices:
                d.close()
            conn.send(("stopped", sent_telemetry[0]))
            return


def broker_probe(conn: multiprocessing.connection.Connection, host: str, port: int) -> None:
    """A process of its own subscribed to every event: when each passed the broker. Splits
    the service's latency from the generator's (its ~200 paho clients share one process and
    one GIL, unlike real devices) and the broker's."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    seen: dict[str, float] = {}
    pattern = re.compile(rb'"id":"([0-9a-f]{32})"')

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        now = time.time()
        match = pattern.search(message.payload, 0, 200)
        if match:
            seen.setdefault(match.group(1).decode(), now)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe")
    client.on_message = on_message
    client.on_connect = lambda c, u, f, r, p: c.subscribe("retroguard/+/event", qos=0)
    client.connect(host, port)
    client.loop_start()
    conn.send(("ready", None))
    while conn.recv() == "report":
        conn.send(dict(seen))
    client.loop_stop()


# ------------------------------------------------------------------ this process


class NotificationReceiver:
    """The json:// target: notes when each fall's notification arrived (by the event
    id in its link)."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                now = time.time()
                match = re.search(r"/events/([0-9a-f]{32})", json.loads(body).get("message", ""))
                if match:
                    with receiver.cond:
                        receiver.arrivals.setdefault(match.group(1), now)
                        receiver.cond.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(
        self, falls: Collection[str], incident_of: dict[str, str], timeout: float
    ) -> dict[str, float]:
        """When each fall's first notification arrived, by fall id (its link may name the
        incident's first event, the trip, rather than the fall itself)."""

        def arrived() -> dict[str, float]:
            got: dict[str, float] = {}
            for event_id, when in self.arrivals.items():
                fall = incident_of.get(event_id, event_id)
                if fall in falls:
                    got[fall] = min(when, got.get(fall, when))
            return got

        with self.cond:
            self.cond.wait_for(lambda: len(arrived()) == len(falls), timeout)
            return arrived()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak) of a process, in KiB, from /proc/<pid>/status; with Pss and
    Uss (its private pages: Private_Clean + Private_Dirty) from /proc/<pid>/smaps_rollup."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = int(value.split()[0])
    rollup = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        rollup[key] = int(value.split()[0])
    figures["Pss"] = rollup["Pss"]
    figures["Uss"] = rollup["Private_Clean"] + rollup["Private_Dirty"]
    return figures


PAGE = os.sysconf("SC_PAGE_SIZE")
_PRESENT = 1 << 63
_PFN = (1 << 55) - 1


def resident_frames(pid: int) -> set[int]:
    """The physical pages (frame numbers) a process has resident, from /proc/<pid>/pagemap.
    Only a process with CAP_SYS_ADMIN is told the frame numbers (others read zeros): then
    the set is empty, and the caller falls back to summing RSS."""
    frames: set[int] = set()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for line in maps:
            if line.rstrip().endswith("[vsyscall]"):
                continue  # not in the page tables; reading its entries fails
            low, high = (int(x, 16) for x in line.split(None, 1)[0].split("-"))
            pagemap.seek(low // PAGE * 8)
            entries = array.array("Q", pagemap.read((high - low) // PAGE * 8))
            frames.update(e & _PFN for e in entries if e & _PRESENT)
    frames.discard(0)
    return frames


class MemoryWatch:
    """The memory of the service and of every process it starts (its notifier), together.

    The target is the service's, counted over all its processes. Summing their RSS counts
    twice the pages they share (the Python binary, C libraries: some 13 MB), and summing
    PSS splits those pages with every other process that maps them (other Python programs
    on the machine), so it changes with what else runs. What the service costs the
    machine is its processes' resident pages, each counted once: the union of their
    physical pages (/proc/<pid>/pagemap), sampled every ``every_s`` — the figure the
    target is checked on; where the frame numbers cannot be read (not root), the summed
    RSS instead. Each process's own peak (VmHWM) is exact, but the peaks may fall at
    different moments and shared pages count twice: their sum is the upper bound. A child
    that exits (a replaced notifier) keeps the peak it had when last seen."""

    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        self.pid = pid
        self.every_s = every_s
        self.peaks: dict[int, int] = {}
        """pid -> its VmHWM when last read, KiB."""
        self.peak_rss_sum = 0
        self.peak_resident = 0
        """The most distinct resident pages the processes had together at a sample, KiB."""
        self.frames_readable = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="memory-watch", daemon=True)

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def sample(self) -> dict[str, int]:
        """Every process's figures now, summed, with how many processes there were."""
        total = {"VmRSS": 0, "Pss": 0, "Uss": 0, "processes": 0, "resident": 0}
        frames: set[int] = set()
        for pid in [self.pid, *children(self.pid)]:
            try:
                figures = memory_kib(pid)
                if self.frames_readable:
                    frames |= resident_frames(pid)
            except (OSError, KeyError, ValueError):  # it exited between the listing and here
                continue
            self.peaks[pid] = max(self.peaks.get(pid, 0), figures["VmHWM"])
            for key in ("VmRSS", "Pss", "Uss"):
                total[key] += figures[key]
            total["processes"] += 1
        self.frames_readable = self.frames_readable and bool(frames)
        total["resident"] = len(frames) * PAGE // 1024 if self.frames_readable else total["VmRSS"]
        self.peak_rss_sum = max(self.peak_rss_sum, total["VmRSS"])
        self.peak_resident = max(self.peak_resident, total["resident"])
        return total

    def _watch(self) -> None:
        while not self._stop.wait(self.every_s):
            with contextlib.suppress(OSError):  # the service exited: the run reports it
                self.sample()

    def stop(self) -> dict[str, int]:
        """The last sample, after stopping the watch."""
        self._stop.set()
        self._thread.join()
        return self.sample()

    @property
    def peaks_summed(self) -> int:
        return sum(self.peaks.values())


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (the service's notifier process), from /proc."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(entry.name))
    return kids


def cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used, in seconds, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Service:
    """``retroguard caregiver`` in its own process, on a config written for the run."""

    work: Path
    broker: Mosquitto
    notify_port: int | None
    """The receiver's port; None: no contact (nobody is paged)."""
    database: str = "caregiver.db"
    """A SQLite file next to the config, or a postgresql:// URL (``--engine postgresql``)."""
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config = self.work / "caregiver.toml"
        contact = (
            f'[[contacts]]\nname = "Receiver"\nurls = ["json://127.0.0.1:{self.notify_port}/ann"]\n'
            if self.notify_port is not None
            else ""
        )
        config.write_text(
            f"""[server]
port = {self.port}
database = "{self.database}"
timezone = "UTC"

[mqtt]
host = "{self.broker.host}"
port = {self.broker.port}
client_id = "bench-caregiver-{uuid.uuid4().hex[:6]}"
session_expiry_s = 0

{contact}"""
        )
        retroguard = str(Path(sys.executable).parent / "retroguard")
        secret = self.work / "password"
        secret.write_text(PASSWORD + "\n")
        subprocess.run(  # the account is made by another process, as an installer does
            [retroguard, "caregiver", "add-user", "bench", "--password-file", str(secret),
             "-c", str(config)],
            check=True, capture_output=True,
        )  # fmt: skip
        log = (self.work / "service.log").open("wb")
        self.process = subprocess.Popen(
            [retroguard, "caregiver", "-c", str(config)], stdout=log, stderr=log
        )
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:  # readiness: the login page answers
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/login")
                if conn.getresponse().status == 200:
                    return
            if self.process.poll() is not None:
                raise RuntimeError(f"the service stopped: see {self.work / 'service.log'}")
            threading.Event().wait(0.1)
        raise RuntimeError("the service did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fleet_size(self, cookie: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", "/api/fleet", headers={"cookie": cookie, "accept": "application/json"})
        return len(json.loads(conn.getresponse().read())["devices"])

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)


def spread(values: list[float]) -> str:
    if not values:
        return "none arrived"
    return (
        f"p50 {statistics.median(values):.0f} ms, p99 {percentile(values, 99):.0f} ms, "
        f"max {max(values):.0f} ms"
    )


class Browser:
    """Headless Chromium on the fleet page, logged in through the form, timestamping each
    event as the page's own live feed brings it.

    The page's ``EventSource`` is wrapped before its script runs (an init script) and each
    event message is noted when it is dispatched, before the page's handler. (This used to be
    a second ``EventSource`` beside the page's: it doubled what the service wrote to the
    browser and what the browser parsed, a load no caregiver's page makes, and its
    arrivals then waited behind the page's work on the same thread.)"""

    _NOTE_ARRIVALS = """(() => {
        window.__arrivals = {};
        const Native = window.EventSource;
        const marker = /^[{]"kind":"event".*?"event":[{]"id":"([0-9a-f]{32})"/;
        window.EventSource = function (url, options) {
            const source = new Native(url, options);
            source.addEventListener('message', m => {
                const id = marker.exec(m.data);
                if (id && !(id[1] in window.__arrivals)) window.__arrivals[id[1]] = Date.now();
            });
            return source;
        };
        window.EventSource.prototype = Native.prototype;
    })()"""

    def __init__(self, url: str) -> None:
        from playwright.sync_api import sync_playwright

        self.pw = sync_playwright().start()
        self.browser = launch_chromium(self.pw)
        self.page = self.browser.new_page(viewport={"width": 1280, "height": 800})
        self.page.set_default_timeout(WAIT * 1000)
        self.page.add_init_script(self._NOTE_ARRIVALS)
        self.page.goto(url + "/login")
        self.page.fill("#username", "bench")
        self.page.fill("#password", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_selector("body[data-live='1']")  # the page's feed is open

    def arrivals(self, ids: set[str], timeout: float) -> dict[str, float]:
        """When each of ``ids`` reached the page (those that did within ``timeout``). Polls
        how many are there, not the whole record: the page's thread is the one measured."""
        deadline = time.monotonic() + timeout
        self.page.evaluate("ids => { window.__wanted = ids; }", sorted(ids))
        count = "window.__wanted.filter(k => k in window.__arrivals).length"
        while time.monotonic() < deadline and self.page.evaluate(count) < len(ids):
            self.page.wait_for_timeout(200)
        got: dict[str, int] = self.page.evaluate("window.__arrivals")
        return {k: v / 1000.0 for k, v in got.items() if k in ids}

    def close(self) -> None:
        self.browser.close()
        self.pw.stop()


@dataclass
class Figures:
    devices: int
    falls_to_phone_ms: list[float]
    falls_to_browser_ms: list[float]
    burst: int
    burst_stored_s: float
    burst_to_browser_ms: list[float]
    burst_to_socket_ms: list[float]
    burst_to_ingest_ms: list[float]
    """Sent -> the service's ingest thread took it (its ``received_at``): the generator's
    publishing, the broker, and the service's queue of received messages."""
    burst_ingest_to_socket_ms: list[float]
    burst_to_broker_ms: list[float]
    """Sent -> seen by a subscriber in a process of its own (the generator and the broker)."""
    burst_broker_to_ingest_ms: list[float]
    telemetry_sent: int
    rss_before_login_kib: dict[str, int]
    rss_end_kib: dict[str, int]
    notifier_end_kib: dict[str, int]
    """The notifier process's (the service's child sending the notifications) at the end; empty
    when the service has none (no contacts, or an older service that sends in-process)."""
    all_end_kib: dict[str, int]
    """The service and its processes together at the end: VmRSS, Pss, Uss summed."""
    all_peaks_summed_kib: int
    """Each process's own peak (VmHWM), summed: an upper bound (shared pages count twice,
    peaks at different moments add up), printed beside the target's sampled figure."""
    all_peak_rss_sampled_kib: int
    """The peak of the processes' summed RSS, sampled every 0.5 s."""
    all_peak_resident_kib: int
    """The peak of their distinct resident pages (:class:`MemoryWatch`), sampled every 0.5 s:
    the target's figure."""
    notifier_burst_cpu_s: float
    burst_falls_to_phone_ms: list[float]
    """The burst's falls, each to its first notification at the receiver (none: no contact)."""
    burst_cpu_s: float
    """The service's CPU time from just before the burst until its last event was in the
    browser: what the burst cost, apart from how busy the machine was."""
    load: tuple[float, float, float]
    """The machine's load average as the run began (1, 5, 15 min)."""


def run(n: int, args: argparse.Namespace) -> Figures:
    work = Path(tempfile.mkdtemp(prefix=f"retroguard-bench-caregiver-{n}-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # databases, logs: scratch
    load_at_start = os.getloadavg()
    # Mosquitto queues at most 1,000 messages per client by default and drops the rest; a
    # service taking a burst needs more (docs/caregiver.md, "Scaling the broker side").
    broker = Mosquitto(persistence=False, extra_config="max_queued_messages 0")
    broker.start()
    receiver = NotificationReceiver()
    cluster: PostgresCluster | None = None
    database = "caregiver.db"
    if args.engine == "postgresql":
        cluster = PostgresCluster()
        cluster.start()
        database = cluster.new_database("bench")
    service = Service(work, broker, None if args.no_contacts else receiver.port, database)
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    load = ctx.Process(target=generator, args=(theirs, broker.host, broker.port, n, args.format))
    probe_end, probe_theirs = ctx.Pipe()
    probe = ctx.Process(target=broker_probe, args=(probe_theirs, broker.host, broker.port))
    browser: Browser | None = None
    socket: SseClient | None = None
    try:
        service.start()
        assert service.process is not None
        pid = service.process.pid
        before_login = memory_kib(pid)
        watch = MemoryWatch(pid)
        watch.start()
        load.start()
        probe.start()
        assert probe_end.poll(WAIT) and probe_end.recv()[0] == "ready"
        assert ours.poll(WAIT) and ours.recv()[0] == "ready"
        cookie = login_cookie(service.port)
        deadline = time.monotonic() + WAIT
        while service.fleet_size(cookie) < n and time.monotonic() < deadline:
            threading.Event().wait(0.2)
        browser = Browser(service.url)
        socket = SseClient(service.port, cookie)
        ours.send(("telemetry", args.telemetry_interval))
        ours.recv()
        threading.Event().wait(2 * args.telemetry_interval)  # settle into the steady load

        ours.send(("falls", (args.falls, args.fall_interval)))
        _, (at, kinds, incident_of) = ours.recv()
        falls = {k: t for k, t in at.items() if kinds[k] == "fall"}
        phone = {} if args.no_contacts else receiver.wait(falls, incident_of, WAIT)
        seen = browser.arrivals(set(falls), WAIT)
        falls_to_phone = [(phone[k] - t) * 1000 for k, t in falls.items() if k in phone]
        falls_to_browser = [(seen[k] - t) * 1000 for k, t in falls.items() if k in seen]

        cpu_before = cpu_s(pid)
        kids = children(pid)
        kids_cpu_before = sum(cpu_s(k) for k in kids)
        ours.send(("burst", args.burst))
        _, (burst, burst_kinds, burst_incidents) = ours.recv()
        started = min(burst.values())
        seen = browser.arrivals(set(burst), WAIT)
        burst_cpu = cpu_s(pid) - cpu_before
        burst_phone: dict[str, float] = {}
        burst_falls = {k: t for k, t in burst.items() if burst_kinds[k] == "fall"}
        if not args.no_contacts:  # the burst's notifications, sent by the notifier if any
            burst_phone = receiver.wait(set(burst_falls), burst_incidents, 30.0)
        burst_to_phone = [
            (burst_phone[k] - t) * 1000 for k, t in burst_falls.items() if k in burst_phone
        ]
        kids_cpu = sum(cpu_s(k) for k in kids if Path(f"/proc/{k}").exists()) - kids_cpu_before
        burst_to_browser = [(seen[k] - t) * 1000 for k, t in burst.items() if k in seen]
        off_socket = socket.arrivals
        burst_to_socket = [(off_socket[k] - t) * 1000 for k, t in burst.items() if k in off_socket]
        ingested = socket.ingested
        probe_end.send("report")
        passed: dict[str, float] = probe_end.recv()
        burst_to_broker = [(passed[k] - t) * 1000 for k, t in burst.items() if k in passed]
        broker_to_ingest = [
            (ingested[k] - passed[k]) * 1000 for k in burst if k in ingested and k in passed
        ]
        burst_to_ingest = [(ingested[k] - t) * 1000 for k, t in burst.items() if k in ingested]
        ingest_to_socket = [
            (off_socket[k] - ingested[k]) * 1000 for k in burst if k in ingested and k in off_socket
        ]
        stored_s = (max(seen.values()) - started) if seen else float("nan")

        ours.send(("stop", None))
        _, telemetry_sent = ours.recv()
        end = memory_kib(pid)
        kids = children(pid)
        notifier_end = memory_kib(kids[0]) if kids else {}
        all_end = watch.stop()
    finally:
        if socket is not None:
            socket.close()
        if browser is not None:
            browser.close()
        if probe.pid is not None:
            with contextlib.suppress(OSError):
                probe_end.send("stop")
            probe.join(10)
            if probe.is_alive():
                probe.terminate()
        if load.pid is not None:
            if load.is_alive():
                load.terminate()
            load.join(30)
        service.stop()
        receiver.close()
        broker.cleanup()
        if cluster is not None:
            cluster.cleanup()
    return Figures(
        n, falls_to_phone, falls_to_browser, args.burst, stored_s, burst_to_browser,
        burst_to_socket, burst_to_ingest, ingest_to_socket, burst_to_broker, broker_to_ingest,
        telemetry_sent, before_login, end,
        notifier_end, all_end, watch.peaks_summed, watch.peak_rss_sum,
        watch.peak_resident, kids_cpu, burst_to_phone, burst_cpu,
        load_at_start,
    )  # fmt: skip


def report(f: Figures, args: argparse.Namespace) -> bool:
    mb = 1024.0
    window = {
        "incident": "incidents (each fall: trip, fall, 14 s int16 recording)",
        "json": "3 s IMU windows as JSON floats (older monitors)",
        "none": "no IMU windows",
    }[args.format]
    print(
        f"caregiver benchmark on {os.cpu_count()} cores, load average "
        f"{' '.join(f'{x:.1f}' for x in f.load)} when it began (other work on the machine "
        "slows every figure but the CPU time)"
    )
    print(
        f"caregiver benchmark: {f.devices} devices (load generator in its own process), "
        f"telemetry every {args.telemetry_interval:g} s each ({f.telemetry_sent} sent), "
        f"events with {window}"
    )
    phone = (
        "no contact configured (--no-contacts): nobody paged"
        if args.no_contacts
        else f"to the notification receiver {spread(f.falls_to_phone_ms)} "
        f"({len(f.falls_to_phone_ms)}/{args.falls}; target p99 < {NOTIFY_P99_MS:.0f} ms)"
    )
    print(f"  {args.falls} falls, one every {args.fall_interval:g} s: {phone}")
    print(f"    to the browser {spread(f.falls_to_browser_ms)}")
    print(
        f"  burst of {f.burst} events at once: all in the browser {f.burst_stored_s:.2f} s after "
        f"the first was sent; event to browser {spread(f.burst_to_browser_ms)} "
        f"({len(f.burst_to_browser_ms)}/{f.burst}; target p99 < {BROWSER_P99_MS:.0f} ms)"
    )
    print(f"    the same events read off the feed's socket: {spread(f.burst_to_socket_ms)}")
    if f.burst_to_ingest_ms:
        print(
            f"      of which sent -> taken by the service's ingest: "
            f"{spread(f.burst_to_ingest_ms)}; ingest -> socket: "
            f"{spread(f.burst_ingest_to_socket_ms)}"
        )
        print(
            f"      sent -> past the broker (the generator, one process for {f.devices} devices; "
            f"Mosquitto): {spread(f.burst_to_broker_ms)}; broker -> taken by ingest: "
            f"{spread(f.burst_broker_to_ingest_ms)}"
        )
    if f.burst_falls_to_phone_ms:
        print(
            f"    the burst's {len(f.burst_falls_to_phone_ms)} falls to the notification "
            f"receiver: {spread(f.burst_falls_to_phone_ms)}"
        )
    print(
        f"    the service's CPU time for the burst: {f.burst_cpu_s:.2f} s "
        f"({f.burst_cpu_s / f.burst * 1000:.2f} ms an event); its notifier process's, for "
        f"the burst's notifications: {f.notifier_burst_cpu_s:.2f} s"
    )
    print(
        f"  caregiver process: VmHWM {f.rss_before_login_kib['VmHWM'] / mb:.1f} MB when the "
        f"login page first answered; at the end VmRSS {f.rss_end_kib['VmRSS'] / mb:.1f} MB, "
        f"VmHWM (peak) {f.rss_end_kib['VmHWM'] / mb:.1f} MB, USS {f.rss_end_kib['Uss'] / mb:.1f} "
        f"MB, PSS {f.rss_end_kib['Pss'] / mb:.1f} MB"
    )
    if f.notifier_end_kib:
        kid = f.notifier_end_kib
        print(
            f"  its notifier process: VmRSS {kid['VmRSS'] / mb:.1f} MB, VmHWM "
            f"{kid['VmHWM'] / mb:.1f} MB, USS {kid['Uss'] / mb:.1f} MB, PSS "
            f"{kid['Pss'] / mb:.1f} MB"
        )
    else:
        print("  no notifier process (nobody to page, or the service sends in its own process)")
    end = f.all_end_kib
    print(
        f"  the service ({end['processes']} process{'es' if end['processes'] > 1 else ''}): "
        f"peak resident "
        f"{f.all_peak_resident_kib / mb:.1f} MB (their pages, each counted once, at the "
        f"highest of samples every 0.5 s; target <= {PEAK_RSS_MB:.0f} MB); their summed RSS "
        f"at its highest {f.all_peak_rss_sampled_kib / mb:.1f} MB, each one's peak (VmHWM) "
        f"summed {f.all_peaks_summed_kib / mb:.1f} MB (shared pages counted twice)"
    )
    print(
        f"    at the end: resident {end['resident'] / mb:.1f} MB, RSS summed "
        f"{end['VmRSS'] / mb:.1f} MB, USS {end['Uss'] / mb:.1f} MB (private pages only), PSS "
        f"{end['Pss'] / mb:.1f} MB (shares split with every process on the machine)"
    )
    paged = args.no_contacts or (
        len(f.falls_to_phone_ms) == args.falls
        and percentile(f.falls_to_phone_ms, 99) < NOTIFY_P99_MS
    )
    return (
        paged
        and len(f.burst_to_browser_ms) == f.burst
        and percentile(f.burst_to_browser_ms, 99) < BROWSER_P99_MS
        and f.all_peak_resident_kib / mb <= PEAK_RSS_MB
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--devices", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--burst", type=int, default=500, help="events published at once")
    ap.add_argument("--falls", type=int, default=40, help="falls one at a time, for the phone")
    ap.add_argument("--fall-interval", type=float, default=0.5)
    ap.add_argument("--telemetry-interval", type=float, default=1.0)
    ap.add_argument(
        "--format",
        choices=FORMATS,
        default="incident",
        help="what the monitors send: incidents as this release does (a trip, the fall and a "
        "compact recording), one event with a JSON-float window as older monitors did, or "
        "events without a window",
    )
    ap.add_argument(
        "--no-contacts",
        action="store_true",
        help="configure no contact: what the service costs without paging anyone (no "
        "notifier process)",
    )
    ap.add_argument(
        "--engine",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the service's database: a SQLite file, or a throwaway local PostgreSQL cluster",
    )
    args = ap.parse_args()
    if not CHROMIUM.exists():
        print("caregiver benchmark: needs Debian's chromium (apt-get install -y chromium)")
        return 2
    ok = True
    for n in args.devices:
        ok = report(run(n, args), args) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
