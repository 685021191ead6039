"""The caregiver store: every query the service runs, behind named operations, on either engine.

The queries are written once, in the SQL SQLite and PostgreSQL share; a
:class:`caregiver.storage.engines.Database` runs them on the engine the config
names. One connection guarded by one lock: every statement is short (no network I/O is
ever done while the lock is held), so the MQTT thread, the notifier, the
escalation ticker and the web handlers' worker threads share it without
contention worth a pool. Operations that must commit together run on a
:class:`Transaction` from :meth:`Store.transaction` (e.g. an event, its alert and
the notifications that alert queues); :class:`Store` offers the others directly,
each its own transaction. Callers see records (:mod:`caregiver.storage.records`),
never a connection, a cursor or SQL, so another database can stand behind the
same operations.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sqlite3
import sys
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from caregiver import outbox
from caregiver.storage.engines import (
    Announcer,
    Cursor,
    Database,
    Listener,
    PooledReads,
    PostgresDatabase,
    SqliteCheckpointer,
    SqliteDatabase,
    SqliteReads,
    open_database,
    redacted,
)
from caregiver.storage.faults import StorageFault
from caregiver.storage.records import (
    OPEN_STATUSES,
    WALK_FIELDS,
    Account,
    Alert,
    ClockFrame,
    Device,
    DeviceStatus,
    Incident,
    LeaseSeen,
    LoginSession,
    NewEvent,
    PendingNotification,
    Role,
    SelfTestOutcome,
    SelfTestRecord,
    SentCommand,
    StoredEvent,
    Urgency,
    WalkOutcome,
    WalkSession,
)
from caregiver.storage.schema import SchemaUpgrade, migrate
from core.clock import CLOCK_STEP_S
from core.progress import check_week, utc_of
from core.protocol.commands import CommandName
from core.protocol.events import INCIDENT_TYPES
from core.protocol.messages import ProtocolError, StageMessage, WornSaid
from core.protocol.payloads import decode_as
from core.protocol.walker import DEFAULT_WALKER

if TYPE_CHECKING:
    from caregiver.config import Contact

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_EVENT_COLUMNS = (
    "id, device_id, seq, type, severity, state, reason, wall_time, received_at, figures, "
    "has_window, acked_by, acked_at, ack_confirmed, incident, wall_unsynced"
)
_ALERT_COLUMNS = (
    "id, kind, device_id, event_id, status, created_at, next_at, contact, sends, paged, closed_by, "
    "incident, reached"
)
_INCIDENT_COLUMNS = (
    "id, device_id, severity, status, opened_at, opened_wall, first_event_id, last_event_at, "
    "closed_at, closed_by, closed_via, closed_severity, walker"
)
_NEW_INCIDENT_COLUMNS = (
    ("id", "TEXT"), ("device_id", "TEXT"), ("severity", "TEXT"), ("status", "TEXT"),
    ("opened_at", "REAL"), ("opened_wall", "TEXT"), ("first_event_id", "TEXT"),
    ("last_event_at", "REAL"), ("walker", "TEXT"), ("opened_unsynced", "INTEGER"),
)  # fmt: skip
"""What an incident is opened with (the rest: NULL until it closes)."""
_ALERT_HEAD = (("kind", "TEXT"), ("device_id", "TEXT"), ("event_id", "TEXT"), ("status", "TEXT"))
_FRAME = (("frame_of", "TEXT"), ("frame_offset", "REAL"))
"""The wall clock an alert's timers are in (:class:`ClockFrame`, schema 25)."""
_PAGING_ALERT_COLUMNS = (
    ("id", "INTEGER"), *_ALERT_HEAD, ("created_at", "REAL"), ("next_at", "REAL"),
    ("sends", "INTEGER"), ("incident", "TEXT"), *_FRAME,
)  # fmt: skip
_HELD_ALERT_COLUMNS = (
    *_ALERT_HEAD, ("created_at", "REAL"), ("next_at", "REAL"), ("incident", "TEXT"), *_FRAME,
)  # fmt: skip
_LOGGED_ALERT_COLUMNS = (
    *_ALERT_HEAD, ("created_at", "REAL"), ("closed_by", "TEXT"), ("closed_at", "REAL"),
    ("incident", "TEXT"),
)  # fmt: skip
_OPEN = "(" + ", ".join(f"'{status}'" for status in OPEN_STATUSES) + ")"
_INTO_FRAME = (
    "created_at = created_at + CASE WHEN frame_of = ? AND abs(? - frame_offset) >= ? "
    "THEN ? - frame_offset ELSE 0 END, frame_of = ?, frame_offset = ?"
)
"""An open alert's timers rewritten in a :class:`ClockFrame`: its opening, written in the
frame it had, is first moved by the steps since (measured by the same instance) as
:meth:`Transaction.shift_timers` would have, so that its reminders still say how long it has
been open. Parameters: :func:`_into_frame`."""


def _into_frame(frame: ClockFrame) -> tuple[object, ...]:
    """:data:`_INTO_FRAME`'s parameters."""
    return (frame.of, frame.offset, CLOCK_STEP_S, frame.offset, frame.of, frame.offset)


_NEWEST_CRITICAL = "e.seq DESC NULLS LAST, e.received_at DESC, e.id DESC"
"""An incident's events newest first, as its critical ones are picked: by the device's
sequence (a clock stepped back, or another instance's behind, does not make an older one the
newest), by arrival for a monitor without one."""


def _answered(t: str) -> str:
    """Whether incident ``t`` is open again with nothing new to answer: a fault reopened it
    after its critical events were answered (its newest is the one it was closed with).
    The card and the incident lists then tell the answered fall and the new alert apart."""
    newest = (
        f"(SELECT e.id FROM events e WHERE (e.incident = {t}.id OR (e.id = {t}.id AND "
        f"e.incident IS NULL)) AND e.severity = 'critical' ORDER BY {_NEWEST_CRITICAL} LIMIT 1)"
    )
    return (
        f"CASE WHEN {t}.status = 'open' AND {t}.closed_critical IS NOT NULL "
        f"THEN CASE WHEN {t}.closed_critical = {newest} THEN 1 ELSE 0 END ELSE 0 END"
    )


def _newest_alert(t: str) -> str:
    """Incident ``t``'s newest event that opened or worsened it (:func:`caregiver.seen.
    newest_alert` picks it alike from the events read): what a card showing it says it
    showed when acknowledged."""
    return (
        f"(SELECT e.id FROM events e WHERE (e.incident = {t}.id OR (e.id = {t}.id AND "
        f"e.incident IS NULL)) AND e.type IN ({_ALERT_EVENT_TYPES}) "
        f"ORDER BY {_NEWEST_CRITICAL} LIMIT 1)"
    )


def _told(t: str) -> str:
    """Whether the device has incident ``t`` closed as this service does: an event of it was
    confirmed by the device's reply to the ``ack`` (``ack_confirmed``), or the device published
    its ``closed`` event. A caregiver's close whose ``ack`` waits for the broker is not."""
    return (
        f"CASE WHEN EXISTS (SELECT 1 FROM events e WHERE (e.incident = {t}.id OR (e.id = {t}.id "
        "AND e.incident IS NULL)) AND (e.type = 'closed' OR e.ack_confirmed <> 0)) "
        "THEN 1 ELSE 0 END"
    )


_ALERT_EVENT_TYPES = ", ".join(f"'{t.value}'" for t in sorted(INCIDENT_TYPES))
"""Event types that open or worsen an incident, as SQL."""

_INCIDENT_READ = f"{_INCIDENT_COLUMNS}, {_answered('incidents')}, opened_unsynced"
"""An incident as read back: its columns, whether it is answered (:func:`_answered`) and
whether the device's clock was not set when it stamped the event that opened it."""
_DEVICE_SELECT = (
    "SELECT d.device_id, d.availability, d.state, d.state_reason, d.state_time, "
    "d.last_seen, d.telemetry, e.id, e.type, e.severity, e.reason, e.wall_time, "
    "e.received_at, (SELECT COUNT(*) FROM alerts a WHERE a.device_id = d.device_id "
    f"AND a.status IN {_OPEN}), "
    "i.id, i.severity, i.status, i.opened_at, i.first_event_id, i.last_event_at, i.closed_at, "
    f"i.closed_by, i.closed_via, {_answered('i')}, {_newest_alert('i')}, "
    "(SELECT MAX(a.id) FROM alerts a WHERE a.device_id = d.device_id AND a.incident IS NULL "
    f"AND a.status IN {_OPEN}), i.walker, {_told('i')}, d.state_worn FROM devices d "
    "LEFT JOIN events e ON e.id = d.last_event_id "
    # the card's incident: the open one if there is one, else the one that ended last
    "LEFT JOIN incidents i ON i.id = (SELECT id FROM incidents WHERE device_id = d.device_id "
    "ORDER BY status = 'open' DESC, last_event_at DESC LIMIT 1)"
)


_FIRST_SEQ = 1
"""A monitor's first event in an event database (SQLite's AUTOINCREMENT starts at 1)."""

_KEEP_NEWER_LAST_EVENT = (
    # the device's latest event is the newest by the monitor's own order, its sequence, not the
    # one stored last nor the one its clock calls latest (wall time is for people to read): one
    # with a lower sequence is an older one resent and leaves it where it is (_resent), unless
    # it is numbered 1, which starts a sequence again (_resent says why)
    "last_event_id = CASE WHEN EXISTS (SELECT 1 FROM events o, events n "
    "WHERE o.id = devices.last_event_id AND n.id = excluded.last_event_id "
    "AND COALESCE(o.seq, 0) > COALESCE(n.seq, 0) "
    f"AND COALESCE(n.seq, 0) <> {_FIRST_SEQ}) "
    "THEN devices.last_event_id ELSE excluded.last_event_id END"
)

_NEW_LAST_EVENT = "last_event_id = excluded.last_event_id"
"""A batch's newest event of a device whose sequence the batch started again."""


def _a_week(week: str) -> bool:
    """True when ``week`` names an ISO week (:func:`core.progress.check_week`)."""
    try:
        check_week(week)
    except ValueError:
        return False
    return True


def _resent(kept: int, event: int) -> bool:
    """An event with sequence ``event`` is older than the one kept (sequence ``kept``) by the
    monitor's own order: a lower sequence — unless it is numbered 1 (as
    :data:`_KEEP_NEWER_LAST_EVENT` decides it).

    A monitor numbers its first event 1 and never again in one event database, so an event 1
    (a new id: a redelivery is stored once, and never gets this far) arriving after a higher
    one starts a sequence again: the monitor's event database started afresh (a damaged one
    moved aside), and its events are the newest from there on. Nothing of the old sequence
    need be stored for that (retention prunes its routine events; a caregiver database may
    be younger than the monitor's). Until the new sequence's event 1 has come, its others
    look older and leave the latest where it was; the monitor's outbox keeps it until
    received, so it comes. The price: an event 1 resent late whose first copy never reached
    this database — the same sequence's, behind its later ones, or an old sequence's after
    a new one began — is taken as the latest until the device's next event (numbered above
    it) moves it on. The monitor's events carry nothing else to tell a sequence by (its
    clock is no order), and a briefly stale last event beats one stuck on the old sequence
    until the new one outnumbers it."""
    return kept > event and event != _FIRST_SEQ


def _any_engine_errors() -> tuple[type[Exception], ...]:
    """Either engine's errors, while no database is open yet (psycopg's only once it is
    loaded: until then it raised none)."""
    psycopg = sys.modules.get("psycopg")
    return (*SqliteDatabase.errors, *((psycopg.Error,) if psycopg is not None else ()))


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


def _chunks(values: Collection[str]) -> Iterator[list[str]]:
    """Distinct ``values`` in sorted slices of at most :data:`_CHUNK` (one statement each)."""
    ordered = sorted(set(values))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


_EVENT_COLUMN_TYPES = (
    ("id", "TEXT"),
    ("device_id", "TEXT"),
    ("seq", "INTEGER"),
    ("type", "TEXT"),
    ("severity", "TEXT"),
    ("state", "TEXT"),
    ("reason", "TEXT"),
    ("wall_time", "TEXT"),
    ("received_at", "REAL"),
    ("figures", "TEXT"),
    ("has_window", "INTEGER"),
    ("payload", "TEXT"),
    ("incident", "TEXT"),
    ("wall_unsynced", "INTEGER"),
)
_EVENT_INSERT_INTO = f"INSERT INTO events ({', '.join(c for c, _ in _EVENT_COLUMN_TYPES)})"
_EVENT_INSERT = _EVENT_INSERT_INTO + " VALUES "
_EVENT_VALUES = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
_CHUNK = 200
"""Rows per multi-row statement (SQLite allows 32,766 parameters; an event has 14)."""


