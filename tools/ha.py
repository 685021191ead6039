"""``retroguard ha``: the device as Home Assistant sees it, and how to take it out again.

* ``retroguard ha show`` prints the discovery message the device announces
  (pretty JSON), to read or to compare with what Home Assistant shows;
* ``retroguard ha remove`` publishes the empty retained discovery message, so
  Home Assistant removes the device and its entities instead of keeping a
  ghost; ``--all`` also clears the device's retained topics on the broker
  (availability, state, incident, progress, walkers) for a device that is gone for good.

A running monitor with ``mqtt.discovery = false`` withdraws itself the same
way at its next connect; ``remove`` is for a device that no longer runs. It
connects with the device's own account (only that account may write its
discovery topic): on a broker with ``use_username_as_clientid`` a monitor
still running under that account is disconnected for a moment.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.mqttlink import MqttSetupError, make_client
from core.protocol.discovery import REMOVE_PAYLOAD
from core.protocol.topics import Topics, discovery_topic
from firmware.config import Config, load_config
from firmware.mqtt.discovery import discovery_payload

WAIT_S = 10.0
"""How long ``remove`` waits for the broker to connect and acknowledge."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``ha`` on an ``argparse`` subparsers object and return its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "ha",
        help="Home Assistant: print the discovery message, or remove the device from HA",
        description="The device as Home Assistant's MQTT discovery sees it (docs/mqtt.md).",
    )
    parser.add_argument(
        "action",
        choices=("show", "remove"),
        help="show: print the discovery message; remove: withdraw the device from Home Assistant",
    )
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path("/etc/retroguard/config.toml"),
        help="the monitor's TOML config (default: /etc/retroguard/config.toml)",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="remove: also clear the device's retained availability, state, incident, progress "
        "and walkers",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    topics = Topics(config.mqtt.topic_prefix, config.device.id)
    if args.action == "show":
        message = discovery_payload(
            topics,
            config.device.name,
            config.mqtt.dashboard_url,
            telemetry=config.mqtt.telemetry_interval_s > 0,
            caregiver=config.mqtt.expects_caregiver(),
        )
        print(f"# {discovery_topic(config.mqtt.discovery_prefix, config.device.id)} (retained)")
        print(json.dumps(json.loads(message), indent=2, sort_keys=True))
        return 0
    return remove(config, everything=args.all)


def retained_to_clear(config: Config, *, everything: bool) -> list[str]:
    """The retained topics ``remove`` empties: discovery, and with ``everything`` the rest."""
    topics = Topics(config.mqtt.topic_prefix, config.device.id)
    cleared = [discovery_topic(config.mqtt.discovery_prefix, config.device.id)]
    if everything:
        cleared += [topics.availability, topics.state, topics.incident, topics.progress]
        cleared += [topics.walkers, topics.caregiver]
    return cleared


def remove(config: Config, *, everything: bool, out: Any = sys.stdout) -> int:
    """Publish empty retained messages; 0 when the broker acknowledged every one."""
    if not config.mqtt.host:
        print("mqtt.host is empty: there is no broker to remove the device from", file=sys.stderr)
        return 2
    try:
        client = make_client(config.mqtt.link(), config.mqtt.client_id or "")
    except MqttSetupError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    connected = threading.Event()
    refused: list[str] = []
    denied: dict[int, str] = {}

    def on_connect(client: Any, userdata: Any, flags: Any, reason_code: Any, props: Any) -> None:
        if reason_code.is_failure:
            refused.append(str(reason_code))
        connected.set()

    def on_publish(client: Any, userdata: Any, mid: int, reason_code: Any, props: Any) -> None:
        if reason_code.is_failure:  # MQTT 5: e.g. the ACL does not let this account write it
            denied[mid] = str(reason_code)

    client.on_connect = on_connect
    client.on_publish = on_publish
    try:
        client.connect(config.mqtt.host, config.mqtt.port, keepalive=config.mqtt.keepalive_s)
    except OSError as exc:
        print(f"cannot reach broker {config.mqtt.host}:{config.mqtt.port}: {exc}", file=sys.stderr)
        return 1
    client.loop_start()
    try:
        if not connected.wait(WAIT_S) or refused:
            why = refused[0] if refused else "no answer"
            print(f"broker {config.mqtt.host}:{config.mqtt.port}: {why}", file=sys.stderr)
            return 1
        for topic in retained_to_clear(config, everything=everything):
            info = client.publish(topic, REMOVE_PAYLOAD, qos=1, retain=True)
            info.wait_for_publish(WAIT_S)
            if not info.is_published() or info.mid in denied:
                why = denied.get(info.mid, "no acknowledgement")
                print(f"{topic}: the broker did not take it: {why}", file=sys.stderr)
                return 1
            print(f"cleared {topic}", file=out)
    finally:
        client.disconnect()
        client.loop_stop()
    return 0
