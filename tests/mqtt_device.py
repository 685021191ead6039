"""A device process for the SIGKILL and Last Will tests (run as a script, not collected).

Starts an :class:`MqttReporter` on ``--db``, queues ``--falls`` fall events
through its sink, prints one JSON line ``{"queued": [ids...]}``, then (with
``--drain``) waits until the outbox is empty and prints ``{"drained": true}``,
and finally blocks on stdin until it is killed or stdin closes.
"""

from __future__ import annotations

import argparse
import json
import sys

from core.protocol.events import Event, EventType
from firmware.config import MqttConfig
from firmware.mqtt import MqttReporter


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--device", default="tm-kill")
    parser.add_argument("--falls", type=int, default=0)
    parser.add_argument("--drain", action="store_true")
    parser.add_argument("--online", action="store_true", help="print once connected and ready")
    args = parser.parse_args()
    config = MqttConfig(
        host="127.0.0.1",
        port=args.port,
        reconnect_min_s=0.05,
        reconnect_max_s=0.5,
        telemetry_interval_s=0.0,
        discovery=False,
    )
    reporter = MqttReporter(
        config, device_id=args.device, device_name="Kill test", database=args.db
    )
    reporter.start()
    ids = []
    for i in range(args.falls):
        event = Event.now(EventType.FALL, args.device, float(i), "TRIPPED", f"fall {i}")
        reporter.sink.handle(event)  # committed (synchronous=FULL) when this returns
        ids.append(event.id)
    print(json.dumps({"queued": ids}), flush=True)
    if args.online:
        print(json.dumps({"online": reporter.wait_until(lambda s: s.ready, 30.0)}), flush=True)
    if args.drain:
        print(json.dumps({"drained": reporter.wait_drained(30.0)}), flush=True)
    sys.stdin.read()
    reporter.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
