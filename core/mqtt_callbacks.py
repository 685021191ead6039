"""A paho client whose callbacks cannot end its network thread.

paho runs every callback (``on_connect``, ``on_message``, ``on_subscribe``, ...) on its
network thread and, with ``suppress_exceptions`` off (its default), lets an exception raised
in one end that thread: the client then neither reads nor sends again while the process
looks alive (a caregiver service said it was online and stored no fall). paho's own
``suppress_exceptions = True`` only logs such an exception and goes on as if the callback had
returned: without manual acknowledgement paho then acknowledges the QoS 1 message whose
handler raised (it is lost), and with it the message stays unacknowledged for the rest of the
connection (the broker sends it again only at the next one), while whatever the callback had
not done yet (a subscription, a state change) stays undone. Neither is said anywhere people
look.

:class:`GuardedClient` wraps each callback as it is set: an exception is logged with its
traceback, handed to the owner's ``on_fault`` (which says it where people look: the
caregiver's banner, the device's status) and the connection is dropped, so paho's own
reconnect runs ``on_connect`` (subscriptions, presence) again and the broker sends again
every QoS 1 message of a kept session not yet acknowledged: the one whose handler raised is
handled again, not lost. The real-time loop never runs any of this (paho's thread only).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

GUARDED_CALLBACKS = frozenset(
    {
        "on_connect",
        "on_connect_fail",
        "on_disconnect",
        "on_subscribe",
        "on_unsubscribe",
        "on_publish",
        "on_message",
        "on_pre_connect",
        "on_socket_open",
        "on_socket_close",
        "on_socket_register_write",
        "on_socket_unregister_write",
    }
)
"""paho's callbacks that run on its network thread (``on_log`` is not: paho already swallows
what it raises)."""


@dataclass(frozen=True, slots=True)
class CallbackFault:
    """A callback raised on paho's thread: ``callback`` its name (``on_message``), ``error``
    the exception in words, ``topic`` the message's topic when it was handling one."""

    callback: str
    error: str
    topic: str | None = None

    def words(self) -> str:
        """One line for a status or a banner."""
        about = f" (a message on {self.topic})" if self.topic is not None else ""
        return f"MQTT {self.callback} failed{about}: {self.error}; reconnecting"


def no_one_told(fault: CallbackFault) -> None:
    """The default ``on_fault``: a client that has no status to say it in only logs it."""


class GuardedClient(mqtt.Client):
    """A :class:`paho.mqtt.client.Client` whose callbacks are guarded as they are set (see the
    module's docstring). ``on_fault`` is told of each exception on paho's thread: it must not
    wait (nor raise: what it raises is logged and ignored)."""

    def __init__(
        self, *args: Any, on_fault: Callable[[CallbackFault], None] = no_one_told, **kwargs: Any
    ) -> None:
        self._on_fault = on_fault
        super().__init__(*args, **kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in GUARDED_CALLBACKS and value is not None:
            value = self._guarded(name, value)
        super().__setattr__(name, value)

    def _guarded(self, name: str, callback: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(callback)
        def run(*args: Any) -> Any:
            try:
                return callback(*args)
            except Exception as exc:  # any bug of a callback: paho's thread must go on
                self._fell(name, args, exc)
                return None

        return run

    def _fell(self, name: str, args: tuple[Any, ...], exc: Exception) -> None:
        message = next((a for a in args if isinstance(a, mqtt.MQTTMessage)), None)
        topic = bytes(message._topic).decode("utf-8", "replace") if message else None
        fault = CallbackFault(name, f"{type(exc).__name__}: {exc}", topic)
        log.error("%s", fault.words(), exc_info=exc)
        try:
            self._on_fault(fault)
        except Exception:  # said where people look failed: the log above still says it
            log.exception("could not say the MQTT callback's failure")
        self._drop_connection()

    def _drop_connection(self) -> None:
        """End the connection as a lost one (no DISCONNECT: paho reconnects by itself, and a
        Last Will says the gap). Nothing to end while none is open (``on_connect_fail``,
        ``on_disconnect``)."""
        sock = self.socket()
        shutdown = getattr(sock, "shutdown", None)
        if shutdown is None:
            return
        with contextlib.suppress(OSError):  # closed by the broker: paho finds it lost anyway
            shutdown(socket.SHUT_RDWR)
