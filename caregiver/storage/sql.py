"""The SQL the store's operations share: column lists, statement fragments and the small
helpers that build statements or decide what a row write keeps (used by the transaction's parts)."""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Iterator, Sequence

from caregiver.storage.engines import SqliteDatabase
from caregiver.storage.records import CLOSED_HERE, OPEN_STATUSES, ClockFrame, NewEvent
from core.clock import CLOCK_STEP_S
from core.progress import check_week, utc_of
from core.protocol.events import INCIDENT_TYPES
from core.protocol.messages import StageMessage

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
"""The open alerts' statuses as SQL, ``('held', 'paging')``: the condition of the partial index
``alerts_open_now`` (schema 30), which a query uses only if its WHERE names it as written."""
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


def _closed_with(t: str) -> str:
    """The event closed incident ``t`` was closed with when the walker or the device closed it
    (an I'm OK, a reset, a close relayed from Home Assistant; none for a close made by this
    service, whose own clock stamped it): its newest such event received by the close, as
    :func:`caregiver.story.page_moment` picks it from the events read."""
    here = ", ".join(f"'{via}'" for via in CLOSED_HERE)
    return (
        f"(SELECT e.id FROM events e WHERE e.incident = {t}.id AND {t}.status = 'closed' "
        f"AND COALESCE({t}.closed_via, '') NOT IN ({here}) AND e.type IN ('ok', 'reset', 'closed') "
        f"AND e.received_at <= {t}.closed_at ORDER BY e.received_at DESC, {_NEWEST_CRITICAL} "
        "LIMIT 1)"
    )


_ALERT_EVENT_TYPES = ", ".join(f"'{t.value}'" for t in sorted(INCIDENT_TYPES))
"""Event types that open or worsen an incident, as SQL."""

_INCIDENT_READ = f"{_INCIDENT_COLUMNS}, {_answered('incidents')}, opened_unsynced"
"""An incident as read back: its columns, whether it is answered (:func:`_answered`) and
whether the device's clock was not set when it stamped the event that opened it."""
_INCIDENT_LISTED = f"{_INCIDENT_READ}, {_told('incidents')}"
"""An incident as the fleet's "Recent alerts" shows it: as :data:`_INCIDENT_READ`, and whether
the treadmill has its close (:func:`_told`, as a card reads it; the live feed's row takes it
from its card). Not where the service acts on an incident (ingest, the escalation): read
there it would cost a look at its events each time, for words only a page shows."""
_DEVICE_SELECT = (
    "SELECT d.device_id, d.availability, d.state, d.state_reason, d.state_time, "
    "d.last_seen, d.telemetry, e.id, e.type, e.severity, e.reason, e.wall_time, "
    "e.received_at, (SELECT COUNT(*) FROM alerts a WHERE a.device_id = d.device_id "
    f"AND a.status IN {_OPEN}), "
    "i.id, i.severity, i.status, i.opened_at, i.first_event_id, i.last_event_at, i.closed_at, "
    f"i.closed_by, i.closed_via, {_answered('i')}, {_newest_alert('i')}, "
    "(SELECT MAX(a.id) FROM alerts a WHERE a.device_id = d.device_id AND a.incident IS NULL "
    f"AND a.status IN {_OPEN}), i.walker, {_told('i')}, d.state_worn, i.opened_wall, "
    "i.opened_unsynced, c.wall_time, c.wall_unsynced, d.state_fault FROM devices d "
    "LEFT JOIN events e ON e.id = d.last_event_id "
    # the card's incident: the open one if there is one, else the one that ended last; two
    # picks that each walk an index (schema 29) to one row, where one ORDER BY on
    # "status = 'open'" sorted every incident the device ever had, on every read of the cards
    "LEFT JOIN incidents i ON i.id = COALESCE((SELECT id FROM incidents "
    "WHERE device_id = d.device_id AND status = 'open' ORDER BY last_event_at DESC LIMIT 1), "
    "(SELECT id FROM incidents WHERE device_id = d.device_id ORDER BY last_event_at DESC "
    "LIMIT 1)) "
    # the event a closed card incident was closed with, when the walker or the device closed
    # it (story.page_moment picks the same): its "(2 min ago)" counts from the device's stamp
    f"LEFT JOIN events c ON c.id = {_closed_with('i')}"
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
