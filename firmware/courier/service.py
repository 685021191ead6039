"""The courier: the monitor's storage and network, in a process of its own.

Why a separate process: in CPython a thread that parses JSON, hashes,
compresses or runs paho's network loop holds the GIL the real-time loop
needs; a flood of MQTT commands once delayed the relay heartbeat by up to
155 ms. In its own process the courier can be as busy as the network makes
it and the loop keeps its own interpreter (and, on a Pi, its own core and a
real-time scheduling class). The loop hands over events, state, health and
session records through :mod:`firmware.link`; the courier stores each event
(SQLite, WAL, synchronous=FULL), answers that it is on disk, and publishes
it through the MQTT outbox.

Threads here: the main thread reads the loop's messages and applies them in
order; the MQTT reporter has its own (paho's and its publisher); a small
heartbeat thread tells the loop once a second that the courier is alive.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.protocol.events import Event, EventType
from core.protocol.messages import DeviceHealth
from firmware.config import Config
from firmware.courier.channel import LoopChannel
from firmware.link import messages
from firmware.session.record import SessionArchive
from firmware.sinks import EventSink, LogSink, StoreSink
from firmware.storage.events import EventStore

if TYPE_CHECKING:
    from firmware.mqtt import MqttReporter

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
DRAIN_TIMEOUT_S = 2.0
"""On the way out, how long queued messages may take to reach the broker; the rest stay
in the outbox for the next start."""


class Courier:
    """Applies the loop's messages to storage and the broker, and answers the loop."""

    def __init__(
        self,
        config: Config,
        channel: LoopChannel,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.channel = channel
        self.clock = clock
        self.health = DeviceHealth()
        self.checks: dict[str, dict[str, object]] = {}
        self.clean_stop = False
        self.state = "STARTING"
        """The safety state the loop last reported (events the courier makes carry it)."""
        self.reporter: MqttReporter | None = None
        self.store = EventStore(config.storage.database)
        persist: EventSink = StoreSink(self.store)
        if config.mqtt.host:
            from firmware.mqtt import MqttReporter

            self.reporter = MqttReporter(
                config.mqtt,
                device_id=config.device.id,
                device_name=config.device.name,
                database=config.storage.database,
                on_silence=lambda: self.channel.send(messages.SilenceBuzzer()),
                on_test_alarm=self._test_alarm,
            )
            self.reporter.set_providers(telemetry=lambda: self.health, self_test=self._self_test)
            persist = self.reporter.sink  # stores and queues in one transaction
        self._sinks: list[EventSink] = [persist, LogSink()]
        self.sessions = SessionArchive(
            config.storage.database,
            summary_topic=self.reporter.topics.session if self.reporter is not None else None,
            on_queued=self.reporter.wake if self.reporter is not None else None,
        )
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(
            target=self._beat, name="retroguard-courier-heartbeat", daemon=True
        )

    # ---------------------------------------------------------------- running

    def run(self) -> None:
        """Serve until the loop closes the link; then drain and close."""
        if self.reporter is not None:
            self.reporter.start()
        self.channel.send(messages.StorageHealth(True, "device database open"))
        self._heartbeat.start()
        try:
            for message in self.channel.messages():
                self.apply(message)
        finally:
            self.finish()

    def apply(self, message: messages.ToCourier) -> None:
        match message:
            case messages.EventRecord(event=event):
                self._persist(event)
            case messages.StateReport(state=state, reason=reason):
                self.state = state
                if self.reporter is not None:
                    self.reporter.publish_state(state, reason)
            case messages.HealthReport(health=health, checks=checks):
                self.health = health
                self.checks = {n: {"ok": c.ok, "detail": c.detail} for n, c in checks.items()}
            case messages.SessionReport(record=record, final=final):
                if self.sessions.save(record, final) and final:
                    self.channel.send(messages.Persisted([record.id]))
            case messages.Goodbye(reason=reason):
                log.info("monitor stopping: %s", reason)
                self.clean_stop = True
            case messages.Hello():
                log.warning("a second hello from the monitor ignored")

    def _persist(self, event: Event) -> None:
        for sink in self._sinks:
            try:
                sink.handle(event)
            except Exception:
                log.exception("event sink %s failed for event %s", type(sink).__name__, event.id)
                if sink is self._sinks[0]:
                    return  # not on disk: the loop keeps it and sends it again
        self.channel.send(messages.Persisted([event.id]))

    def _test_alarm(self, by: str) -> None:
        """On the reporter's thread: chirp on the device, and a ``test`` event to everyone."""
        self.channel.send(messages.Chirp())
        self._persist(
            Event.now(
                EventType.TEST,
                self.config.device.id,
                self.clock(),
                self.state,
                f"test alarm sent by {by}: if this reached you, alerts from this treadmill do",
            )
        )

    def _self_test(self) -> dict[str, dict[str, object]]:
        return dict(self.checks)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            status = self.reporter.status if self.reporter is not None else None
            alive = messages.CourierAlive(
                broker_connected=bool(status and status.connected),
                outbox_depth=status.depth if status is not None else 0,
            )
            if not self.channel.send(alive):
                return

    def finish(self) -> None:
        """The loop is gone: record an unclean end, push what is queued out, close."""
        self._stop.set()
        if not self.clean_stop:
            self._persist_quietly(
                Event.now(
                    EventType.FAULT,
                    self.config.device.id,
                    self.clock(),
                    "FAULT",
                    "the monitor stopped without shutting down (crash, kill or hang): events of "
                    "its last moments may be missing",
                )
            )
        if self.reporter is not None:
            self.reporter.wait_drained(DRAIN_TIMEOUT_S)
            self.reporter.close()
        self.sessions.close()
        self.store.close()

    def _persist_quietly(self, event: Event) -> None:
        for sink in self._sinks:
            try:
                sink.handle(event)
            except Exception:
                log.exception("could not record %s", event.reason)


def serve(
    sock: socket.socket,
    *,
    adopt_log_level: bool = False,
    on_ready: Callable[[Courier], None] | None = None,
) -> int:
    """Run a courier on ``sock`` (its first message is the monitor's :class:`Hello`).

    ``adopt_log_level``: set the process's log level from the monitor's config
    (a courier process; not a courier thread, which shares the monitor's logging).
    ``on_ready`` receives the courier once built (the in-process mode's tests use it).
    """
    channel = LoopChannel(sock)
    first = next(channel.messages(), None)
    if not isinstance(first, messages.Hello):
        log.error("the monitor did not say hello: %r", first)
        channel.close()
        return 2
    if adopt_log_level:
        logging.getLogger().setLevel(first.config.logging.level.upper())
    courier = Courier(first.config, channel)
    if on_ready is not None:
        on_ready(courier)
    log.info(
        "courier %d for monitor %d: database %s, broker %s",
        os.getpid(),
        first.monitor_pid,
        first.config.storage.database,
        first.config.mqtt.host or "none",
    )
    courier.run()
    channel.close()
    return 0
