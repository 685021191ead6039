"""Caregiver reporting over MQTT (paho-mqtt 2.x, tested against a real Mosquitto).

Entry points:

* :class:`MqttReporter` — outbox sink, state, telemetry, commands, HA discovery;
* :class:`~firmware.mqtt.commands.CommandTarget` — the narrow interface commands act on;
* :mod:`tools.watch` — ``retroguard watch``;
* :mod:`tools.broker` — a throwaway local Mosquitto for tests and the demo.

See ``docs/mqtt.md`` for topics, payloads and security.
"""

from core.mqttlink import MqttSetupError
from core.protocol.commands import COMMANDS
from core.protocol.topics import Topics
from firmware.mqtt.commands import CommandError, CommandTarget, SilenceRequest
from firmware.mqtt.reporter import MqttReporter, ReporterStatus
from firmware.sinks import OutboxSink
from firmware.storage.outbox import Outbox

__all__ = [
    "COMMANDS",
    "CommandError",
    "CommandTarget",
    "MqttReporter",
    "MqttSetupError",
    "Outbox",
    "OutboxSink",
    "ReporterStatus",
    "SilenceRequest",
    "Topics",
]
