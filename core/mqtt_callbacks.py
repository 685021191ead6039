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

A fault that comes again the same way (the same callback, topic and error: a poisoned
message, a deterministic bug) is not worth a reconnect a second: its traceback is logged
once, then a line with the count. A message's (``on_message``) is *held*: the connection goes
on without it, unacknowledged when the owner acknowledges by hand (the broker sends it again
at the next connection; not a QoS 0 one, which has no acknowledgement and is never sent
again). Reconnecting for it every time was measured on Mosquitto 2.0.11 to
hold every message behind it: the broker sends the poisoned one first at each connection, the
connection dropped a moment after its CONNACK, before the service could acknowledge what it
had stored, and the unacknowledged falls filled the service's ``ReceiveMaximum`` window: the
falls past it were never sent (docs/mqtt.md, "A callback that raises").

Each held message keeps one of those in-flight slots until the connection ends, so holding
is bounded: a copy of a message held already (a treadmill sends an alert again until it is
receipted: every hour, for days, each copy failing the same way) is acknowledged, as the
broker keeps the first; and past :data:`HELD_MOST` held messages a further one is
acknowledged unhandled (*let go*), said as such, so that many bad messages (one bug on
every stumble of a treadmill, say) cannot fill the window and stop every message of every
treadmill. Nothing the project must keep is lost by it: a treadmill keeps an alert and a
session until receipted and sends them again, the broker keeps a retained message for the
next subscription. Another callback's
repeated fault still reconnects, its delay doubling from the owner's least
(:meth:`reconnect_delay_set`) up to its most, back to the least once that callback returns
on a later connection attempt than the fault's (a success on the same one, another message's
``on_publish`` say, says nothing of the connection the fault dropped).

The count and the delay are changed under one lock, the delay given to paho under it too:
``on_publish`` may run on a publisher's thread while a fault runs on paho's, and a restore
computed before a longer delay was set must not be given to paho after it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

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


HELD_MOST = 20
"""The messages a client holds at once on one connection, each keeping an in-flight slot (of
the caregiver's 100, ``caregiver.ingest.RECEIVE_MAXIMUM``): past it a further one is let go
so the rest of the window stays for the messages that can be handled."""


FAULTS_REMEMBERED = 64
"""The distinct faults a client counts (the oldest forgotten first): each is a bug, and a
process with more than a few has bigger troubles than a count."""


@dataclass(frozen=True, slots=True)
class CallbackFault:
    """A callback raised on paho's thread: ``callback`` its name (``on_message``), ``error``
    the exception in words, ``topic`` the message's topic when it was handling one."""

    callback: str
    error: str
    topic: str | None = None
    times: int = 1
    """How many times this callback failed so (the same topic, the same error) since the
    client was made: from the second, reconnecting is known not to help."""
    unacknowledged: bool = False
    """A held message (:attr:`held`) of QoS 1 or 2 of a client that acknowledges by hand:
    the broker keeps it and sends it again at the next connection."""
    qos: int | None = None
    """The message's QoS: a QoS 0 one is never sent again, held or not."""
    reconnect_in_s: float | None = None
    """A repeated fault of a callback with no message: the delay before paho reconnects."""
    copy_of_held: bool = False
    """A held message that is a copy (the same topic and payload) of one held already on this
    connection: acknowledged, the broker keeps the first."""
    let_go: bool = False
    """A held message past :data:`HELD_MOST` held already: acknowledged, unhandled."""
    held_now: int = 0
    """The messages the broker keeps for this connection's held ones (unacknowledged)."""

    @property
    def held(self) -> bool:
        """The connection goes on without the message whose handler failed so again."""
        return self.times > 1 and self.topic is not None

    def words(self) -> str:
        """One line for a status or a banner."""
        about = f" (a message on {self.topic})" if self.topic is not None else ""
        said = f"MQTT {self.callback} failed{about}: {self.error}"
        if self.times == 1:
            return f"{said}; reconnecting"
        again = f"{said} ({self.times} times now)"
        if not self.held:
            return f"{again}; reconnecting in {self.reconnect_in_s:g} s"
        if self.let_go:
            kept = (
                f", acknowledged unhandled: {self.held_now} messages are held already, each "
                "keeping one of the broker's in-flight slots (its sender sends it again only "
                "if it keeps it: a treadmill keeps an alert until it is receipted)"
            )
        elif self.copy_of_held:
            kept = ", a copy of a message held already: acknowledged (the broker keeps the first)"
        elif self.unacknowledged:
            kept = ", left unacknowledged (the broker sends it again at the next connection)"
            if self.held_now > 1:
                kept += f"; {self.held_now} messages held"
        elif self.qos == 0:
            kept = ", a QoS 0 message (the broker never sends it again)"
        else:  # acknowledged by paho as the callback ended
            kept = ""
        return f"{again}; reconnecting did not help: the connection goes on without it{kept}"


