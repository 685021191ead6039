"""Recording guided sessions off the loop thread, and the MQTT session summary.

The runner hands each session record over with a non-blocking put
(:meth:`SessionRecorder.submit`); the recorder's own thread saves it in the
session log (:mod:`firmware.storage.sessions`, in the monitor's database,
``storage.database``). A session's row is written when it starts running, at
every interval's end and pause (so a power cut loses at most one interval),
and a last time when it ends. With a broker configured, that last write also
queues the ``<prefix>/<device>/session`` summary (:func:`session_payload`) in
the MQTT outbox in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firmware.storage.database import connect
from firmware.storage.sessions import SummaryToQueue, save_session

if TYPE_CHECKING:
    from firmware.mqtt.reporter import MqttReporter

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""The ``schema`` field of the session summary payload."""


def session_payload(record: Mapping[str, Any]) -> str:
    """The ``.../session`` summary (docs/mqtt/schemas/session.schema.json)."""
    data = dict(record)
    data["schema"] = SCHEMA_VERSION
    data["wall_time"] = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


class SessionRecorder:
    """Writes session records on its own thread; :meth:`submit` never blocks."""

    def __init__(self, database: str | Path, reporter: MqttReporter | None = None) -> None:
        self.database = Path(database)
        self._reporter = reporter
        self._queue: queue.SimpleQueue[tuple[dict[str, Any], bool] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="retroguard-sessions", daemon=True)
        self._done = threading.Condition()
        self._submitted = 0
        self._handled = 0
        self.published = 0
        """Summaries queued for MQTT since start."""
        connect(self.database).close()  # a bad path or a newer file fails here, not on the thread

    def start(self) -> None:
        self._thread.start()

    def submit(self, record: dict[str, Any], final: bool) -> None:
        """Hand a record over (the runner calls this on the loop thread)."""
        self._submitted += 1
        self._queue.put_nowait((record, final))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far is written (not for the loop thread)."""
        target = self._submitted
        with self._done:
            return self._done.wait_for(lambda: self._handled >= target, timeout)

    def close(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._queue.put_nowait(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        conn = connect(self.database)
        topic = self._reporter.topics.session if self._reporter is not None else None
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                record, final = item
                try:
                    queued = save_session(conn, record, _summary(record, topic) if final else None)
                except Exception:
                    log.exception("session %s could not be stored", record.get("id"))
                    queued = False
                if queued and self._reporter is not None:
                    self.published += 1
                    self._reporter.wake()
                with self._done:
                    self._handled += 1
                    self._done.notify_all()
        finally:
            conn.close()


def _summary(record: Mapping[str, Any], topic: str | None) -> SummaryToQueue | None:
    """The summary to queue with a final record (none without a broker)."""
    if topic is None:
        return None
    return SummaryToQueue(topic, lambda: session_payload(record))
