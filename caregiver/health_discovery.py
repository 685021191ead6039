"""Home Assistant MQTT device-based discovery for the caregiver service itself: one device,
**RetroGuard caregiver service**, with one problem sensor, **Database**, read from the
service's retained health message (:mod:`caregiver.health_topic`).

Why: the service's storage faults were said on the dashboard's banner, ``/healthz`` and the
log only, and a clinic whose staff watch Home Assistant never learned that the service had
stopped storing recordings or could not store alerts (docs/safety.md: a storage fault is
reported, never silent). The treadmills' own discovery (``firmware/mqtt/discovery.py``, which
the service may not import) is the pattern copied here: the same message shape, abbreviations
and origin, checked by the same model of Home Assistant's rules (``tests/ha_discovery.py``).

The sensor is on for anything but ``ok`` (``degraded``, ``not storing``, ``database
damaged``: :data:`core.protocol.messages.DatabaseStatus`), its attributes say which and the
parts in words. It is available while *this* instance's presence says ``online``: the
presence topic is every instance's, so an instance's sensor follows only the presences that
name it (``by``), and its Last Will greys the sensor out rather than leaving the last health
it said standing for a service that is gone. A Home Assistant that starts reads only the last
instance's retained presence: each instance says its own again when Home Assistant announces
itself (:meth:`caregiver.ingest.Ingestor._home_assistant_heard`).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from caregiver.config import CaregiverMqttConfig
from core.protocol import payloads
from core.protocol.discovery import ORIGIN, SW_VERSION
from core.protocol.topics import (
    caregiver_health_topic,
    caregiver_status_topic,
    discovery_topic,
)

DEVICE_NAME = "RetroGuard caregiver service"
SENSOR_NAME = "Database"
"""Home Assistant names the entity after the device: "RetroGuard caregiver service Database"."""


def _jinja(value: object) -> str:
    """A Python value as a Jinja literal (JSON's syntax is Jinja's for these types)."""
    return json.dumps(value)


def discovery_object_id(mqtt: CaregiverMqttConfig) -> str:
    """The discovery topic's object id: ``caregiver-<instance>``, the instance's name as the
    ACL's ``homeassistant/device/caregiver-%u/config`` names it. No treadmill can have it:
    a device id beginning ``caregiver-`` is refused (:func:`core.protocol.ids.check_device_id`),
    so this never overwrites a treadmill's discovery message."""
    return f"caregiver-{mqtt.identity}"


def health_discovery_topic(mqtt: CaregiverMqttConfig) -> str:
    return discovery_topic(mqtt.discovery_prefix, discovery_object_id(mqtt))


def availability_template(identity: str) -> str:
    """The presence's ``state`` when it names this instance, else nothing, which Home
    Assistant ignores (it compares the result with ``online`` and ``offline`` and keeps the
    availability it had: core mqtt/entity.py ``_availability_message_received``). Another
    instance's ``online`` says nothing of this one; an empty (cleared) presence is no JSON."""
    return (
        "{% if value_json is defined and value_json.get('by') == "
        + _jinja(identity)
        + " %}{{ value_json.state }}{% endif %}"
    )


HEALTH_ON = "{{ 'OFF' if value_json.status == 'ok' else 'ON' }}"
"""The Database sensor: on (a problem) for anything but ``ok``."""
HEALTH_ATTRIBUTES = (
    "{% set parts = value_json.get('parts', []) %}{{ {"
    '"status": value_json.status, '
    "\"storing_alerts\": value_json.get('storing', true), "
    "\"parts\": parts | map(attribute='part') | list, "
    "\"problems\": parts | map(attribute='said') | join('; ') if parts else none, "
    '"said_at": value_json.wall_time, '
    '"instance": value_json.by, '
    "\"message_held\": value_json.get('message_held', false)"
    "} | tojson }}"
)
"""Its attributes: ``status`` (the database in ``/healthz``'s words), ``storing_alerts``,
``parts`` (the parts' names), ``problems`` (each part in words: what cannot be used since
when, what is missing meanwhile), ``said_at``, ``instance`` and ``message_held`` (a message
whose handler fails every time is held on the connection, the others received: not the
database's, so it leaves the sensor's state alone)."""


def is_configuration_url(address: str) -> bool:
    """Whether Home Assistant takes ``address`` as a device's link (``cu``): an http(s)
    address (core helpers/config_validation.py ``configuration_url``). ``[server] public_url``
    is checked nowhere (notification links take it as written); one without its ``http://``
    ("carepc.home.lan:8080") made Home Assistant refuse the whole discovery message, and the
    Database sensor never appeared: such an address is left out, the sensor kept. So is one
    no URL parser reads (brackets around no IPv6 address, "http://[carepc.home.lan]"), which
    Home Assistant refuses too: read on paho's thread once subscribed, its ValueError ended
    that thread, and no fall came in."""
    try:
        parts = urlsplit(address)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def health_discovery_payload(
    mqtt: CaregiverMqttConfig, dashboard_url: str = "", *, several: bool = False
) -> str:
    """The retained discovery message of this instance's device and its Database sensor.
    ``several``: instances share the devices (``shared_group``): each device is named after
    its instance, or Home Assistant would list several alike."""
    uid = f"retroguard-caregiver-{mqtt.identity}"  # a treadmill's are retroguard_<id>: never this
    health = caregiver_health_topic(mqtt.topic_prefix, mqtt.identity)
    device: dict[str, Any] = {
        "ids": [uid],
        "name": f"{DEVICE_NAME} ({mqtt.identity})" if several else DEVICE_NAME,
        "mf": "RetroGuard",
        "mdl": "Caregiver service",
        "sw": SW_VERSION,
    }
    if is_configuration_url(dashboard_url):
        device["cu"] = dashboard_url
    database = {
        "p": "binary_sensor",
        "name": SENSOR_NAME,
        "uniq_id": f"{uid}_database",
        "dev_cla": "problem",
        "stat_t": health,
        "val_tpl": HEALTH_ON,
        "json_attr_t": health,
        "json_attr_tpl": HEALTH_ATTRIBUTES,
        "ic": "mdi:database-alert",
    }
    return payloads.dumps(
        {
            "dev": device,
            "o": ORIGIN,
            "avty": [
                {
                    "t": caregiver_status_topic(mqtt.topic_prefix),
                    "val_tpl": availability_template(mqtt.identity),
                }
            ],
            "qos": 1,
            "cmps": {f"{uid}_database": database},
        }
    )
