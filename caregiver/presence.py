"""How long the caregiver service's retained ``online`` lasts on the broker, and its renewal.

Why: the service's ``online`` is retained, and its MQTT 5 Last Will says ``offline`` when its
link is lost. A broker that *crashes* (SIGKILL, a power cut) sends no Last Will, restarts with
the ``online`` it last saved, and its restored session does not bring the will back: a service
stopped before that broker was back read ``online`` to every treadmill, for ever, and the
walker was told a caregiver would be paged when nobody would. So the ``online`` carries an
MQTT 5 Message Expiry Interval and the service says it again well before it runs out: one
nobody renews leaves the broker by itself (Mosquitto keeps the expiry across its persistence
file, a crash and a restart: ``tests/test_caregiver_presence_broker_restart.py``), and a device
that heard it counts it as no presence once the broker's remaining expiry has passed unrenewed
(:mod:`firmware.mqtt.caregiver`). ``offline`` carries none: a stale ``offline`` errs on the
safe side (the walker is told nobody will be paged; a service that comes back says ``online``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)

RENEWALS_PER_EXPIRY = 3
"""The ``online`` is said again this many times within its expiry: two renewals in a row may be
late (a busy broker, our own reconnect taking most of a period) before a treadmill stops
believing it."""


@dataclass(frozen=True, slots=True)
class PresenceTiming:
    """How long the ``online`` lasts and, from it, how often it is said again."""

    expiry_s: int = 180
    """The ``online``'s Message Expiry Interval (whole seconds, as MQTT carries it). Three
    minutes: after a broker crash with the service gone, a treadmill reads ``online`` at most
    this long (before, for ever); shorter would page the broker and every treadmill more often
    for a case that is rare, longer would tell the walker "someone will be paged" longer
    when nobody will. Tests give a short one: the broker's own expiry is what they exercise."""

    def __post_init__(self) -> None:
        if self.expiry_s < 1:
            raise ValueError(f"presence expiry must be at least 1 s, not {self.expiry_s}")

    @property
    def renew_s(self) -> float:
        """How often the ``online`` is said again while connected."""
        return self.expiry_s / RENEWALS_PER_EXPIRY

    def online_properties(self) -> Properties:
        """The PUBLISH properties of an ``online``: its expiry."""
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.MessageExpiryInterval = self.expiry_s
        return props


PRESENCE_TIMING = PresenceTiming()


class PresenceRenewal:
    """Calls ``renew`` every ``every_s`` on a thread of its own (never paho's network thread,
    which a wait here would stall) until :meth:`stop`. A ``renew`` that raises is logged and
    tried again at the next period: the presence must not lapse for one failed renewal."""

    def __init__(self, every_s: float, renew: Callable[[], None]) -> None:
        self._every_s = every_s
        self._renew = renew
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="caregiver-presence-renewal", daemon=True
        )

    @property
    def thread(self) -> threading.Thread:
        """The renewing thread (the service's liveness watches it: dead, every treadmill
        reads nobody paged within the expiry while the service is fine)."""
        return self._thread

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self._renew()
            except Exception:
                log.exception("could not say the caregiver service online again; next period")