def _event_row(event: NewEvent, now: float) -> tuple[object, ...]:
    return (
        event.id,
        event.device_id,
        event.seq,
        event.type,
        event.severity,
        event.state,
        event.reason,
        event.wall_time,
        now,
        json.dumps(event.figures),
        int(event.has_window),
        event.payload,
        event.incident,
        int(event.wall_unsynced),
    )


STAGE_AHEAD_S = 600.0
"""How far ahead of this service's clock, when it arrived, a device may have stamped a walker's
stage and still order the stages that follow it. One stamped further ahead (a device whose
clock jumped to a far-future time, or was set so by hand) orders nothing: the next stage the
device sends replaces it, whatever its time. Before, it was kept over every stage the device
sent once its clock came back, until the walker's topic was cleared; the page said a stage the
device had left. Clocks that agree within it keep their order between near-simultaneous
arrivals (several instances taking a shared stream)."""


def _kept_is_newer(kept: str, received_at: float, stage: StageMessage) -> bool:
    """The kept stage's ``wall_time`` (``kept``, received at ``received_at`` by this service's
    clock) is a later moment than ``stage``'s: compared as moments, not as text (text sorts "x"
    after every year, and an offset's hour apart). A kept time that is no time (kept before
    ingest refused such a stage) is older than any, and so is one stamped more than
    :data:`STAGE_AHEAD_S` ahead of when it was received (a device clock that ran ahead).

    A stage the device flagged ``wall_unsynced`` (computed before NTP set its clock: a Pi after
    a power cut reads the time of its last shutdown) is the device's newest by arrival: its
    time orders nothing, neither against the kept one (it replaces it) nor, kept, against the
    next (kept with no time: :meth:`Transaction.set_walker_stage`). Before, a stage computed
    just after a reboot was stamped up to hours behind the one kept from before it and was
    dropped as older, and the device, which sends a stage again only when it changes, never
    sent it again: the pages said the stage from before the reboot until the next change."""
    if stage.wall_unsynced:
        return False
    try:
        kept_at = utc_of(kept)
    except ValueError:
        return False
    if kept_at.timestamp() > received_at + STAGE_AHEAD_S:
        return False
    try:
        return kept_at > utc_of(stage.wall_time)
    except ValueError:
        return True  # ingest refuses such a stage; a stored one is not replaced by it


@dataclass(slots=True)
class _Prepared:
    """What a batch wrote or read for all of its messages at once, before their one-by-one
    handling (:meth:`Store.batch`), and what that handling leaves to the batch's end."""

    events: set[str] = field(default_factory=set)
    """Every event id the batch inserted up front (stored now, or found stored before)."""
    new_events: set[str] = field(default_factory=set)
    """The ones that were new and that no message has recorded yet."""
    absent_incidents: set[str] = field(default_factory=set)
    """Incident ids the batch looked up and found missing (none opened since)."""
    latest_events: dict[str, tuple[int, str, float, bool]] = field(default_factory=dict)
    """Each device's newest recorded event (the monitor's order: :func:`_resent`) as its
    sequence, its id, when the batch last recorded one, and whether the batch started its
    sequence again (an event 1 before it, or itself): the row is updated at the end."""
    alert_ids: deque[int] = field(default_factory=deque)
    """Alert ids taken for the batch's pages, in order (where the engine hands them out)."""

    def copy(self) -> _Prepared:
        """What it holds now, to go back to if a message's handling is undone."""
        return _Prepared(
            set(self.events),
            set(self.new_events),
            set(self.absent_incidents),
            dict(self.latest_events),
            deque(self.alert_ids),
        )

    def restore(self, before: _Prepared) -> None:
        self.events, self.new_events = before.events, before.new_events
        self.absent_incidents, self.latest_events = before.absent_incidents, before.latest_events
        self.alert_ids = before.alert_ids


class MessageUndone(Exception):
    """A batch's message was undone (:meth:`Store.message`) though its block did not raise."""


