"""The persistent MQTT outbox and the caregivers' acknowledgements.

Why SQLite and not paho's queue: paho keeps unacknowledged QoS 1 messages in
memory only, so a restart or a power cut would lose exactly the fall that
happened while the Wi-Fi was down. Here an event is inserted into ``events``
and queued in ``outbox`` in one ``synchronous=FULL`` transaction, and its
row is deleted only when the broker has acknowledged it (PUBACK). Another
writer that must store something and queue it together (the session log)
calls :func:`queue_message` inside its own transaction.

An event's row holds no copy of it: its payload is built from the event (and
its recording) when it is published, so a trip's IMU is stored once
(``payload`` is empty; rows queued before that keep their text).

Bound: ``max_rows``. When an insert takes the outbox over it, the oldest
telemetry goes first, then the oldest informational events (start, stop,
reset). Alerts (stumble, fall, no-recovery, help), faults, the events that close
or explain an incident (ok, closed, window), test alarms and session summaries
are never dropped (:data:`~core.protocol.events.PROTECTED_TYPES`): the bound is
exceeded (and logged) rather than lose one. A drop is counted and
logged only once its transaction has committed
(:func:`~firmware.storage.database.after_commit`, whoever opened it): one a full
disk refused dropped nothing, and one run again in memory
(:mod:`firmware.storage.fallback`) dropped once.

Each thread gets its own connection to the file (WAL lets the publisher read
while the courier's main thread writes); nothing here ever runs on the
real-time thread. In the courier the rows may live in memory for a while
(:mod:`firmware.storage.fallback`); row ids stay the same across such a move.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from core.protocol import payloads
from core.protocol.commands import Ack
from core.protocol.events import ALERT_TYPES, PROTECTED_TYPES, Event
from core.protocol.topics import Topics
from firmware.storage import incidents
from firmware.storage.database import (
    Database,
    after_commit,
    as_database,
    connect,
    require_transaction,
)
from firmware.storage.events import event_from_row, insert_event

log = logging.getLogger(__name__)

PRIORITY_TELEMETRY = 0
"""Dropped first when the outbox is full."""
PRIORITY_INFO = 1
"""start / stop / reset: dropped only when no telemetry is left to drop."""
PRIORITY_PROTECTED = 2
"""Alerts, faults, ok / closed / window / test events, session summaries: never dropped."""


class MessageKind(StrEnum):
    """The ``kind`` column: what a queued row is, as opposed to how it may be dropped (priority)."""

    EVENT = "event"
    """An event, or a record delivered like one (a session summary)."""
    TELEMETRY = "telemetry"
    """Periodic health figures."""


def queue_message(
    conn: sqlite3.Connection,
    kind: MessageKind,
    priority: int,
    topic: str,
    payload: str,
    event_seq: int | None = None,
    message_id: str | None = None,
) -> None:
    """Queue one message inside the caller's transaction (the caller commits or rolls back).

    For writers that store something and queue its message together, so
    neither happens without the other. It does not apply the bound; the
    caller decides whether that is needed (never for protected rows).
    ``message_id`` names what the message carries (an event or session id):
    a consumer's receipt names it when the message may be forgotten.
    """
    conn.execute(
        "INSERT INTO outbox (kind, priority, event_seq, topic, payload, queued_wall, message_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (kind.value, priority, event_seq, topic, payload, payloads.wall_now(), message_id),
    )


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    topic: str
    payload: str


BUILT_FROM_EVENT = ""
"""The ``payload`` of an event's row: built from the event when it is published."""

_ROWS = (
    "SELECT o.id, o.topic, o.payload, e.seq, e.body, r.recording, coalesce(i.walker, e.walker)"
    " FROM outbox o"
    " LEFT JOIN events e ON o.payload = '' AND e.seq = o.event_seq"
    " LEFT JOIN recordings r ON r.event_id = e.id"
    " LEFT JOIN incidents i ON i.id = e.incident"
)


