"""Commands from the caregiver service to a device, on the service's own MQTT connection.

Ingest (:mod:`caregiver.ingest`) owns the connection; this only publishes on it
(QoS 1, so the broker keeps a command for a device that is briefly away). A
command carries a fresh request id, which the device echoes in its reply.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import paho.mqtt.client as mqtt

from core.protocol.commands import Command, command_name, encode_command
from core.protocol.topics import Topics


def new_request_id() -> str:
    return "cg-" + secrets.token_hex(8)


class NotConnected(RuntimeError):
    """The service has no broker connection to publish on (yet)."""


class CommandSender:
    def __init__(self, client: Callable[[], mqtt.Client | None], prefix: str) -> None:
        self._client = client
        """The connection ingest holds now (None before it starts or after it stops)."""
        self.prefix = prefix

    def send(self, device_id: str, command: Command, request_id: str | None = None) -> str:
        """Publish ``command`` to the device (QoS 1) with ``request_id`` (default: a fresh
        one); the request id it carries."""
        client = self._client()
        if client is None:
            raise NotConnected("not connected to the broker")
        request_id = request_id or new_request_id()
        client.publish(
            Topics(self.prefix, device_id).command(command_name(command)),
            encode_command(command, request_id),
            qos=1,
        )
        return request_id