class Transaction:
    """The named operations on one open transaction (from :meth:`Store.transaction`):
    everything done through it commits together, or nothing does."""

    def __init__(self, db: Database, prepared: _Prepared | None = None) -> None:
        self._db = db
        self._prepared = prepared

    # ------------------------------------------------------------ devices

    def _touch(self, device_id: str, now: float) -> None:
        self._db.execute(
            "INSERT INTO devices (device_id, last_seen) VALUES (?, ?) "
            "ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen",
            (device_id, now),
        )

    def set_availability(self, device_id: str, availability: str, now: float) -> DeviceStatus:
        """Record the device's availability; return its status from before."""
        self._touch(device_id, now)
        before, state = self._db.execute(
            "SELECT availability, state FROM devices WHERE device_id = ?", (device_id,)
        ).fetchone()
        self._db.execute(
            "UPDATE devices SET availability = ? WHERE device_id = ?", (availability, device_id)
        )
        return DeviceStatus(before, state)

    def set_state(
        self,
        device_id: str,
        state: str,
        reason: str,
        wall_time: str,
        now: float,
        worn: WornSaid | None = None,
    ) -> None:
        """One statement (no transaction around it needed: one round trip on PostgreSQL).
        ``worn``: what the reason says of the sensor-worn check (:func:`worn_said`)."""
        self._db.execute(
            "INSERT INTO devices (device_id, last_seen, state, state_reason, state_worn, "
            "state_time) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET "
            "last_seen = excluded.last_seen, state = excluded.state, "
            "state_reason = excluded.state_reason, state_worn = excluded.state_worn, "
            "state_time = excluded.state_time",
            (device_id, now, state, reason, "" if worn is None else worn.value, wall_time),
        )

    def set_telemetry(self, device_id: str, telemetry: Mapping[str, Any], now: float) -> None:
        """One statement, as :meth:`set_state`: telemetry is most of a fleet's messages."""
        self._db.execute(
            "INSERT INTO devices (device_id, last_seen, telemetry) VALUES (?, ?, ?) "
            "ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen, "
            "telemetry = excluded.telemetry",
            (device_id, now, json.dumps(_finite_only(telemetry))),
        )

    def lock_devices(self, device_ids: Collection[str], now: float) -> None:
        """Take these devices' rows (made if new, last seen now) for the rest of the
        transaction, in device id order.

        Every write of a device's messages (its events, incidents, alerts, replies) is done
        under its row's lock. A batch that takes all of its devices' locks first, in one
        order every instance shares, waits for another instance's batch at its first
        common device instead of holding one device the other needs while it waits for
        another the other holds: two instances' batches cannot deadlock over devices.
        """
        ordered = sorted(set(device_ids))
        if not ordered:
            return
        source, params = self._db.rows(
            (("device_id", "TEXT"), ("last_seen", "REAL")), [(d, now) for d in ordered]
        )
        self._db.execute(
            f"INSERT INTO devices (device_id, last_seen) {source} "
            "ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen",
            params,
        )

    def hold_devices(self, device_ids: Collection[str]) -> None:
        """Take these devices' rows (those that exist) for the rest of the transaction, in id
        order, without changing them: a transaction that writes a device's events, incidents
        or alerts outside ingest (an acknowledgement) queues behind a batch of that device's
        messages, as :meth:`lock_devices` makes batches queue behind each other, instead of
        holding one of its rows while the batch holds another."""
        if not self._db.row_locks:
            return
        for ids in _chunks(device_ids):
            where, params = self._db.one_of("device_id", ids)
            self._db.execute(
                f"SELECT device_id FROM devices WHERE {where} ORDER BY device_id"
                + self._db.row_locks,
                params,
            ).fetchall()

    def set_telemetries(self, telemetry: Mapping[str, tuple[Mapping[str, Any], float]]) -> None:
        """The latest telemetry of several devices (device id → (telemetry, received at)) in
        one statement, in device id order: a batch's telemetry costs one round trip."""
        ordered = sorted(telemetry.items())
        if not ordered:
            return
        source, params = self._db.rows(
            (("device_id", "TEXT"), ("last_seen", "REAL"), ("telemetry", "TEXT")),
            [
                (device_id, now, json.dumps(_finite_only(values)))
                for device_id, (values, now) in ordered
            ],
        )
        self._db.execute(
            f"INSERT INTO devices (device_id, last_seen, telemetry) {source} "
            "ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen, "
            "telemetry = excluded.telemetry",
            params,
        )

    def device(self, device_id: str) -> Device | None:
        row = self._db.execute(_DEVICE_SELECT + " WHERE d.device_id = ?", (device_id,)).fetchone()
        return _device(row) if row else None

    def devices(self) -> list[Device]:
        rows = self._db.execute(_DEVICE_SELECT + " ORDER BY d.device_id").fetchall()
        return [_device(r) for r in rows]

    def devices_by_id(self, device_ids: Collection[str]) -> dict[str, Device]:
        return self._by_id(_DEVICE_SELECT, "d.device_id", device_ids, _device)

    def _by_id(
        self,
        select: str,
        key: str,
        ids: Collection[str],
        decode: Callable[[tuple[Any, ...]], _T],
    ) -> dict[str, _T]:
        """The rows of ``select`` whose ``key`` is one of ``ids`` (first column: the id),
        decoded, by id, in a statement per :data:`_CHUNK` ids."""
        found: dict[str, _T] = {}
        for chunk in _chunks(ids):
            where, params = self._db.one_of(key, chunk)
            rows = self._db.execute(f"{select} WHERE {where}", params).fetchall()
            found.update((row[0], decode(row)) for row in rows)
        return found

    # ------------------------------------------------------------- events

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

    def confirm_ack(self, device_id: str, request_id: str) -> bool:
        """The device confirmed the ack command ``request_id``; False if no event waited on it."""
        cur = self._db.execute(
            "UPDATE events SET ack_confirmed = 1 WHERE device_id = ? AND ack_request_id = ?",
            (device_id, request_id),
        )
        return cur.rowcount > 0

    def ack_request_of(self, incident_id: str) -> str | None:
        """The request id of the newest ack command recorded for the incident's events (what
        the device's reply confirms), or None."""
        row = self._db.execute(
            "SELECT ack_request_id FROM events WHERE (incident = ? OR id = ?) "
            "AND ack_request_id IS NOT NULL ORDER BY acked_at DESC LIMIT 1",
            (incident_id, incident_id),
        ).fetchone()
        return None if row is None else str(row[0])

    # ----------------------------------------------------- guided sessions

    def record_walk_session(self, session: WalkSession, payload: str, now: float) -> WalkOutcome:
        """Store one session summary by id (``payload``: the message as received).

        A summary re-published for the same id replaces the row only when it carries
        more amendment than the stored one (``amended``): the device amends a session's
        record when an event of its trip's incident comes after it ended (a fall
        confirmed later) and queues its summary once per amendment. One with as many
        is that summary delivered again, whatever its bytes (its ``wall_time`` says
        when it was queued, and is no order), and one with fewer is a redelivery
        overtaken by the amendment: both are ignored ("same"), as is one naming
        another device's session, so no device can overwrite another's log. The rule
        is in the upsert itself, so two instances storing two summaries of one session
        at once keep the more amended.
        """
        self._touch(session.device_id, now)
        row = self._db.execute(
            "SELECT device_id FROM walk_sessions WHERE id = ?", (session.id,)
        ).fetchone()
        if row is not None and row[0] != session.device_id:
            return "same"
        columns = ", ".join(WALK_FIELDS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in WALK_FIELDS[2:])
        cur = self._db.execute(
            f"INSERT INTO walk_sessions ({columns}, received_at, payload) "
            f"VALUES ({', '.join('?' * (len(WALK_FIELDS) + 2))}) "
            f"ON CONFLICT (id) DO UPDATE SET {updates}, received_at = excluded.received_at, "
            "payload = excluded.payload WHERE walk_sessions.device_id = excluded.device_id "
            "AND walk_sessions.amended < excluded.amended",
            (*(getattr(session, c) for c in WALK_FIELDS), now, payload),
        )
        if cur.rowcount == 0:
            return "same"
        return "new" if row is None else "updated"

    def walk_sessions(
        self, device_id: str, limit: int, walker: str | None = None
    ) -> list[WalkSession]:
        of_walker = "" if walker is None else " AND walker = ?"
        rows = self._db.execute(
            f"SELECT {', '.join(WALK_FIELDS)} FROM walk_sessions WHERE device_id = ?{of_walker} "
            "ORDER BY started_wall DESC, id LIMIT ?",
            (device_id, *(() if walker is None else (walker,)), limit),
        ).fetchall()
        return [WalkSession(*r) for r in rows]

    def walk_session_payloads(
        self, device_id: str, limit: int, walker: str | None = None
    ) -> list[str]:
        of_walker = "" if walker is None else " AND walker = ?"
        rows = self._db.execute(
            f"SELECT payload FROM walk_sessions WHERE device_id = ?{of_walker} "
            "ORDER BY started_wall DESC, id LIMIT ?",
            (device_id, *(() if walker is None else (walker,)), limit),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def walkers(self, device_id: str) -> list[tuple[str, str]]:
        rows = self._db.execute(
            "SELECT walker, walker_name, MAX(started_wall) FROM walk_sessions"
            " WHERE device_id = ? GROUP BY walker, walker_name ORDER BY MAX(started_wall) DESC",
            (device_id,),
        ).fetchall()
        names: dict[str, str] = {}
        for walker, name, _ in rows:
            names.setdefault(str(walker), str(name))  # the newest name of each id
        return list(names.items())

    def walk_session_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM walk_sessions").fetchone()[0])

    def set_device_walkers(self, device_id: str, walkers: Sequence[tuple[str, str]]) -> bool:
        """The device's walker profiles, ``(id, name)`` in button order, as it published them;
        True when they changed. Every instance writes the same rows (the message is retained):
        upserts and one delete, so two at once do not collide on a key."""
        if self.device_walkers(device_id) == list(walkers):
            return False
        for position, (walker, name) in enumerate(walkers):
            self._db.execute(
                "INSERT INTO device_walkers (device_id, walker, name, position) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (device_id, walker) DO UPDATE SET name = excluded.name,"
                " position = excluded.position",
                (device_id, walker, name, position),
            )
        if not walkers:  # the wire never says so (the default walker is always there)
            self._db.execute("DELETE FROM device_walkers WHERE device_id = ?", (device_id,))
            return True
        kept, params = self._db.one_of("walker", [w for w, _ in walkers])
        self._db.execute(
            f"DELETE FROM device_walkers WHERE device_id = ? AND NOT {kept}", (device_id, *params)
        )
        return True

    def set_device_zone(self, device_id: str, zone: str, now: float) -> bool:
        """The IANA zone the device counts its weeks in, as its progress message names it;
        True when it changed."""
        row = self._db.execute("SELECT zone FROM devices WHERE device_id = ?", (device_id,))
        before = row.fetchone()
        if before is not None and str(before[0]) == zone:
            return False
        self._touch(device_id, now)
        self._db.execute("UPDATE devices SET zone = ? WHERE device_id = ?", (zone, device_id))
        return True

    def device_zone(self, device_id: str) -> str:
        """:meth:`set_device_zone`'s zone; '' when the device never named one."""
        row = self._db.execute(
            "SELECT zone FROM devices WHERE device_id = ?", (device_id,)
        ).fetchone()
        return "" if row is None else str(row[0])

    def device_walkers(self, device_id: str) -> list[tuple[str, str]]:
        rows = self._db.execute(
            "SELECT walker, name FROM device_walkers WHERE device_id = ? ORDER BY position, walker",
            (device_id,),
        ).fetchall()
        return [(str(w), str(n)) for w, n in rows]

    # ------------------------------------------------- walkers' progressions

    def set_walker_stage(
        self, device_id: str, stage: StageMessage, message: bytes, now: float
    ) -> bool:
        """``stage``, the device's retained word on one walker's progression (``message``, its
        payload, is what is kept; ``now``, when it was received); True when it says something
        new. A redelivery (a reconnect hands the retained copy over again) changes nothing; an
        older one than stored (by the device's ``wall_time``) neither, unless the stored one was
        stamped beyond :data:`STAGE_AHEAD_S` ahead of its arrival. Every instance writes the
        same row (one upsert)."""
        walker = stage.walker.id
        row = self._db.execute(
            "SELECT message, wall_time, received_at FROM walker_stages"
            " WHERE device_id = ? AND walker = ?",
            (device_id, walker),
        ).fetchone()
        text = message.decode()
        if row is not None and (
            str(row[0]) == text or _kept_is_newer(str(row[1]), float(row[2]), stage)
        ):
            return False
        self._db.execute(
            "INSERT INTO walker_stages (device_id, walker, message, wall_time, received_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id, walker) DO UPDATE SET"
            " message = excluded.message, wall_time = excluded.wall_time,"
            " received_at = excluded.received_at",
            # a time the device's unset clock said orders nothing: kept as no time
            (device_id, walker, text, "" if stage.wall_unsynced else stage.wall_time, now),
        )
        return True

    def forget_walker_stage(self, device_id: str, walker: str) -> bool:
        """The device cleared ``walker``'s stage (removed at the treadmill); True when one was
        kept."""
        cursor = self._db.execute(
            "DELETE FROM walker_stages WHERE device_id = ? AND walker = ?", (device_id, walker)
        )
        return bool(cursor.rowcount)

    def walker_stage(self, device_id: str, walker: str) -> StageMessage | None:
        """``walker``'s progression as the device last published it; None when it never did
        (no progression, or a release before the message) or what is kept is unreadable."""
        row = self._db.execute(
            "SELECT message FROM walker_stages WHERE device_id = ? AND walker = ?",
            (device_id, walker),
        ).fetchone()
        if row is None:
            return None
        try:
            return decode_as(StageMessage, str(row[0]).encode())
        except ProtocolError:
            return None

    # ------------------------------------------- plan commands and answers

    def command_sent(self, command: SentCommand, keep: int) -> None:
        """Record a command about to be published (pending); keep the device's newest ``keep``."""
        self._db.execute(
            "INSERT INTO device_commands (request_id, device_id, command, summary, sent_by, "
            "sent_at, status, walker) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
            (
                command.request_id,
                command.device_id,
                command.command,
                command.summary,
                command.sent_by,
                command.sent_at,
                command.walker,
            ),
        )
        self._db.execute(
            "DELETE FROM device_commands WHERE device_id = ? AND request_id NOT IN "
            "(SELECT request_id FROM device_commands WHERE device_id = ? "
            "ORDER BY sent_at DESC, request_id LIMIT ?)",
            (command.device_id, command.device_id, keep),
        )

    def forget_command(self, request_id: str) -> None:
        """A command that could not be published."""
        self._db.execute("DELETE FROM device_commands WHERE request_id = ?", (request_id,))

    def command_answered(
        self, device_id: str, request_id: str, ok: bool, answer: str, now: float
    ) -> bool:
        """The device's reply to a command this service sent it (the first answer counts; a
        reply naming another device's request changes nothing); True when it changed a row."""
        cursor = self._db.execute(
            "UPDATE device_commands SET status = ?, answered_at = ?, answer = ? "
            "WHERE request_id = ? AND device_id = ? AND status = 'pending'",
            ("accepted" if ok else "refused", now, answer, request_id, device_id),
        )
        return cursor.rowcount > 0

    def sent_commands(self, device_id: str, limit: int) -> list[SentCommand]:
        rows = self._db.execute(
            "SELECT request_id, device_id, command, summary, sent_by, sent_at, status, "
            "answered_at, answer, walker FROM device_commands WHERE device_id = ? "
            "ORDER BY sent_at DESC, request_id LIMIT ?",
            (device_id, limit),
        ).fetchall()
        return [
            SentCommand(
                request_id=str(r[0]),
                device_id=str(r[1]),
                command=CommandName(str(r[2])),
                summary=str(r[3]),
                sent_by=str(r[4]),
                sent_at=float(r[5]),
                status="accepted"
                if r[6] == "accepted"
                else "refused"
                if r[6] == "refused"
                else "pending",
                answered_at=None if r[7] is None else float(r[7]),
                answer=None if r[8] is None else str(r[8]),
                walker=None if r[9] is None else str(r[9]),
            )
            for r in rows
        ]

    # ------------------------------------------------------------ self-tests

    def self_test_asked(self, device_id: str, request_id: str, by: str, now: float) -> None:
        """Record a self-test about to be published; the answer before it is kept."""
        self._db.execute(
            "INSERT INTO self_tests (device_id, request_id, asked_by, asked_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET "
            "request_id = excluded.request_id, asked_by = excluded.asked_by, "
            "asked_at = excluded.asked_at",
            (device_id, request_id, by, now),
        )

    def self_test_unsent(self, device_id: str, request_id: str) -> None:
        """A self-test that could not be published: the row is as if it was never asked for
        (the answer before it stays; a device never checked has no row again)."""
        self._db.execute(
            "DELETE FROM self_tests WHERE device_id = ? AND request_id = ? "
            "AND answered_request_id IS NULL",
            (device_id, request_id),
        )
        self._db.execute(
            "UPDATE self_tests SET request_id = answered_request_id "
            "WHERE device_id = ? AND request_id = ?",
            (device_id, request_id),
        )

    def self_test_answered(
        self,
        device_id: str,
        request_id: str,
        outcome: SelfTestOutcome,
        reason: str,
        checks: Sequence[tuple[str, bool, str]],
        now: float,
    ) -> bool:
        """The device's answer to the newest self-test asked for it; True when it was (an
        answer to an older one, or to another sender's, changes nothing)."""
        cursor = self._db.execute(
            "UPDATE self_tests SET answered_request_id = request_id, answered_at = ?, "
            "outcome = ?, reason = ?, checks = ? WHERE device_id = ? AND request_id = ?",
            (
                now,
                outcome,
                reason,
                json.dumps([list(c) for c in checks]),
                device_id,
                request_id,
            ),
        )
        return cursor.rowcount > 0

    def self_test(self, device_id: str) -> SelfTestRecord | None:
        row = self._db.execute(
            "SELECT request_id, asked_by, asked_at, answered_request_id, answered_at, outcome, "
            "reason, checks FROM self_tests WHERE device_id = ?",
            (device_id,),
        ).fetchone()
        if row is None:
            return None
        outcome = row[5]
        return SelfTestRecord(
            device_id=device_id,
            request_id=str(row[0]),
            asked_by=str(row[1]),
            asked_at=float(row[2]),
            answered_request_id=None if row[3] is None else str(row[3]),
            answered_at=None if row[4] is None else float(row[4]),
            outcome="passed"
            if outcome == "passed"
            else "failed"
            if outcome == "failed"
            else "refused"
            if outcome == "refused"
            else None,
            reason=str(row[6] or ""),
            checks=tuple((str(n), bool(ok), str(d)) for n, ok, d in json.loads(row[7] or "[]")),
        )

    # ------------------------------------------------- prescribed sessions

    def set_prescribed(
        self, device_id: str, week: str, sessions: int, walker: str = DEFAULT_WALKER.id
    ) -> bool:
        """The sessions ``walker``'s progression prescribes in ``week``; True when it changed."""
        if walker != DEFAULT_WALKER.id:
            return self._set_walker_prescribed(device_id, walker, week, sessions)
        row = self._db.execute(
            "SELECT sessions FROM prescribed_weeks WHERE device_id = ? AND week = ?",
            (device_id, week),
        ).fetchone()
        if row is not None and int(row[0]) == sessions:
            return False
        self._db.execute(
            "INSERT INTO prescribed_weeks (device_id, week, sessions) VALUES (?, ?, ?) "
            "ON CONFLICT (device_id, week) DO UPDATE SET sessions = excluded.sessions",
            (device_id, week, sessions),
        )
        return True

    def _set_walker_prescribed(self, device_id: str, walker: str, week: str, sessions: int) -> bool:
        row = self._db.execute(
            "SELECT sessions FROM walker_prescribed_weeks"
            " WHERE device_id = ? AND walker = ? AND week = ?",
            (device_id, walker, week),
        ).fetchone()
        if row is not None and int(row[0]) == sessions:
            return False
        self._db.execute(
            "INSERT INTO walker_prescribed_weeks (device_id, walker, week, sessions)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (device_id, walker, week)"
            " DO UPDATE SET sessions = excluded.sessions",
            (device_id, walker, week, sessions),
        )
        return True

    def prescribed_weeks(self, device_id: str, walker: str = DEFAULT_WALKER.id) -> dict[str, int]:
        if walker != DEFAULT_WALKER.id:
            rows = self._db.execute(
                "SELECT week, sessions FROM walker_prescribed_weeks"
                " WHERE device_id = ? AND walker = ?",
                (device_id, walker),
            ).fetchall()
        else:
            rows = self._db.execute(
                "SELECT week, sessions FROM prescribed_weeks WHERE device_id = ?", (device_id,)
            ).fetchall()
        # A week no calendar has ("2026-W60"), stored before the progress message refused
        # one, would sort after December's and set the count of the next year's first weeks.
        return {str(r[0]): int(r[1]) for r in rows if _a_week(str(r[0]))}

    # ------------------------------------------------------------- alerts

    def log_alert(
        self,
        kind: str,
        device_id: str,
        event_id: str | None,
        now: float,
        incident: str | None = None,
    ) -> None:
        """An alert the policy only records: closed as it opens."""
        row = (kind, device_id, event_id, "logged", now, "policy: log", now, incident)
        if self._prepared is not None:  # a batch's: with its others, in one statement
            self._db.defer("alerts", _LOGGED_ALERT_COLUMNS, row)
            return
        self._db.execute(
            "INSERT INTO alerts (kind, device_id, event_id, status, created_at, closed_by, "
            "closed_at, incident) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    def hold_alert(
        self,
        kind: str,
        device_id: str,
        event_id: str | None,
        now: float,
        until: float,
        incident: str | None = None,
        *,
        frame: ClockFrame,
    ) -> None:
        """An alert that pages at ``until`` unless the walker resets first; ``now`` and
        ``until`` are wall times in ``frame``."""
        row = (kind, device_id, event_id, "held", now, until, incident, frame.of, frame.offset)
        if self._prepared is not None:  # a batch's: with its others, in one statement
            self._db.defer("alerts", _HELD_ALERT_COLUMNS, row)
            return
        self._db.execute(
            "INSERT INTO alerts (kind, device_id, event_id, status, created_at, next_at, "
            "incident, frame_of, frame_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    def page_alert(
        self,
        kind: str,
        device_id: str,
        event_id: str | None,
        now: float,
        next_at: float,
        incident: str | None = None,
        *,
        frame: ClockFrame,
    ) -> int:
        """An alert paging its first contact now (one send); returns its id (in a batch, one
        it reserved: nothing to wait for, and inserted with the batch's others in one
        statement). ``now`` and ``next_at`` are wall times in ``frame``."""
        reserved = self._prepared.alert_ids if self._prepared is not None else None
        if reserved:
            alert_id = reserved.popleft()
            row = (alert_id, kind, device_id, event_id, "paging", now, next_at, 1, incident)
            self._db.defer("alerts", _PAGING_ALERT_COLUMNS, (*row, frame.of, frame.offset))
            return alert_id
        (alert_id,) = self._db.execute(
            "INSERT INTO alerts (kind, device_id, event_id, status, created_at, next_at, sends, "
            "incident, frame_of, frame_offset) VALUES (?, ?, ?, 'paging', ?, ?, 1, ?, ?, ?) "
            "RETURNING id",
            (kind, device_id, event_id, now, next_at, incident, frame.of, frame.offset),
        ).fetchone()
        return int(alert_id)

    def open_alert_of(self, incident: str) -> Alert | None:
        row = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE incident = ? AND status IN {_OPEN} "
            "ORDER BY id DESC LIMIT 1",
            (incident,),
        ).fetchone()
        return _alert(row) if row else None

    def worsen_alert(self, alert_id: int, kind: str, event_id: str) -> None:
        """The incident behind an open alert got worse: the alert now speaks of that event."""
        self._db.execute(
            "UPDATE alerts SET kind = ?, event_id = ? WHERE id = ?", (kind, event_id, alert_id)
        )

    # ----------------------------------------------------------- incidents

    def incident(self, incident_id: str) -> Incident | None:
        if self._prepared is not None and incident_id in self._prepared.absent_incidents:
            return None
        row = self._db.execute(
            f"SELECT {_INCIDENT_READ} FROM incidents WHERE id = ?", (incident_id,)
        ).fetchone()
        return _incident(row) if row else None

    def incidents_by_id(self, incident_ids: Collection[str]) -> dict[str, Incident]:
        select = f"SELECT {_INCIDENT_READ} FROM incidents"
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
            f"SELECT {_INCIDENT_READ} FROM incidents {where} ORDER BY opened_at DESC LIMIT ?",
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
            f"FROM incidents i JOIN events e ON e.incident = i.id WHERE {where} "
            f"UNION ALL SELECT {columns}, i.closed_critical, {picked} FROM incidents i "
            f"JOIN events e ON e.id = i.id AND e.incident IS NULL WHERE {where}"
        )
        plain = ", ".join(f"f.{c}" for c in names)
        newest = "f.seq DESC NULLS LAST, f.came DESC, f.critical DESC"  # _NEWEST_CRITICAL
        # Each incident's newest critical event, then only if nobody answered it: neither
        # acknowledged itself, nor the one its incident was closed with (a fall closed by the
        # walker's I'm OK, its incident reopened by a fault, is not missed again); a critical
        # event after the close is the newest, and is.
        rows = self._db.execute(
            f"SELECT {', '.join(names)}, critical FROM (SELECT {plain}, f.critical, f.came, "
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

    def open_alerts(self, device_id: str, kinds: Sequence[str]) -> list[Alert]:
        rows = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE device_id = ? AND status IN {_OPEN} "
            f"AND kind IN ({_marks(kinds)})",
            (device_id, *kinds),
        ).fetchall()
        return [_alert(r) for r in rows]

    def paging_alerts(
        self, devices: Collection[str] | None, limit: int, held: bool = False
    ) -> list[Alert]:
        """Alerts paging now (of ``devices`` only, unless None), newest first, at most
        ``limit``: what the dashboard's "Still open" lists beside the open critical incidents
        (a monitor gone offline while armed, a stumble not reset in time, a fault). ``held``:
        with the alerts not yet paging, held for the walker's reset (a stumble within its
        grace: it was listed nowhere a caregiver looks)."""
        if devices is not None and not devices:
            return []
        where = "status IN ('paging', 'held')" if held else "status = 'paging'"
        args: list[object] = []
        if devices is not None:
            where += f" AND device_id IN ({_marks(list(devices))})"
            args += list(devices)
        rows = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE {where} "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [_alert(r) for r in rows]

    def open_alerts_due(self, now: float) -> list[Alert]:
        """Open alerts whose next look is due (held past their grace, paging past a timeout).

        Where rows are locked (PostgreSQL), their devices' rows are taken first, in id order
        (:meth:`hold_devices`), and the alerts read again: the escalation that writes them
        queues behind a batch of those devices' messages instead of forming a lock cycle
        with it, and sees what that batch did (an alert it closed is no longer due)."""
        due = self._alerts_due(now)
        if not due or not self._db.row_locks:
            return due
        devices = {alert.device_id for alert in due}
        self.hold_devices(devices)
        return [alert for alert in self._alerts_due(now) if alert.device_id in devices]

    def _alerts_due(self, now: float) -> list[Alert]:
        rows = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE status IN {_OPEN} AND next_at <= ? "
            "ORDER BY id",
            (now,),
        ).fetchall()
        return [_alert(r) for r in rows]

    def shift_timers(self, frame: ClockFrame, step: float) -> None:
        """Bring every open alert's timers into ``frame``, the wall clock now as the escalation
        ticker measured it (:meth:`caregiver.alerts.Alerting.tick`), so each still comes after
        the time it was set for; an open alert's opening moves too, so that its reminders say
        how long it has been open ("after 5 min", not "after -55 min").

        A timer written by this instance (``frame.of``) moves by the difference of its frame's
        offset and ``frame``'s: the steps since it was written, however many, and none before.
        Before schema 25 every timer moved by the ticker's measured ``step``, and one ingest
        wrote between the step and the ticker's look, already in the new clock, moved too:
        stepped forward an hour, a stumble's grace or a fall's reminder came an hour late;
        back, at once. A timer whose clock this instance cannot measure (another instance's
        on PostgreSQL, one from before a restart or before schema 25) moves by ``step`` as
        before, and is in ``frame`` from then on; that is exact when it was written before
        the step (on PostgreSQL the instances' clocks must agree: docs/provider.md).

        Run at every tick: the first statement writes nothing unless a step came since a row
        was written (rare), so it takes no device rows first: on PostgreSQL a deadlock with a
        batch fails the tick, which shifts at the next one. The notifications' retries are
        the notifier's to move (:meth:`Store.shift_notifications`)."""
        self._db.execute(
            f"UPDATE alerts SET next_at = next_at + (? - frame_offset), "
            f"created_at = created_at + (? - frame_offset), frame_offset = ? "
            f"WHERE status IN {_OPEN} AND next_at IS NOT NULL AND frame_of = ? "
            f"AND abs(? - frame_offset) >= ?",
            (frame.offset, frame.offset, frame.offset, frame.of, frame.offset, CLOCK_STEP_S),
        )
        if step:
            self._db.execute(
                f"UPDATE alerts SET next_at = next_at + ?, created_at = created_at + ?, "
                f"frame_of = ?, frame_offset = ? WHERE status IN {_OPEN} "
                f"AND next_at IS NOT NULL AND (frame_of IS NULL OR frame_of <> ?)",
                (step, step, frame.of, frame.offset, frame.of),
            )

    def bound_timers(self, now: float, grace_s: float, timeout_s: float, frame: ClockFrame) -> int:
        """Bring every open alert's timer that lies further ahead than its whole interval (a
        held stumble's ``grace_s``, a paging alert's ``timeout_s``) back to that interval from
        ``now``, its opening by as much, into ``frame`` (the escalation ticker's clock); how
        many. No timer is ever written further ahead (:class:`caregiver.alerts.Alerting`), so
        such a one was written in a wall clock ahead of this one, or moved by a step of this
        clock after it was already in the new one, and would come late by as much: on
        PostgreSQL only the escalation lease's holder measures steps, of its own clock, so a
        timer another machine's ingest wrote while its clock ran ahead of the holder's (not
        yet synchronised: an hour ahead, a fall's reminder and escalation came an hour late),
        or in the minutes between a step there and the same step on the holder's machine (then
        moved by the holder's step again), is brought to come within one interval of the
        holder's look. Run at every tick, after :meth:`shift_timers`; it writes nothing unless
        such a timer is there. A timer written in a clock behind is not told from one due and
        comes early (docs/caregiver.md, *Timers and the clock*)."""
        limit = "(CASE status WHEN 'held' THEN ? ELSE ? END)"
        cursor = self._db.execute(
            f"UPDATE alerts SET created_at = created_at + (? + {limit} - next_at), "
            f"next_at = ? + {limit}, frame_of = ?, frame_offset = ? "
            # one range of the alerts_open index a status: nothing is read between steps
            "WHERE (status = 'held' AND next_at > ?) OR (status = 'paging' AND next_at > ?)",
            (
                *(now, grace_s, timeout_s),
                *(now, grace_s, timeout_s),
                frame.of,
                frame.offset,
                # past a step's size: not one ingest wrote in the moment since the tick's look
                now + CLOCK_STEP_S + grace_s,
                now + CLOCK_STEP_S + timeout_s,
            ),
        )
        return max(0, cursor.rowcount)

    def start_paging(self, alert_id: int, next_at: float, frame: ClockFrame) -> None:
        """A held alert's grace ran out: it pages its first contact (one send); ``next_at`` is
        a wall time in ``frame``."""
        self._db.execute(
            f"UPDATE alerts SET status = 'paging', sends = 1, contact = 0, next_at = ?, "
            f"{_INTO_FRAME} WHERE id = ?",
            (next_at, *_into_frame(frame), alert_id),
        )

    def reschedule_alert(
        self, alert_id: int, contact: int, sends: int, next_at: float, frame: ClockFrame
    ) -> None:
        """``next_at``: a wall time in ``frame``."""
        self._db.execute(
            f"UPDATE alerts SET contact = ?, sends = ?, next_at = ?, {_INTO_FRAME} WHERE id = ?",
            (contact, sends, next_at, *_into_frame(frame), alert_id),
        )

    def close_alert(self, alert_id: int, status: str, by: str, now: float) -> None:
        """Close the alert, and drop its pages and reminders not yet delivered (a retry after
        a failure, a reminder queued as the answer came): sent after the answer, they told a
        caregiver "FALL" or "not acknowledged" of an alert already answered — after its
        follow-up, which whoever was paged gets instead. Follow-ups are the only messages
        queued at the normal urgency (:mod:`caregiver.priority`)."""
        self._db.execute(
            "UPDATE alerts SET status = ?, closed_by = ?, closed_at = ?, next_at = NULL "
            "WHERE id = ?",
            (status, by, now, alert_id),
        )
        self._db.execute(
            "UPDATE notifications SET status = 'failed', last_error = ? "
            "WHERE alert_id = ? AND status = 'pending' AND urgency <> ?",
            (f"not sent: the alert was closed first ({status})", alert_id, Urgency.NORMAL.value),
        )

    def mark_paged(self, alert_id: int, contacts: Sequence[str], reached: str | None) -> None:
        """Remember these contacts (:func:`caregiver.outbox.contact_id`) were paged for the
        alert (they get its follow-ups), and that it has reached ``reached`` (None: the
        contact it had reached, unchanged)."""
        if not contacts:
            return  # nobody new (no contacts configured): two round trips saved
        row = self._db.execute("SELECT paged FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        paged = sorted(set(json.loads(row[0])) | set(contacts), key=_paged_order)
        self._db.execute(
            "UPDATE alerts SET paged = ?, reached = COALESCE(?, reached) WHERE id = ?",
            (json.dumps(paged), reached, alert_id),
        )

    def alerts(self, device_id: str | None) -> list[Alert]:
        rows: Cursor
        if device_id is None:
            rows = self._db.execute(f"SELECT {_ALERT_COLUMNS} FROM alerts ORDER BY id")
        else:
            rows = self._db.execute(
                f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE device_id = ? ORDER BY id",
                (device_id,),
            )
        return [_alert(r) for r in rows.fetchall()]

    # ------------------------------------------------------ notifications

    def queue_notification(
        self,
        alert_id: int,
        contact: str,
        contact_index: int,
        url_index: int,
        title: str,
        body: str,
        now: float,
        *,
        contact_key: str,
        url_key: str,
        urgency: Urgency = Urgency.NORMAL,
    ) -> None:
        """A message for one URL of one contact, due now (the notifier sends it with the
        Apprise type and the service's priority ``urgency`` calls for). Addressed by
        ``contact_key`` (the contact's name, "" for none) and ``url_key``
        (:func:`caregiver.outbox.url_key`): :func:`caregiver.outbox.addressee` finds them in
        the config wherever they have moved; the positions are kept for the logs and for
        rows from before (schema 17)."""
        self._db.execute(
            "INSERT INTO notifications (alert_id, contact, contact_index, url_index, "
            "title, body, next_at, created_at, urgency, contact_key, url_key) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                alert_id,
                contact,
                contact_index,
                url_index,
                title,
                body,
                now,
                now,
                urgency.value,
                contact_key,
                url_key,
            ),
        )

    def notifications_due(self, now: float) -> list[PendingNotification]:
        return outbox.due_from(self._db.execute(outbox.DUE, (now,)).fetchall())

    def next_notification_at(self, after: float) -> float | None:
        return outbox.next_due_from(self._db.execute(outbox.NEXT_DUE, (after,)).fetchone())

    def notification_sent(self, notification_id: int, attempts: int) -> None:
        self._db.execute(outbox.SENT, (attempts, notification_id))

    def retry_notification(
        self, notification_id: int, attempts: int, next_at: float, error: str, frame: ClockFrame
    ) -> None:
        self._db.execute(
            outbox.RETRY, (attempts, next_at, error, frame.of, frame.offset, notification_id)
        )

    def shift_notifications(self, frame: ClockFrame, step: float) -> None:
        for statement, parameters in outbox.shift_statements(frame, step):
            self._db.execute(statement, parameters)

    def give_up_notification(
        self, notification_id: int, attempts: int, error: str, now: float
    ) -> None:
        self._db.execute(outbox.GIVE_UP, (attempts, now, error, notification_id))

    def drop_notification(self, notification_id: int, reason: str) -> None:
        """Never sent (e.g. its contact left the config)."""
        self._db.execute(outbox.DROP, (reason, notification_id))

    def still_due(self, notification_id: int) -> bool:
        """Still pending: not dropped since it was read as due (its alert closed meanwhile)."""
        return self._db.execute(outbox.STILL_DUE, (notification_id,)).fetchone() is not None

    def claim_notification(self, notification_id: int, attempts: int) -> bool:
        """:meth:`caregiver.outbox.Outbox.claim_notification`: the attempt counted as it
        begins, if the row is still due."""
        return self._db.execute(outbox.CLAIM, (attempts, notification_id)).rowcount > 0

    def drop_notifications_unaddressed(
        self, contacts: Sequence[Contact], reason: str
    ) -> list[PendingNotification]:
        """Every pending notification whose contact or URL ``contacts`` no longer has
        (:func:`caregiver.outbox.addressee`), marked failed; returns them. Before, this
        dropped the rows whose contact *index* was past the list's end: a contact that moved
        up a shortened list lost its pages, and one removed from the middle kept them, sent to
        whoever moved into its place."""
        gone = [
            note
            for note in outbox.due_from(self._db.execute(outbox.PENDING).fetchall())
            if outbox.addressee(contacts, note) is None
        ]
        for note in gone:
            self._db.execute(outbox.DROP, (reason, note.id))
        return gone

    # ------------------------------------------------- users and logins

    def add_user(
        self, username: str, password_hash: str, now: float, role: Role | None = None
    ) -> None:
        """Create the account (a caregiver unless ``role`` says), or set its password (and its
        role when ``role`` is given; otherwise the account keeps its own)."""
        self._db.execute(
            "INSERT INTO users (username, password_hash, created_at, role) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash",
            (username, password_hash, now, (role or Role.CAREGIVER).value),
        )
        if role is not None:
            self.set_role(username, role)

    def set_role(self, username: str, role: Role) -> bool:
        """False if there is no such account. Its open logins have the new role at once."""
        return (
            self._db.execute(
                "UPDATE users SET role = ? WHERE username = ?", (role.value, username)
            ).rowcount
            > 0
        )

    def password_hash(self, username: str) -> str | None:
        row = self._db.execute(
            "SELECT password_hash FROM users WHERE username = ?", (username,)
        ).fetchone()
        return str(row[0]) if row else None

    def start_login_session(
        self, token_hash: str, username: str, csrf: str, expires_at: float, now: float
    ) -> None:
        """Store a new login (by its token's hash) and forget the expired ones."""
        self._db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
        self._db.execute(
            "INSERT INTO sessions (token_hash, username, csrf, expires_at) VALUES (?, ?, ?, ?)",
            (token_hash, username, csrf, expires_at),
        )

    def login_session(self, token_hash: str, now: float) -> LoginSession | None:
        """The login with this token's hash, while it lasts and its account exists."""
        row = self._db.execute(
            "SELECT s.username, s.csrf, u.role FROM sessions s "
            "JOIN users u ON u.username = s.username "
            "WHERE s.token_hash = ? AND s.expires_at >= ?",
            (token_hash, now),
        ).fetchone()
        if row is None:
            return None
        return LoginSession(row[0], row[1], self._user_devices(row[0]), _role(row[2]))

    def end_login_session(self, token_hash: str) -> None:
        self._db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    # -------------------------------------------------------------- leases

    def hold_lease(
        self, name: str, holder: str, take_over: LeaseSeen | None, until: float
    ) -> LeaseSeen | None:
        """Take or renew the lease ``name`` for ``holder``, counting one renewal; the row as it
        is after (None: nobody holds it). ``holder`` has it when the row names it.

        It is taken when nobody holds it, or over from ``take_over``: the holder, count and
        ``expires_at`` the caller saw stand still for the lease's length on its own monotonic
        clock (:class:`caregiver.lease.Lease`), and only while the row still says so, in the one
        conditional statement: a renewal that came meanwhile (this release's, which counts, or
        an earlier release's, which only writes ``expires_at``), or another instance that took
        it over first, leaves it as it is, and the caller sees who holds it now. No wall time
        decides: ``until`` (the wall clock plus the lease's length) is written to ``expires_at``
        for people reading the row, and for an instance of a release before schema 27 during a
        rolling upgrade, which still goes by it (``expires_at`` is only ever compared with what
        was read of it, never with a clock). Before, the lease was taken over once
        ``expires_at`` had passed, and a holder that died without a clean stop kept it for an
        hour more after NTP set the clock back an hour: nobody was paged meanwhile."""
        seen = (
            (take_over.holder, take_over.renewals, take_over.expires_at)
            if take_over is not None
            else ("", -1, 0.0)  # no holder is named ""
        )
        row = self._db.execute(
            "INSERT INTO leases (name, holder, expires_at, renewals) VALUES (?, ?, ?, 1) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "expires_at = excluded.expires_at, renewals = leases.renewals + 1 "
            "WHERE leases.holder = excluded.holder OR (leases.holder = ? "
            "AND leases.renewals = ? AND leases.expires_at = ?) "
            "RETURNING holder, renewals, expires_at",
            (name, holder, until, *seen),
        ).fetchone()
        if row is None:  # another holds it: whom, and how far its renewals have come
            row = self._db.execute(
                "SELECT holder, renewals, expires_at FROM leases WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else LeaseSeen(str(row[0]), int(row[1]), float(row[2]))

    def release_lease(self, name: str, holder: str) -> None:
        self._db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    def lease_holder(self, name: str) -> str | None:
        row = self._db.execute(outbox.LEASE_HOLDER, (name,)).fetchone()
        return str(row[0]) if row else None

    def _user_devices(self, username: str) -> frozenset[str] | None:
        rows = self._db.execute(
            "SELECT device_id FROM user_devices WHERE username = ?", (username,)
        ).fetchall()
        return frozenset(r[0] for r in rows) if rows else None

    def users(self, now: float) -> list[Account]:
        """Every account, by name, with its device limit and how many logins it has open."""
        rows = self._db.execute(
            "SELECT u.username, u.created_at, (SELECT COUNT(*) FROM sessions s "
            "WHERE s.username = u.username AND s.expires_at >= ?), u.role FROM users u "
            "ORDER BY u.username",
            (now,),
        ).fetchall()
        accounts = []
        for username, created_at, sessions, role in rows:
            devices = self._user_devices(username)
            accounts.append(
                Account(
                    username,
                    created_at,
                    tuple(sorted(devices)) if devices is not None else None,
                    int(sessions),
                    _role(role),
                )
            )
        return accounts

    def remove_user(self, username: str) -> bool:
        """Delete the account, its logins and its device limit; False if there was none."""
        self._db.execute("DELETE FROM sessions WHERE username = ?", (username,))
        self._db.execute("DELETE FROM user_devices WHERE username = ?", (username,))
        return self._db.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount > 0

    def set_user_devices(self, username: str, devices: Sequence[str] | None) -> bool:
        """Limit the account to ``devices`` (None: every device; never empty, which would read
        as every device); False if there is no such account."""
        if devices is not None and not devices:
            raise ValueError("an account limited to no device at all: remove it instead")
        if self.password_hash(username) is None:
            return False
        self._db.execute("DELETE FROM user_devices WHERE username = ?", (username,))
        if devices is not None:
            for device_id in sorted(set(devices)):
                self._db.execute(
                    "INSERT INTO user_devices (username, device_id) VALUES (?, ?)",
                    (username, device_id),
                )
        return True

    # ----------------------------------------------------------- retention

    def prune(
        self,
        *,
        recordings_before: float | None,
        notifications_before: float | None,
        routine_before: float | None,
        now: float,
    ) -> tuple[int, int, int, int, int]:
        """Delete recordings, delivered notifications and routine events older than the given
        times (None keeps them) and expired logins; the counts, in that order."""
        db = self._db
        recordings = windows = notifications = routine = 0
        if recordings_before is not None:
            recordings = db.execute(
                "DELETE FROM recordings WHERE trip_event_id IN (SELECT r.trip_event_id FROM "
                "recordings r JOIN events e ON e.id = r.window_event_id WHERE e.received_at < ?)",
                (recordings_before,),
            ).rowcount
            windows = self._cut_windows(recordings_before)
            db.execute(
                "UPDATE events SET has_window = 0 WHERE has_window <> 0 AND received_at < ? "
                "AND id NOT IN (SELECT trip_event_id FROM recordings)",
                (recordings_before,),
            )
        if notifications_before is not None:
            notifications = db.execute(
                "DELETE FROM notifications WHERE status IN ('sent', 'failed') AND created_at < ?",
                (notifications_before,),
            ).rowcount
        if routine_before is not None:
            routine = db.execute(
                "DELETE FROM events WHERE severity = 'info' AND incident IS NULL "
                "AND received_at < ? AND id NOT IN (SELECT last_event_id FROM devices "
                "WHERE last_event_id IS NOT NULL)",
                (routine_before,),
            ).rowcount
        logins = db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,)).rowcount
        return recordings, windows, notifications, routine, logins

    def _cut_windows(self, before: float) -> int:
        """Cut the IMU window out of older monitors' event payloads received before ``before``;
        how many were cut. Done here rather than in SQL, whose JSON functions differ between
        the engines; a payload that is not a JSON object is left as it is."""
        rows = self._db.execute(
            "SELECT id, payload FROM events WHERE has_window <> 0 AND received_at < ?", (before,)
        ).fetchall()
        cut = 0
        for event_id, payload in rows:
            try:
                body = json.loads(payload)
            except ValueError:
                continue
            if isinstance(body, dict) and body.pop("imu_window", None) is not None:
                self._db.execute(
                    "UPDATE events SET payload = ? WHERE id = ?",
                    (json.dumps(body, separators=(",", ":")), event_id),
                )
                cut += 1
        return cut


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one retention sweep removed."""

    recordings: int
    windows: int
    """Older monitors' IMU windows cut out of their events' payloads."""
    notifications: int
    routine_events: int
    login_sessions: int
    pages_freed: int

    def words(self) -> str:
        """For the log, in words (it printed the dataclass's repr, ``Pruned(recordings=0,
        …)``, at every start)."""
        parts = [
            f"{count} {what}"
            for count, what in (
                (self.recordings, "recordings"),
                (self.windows, "older monitors' IMU windows"),
                (self.notifications, "notifications"),
                (self.routine_events, "routine events"),
                (self.login_sessions, "expired logins"),
            )
            if count
        ]
        if not parts:
            return "nothing old enough to remove"
        return f"removed {', '.join(parts)}; {self.pages_freed} database pages freed"


class Store:
    """The caregiver database: opened (and migrated) once, shared by every thread.

    ``database`` is a SQLite file path or a ``postgresql://`` URL (see
    :mod:`caregiver.storage.engines`).
    """

    READ_CONNECTIONS = 4
    """On PostgreSQL: connections for reads (pages, the live feed), beside the writing one."""

    def __init__(self, database: str | Path) -> None:
        self.location = str(database)
        self._lock = threading.RLock()
        self._writing = threading.local()
        """``depth``: this thread's open transactions and batches (its reads then see what they
        wrote, so they stay on the writing connection)."""
        self._reads: PooledReads | SqliteReads | None = None
        self._checkpointer: SqliteCheckpointer | None = None
        with _opening(self.location):
            self._db = open_database(database)
        self.engine = self._db.engine
        self.name = self._db.name
        """The database as logs name it (a URL without its password)."""
        self._announcer: Announcer | None = None
        self._batching = False
        """In :meth:`batch` (read and written only with ``_lock`` held)."""
        self._prepared: _Prepared | None = None
        """The open batch's events and incidents (:meth:`Transaction.prepare`)."""
        self._in_message = False
        """In a batch's :meth:`message` (read and written only with ``_lock`` held)."""
        self._message_failed = False
        """A transaction in the open :meth:`message` raised: the message is undone whole."""
        self._savepoints = True
        """The open batch's messages each have a savepoint (:meth:`batch`)."""
        self._spoilt = False
        """A message of the open batch failed without a savepoint: it must not commit."""
        self.damage: str | None = None
        """Set, for good, once a statement met a damaged page of the SQLite file: what a
        person reads (the file, what is wrong, what to do). A damaged file does not heal, so a
        later commit that missed the damaged pages does not clear it (:meth:`_faults`)."""
        self.on_damaged: Callable[[str], None] | None = None
        """Called once, with :attr:`damage`, when it is first set (on the thread that met it,
        perhaps with the store's lock held: it must not call the store)."""
        try:
            with self._lock, _opening(self.location):
                if isinstance(self._db, SqliteDatabase):
                    self._check_sqlite(self._db)
                    self._prepare_sqlite(self._db)
                self.schema: SchemaUpgrade = migrate(self._db)
        except BaseException:
            self._db.close()
            raise
        if isinstance(self._db, PostgresDatabase):
            try:
                with _opening(self.location):
                    self._announcer = Announcer(self._db.url)
                    self._reads = PooledReads(self._db.url, self.READ_CONNECTIONS)
            except BaseException:
                if self._announcer is not None:
                    self._announcer.stop()
                self._db.close()
                raise
        elif isinstance(self._db, SqliteDatabase) and self._db.name != ":memory:":
            # a second connection to a database in memory would be another database
            try:
                with _opening(self.location):
                    self._reads = SqliteReads(self._db.name)
                    self._checkpointer = SqliteCheckpointer(self._db.name)
                    self._db.leave_checkpoints()
            except BaseException:
                if self._reads is not None:
                    self._reads.close()
                self._db.close()
                raise

    def _check_sqlite(self, db: SqliteDatabase) -> None:
        """``PRAGMA quick_check`` of an existing file, within :data:`QUICK_CHECK_WITHIN_S`: a
        file damaged past its first pages opens, and said "database disk image is malformed"
        (naming no file) only when a statement reached the damaged page: a report, or an
        alert never stored. Found here, it is the one line naming the file and exit status 2,
        as a file damaged at its start is; a page that breaks later is met in use
        (:meth:`_faults`). Not moved aside, as the device's is: this file is the record of
        every incident, and only a person should decide what replaces it."""
        path = Path(db.name)
        if db.name == ":memory:" or not path.exists() or not path.stat().st_size:
            return
        checked = db.quick_check(QUICK_CHECK_WITHIN_S)
        if checked.findings is not None:
            raise StorageFault(
                f"caregiver database {self.location}: cannot open it: damaged (quick_check: "
                f"{checked.findings}). {_DAMAGED_ADVICE}",
                lasting=True,
            )
        if not checked.finished:
            log.warning(
                "%s: checked for damage for %.0f s, not to its end (a large file, a slow disk): "
                "a damaged page past what was read is found when a statement reaches it",
                self.location,
                QUICK_CHECK_WITHIN_S,
            )

    @contextmanager
    def _faults(self) -> Iterator[None]:
        """A driver's error in a statement as a :class:`StorageFault`
        (:func:`_as_storage_fault`); a damaged file also sets :attr:`damage` and calls
        :attr:`on_damaged` the first time."""
        try:
            with _as_storage_fault(self._db, self.location):
                yield
        except StorageFault as exc:
            if exc.lasting and self.damage is None:
                self.damage = str(exc)
                if self.on_damaged is not None:
                    self.on_damaged(self.damage)
            raise

    def _prepare_sqlite(self, db: SqliteDatabase) -> None:
        if db.name != ":memory:" and Path(db.name).exists() and Path(db.name).stat().st_size:
            (mode,) = db.execute("PRAGMA auto_vacuum").fetchone()
            if mode != 2:
                log.info("%s: rewriting the database once to allow incremental vacuum", db.name)
        db.prepare_file()

    def prune(
        self,
        *,
        recordings_before: float | None,
        notifications_before: float | None,
        routine_before: float | None,
        now: float,
    ) -> Pruned:
        """Delete what is older than the given times (None keeps it; see
        :class:`caregiver.config.RetentionConfig`), then give the freed space back."""
        with self.transaction() as tx:
            counts = tx.prune(
                recordings_before=recordings_before,
                notifications_before=notifications_before,
                routine_before=routine_before,
                now=now,
            )
        with self._lock, self._faults():
            freed = self._db.reclaim_space()
        return Pruned(*counts, pages_freed=freed)

    def file_bytes(self) -> int:
        """The database's size on disk (SQLite: its file's pages, the WAL aside)."""
        with self._lock, self._faults():
            return self._db.size_bytes()

    def close(self) -> None:
        if self._announcer is not None:
            self._announcer.stop()
            self._announcer = None
        if self._reads is not None:
            self._reads.close()
            self._reads = None
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        with self._lock:
            self._db.close()

    def checkpoint(self) -> tuple[int, int]:
        """Copy what the WAL holds into the SQLite file, off the writing connection (whose
        commits leave it: :class:`~caregiver.storage.engines.SqliteCheckpointer` says why):
        (the WAL's frames, of which now in the file). The caregiver service calls it every
        second; on PostgreSQL, or a database in memory, there is nothing to do: (0, 0)."""
        checkpointer = self._checkpointer
        if checkpointer is None:
            return 0, 0
        with self._faults():
            return checkpointer.run()

    # ----------------------------------------------------- other instances

    @property
    def shared(self) -> bool:
        """Other instances may use this database too (PostgreSQL): changes are announced."""
        return isinstance(self._db, PostgresDatabase)

    def announce(self, message: str) -> None:
        """Tell every other instance on this database ``message`` (a no-op on SQLite). Only
        queued here: a thread sends it (:class:`~caregiver.storage.engines.Announcer`), so the
        committing thread never waits on it, and a failure is logged, never raised."""
        if self._announcer is not None:
            self._announcer.announce(message)

    def listen(
        self,
        on_message: Callable[[str], None],
        on_resumed: Callable[[], None] | None = None,
    ) -> Listener | None:
        """Hear what the other instances announce (a thread; None on SQLite); ``on_resumed``
        once listening again after a loss (what was announced meanwhile was not heard)."""
        if not isinstance(self._db, PostgresDatabase):
            return None
        return Listener(self._db.url, on_message, on_resumed)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Operations that commit together (rolled back if the block raises). Keep the block
        short and free of I/O: every other thread waits for it. A database failure is a
        :class:`StorageFault` (a failed commit too, rolled back). Inside :meth:`batch` it is a
        savepoint: rolled back alone if the block raises, committed with the batch. Inside a
        batch's :meth:`message` it is part of the message: if the block raises, the whole
        message is undone (its savepoint is the message's: one statement fewer each way, a
        round trip's CPU each on PostgreSQL)."""
        with self._lock, self._faults(), self._written():
            if self._in_message:
                try:
                    yield Transaction(self._db, self._prepared)
                except BaseException:
                    self._message_failed = True
                    raise
                return
            if self._batching:
                self._db.execute("SAVEPOINT one")
                try:
                    yield Transaction(self._db, self._prepared)
                except BaseException:
                    with contextlib.suppress(*self._db.errors):
                        self._db.execute("ROLLBACK TO SAVEPOINT one")
                        self._db.execute("RELEASE SAVEPOINT one")
                    raise
                self._db.execute("RELEASE SAVEPOINT one")
                return
            self._db.begin()
            try:
                yield Transaction(self._db)
                # In the try: a COMMIT can fail and leave the transaction open (SQLite, unless
                # it rolled back itself); left so, every later BEGIN on this one connection
                # failed ("within a transaction") until a restart. Rolled back, the failure is
                # this transaction's StorageFault alone. (PostgreSQL ends it itself.)
                self._db.commit()
            except BaseException:
                with contextlib.suppress(*self._db.errors):  # already ended: the first error
                    self._db.rollback()
                raise

    def sync_committed(self) -> None:
        """Every commit that returned before this call is on disk once it returns: the second
        half of a :meth:`batch` stored with ``synced=False`` (ingest's receipts wait for it,
        :class:`caregiver.receipts.DurableReceipts`). Takes no lock: a batch being stored
        meanwhile is not waited for (and is not covered). A failure is a
        :class:`StorageFault`."""
        try:
            self._db.sync_committed()
        except OSError as exc:
            raise StorageFault(f"caregiver database: syncing its log to disk: {exc}") from exc

    @contextmanager
    def message(self, event_id: str | None = None) -> Iterator[None]:
        """One message's handling in a :meth:`batch` (``event_id``: its event's, if it is one):
        if the block raises anything but a :class:`StorageFault`, all it wrote is undone, its
        event's row the batch inserted up front with it, and the batch goes on without it.

        Without this, a bug in the alerting left the event stored with no alert and no
        receipt: the device sent it again, the service took it for a duplicate, and the fall
        paged nobody. Undone, the event is not stored, so a resent one is new and alerted.
        Outside a batch the message's own transaction is its undo (nothing to do here).
        A savepoint: on PostgreSQL it also keeps the batch's transaction usable after a Python
        exception is rolled back to it (after a database error the pipeline stays aborted and
        the whole batch is held, as it should be). A :meth:`transaction` in the block that
        raised undoes the message even if the block went on (:class:`MessageUndone` then says
        so). In a batch opened with ``savepoints=False`` there is no savepoint: a block that
        raises spoils the batch, which must then end (see :meth:`batch`)."""
        with self._lock:
            if not self._batching or self._in_message:
                yield
                return
            if not self._savepoints:
                yield from self._message_without_savepoint()
                return
            prepared = self._prepared
            before = prepared.copy() if prepared is not None else None
            with self._faults():  # one for the whole: it costs what a statement does
                self._db.execute("SAVEPOINT message")
                self._in_message, self._message_failed = True, False
                try:
                    yield
                    if self._message_failed:
                        raise MessageUndone("a transaction of the message failed and was let go")
                except StorageFault:
                    raise  # the batch is rolled back whole
                except Exception as exc:
                    if isinstance(exc, self._db.errors):
                        raise  # a StorageFault (the with above): the batch is rolled back whole
                    self._in_message = False
                    self._db.execute("ROLLBACK TO SAVEPOINT message")
                    if before is not None and event_id in before.new_events:
                        # inserted for this message, before its savepoint: undone by hand, and a
                        # copy later in the batch is then inserted as a new event
                        self._db.execute("DELETE FROM events WHERE id = ?", (event_id,))
                        before.events.discard(event_id)
                        before.new_events.discard(event_id)
                    self._db.execute("RELEASE SAVEPOINT message")
                    if prepared is not None and before is not None:
                        prepared.restore(before)
                    raise
                finally:
                    self._in_message = False
                self._db.execute("RELEASE SAVEPOINT message")

    def _message_without_savepoint(self) -> Iterator[None]:
        """A message in a batch opened with ``savepoints=False``: nothing to undo it alone.
        If its block raises, the batch is spoilt: it must end by that exception (rolled back
        whole), and it refuses to commit if the caller went on instead."""
        self._in_message, self._message_failed = True, False
        try:
            yield
            if self._message_failed:
                raise MessageUndone("a transaction of the message failed and was let go")
        except BaseException:
            self._spoilt = True
            raise
        finally:
            self._in_message = False

    @contextmanager
    def batch(
        self,
        devices: Collection[str] = (),
        now: float = 0.0,
        events: Sequence[tuple[NewEvent, float]] = (),
        *,
        savepoints: bool = True,
        synced: bool = True,
    ) -> Iterator[None]:
        """Group commit: every :meth:`transaction` in the block commits at its end, in one
        commit (a commit costs as much as the rest of a message's work: a burst of messages
        is stored in half the time). All or nothing: if the block raises, nothing of it is
        kept. Other threads wait for the whole block: keep it to a bounded number of
        messages.

        ``devices``: every device the block writes for, locked first in id order
        (:meth:`Transaction.lock_devices`: two instances' batches cannot deadlock) and seen
        at ``now``; ``events``: the events (and when each was received) its messages will
        record, inserted up front (:meth:`Transaction.prepare`). On PostgreSQL the block's
        statements go out in pipeline mode: only a statement whose result is read waits for
        the server.

        ``savepoints=False``: the block's :meth:`message` s get no savepoint (two statements
        fewer each). A message whose block raises then cannot be undone alone: the batch
        must end by that exception, and is stored again with savepoints (what
        :meth:`caregiver.ingest.Ingestor.handle_batch` does); it never commits.

        ``synced=False``: the commit may return before it is on disk (SQLite; PostgreSQL's
        always is): nothing that tells the outside world it is stored (a receipt) may go out
        until :meth:`sync_committed` has returned after it."""
        with self._lock, self._faults(), self._written():
            try:
                with self._db.pipeline():
                    self._db.begin(synced=synced)
                    ops = Transaction(self._db)
                    ops.lock_devices(devices, now)
                    self._prepared = ops.prepare(events) if events else None
                    self._batching, self._savepoints, self._spoilt = True, savepoints, False
                    yield
                    self._batching = False
                    if self._spoilt:
                        raise MessageUndone("a message without a savepoint failed: not committed")
                    Transaction(self._db, self._prepared).finish()
                    self._prepared = None
                    self._db.commit()
            except BaseException:
                self._batching = False
                self._prepared = None
                with contextlib.suppress(*self._db.errors):
                    self._db.rollback()
                raise

    @contextmanager
    def _written(self) -> Iterator[None]:
        self._writing.depth = getattr(self._writing, "depth", 0) + 1
        try:
            yield
        finally:
            self._writing.depth -= 1

    @contextmanager
    def _statement(self) -> Iterator[Transaction]:
        """For an operation of one statement: SQLite runs it as its own transaction."""
        with self._lock, self._faults():
            yield Transaction(self._db)

    def _read(self, read: Callable[[Transaction], _T]) -> _T:
        """Run an operation that only reads: on a connection of its own (PostgreSQL: one of
        the pooled connections; a SQLite file: its reading connection), so that it waits
        neither for nor on ingest's batch (a thread inside a transaction or batch reads on
        the writing connection, and sees its own writes; an in-memory SQLite database has
        only that one)."""
        reads = self._reads
        depth: int = getattr(self._writing, "depth", 0)
        if reads is None or depth > 0:
            with self._statement() as ops:
                return read(ops)
        with self._faults():
            return reads.run(lambda db: read(Transaction(db)))

    # ------------------------------------------------------------ devices

    def set_state(
        self,
        device_id: str,
        state: str,
        reason: str,
        wall_time: str,
        now: float,
        worn: WornSaid | None = None,
    ) -> None:
        with self._statement() as ops:
            ops.set_state(device_id, state, reason, wall_time, now, worn)

    def set_telemetry(self, device_id: str, telemetry: Mapping[str, Any], now: float) -> None:
        with self._statement() as ops:
            ops.set_telemetry(device_id, telemetry, now)

    def devices(self) -> list[Device]:
        return self._read(lambda ops: ops.devices())

    def device(self, device_id: str) -> Device | None:
        return self._read(lambda ops: ops.device(device_id))

    def devices_by_id(self, device_ids: Collection[str]) -> dict[str, Device]:
        """These devices' cards (those known), by id, read at once (see :meth:`events_by_id`)."""
        return self._read(lambda ops: ops.devices_by_id(device_ids))

    # ------------------------------------------------------------- events

    def event(self, event_id: str) -> StoredEvent | None:
        return self._read(lambda ops: ops.event(event_id))

    def events_by_id(self, event_ids: Collection[str]) -> dict[str, StoredEvent]:
        """These events (those stored), by id, in a statement or a few: what the live feed
        renders for a batch of changes, read at once instead of a round trip each."""
        return self._read(lambda ops: ops.events_by_id(event_ids))

    def events_for(self, device_id: str, limit: int = 200) -> list[StoredEvent]:
        """The device's timeline, newest first."""
        return self._read(lambda ops: ops.events_for(device_id, limit))

    def recent_events(
        self, types: Sequence[str], limit: int = 10, devices: Collection[str] | None = None
    ) -> list[StoredEvent]:
        return self._read(lambda ops: ops.recent_events(types, limit, devices))

    def imu_window(self, event_id: str) -> object | None:
        return self._read(lambda ops: ops.imu_window(event_id))

    def event_count(self) -> int:
        return self._read(lambda ops: ops.event_count())

    def confirm_ack(self, device_id: str, request_id: str) -> bool:
        with self._statement() as ops:
            return ops.confirm_ack(device_id, request_id)

    # ----------------------------------------------------------- incidents

    def incident(self, incident_id: str) -> Incident | None:
        return self._read(lambda ops: ops.incident(incident_id))

    def incidents_by_id(self, incident_ids: Collection[str]) -> dict[str, Incident]:
        """These incidents (those stored), by id, read at once (see :meth:`events_by_id`)."""
        return self._read(lambda ops: ops.incidents_by_id(incident_ids))

    def incidents_for(self, device_id: str, limit: int = 50) -> list[Incident]:
        """The device's incidents, newest first."""
        return self._read(lambda ops: ops.incidents_for(device_id, limit))

    def recent_incidents(
        self, limit: int = 10, devices: Collection[str] | None = None
    ) -> list[Incident]:
        """Every device's incidents (or only ``devices``'), newest first (the fleet page's
        list)."""
        return self._read(lambda ops: ops.recent_incidents(limit, devices))

    def open_critical(
        self, devices: Collection[str] | None = None, limit: int = 50
    ) -> list[tuple[Incident, str]]:
        """What a dashboard page alarms for if it has not yet: the open (not acknowledged)
        incidents with a critical event, newest first, each with its newest critical event's
        id (no times: the page compares ids it rendered and heard, whatever the clocks)."""
        return self._read(lambda ops: ops.open_critical(devices, limit))

    def paging_alerts(
        self, devices: Collection[str] | None = None, limit: int = 50, held: bool = False
    ) -> list[Alert]:
        """The alerts paging now, newest first (:meth:`Transaction.paging_alerts`)."""
        return self._read(lambda ops: ops.paging_alerts(devices, limit, held))

    def open_incidents(self, device_id: str) -> list[Incident]:
        return self._read(lambda ops: ops.open_incidents(device_id))

    def incident_events(self, incident_id: str) -> list[StoredEvent]:
        return self._read(lambda ops: ops.incident_events(incident_id))

    def recording(self, trip_event_id: str) -> bytes | None:
        return self._read(lambda ops: ops.recording(trip_event_id))

    def recording_for(self, event: StoredEvent) -> tuple[str, bytes] | None:
        """The recording to show with ``event``: its own if it tripped the monitor, else its
        incident's (a fall confirmed after a trip is plotted in the trip's recording)."""

        def read(ops: Transaction) -> tuple[str, bytes] | None:
            own = ops.recording(event.id)
            if own is not None:
                return event.id, own
            return ops.incident_recording(event.incident) if event.incident else None

        return self._read(read)

    # ----------------------------------------------------- guided sessions

    def record_walk_session(self, session: WalkSession, payload: str, now: float) -> WalkOutcome:
        with self.transaction() as tx:
            return tx.record_walk_session(session, payload, now)

    def walk_sessions(
        self, device_id: str, limit: int = 500, walker: str | None = None
    ) -> list[WalkSession]:
        """The device's guided sessions (``walker``'s, when given), newest first."""
        return self._read(lambda ops: ops.walk_sessions(device_id, limit, walker))

    def walk_session_payloads(
        self, device_id: str, limit: int = 500, walker: str | None = None
    ) -> list[str]:
        """The device's session summaries as received (JSON text; ``walker``'s, when given),
        newest first: what the stored row leaves out (the balance check and gait figures) is
        read from them."""
        return self._read(lambda ops: ops.walk_session_payloads(device_id, limit, walker))

    def walkers(self, device_id: str) -> list[tuple[str, str]]:
        """The walkers of the device's stored sessions, ``(id, name)``, the one who walked last
        first (a device with sessions only from before profiles: the default walker)."""
        return self._read(lambda ops: ops.walkers(device_id))

    def walk_session_count(self) -> int:
        return self._read(lambda ops: ops.walk_session_count())

    def set_device_walkers(self, device_id: str, walkers: Sequence[tuple[str, str]]) -> bool:
        """Store the device's walker profiles (its retained ``walkers`` message); True when
        they changed."""
        with self.transaction() as tx:
            return tx.set_device_walkers(device_id, walkers)

    def set_device_zone(self, device_id: str, zone: str, now: float) -> bool:
        """Store the IANA zone the device counts its weeks in (its retained ``progress``
        message's ``zone``); True when it changed."""
        with self.transaction() as tx:
            return tx.set_device_zone(device_id, zone, now)

    def device_zone(self, device_id: str) -> str:
        """The IANA zone the device last said it counts its weeks in; '' when it never did
        (an older release, or a zone with no name)."""
        return self._read(lambda ops: ops.device_zone(device_id))

    def device_walkers(self, device_id: str) -> list[tuple[str, str]]:
        """The device's walker profiles as it last published them, ``(id, name)`` in the
        button's order (none before its first message)."""
        return self._read(lambda ops: ops.device_walkers(device_id))

    def set_walker_stage(
        self, device_id: str, stage: StageMessage, message: bytes, now: float
    ) -> bool:
        """Store one walker's progression as the device published it (its retained ``stage``
        message, ``message`` its payload); True when it says something new."""
        with self.transaction() as tx:
            return tx.set_walker_stage(device_id, stage, message, now)

    def forget_walker_stage(self, device_id: str, walker: str) -> bool:
        """The device cleared ``walker``'s stage topic (removed at the treadmill)."""
        with self.transaction() as tx:
            return tx.forget_walker_stage(device_id, walker)

    def walker_stage(self, device_id: str, walker: str) -> StageMessage | None:
        """``walker``'s progression as the device last published it (None: it never did: no
        progression, or an older device that does not send it)."""
        return self._read(lambda ops: ops.walker_stage(device_id, walker))

    # ------------------------------------------- plan commands and answers

    def command_sent(self, command: SentCommand, keep: int = 20) -> None:
        with self.transaction() as tx:
            tx.command_sent(command, keep)

    def forget_command(self, request_id: str) -> None:
        with self._statement() as ops:
            ops.forget_command(request_id)

    def command_answered(
        self, device_id: str, request_id: str, ok: bool, answer: str, now: float
    ) -> bool:
        with self._statement() as ops:
            return ops.command_answered(device_id, request_id, ok, answer, now)

    def sent_commands(self, device_id: str, limit: int = 20) -> list[SentCommand]:
        """The plan and progression commands sent to the device, newest first."""
        with self._statement() as ops:
            return ops.sent_commands(device_id, limit)

    # ------------------------------------------------------------ self-tests

    def self_test_asked(self, device_id: str, request_id: str, by: str, now: float) -> None:
        with self._statement() as ops:
            ops.self_test_asked(device_id, request_id, by, now)

    def self_test_unsent(self, device_id: str, request_id: str) -> None:
        with self.transaction() as tx:
            tx.self_test_unsent(device_id, request_id)

    def self_test_answered(
        self,
        device_id: str,
        request_id: str,
        outcome: SelfTestOutcome,
        reason: str,
        checks: Sequence[tuple[str, bool, str]],
        now: float,
    ) -> bool:
        with self._statement() as ops:
            return ops.self_test_answered(device_id, request_id, outcome, reason, checks, now)

    def self_test(self, device_id: str) -> SelfTestRecord | None:
        """The device's newest self-test asked for from the dashboard, with its newest answer
        (None: never asked)."""
        return self._read(lambda ops: ops.self_test(device_id))

    # ------------------------------------------------- prescribed sessions

    def set_prescribed(
        self, device_id: str, week: str, sessions: int, walker: str = DEFAULT_WALKER.id
    ) -> bool:
        with self.transaction() as tx:
            return tx.set_prescribed(device_id, week, sessions, walker)

    def prescribed_weeks(self, device_id: str, walker: str = DEFAULT_WALKER.id) -> dict[str, int]:
        """Week ("2026-W49") -> sessions ``walker``'s progression prescribed in it (weeks the
        service never heard of are absent: the default three)."""
        with self._statement() as ops:
            return ops.prescribed_weeks(device_id, walker)

    # ------------------------------------------------------------- alerts

    def alerts(self, device_id: str | None = None) -> list[Alert]:
        """Every alert (of the device), oldest first."""
        return self._read(lambda ops: ops.alerts(device_id))

    # ------------------------------------------------------ notifications

    def notifications_due(self, now: float) -> list[PendingNotification]:
        return self._read(lambda ops: ops.notifications_due(now))

    def next_notification_at(self, after: float) -> float | None:
        return self._read(lambda ops: ops.next_notification_at(after))

    def notification_sent(self, notification_id: int, attempts: int) -> None:
        with self._statement() as ops:
            ops.notification_sent(notification_id, attempts)

    def retry_notification(
        self, notification_id: int, attempts: int, next_at: float, error: str, frame: ClockFrame
    ) -> None:
        with self._statement() as ops:
            ops.retry_notification(notification_id, attempts, next_at, error, frame)

    def shift_notifications(self, frame: ClockFrame, step: float) -> None:
        """:meth:`caregiver.outbox.Outbox.shift_notifications`."""
        with self._statement() as ops:
            ops.shift_notifications(frame, step)

    def give_up_notification(
        self, notification_id: int, attempts: int, error: str, now: float
    ) -> None:
        with self._statement() as ops:
            ops.give_up_notification(notification_id, attempts, error, now)

    def drop_notification(self, notification_id: int, reason: str) -> None:
        with self._statement() as ops:
            ops.drop_notification(notification_id, reason)

    def still_due(self, notification_id: int) -> bool:
        return self._read(lambda ops: ops.still_due(notification_id))

    def claim_notification(self, notification_id: int, attempts: int) -> bool:
        with self._statement() as ops:
            return ops.claim_notification(notification_id, attempts)

    def drop_notifications_unaddressed(
        self, contacts: Sequence[Contact], reason: str
    ) -> list[PendingNotification]:
        with self.transaction() as tx:  # read and marked at once: none queued between
            return tx.drop_notifications_unaddressed(contacts, reason)

    # -------------------------------------------------------------- leases

    def hold_lease(
        self, name: str, holder: str, take_over: LeaseSeen | None, until: float
    ) -> LeaseSeen | None:
        """:meth:`Transaction.hold_lease`."""
        with self._statement() as ops:
            return ops.hold_lease(name, holder, take_over, until)

    def release_lease(self, name: str, holder: str) -> None:
        """Give up ``holder``'s lease ``name``, if it has it (:meth:`.Lease.release`)."""
        with self._statement() as ops:
            ops.release_lease(name, holder)

    def lease_holder(self, name: str) -> str | None:
        """Who holds the lease ``name`` (None: nobody), as its row says: the notifier process
        sends while it names the service (:mod:`caregiver.notify_process`)."""
        return self._read(lambda ops: ops.lease_holder(name))

    # ------------------------------------------------- users and logins

    def add_user(
        self, username: str, password_hash: str, now: float, role: Role | None = None
    ) -> None:
        with self.transaction() as tx:
            tx.add_user(username, password_hash, now, role)

    def set_role(self, username: str, role: Role) -> bool:
        with self.transaction() as tx:
            return tx.set_role(username, role)

    def password_hash(self, username: str) -> str | None:
        return self._read(lambda ops: ops.password_hash(username))

    def start_login_session(
        self, token_hash: str, username: str, csrf: str, expires_at: float, now: float
    ) -> None:
        with self.transaction() as tx:
            tx.start_login_session(token_hash, username, csrf, expires_at, now)

    def login_session(self, token_hash: str, now: float) -> LoginSession | None:
        with self._statement() as ops:  # the lock keeps its two reads together
            return ops.login_session(token_hash, now)

    def end_login_session(self, token_hash: str) -> None:
        with self._statement() as ops:
            ops.end_login_session(token_hash)

    def users(self, now: float) -> list[Account]:
        with self.transaction() as tx:
            return tx.users(now)

    def remove_user(self, username: str) -> bool:
        with self.transaction() as tx:
            return tx.remove_user(username)

    def set_user_devices(self, username: str, devices: Sequence[str] | None) -> bool:
        with self.transaction() as tx:
            return tx.set_user_devices(username, devices)


def _role(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:  # written by a later release: the least it may do
        return Role.CAREGIVER


def _finite_only(value: Any) -> Any:
    """NaN and infinities (which older versions stored from devices) read as null: they are
    not JSON, and one of them made /api/fleet answer 500."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_only(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_only(v) for v in value]
    return value


def _device(r: tuple[Any, ...]) -> Device:
    telemetry: Mapping[str, Any] = _finite_only(json.loads(r[6] or "{}"))
    return {
        "device_id": r[0],
        "availability": r[1],
        "state": r[2],
        "state_reason": r[3],
        "state_worn": r[28],
        "state_time": r[4],
        "last_seen": r[5],
        "telemetry": dict(telemetry),
        "last_event": (
            {
                "id": r[7],
                "type": r[8],
                "severity": r[9],
                "reason": r[10],
                "wall_time": r[11],
                "received_at": r[12],
            }
            if r[7]
            else None
        ),
        "open_alerts": int(r[13]),
        "incident": (
            {
                "id": r[14],
                "kind": r[15],
                "status": r[16],
                "opened_at": r[17],
                "first_event_id": r[18],
                "last_event_at": r[19],
                "closed_at": r[20],
                "closed_by": r[21],
                "closed_via": r[22],
                "answered": bool(r[23]),
                "newest_alert": r[24],
                "walker": r[26],
                "told": bool(r[27]),
            }
            if r[14]
            else None
        ),
        "newest_other_alert": None if r[25] is None else int(r[25]),
    }


def _event(row: tuple[Any, ...]) -> StoredEvent:
    return StoredEvent(
        id=row[0],
        device_id=row[1],
        seq=row[2],
        type=row[3],
        severity=row[4],
        state=row[5],
        reason=row[6],
        wall_time=row[7],
        received_at=row[8],
        figures=json.loads(row[9]),
        has_window=bool(row[10]),
        acked_by=row[11],
        acked_at=row[12],
        ack_confirmed=bool(row[13]),
        incident=row[14],
        wall_unsynced=bool(row[15]),
    )


def _paged_order(contact: int | str) -> tuple[bool, str]:
    """Places (an alert paged before schema 17) first, then ids: a list may hold both."""
    return isinstance(contact, str), str(contact)


def _alert(row: tuple[Any, ...]) -> Alert:
    return Alert(
        id=row[0],
        kind=row[1],
        device_id=row[2],
        event_id=row[3],
        status=row[4],
        created_at=row[5],
        next_at=row[6],
        contact=row[7],
        sends=row[8],
        paged=json.loads(row[9]),
        closed_by=row[10],
        incident=row[11],
        reached=row[12],
    )


@contextmanager
def _as_storage_fault(db: Database, location: str) -> Iterator[None]:
    """The driver's error as a :class:`StorageFault`. A damaged SQLite file
    (SQLITE_CORRUPT, SQLITE_NOTADB: "database disk image is malformed") names the file and
    says what to do, and is ``lasting``: before, it said "caregiver database: database disk
    image is malformed", naming no file, from a report or in the log as alerts were held."""
    try:
        yield
    except db.errors as exc:
        if _damaged(exc):
            raise StorageFault(
                f"caregiver database {redacted(location)}: {_one_line(exc)}. {_DAMAGED_ADVICE}",
                lasting=True,
            ) from exc
        raise StorageFault(f"caregiver database: {exc}", refused_data=_refused_data(exc)) from exc


def _one_line(exc: BaseException) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


QUICK_CHECK_WITHIN_S = 5.0
"""How long opening a SQLite file may spend checking it for damage (:meth:`Store._check_sqlite`):
a year of 8 treadmills (12 MB) took 0.2 s from disk, ten years (120 MB) 2 s (x86; a Pi's SD
card is slower). Past it the check stops and the log says only part was checked; the unit's
TimeoutStartSec is 60 s."""


@contextmanager
def _opening(location: str) -> Iterator[None]:
    """The driver's error while the store opens its database (connecting, preparing the
    file, migrating, its other connections), as a :class:`StorageFault` of one line that
    names the database, says what is wrong and what to do: it is what a person starting the
    service or a command sees (before, a locked file came out as a raw ``sqlite3``
    traceback, a damaged one as "database disk image is malformed" naming no file)."""
    try:
        yield
    except _any_engine_errors() as exc:
        reason = _one_line(exc)
        advice, lasting = _opening_advice(exc)
        raise StorageFault(
            f"caregiver database {redacted(location)}: cannot open it: {reason}. {advice}",
            lasting=lasting,
        ) from exc


_SQLITE_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_SQLITE_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")
_SQLITE_ACCESS = ("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")


_DAMAGED_ADVICE = (
    "The file is damaged: stop the service, move the file aside (with its -wal and -shm "
    "files) and restore a backup, or start afresh with a new file"
)


def _damaged(exc: BaseException) -> bool:
    """``exc`` says the SQLite file is damaged or not a database (by its primary result
    code: extended ones, e.g. SQLITE_CORRUPT_INDEX, begin with the primary's name)."""
    code = getattr(exc, "sqlite_errorname", None) or ""
    return isinstance(exc, sqlite3.Error) and code.startswith(_SQLITE_DAMAGED)


def _opening_advice(exc: BaseException) -> tuple[str, bool]:
    """What to do about ``exc`` met opening the database, and whether a restart cannot cure
    it (see :attr:`StorageFault.lasting`). By SQLite's primary result code (its extended
    codes, e.g. SQLITE_CORRUPT_VTAB, begin with the primary's name)."""
    if _damaged(exc):
        return _DAMAGED_ADVICE, True
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorname", None) or ""
        if code.startswith(_SQLITE_BUSY):
            return (
                "Another process holds it locked past the busy timeout (a second caregiver "
                "service, a backup or an sqlite3 shell on it): stop that one and start again",
                False,
            )
        if code.startswith(_SQLITE_ACCESS) or "cannot make its directory" in str(exc):
            return (
                "Check that its folder exists and that the service's user may write the "
                "folder and the file (the unit's StateDirectory=, /var/lib/retroguard)",
                False,
            )
        return "Check the file, its folder and the disk", False
    return (
        "Check that the PostgreSQL server is running and reachable, and the URL's user, "
        "password and database name ([server] database)",
        False,
    )


def _refused_data(exc: BaseException) -> bool:
    """The driver's error says the data is wrong, not the database (DB-API ``DataError``:
    SQLSTATE class 22)."""
    drivers = (sys.modules.get(name) for name in ("sqlite3", "psycopg"))
    return isinstance(exc, tuple(d.DataError for d in drivers if d is not None))


def _incident(r: tuple[Any, ...]) -> Incident:
    if len(r) > _INCIDENT_FIELDS:  # read with _INCIDENT_READ: answered, opened_unsynced
        unsynced = len(r) > _INCIDENT_FIELDS + 1 and bool(r[_INCIDENT_FIELDS + 1])
        fields: tuple[Any, ...] = (*r[:_INCIDENT_FIELDS], bool(r[_INCIDENT_FIELDS]), unsynced)
        return Incident(*fields)
    return Incident(*r)


_INCIDENT_FIELDS = len(_INCIDENT_COLUMNS.split(","))
