"""What every Home Assistant MQTT discovery message of RetroGuard says alike: who announced it
(the ``o`` origin: the package and its version) and the payload that removes a device.

Two announcers use it, neither importing the other: each treadmill
(:mod:`firmware.mqtt.discovery`) and each caregiver service instance
(:mod:`caregiver.health_discovery`)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    SW_VERSION = _version("retroguard")
except PackageNotFoundError:  # pragma: no cover - not installed (running from a source tree)
    SW_VERSION = "0.0.0"

ORIGIN_URL = "https://github.com/retroguard/retroguard"

ORIGIN: dict[str, str] = {"name": "retroguard", "sw": SW_VERSION, "url": ORIGIN_URL}
"""A discovery message's ``o``: Home Assistant shows and logs who announced the device."""

REMOVE_PAYLOAD = ""
"""The retained discovery payload that makes Home Assistant remove the device."""
