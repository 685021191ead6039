"""The service's database health on the broker: a retained
:class:`core.protocol.messages.CaregiverHealthMessage` on ``<prefix>/caregiver/health/<instance>``
and Home Assistant's discovery of it (:mod:`caregiver.health_discovery`).

Why: the banner, ``/healthz`` and the log were the only places that said the service goes on
without parts of its database, or stores no alert at all; staff who watch Home Assistant and
not the dashboard never learned it (docs/safety.md: a storage fault is reported, never
silent). The message says what ``/healthz`` says of the database (:func:`caregiver.health.
database_status`), from the same sources: ingest's refusal, the store's damage and its side
faults.

Said once subscribed (with the discovery message), then on every change of what it says,
never on a timer: a change within :data:`HEALTH_EVERY_S` of the last is said at its end, as
things then stand (a storing fault that comes and goes with each retry of the held messages
would flap the sensor and every automation on it; the latest state is never lost). It is
published by whichever thread changed it (ingest's, a page's, the housekeeping's): paho's
publish only queues, and nothing here takes the store's lock (the side faults call it with
that lock held)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from caregiver.config import CaregiverMqttConfig
from caregiver.health import database_part, database_status
from caregiver.health_discovery import health_discovery_payload, health_discovery_topic
from caregiver.refused_publishes import RefusedPublishes
from caregiver.storage import SideFault
from core.protocol.discovery import REMOVE_PAYLOAD
from core.protocol.messages import SCHEMA_VERSION, CaregiverHealthMessage
from core.protocol.payloads import encode, wall_now
from core.protocol.topics import caregiver_health_topic

UNSAID = (
    "Home Assistant's Database sensor of this instance never shows what its database does "
    '(docs/mqtt.md, "The caregiver service\'s database")'
)
"""What goes missing while the broker refuses the health or its discovery (the log says
it: :class:`caregiver.refused_publishes.RefusedPublishes`)."""

HEALTH_EVERY_S = 5.0
"""A change goes out at most this often (the presence's own limit: caregiver.ingest
``PRESENCE_EVERY_S``)."""


def health_message(
    by: str,
    *,
    storing: bool,
    damaged: bool,
    side: tuple[SideFault, ...],
    held: bool = False,
    wall_time: str = "",
) -> CaregiverHealthMessage:
    """What the service says of its database: ``storing`` (ingest commits), ``damaged`` (its
    file), ``side`` (the parts it goes on without), and beside it ``held`` (a poisoned
    message held on the connection), as ``/healthz`` says them."""
    parts = tuple(database_part(fault) for fault in side)
    ok = storing and not damaged
    return CaregiverHealthMessage(
        schema=SCHEMA_VERSION,
        by=by,
        wall_time=wall_time,
        status=database_status(storing=ok, damaged=damaged, parts=parts),
        storing=ok,
        parts=parts,
        message_held=held,
    )


class HealthTopic:
    """Publishes the health ``now()`` gives (unstamped: :func:`health_message` without its
    ``wall_time``) through ``client()`` while ``connected`` is set."""

    def __init__(
        self,
        mqtt_config: CaregiverMqttConfig,
        client: Callable[[], mqtt.Client | None],
        connected: threading.Event,
        now: Callable[[], CaregiverHealthMessage],
        *,
        dashboard_url: str = "",
        several: bool = False,
    ) -> None:
        self._config = mqtt_config
        self._client = client
        self._connected = connected
        self._now = now
        self._dashboard_url = dashboard_url
        self._several = several
        self.topic = caregiver_health_topic(mqtt_config.topic_prefix, mqtt_config.identity)
        self._lock = threading.Lock()
        self._said: CaregiverHealthMessage | None = None
        """What the last message said, unstamped (None: nothing since subscribing)."""
        self._said_at = -math.inf
        self._timer: threading.Timer | None = None
        self.refusals = RefusedPublishes()
        """Says a broker's refusal of the health or its discovery (an ACL that predates them)."""

    def published(self, mid: int, reason_code: ReasonCode) -> None:
        """The broker's verdict on any message of the client (its ``on_publish``, paho's
        thread): a refused health or discovery message is logged, once a connection."""
        self.refusals.published(mid, reason_code)

    def subscribed(self, client: mqtt.Client) -> None:
        """Subscribed (paho's thread): the discovery message, then the health as it stands,
        whatever was said before (a retained message another run of the service left)."""
        self.refusals.connected()
        if self._config.discovery:
            payload = health_discovery_payload(
                self._config, self._dashboard_url, several=self._several
            )
        else:  # an earlier announcement goes
            payload = REMOVE_PAYLOAD
        topic = health_discovery_topic(self._config)
        self.refusals.publish(client, topic, payload, unsaid=UNSAID)
        with self._lock:
            self._say(client, self._now())

    def changed(self) -> None:
        """What the health says may have changed (any thread): said now, or at the end of
        :data:`HEALTH_EVERY_S` after the last, as it then stands. Only while subscribed:
        :meth:`subscribed` says it then."""
        with self._lock:
            if self._timer is not None or self._now() == self._said:
                return
            wait = self._said_at + HEALTH_EVERY_S - time.monotonic()
            if wait > 0:
                timer = threading.Timer(wait, self._said_late)
                timer.daemon = True
                self._timer = timer
                timer.start()
                return
            self._say_if_connected()

    def _said_late(self) -> None:
        with self._lock:
            self._timer = None
            if self._now() != self._said:  # else it came and went
                self._say_if_connected()

    def stop(self) -> None:
        """Nothing more to say: the presence's ``offline`` follows."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _say_if_connected(self) -> None:
        client = self._client()
        if client is not None and self._connected.is_set():
            self._say(client, self._now())

    def _say(self, client: mqtt.Client, health: CaregiverHealthMessage) -> None:
        """Under :attr:`_lock`."""
        stamped = msgspec.structs.replace(health, wall_time=wall_now())
        self.refusals.publish(client, self.topic, encode(stamped), unsaid=UNSAID)
        self._said, self._said_at = health, time.monotonic()
