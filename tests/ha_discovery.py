"""Home Assistant's MQTT discovery rules, as a checker, and a small model of what HA does with them.

Not a test module: ``tests/test_ha_discovery.py`` uses it. Every rule says
where it comes from. "core" is home-assistant/core at 2025-2026 (the
version with device-based discovery and ``probatio`` schemas); paths are
under ``homeassistant/components/``. "docs" is home-assistant.io
(``/integrations/mqtt/``, ``/integrations/device_trigger.mqtt/``,
``/integrations/event.mqtt/``).

What Home Assistant does with a device discovery message, in order, and what
this module checks at each step:

1. the topic must match ``<prefix>/device/<object_id>/config`` with
   ``object_id`` in ``[a-zA-Z0-9_-]`` (core mqtt/discovery.py, TOPIC_MATCHER);
2. an empty payload removes every component of the device (core
   mqtt/discovery.py, ``_parse_device_payload`` / ``_generate_device_config``);
3. abbreviations are expanded at the top level, in ``o``, ``dev``, each
   availability entry and each component (core mqtt/discovery.py,
   ``_replace_all_abbreviations``; the tables: core mqtt/abbreviations.py and
   docs "Supported abbreviations");
4. the whole is checked by DEVICE_DISCOVERY_SCHEMA: ``device``,
   ``components`` and ``origin`` required, availability options, shared
   ``state_topic``/``command_topic``/``qos``/``encoding``, nothing else
   (core mqtt/schemas.py); a device needs an identifier (same file,
   ``validate_device_has_at_least_one_identifier``); ``configuration_url``
   is a web address (core helpers/config_validation.py ``configuration_url``);
   the origin needs a name (MQTT_ORIGIN_INFO_SCHEMA);
5. each component needs a ``platform`` of SUPPORTED_COMPONENTS and, for an
   entity platform, a ``unique_id`` (core mqtt/schemas.py
   ``check_unique_id``, mqtt/const.py ENTITY_PLATFORMS); a component with
   only its platform is a removal and nothing else is checked;
6. shared options are copied into each component that does not set them
   (core mqtt/discovery.py ``_merge_common_device_options``, SHARED_OPTIONS);
7. each platform's DISCOVERY_SCHEMA checks the component: required keys and
   value sets below, one table per platform. Home Assistant *drops* keys it
   does not know (``extra=REMOVE_EXTRA``) — a typo silently disables a
   setting — so here an unknown key is an error.

Templates are rendered with Jinja's sandbox as Home Assistant does
(``value`` is the payload text, ``value_json`` the parsed JSON; core
helpers/template.py ``async_render_with_possible_json_value``), with
StrictUndefined: stricter than Home Assistant, which logs and renders an
undefined value empty.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jinja2
import jinja2.sandbox
import jsonschema

# --------------------------------------------------------------------------- tables

TOPIC_MATCHER = re.compile(
    r"(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config"
)
"""core mqtt/discovery.py: what follows ``<discovery_prefix>/``."""

ABBREVIATIONS = {
    "atype": "automation_type",
    "avty": "availability",
    "avty_mode": "availability_mode",
    "avty_t": "availability_topic",
    "avty_tpl": "availability_template",
    "cmd_t": "command_topic",
    "cmd_tpl": "command_template",
    "cmps": "components",
    "dev": "device",
    "dev_cla": "device_class",
    "e": "encoding",
    "en": "enabled_by_default",
    "ent_cat": "entity_category",
    "ent_pic": "entity_picture",
    "evt_typ": "event_types",
    "exp_aft": "expire_after",
    "frc_upd": "force_update",
    "ic": "icon",
    "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template",
    "name": "name",
    "o": "origin",
    "off_dly": "off_delay",
    "ops": "options",
    "p": "platform",
    "pl": "payload",
    "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available",
    "pl_off": "payload_off",
    "pl_on": "payload_on",
    "pl_prs": "payload_press",
    "ret": "retain",
    "stat_cla": "state_class",
    "stat_t": "state_topic",
    "stype": "subtype",
    "sug_dsp_prc": "suggested_display_precision",
    "t": "topic",
    "uniq_id": "unique_id",
    "unit_of_meas": "unit_of_measurement",
    "val_tpl": "value_template",
}
"""core mqtt/abbreviations.py ABBREVIATIONS (the entries this project may use; an abbreviation
missing here is rejected as unknown, so a guess is never accepted). ``p``, ``cmps``, ``o``,
``evt_typ`` came with device discovery and the event platform: docs "Supported abbreviations"."""
DEVICE_ABBREVIATIONS = {
    "cns": "connections",
    "cu": "configuration_url",
    "ids": "identifiers",
    "name": "name",
    "mf": "manufacturer",
    "mdl": "model",
    "mdl_id": "model_id",
    "hw": "hw_version",
    "sw": "sw_version",
    "sa": "suggested_area",
    "sn": "serial_number",
}
"""core mqtt/abbreviations.py DEVICE_ABBREVIATIONS."""
ORIGIN_ABBREVIATIONS = {"name": "name", "sw": "sw_version", "url": "support_url"}
"""core mqtt/abbreviations.py ORIGIN_ABBREVIATIONS."""

SUPPORTED_COMPONENTS = frozenset(
    {
        "alarm_control_panel",
        "binary_sensor",
        "button",
        "camera",
        "climate",
        "cover",
        "date",
        "datetime",
        "device_automation",
        "device_tracker",
        "event",
        "fan",
        "humidifier",
        "image",
        "lawn_mower",
        "light",
        "lock",
        "notify",
        "number",
        "scene",
        "siren",
        "select",
        "sensor",
        "switch",
        "tag",
        "text",
        "time",
        "update",
        "vacuum",
        "valve",
        "water_heater",
    }
)
"""core mqtt/const.py SUPPORTED_COMPONENTS."""
ENTITY_PLATFORMS = SUPPORTED_COMPONENTS - {"device_automation", "tag"}
"""core mqtt/const.py ENTITY_PLATFORMS: these need a unique_id in a device discovery."""

SHARED_OPTIONS = (
    "availability",
    "availability_mode",
    "availability_template",
    "availability_topic",
    "command_topic",
    "encoding",
    "message_expiry_interval",
    "payload_available",
    "payload_not_available",
    "state_topic",
    "qos",
)
"""core mqtt/schemas.py SHARED_OPTIONS: copied into each component that does not set them."""

BINARY_SENSOR_DEVICE_CLASSES = frozenset(
    {
        "battery",
        "battery_charging",
        "carbon_monoxide",
        "cold",
        "connectivity",
        "door",
        "garage_door",
        "gas",
        "heat",
        "light",
        "lock",
        "moisture",
        "motion",
        "moving",
        "occupancy",
        "opening",
        "plug",
        "power",
        "presence",
        "problem",
        "running",
        "safety",
        "smoke",
        "sound",
        "tamper",
        "update",
        "vibration",
        "window",
    }
)
"""core binary_sensor/__init__.py BinarySensorDeviceClass."""
SENSOR_DEVICE_CLASSES = frozenset(
    {
        "absolute_humidity",
        "apparent_power",
        "aqi",
        "area",
        "atmospheric_pressure",
        "battery",
        "blood_glucose_concentration",
        "carbon_dioxide",
        "carbon_monoxide",
        "conductivity",
        "current",
        "data_rate",
        "data_size",
        "date",
        "distance",
        "duration",
        "energy",
        "energy_distance",
        "energy_storage",
        "enum",
        "frequency",
        "gas",
        "humidity",
        "illuminance",
        "irradiance",
        "moisture",
        "monetary",
        "nitrogen_dioxide",
        "nitrogen_monoxide",
        "nitrous_oxide",
        "ozone",
        "ph",
        "pm1",
        "pm10",
        "pm25",
        "power",
        "power_factor",
        "precipitation",
        "precipitation_intensity",
        "pressure",
        "reactive_energy",
        "reactive_power",
        "signal_strength",
        "sound_pressure",
        "speed",
        "sulphur_dioxide",
        "temperature",
        "timestamp",
        "volatile_organic_compounds",
        "volatile_organic_compounds_parts",
        "voltage",
        "volume",
        "volume_flow_rate",
        "volume_storage",
        "water",
        "weight",
        "wind_direction",
        "wind_speed",
    }
)
"""core sensor/const.py SensorDeviceClass."""
STATE_CLASSES = frozenset({"measurement", "measurement_angle", "total", "total_increasing"})
"""core sensor/const.py SensorStateClass."""
DURATION_UNITS = frozenset({"d", "h", "min", "s", "ms", "μs"})
"""core sensor/const.py DEVICE_CLASS_UNITS[DURATION]."""
NO_STATE_CLASS = frozenset({"enum", "date", "timestamp"})
"""core sensor/const.py DEVICE_CLASS_STATE_CLASSES: these take no state class (empty sets)."""
BUTTON_DEVICE_CLASSES = frozenset({"identify", "restart", "update"})
"""core button/__init__.py ButtonDeviceClass."""
EVENT_DEVICE_CLASSES = frozenset({"button", "doorbell", "motion"})
"""core event/__init__.py EventDeviceClass."""
ENTITY_CATEGORIES = frozenset({"config", "diagnostic"})
"""core helpers/entity.py ENTITY_CATEGORIES_SCHEMA."""
MAX_STATE_LENGTH = 255
"""core const.py MAX_LENGTH_STATE_STATE; longer sensor states are refused (mqtt/util.py
``check_state_too_long``)."""
PAYLOAD_NONE = "None"
"""core mqtt/const.py: a template rendering this sets the state to unknown."""
MQTT_ATTRIBUTES_BLOCKED = frozenset(
    {
        "assumed_state",
        "available",
        "device_class",
        "device_info",
        "entity_category",
        "entity_picture",
        "entity_registry_enabled_default",
        "extra_state_attributes",
        "force_update",
        "icon",
        "friendly_name",
        "should_poll",
        "state",
        "supported_features",
        "unique_id",
        "unit_of_measurement",
    }
)
"""core mqtt/entity.py (mqtt/mixins.py before 2024.6) MQTT_ATTRIBUTES_BLOCKED: keys that
``MqttAttributesMixin._attributes_message_received`` silently filters out of what a
``json_attributes_template`` renders — the attribute simply never appears."""
ATTRIBUTES_BLOCKED_BY_PLATFORM: Mapping[str, frozenset[str]] = {
    "sensor": frozenset({"last_reset", "state_class"}),
    "event": frozenset({"event_type", "event_types"}),
}
"""``_attributes_extra_blocked`` of each platform: core mqtt/sensor.py
MQTT_SENSOR_ATTRIBUTES_BLOCKED, core mqtt/event.py MQTT_EVENT_ATTRIBUTES_BLOCKED (binary
sensors and buttons block nothing more)."""

# ------------------------------------------------------------ JSON Schemas, full key names

_TOPIC = {"type": "string", "minLength": 1, "pattern": r"^[^#+\x00]*$"}
"""core mqtt/util.py valid_publish_topic / valid_subscribe_topic (our topics have no
wildcards either; UTF-8, no NUL)."""
_TEMPLATE = {"type": "string", "minLength": 1}
_AVAILABILITY = {
    "availability": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["topic"],
            "properties": {
                "topic": _TOPIC,
                "payload_available": {"type": "string"},
                "payload_not_available": {"type": "string"},
                "value_template": _TEMPLATE,
            },
            "additionalProperties": False,
        },
    },
    "availability_mode": {"enum": ["all", "any", "latest"]},
    "availability_template": _TEMPLATE,
    "availability_topic": _TOPIC,
    "payload_available": {"type": "string"},
    "payload_not_available": {"type": "string"},
}
"""core mqtt/schemas.py _MQTT_AVAILABILITY_SCHEMA (availability_topic and availability are
exclusive: checked in code)."""
_DEVICE = {
    "type": "object",
    "properties": {
        "identifiers": {"type": "array", "items": {"type": "string"}},
        "connections": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
        },
        "manufacturer": {"type": "string"},
        "model": {"type": "string"},
        "model_id": {"type": "string"},
        "name": {"type": "string"},
        "hw_version": {"type": "string"},
        "serial_number": {"type": "string"},
        "sw_version": {"type": "string"},
        "via_device": {"type": "string"},
        "suggested_area": {"type": "string"},
        "configuration_url": {"type": "string"},
    },
    "additionalProperties": False,
}
"""core mqtt/schemas.py MQTT_ENTITY_DEVICE_INFO_SCHEMA."""
_ORIGIN = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "sw_version": {"type": "string"},
        "support_url": {"type": "string"},
    },
    "additionalProperties": False,
}
"""core mqtt/schemas.py MQTT_ORIGIN_INFO_SCHEMA."""
DEVICE_DISCOVERY_SCHEMA = {
    "type": "object",
    "required": ["device", "components", "origin"],
    "properties": {
        **_AVAILABILITY,
        "device": _DEVICE,
        "components": {"type": "object", "additionalProperties": {"type": "object"}},
        "origin": _ORIGIN,
        "state_topic": _TOPIC,
        "command_topic": _TOPIC,
        "message_expiry_interval": {"type": "integer", "minimum": 0},
        "qos": {"enum": [0, 1, 2]},
        "encoding": {"type": "string"},
    },
    "additionalProperties": False,
}
"""core mqtt/schemas.py DEVICE_DISCOVERY_SCHEMA (a voluptuous Schema without extra=...:
any other top-level key makes Home Assistant refuse the whole device)."""

_BASE = {
    "platform": {"type": "string"},
    "qos": {"enum": [0, 1, 2]},
    "encoding": {"type": "string"},
}
"""core mqtt/config.py MQTT_BASE_SCHEMA (+ the platform key discovery adds)."""
_ENTITY_COMMON = {
    **_BASE,
    **_AVAILABILITY,
    "device": _DEVICE,
    "origin": _ORIGIN,
    "entity_picture": {"type": "string"},
    "enabled_by_default": {"type": "boolean"},
    "entity_category": {"enum": sorted(ENTITY_CATEGORIES)},
    "icon": {"type": "string", "pattern": r"^[a-z0-9-]+:[a-z0-9-]+$"},
    "json_attributes_topic": _TOPIC,
    "json_attributes_template": _TEMPLATE,
    "default_entity_id": {"type": "string"},
    "message_expiry_interval": {"type": "integer", "minimum": 0},
    "unique_id": {"type": "string", "minLength": 1},
    "name": {"type": ["string", "null"]},
    "command_topic": _TOPIC,
    "state_topic": _TOPIC,
}
"""core mqtt/schemas.py MQTT_ENTITY_COMMON_SCHEMA; icon: core helpers/config_validation.py
``icon`` (``prefix:name``). The shared command/state topics may reach every component."""


def _platform(required: list[str], properties: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "properties": {**_ENTITY_COMMON, **properties},
        "additionalProperties": False,
    }


PLATFORM_SCHEMAS: dict[str, dict[str, Any]] = {
    # core mqtt/binary_sensor.py PLATFORM_SCHEMA_MODERN on MQTT_RO_SCHEMA (mqtt/config.py)
    "binary_sensor": _platform(
        ["state_topic"],
        {
            "value_template": _TEMPLATE,
            "device_class": {"enum": sorted(BINARY_SENSOR_DEVICE_CLASSES)},
            "expire_after": {"type": "integer", "minimum": 0},
            "force_update": {"type": "boolean"},
            "off_delay": {"type": "integer", "minimum": 0},
            "payload_on": {"type": "string"},
            "payload_off": {"type": "string"},
        },
    ),
    # core mqtt/sensor.py _PLATFORM_SCHEMA_BASE on MQTT_RO_SCHEMA
    "sensor": _platform(
        ["state_topic"],
        {
            "value_template": _TEMPLATE,
            "device_class": {"enum": sorted(SENSOR_DEVICE_CLASSES)},
            "expire_after": {"type": "integer", "minimum": 0},
            "force_update": {"type": "boolean"},
            "last_reset_value_template": _TEMPLATE,
            "options": {"type": "array", "items": {"type": "string"}},
            "suggested_display_precision": {"type": "integer", "minimum": 0},
            "state_class": {"enum": sorted(STATE_CLASSES)},
            "unit_of_measurement": {"type": "string"},
        },
    ),
    # core mqtt/button.py PLATFORM_SCHEMA_MODERN
    "button": _platform(
        ["command_topic"],
        {
            "command_template": _TEMPLATE,
            "device_class": {"enum": sorted(BUTTON_DEVICE_CLASSES)},
            "payload_press": {"type": "string"},
            "retain": {"type": "boolean"},
        },
    ),
    # core mqtt/event.py _PLATFORM_SCHEMA_BASE on MQTT_RO_SCHEMA
    "event": _platform(
        ["state_topic", "event_types"],
        {
            "value_template": _TEMPLATE,
            "device_class": {"enum": sorted(EVENT_DEVICE_CLASSES)},
            "event_types": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        },
    ),
    # core mqtt/device_automation.py PLATFORM_SCHEMA (automation_type in ["trigger"]) and
    # mqtt/device_trigger.py TRIGGER_DISCOVERY_SCHEMA; docs device_trigger.mqtt
    "device_automation": {
        "type": "object",
        "required": ["automation_type", "topic", "type", "subtype"],
        "properties": {
            **_BASE,
            **{name: {} for name in SHARED_OPTIONS},  # merged in, then dropped by REMOVE_EXTRA
            "automation_type": {"const": "trigger"},
            "topic": _TOPIC,
            "type": {"type": "string", "minLength": 1},
            "subtype": {"type": "string", "minLength": 1},
            "payload": {"type": "string"},
            "value_template": _TEMPLATE,
            "device": _DEVICE,
            "origin": _ORIGIN,
        },
        "additionalProperties": False,
    },
}

# ------------------------------------------------------------------------------ checker


class DiscoveryError(ValueError):
    """A discovery message Home Assistant would refuse, or that would not do what we mean."""


@dataclass
class Component:
    """One component after Home Assistant's processing (full key names, shared options in)."""

    key: str
    platform: str
    config: dict[str, Any]
    removed: bool = False
    """Sent with only its platform: Home Assistant's way of removing one component."""


