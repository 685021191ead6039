"""Where the courier puts each event the monitor loop hands over.

The courier (:mod:`firmware.courier.service`) runs every event through its
sinks in order: the store first (:class:`StoreSink`, or :class:`OutboxSink`
when a broker is configured, which stores *and* queues in one transaction),
so an event is persisted before anything else sees it, then the log. A sink
that raises is logged and the others still run: a broken log handler must
not cost a stored fall.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import ClassVar, Protocol

from core.protocol.events import Event, Severity
from firmware.storage.events import EventStore, insert_event
from firmware.storage.outbox import Outbox

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Receives events on the courier's thread (never the loop's); may block briefly."""

    def handle(self, event: Event) -> None: ...


class StoringSink(Protocol):
    """The courier's first sink, which persists the event: told also whose session is under
    way, so the incident the event opens is that walker's (None: no session under way).

    :meth:`handle` commits the event on its own; :meth:`store_in` then :meth:`stored` are the
    same in two halves, for the courier to commit it in one transaction with what arrived
    with it (a trip's event and the session record with the trip counted)."""

    def handle(self, event: Event, walker: str | None = None) -> None: ...

    def store_in(self, conn: sqlite3.Connection, event: Event, walker: str | None = None) -> None:
        """The event's writes, inside the caller's transaction (on the courier's database)."""
        ...

    def stored(self, event: Event) -> None:
        """After the caller's transaction committed :meth:`store_in`'s writes (wakes, no disk)."""
        ...


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

    def handle(self, event: Event, walker: str | None = None) -> None:
        self.store.append(event, walker)

    def store_in(self, conn: sqlite3.Connection, event: Event, walker: str | None = None) -> None:
        insert_event(conn, event, walker)

    def stored(self, event: Event) -> None:
        pass


class OutboxSink:
    """Stores each event and queues it for MQTT in one transaction.

    Use it *instead of* :class:`StoreSink` (it writes the same ``events``
    table, so :class:`~firmware.storage.events.EventStore` reads it as usual).
    ``on_queued`` wakes the publisher; it must not block.
    """

    def __init__(self, outbox: Outbox, on_queued: Callable[[], None] | None = None) -> None:
        self.outbox = outbox
        self._on_queued = on_queued

    def handle(self, event: Event, walker: str | None = None) -> None:
        self.outbox.enqueue_event(event, walker)
        self.stored(event)

    def store_in(self, conn: sqlite3.Connection, event: Event, walker: str | None = None) -> None:
        self.outbox.enqueue_event_in(conn, event, walker)

    def stored(self, event: Event) -> None:
        if self._on_queued is not None:
            self._on_queued()
