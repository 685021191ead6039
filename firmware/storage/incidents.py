"""Incidents on the device: which events belong together, and who closed each, how and when.

The monitor loop names the incident on every event of one bad moment on the
belt (docs/incidents.md); the courier records each incident as its events are
stored (:func:`note_event`, inside the storing transaction): its worst event
so far, and its closing — by the walker (``ok``, or the re-arming ``reset``)
or by a caregiver (the ``closed`` event the courier itself stores when an
``ack`` command closes it). Closing is bookkeeping: nothing here can touch the
relay. An event worse than the incident was when a caregiver closed it (a
fall after an acknowledged stumble) opens it again, as the caregiver service
does, so the next acknowledgement closes it again.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from core.protocol.commands import LATEST, Ack
from core.protocol.events import ALERT_TYPES, INCIDENT_TYPES, Event, EventType, reopens, worse

WALKER = "walker"
"""``closed_via`` of an incident the walker closed by re-arming."""


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    device_id: str
    severity: str
    """Its worst event so far (a :data:`core.protocol.events.SEVERITY_ORDER` kind; "" before
    any)."""
    opened_wall: str
    closed_by: str | None
    closed_via: str | None
    """How it was closed: ``walker`` (re-armed at the machine), or what the caregiver used."""
    closed_wall: str | None

    @property
    def open(self) -> bool:
        return self.closed_wall is None


_COLUMNS = "id, device_id, severity, opened_wall, closed_by, closed_via, closed_wall"


def _incident(row: tuple[object, ...]) -> Incident:
    id_, device, severity, opened, by, via, closed = row
    return Incident(
        str(id_),
        str(device),
        str(severity),
        str(opened),
        None if by is None else str(by),
        None if via is None else str(via),
        None if closed is None else str(closed),
    )


def find(conn: sqlite3.Connection, incident_id: str, device_id: str) -> Incident | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM incidents WHERE id = ? AND device_id = ?",
        (incident_id, device_id),
    ).fetchone()
    return None if row is None else _incident(row)


def newest_open(conn: sqlite3.Connection, device_id: str) -> Incident | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM incidents WHERE device_id = ? AND closed_wall IS NULL"
        " ORDER BY opened_seq DESC LIMIT 1",
        (device_id,),
    ).fetchone()
    return None if row is None else _incident(row)


def open_on_the_belt(conn: sqlite3.Connection, device_id: str) -> str | None:
    """The newest open incident with a trip or fault in it: one the monitor opened and the
    walker's re-arming would have closed (a help request made while walking is closed by a
    caregiver, docs/incidents.md, so it is not one)."""
    kinds = tuple(t.value for t in INCIDENT_TYPES if t is not EventType.HELP)
    row = conn.execute(
        "SELECT i.id FROM incidents i WHERE i.device_id = ? AND i.closed_wall IS NULL"
        " AND EXISTS (SELECT 1 FROM events e WHERE e.incident = i.id"
        f" AND e.type IN ({','.join('?' * len(kinds))}))"
        " ORDER BY i.opened_seq DESC LIMIT 1",
        (device_id, *kinds),
    ).fetchone()
    return None if row is None else str(row[0])


def note_event(conn: sqlite3.Connection, event: Event, seq: int, walker: str | None = None) -> None:
    """Record what a newly stored event says about its incident (in the caller's transaction).

    The incident an event opens is ``walker``'s — the walker of the guided session under way
    when the loop decided the event — and, outside a session (None), the walker chosen for
    the next one. A walker chosen during a session walks from the next: the session's
    incident stays its walker's.
    """
    incident_id = event.incident
    if incident_id is None:
        return
    kind = event.type.value if event.type in INCIDENT_TYPES else ""
    conn.execute(
        "INSERT INTO incidents (id, device_id, opened_seq, opened_wall, severity, walker)"
        " VALUES (?, ?, ?, ?, ?, coalesce(?, (SELECT walker FROM walker_changes"
        " WHERE change = 'selected' ORDER BY id DESC LIMIT 1), 'default'))"
        " ON CONFLICT (id) DO NOTHING",
        (incident_id, event.device_id, seq, event.wall_time, kind, walker),
    )
    severity, closed_severity = conn.execute(
        "SELECT severity, closed_severity FROM incidents WHERE id = ?",
        (incident_id,),
    ).fetchone()
    if kind and (not severity or worse(kind, str(severity))):
        conn.execute("UPDATE incidents SET severity = ? WHERE id = ?", (kind, incident_id))
    if kind and closed_severity is not None and reopens(kind, str(closed_severity)):
        # a fall after an acknowledged stumble, a call for help after a close: open again
        conn.execute(
            "UPDATE incidents SET closed_by = NULL, closed_via = NULL, closed_wall = NULL,"
            " closed_severity = NULL WHERE id = ?",
            (incident_id,),
        )
    closing: tuple[str, str] | None = None
    if event.type is EventType.OK or event.type is EventType.RESET:
        closing = (event.by or WALKER, WALKER)
    elif event.type is EventType.CLOSED:
        closing = (event.by or "caregiver", event.via or "device")
    if closing is not None:
        conn.execute(
            "UPDATE incidents SET closed_by = ?, closed_via = ?, closed_wall = ?,"
            " closed_severity = severity WHERE id = ? AND closed_wall IS NULL",
            (*closing, event.wall_time, incident_id),
        )


@dataclass(frozen=True, slots=True)
class AckTarget:
    """What an ``ack`` names: an incident, or an alert from before incidents (``event_id``)."""

    incident: Incident | None
    event_id: str | None
    """The event the ack named, or the incident's newest alert (what the reply reports)."""
    seen: str | None = None
    """The newest event of the incident the acknowledger saw (named, or shown in the retained
    ``incident`` message); None: not said. What came after it is checked
    (:func:`unseen_news`)."""


@dataclass(frozen=True, slots=True)
class Shown:
    """What the device's retained ``incident`` message last told every consumer (Home
    Assistant shows it): the open incident and its newest event, or none open."""

    incident: str | None
    """The incident it showed (open, or the last one closed); None: none yet."""
    event: str | None
    """That incident's newest event, as shown (``last_event``)."""


def resolve(
    conn: sqlite3.Connection, device_id: str, ack: Ack, shown: Shown | None = None
) -> AckTarget | None:
    """The incident an ack closes: named, that of the named event, or with ``"latest"`` the
    one ``shown`` (what the retained message showed: Home Assistant's button, whose payload
    cannot name one) — without ``shown``, the newest open one.

    None when the ack names no incident: an alert without one (a device from
    before incidents, or an alert outside any), acknowledged the old way; so is a
    ``"latest"`` when the retained message showed no incident this device recorded. One
    that showed an incident closed since (or already when shown) is answered ``already``.
    :class:`LookupError` when it names nothing this device knows.
    """
    named_event = ack.event_id if ack.event_id != LATEST else None
    if ack.incident is not None:
        found = find(conn, ack.incident, device_id)
        if found is not None:
            return AckTarget(found, named_event or _newest_alert(conn, found.id), named_event)
        # the caregiver service names an alert from before incidents by its own id
        if _event_incident(conn, ack.incident, device_id) is None:
            raise LookupError(f"no incident {ack.incident} on this device")
        return None
    if named_event is not None:
        incident_id = _event_incident(conn, named_event, device_id)
        if incident_id is None:
            raise LookupError(f"no alert with id {named_event}")
        found = find(conn, incident_id, device_id) if incident_id else None
        return None if found is None else AckTarget(found, named_event, named_event)
    if shown is not None:
        found = find(conn, shown.incident, device_id) if shown.incident is not None else None
        if found is None:
            return None  # no incident shown: only an alert outside incidents, the old way
        return AckTarget(found, shown.event or _newest_alert(conn, found.id), shown.event)
    found = newest_open(conn, device_id)
    return None if found is None else AckTarget(found, _newest_alert(conn, found.id))


def unseen_news(conn: sqlite3.Connection, incident_id: str, seen: str) -> list[str]:
    """The kinds of the incident's events after ``seen`` that would have opened it again had
    the acknowledgement closed it at ``seen`` (:func:`core.protocol.events.reopens`: a fall
    after a stumble, a call for help or a fault): news the acknowledger had not seen, so the
    acknowledgement must not close the incident. Empty when ``seen`` is not one of its events
    (nothing to compare with: the acknowledgement stands, as before)."""
    row = conn.execute(
        "SELECT seq FROM events WHERE id = ? AND incident = ?", (seen, incident_id)
    ).fetchone()
    if row is None:
        return []
    seen_seq = int(row[0])
    kinds = tuple(t.value for t in INCIDENT_TYPES)
    marks = ",".join("?" * len(kinds))
    rows = conn.execute(
        f"SELECT type, seq FROM events WHERE incident = ? AND type IN ({marks}) ORDER BY seq",
        (incident_id, *kinds),
    ).fetchall()
    severity = ""
    for kind, seq in rows:
        if int(seq) <= seen_seq and (not severity or worse(str(kind), severity)):
            severity = str(kind)
    return [str(kind) for kind, seq in rows if int(seq) > seen_seq and reopens(str(kind), severity)]


def _event_incident(conn: sqlite3.Connection, event_id: str, device_id: str) -> str | None:
    """The incident of a stored event ("" for none); None when there is no such event."""
    row = conn.execute(
        "SELECT incident FROM events WHERE id = ? AND device_id = ?", (event_id, device_id)
    ).fetchone()
    if row is None:
        return None
    return "" if row[0] is None else str(row[0])


def _newest_alert(conn: sqlite3.Connection, incident_id: str) -> str | None:
    kinds = tuple(t.value for t in INCIDENT_TYPES)
    row = conn.execute(
        f"SELECT id FROM events WHERE incident = ? AND type IN ({','.join('?' * len(kinds))})"
        " ORDER BY seq DESC LIMIT 1",
        (incident_id, *kinds),
    ).fetchone()
    return None if row is None else str(row[0])


def acknowledge_alerts(conn: sqlite3.Connection, incident_id: str, by: str, wall: str) -> None:
    """A caregiver closed the incident: each of its alerts counts as acknowledged by them too
    (``event_acks``, what older tools read)."""
    kinds = tuple(t.value for t in ALERT_TYPES)
    marks = ",".join("?" * len(kinds))
    conn.execute(
        "INSERT OR IGNORE INTO event_acks (event_id, acked_by, wall_time)"
        f" SELECT id, ?, ? FROM events WHERE incident = ? AND type IN ({marks})",
        (by, wall, incident_id, *kinds),
    )