def _row(row: tuple[object, ...]) -> OutboxRow:
    """A row as published: an event's payload built from the event as stored, naming the
    walker its incident records (:func:`firmware.storage.incidents.note_event`), and for an
    event of no incident the walker of the session under way when it was raised (if any)."""
    row_id, topic, payload, seq, body, recording, walker = row
    text = str(payload)
    if text == BUILT_FROM_EVENT and body is not None:
        event = event_from_row(str(body), recording if isinstance(recording, bytes) else None)
        text = payloads.event_payload(event, int(str(seq)), None if walker is None else str(walker))
    return OutboxRow(int(str(row_id)), str(topic), text)


@dataclass(frozen=True, slots=True)
class _Bounded:
    """What the bound did in one transaction, told (counted and logged) only once that
    transaction has committed: a transaction rolled back (a full disk refusing the commit)
    dropped nothing, and one the courier's database runs again in memory after the file
    refused it must not count its drops twice."""

    dropped: tuple[tuple[str, int], ...]
    """(label, rows) for each priority it dropped rows of, in the order dropped."""
    held: int
    """Rows the outbox holds after the drops."""

    @property
    def total(self) -> int:
        return sum(n for _, n in self.dropped)


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """What an ``ack`` did (the command's reply)."""

    event_id: str | None
    """The alert named, or the incident's newest one."""
    incident: str | None
    """The incident closed; None for an alert from before incidents (acknowledged alone)."""
    already: bool
    """It was closed (or acknowledged) before: nothing changed, no ``closed`` event."""
    by: str
    """Who closed it (for ``already``: who did, first)."""
    via: str | None
    closed_event: Event | None = None
    """The ``closed`` event stored and queued, when this ack closed the incident."""


