"""Home Assistant MQTT device-based discovery.

One retained message on ``homeassistant/device/<id>/config`` describes the
device (``dev``), who announced it (``o``) and its entities (``cmps``): the
safety state, the last event, the outbox depth, a storage fault (on while the
device's disk refuses writes: alerts are kept in memory and no new walk can be
armed), and an acknowledge button.
Availability is the device's own retained ``online``/``offline`` topic, so
Home Assistant greys everything out when the Last Will fires. The message is
published on every connect and again whenever Home Assistant announces
itself (``homeassistant/status`` = ``online``), since HA forgets non-retained
discovery when it restarts.
"""

from __future__ import annotations

from typing import Any

from core.protocol import payloads
from core.protocol.commands import LATEST, Ack, CommandName, encode_command
from core.protocol.topics import Topics

try:
    from importlib.metadata import version as _version

    SW_VERSION = _version("retroguard")
except Exception:  # pragma: no cover - not installed (running from a source tree)
    SW_VERSION = "0.0.0"

ORIGIN_URL = "https://github.com/retroguard/retroguard"

ACK_PRESS_PAYLOAD = encode_command(Ack(LATEST, "home-assistant"))
"""What the HA button sends on ``.../cmd/ack``: acknowledge the newest open alert."""


def discovery_payload(topics: Topics, device_name: str) -> str:
    uid = f"retroguard_{topics.device_id}"
    components: dict[str, dict[str, Any]] = {
        f"{uid}_state": {
            "p": "sensor",
            "name": "Safety state",
            "uniq_id": f"{uid}_state",
            "stat_t": topics.state,
            "val_tpl": "{{ value_json.state }}",
            "json_attr_t": topics.state,
            "json_attr_tpl": "{{ {'reason': value_json.reason, 'since': value_json.wall_time}"
            " | tojson }}",
            "ic": "mdi:shield-check",
        },
        f"{uid}_last_event": {
            "p": "sensor",
            "name": "Last event",
            "uniq_id": f"{uid}_last_event",
            "stat_t": topics.event,
            "val_tpl": "{{ value_json.type }}",
            "json_attr_t": topics.event,
            "json_attr_tpl": "{{ {'id': value_json.id, 'seq': value_json.seq,"
            " 'severity': value_json.severity, 'reason': value_json.reason,"
            " 'state': value_json.state, 'time': value_json.wall_time} | tojson }}",
            "ic": "mdi:human-handsdown",
        },
        f"{uid}_outbox": {
            "p": "sensor",
            "name": "Outbox depth",
            "uniq_id": f"{uid}_outbox",
            "stat_t": topics.telemetry,
            "val_tpl": "{{ value_json.outbox_depth }}",
            "ent_cat": "diagnostic",
            "stat_cla": "measurement",
        },
        f"{uid}_storage": {
            "p": "binary_sensor",
            "name": "Storage fault",
            "uniq_id": f"{uid}_storage",
            "dev_cla": "problem",
            "stat_t": topics.telemetry,
            "val_tpl": "{{ 'OFF' if value_json.storage_ok | default(true) else 'ON' }}",
            "ent_cat": "diagnostic",
        },
        f"{uid}_ack": {
            "p": "button",
            "name": "Acknowledge alert",
            "uniq_id": f"{uid}_ack",
            "cmd_t": topics.command(CommandName.ACK),
            "pl_prs": ACK_PRESS_PAYLOAD,
            "ic": "mdi:check-circle",
        },
    }
    return payloads.dumps(
        {
            "dev": {
                "ids": [uid],
                "name": device_name,
                "mf": "RetroGuard",
                "mdl": "Backward treadmill fall monitor",
                "sw": SW_VERSION,
            },
            "o": {"name": "retroguard", "sw": SW_VERSION, "url": ORIGIN_URL},
            "avty_t": topics.availability,
            "pl_avail": payloads.ONLINE,
            "pl_not_avail": payloads.OFFLINE,
            "qos": 1,
            "cmps": components,
        }
    )