@dataclass
class Device:
    """What Home Assistant makes of one device discovery message."""

    device: dict[str, Any]
    origin: dict[str, Any]
    components: dict[str, Component]


def _expand(data: Any, table: Mapping[str, str], where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise DiscoveryError(f"{where}: must be a JSON object")
    expanded: dict[str, Any] = {}
    for key, value in data.items():
        full = table.get(key, key)
        if full in expanded:
            raise DiscoveryError(f"{where}: {key!r} given twice (abbreviated and in full)")
        expanded[full] = value
    return expanded


def _expand_availability(config: dict[str, Any], where: str) -> None:
    if isinstance(config.get("availability"), list):
        config["availability"] = [
            _expand(entry, ABBREVIATIONS, f"{where}.availability")
            for entry in config["availability"]
        ]


def _schema_errors(instance: Any, schema: Mapping[str, Any], where: str) -> None:
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(instance), key=lambda e: e.path
    )
    if errors:
        first = errors[0]
        path = ".".join(str(p) for p in first.absolute_path)
        raise DiscoveryError(f"{where}{'.' + path if path else ''}: {first.message}")


def _check_url(url: str, where: str) -> None:
    # core helpers/config_validation.py configuration_url: http(s) URL or homeassistant://
    if url.startswith("homeassistant://"):
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DiscoveryError(f"{where}: {url!r} is not a valid configuration URL")


