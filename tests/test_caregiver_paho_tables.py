"""paho's MQTT 5 property tables shared (caregiver.paho_tables): packets decode and encode
exactly as with paho's own per-packet tables. Compared in a fresh interpreter, where paho is
first used as shipped and then shared."""

from __future__ import annotations

import subprocess
import sys

COMPARE = r"""
import struct
from paho.mqtt import _packet
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

def made():
    connect = Properties(PacketTypes.CONNECT)
    connect.SessionExpiryInterval = 3600
    connect.ReceiveMaximum = 100
    publish = Properties(PacketTypes.PUBLISH)
    publish.ContentType = "application/json"
    publish.MessageExpiryInterval = 60
    publish.UserProperty = ("a", "1")
    publish.UserProperty = ("b", "2")
    return connect.pack(), publish.pack()

def decoded(props):
    topic = b"retroguard/treadmill-1/event"
    packet = struct.pack("!H", len(topic)) + topic + struct.pack("!H", 7) + props + b'{"x":1}'
    first = _packet.decode_publish(0x32, packet, MQTTProtocolVersion.MQTTv5)
    second = _packet.decode_publish(0x32, packet[:-len(props) - 7] + b"\x00" + b'{"x":1}',
                                    MQTTProtocolVersion.MQTTv5)
    return first.properties.json(), second.properties.json(), first.payload, str(first.properties)

before = made()
before_decoded = decoded(before[1])
from caregiver.paho_tables import share_property_tables
assert share_property_tables() and share_property_tables()
assert Properties(PacketTypes.PUBLISH).names is Properties(PacketTypes.PUBACK).names
after = made()
assert after == before, (after, before)
after_decoded = decoded(after[1])
assert after_decoded == before_decoded, (after_decoded, before_decoded)
assert before_decoded[0]["ContentType"] == "application/json", before_decoded
assert before_decoded[0]["UserProperty"] == [("a", "1"), ("b", "2")], before_decoded
assert before_decoded[1] == {}, before_decoded  # a packet without properties keeps none
print("same")
"""


def test_shared_tables_decode_and_encode_as_paho_does() -> None:
    result = subprocess.run(
        [sys.executable, "-c", COMPARE], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "same"


UNLIKE = r"""
import logging, sys
logging.basicConfig(stream=sys.stdout, format="%(message)s")
from paho.mqtt import properties
from paho.mqtt.packettypes import PacketTypes
original = properties.Properties
{setup}
from caregiver.paho_tables import share_property_tables
print(share_property_tables())
properties.Properties = original
fresh = original(PacketTypes.PUBLISH)
print(fresh.names is not original(PacketTypes.PUBACK).names)
"""

SLOTTED = """
class Slotted:
    __slots__ = ("packetType", "types", "names", "properties")
    def __init__(self, packetType):
        self.packetType, self.types, self.names, self.properties = packetType, [], {}, {}
properties.Properties = Slotted
"""

PER_PACKET = """
class PerPacket(original):
    def __init__(self, packetType):
        super().__init__(packetType)
        self.names = dict(self.names, Extra=packetType)  # a table that depends on the packet
properties.Properties = PerPacket
"""


def test_a_paho_whose_properties_are_not_the_class_checked_is_left_alone() -> None:
    """A later paho with slotted ``Properties``, or tables that differ by packet type: the
    service starts with paho as shipped and says so, instead of failing or sharing tables
    that are not the same."""
    for setup in (SLOTTED, PER_PACKET):
        result = subprocess.run(
            [sys.executable, "-c", UNLIKE.replace("{setup}", setup)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.split("\n")
        assert "False" in lines and "changed shape" in result.stdout, result.stdout
        assert lines[-2] == "True", result.stdout  # paho's own class untouched
