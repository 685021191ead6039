"""The notifications table as the notifier process uses it, without the rest of the store.

The notifier process reads what is due, counts an attempt as it begins, marks it sent, due again
later, given up or dropped, and checks who holds the escalation lease and whether a row taken
is still due: eight statements. On a SQLite file it
runs them on a connection of its own (:class:`SqliteOutbox`) instead of importing the
whole store (:mod:`caregiver.storage` and the protocol modules it brings, ~6 MB of the
notifier's private memory: issue 14 item 9); on PostgreSQL it opens the store as before.
The statements are the store's own (:class:`caregiver.storage.store.Transaction` runs the
same strings), so the two cannot drift apart. The service has opened, and migrated, the
file before it starts the notifier process.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple, Protocol

from core.clock import CLOCK_STEP_S

if TYPE_CHECKING:
    from caregiver.config import Contact

__all__ = [
    "ESCALATION",
    "Outbox",
    "PendingNotification",
    "SqliteOutbox",
    "Target",
    "Urgency",
    "addressee",
    "contact_id",
    "open_outbox",
    "urgency_from",
    "url_key",
]

ESCALATION = "escalation"
"""The name of the escalation lease (:mod:`caregiver.lease`)."""

SYNCHRONOUS = "NORMAL"
"""How :class:`SqliteOutbox`'s connection syncs (``PRAGMA synchronous``): its docstring
says why not FULL as the store's."""


class Urgency(StrEnum):
    """How hard a queued message should push through to a phone (its Apprise type and each
    service's priority: :mod:`caregiver.priority`). Whoever words a message chooses it."""

    CRITICAL = "critical"
    """A fall, no recovery, a call for help: the service's highest priority (past Do Not
    Disturb where the service can)."""
    HIGH = "high"
    """A stumble not reset in time, a fault, offline while armed."""
    NORMAL = "normal"
    """Follow-ups: I'm OK, acknowledged, back online."""
    TEST = "test"
    """A test alarm: delivered exactly as a critical one (it proves that path), typed info."""


def urgency_from(value: str) -> Urgency:
    try:
        return Urgency(value)
    except ValueError:  # written by a later release: deliver it, at least as high
        return Urgency.HIGH


@dataclass(frozen=True, slots=True)
class PendingNotification:
    """A queued message for one URL of one contact, due now.

    Addressed by ``contact_key`` (the contact's ``name``; "" for a contact without one) and
    ``url_key`` (:func:`url_key` of the URL): :func:`addressee` finds them in the config the
    notifier runs with, wherever they are in it now. ``contact_index`` and ``url_index`` are
    where they were when it was queued: before schema 17 the only address, and a reordered
    config sent the page to whoever held that place now. Rows queued before schema 17 have
    no keys (None): :func:`addressee` says how they are found."""

    id: int
    contact: str
    """The contact's name as it was queued ("contact 2" for one without a name): for logs."""
    contact_index: int
    url_index: int
    title: str
    body: str
    attempts: int
    urgency: Urgency = Urgency.NORMAL
    contact_key: str | None = None
    url_key: str | None = None