_ENV = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
"""Home Assistant renders templates in an immutable sandbox (core helpers/template.py)."""


def _compile(template: str, where: str) -> jinja2.Template:
    try:
        return _ENV.from_string(template)
    except jinja2.TemplateSyntaxError as exc:  # core helpers/config_validation.py template
        raise DiscoveryError(f"{where}: template does not compile: {exc}") from None


def parse_device_discovery(
    topic: str, payload: str | bytes, prefix: str = "homeassistant"
) -> Device:
    """Check a device discovery message as Home Assistant would; return what it makes of it."""
    if not topic.startswith(prefix + "/"):
        raise DiscoveryError(f"{topic}: not under the discovery prefix {prefix!r}")
    match = TOPIC_MATCHER.fullmatch(topic[len(prefix) + 1 :])
    if match is None or match["component"] != "device":
        raise DiscoveryError(f"{topic}: Home Assistant ignores this discovery topic")
    text = payload.decode() if isinstance(payload, bytes) else payload
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise DiscoveryError(f"payload is not JSON: {exc}") from None
    data = _expand(raw, ABBREVIATIONS, "discovery")
    if "device" in data:
        data["device"] = _expand(data["device"], DEVICE_ABBREVIATIONS, "device")
    if "origin" in data:
        data["origin"] = _expand(data["origin"], ORIGIN_ABBREVIATIONS, "origin")
    _expand_availability(data, "discovery")
    _schema_errors(data, DEVICE_DISCOVERY_SCHEMA, "discovery")
    if "availability" in data and "availability_topic" in data:
        raise DiscoveryError("discovery: availability and availability_topic are exclusive")
    device = data["device"]
    if not device.get("identifiers") and not device.get("connections"):
        raise DiscoveryError("device: needs at least one of identifiers, connections")
    if "configuration_url" in device:
        _check_url(device["configuration_url"], "device.configuration_url")
    if "support_url" in data["origin"]:
        _check_url(data["origin"]["support_url"], "origin.support_url")
    components: dict[str, Component] = {}
    for key, raw_component in data["components"].items():
        where = f"components.{key}"
        config = _expand(raw_component, ABBREVIATIONS, where)
        _expand_availability(config, where)
        platform = config.get("platform")
        if platform not in SUPPORTED_COMPONENTS:
            raise DiscoveryError(f"{where}: platform {platform!r} is not supported")
        if len(config) == 1:
            # Only the platform: Home Assistant removes the component (its entity goes) and
            # checks nothing more (core mqtt/discovery.py, device discovery; mqtt/schemas.py
            # ``check_unique_id`` exempts it). Kept here so nothing receives on it.
            components[key] = Component(key, platform, config, removed=True)
            continue
        if platform in ENTITY_PLATFORMS and "unique_id" not in config:
            raise DiscoveryError(f"{where}: an entity in a device discovery needs a unique_id")
        for option in SHARED_OPTIONS:
            if option in data and option not in config:
                config[option] = copy.deepcopy(data[option])
        schema = PLATFORM_SCHEMAS.get(platform)
        if schema is None:
            raise DiscoveryError(f"{where}: no rules here for platform {platform!r}")
        _schema_errors(config, schema, where)
        if "availability" in config and "availability_topic" in config:
            raise DiscoveryError(f"{where}: availability and availability_topic are exclusive")
        _platform_rules(platform, config, where)
        for name, value in config.items():
            if name.endswith("template") and isinstance(value, str):
                _compile(value, f"{where}.{name}")
        components[key] = Component(key, platform, config)
    _device_rules(components)
    return Device(device, data["origin"], components)


