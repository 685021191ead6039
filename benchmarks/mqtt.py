"""MQTT figures on loopback against a real Mosquitto.

1. Detection-to-subscriber latency: time from handing an event to the
   courier link (what the real-time loop does on a detection) to a caregiver
   client receiving it — through the socket to the courier process, its
   SQLite outbox commit (synchronous=FULL), the publisher thread, paho and
   the broker. Target: p99 < 50 ms.
2. Backlog drain: 10,000 events queued during an outage, then the broker
   comes back; events/s until the outbox is empty. Target: >= 2,000/s.

    .venv/bin/python benchmarks/mqtt.py [--events 500] [--backlog 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from core.protocol.events import Event, EventType
from firmware.config import Config, DeviceConfig, MqttConfig, StorageConfig
from firmware.link import messages
from firmware.link.endpoint import CourierLink
from firmware.link.supervisor import CourierSupervisor, ProcessCourier
from firmware.mqtt import MqttReporter
from tools.broker import Mosquitto


class Receiver:
    def __init__(self, broker: Mosquitto, topic: str) -> None:
        self.arrivals: dict[str, float] = {}
        self.cond = threading.Condition()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        event_id = json.loads(msg.payload)["id"]
        with self.cond:
            self.arrivals.setdefault(event_id, now)
            self.cond.notify_all()

    def wait_count(self, n: int, timeout: float = 120) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.arrivals) >= n, timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(broker: Mosquitto, db: Path, n: int) -> None:
    mqtt_config = MqttConfig(
        host=broker.host, port=broker.port, telemetry_interval_s=0, discovery=False
    )
    config = Config(
        device=DeviceConfig(id="bench"), storage=StorageConfig(str(db)), mqtt=mqtt_config
    )
    link = CourierLink(time.monotonic)
    link.hello(messages.encode(messages.Hello(config, os.getpid())))
    supervisor = CourierSupervisor(link, ProcessCourier)
    supervisor.start()
    receiver = Receiver(broker, "retroguard/bench/event")
    warm = Event.now(EventType.START, "bench", 0.0, "STARTING", "warm-up")
    link.submit(warm)
    pump(link, receiver, 1)
    samples: list[float] = []
    for i in range(n):
        event = Event.now(EventType.FALL, "bench", float(i), "TRIPPED", "bench fall")
        t0 = time.perf_counter()
        link.submit(event)
        pump(link, receiver, i + 2)
        samples.append((receiver.arrivals[event.id] - t0) * 1000)
    link.goodbye("benchmark over")
    link.close()
    supervisor.stop()
    receiver.close()
    print(
        f"latency detection->subscriber over {n} events (one at a time, loopback, through the "
        f"courier process): p50 {pct(samples, 0.5):.2f} ms, p99 {pct(samples, 0.99):.2f} ms, "
        f"max {max(samples):.2f} ms, mean {statistics.fmean(samples):.2f} ms"
    )


def pump(link: CourierLink, receiver: Receiver, count: int) -> None:
    """Poll the link every loop period (5 ms at 200 Hz) until ``count`` events arrived."""
    while not receiver.wait_count(count, timeout=0.005):
        link.poll()


def drain(broker: Mosquitto, db: Path, n: int) -> None:
    config = MqttConfig(
        host=broker.host,
        port=broker.port,
        telemetry_interval_s=0,
        discovery=False,
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
        outbox_max_rows=n + 100,
    )
    broker.stop()  # the outage
    reporter = MqttReporter(config, device_id="bench", device_name="Bench", database=db)
    t_fill = time.perf_counter()
    for i in range(n):
        reporter.outbox.enqueue_event(
            Event.now(EventType.FALL, "bench", float(i), "TRIPPED", "backlog")
        )
    fill_s = time.perf_counter() - t_fill
    broker.start()
    receiver = Receiver(broker, "retroguard/bench/event")
    t0 = time.perf_counter()
    reporter.start()
    assert reporter.wait_drained(300), reporter.status
    t_acked = time.perf_counter()
    assert receiver.wait_count(n)
    t_received = max(receiver.arrivals.values())
    reporter.close()
    receiver.close()
    print(
        f"backlog of {n} events (queued in {fill_s:.1f} s, one fsync'd transaction each): "
        f"drained (all PUBACKs, rows deleted) in {t_acked - t0:.2f} s = "
        f"{n / (t_acked - t0):.0f} events/s; all received by the subscriber in "
        f"{t_received - t0:.2f} s = {n / (t_received - t0):.0f} events/s "
        "(includes connect and reconnect backoff)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--backlog", type=int, default=10000)
    parser.add_argument("--dir", help="directory for the database (default: a temp dir)")
    args = parser.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="retroguard-bench-"))
    print(f"database directory: {base}")
    with Mosquitto(persistence=False) as broker:
        latency(broker, base / "latency.db", args.events)
        drain(broker, base / "drain.db", args.backlog)


if __name__ == "__main__":
    main()