def url_key(url: str) -> str:
    """A contact URL's address in the ``notifications`` table: the first 16 hex digits of its
    SHA-256, so the database never holds the URL (it may carry a password or a secret topic)
    and the key stays the URL's own wherever the config moves it. The URL as the config
    writes it: one edited in any way is another URL (its queued messages are dropped as for
    a URL removed, and logged)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def contact_id(contact: Contact) -> str:
    """Who a contact is, for an alert's escalation (``alerts.reached``, ``alerts.paged``): its
    name (unique, :func:`caregiver.config.parse_config`), or for one without a name ``~`` and
    the :func:`url_key` of its URLs, the only identity it has."""
    return contact.name or "~" + url_key("\n".join(contact.urls))


class Target(NamedTuple):
    """Where a queued message goes in the current config."""

    contact: int
    """The contact's position (the notifier's lane)."""
    url_index: int
    """The URL's position in that contact's list (for logs: "url #2" counts from 1)."""
    url: str


def addressee(contacts: Sequence[Contact], note: PendingNotification) -> Target | None:
    """The contact and URL ``note`` was queued for, in ``contacts`` wherever they are now, or
    None when the config no longer has them (the message is then dropped, never sent to
    whoever holds that place in the list now).

    A row queued with keys: the contact named ``contact_key`` (names are unique,
    :func:`caregiver.config.parse_config`; contacts without one are told apart by their URLs) with a
    URL whose :func:`url_key` is ``url_key``, else (that URL edited or removed) a named contact's
    URL at the place it was queued at, if there is one. A row queued before schema 17 recorded only
    the contact's name (or "contact N" for one without) and both positions: the contact is the one
    of that name, or, for "contact N", the contact still at place N if it has no name (it never had
    another identity); the URL is the one at its recorded place in that contact's list (a URL
    reordered within the contact during the upgrade's restart cannot be told; the person is the
    right one)."""
    if note.url_key is not None:
        for index, contact in enumerate(contacts):
            if contact.name != note.contact_key:
                continue
            for position, url in enumerate(contact.urls):
                if url_key(url) == note.url_key:
                    return Target(index, position, url)
            if not note.contact_key:
                continue  # contacts without a name are told apart by their URLs only
            # The person is still a contact, the URL is not: edited (a new token, a new
            # number), or removed. The URL now at its place is theirs: a page reaching them
            # there, at worst twice on one channel, rather than never.
            if 0 <= note.url_index < len(contact.urls):
                return Target(index, note.url_index, contact.urls[note.url_index])
            return None
        return None
    found = next((i for i, c in enumerate(contacts) if c.name and c.name == note.contact), None)
    if found is None and 0 <= note.contact_index < len(contacts):
        unnamed = contacts[note.contact_index]
        if not unnamed.name and note.contact == f"contact {note.contact_index + 1}":
            found = note.contact_index
    if found is None:
        return None
    urls = contacts[found].urls
    if not 0 <= note.url_index < len(urls):
        return None
    return Target(found, note.url_index, urls[note.url_index])


COLUMNS = (
    "id, contact, contact_index, url_index, title, body, attempts, urgency, contact_key, url_key"
)
DUE = (
    f"SELECT {COLUMNS} FROM notifications WHERE status = 'pending' "
    "AND (next_at <= ? OR frame_of IS NULL) ORDER BY id"
)
"""What is due now: a retry whose time has come, and every row without a clock frame, whatever
its time says. A row gets its frame when a failed attempt writes its retry (:data:`RETRY`);
one without is a message never tried, due from the moment it was queued (or one whose attempt
began and never ended, or a retry from before schema 26). Its time is the queuing instance's
wall clock then, which no one could move by a step they did not see: queued before a stop
and stepped back an hour while stopped, it waited the hour out; queued by an instance whose
clock ran ahead of the holder's, it waited the difference."""
PENDING = f"SELECT {COLUMNS} FROM notifications WHERE status = 'pending' ORDER BY id"
SENT = "UPDATE notifications SET status = 'sent', attempts = ? WHERE id = ?"
RETRY = (
    "UPDATE notifications SET status = 'pending', attempts = ?, next_at = ?, "
    "last_error = ?, frame_of = ?, frame_offset = ? WHERE id = ?"
)
"""A retry's due time is written with its :class:`~caregiver.storage.ClockFrame` (schema 26),
as an alert's timers are: :data:`SHIFT_FRAMED`."""
GIVE_UP = (
    "UPDATE notifications SET status = 'failed', attempts = ?, next_at = ?, "
    "last_error = ? WHERE id = ?"
)
DROP = "UPDATE notifications SET status = 'failed', last_error = ? WHERE id = ?"
STILL_DUE = "SELECT 1 FROM notifications WHERE id = ? AND status = 'pending'"
NEXT_DUE = (
    "SELECT min(next_at) FROM notifications WHERE status = 'pending' AND next_at > ? "
    "AND frame_of IS NOT NULL"
)
"""When the next retry comes due (a row without a frame is due already: :data:`DUE`)."""
CLAIM = "UPDATE notifications SET attempts = ? WHERE id = ? AND status = 'pending'"
SHIFT_FRAMED = (
    "UPDATE notifications SET next_at = next_at + (? - frame_offset), frame_offset = ? "
    "WHERE status = 'pending' AND frame_of = ? AND abs(? - frame_offset) >= ?"
)
"""The retries written in the notifier's clock frame (its machine's boot) move by the steps
since each was written, however many and whenever: one made while the service was stopped
included, as the time since boot runs on across a restart. Parameters: the frame's offset
twice, its name, the offset, :data:`core.clock.CLOCK_STEP_S`."""
SHIFT = (
    "UPDATE notifications SET next_at = next_at + ? WHERE status = 'pending'"
    " AND frame_of IS NOT NULL AND frame_of <> ?"
)
"""A step of the wall clock (seconds) moves every other retry's due time with it (written in
another boot or on another machine: the notifier can measure only the steps it sees). A row
without a frame is due whatever its time says (:data:`DUE`), so it is not moved. Parameters:
the step, the notifier's frame's name."""