class Outbox:
    """Messages on their way to the broker, and alerts on their way to a consumer.

    A row leaves when the broker acknowledges it (PUBACK) — except, with
    ``receipts``, a protected row (alert, fault, session summary): the PUBACK
    only marks it *awaiting receipt*, and it leaves when a consumer that
    commits alerts names it in a receipt (:meth:`receipted`). Until then the
    publisher sends it again after every reconnect and on a timer.

    ``database`` is a path (this outbox opens and closes that file) or the
    courier's :class:`~firmware.storage.database.Database`, which may move the
    rows between the file and memory: :attr:`generation` says when it did.
    """

    def __init__(
        self,
        database: str | Path | Database,
        topics: Topics,
        max_rows: int = 10000,
        *,
        receipts: bool = False,
    ) -> None:
        if max_rows < 1:
            raise ValueError("outbox max_rows must be at least 1")
        self.topics = topics
        self.max_rows = max_rows
        self.receipts = receipts
        self.dropped = 0
        """Rows dropped by the bound since this object was made (committed drops only)."""
        self._told = threading.Lock()
        self._db, self._owned = as_database(database)

    @property
    def database(self) -> Database:
        """The database the outbox lives in (the commands' bookkeeping shares it)."""
        return self._db

    @property
    def generation(self) -> int:
        """Changes when the rows moved to another database: a reader starts over from id 0."""
        return self._db.generation

    def close(self) -> None:
        """Close the file this outbox opened (call once the threads are done)."""
        if self._owned:
            self._db.close()

    # ------------------------------------------------------------ producers

    def enqueue_event(self, event: Event, walker: str | None = None) -> int:
        """Store ``event`` and queue its ``/event`` message in one transaction; return its seq.

        Idempotent by event id: a second call stores and queues nothing new. ``walker``: the
        walker of the session under way, whose incident the event opens (None: none).
        """
        return self._db.write(lambda conn: self._enqueue_event(conn, event, walker), key=event.id)

    def enqueue_event_in(
        self, conn: sqlite3.Connection, event: Event, walker: str | None = None
    ) -> int:
        """:meth:`enqueue_event` inside the caller's transaction (the courier commits a trip's
        event with the session record that counts it).

        ``conn`` must be in a :func:`~firmware.storage.database.transaction` (a
        :meth:`Database.write`'s): what the bound dropped to make room is told (counted,
        logged) when that transaction commits, and never if it rolls back — the caller is
        not trusted to say when (before, it called ``committed(event_id)`` after its commit,
        and a call before the commit, or after a rollback, counted drops that never
        happened). Outside one: ``RuntimeError`` before anything is written."""
        return self._enqueue_event(conn, event, walker)

    def _enqueue_event(self, conn: sqlite3.Connection, event: Event, walker: str | None) -> int:
        require_transaction(conn)  # the bound's drops are told at its commit
        before = conn.total_changes
        seq = insert_event(conn, event, walker)
        if conn.total_changes == before:  # a repeat, not a new event
            return seq
        priority = PRIORITY_PROTECTED if event.type in PROTECTED_TYPES else PRIORITY_INFO
        queue_message(
            conn,
            MessageKind.EVENT,
            priority,
            self.topics.event,
            BUILT_FROM_EVENT,
            event_seq=seq,
            message_id=event.id,
        )
        self._enforce_bound(conn)
        return seq

    def enqueue_telemetry(self, payload: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            queue_message(
                conn, MessageKind.TELEMETRY, PRIORITY_TELEMETRY, self.topics.telemetry, payload
            )
            self._enforce_bound(conn)

        self._db.write(work)

    def _enforce_bound(self, conn: sqlite3.Connection) -> None:
        """Drop what the bound allows, inside the caller's transaction; what it did is told
        (:meth:`_tell`) once that transaction has committed."""
        (count,) = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
        excess = int(count) - self.max_rows
        if excess <= 0:
            return
        dropped: list[tuple[str, int]] = []
        for priority, label in ((PRIORITY_TELEMETRY, "telemetry"), (PRIORITY_INFO, "info event")):
            if excess <= 0:
                break
            cur = conn.execute(
                "DELETE FROM outbox WHERE id IN"
                " (SELECT id FROM outbox WHERE priority = ? ORDER BY id LIMIT ?)",
                (priority, excess),
            )
            if cur.rowcount > 0:
                dropped.append((label, cur.rowcount))
                excess -= cur.rowcount
        bounded = _Bounded(tuple(dropped), int(count) - sum(n for _, n in dropped))
        after_commit(conn, lambda: self._tell(bounded))

    def _tell(self, bounded: _Bounded) -> None:
        """Count and log what the bound did in a transaction that has committed."""
        if bounded.total:
            with self._told:
                self.dropped += bounded.total
                so_far = self.dropped
            log.warning(
                "MQTT outbox over its bound of %d rows: dropped the oldest %s (%d dropped so far)",
                self.max_rows,
                ", ".join(f"{n} {label}" for label, n in bounded.dropped),
                so_far,
            )
        if bounded.held > self.max_rows:
            log.warning(
                "MQTT outbox holds %d rows, over its bound of %d, and all are alerts or faults: "
                "keeping them (alerts are never dropped)",
                bounded.held,
                self.max_rows,
            )

    # ------------------------------------------------------------ publisher

    def fetch_after(self, after_id: int, limit: int) -> list[OutboxRow]:
        """The next ``limit`` queued rows with ``id > after_id``, oldest first."""
        rows = self._db.read(
            lambda conn: conn.execute(
                f"{_ROWS} WHERE o.id > ? ORDER BY o.id LIMIT ?", (after_id, limit)
            ).fetchall()
        )
        return [_row(row) for row in rows]

    def fetch_ids(self, ids: Iterable[int]) -> list[OutboxRow]:
        """The rows with these ids that are still queued, oldest first."""
        wanted = sorted(set(ids))
        if not wanted:
            return []
        marks = ", ".join("?" * len(wanted))
        rows = self._db.read(
            lambda conn: conn.execute(
                f"{_ROWS} WHERE o.id IN ({marks}) ORDER BY o.id", wanted
            ).fetchall()
        )
        return [_row(row) for row in rows]

    def delete(self, ids: Iterable[int]) -> None:
        """Forget rows whatever they carry (one transaction for the whole batch)."""
        batch = [(i,) for i in ids]
        if batch:
            self._db.write(lambda conn: conn.executemany("DELETE FROM outbox WHERE id = ?", batch))

    def settle(self, ids: Iterable[int]) -> None:
        """The broker acknowledged these rows (one transaction for a batch of PUBACKs).

        Without receipts they are forgotten. With receipts, protected rows
        that name their message wait for a consumer's receipt instead.
        """
        batch = [(i,) for i in ids]
        if not batch:
            return

        def work(conn: sqlite3.Connection) -> None:
            if self.receipts:
                conn.executemany(
                    "UPDATE outbox SET awaiting_receipt = 1 WHERE id = ? AND priority = ?"
                    " AND message_id IS NOT NULL",
                    [(i, PRIORITY_PROTECTED) for (i,) in batch],
                )
                conn.executemany("DELETE FROM outbox WHERE id = ? AND awaiting_receipt = 0", batch)
            else:
                conn.executemany("DELETE FROM outbox WHERE id = ?", batch)

        self._db.write(work)

    def receipted(self, message_ids: Iterable[str], published_up_to: int | None = None) -> int:
        """A consumer committed these messages: forget their rows; how many were forgotten.

        ``published_up_to``: the newest row the publisher has sent; a row after it cannot be
        what the consumer committed and stays (an amended session summary queued after the
        one the receipt is for, under the same session id)."""
        newest = published_up_to if published_up_to is not None else -1
        batch = [(m, newest, newest) for m in message_ids]
        if not batch:
            return 0

        def work(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            conn.executemany(
                "DELETE FROM outbox WHERE message_id = ? AND (? < 0 OR id <= ?)", batch
            )
            return conn.total_changes - before

        return self._db.write(work)

    def awaiting_receipt(self, limit: int) -> list[OutboxRow]:
        """The oldest rows the broker has but no consumer has confirmed (to publish again)."""
        rows = self._db.read(
            lambda conn: conn.execute(
                f"{_ROWS} WHERE o.awaiting_receipt = 1 ORDER BY o.id LIMIT ?", (limit,)
            ).fetchall()
        )
        return [_row(row) for row in rows]

    def awaiting_count(self) -> int:
        return self._count("SELECT COUNT(*) FROM outbox WHERE awaiting_receipt = 1")

    def depth(self) -> int:
        return self._count("SELECT COUNT(*) FROM outbox")

    def oldest_awaiting_wall(self) -> str | None:
        """When the oldest row still awaiting a consumer's receipt was queued (its wall time,
        for people: how long the caregiver service has not confirmed an alert), or None."""
        row = self._db.read(
            lambda conn: conn.execute(
                "SELECT queued_wall FROM outbox WHERE awaiting_receipt = 1 ORDER BY id LIMIT 1"
            ).fetchone()
        )
        return None if row is None or row[0] is None else str(row[0])

    def _count(self, query: str) -> int:
        (count,) = self._db.read(lambda conn: conn.execute(query).fetchone())
        return int(count)

    # -------------------------------------------------------- acknowledgement

    def close_incident(
        self,
        ack: Ack,
        closing: Callable[[str, str, str], Event],
        shown: incidents.Shown | None = None,
    ) -> Acknowledged:
        """A caregiver's ``ack``: close the incident it names, once (docs/incidents.md).

        The incident is the one named, that of the event named, or with
        ``"latest"`` the one ``shown`` in the retained ``incident`` message (without
        ``shown``, the newest open one). An event that joined the incident after the one
        the ack says was seen (named, or shown), and would have opened it again had the ack
        closed it then (:func:`incidents.unseen_news`: a fall after a stumble, a call for
        help, a fault), keeps it open: ``LookupError`` saying so, nothing stored — an ack
        held up on the way (sent again when the device came back online) never closes news
        nobody saw. Closing it stores and queues the
        ``closed`` event ``closing(incident, by, via)`` makes, in the same
        transaction that records who closed it; an incident already closed
        (by the walker or a caregiver) is answered ``already`` and nothing is
        sent. An alert outside any incident is acknowledged alone, as before
        (:meth:`acknowledge`). ``LookupError`` when the ack names nothing
        this device knows, or nothing is open.
        """
        via = ack.via or "mqtt"

        def work(conn: sqlite3.Connection) -> Acknowledged:
            target = incidents.resolve(conn, self.topics.device_id, ack, shown)
            if target is None or target.incident is None:
                named = ack.incident if ack.incident is not None else ack.event_id
                found, new = self._acknowledge(conn, named, ack.by)
                return Acknowledged(found, None, not new, ack.by, via)
            incident = target.incident
            if not incident.open:
                return Acknowledged(
                    target.event_id,
                    incident.id,
                    True,
                    incident.closed_by or ack.by,
                    incident.closed_via,
                )
            news = incidents.unseen_news(conn, incident.id, target.seen) if target.seen else []
            if news:
                raise LookupError(
                    f"incident {incident.id} stays open: {', '.join(dict.fromkeys(news))} came "
                    f"after the event acknowledged ({target.seen}); look, then acknowledge again"
                )
            event = closing(incident.id, ack.by, via)
            seq = insert_event(conn, event)
            incidents.acknowledge_alerts(conn, incident.id, ack.by, event.wall_time)
            queue_message(
                conn,
                MessageKind.EVENT,
                PRIORITY_PROTECTED,
                self.topics.event,
                BUILT_FROM_EVENT,
                event_seq=seq,
                message_id=event.id,
            )
            return Acknowledged(target.event_id, incident.id, False, ack.by, via, event)

        return self._db.write(work)

    def acknowledge(self, event_id: str, by: str) -> tuple[str, bool]:
        """Record that a caregiver acknowledged an alert; return (event id, newly acknowledged).

        ``event_id == "latest"`` means the newest alert outside any incident not
        yet acknowledged (incidents are closed with :meth:`close_incident`). Raises
        ``LookupError`` when there is no such alert.
        """
        return self._db.write(lambda conn: self._acknowledge(conn, event_id, by))

    def _acknowledge(self, conn: sqlite3.Connection, event_id: str, by: str) -> tuple[str, bool]:
        alert_types = tuple(t.value for t in ALERT_TYPES)
        marks = ",".join("?" * len(alert_types))
        if event_id == "latest":
            row = conn.execute(
                f"SELECT id FROM events WHERE device_id = ? AND type IN ({marks})"
                " AND incident IS NULL AND id NOT IN (SELECT event_id FROM event_acks)"
                " ORDER BY seq DESC LIMIT 1",
                (self.topics.device_id, *alert_types),
            ).fetchone()
            if row is None:
                raise LookupError("no unacknowledged alert (and no open incident)")
        else:
            row = conn.execute(
                f"SELECT id FROM events WHERE id = ? AND device_id = ? AND type IN ({marks})",
                (event_id, self.topics.device_id, *alert_types),
            ).fetchone()
            if row is None:
                raise LookupError(f"no alert with id {event_id}")
        found = str(row[0])
        cur = conn.execute(
            "INSERT OR IGNORE INTO event_acks (event_id, acked_by, wall_time) VALUES (?, ?, ?)",
            (found, by, payloads.wall_now()),
        )
        return found, cur.rowcount > 0

    def last_state(self) -> str:
        """The safety state of the device's newest stored event (STARTING before any)."""
        row = self._db.read(
            lambda conn: conn.execute(
                "SELECT json_extract(body, '$.state') FROM events WHERE device_id = ?"
                " ORDER BY seq DESC LIMIT 1",
                (self.topics.device_id,),
            ).fetchone()
        )
        return "STARTING" if row is None or row[0] is None else str(row[0])

    def acknowledged_by(self, event_id: str) -> str | None:
        row = self._db.read(
            lambda conn: conn.execute(
                "SELECT acked_by FROM event_acks WHERE event_id = ?", (event_id,)
            ).fetchone()
        )
        return None if row is None else str(row[0])


@dataclass(frozen=True, slots=True)
class OutboxDepth:
    unsent: int
    """Rows the broker has not acknowledged yet."""
    awaiting_receipt: int
    """Rows the broker has, waiting for a consumer's receipt (sent again at the next start)."""


def outbox_depth(path: str | Path) -> OutboxDepth:
    """What the outbox in the database at ``path`` still holds (for the demo, tests, doctor)."""
    conn = connect(path)
    try:
        total, awaiting = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(awaiting_receipt), 0) FROM outbox"
        ).fetchone()
        return OutboxDepth(int(total) - int(awaiting), int(awaiting))
    finally:
        conn.close()