@dataclass(frozen=True, slots=True)
class _BackedOff:
    """A callback's repeated fault: the reconnect delay it asks, and the connection attempt
    it came on."""

    delay_s: float
    attempt: int


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
        self._times: dict[tuple[str, str | None, str], int] = {}
        """How many times each fault (callback, topic, error) came; the oldest first."""
        self._least_s, self._most_s = 1.0, 120.0  # paho's own defaults
        self._backed_off: dict[str, _BackedOff] = {}
        """Callbacks whose repeated fault lengthened the reconnect delay."""
        self._held: set[tuple[str, bytes]] = set()
        """This connection's held messages that the broker keeps (topic, payload)."""
        self._attempt = 0
        """Connection attempts so far (:meth:`reconnect`): a success on the attempt a fault
        dropped ends no back-off."""
        self._faults_lock = threading.Lock()  # on_publish may run on a publisher's thread
        super().__init__(*args, **kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in GUARDED_CALLBACKS and value is not None:
            value = self._guarded(name, value)
        super().__setattr__(name, value)

    def reconnect_delay_set(self, min_delay: int = 1, max_delay: int = 120) -> None:
        """paho's, kept as the owner's: a repeated fault doubles the delay from it."""
        with self._faults_lock:
            self._least_s, self._most_s = float(min_delay), float(max_delay)
            self._delay_to_paho()

    def reconnect(self) -> MQTTErrorCode:
        """paho's (its loop calls it for every attempt, the first too), counted."""
        with self._faults_lock:
            self._attempt += 1
            self._held.clear()  # the broker sends them again on the new connection
        return super().reconnect()

    def _guarded(self, name: str, callback: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(callback)
        def run(*args: Any) -> Any:
            try:
                result = callback(*args)
            except Exception as exc:  # any bug of a callback: paho's thread must go on
                self._fell(name, args, exc)
                return None
            if self._backed_off and name in self._backed_off:  # a glance, then the lock
                self._returned(name)
            return result

        return run

    def _fell(self, name: str, args: tuple[Any, ...], exc: Exception) -> None:
        message = next((a for a in args if isinstance(a, mqtt.MQTTMessage)), None)
        topic = bytes(message._topic).decode("utf-8", "replace") if message else None
        error = f"{type(exc).__name__}: {exc}"
        qos = message.qos if message else None
        fault = self._counted(CallbackFault(name, error, topic, qos=qos), message)
        if fault.times == 1:
            log.error("%s", fault.words(), exc_info=exc)
        else:  # one line, not a traceback each time
            log.error("%s (its traceback was logged the first time)", fault.words())
        try:
            self._on_fault(fault)
        except Exception:  # said where people look failed: the log above still says it
            log.exception("could not say the MQTT callback's failure")
        if not fault.held:
            self._drop_connection()
        elif message is not None and (fault.let_go or fault.copy_of_held):
            self.ack(message.mid, message.qos)

    def _counted(self, fault: CallbackFault, message: mqtt.MQTTMessage | None) -> CallbackFault:
        """``fault`` with its count, and what follows from it: held, or a longer delay."""
        key = (fault.callback, fault.topic, fault.error)
        with self._faults_lock:
            times = self._times.pop(key, 0) + 1
            self._times[key] = times  # the newest last
            while len(self._times) > FAULTS_REMEMBERED:
                del self._times[next(iter(self._times))]
            fault = dataclasses.replace(fault, times=times)
            if fault.held:
                kept = bool(self._manual_ack) and fault.qos != 0  # a QoS 0 one has no ack
                if not kept or message is None or fault.topic is None:
                    return fault
                return self._held_or_let_go(fault, (fault.topic, bytes(message.payload)))
            if times == 1:
                return fault
            # the exponent capped: from 2**1024 on the product is no float (OverflowError
            # on paho's thread, ending it); 30 doublings reach the most from any sane least
            delay = min(self._least_s * 2 ** min(times - 1, 30), self._most_s)
            self._backed_off[fault.callback] = _BackedOff(delay, self._attempt)
            self._delay_to_paho()
        return dataclasses.replace(fault, reconnect_in_s=delay)

    def _held_or_let_go(self, fault: CallbackFault, message: tuple[str, bytes]) -> CallbackFault:
        """A held message the broker would keep: kept, unless a copy of one kept already or
        past :data:`HELD_MOST` (then acknowledged by :meth:`_fell`). ``_faults_lock`` held."""
        if message in self._held:
            return dataclasses.replace(fault, copy_of_held=True, held_now=len(self._held))
        if len(self._held) >= HELD_MOST:
            return dataclasses.replace(fault, let_go=True, held_now=len(self._held))
        self._held.add(message)
        return dataclasses.replace(fault, unacknowledged=True, held_now=len(self._held))

    def _returned(self, name: str) -> None:
        """``name`` returned after a repeated fault lengthened the delay: unless on the very
        attempt the fault dropped, it backs off no more (the owner's least, if no other
        callback does)."""
        with self._faults_lock:
            backed = self._backed_off.get(name)
            if backed is None or backed.attempt == self._attempt:
                return
            del self._backed_off[name]
            self._delay_to_paho()

    def _delay_to_paho(self) -> None:
        """paho's least delay: the longest a backed-off callback asks, else the owner's.
        ``_faults_lock`` held, so the last computed is the last given."""
        least = max((b.delay_s for b in self._backed_off.values()), default=self._least_s)
        super().reconnect_delay_set(least, self._most_s)  # type: ignore[arg-type]  # floats work

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