def _platform_rules(platform: str, config: dict[str, Any], where: str) -> None:
    if platform == "sensor":
        # core mqtt/sensor.py validate_sensor_state_and_device_class_config
        options = config.get("options")
        device_class = config.get("device_class")
        if options is not None:
            if not options:
                raise DiscoveryError(f"{where}: an empty options list is not allowed")
            if config.get("state_class") or config.get("unit_of_measurement"):
                raise DiscoveryError(
                    f"{where}: options cannot go with state_class or unit_of_measurement"
                )
            if device_class != "enum":
                raise DiscoveryError(f"{where}: options need device_class enum")
        # core sensor/__init__.py: an enum sensor must list its options
        if device_class == "enum" and not options:
            raise DiscoveryError(f"{where}: device_class enum needs options")
        # core sensor/const.py DEVICE_CLASS_STATE_CLASSES and DEVICE_CLASS_UNITS
        if device_class in NO_STATE_CLASS and config.get("state_class"):
            raise DiscoveryError(f"{where}: device_class {device_class} takes no state_class")
        if device_class == "duration" and config.get("unit_of_measurement") not in DURATION_UNITS:
            raise DiscoveryError(f"{where}: a duration's unit must be one of {DURATION_UNITS}")
        if "last_reset_value_template" in config and config.get("state_class") != "total":
            raise DiscoveryError(f"{where}: last_reset_value_template needs state_class total")
    if platform == "event" and len(set(config["event_types"])) != len(config["event_types"]):
        raise DiscoveryError(f"{where}: event_types repeat")


