"""Publishes whose refusal by the broker is said: a WARNING naming the topic, once a topic a
connection, and nothing when the broker accepts them.

Why: a broker whose ACL predates a topic (a provider's, or one configured from an older
docs/mqtt/mosquitto.acl) refuses what the service publishes there. The service speaks MQTT 5
(:func:`core.mqttlink.make_client`), so Mosquitto 2 says it in the PUBACK (0x87, not
authorized) and drops the message; over MQTT 3.1.1 it would acknowledge it as if delivered.
Nobody read those codes: Home Assistant never got the service's Database sensor and staff
thought the database watched. The subscriptions' refusals are said in
:meth:`caregiver.ingest.Ingestor._on_subscribe`; this says the publishes'.

paho gives the verdict in ``on_publish`` by message id only, on its own thread, and may give
it before :meth:`RefusedPublishes.publish` has the id in hand (paho's thread answers as soon as
paho's ``publish`` lets go of its queue's lock). Ids are noted under a lock held across
paho's ``publish``; the verdicts go through a queue that whoever next holds the lock reads,
so paho's thread never waits for it (the other order of the two locks would deadlock).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Sent:
    topic: str
    unsaid: str
    """What goes missing while the broker refuses the topic, in words for the log."""


class RefusedPublishes:
    """Sends retained QoS 1 messages and warns once a connection of each topic the broker
    refuses. :meth:`published` must hear every PUBACK (the client's ``on_publish``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: dict[int, _Sent] = {}
        """Under :attr:`_lock`: what each message id awaiting its verdict was."""
        self._verdicts: deque[tuple[int, bool]] = deque()
        """(message id, refused) heard from paho, not yet matched (appends need no lock)."""
        self._said: set[str] = set()
        """Under :attr:`_lock`: the topics whose refusal this connection has already said."""

    def connected(self) -> None:
        """A new connection: its first refusal of each topic is said again (an ACL fixed or
        broken meanwhile). Before the connection's first :meth:`publish`."""
        with self._lock:
            self._said.clear()
            self._sent.clear()  # their verdicts went with the old connection or come again
        self._match()

    def publish(self, client: mqtt.Client, topic: str, payload: str, *, unsaid: str) -> None:
        """``payload`` retained on ``topic`` at QoS 1; ``unsaid``: what is missing while the
        broker refuses it."""
        with self._lock:
            mid = client.publish(topic, payload, qos=1, retain=True).mid
            self._sent[mid] = _Sent(topic, unsaid)
        self._match()

    def published(self, mid: int, reason_code: ReasonCode) -> None:
        """The broker's verdict on message ``mid`` (paho's ``on_publish``, its thread): any
        message of the client, these or not. Never waits."""
        self._verdicts.append((mid, reason_code.is_failure))
        self._match()

    def awaiting(self) -> int:
        """Messages sent whose verdict is not matched yet, verdicts not yet matched (the tests
        wait for none before they read the log)."""
        with self._lock:
            count = len(self._sent) + len(self._verdicts)
        self._match()
        return count

    def _match(self) -> None:
        """Matches the verdicts heard with the messages sent, unless another thread holds the
        lock: it matches them once it lets go (the loop looks again after each release)."""
        while self._verdicts and self._lock.acquire(blocking=False):
            try:
                while self._verdicts:
                    mid, refused = self._verdicts.popleft()
                    sent = self._sent.pop(mid, None)
                    if sent is not None and refused and sent.topic not in self._said:
                        self._said.add(sent.topic)
                        log.warning(
                            "the broker refused the message on %s (check the broker's ACL): %s",
                            sent.topic,
                            sent.unsaid,
                        )
            finally:
                self._lock.release()
