"""Keeping guided-session records, and the MQTT session summary (in the courier process).

The runner hands each session record to the courier link (a non-blocking
put on the loop thread); the courier saves it with :class:`SessionArchive`
in the session log (:mod:`firmware.storage.sessions`, in the monitor's
database, ``storage.database``). A session's row is written when it starts
running, at every interval's end and pause (so a power cut loses at most one
interval), and a last time when it ends. With a broker configured, that last
write also queues the ``<prefix>/<device>/session`` summary
(:func:`session_payload`) in the MQTT outbox in the same transaction. A record
amended after its session ended (a fall confirmed later in the incident of its
trip) is written and queued again, replacing the summary still queued.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from core.protocol import payloads
from core.protocol.messages import SessionRecord
from firmware.link.messages import session_key
from firmware.storage.database import Database, as_database
from firmware.storage.sessions import SummaryToQueue, write_session

log = logging.getLogger(__name__)


def session_payload(record: SessionRecord, wall_time: str | None = None) -> str:
    """The ``.../session`` summary of an ended session (docs/mqtt/schemas/session.schema.json).

    ``wall_time`` (when it is queued) defaults to now. :class:`ValueError` for a
    running session: it has no summary yet.
    """
    return payloads.session_payload(record.summary(wall_time or payloads.wall_now()))


class SessionArchive:
    """Saves session records as they come (on the courier's thread, never the loop's)."""

    def __init__(
        self,
        database: str | Path | Database,
        *,
        summary_topic: str | None = None,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self._db, self._owned = as_database(database)
        self._topic = summary_topic
        self._on_queued = on_queued
        self.published = 0
        """Summaries queued for MQTT since start."""

    def save(self, record: SessionRecord, final: bool) -> bool:
        """Store ``record`` (and with ``final`` queue its summary); False if it could not be."""
        try:
            queued = self._db.write(
                lambda conn: self.write(conn, record, final), key=session_key(record)
            )
        except Exception:
            log.exception("session %s could not be stored", record.id)
            return False
        self.written(queued)
        return True

    def write(self, conn: sqlite3.Connection, record: SessionRecord, final: bool) -> bool:
        """:meth:`save`'s writes inside the caller's transaction (the courier commits a record
        with the trip's event that came with it); whether a summary was queued, for
        :meth:`written` once the transaction committed."""
        summary = self.summary_for(record) if final else None
        return write_session(conn, record, summary, final_due=record.ended and not final)

    def written(self, queued: bool) -> None:
        """A record :meth:`write` wrote is committed: a summary it queued is counted and the
        publisher woken."""
        if queued:
            self.queued(1)

    def summary_for(self, record: SessionRecord) -> SummaryToQueue | None:
        """The summary to queue with an ended ``record`` (none without a broker)."""
        return _summary(record, self._topic)

    def queued(self, count: int) -> None:
        """``count`` summaries were queued in a caller's transaction (a session left running
        closed at a new run's start): counted, and the publisher woken, as :meth:`save` does."""
        if count <= 0:
            return
        self.published += count
        if self._on_queued is not None:
            self._on_queued()

    def close(self) -> None:
        if self._owned:
            self._db.close()


def _summary(record: SessionRecord, topic: str | None) -> SummaryToQueue | None:
    """The summary to queue with a final record (none without a broker)."""
    if topic is None:
        return None
    return SummaryToQueue(topic, lambda: session_payload(record))