@dataclass(frozen=True, slots=True)
class ClockFrame:
    """The wall clock an alert's timers were written in: by whom, and where its wall time then
    stood against the time since boot (wall minus boot, seconds; :class:`core.clock.WallSteps`).

    Stored with the timers (schema 25) so that a step of that clock moves each timer by the
    steps since it was written, and never by one before: written in the second between a step
    and the escalation ticker's look, it is already in the new clock."""

    of: str
    """The instance that measured it (:attr:`caregiver.service.CaregiverService.instance`):
    another instance's offset, or one from before a restart, is against another boot."""
    offset: float


def shift_statements(frame: ClockFrame, step: float) -> list[tuple[str, tuple[object, ...]]]:
    """:data:`SHIFT_FRAMED` and, with a measured ``step``, :data:`SHIFT`, with their
    parameters (:meth:`Outbox.shift_notifications`)."""
    framed = (frame.offset, frame.offset, frame.of, frame.offset, CLOCK_STEP_S)
    statements: list[tuple[str, tuple[object, ...]]] = [(SHIFT_FRAMED, framed)]
    if step:
        statements.append((SHIFT, (step, frame.of)))
    return statements


LEASE_HOLDER = "SELECT holder FROM leases WHERE name = ?"
"""Who holds a lease, as its row says: no wall time decides (schema 27). The holder's service
renews it every second; another instance takes it over once it has seen the renewals stand
still for the lease's length (:class:`caregiver.lease.Lease`), and the row then names that
one. Before, a row whose ``expires_at`` had passed held for nobody: after a step of the wall
clock forward the notifier stopped sending until the next renewal."""


def next_due_from(row: tuple[object, ...] | None) -> float | None:
    """:data:`NEXT_DUE`'s answer as a time (None: no row waits)."""
    if row is None or row[0] is None:
        return None
    return float(row[0])  # type: ignore[arg-type]


def due_from(rows: list[tuple[object, ...]]) -> list[PendingNotification]:
    return [
        PendingNotification(
            int(r[0]),  # type: ignore[call-overload]
            str(r[1]),
            int(r[2]),  # type: ignore[call-overload]
            int(r[3]),  # type: ignore[call-overload]
            str(r[4]),
            str(r[5]),
            int(r[6]),  # type: ignore[call-overload]
            urgency_from(str(r[7])),
            None if r[8] is None else str(r[8]),
            None if r[9] is None else str(r[9]),
        )
        for r in rows
    ]


class Outbox(Protocol):
    """What the notifier needs of a store (:class:`caregiver.storage.Store` has it all)."""

    def notifications_due(self, now: float) -> list[PendingNotification]: ...
    def next_notification_at(self, after: float) -> float | None:
        """When the earliest row not due at ``after`` comes due (a retry's next attempt);
        None when none waits. A round under way wakes for it (:meth:`Notifier.deliver_due`)."""
        ...

    def notification_sent(self, notification_id: int, attempts: int) -> None: ...
    def retry_notification(
        self, notification_id: int, attempts: int, next_at: float, error: str, frame: ClockFrame
    ) -> None:
        """``next_at``: a wall time in ``frame`` (:data:`RETRY`)."""
        ...

    def give_up_notification(
        self, notification_id: int, attempts: int, error: str, now: float
    ) -> None: ...
    def drop_notification(self, notification_id: int, reason: str) -> None: ...
    def still_due(self, notification_id: int) -> bool: ...
    def shift_notifications(self, frame: ClockFrame, step: float) -> None:
        """Bring the retries into ``frame``, the wall clock now: those written in its boot by
        the steps since (:data:`SHIFT_FRAMED`), the others by the ``step`` the notifier
        measured (:data:`SHIFT`; :class:`caregiver.notify.Notifier`)."""
        ...

    def claim_notification(self, notification_id: int, attempts: int) -> bool:
        """Count the attempt about to begin (``attempts``, the row's count with it) before
        the send starts, if the row is still due; whether it is. A notifier killed or crashed
        mid-send so leaves the attempt counted: before, the row came back as if untried, and
        a send that wedged the notifier was tried again by every successor, never given up."""
        ...

    def lease_holder(self, name: str) -> str | None: ...
    def close(self) -> None: ...


