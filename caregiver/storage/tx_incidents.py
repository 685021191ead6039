"""A transaction's operations on incidents and the recordings of their trips.

One of the parts :class:`caregiver.storage.store.Transaction` is made of (one per area of
the schema); it holds no state of its own.
"""

from __future__ import annotations

from collections.abc import Collection

from caregiver.storage.records import Incident, StoredEvent
from caregiver.storage.rows import _event, _incident
from caregiver.storage.sql import (
    _EVENT_COLUMNS,
    _INCIDENT_COLUMNS,
    _INCIDENT_LISTED,
    _INCIDENT_READ,
    _NEW_INCIDENT_COLUMNS,
    _NEWEST_CRITICAL,
    _marks,
)
from caregiver.storage.tx_base import _TxBase
from core.protocol.walker import DEFAULT_WALKER

_OPEN_INCIDENTS = (
    "WITH open_incidents AS MATERIALIZED (SELECT * FROM incidents WHERE status = 'open') "
)
"""The open incidents, read first through ``incidents_open_by_device`` (a partial index of
the open ones) and each's events searched from them (``CROSS JOIN``: SQLite keeps that order):
a database without ``ANALYZE`` statistics (a new one: the service keeps them from an hour after
start, :mod:`caregiver.planner_statistics`) otherwise had
:meth:`TxIncidents.open_critical` planned as a scan of every event ever stored, on every
page (benchmarks/caregiver_history.py)."""


