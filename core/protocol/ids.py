"""The identifier rules of the wire contract: device ids, event ids, request ids.

A device id is one MQTT topic level and a Home Assistant object id, so it
cannot hold ``/``, ``+``, ``#`` or spaces; event and session ids are 32 hex
digits (``uuid4().hex``); a request id is what a command's sender chose to
match the reply with.
"""

from __future__ import annotations

import re

DEVICE_ID_PATTERN = r"^(?!\.\.?$)[A-Za-z0-9_.-]{1,64}$(?!\n)"
EVENT_ID_BODY = r"[0-9a-f]{32}"
EVENT_ID_PATTERN = rf"^{EVENT_ID_BODY}$(?!\n)"
REQUEST_ID_PATTERN = r"^[\x21-\x7e]{1,64}$(?!\n)"
DISCOVERY_ID_PATTERN = r"^[A-Za-z0-9_-]+$(?!\n)"
"""Home Assistant's rule for the id in a discovery topic (``<prefix>/device/<id>/config``:
core mqtt/discovery.py, ``TOPIC_MATCHER``, modelled in tests/ha_discovery.py): a topic whose id
has any other character, a ``.`` included, is ignored, so what it announces never appears."""
r"""Each ends ``$(?!\n)``: Python's ``$`` also matches before a final newline, so
``"<32 hex digits>\n"`` passed as an event id, ``"r1\n"`` as a request id (which the
documented schemas refuse) and ``"tm1\n"`` as a device id (a topic level with a newline);
``(?!\n)`` refuses it and means nothing to the JSON schemas' (ECMA-262) ``$``, so both read
the same pattern (as :data:`core.protocol.walker.WALKER_ID_PATTERN`). A device id is also
one segment of the dashboard's addresses (``/devices/<id>``), where ``.`` and ``..`` are dot
segments a browser resolves away (escaping does not help: ``%2E%2E`` is one too), so the
pattern's lookahead refuses both."""

ACCOUNT_NAMES = frozenset({"caregiver", "homeassistant"})
"""The broker accounts of the documented ACL (docs/mqtt/mosquitto.acl) that are not devices.
Its per-device patterns (``pattern write retroguard/%u/event`` ...) apply to every account,
so a "device" of one of these names is one whose events, state and incidents that account may
publish: Home Assistant (or the caregiver service) forging a treadmill's falls, which the
caregiver service would page for. No device may be so named, and a consumer takes no device
topic under these names (:func:`core.protocol.topics.parse_topic` refuses it)."""

CAREGIVER_INSTANCE_PREFIX = "caregiver-"
"""Each of a provider's caregiver service instances logs in with an account of its own,
``caregiver-a``, ``caregiver-b``, ... (docs/provider.md): the documented broker makes a
client's id its user name, so instances sharing the ``caregiver`` account would take each
other's session over and over. Those accounts are not devices either, for the reason of
:data:`ACCOUNT_NAMES`."""


def is_account_name(value: str) -> bool:
    """Whether ``value`` is (or may be) the name of a broker account that is not a device:
    :data:`ACCOUNT_NAMES`, or a caregiver instance's (:data:`CAREGIVER_INSTANCE_PREFIX`)."""
    return value in ACCOUNT_NAMES or value.startswith(CAREGIVER_INSTANCE_PREFIX)


_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)
_EVENT_ID = re.compile(EVENT_ID_PATTERN)
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
_DISCOVERY_ID = re.compile(DISCOVERY_ID_PATTERN)


NAME_RULE = (
    "1-64 letters, digits, '_', '.' or '-' (no '/', '+', '#' or spaces; not '.' or '..' alone)"
)
"""What a name that becomes one topic level may hold, in words (:data:`DEVICE_ID_PATTERN`)."""


def is_topic_name(value: object) -> bool:
    """Whether ``value`` can name a broker account whose topics carry it as one level, as it
    is: a device id, a caregiver service instance's account (:data:`DEVICE_ID_PATTERN`). The
    documented ACL writes these topics as patterns on the account's name (``%u``), so a name
    changed on its way into a topic is refused by the broker."""
    return isinstance(value, str) and _DEVICE_ID.match(value) is not None


def is_device_id(value: object) -> bool:
    return is_topic_name(value) and not is_account_name(str(value))


def is_discovery_id(value: str) -> bool:
    """Whether Home Assistant takes a discovery topic with ``value`` as its id
    (:data:`DISCOVERY_ID_PATTERN`)."""
    return _DISCOVERY_ID.match(value) is not None


def discovery_id_problem(value: str) -> str | None:
    """Why Home Assistant would ignore a discovery topic with ``value`` as its id, or None:
    the same words for a treadmill's id (the monitor's preflight) and a caregiver service
    instance's name (the service's), each followed by what to do."""
    if is_discovery_id(value):
        return None
    return (
        "Home Assistant ignores a discovery topic whose id has characters other than "
        f"A-Z a-z 0-9 _ - ({value!r})"
    )


def is_event_id(value: object) -> bool:
    """Event and session ids: 32 lowercase hex digits."""
    return isinstance(value, str) and _EVENT_ID.match(value) is not None


def is_request_id(value: object) -> bool:
    return isinstance(value, str) and _REQUEST_ID.match(value) is not None


def check_device_id(device_id: str) -> str:
    """Return ``device_id`` if it can be one topic level (and an HA object id) and is no
    broker account's name (:func:`is_account_name`), else raise."""
    if is_account_name(device_id):
        raise ValueError(
            f"device id {device_id!r} is a broker account of the documented ACL, not a device "
            "(caregiver, caregiver-<name> for a caregiver service instance, homeassistant: "
            'docs/mqtt.md, "Mosquitto ACL"): that account could publish this device\'s '
            "events; choose another id"
        )
    if not is_device_id(device_id):
        raise ValueError(f"device id {device_id!r} cannot be used in MQTT topics: use {NAME_RULE}")
    return device_id
