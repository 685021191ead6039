"""Getting events off the real-time thread.

The real-time loop calls :meth:`EventDispatcher.submit`, a non-blocking put on
a ``queue.SimpleQueue`` (no lock shared with disk or network code). A worker
thread takes events in order and hands each to every sink: the SQLite store
(or, with a broker, the MQTT outbox, which stores and queues in one
transaction) first, so an event is persisted before anything else sees it,
then the log. A sink that raises is logged and the others
still run: a broken log handler must not cost a stored fall.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import ClassVar, Protocol

from core.protocol.events import Event, Severity
from firmware.storage.events import EventStore
from firmware.storage.outbox import Outbox

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Receives events on the dispatcher's worker thread; may block briefly."""

    def handle(self, event: Event) -> None: ...


class LogSink:
    """Writes each event as one log line (journald picks up the level)."""

    _LEVELS: ClassVar[dict[Severity, int]] = {
        Severity.INFO: logging.INFO,
        Severity.WARNING: logging.WARNING,
        Severity.CRITICAL: logging.CRITICAL,
    }

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("retroguard.events")

    def handle(self, event: Event) -> None:
        self._log.log(
            self._LEVELS[event.severity],
            "event %s state=%s reason=%s id=%s",
            event.type.value,
            event.state,
            event.reason,
            event.id,
        )


class StoreSink:
    """Commits each event to the SQLite store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def handle(self, event: Event) -> None:
        self.store.append(event)


class OutboxSink:
    """Stores each event and queues it for MQTT in one transaction.

    Use it *instead of* :class:`StoreSink` (it writes the same ``events``
    table, so :class:`~firmware.storage.events.EventStore` reads it as usual).
    ``on_queued`` wakes the publisher; it must not block.
    """

    def __init__(self, outbox: Outbox, on_queued: Callable[[], None] | None = None) -> None:
        self.outbox = outbox
        self._on_queued = on_queued

    def handle(self, event: Event) -> None:
        self.outbox.enqueue_event(event)
        if self._on_queued is not None:
            self._on_queued()


class EventDispatcher:
    """A queue plus one worker thread that fans events out to sinks in order."""

    _STOP = object()

    def __init__(self, sinks: Sequence[EventSink]) -> None:
        self._sinks = list(sinks)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="retroguard-events", daemon=True)
        self._started = False
        self._handled = 0
        self._submitted = 0
        self._handled_cond = threading.Condition()
        self.on_error: Callable[[EventSink, Event, BaseException], None] | None = None

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def submit(self, event: Event) -> None:
        """Hand ``event`` over; never blocks (safe on the real-time thread)."""
        self._submitted += 1
        self._queue.put_nowait(event)

    def flush(self, timeout: float) -> bool:
        """Block until every event submitted so far has been through every sink."""
        return self.wait_handled(self._submitted, timeout)

    def wait_handled(self, count: int, timeout: float) -> bool:
        """Block until ``count`` events in total have been through every sink."""
        with self._handled_cond:
            return self._handled_cond.wait_for(lambda: self._handled >= count, timeout)

    @property
    def handled(self) -> int:
        return self._handled

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            assert isinstance(item, Event)
            for sink in self._sinks:
                try:
                    sink.handle(item)
                except Exception as exc:
                    log.exception("event sink %s failed for event %s", type(sink).__name__, item.id)
                    if self.on_error is not None:
                        self.on_error(sink, item, exc)
            with self._handled_cond:
                self._handled += 1
                self._handled_cond.notify_all()

    def close(self, timeout: float = 10.0) -> None:
        """Drain what was submitted, then stop the worker."""
        if self._started:
            self._queue.put_nowait(self._STOP)
            self._thread.join(timeout)
            self._started = False