class SqliteOutbox:
    """:class:`Outbox` on a SQLite file the service made: one connection, autocommit (each
    statement is one row's change), the driver's 5 s wait for a busy file. Errors are
    ``sqlite3.Error``: the notifier's round fails and is tried again, and a row whose
    marking failed stays due (sent again: at least once, never lost).

    ``synchronous=NORMAL`` (:data:`SYNCHRONOUS`), where the store's connections are FULL
    (:data:`caregiver.storage.engines.SYNCHRONOUS` says why and cites SQLite's documentation:
    in WAL mode NORMAL does not sync the WAL at a commit, so a power cut can undo one). This
    connection only marks rows the store queued: sent, due again later, given up, dropped.
    The notification itself was queued by the store's writing connection, in the commit that
    stored its event (FULL: synced before the device got its receipt), so no power cut loses
    it. A mark a power cut undoes sends the message again (or retries it sooner): a duplicate,
    which at-least-once delivery allows anyway (a cut between sending and marking gives the
    same under FULL). It is undone only within about a second: the WAL is appended in order
    and synced whole by the store's next commit and by the service's checkpoint (every
    second), so a mark is on disk once either follows it. FULL would add an fsync to every
    mark, taken while the mark holds SQLite's write lock that ingest's next batch waits for
    (a burst's fall pages each contact's URLs: a mark each).

    No ``PRAGMA optimize`` here, unlike the store's connections (:meth:`Store.optimize`): it
    plans with the statistics those had kept in the file when it opened (another
    connection's ``ANALYZE`` is not loaded by one already open), which leave each of its
    statements on the row's id or the pending rows' index, as no statistics do.
    Measured on 100,000 notifications, one in a thousand pending: a full ``ANALYZE`` (its own
    with no ``analysis_limit`` on this connection, or someone's by hand) says each status
    holds a third of the table, and SQLite planned the look for what is due, every round, as
    a scan of every notification ever sent: 6.1 ms instead of 0.12, growing with the history.
    The pending ones' own partial index (``notifications_pending``, schema 31: its condition
    is :data:`DUE`'s ``status = 'pending'`` as written) holds only them, and a full
    ``ANALYZE`` counts it so: the look stays on it
    (``tests/test_caregiver_planner_statistics.py``)."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
        self._lock = threading.Lock()

    def notifications_due(self, now: float) -> list[PendingNotification]:
        with self._lock:
            return due_from(self._db.execute(DUE, (now,)).fetchall())

    def next_notification_at(self, after: float) -> float | None:
        with self._lock:
            return next_due_from(self._db.execute(NEXT_DUE, (after,)).fetchone())

    def notification_sent(self, notification_id: int, attempts: int) -> None:
        with self._lock:
            self._db.execute(SENT, (attempts, notification_id))

    def retry_notification(
        self, notification_id: int, attempts: int, next_at: float, error: str, frame: ClockFrame
    ) -> None:
        with self._lock:
            self._db.execute(
                RETRY, (attempts, next_at, error, frame.of, frame.offset, notification_id)
            )

    def give_up_notification(
        self, notification_id: int, attempts: int, error: str, now: float
    ) -> None:
        with self._lock:
            self._db.execute(GIVE_UP, (attempts, now, error, notification_id))

    def drop_notification(self, notification_id: int, reason: str) -> None:
        with self._lock:
            self._db.execute(DROP, (reason, notification_id))

    def still_due(self, notification_id: int) -> bool:
        with self._lock:
            return self._db.execute(STILL_DUE, (notification_id,)).fetchone() is not None

    def shift_notifications(self, frame: ClockFrame, step: float) -> None:
        with self._lock:
            for statement, parameters in shift_statements(frame, step):
                self._db.execute(statement, parameters)

    def claim_notification(self, notification_id: int, attempts: int) -> bool:
        with self._lock:
            return self._db.execute(CLAIM, (attempts, notification_id)).rowcount > 0

    def lease_holder(self, name: str) -> str | None:
        with self._lock:
            row = self._db.execute(LEASE_HOLDER, (name,)).fetchone()
        return str(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_outbox(database: str) -> Outbox:
    """A SQLite file's :class:`SqliteOutbox`; for PostgreSQL, the store itself."""
    if "://" in database:  # postgresql:// (engines.engine_of): psycopg's memory anyway
        from caregiver.storage import Store

        return Store(database)
    return SqliteOutbox(database)
