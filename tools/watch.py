"""``retroguard watch``: a caregiver's terminal view of one or all devices.

Subscribes (QoS 1) to availability, state, events and command replies and
prints one line each, newest last. Events are de-duplicated by id, because
delivery is at least once. Stops on Ctrl-C, or after ``--count`` events.
The ``watching ...`` line is printed once the subscription is confirmed, so a
script (or a test) knows from then on nothing will be missed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
from typing import Any, TextIO

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from core.errors import ConfigError
from core.mqttlink import MqttSetupError, make_client
from firmware.config import MqttConfig

_SEVERITY_MARK = {"critical": "!!", "warning": "! ", "info": "  "}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``watch`` on an ``argparse`` subparsers object and return its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "watch",
        help="print events from the MQTT broker as a caregiver would see them",
        description="Subscribe to RetroGuard devices on an MQTT broker and print their "
        "availability, state changes, events and command replies.",
    )
    parser.add_argument("--config", help="read [mqtt] from this config file")
    parser.add_argument("--host", help="broker host (default: [mqtt] host, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="broker port (default: [mqtt] port)")
    parser.add_argument("--username", help="broker user (default: [mqtt] username)")
    parser.add_argument(
        "--password-file", help="file whose first line is the password (never on the command line)"
    )
    parser.add_argument("--tls", action="store_true", default=None, help="connect with TLS")
    parser.add_argument("--ca-file", help="CA certificate (PEM) for TLS")
    parser.add_argument("--device", default="+", help="device id to watch (default: all)")
    parser.add_argument("--prefix", help="topic prefix (default: [mqtt] topic_prefix)")
    parser.add_argument("--count", type=int, default=0, help="exit after N events (0: never)")
    parser.add_argument("--json", action="store_true", help="print raw JSON payloads")
    parser.set_defaults(func=run)
    return parser


def _settings(args: argparse.Namespace) -> MqttConfig:
    config = MqttConfig()
    if args.config:
        from firmware.config import load_config

        config = load_config(args.config).mqtt
    changes: dict[str, Any] = {"client_id": ""}
    for attr, key in (
        ("host", "host"),
        ("port", "port"),
        ("username", "username"),
        ("password_file", "password_file"),
        ("tls", "tls"),
        ("ca_file", "ca_file"),
        ("prefix", "topic_prefix"),
    ):
        value = getattr(args, attr, None)
        if value is not None:
            changes[key] = value
    if changes.get("password_file"):
        changes["password"] = ""
    config = dataclasses.replace(config, **changes)
    if not config.host:
        config = dataclasses.replace(config, host="127.0.0.1")
    return config


def format_message(topic: str, payload: bytes) -> str | None:
    """One display line for a message, or None for a message not worth a line."""
    parts = topic.split("/")
    if len(parts) < 3:
        return None
    device, kind = parts[1], parts[2]
    text = payload.decode("utf-8", errors="replace")
    if kind == "availability":
        return f"{'':24} {device:<14} {'--':2} {text.upper()}"
    try:
        data = json.loads(text)
    except ValueError:
        return f"{'':24} {device:<14} ?? unreadable {kind}: {text[:60]!r}"
    if not isinstance(data, dict):
        return None
    when = str(data.get("wall_time", ""))[:23].replace("T", " ")
    if kind == "event":
        mark = _SEVERITY_MARK.get(str(data.get("severity")), "  ")
        figures = " ".join(f"{k}={v:g}" for k, v in sorted(data.get("figures", {}).items()))
        window = data.get("imu_window")
        extra = f" [{len(window['rows'])} IMU samples]" if isinstance(window, dict) else ""
        line = (
            f"{when:<24} {device:<14} {mark} {str(data.get('type', '?')).upper():<11} "
            f"#{data.get('seq', '?'):<5} state={data.get('state')} {data.get('reason', '')}"
        )
        if figures:
            line += f" ({figures})"
        return line + extra + f" id={data.get('id')}"
    if kind == "state":
        return f"{when:<24} {device:<14} -> {data.get('state')}: {data.get('reason', '')}"
    if kind == "reply":
        verdict = "ok" if data.get("ok") else f"REFUSED: {data.get('error')}"
        return (
            f"{when:<24} {device:<14} <- {data.get('command')} ({data.get('request_id')}) {verdict}"
        )
    return None


class Watcher:
    """Subscribes and prints; :meth:`run` returns the exit status."""

    def __init__(
        self, config: MqttConfig, device: str, count: int, raw: bool, out: TextIO = sys.stdout
    ) -> None:
        self.config = config
        self.count = count
        self.raw = raw
        self.out = out
        base = f"{config.topic_prefix}/{device}"
        self.topics = [
            f"{base}/availability",
            f"{base}/state",
            f"{base}/event",
            f"{base}/reply",
        ]
        self.seen: set[str] = set()
        self.done = threading.Event()
        self.error: str | None = None
        self.client = make_client(config.link(), "")
        # A terminal waiting for a local broker should notice it quickly.
        self.client.reconnect_delay_set(0.5, 2)  # type: ignore[arg-type]  # paho takes floats
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self.error = f"broker refused the connection: {reason_code}"
            self.done.set()
            return
        client.subscribe([(t, 1) for t in self.topics])

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [t for t, rc in zip(self.topics, reason_codes, strict=False) if rc.is_failure]
        if refused:
            print(f"retroguard watch: not allowed to read {', '.join(refused)}", file=sys.stderr)
        print(
            f"watching {', '.join(self.topics)} on {self.config.host}:{self.config.port}",
            file=self.out,
            flush=True,
        )

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        payload = bytes(message.payload)
        is_event = message.topic.endswith("/event")
        if is_event:
            try:
                event_id = str(json.loads(payload)["id"])
            except (ValueError, KeyError, TypeError):
                event_id = ""
            if event_id in self.seen:
                return  # a QoS 1 repeat
            self.seen.add(event_id)
        if self.raw:
            line: str | None = f"{message.topic} {payload.decode('utf-8', errors='replace')}"
        else:
            line = format_message(message.topic, payload)
        if line is not None:
            print(line, file=self.out, flush=True)
        if is_event and self.count and len(self.seen) >= self.count:
            self.done.set()

    def run(self) -> int:
        self.client.connect_async(self.config.host, self.config.port, keepalive=30)
        self.client.loop_start()
        try:
            while not self.done.wait(0.5):  # a bounded wait keeps Ctrl-C responsive
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.client.disconnect()
            self.client.loop_stop()
        if self.error:
            print(f"retroguard watch: {self.error}", file=sys.stderr)
            return 1
        return 0


def run(args: argparse.Namespace) -> int:
    """Entry point for ``retroguard watch``; returns the process exit status."""
    try:
        config = _settings(args)
        watcher = Watcher(config, args.device, args.count, args.json)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except MqttSetupError as exc:
        print(f"retroguard watch: {exc}", file=sys.stderr)
        return 2
    return watcher.run()


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.watch`` (the same as ``retroguard watch``)."""
    parser = argparse.ArgumentParser(prog="retroguard")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["watch", *(argv if argv is not None else sys.argv[1:])])
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
