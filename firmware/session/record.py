"""Keeping guided-session records, and the MQTT session summary (in the courier process).

The runner hands each session record to the courier link (a non-blocking
put on the loop thread); the courier saves it with :class:`SessionArchive`
in the session log (:mod:`firmware.storage.sessions`, in the monitor's
database, ``storage.database``). A session's row is written when it starts
running, at every interval's end and pause (so a power cut loses at most one
interval), and a last time when it ends. With a broker configured, that last
write also queues the ``<prefix>/<device>/session`` summary
(:func:`session_payload`) in the MQTT outbox in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from firmware.storage.database import connect
from firmware.storage.sessions import SummaryToQueue, save_session

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""The ``schema`` field of the session summary payload."""


def session_payload(record: Mapping[str, Any]) -> str:
    """The ``.../session`` summary (docs/mqtt/schemas/session.schema.json)."""
    data = dict(record)
    data["schema"] = SCHEMA_VERSION
    data["wall_time"] = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


class SessionArchive:
    """Saves session records as they come (on the courier's thread, never the loop's)."""

    def __init__(
        self,
        database: str | Path,
        *,
        summary_topic: str | None = None,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.database = Path(database)
        self._topic = summary_topic
        self._on_queued = on_queued
        self._conn = connect(self.database)
        self.published = 0
        """Summaries queued for MQTT since start."""

    def save(self, record: dict[str, Any], final: bool) -> bool:
        """Store ``record`` (and with ``final`` queue its summary); False if it could not be."""
        try:
            queued = save_session(
                self._conn, record, _summary(record, self._topic) if final else None
            )
        except Exception:
            log.exception("session %s could not be stored", record.get("id"))
            return False
        if queued:
            self.published += 1
            if self._on_queued is not None:
                self._on_queued()
        return True

    def close(self) -> None:
        self._conn.close()


def _summary(record: Mapping[str, Any], topic: str | None) -> SummaryToQueue | None:
    """The summary to queue with a final record (none without a broker)."""
    if topic is None:
        return None
    return SummaryToQueue(topic, lambda: session_payload(record))
