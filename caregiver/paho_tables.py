"""paho-mqtt's MQTT 5 property tables, built once instead of once per packet.

paho 2.x decodes the properties of every PUBLISH and PUBACK it receives into a new
``Properties`` object, and each one builds two tables of 27 entries (property names to
ids, ids to types and packets) and then walks the names again to clear itself: 34 µs of
the 45 µs paho spends decoding a small PUBLISH, and during a burst about a sixth of the
caregiver service's CPU (py-spy, benchmarks/caregiver.py). The tables never change and
paho never writes to them, so every ``Properties`` can share one copy.

:func:`share_property_tables` makes them shared for this process, and only when paho's
``Properties`` is still the class it was checked against (its instances hold exactly
those four attributes after ``__init__``); otherwise it leaves paho alone and says so.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

_TABLES = ("packetType", "types", "names", "properties")
"""What paho's ``Properties.__init__`` sets: the packet type, and three constant tables."""
_lock = threading.Lock()
_shared = False


def share_property_tables() -> bool:
    """Have every paho ``Properties`` made from now on share one copy of the constant
    tables (idempotent, any thread). False (and paho untouched) if paho's class is not the
    one this was written for."""
    global _shared
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    with _lock:
        if _shared:
            return True
        try:
            template: Any = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            same = _same_shape(
                Properties, template, [*PacketTypes.indexes, PacketTypes.WILLMESSAGE]
            )
        except Exception:  # a paho whose class cannot be looked into this way (e.g. slots)
            log.exception("paho's MQTT 5 Properties could not be checked")
            same = False
        if not same:
            log.warning("paho's MQTT 5 Properties changed shape: its tables stay per packet")
            return False
        types, names, properties = template.types, template.names, template.properties
        spaced = tuple(name.replace(" ", "") for name in names)

        def __init__(self: Any, packetType: int) -> None:
            state = vars(self)
            state["packetType"] = packetType
            state["types"] = types
            state["names"] = names
            state["properties"] = properties

        def clear(self: Any) -> None:
            state = vars(self)
            for name in spaced:
                state.pop(name, None)

        Properties.__init__ = __init__  # type: ignore[method-assign]
        Properties.clear = clear  # type: ignore[method-assign]
        _shared = True
        return True


def _same_shape(cls: Any, template: Any, packet_types: list[int]) -> bool:
    """Whether ``cls`` is the class this module was written for: its instances hold exactly
    the packet type and the three tables, and the tables do not depend on the packet type
    (only then may every instance share one copy)."""
    if set(vars(template)) != set(_TABLES) or not isinstance(template.names, dict):
        return False
    for packet_type in packet_types:
        other = vars(cls(packet_type))
        if set(other) != set(_TABLES) or any(
            other[table] != getattr(template, table) for table in _TABLES[1:]
        ):
            return False
    return True