def _device_rules(components: Mapping[str, Component]) -> None:
    # docs device_trigger.mqtt: "the combination of type and subtype should be unique for a
    # device"; core mqtt/schemas.py: unique ids identify entities in the registry.
    triggers: set[tuple[str, str]] = set()
    unique_ids: set[str] = set()
    for component in components.values():
        config = component.config
        if component.platform == "device_automation":
            pair = (config["type"], config["subtype"])
            if pair in triggers:
                raise DiscoveryError(f"{component.key}: trigger {pair} is not unique")
            triggers.add(pair)
        elif "unique_id" in config:
            if config["unique_id"] in unique_ids:
                raise DiscoveryError(f"{component.key}: unique_id repeats")
            unique_ids.add(config["unique_id"])


# --------------------------------------------------------------- what HA does with messages


NON_NUMERIC_DEVICE_CLASSES = frozenset({"date", "enum", "timestamp"})
"""core sensor/const.py NON_NUMERIC_DEVICE_CLASSES."""


def numeric_state_expected(config: Mapping[str, Any]) -> bool:
    """A sensor whose state must be a number (core sensor/__init__.py
    ``_numeric_state_expected``): a numeric device class, or a state class, a unit or a
    display precision without a non-numeric device class. Anything else is refused with a
    ValueError when Home Assistant writes the state, and the entity keeps its old value."""
    device_class = config.get("device_class")
    if device_class in NON_NUMERIC_DEVICE_CLASSES:
        return False
    if any(
        k in config for k in ("state_class", "unit_of_measurement", "suggested_display_precision")
    ):
        return True
    return device_class is not None


