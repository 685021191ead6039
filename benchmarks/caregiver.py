"""Caregiver service figures on loopback: 50 devices, a burst of events, event-to-browser latency.

One caregiver service (the real one: paho ingest, SQLite, Starlette/uvicorn, the
server-sent-events feed) against a real Mosquitto, with N simulated devices
(one paho client each, publishing the documented payloads):

1. steady load: every device sends telemetry every ``--telemetry-interval`` s
   (devices default to 60 s; the default here, 1 s, is 60 times that), while
2. a burst of events arrives: every device publishes ``--events`` stumble/fall
   events (each with a 3 s IMU window, as real ones carry) as fast as it can;
   each event's latency is measured from just before ``publish()`` to its
   arrival in the browser — headless Chromium (Debian's, via Playwright) with an
   ``EventSource`` on the dashboard's feed, logged in as a caregiver; without
   Chromium, a raw SSE client reading the same stream stands in (said so);
3. ingest rate: a backlog of ``--backlog`` telemetry messages published at once;
   messages stored per second until the service has taken them all.

Target: event-to-browser p99 < 1 s with 50 devices.

    .venv/bin/python benchmarks/caregiver.py [--devices 50] [--events 10] [--backlog 5000]
        [--engine sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

# This file is named like the package it measures: run as a script, its own directory comes
# first on sys.path and would shadow the ``caregiver`` package. Take it out before importing.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from caregiver.config import CaregiverConfig, CaregiverMqttConfig, ServerConfig  # noqa: E402
from caregiver.headless import CHROMIUM, launch_chromium  # noqa: E402
from caregiver.service import CaregiverService  # noqa: E402
from tools.broker import Mosquitto  # noqa: E402
from tools.pgcluster import PostgresCluster  # noqa: E402

PASSWORD = "benchmark-password"


def window() -> dict[str, Any]:
    rows = [[round(-3.0 + i / 200, 3), 0.01, 0.02, 0.98, 0.4, -0.2, 0.1] for i in range(601)]
    return {"columns": ["dt", "ax", "ay", "az", "gx", "gy", "gz"], "rows": rows}


class Device:
    def __init__(self, broker: Mosquitto, device_id: str) -> None:
        self.device_id = device_id
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-{device_id}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.seq = 0

    def send(self, kind: str, payload: str, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.client.publish(
            f"retroguard/{self.device_id}/{kind}", payload, qos=1, retain=retain
        )

    def telemetry(self) -> mqtt.MQTTMessageInfo:
        data = {
            "schema": 1,
            "device_id": self.device_id,
            "wall_time": "2025-01-01T00:00:00.000+00:00",
            "outbox_depth": 0,
            "sample_rate_hz": 200.0,
            "imu_ok": True,
            "state": "ARMED",
        }
        return self.send("telemetry", json.dumps(data))

    def event(self, sent: dict[str, float]) -> None:
        self.seq += 1
        kind = "fall" if self.seq % 2 else "stumble"
        event_id = uuid.uuid4().hex
        data = {
            "schema": 1,
            "id": event_id,
            "seq": self.seq,
            "type": kind,
            "device_id": self.device_id,
            "severity": "critical" if kind == "fall" else "warning",
            "state": "TRIPPED",
            "reason": "benchmark",
            "wall_time": "2025-01-01T00:00:00.000+00:00",
            "t_monotonic": float(self.seq),
            "figures": {"peak_g": 3.0},
            "imu_window": window(),
        }
        text = json.dumps(data, separators=(",", ":"))
        sent[event_id] = time.time()
        self.send("event", text)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def login_cookie(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/login")
    resp = conn.getresponse()
    page = resp.read().decode()
    login = resp.getheader("set-cookie", "").split(";", 1)[0]
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    body = urllib.parse.urlencode(
        {"csrf": match.group(1), "username": "bench", "password": PASSWORD}
    )
    conn.request(
        "POST",
        "/login",
        body=body,
        headers={"content-type": "application/x-www-form-urlencoded", "cookie": login},
    )
    resp = conn.getresponse()
    resp.read()
    for name, value in resp.getheaders():
        if name.lower() == "set-cookie" and value.startswith("rg_session="):
            return value.split(";", 1)[0]
    raise RuntimeError("login failed")


class SseClient:
    """Stand-in for the browser: reads /stream and timestamps each event message."""

    def __init__(self, port: int, cookie: str) -> None:
        self.arrivals: dict[str, float] = {}
        self.ready = threading.Event()
        self.ended = threading.Event()
        """The server ended the stream (it drops a browser that falls 1,000 messages behind)."""
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.conn.request("GET", "/stream", headers={"cookie": cookie})
        self.resp = self.conn.getresponse()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        self.ready.set()
        # AttributeError: http.client reading a response whose connection close() released
        with contextlib.suppress(OSError, ValueError, AttributeError, http.client.HTTPException):
            self._lines()  # ends when the connection is closed at the end of the run
        self.ended.set()

    def _lines(self) -> None:
        for raw in self.resp:
            line = raw.decode()
            if line.startswith("data: "):
                now = time.time()
                msg = json.loads(line[6:])
                if msg.get("kind") == "event":
                    self.arrivals[msg["event"]["id"]] = now

    def close(self) -> None:
        self.conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument(
        "--events", type=int, default=2, help="events per device in the burst (all at once)"
    )
    ap.add_argument("--telemetry-interval", type=float, default=1.0)
    ap.add_argument("--backlog", type=int, default=5000)
    ap.add_argument("--no-browser", action="store_true", help="measure with a raw SSE client")
    ap.add_argument(
        "--engine",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the service's database: a SQLite file, or a throwaway local PostgreSQL cluster",
    )
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="retroguard-bench-caregiver-"))
    # Mosquitto queues at most 1,000 messages per client by default (max_queued_messages) and
    # drops the rest; a service taking a 5,000-message burst needs more (docs/caregiver.md).
    broker = Mosquitto(persistence=False, extra_config="max_queued_messages 0")
    broker.start()
    cluster: PostgresCluster | None = None
    database = str(work / "caregiver.db")
    if args.engine == "postgresql":
        cluster = PostgresCluster()
        cluster.start()
        database = cluster.new_database("bench")
    config = CaregiverConfig(
        server=ServerConfig(host="127.0.0.1", port=0, database=database),
        mqtt=CaregiverMqttConfig(host=broker.host, port=broker.port, client_id="bench-caregiver"),
    )
    service = CaregiverService(config)
    service.accounts.add_user("bench", PASSWORD)
    service.start(port=0)
    assert service.ingestor.connected.wait(20)
    devices = [Device(broker, f"treadmill-{i:02d}") for i in range(args.devices)]
    for d in devices:
        d.send("availability", "online", retain=True)
        state = {
            "schema": 1,
            "device_id": d.device_id,
            "state": "ARMED",
            "reason": "armed",
            "wall_time": "2025-01-01T00:00:00.000+00:00",
        }
        d.send("state", json.dumps(state), retain=True)
    total = 2 * args.devices
    service.ingestor.wait_for(lambda: service.ingestor.messages >= total, 60)

    cookie = login_cookie(service.port)
    browser_ctx: Any = None
    page: Any = None
    sse: SseClient | None = None
    use_browser = CHROMIUM.exists() and not args.no_browser
    if use_browser:
        from playwright.sync_api import sync_playwright

        pw = sync_playwright().start()
        browser = launch_chromium(pw)
        browser_ctx = browser.new_context()
        name, _, value = cookie.partition("=")
        browser_ctx.add_cookies([{"name": name, "value": value, "url": service.url}])
        page = browser_ctx.new_page()
        page.goto(service.url + "/")
        page.evaluate(
            """() => new Promise(ok => {
                window.__arrivals = {};
                const s = new EventSource('/stream');
                s.onopen = () => ok();
                s.onmessage = m => { const d = JSON.parse(m.data);
                    if (d.kind === 'event') window.__arrivals[d.event.id] = Date.now(); };
            })"""
        )
        where = "headless Chromium (EventSource on the dashboard page)"
    else:
        sse = SseClient(service.port, cookie)
        sse.ready.wait(10)
        where = "raw SSE client (no Chromium)"

    stop = threading.Event()
    telemetry_sent = [0]

    def telemetry_loop() -> None:
        interval = args.telemetry_interval / max(1, args.devices)
        i = 0
        while not stop.wait(interval):
            devices[i % len(devices)].telemetry()
            telemetry_sent[0] += 1
            i += 1

    ticker = threading.Thread(target=telemetry_loop, daemon=True)
    ticker.start()
    stop.wait(2 * args.telemetry_interval)  # settle into the steady load

    sent: dict[str, float] = {}
    stored_before = service.ingestor.events_stored
    burst_start = time.time()
    threads = [
        threading.Thread(target=lambda d=d: [d.event(sent) for _ in range(args.events)])
        for d in devices
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    n_events = args.devices * args.events
    service.ingestor.wait_for(
        lambda: service.ingestor.events_stored - stored_before >= n_events, 120
    )
    ingest_s = time.time() - burst_start

    arrivals: dict[str, float] = {}
    deadline = time.time() + 60
    while time.time() < deadline:
        if page is not None:
            arrivals = {k: v / 1000.0 for k, v in page.evaluate("window.__arrivals").items()}
        elif sse is not None:
            arrivals = dict(sse.arrivals)
        if len(arrivals) >= n_events:
            break
        stop.wait(0.2)
    stop.set()
    latencies = [(arrivals[k] - sent[k]) * 1000 for k in sent if k in arrivals]

    # ingest rate: a backlog published at once
    before = service.ingestor.messages
    t0 = time.time()
    for i in range(args.backlog):
        devices[i % len(devices)].telemetry()
    service.ingestor.wait_for(lambda: service.ingestor.messages - before >= args.backlog, 120)
    backlog_s = time.time() - t0
    taken = service.ingestor.messages - before

    print(
        f"caregiver benchmark ({args.engine}): {args.devices} devices, "
        f"telemetry every {args.telemetry_interval:g} s each "
        f"({telemetry_sent[0]} sent during the run)"
    )
    print(
        f"  event burst: {n_events} events with 3 s IMU windows stored in {ingest_s:.2f} s "
        f"({n_events / ingest_s:.0f} events/s)"
    )
    print(f"  event-to-browser latency, measured in {where}:")
    if latencies:
        print(
            f"    received {len(latencies)}/{n_events}; p50 {statistics.median(latencies):.0f} ms, "
            f"p99 {percentile(latencies, 99):.0f} ms, max {max(latencies):.0f} ms "
            f"(target p99 < 1000 ms)"
        )
    else:
        print("    no events arrived")
    print(
        f"  ingest rate: {taken}/{args.backlog} telemetry messages in {backlog_s:.2f} s "
        f"({taken / backlog_s:.0f} messages/s)"
    )

    if browser_ctx is not None:
        browser_ctx.close()
    if sse is not None:
        sse.close()
    for d in devices:
        d.close()
    service.stop()
    broker.cleanup()
    if cluster is not None:
        cluster.cleanup()
    ok = bool(latencies) and len(latencies) == n_events and percentile(latencies, 99) < 1000
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
