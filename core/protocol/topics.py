"""MQTT topic names, in one place so firmware, docs, ACL and tests agree.

Every device owns one subtree, ``<prefix>/<device_id>/#``: the broker ACL
(``docs/mqtt/acl``) confines a device account to exactly that subtree, so
a device id must be a single, wildcard-free topic level.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DEVICE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

COMMANDS = ("ack", "silence", "self_test", "ping")
"""Every command name a device accepts on ``.../cmd/<name>``. None of them can arm."""


def check_device_id(device_id: str) -> str:
    """Return ``device_id`` if it can be one topic level (and an HA object id), else raise."""
    if not _DEVICE_ID.match(device_id):
        raise ValueError(
            f"device id {device_id!r} cannot be used in MQTT topics: use 1-64 letters, digits, "
            "'_', '.' or '-' (no '/', '+', '#' or spaces)"
        )
    return device_id


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one device."""

    prefix: str
    device_id: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device_id}"

    @property
    def availability(self) -> str:
        """Retained ``online`` / ``offline``; ``offline`` is also the Last Will."""
        return f"{self.base}/availability"

    @property
    def state(self) -> str:
        """Retained safety state (ARMED, TRIPPED, FAULT, ...) and why."""
        return f"{self.base}/state"

    @property
    def event(self) -> str:
        """QoS 1 event stream (not retained: each event is delivered, not overwritten)."""
        return f"{self.base}/event"

    @property
    def telemetry(self) -> str:
        return f"{self.base}/telemetry"

    @property
    def session(self) -> str:
        """QoS 1 summary of each guided session when it ends (not retained)."""
        return f"{self.base}/session"

    @property
    def command_filter(self) -> str:
        return f"{self.base}/cmd/+"

    def command(self, name: str) -> str:
        return f"{self.base}/cmd/{name}"

    @property
    def reply(self) -> str:
        """Where every command's reply goes (matched to the request by its ``id``)."""
        return f"{self.base}/reply"

    def command_name(self, topic: str) -> str | None:
        """The ``<name>`` of a ``.../cmd/<name>`` topic of this device, else None."""
        head = f"{self.base}/cmd/"
        if topic.startswith(head) and "/" not in topic[len(head) :]:
            return topic[len(head) :]
        return None


def discovery_topic(discovery_prefix: str, device_id: str) -> str:
    """Home Assistant device-based discovery topic."""
    return f"{discovery_prefix}/device/{device_id}/config"


def ha_status_topic(discovery_prefix: str) -> str:
    """Home Assistant announces ``online`` here when it (re)starts."""
    return f"{discovery_prefix}/status"