STATE_UNKNOWN = "unknown"
"""core const.py: the state of an entity that has none."""


@dataclass(frozen=True)
class This:
    """``this`` in an entity's MQTT templates: its state as Home Assistant holds it while the
    message is handled (core mqtt/models.py MqttValueTemplate; helpers/template.py
    TemplateStateFromEntityId: ``unknown`` before the first). The state is written once all
    of a message's callbacks ran, so the value and the attributes template both see the
    state from before the message."""

    state: str = STATE_UNKNOWN
    attributes: Mapping[str, Any] = field(default_factory=dict)


def render(template: str, payload: str | bytes, this: This | None = None) -> str:
    """A value template's output for ``payload``, as Home Assistant renders it."""
    text = payload.decode() if isinstance(payload, bytes) else payload
    variables: dict[str, Any] = {"value": text}
    if this is not None:  # an entity's template (a device trigger's has no ``this``)
        variables["this"] = this
    with contextlib.suppress(ValueError):  # not JSON: templates see only ``value``
        variables["value_json"] = json.loads(text)
    return _compile(template, "template").render(variables).strip()


@dataclass
class HomeAssistant:
    """A small model of Home Assistant's MQTT side for one discovered device.

    It does with each message what the platforms do (core mqtt/binary_sensor.py,
    sensor.py, event.py, device_trigger.py via mqtt/trigger.py, entity.py for
    availability and attributes) and raises :class:`DiscoveryError` where
    Home Assistant would log a warning and drop the value: a binary sensor
    value that is neither payload_on, payload_off nor empty, an enum value
    not in its options, an event type not in event_types, attributes that are
    not a JSON object, a state over 255 characters; and where it silently drops
    an attribute (:data:`MQTT_ATTRIBUTES_BLOCKED`), which nobody would notice.
    """

    discovery_prefix: str = "homeassistant"
    device: Device | None = None
    states: dict[str, str | None] = field(default_factory=dict)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    available: dict[str, bool] = field(default_factory=dict)
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    """(component key, event_type, attributes) for each event the event entity fired."""
    triggered: list[tuple[str, str]] = field(default_factory=list)
    """(type, subtype) of each device trigger that fired."""
    removed: bool = False
    retained_topics: set[str] = field(default_factory=set)
    """Topics the broker keeps a retained message on (besides those seen with the flag)."""
    _retained: dict[str, bytes] = field(default_factory=dict)

    def receive(self, topic: str, payload: bytes, retain: bool = False) -> None:
        if topic.startswith(self.discovery_prefix + "/device/"):
            if payload == b"":
                self.removed, self.device = True, None
                self.states.clear()
                self.attributes.clear()
                self.available.clear()
            else:
                self.removed = False
                self.device = parse_device_discovery(topic, payload, self.discovery_prefix)
                # The new entities subscribe: the broker hands them its retained messages.
                for kept, message in list(self._retained.items()):
                    self._to_components(kept, message, retain=True)
            return
        if retain or topic in self.retained_topics:
            self._retained[topic] = payload
        self._to_components(topic, payload, retain)

    def _to_components(self, topic: str, payload: bytes, retain: bool) -> None:
        if self.device is None:
            return
        for component in self.device.components.values():
            self._deliver(component, topic, payload, retain)

    def _deliver(self, component: Component, topic: str, payload: bytes, retain: bool) -> None:
        config, key = component.config, component.key
        if component.removed:
            return
        state = self.states.get(key)
        this = This(STATE_UNKNOWN if state is None else state, dict(self.attributes.get(key, {})))
        for entry in config.get("availability", []):
            if entry["topic"] == topic:
                # the template's output is compared with both payloads, and anything else
                # leaves the availability as it was (core mqtt/entity.py
                # ``_availability_message_received``)
                text = (
                    render(entry["value_template"], payload, this)
                    if "value_template" in entry
                    else payload.decode()
                )
                if text == entry.get("payload_available", "online"):
                    self.available[key] = True
                elif text == entry.get("payload_not_available", "offline"):
                    self.available[key] = False
        if component.platform == "device_automation":
            if config["topic"] == topic:
                value = render(config["value_template"], payload)
                if config.get("payload") in (None, value):
                    self.triggered.append((config["type"], config["subtype"]))
            return
        if config.get("json_attributes_topic") == topic:
            attrs = json.loads(render(config["json_attributes_template"], payload, this))
            if not isinstance(attrs, dict):
                raise DiscoveryError(f"{key}: attributes template gave {attrs!r}")
            dropped = set(attrs) & (
                MQTT_ATTRIBUTES_BLOCKED
                | ATTRIBUTES_BLOCKED_BY_PLATFORM.get(component.platform, frozenset())
            )
            if dropped:
                # Home Assistant filters them out without a word: an attribute nobody sees
                raise DiscoveryError(f"{key}: Home Assistant drops attributes {sorted(dropped)}")
            self.attributes[key] = attrs
        if config.get("state_topic") != topic:
            return
        value = (
            render(config["value_template"], payload, this)
            if "value_template" in config
            else (payload.decode())
        )
        if component.platform == "binary_sensor":
            if value == "":
                return  # "Empty template output": ignored
            on, off = config.get("payload_on", "ON"), config.get("payload_off", "OFF")
            if value not in (on, off, PAYLOAD_NONE):
                raise DiscoveryError(f"{key}: {value!r} is neither {on!r} nor {off!r}")
            self.states[key] = None if value == PAYLOAD_NONE else ("on" if value == on else "off")
        elif component.platform == "sensor":
            if value == PAYLOAD_NONE:
                self.states[key] = None
                return
            if numeric_state_expected(config):
                if value == "":
                    return  # "Ignore empty state" (core mqtt/sensor.py)
                try:
                    float(value)
                except ValueError:
                    # core sensor/__init__.py SensorEntity.state raises: no state is written
                    raise DiscoveryError(f"{key}: {value!r} is not numeric") from None
            if "options" in config and value not in config["options"]:
                raise DiscoveryError(f"{key}: {value!r} is not one of {config['options']}")
            if len(value) > MAX_STATE_LENGTH:
                raise DiscoveryError(f"{key}: a state of {len(value)} characters")
            self.states[key] = value
        elif component.platform == "event":
            if retain or value in ("", PAYLOAD_NONE, "{}"):
                return  # retained replays and empty renders are ignored (core mqtt/event.py)
            attrs = json.loads(value)
            if not isinstance(attrs, dict) or "event_type" not in attrs:
                raise DiscoveryError(f"{key}: event payload {value!r} has no event_type")
            event_type = str(attrs.pop("event_type"))
            if event_type not in config["event_types"]:
                raise DiscoveryError(f"{key}: event type {event_type!r} not in event_types")
            self.events.append((key, event_type, attrs))

    def receive_all(self, messages: Iterable[tuple[str, bytes, bool]]) -> None:
        for topic, payload, retain in messages:
            self.receive(topic, payload, retain)

    def component(self, suffix: str) -> Component:
        """The component whose key ends with ``suffix`` (e.g. ``_fall``)."""
        assert self.device is not None, "no device discovered"
        found = [c for k, c in self.device.components.items() if k.endswith(suffix)]
        assert len(found) == 1, f"{len(found)} components end with {suffix!r}"
        return found[0]

    def state(self, suffix: str) -> str | None:
        return self.states.get(self.component(suffix).key)

    def is_available(self, suffix: str) -> bool:
        component = self.component(suffix)
        if not component.config.get("availability"):
            return True  # no availability topics: always available (core mqtt/entity.py)
        return self.available.get(component.key, False)

    def press(self, suffix: str) -> tuple[str, str]:
        """The (topic, payload) a button press publishes."""
        config = self.component(suffix).config
        return config["command_topic"], config.get("payload_press", "PRESS")
