"""A transaction's operations on events: a batch's inserts, recording, reading, acks.

One of the parts :class:`caregiver.storage.store.Transaction` is made of (one per area of
the schema); it holds no state of its own.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

from caregiver.storage.engines import Cursor
from caregiver.storage.records import NewEvent, StoredEvent
from caregiver.storage.rows import _event
from caregiver.storage.sql import (
    _CHUNK,
    _EVENT_COLUMN_TYPES,
    _EVENT_COLUMNS,
    _EVENT_INSERT,
    _EVENT_INSERT_INTO,
    _EVENT_VALUES,
    _FIRST_SEQ,
    _KEEP_NEWER_LAST_EVENT,
    _NEW_LAST_EVENT,
    _chunks,
    _event_row,
    _marks,
    _resent,
)
from caregiver.storage.tx_base import _Prepared, _TxBase


class TxEvents(_TxBase):
    """A transaction's operations on events: a batch's inserts, recording, reading, acks."""

    def prepare(self, events: Sequence[tuple[NewEvent, float]]) -> _Prepared:
        """A batch's events (each with when it was received) inserted in a few statements,
        in (device id, event id) order, and their incidents looked up at once: its messages'
        :meth:`record_event`, :meth:`incident` and :meth:`page_alert` (an alert id reserved
        for each new event) then wait for no answer (a round trip each,
        on PostgreSQL, under a loaded machine the bulk of an event's time). An event inserted
        here is deleted again if its message's handling fails (:meth:`Store.message`): it is
        stored only with its incident and alert."""
        prepared = _Prepared()
        first: dict[str, tuple[NewEvent, float]] = {}
        for event, now in events:
            first.setdefault(event.id, (event, now))
        ordered = sorted(first.values(), key=lambda item: (item[0].device_id, item[0].id))
        # every statement sent before any answer is read: on PostgreSQL one wait, not three
        inserted: list[Cursor] = []
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start : start + _CHUNK]
            source, params = self._db.rows(
                _EVENT_COLUMN_TYPES, [_event_row(event, now) for event, now in chunk]
            )
            inserted.append(
                self._db.execute(
                    f"{_EVENT_INSERT_INTO} {source} ON CONFLICT (id) DO NOTHING RETURNING id",
                    params,
                )
            )
        incidents = sorted({i for e, _ in ordered for i in (e.incident, e.id) if i is not None})
        looked_up: list[tuple[list[str], Cursor]] = []
        for start in range(0, len(incidents), _CHUNK):
            ids = incidents[start : start + _CHUNK]
            where, params = self._db.one_of("id", ids)
            looked_up.append(
                (ids, self._db.execute(f"SELECT id FROM incidents WHERE {where}", params))
            )
        # an alert id for each event, new or not (those of duplicates go unused)
        reserved = self._db.reserve_ids("alerts", len(first))
        for cursor in inserted:
            prepared.new_events.update(str(row[0]) for row in cursor.fetchall())
        prepared.events.update(first)
        for ids, cursor in looked_up:
            found = {str(row[0]) for row in cursor.fetchall()}
            prepared.absent_incidents.update(set(ids) - found)
        prepared.alert_ids.extend(reserved())
        return prepared

    def finish(self) -> None:
        """The batch's end: each device's newest event recorded, in device id order."""
        prepared = self._prepared
        if prepared is None or not prepared.latest_events:
            return
        ordered = sorted(prepared.latest_events.items())
        prepared.latest_events.clear()
        # a device whose sequence the batch started again: its newest is newer than the one
        # stored before, whatever their numbers (its event 1 came after that one)
        for again, keep in ((False, _KEEP_NEWER_LAST_EVENT), (True, _NEW_LAST_EVENT)):
            rows = [(d, now, e) for d, (_, e, now, restarted) in ordered if restarted is again]
            for start in range(0, len(rows), _CHUNK):
                source, params = self._db.rows(
                    (("device_id", "TEXT"), ("last_seen", "REAL"), ("last_event_id", "TEXT")),
                    rows[start : start + _CHUNK],
                )
                self._db.execute(
                    f"INSERT INTO devices (device_id, last_seen, last_event_id) {source} "
                    "ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen, " + keep,
                    params,
                )

    def record_event(self, event: NewEvent, now: float) -> bool:
        """Store a device's event and make it the device's latest; False if that id is already
        stored (a QoS 1 redelivery), which then changes nothing but the device's last seen.

        Two statements (round trips on PostgreSQL): the event, then the device row. An
        instance racing another on the same id waits on the first statement until the other
        commits; what follows in the transaction (the incident and its alert) runs under the
        device row's lock, so two instances' events of one device are decided one at a time.
        In a batch that :meth:`prepare` d the event: no statement now (the batch inserted
        it, under its devices' locks, and updates the device row at its end).
        """
        prepared = self._prepared
        if prepared is not None and event.id in prepared.events:
            if event.id not in prepared.new_events:
                return (
                    False  # stored before, or earlier in this batch; the batch touched the device
                )
            prepared.new_events.discard(event.id)
            order = event.seq or 0
            kept = prepared.latest_events.get(event.device_id)
            if kept is None or not _resent(kept[0], order):
                again = order == _FIRST_SEQ or (kept is not None and kept[3])
                prepared.latest_events[event.device_id] = (order, event.id, now, again)
            else:  # an older one, resent: the newer stays the latest
                prepared.latest_events[event.device_id] = (kept[0], kept[1], now, kept[3])
            return True
        cur = self._db.execute(
            _EVENT_INSERT + _EVENT_VALUES + " ON CONFLICT (id) DO NOTHING RETURNING id",
            _event_row(event, now),
        )
        if cur.fetchone() is None:  # (a fetch, not the row count: one wait in a pipeline)
            self._touch(event.device_id, now)
            return False
        self._db.execute(
            "INSERT INTO devices (device_id, last_seen, last_event_id) VALUES (?, ?, ?) "
            "ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen, "
            + _KEEP_NEWER_LAST_EVENT,
            (event.device_id, now, event.id),
        )
        return True

    def event(self, event_id: str) -> StoredEvent | None:
        row = self._db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,)
        ).fetchone()
        return _event(row) if row else None

    def events_by_id(self, event_ids: Collection[str]) -> dict[str, StoredEvent]:
        return self._by_id(f"SELECT {_EVENT_COLUMNS} FROM events", "id", event_ids, _event)

    def events_for(self, device_id: str, limit: int) -> list[StoredEvent]:
        rows = self._db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE device_id = ? "
            "ORDER BY received_at DESC, seq DESC NULLS LAST LIMIT ?",
            (device_id, limit),
        ).fetchall()
        return [_event(r) for r in rows]

    def recent_events(
        self, types: Sequence[str], limit: int, devices: Collection[str] | None = None
    ) -> list[StoredEvent]:
        """The latest events of these types over every device (or only ``devices``), newest
        first."""
        where = f"type IN ({_marks(types)})"
        args: list[object] = [*types]
        if devices is not None:
            where += f" AND device_id IN ({_marks(list(devices))})"
            args += list(devices)
        rows = self._db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE {where} ORDER BY received_at DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [_event(r) for r in rows]

    def imu_window(self, event_id: str) -> object | None:
        """The ``imu_window`` of the event as received (unchecked), or None without one."""
        row = self._db.execute(
            "SELECT payload FROM events WHERE id = ? AND has_window <> 0", (event_id,)
        ).fetchone()
        if row is None:
            return None
        payload = json.loads(row[0])
        return payload.get("imu_window") if isinstance(payload, dict) else None

    def event_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def acknowledge_events(
        self, event_ids: Collection[str], by: str, now: float, request_id: str
    ) -> None:
        """Record who acknowledged these events and the ack command's request id (what the
        device's reply confirms); a first acknowledgement stands."""
        for chunk in _chunks(event_ids):
            self._db.execute(
                "UPDATE events SET acked_by = ?, acked_at = ?, ack_request_id = ? "
                f"WHERE acked_by IS NULL AND id IN ({_marks(chunk)})",
                (by, now, request_id, *chunk),
            )

    def confirm_ack(self, device_id: str, request_id: str) -> list[str]:
        """The device confirmed the ack command ``request_id``: the incidents whose events it
        confirmed (none if no event waited on it)."""
        cur = self._db.execute(
            "UPDATE events SET ack_confirmed = 1 WHERE device_id = ? AND ack_request_id = ?",
            (device_id, request_id),
        )
        if cur.rowcount <= 0:
            return []
        rows = self._db.execute(
            "SELECT DISTINCT COALESCE(incident, id) FROM events "
            "WHERE device_id = ? AND ack_request_id = ?",
            (device_id, request_id),
        ).fetchall()
        return sorted(str(r[0]) for r in rows)

    def ack_request_of(self, incident_id: str) -> str | None:
        """The request id of the newest ack command recorded for the incident's events (what
        the device's reply confirms), or None."""
        row = self._db.execute(
            "SELECT ack_request_id FROM events WHERE (incident = ? OR id = ?) "
            "AND ack_request_id IS NOT NULL ORDER BY acked_at DESC LIMIT 1",
            (incident_id, incident_id),
        ).fetchone()
        return None if row is None else str(row[0])