class TxIncidents(_TxBase):
    """A transaction's operations on incidents and the recordings of their trips."""

    def incident(self, incident_id: str) -> Incident | None:
        if self._prepared is not None and incident_id in self._prepared.absent_incidents:
            return None
        row = self._db.execute(
            f"SELECT {_INCIDENT_READ} FROM incidents WHERE id = ?", (incident_id,)
        ).fetchone()
        return _incident(row) if row else None

    def incidents_by_id(
        self, incident_ids: Collection[str], listed: bool = False
    ) -> dict[str, Incident]:
        """``listed``: read as "Recent alerts" shows them (with their ``told``:
        :data:`_INCIDENT_LISTED`)."""
        select = f"SELECT {_INCIDENT_LISTED if listed else _INCIDENT_READ} FROM incidents"
        return self._by_id(select, "id", incident_ids, _incident)

    def open_incident(
        self,
        incident_id: str,
        device_id: str,
        severity: str,
        event_id: str,
        wall: str,
        now: float,
        walker: str = DEFAULT_WALKER.id,
        wall_unsynced: bool = False,
    ) -> None:
        """``wall``: the opening event's device time; ``wall_unsynced``: the device's clock
        was not set when it stamped it (the incident's list shows ``now``, as received)."""
        row = (
            incident_id, device_id, severity, "open", now, wall, event_id, now, walker,
            int(wall_unsynced),
        )  # fmt: skip
        if self._prepared is not None:  # a batch's: with its others, in one statement
            self._prepared.absent_incidents.discard(incident_id)
            self._db.defer("incidents", _NEW_INCIDENT_COLUMNS, row, "ON CONFLICT (id) DO NOTHING")
            return
        names = ", ".join(name for name, _ in _NEW_INCIDENT_COLUMNS)
        self._db.execute(
            f"INSERT INTO incidents ({names}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO NOTHING",
            row,
        )

    def worsen_incident(self, incident_id: str, severity: str, now: float) -> None:
        self._db.execute(
            "UPDATE incidents SET severity = ?, last_event_at = ? WHERE id = ?",
            (severity, now, incident_id),
        )

    def touch_incident(self, incident_id: str, now: float) -> None:
        self._db.execute("UPDATE incidents SET last_event_at = ? WHERE id = ?", (now, incident_id))

    def close_incident(
        self, incident_id: str, by: str, via: str, now: float, seq: int | None = None
    ) -> bool:
        """Close an open incident; False if it was not open (a repeat changes nothing). Its
        newest critical event (as :meth:`open_critical` orders them) is kept as closed with
        it: whoever closed it answered that one and those before it.

        ``seq`` is the closing event's sequence when the monitor closed it (the walker's I'm
        OK, a close relayed by the device, a re-arm): then the newest critical event *before*
        it, by the monitor's order — a batch stores all its events before it handles any, so
        a call for help the monitor sent after the I'm OK may be stored already, and was not
        answered by it. None (a close made here: the dashboard, a notification's link): the
        newest stored. None before it (a sequence started again since the fall): the one
        kept from an earlier close stays, and a reopening alarms — rather too loud than
        silent."""
        before = "" if seq is None else "AND e.seq < ? "
        cur = self._db.execute(
            "UPDATE incidents SET status = 'closed', closed_at = ?, closed_by = ?, "
            "closed_via = ?, closed_severity = severity, closed_critical = COALESCE(("
            "SELECT e.id FROM events e WHERE (e.incident = incidents.id "
            "OR (e.id = incidents.id AND e.incident IS NULL)) AND e.severity = 'critical' "
            f"{before}ORDER BY {_NEWEST_CRITICAL} LIMIT 1), closed_critical) "
            "WHERE id = ? AND status = 'open'",
            (now, by, via, *(() if seq is None else (seq,)), incident_id),
        )
        return cur.rowcount > 0

    def reopen_incident(self, incident_id: str, severity: str, now: float) -> None:
        """A worse event after the incident was closed: it is open again (its closed critical
        event stays: what was answered before the reopening is not news)."""
        self._db.execute(
            "UPDATE incidents SET status = 'open', severity = ?, last_event_at = ?, "
            "closed_at = NULL, closed_by = NULL, closed_via = NULL WHERE id = ?",
            (severity, now, incident_id),
        )

    def incidents_for(self, device_id: str, limit: int) -> list[Incident]:
        rows = self._db.execute(
            f"SELECT {_INCIDENT_READ} FROM incidents WHERE device_id = ? "
            "ORDER BY opened_at DESC LIMIT ?",
            (device_id, limit),
        ).fetchall()
        return [_incident(r) for r in rows]

    def recent_incidents(
        self, limit: int, devices: Collection[str] | None = None
    ) -> list[Incident]:
        where, args = "", []
        if devices is not None:
            where, args = f"WHERE device_id IN ({_marks(list(devices))})", list(devices)
        rows = self._db.execute(
            f"SELECT {_INCIDENT_LISTED} FROM incidents {where} ORDER BY opened_at DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [_incident(r) for r in rows]

    def open_critical(
        self, devices: Collection[str] | None, limit: int
    ) -> list[tuple[Incident, str]]:
        """Open incidents with a critical event (of ``devices`` only, unless None), newest
        first, at most ``limit`` of them: each with its newest critical event's id (by the
        device's sequence: a clock stepped back, or another instance's behind, does not
        make an older one the newest; by arrival for a monitor without one). Driven
        from the open incidents (few), each's events by the incident index; an event from
        before incidents is its own incident (no ``incident`` of its own)."""
        if devices is not None and not devices:
            return []
        names = [c.strip() for c in _INCIDENT_COLUMNS.split(",")]
        columns = ", ".join(f"i.{c}" for c in names)
        where = "i.status = 'open' AND e.severity = 'critical'"
        args: list[object] = []
        if devices is not None:
            where += f" AND i.device_id IN ({_marks(list(devices))})"
            args += list(devices)
        picked = "e.id AS critical, e.seq AS seq, e.received_at AS came, e.acked_by AS acked"
        found = (
            f"SELECT {columns}, i.closed_critical AS answered, {picked} "
            f"FROM open_incidents i CROSS JOIN events e WHERE e.incident = i.id AND {where} "
            f"UNION ALL SELECT {columns}, i.closed_critical, {picked} FROM open_incidents i "
            f"CROSS JOIN events e WHERE e.id = i.id AND e.incident IS NULL AND {where}"
        )
        plain = ", ".join(f"f.{c}" for c in names)
        newest = "f.seq DESC NULLS LAST, f.came DESC, f.critical DESC"  # _NEWEST_CRITICAL
        # Each incident's newest critical event, then only if nobody answered it: neither
        # acknowledged itself, nor the one its incident was closed with (a fall closed by the
        # walker's I'm OK, its incident reopened by a fault, is not missed again); a critical
        # event after the close is the newest, and is.
        rows = self._db.execute(
            _OPEN_INCIDENTS + f"SELECT {', '.join(names)}, critical FROM (SELECT {plain}, "
            "f.critical, f.came, "
            "f.acked, f.answered, "
            f"ROW_NUMBER() OVER (PARTITION BY f.id ORDER BY {newest}) AS n "
            f"FROM ({found}) f) r WHERE n = 1 AND acked IS NULL "
            "AND (answered IS NULL OR answered <> critical) ORDER BY came DESC, id LIMIT ?",
            (*args, *args, limit),
        ).fetchall()
        return [(_incident(r[:13]), str(r[13])) for r in rows]

    def open_incidents(self, device_id: str) -> list[Incident]:
        rows = self._db.execute(
            f"SELECT {_INCIDENT_READ} FROM incidents WHERE device_id = ? AND status = 'open' "
            "ORDER BY opened_at DESC",
            (device_id,),
        ).fetchall()
        return [_incident(r) for r in rows]

    def incident_events(self, incident_id: str) -> list[StoredEvent]:
        rows = self._db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE incident = ? "
            "ORDER BY received_at, seq NULLS FIRST",
            (incident_id,),
        ).fetchall()
        return [_event(r) for r in rows]

    def store_recording(self, trip_event_id: str, window_event_id: str, blob: bytes) -> None:
        self._db.execute(
            "INSERT INTO recordings (trip_event_id, window_event_id, recording) VALUES (?, ?, ?) "
            "ON CONFLICT (trip_event_id) DO NOTHING",
            (trip_event_id, window_event_id, blob),
        )
        self._db.execute("UPDATE events SET has_window = 1 WHERE id = ?", (trip_event_id,))

    def recording_unstored(self, window_event_id: str) -> None:
        """The recording ``window_event_id`` carried could not be stored (its table refused
        it) and the event was stored without it: its row says so, for its incident's pages
        (:meth:`recordings_unstored`). In the event's row, not in the table that refused."""
        self._db.execute(
            "UPDATE events SET recording_unstored = 1 WHERE id = ?", (window_event_id,)
        )

    def recordings_unstored(self, event: StoredEvent) -> bool:
        """Whether the recording ``event`` would be shown with could not be stored
        (:meth:`recording_unstored`): its own (a recording event), else its incident's."""
        row = self._db.execute(
            "SELECT 1 FROM events WHERE type = 'window' AND recording_unstored = 1 "
            "AND (id = ? OR incident = ?) LIMIT 1",
            (event.id, event.incident or event.id),
        ).fetchone()
        return row is not None

    def recording(self, trip_event_id: str) -> bytes | None:
        row = self._db.execute(
            "SELECT recording FROM recordings WHERE trip_event_id = ?", (trip_event_id,)
        ).fetchone()
        return bytes(row[0]) if row else None

    def incident_recording(self, incident_id: str) -> tuple[str, bytes] | None:
        """The incident's first recording, with the id of the trip it is about."""
        row = self._db.execute(
            "SELECT r.trip_event_id, r.recording FROM recordings r "
            "JOIN events e ON e.id = r.trip_event_id WHERE e.incident = ? "
            "ORDER BY e.received_at, e.seq NULLS FIRST LIMIT 1",
            (incident_id,),
        ).fetchone()
        return (str(row[0]), bytes(row[1])) if row else None
