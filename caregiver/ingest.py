"""MQTT ingestion: every device's availability, state, events, telemetry, replies and
guided-session summaries, and its retained progress and walker profiles → the store (SQLite,
or PostgreSQL shared by several instances).

The client connects with a fixed client id, ``clean_start=False`` and a session
expiry (MQTT 5), so the broker keeps the subscriptions and queues QoS 1 events
while the service is down; they arrive on the next start. The service
acknowledges each message to the broker itself (paho's manual acknowledgement),
and only once it is committed: a full disk or a database error leaves the
message with the broker, and ingest tries again (in order; the broker sends no
more than :data:`RECEIVE_MAXIMUM` unacknowledged messages meanwhile). After
committing an event or a session summary it publishes a *receipt* to the device
(``<prefix>/<device>/receipt``; a batch sends one per device, naming each of its ids):
only then does the device forget the alert, so a
broker that loses its queue cannot lose it. Events are keyed by id: a redelivery
or a device's republication is stored once and raises no second alert, but is
receipted again. Session summaries are keyed by session id the same way; one
re-published for the same id replaces the row only when it carries more amendment (a fall
confirmed after the session ended); one amended as often is that summary again.

Messages are stored on the ingest thread, not paho's: what arrives while it
works waits in a queue and is then stored as one batch, in one commit (a
commit costs as much as the rest of a message's work; a burst is stored in
half the time). The batch is acknowledged, receipted and announced only once
committed; if it cannot be committed, none of it is kept and its messages are
held, in order, like any message the database refused (but a held message that carries no
alert and that its own table refuses while the alerts behind it store is let go:
:meth:`Ingestor._side_fault`). A message whose handling fails
(a bug) is undone alone, its event's row too: not stored, not receipted, so the device sends
it again and it is then new, alerted and receipted; never stored without its alert.

Several instances on one PostgreSQL database share the streams through MQTT 5
shared subscriptions (``[mqtt] shared_group``): the broker hands each message to
one of them. The database keeps them honest where the broker cannot: an event
redelivered to another instance (its first one died before acknowledging) waits
on the first row with that id and is then stored by nobody; the retained
availability and state, which every instance takes, change a device's row under
its row lock, so an "offline while armed" alert is raised by the one transaction
that saw the change.

After each commit the change goes to ``on_change`` (the dashboard's live feed)
and due notifications wake the notifier — neither waits on the network.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Never, overload

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from caregiver.alerts import Alerting
from caregiver.broker_link import BrokerLink, LinkWatch, Problem
from caregiver.changes import Change, DeviceChanged, EventStored, SessionStored, StageChanged
from caregiver.commands import new_request_id
from caregiver.config import CaregiverConfig
from caregiver.localtime import moment_of
from caregiver.paho_tables import share_property_tables
from caregiver.paho_wakes import Wakeups, coalesce_wakeups
from caregiver.plan_answers import answer_of
from caregiver.presence import PRESENCE_TIMING, PresenceRenewal, PresenceTiming
from caregiver.progress import parse_summary
from caregiver.receipts import DurableReceipts
from caregiver.seen import newest_alert
from caregiver.self_test import checks_of
from caregiver.storage import (
    STAGE_AHEAD_S,
    NewEvent,
    Part,
    SideFaults,
    StorageFault,
    Store,
    StoredEvent,
    Table,
    Transaction,
    Use,
    prescribed_table,
)
from core.mqtt_callbacks import CallbackFault
from core.mqttlink import make_client
from core.progress import prescribed_in, utc_of, week_of, week_start
from core.protocol.commands import LATEST, Ack, CommandName, encode_command
from core.protocol.messages import (
    Availability,
    CaregiverPresence,
    CaregiverStatusMessage,
    DeviceState,
    EventMessage,
    IncidentMessage,
    ProgressMessage,
    ProtocolError,
    ReplyMessage,
    SessionSummary,
    StageMessage,
    StateMessage,
    TelemetryMessage,
    WalkersMessage,
    self_test_outcome,
    worn_said,
)
from core.protocol.payloads import (
    caregiver_status_payload,
    decode,
    decode_as,
    decode_availability,
    encode,
    receipt_payloads,
)
from core.protocol.topics import (
    CONSUMED_KINDS,
    RETAINED_KINDS,
    BadTopic,
    TopicKind,
    Topics,
    all_devices,
    caregiver_status_topic,
    ha_status_topic,
    parse_topic,
    shared,
)
from core.protocol.walker import DEFAULT_WALKER
from core.zones import named_zone

log = logging.getLogger(__name__)

PRESENCE_WAIT_S = 2.0
"""How long a clean stop waits for the broker to take its ``offline`` (as the device's own)."""
RECEIVE_MAXIMUM = 100
"""Unacknowledged messages the broker may send at once (MQTT 5): while the database
fails, at most this many wait in memory and the rest stay with the broker."""
BATCH_MAX = 16
"""Messages stored in one commit at most, on SQLite. A commit costs about what a message's
other work does, so grouping halves a burst's storage time; but nothing of a batch reaches the
browsers before its commit, and with the whole receive window (100) in one batch a burst's
events went out in clumps 100-250 ms apart (benchmarks/caregiver.py: ingest -> socket p50
83-144 ms with 100, 14-41 ms with 16, the burst's CPU time the same)."""
BATCH_MAX_SHARED = 50
"""The same on PostgreSQL, where a batch's own cost is not the same whatever its size: about
nine statements (its devices' locks, its events, incidents and alerts, each device's latest
event, the commit), two of them waited for, each psycopg's and the server's CPU. A batch
takes only what has arrived, so this matters only when ingest is behind (a burst). 2,000
alerts over two instances (benchmarks/caregiver_fleet.py, in alternated pairs, load average
5-10): event -> stream p99 with 50 lower than with 16 in two pairs of three (0.6 / 1.3 s,
1.2 / 1.5 s; 2.3 / 1.8 s) and than with 100 in two of three (0.7 / 0.9 s, 0.6 / 1.0 s;
0.7 / 0.5 s); from its ingest to the stream an event took p50 40-80 ms with 16 or 50, 120-200
ms with 100 (a batch's events reach the browsers together, at its commit)."""


@dataclass(frozen=True, slots=True)
class ReconnectDelays:
    """How long paho waits before each try at the broker while it cannot reach it: ``first_s``
    after the first failure, doubled at each next one up to ``most_s``, ``first_s`` again once
    connected. At once would hammer a broker that is restarting; a long first wait leaves
    ingest deaf for it after the broker is back (a fall waits with the broker meanwhile)."""

    first_s: float = 1.0
    most_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.first_s <= self.most_s:
            raise ValueError(f"reconnect delays must be 0 < first <= most, not {self}")


RECONNECT_DELAYS = ReconnectDelays()
"""The service's: 1 s, 2 s, 4 s ... at most 30 s between tries (tests give short ones)."""


HELD_RETRY_S = 2.0
PRESENCE_EVERY_S = 5.0
"""A change of what the presence says about storing goes out at most this often: a fault
that comes and goes (a lock, a disk at its limit, each retry of the held messages every
:data:`HELD_RETRY_S`) would otherwise flap every treadmill's self-test, Home Assistant
sensor and log. A change within it is said at its end, as things then stand: the latest
state is never lost, only a flap that came and went between two."""
STORING_DAMAGED = "database damaged"
"""The presence's ``fault`` while the database file is damaged (until a restart on a sound
file: :attr:`~caregiver.storage.Store.damage`)."""
STORING_REFUSED = "cannot write its database"
"""The presence's ``fault`` while the database refuses for any other reason (a full disk, a
lock, PostgreSQL down or refusing: the log and /healthz say which)."""
_ANSWERED = (CommandName.PLAN, CommandName.PROGRESSION)
"""Commands whose replies are recorded for the plan page."""
INGESTED_KINDS = (
    *CONSUMED_KINDS,
    TopicKind.PROGRESS,
    TopicKind.WALKERS,
    TopicKind.INCIDENT,
    TopicKind.STAGE,
)
"""What the service reads: every consumed kind, the retained progress message for the
sessions a week the progression of the device's walker prescribes (adherence counts against
them; kept per walker), the
retained walkers message, the walkers the plan page offers, the retained incident message,
to send a close again to a device that missed it (:meth:`Ingestor._device_missed_close`), and
each walker's retained stage message, their progression as the device keeps it (the plan and
progress pages show it; it also gives the sessions a week every walker's stage prescribes,
where the progress message gives only the chosen walker's)."""


SIDE_KINDS = frozenset(INGESTED_KINDS) - {TopicKind.EVENT, TopicKind.STATE, TopicKind.AVAILABILITY}
"""What ingest reads that carries no alert: every kind but an event (it opens, worsens or
closes one), a state (the card's belt) and an availability (an offline alert opens or
closes). One of these that its own table cannot take (damaged, missing) is let go rather than
held in front of the alerts (:meth:`Ingestor._side_fault`)."""


SIDE_PARTS: Mapping[TopicKind, Part] = {
    TopicKind.WALKERS: Part.WALKERS,
    TopicKind.SESSION: Part.SESSIONS,
    TopicKind.PROGRESS: Part.PROGRESS,
    TopicKind.STAGE: Part.PROGRESS,
    TopicKind.REPLY: Part.COMMANDS,
    TopicKind.TELEMETRY: Part.TELEMETRY,
    TopicKind.INCIDENT: Part.CLOSES,
}
"""The part of the database each of :data:`SIDE_KINDS` is stored in: one let go because that
part refused it is said there (:attr:`Store.side_faults`), kept by the tables its handling
uses (:func:`_side_tables`), until a message writes rows of those tables again
(:func:`_written`)."""

SIDE_READS = frozenset({TopicKind.INCIDENT})
"""The kinds of :data:`SIDE_KINDS` whose handling only reads its part (a treadmill's open
incident, read to send a close it missed again): one refused is a failed read, which a read
of the part clears (the housekeeping look too); every other kind's is a failed write, cleared
only by a message of its kind that writes rows of the part and commits
(:class:`caregiver.storage.side_faults.Use`), never by one handled without a write."""


def _written(changed: bool) -> Use | None:
    """What a side message's handling that ``changed`` rows of its part (or left them as they
    were) shows of the part: a write of it, committed with the message, or nothing. A message
    handled without a write (a retained roster or stage handed over again unchanged at a
    reconnect, a summary or an answer already stored) succeeds whether the part takes writes
    or not: had it said the part works, one treadmill's unchanged roster cleared the fault of
    another's refused roster, the banner said all was well, and the fault came back only at
    the next refused write, a reconnect later."""
    return Use.WRITE if changed else None


def _side_tables(body: Availability | msgspec.Struct) -> tuple[Table, ...]:
    """The tables of its part (:data:`SIDE_PARTS`) a side message's handling uses: what a
    refusal of it is kept by, and what its handling clears when it wrote (or, for
    :data:`SIDE_READS`, read) them. A part covers several tables, and one may refuse while
    another takes writes: kept by part, a week's count written said the progression worked
    while its stages were refused, a plan's answer the commands' part while self-tests'
    answers were. A handling said to write (:meth:`Ingestor._store`) has written each
    (a stage writes its week's count even unchanged); none for an alert's kind."""
    match body:
        case WalkersMessage():
            return (Table.DEVICE_WALKERS,)
        case SessionSummary():
            return (Table.WALK_SESSIONS,)
        case ProgressMessage(walker=walker):
            return (prescribed_table(DEFAULT_WALKER.id if walker is None else walker.id),)
        case StageMessage(walker=walker):
            return (Table.WALKER_STAGES, prescribed_table(walker.id))
        case _StageCleared():
            return (Table.WALKER_STAGES,)
        case ReplyMessage(command=CommandName.SELF_TEST):
            return (Table.SELF_TESTS,)
        case ReplyMessage():
            # an ack's confirmation is written to its events: a refusal of it is kept by the
            # commands' table, as it was by the part (cleared by the next answer written)
            return (Table.DEVICE_COMMANDS,)
        case TelemetryMessage():
            return (Table.DEVICES,)
        case IncidentMessage():
            return (Table.INCIDENTS,)
    return ()


def _kind_of(prefix: str, topic: str) -> TopicKind | None:
    """The kind of message ``topic`` carries (None: not a device topic)."""
    try:
        parsed = parse_topic(prefix, topic)
    except BadTopic:
        return None
    return None if parsed is None else parsed.kind


def _device_of(prefix: str, topic: str) -> str | None:
    """The device ``topic`` is of (None: not a device topic)."""
    try:
        parsed = parse_topic(prefix, topic)
    except BadTopic:
        return None
    return None if parsed is None else parsed.device_id


class _StageCleared(msgspec.Struct, frozen=True):
    """An empty retained payload on ``stage/<walker>``: the device cleared that walker's
    topic (the walker was removed at the treadmill)."""

    walker: str


@dataclass(slots=True)
class _Counts:
    """What ingest made of the messages it handled (:class:`Ingestor` shows each by its name)."""

    events_stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    sessions_stored: int = 0
    """Session summaries stored or updated (redeliveries of the same payload excluded)."""


class _Shown:
    """An :class:`Ingestor` count, read-only, named as its :class:`_Counts` field: as of the
    last commit (or refusal), what other threads read; a batch's count shows once its rows do."""

    def __set_name__(self, owner: type[Ingestor], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, ingestor: None, owner: type[Ingestor]) -> _Shown: ...
    @overload
    def __get__(self, ingestor: Ingestor, owner: type[Ingestor]) -> int: ...
    def __get__(self, ingestor: Ingestor | None, owner: type[Ingestor]) -> _Shown | int:
        if ingestor is None:
            return self
        count: int = getattr(ingestor._shown, self._name)
        return count

    def __set__(self, ingestor: Ingestor, value: Never) -> None:
        raise AttributeError(f"{self._name} is counted by ingest, not set")


class Ingestor:
    events_stored = _Shown()
    duplicates = _Shown()
    rejected = _Shown()
    sessions_stored = _Shown()

    def __init__(
        self,
        store: Store,
        config: CaregiverConfig,
        alerting: Alerting,
        on_change: Callable[[Change], None] = lambda change: None,
        clock: Callable[[], float] = time.time,
        on_link: Callable[[BrokerLink], None] = lambda link: None,
        on_storage: Callable[[str | None], None] = lambda fault: None,
        presence: PresenceTiming = PRESENCE_TIMING,
        reconnect: ReconnectDelays = RECONNECT_DELAYS,
    ) -> None:
        """``presence``: how long our ``online`` lasts on the broker (tests give a short one).
        ``reconnect``: the waits between tries at a broker out of reach (tests give short
        ones)."""
        self.reconnect = reconnect
        self.store = store
        self._on_storage = on_storage
        """Told when the database starts refusing (its fault in words) and works again (None):
        every page's banner says so; a dashboard that looked normal while no fall could be
        stored or paged looked like a quiet fleet."""
        self.config = config
        self.alerting = alerting
        self.on_change = on_change
        self.clock = clock
        self.prefix = config.mqtt.topic_prefix
        self.presence_topic = caregiver_status_topic(self.prefix)
        self._presence_mid: int | None = None
        """The presence subscription's SUBACK is answered apart from the device streams'."""
        """Where the service says it is there (retained ``online``) or not (``offline``: a clean
        stop, or its Last Will)."""
        self.home_assistant_status: str | None = (
            ha_status_topic(config.mqtt.discovery_prefix) if config.mqtt.discovery else None
        )
        """Home Assistant's birth message (``online`` when it starts): the presence is said
        again then (:meth:`_home_assistant_heard`). None: the service announces nothing to it."""
        self._birth_mid: int | None = None
        self.subscriptions = [
            *subscriptions(self.prefix, config.mqtt.shared_group),
            progress_subscription(self.prefix),
            walkers_subscription(self.prefix),
            incident_subscription(self.prefix),
            stage_subscription(self.prefix),
        ]
        self.messages = 0
        self._count = _Counts()
        """This thread's counts, a batch's as it goes (:meth:`_restore` undoes them)."""
        self._shown = _Counts()
        """The counts as of the last commit (or refusal): what other threads read."""
        self.receipts_sent = 0
        self.storage_fault: str | None = None
        """Why the database cannot commit right now (None when it can)."""
        self.connected = threading.Event()
        """Set once the subscriptions are confirmed (SUBACK): nothing published after is missed.
        A SUBACK that refuses any is no confirmation (:attr:`link` says which)."""
        self._unreachable_said = False
        """The broker could not be reached and the log said so (once an outage, not a retry)."""
        self.link = LinkWatch(on_link, wall=clock)
        """Whether the broker hears us, for the dashboard's banner (each change to ``on_link``)."""
        self._cond = threading.Condition()
        self.client: mqtt.Client | None = None
        self._held: deque[mqtt.MQTTMessage] = deque()
        """Messages the database could not take yet, in arrival order, not acknowledged."""
        self._held_lock = threading.Lock()
        self._stop = threading.Event()
        self._retry_thread: threading.Thread | None = None
        self._queue: deque[mqtt.MQTTMessage] = deque()
        """Received, not yet stored (at most :data:`RECEIVE_MAXIMUM`: none is acknowledged)."""
        self._queued = threading.Condition()
        self._ingest_thread: threading.Thread | None = None
        self.working: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext
        """Wraps the storing of each batch (the service's liveness check: a batch stuck on the
        database stops the systemd watchdog's pings, :mod:`caregiver.liveness`)."""
        self._durable_receipts: DurableReceipts | None = None
        """With a client: a batch commits without a sync, its receipts go out after one."""
        self._local = threading.local()
        """``later``: this thread's batch's after-commit actions (absent: not in a batch)."""
        self._batch_max = BATCH_MAX_SHARED if store.shared else BATCH_MAX
        """Messages in one batch at most (a batch costs more on PostgreSQL)."""
        self._wakes = Wakeups(None)
        """The ingest thread's receipts and acknowledgements wake paho's thread once a batch."""
        self._presence_lock = threading.Lock()
        self._unstored: dict[tuple[Part, str], tuple[str, float]] = {}
        """What the database refused for its own values, let go, and has not stored since,
        by the part it is said as and what it is (an alert: the device and its id,
        :meth:`_alert_refused`; a treadmill's state or availability: the device and the kind,
        :meth:`_state_refused`), with what is said of each and since when (wall clock), the
        first first; ``_unstored_lock`` held."""
        self._unstored_lock = threading.Lock()
        self._values_refused: dict[tuple[Part, Table], set[str]] = {}
        """Per table of a side part, the treadmills a write of which it refused for their
        values (:meth:`_said_let_go`), until each writes it (:meth:`_side_works`);
        ``_values_lock`` held."""
        self._table_refused: set[tuple[Part, Table]] = set()
        """The tables of side parts a write of which was refused for no treadmill's values
        (the table's own fault: a trigger, a permission), until a write of each commits:
        :meth:`_values_as_stored` leaves their fault said; ``_values_lock`` held."""
        self._values_lock = threading.Lock()
        self._fault_said: str | None = None
        """The ``fault`` our last ``online`` said (None: storing)."""
        self._presence_said_at = -math.inf
        """Monotonic time our last ``online`` went out (:data:`PRESENCE_EVERY_S`)."""
        self._presence_timer: threading.Timer | None = None
        """Says the storing change that came too soon after the last, at the interval's end."""
        self.presence_timing = presence
        self._renewal: PresenceRenewal | None = None
        """Says our ``online`` again before it expires on the broker (:mod:`caregiver.presence`)."""
        self._other_not_storing = False
        """The last presence heard is another instance's ``online`` saying it cannot store:
        our renewal leaves it standing (:meth:`_renew_online`)."""
        self.on_subscribed: Callable[[mqtt.Client], None] = lambda client: None
        """Told on paho's thread once every device's messages reach this instance, after its
        ``online`` (the service's health message and its discovery say themselves then)."""
        self.on_storing_changed: Callable[[], None] = lambda: None
        """Told whenever :meth:`storing_changed` is, after the change (any thread)."""
        self.on_published: Callable[[int, ReasonCode], None] = lambda mid, reason_code: None
        """Told the broker's verdict on each message the client published (paho's
        ``on_publish``, its thread): the health's refusal is said there. Must not wait."""

    # --------------------------------------------------------- processing

    def handle(self, topic: str, payload: bytes, retained: bool = False) -> bool:
        """Store one message (any thread); never raises on bad input. ``retained``: a copy the
        broker kept, handed over at a subscription (:attr:`_Received.retained`).

        False when the database failed: the caller must not acknowledge the
        message, and should hand it over again later.

        A message whose own values the database refuses (a data error: it answered, refusing
        that row) would be refused on every try: it is let go, not held in front of every
        message behind it (logged, counted rejected, True). One that carries no alert
        (:data:`SIDE_KINDS`) is said too, like any refused write of its tables
        (:meth:`_said_let_go`): what it carried is missing from the pages, and before only
        the log said so. It is not kept to be tried again: the same values would be refused
        again, and the treadmill sends what it changes anew (a roster or stage on each change
        and at each connection, an unreceipted session summary, telemetry at its interval);
        the part is said until its treadmill's own write of those tables commits
        (:meth:`_side_works`).
        """
        counters = self._counters()
        self._local.side_tables = ()  # the tables its handling uses: _side_fault's, if refused
        self._local.refusal = None  # and the database's refusal of it
        # Its receipts go out as a batch's do (after a sync): a duplicate commits nothing, and
        # the batch that stored its event may have committed without one (SQLite).
        receipts: dict[str, list[str]] = {}
        self._local.receipts = receipts
        try:
            self._store_one(topic, payload, retained)
        except StorageFault as exc:
            if not exc.refused_data:
                self._local.refusal = exc
                self._refused(exc)
                return False
            # Alone, it is this message's data: held, it would stop every message behind it.
            log.error("the database refuses a message on %s, let go: %s", topic, exc)
            kind = _kind_of(self.prefix, topic)
            if kind in SIDE_KINDS:  # before the count wakes whoever waits on it
                refused_by = _device_of(self.prefix, topic)
                self._said_let_go(kind, str(exc), self._local.side_tables, refused_by)
            elif kind is TopicKind.EVENT:
                self._alert_refused(topic, payload, exc)
            elif kind in (TopicKind.STATE, TopicKind.AVAILABILITY):
                self._state_refused(kind, topic, payload, exc)
            self._restore(counters)
            self._count.rejected += 1
            self._count_messages(1)
        finally:
            del self._local.receipts
            self._send_receipts(receipts)  # what committed before a failure is told too
        self._works()
        return True

    def handle_batch(
        self, messages: list[tuple[str, bytes]], retained: Collection[int] = ()
    ) -> bool:
        """Store several messages in one commit (the ingest thread's way); never raises on
        bad input; ``retained``: the indexes of the copies the broker kept, handed over at a
        subscription (:attr:`_Received.retained`). False when the database failed: nothing
        of the batch is kept (no receipt, no change announced), and the caller hands them all
        over again later.

        A batch is first stored without a savepoint per message (two statements fewer
        each: on PostgreSQL half of a fall's statements, each a pipelined round of psycopg's
        and the server's CPU). If a message's handling fails (a bug), that attempt is rolled
        back whole and the batch stored again without that message, each of the others
        under its savepoint (:meth:`Store.message`): the failed one is undone alone, as if
        it had been handled under a savepoint from the start."""
        fault = self._batch(messages, retained)
        if fault is not None:
            self._refused(fault)
        return fault is None

    def _batch(
        self, messages: list[tuple[str, bytes]], retained: Collection[int] = ()
    ) -> StorageFault | None:
        """:meth:`handle_batch`'s work: the fault the database refused the batch with (nothing
        of it kept), not said; None once it committed."""
        counters = self._counters()
        later: list[Callable[[], None]] = []
        receipts: dict[str, list[str]] = {}
        try:
            decoded = [
                self._decode_one(topic, payload, index in retained)
                for index, (topic, payload) in enumerate(messages)
            ]
            decoded_counters = self._counters()
            failed: set[int] = set()
            while True:
                later, receipts = [], {}
                self._local.later = later
                self._local.receipts = receipts
                try:
                    self._store_batch(decoded, failed)
                    break
                except _MessageFailed as failure:  # again, without it, each under a savepoint
                    self._restore(decoded_counters)
                    failed.add(failure.index)
        except StorageFault as exc:
            self._restore(counters)
            return exc
        except Exception as exc:  # a bug here must hold the batch, not end the ingest thread
            log.exception("ingesting a batch of %d messages failed", len(messages))
            self._restore(counters)
            return StorageFault(f"ingest failed: {type(exc).__name__}: {exc}")
        finally:
            for name in ("later", "receipts", "savepoints", "recordings"):
                if hasattr(self._local, name):
                    delattr(self._local, name)
        self._works()
        self._send_receipts(receipts)
        woken = False
        for action in later:
            if action == self.alerting.wake_notifier:  # once a batch: it reads every due row
                if woken:
                    continue
                woken = True
            action()
        self._count_messages(len(messages))
        return None

    def _store_batch(self, decoded: list[_Received | None], failed: set[int]) -> None:
        """One attempt at storing a batch's decoded messages, in one commit; the messages at
        the indexes in ``failed`` (their handling failed in an earlier attempt) are left out
        and counted as rejected, and the others then each get a savepoint. A message whose
        handling fails without a savepoint raises :class:`_MessageFailed` (the attempt is
        rolled back whole)."""
        savepoints = bool(failed)
        self._local.savepoints = savepoints
        self._count.rejected += len(failed)
        kept = [(i, m) for i, m in enumerate(decoded) if m is not None and i not in failed]
        devices = {m.device_id for m in decoded if m is not None}
        heard = {m.device_id for _, m in kept if _heard(m)}
        events = [(m.event, m.now) for _, m in kept if m.event is not None]
        telemetry: dict[str, tuple[dict[str, Any], float]] = {}
        synced = self._durable_receipts is None  # else its receipts wait for the sync there
        recordings: list[_Recording] = []
        self._local.recordings = recordings  # this attempt's, written at its end
        with self.store.batch(
            devices,
            self.clock(),
            events,
            savepoints=savepoints,
            synced=synced,
            unheard=devices - heard,  # only the broker's words of them: its "offline", copies
        ):
            for index, message in kept:
                if isinstance(message.body, TelemetryMessage):
                    # only the latest matters: the batch's telemetry is one statement
                    telemetry[message.device_id] = (
                        msgspec.to_builtins(message.body),
                        message.now,
                    )
                else:
                    self._store_decoded(message, index)
            if telemetry:
                with self.store.transaction() as tx:
                    tx.set_telemetries(telemetry)
                faults = self.store.side_faults
                if faults.failing:  # not through _store_one: said to work here
                    reported = tuple(telemetry)
                    self._after_commit(
                        lambda: self._side_works(
                            Part.TELEMETRY, Use.WRITE, (Table.DEVICES,), reported
                        )
                    )
            if recordings:
                self._store_recordings(recordings)

    def _store_one(self, topic: str, payload: bytes, retained: bool = False) -> None:
        """One message; bad input is logged and counted, a :class:`StorageFault` raised."""
        message = self._decode_one(topic, payload, retained)
        if message is not None:
            self._store_decoded(message)
        self._after_commit(lambda: self._count_messages(1))

    def _decode_one(self, topic: str, payload: bytes, retained: bool = False) -> _Received | None:
        """The message, or None (bad input logged and counted, or a kind not consumed)."""
        try:
            received = self._decode(topic, payload)
            if received is not None and retained:
                received = dataclasses.replace(received, retained=True)
            return received
        except Exception:
            log.exception("could not ingest a message on %s", topic)
            self._count.rejected += 1
            return None

    def _store_decoded(self, message: _Received, index: int = 0) -> None:
        """Store one decoded message (``index``: its place in its batch); bad input is logged
        and counted, a :class:`StorageFault` raised. A message whose handling fails leaves
        nothing of itself (:meth:`Store.message`): no row, no alert, no receipt, nothing
        announced; a device sends an event it got no receipt for again. In a batch stored
        without savepoints, :class:`_MessageFailed` says so (the batch is stored again)."""
        savepoints: bool = getattr(self._local, "savepoints", True)
        # what to go back to if it fails: only where it can be undone alone (a batch stored
        # without savepoints is stored again instead; taken for each message of a batch of
        # 100, the copy of its receipts so far cost more than the message's other work)
        undo = self._undo_point() if savepoints else None
        self._local.side_tables = _side_tables(message.body)  # what a refusal is kept by
        try:
            with self.store.message(message.event.id if message.event is not None else None):
                used = self._store(message)
                faults = self.store.side_faults
                if used is not None and faults.failing:  # a part let go before, used again
                    self._stored_again(faults, message, used)
        except StorageFault:
            raise
        except Exception as exc:
            log.exception("could not ingest a message on %s", message.topic)
            if not savepoints:
                raise _MessageFailed(index) from exc
            if undo is not None:
                self._undo(undo)
            self._count.rejected += 1

    def _stored_again(self, faults: SideFaults, message: _Received, used: Use) -> None:
        """After the commit: ``message``'s handling used the tables of the part its kind is
        kept in (:data:`SIDE_PARTS`, :func:`_side_tables`) as ``used`` says (wrote rows of
        them, or read them), and that worked: :meth:`SideFaults.works` is told, which clears
        a failure of that use of those tables only."""
        kind = _kind_of(self.prefix, message.topic)
        part = SIDE_PARTS.get(kind) if kind is not None else None
        tables = _side_tables(message.body)
        if part is not None:
            devices = (message.device_id,)
            self._after_commit(lambda: self._side_works(part, used, tables, devices))

    def _side_works(
        self, part: Part, used: Use, tables: tuple[Table, ...], devices: tuple[str, ...]
    ) -> None:
        """``used`` of ``tables`` of ``part`` worked for messages of ``devices`` (committed):
        :meth:`SideFaults.works` is told, but of a table that refused another treadmill's
        values (:meth:`_said_let_go`'s ``refused_by``): a write of it by one treadmill says
        nothing of the row refused for another, which only that treadmill's own write of the
        table replaces. Before, treadmill-2's roster stored cleared treadmill-1's roster
        refused for a walker's name, and every page said all was well while treadmill-1's
        walkers were not what it has."""
        if used is Use.WRITE and (self._values_refused or self._table_refused):
            cleared = []
            with self._values_lock:
                self._table_refused.difference_update((part, table) for table in tables)
                for table in tables:
                    refused = self._values_refused.get((part, table))
                    if refused is not None:
                        refused.difference_update(devices)
                        if refused:
                            continue  # another treadmill's row is still not stored
                        del self._values_refused[part, table]
                    cleared.append(table)
            tables = tuple(cleared)
        self.store.side_faults.works(part, used, tables)

    def _undo_point(self) -> _UndoPoint | None:
        """This thread's batch's after-commit actions and receipts, and the counters, now
        (None outside a batch: what a message committed alone stays, and is told)."""
        later: list[Callable[[], None]] | None = getattr(self._local, "later", None)
        receipts: dict[str, list[str]] | None = getattr(self._local, "receipts", None)
        if later is None or receipts is None:
            return None
        recordings: list[_Recording] = getattr(self._local, "recordings", [])
        return _UndoPoint(
            len(later),
            {d: len(ids) for d, ids in receipts.items()},
            self._counters(),
            len(recordings),
        )

    def _undo(self, point: _UndoPoint) -> None:
        """Forget what a message whose handling failed left for its batch's commit."""
        later: list[Callable[[], None]] = self._local.later
        del later[point.later :]
        recordings: list[_Recording] = getattr(self._local, "recordings", [])
        del recordings[point.recordings :]  # its event's row is undone: no recording of it
        receipts: dict[str, list[str]] = self._local.receipts
        for device_id in list(receipts):
            kept = point.receipts.get(device_id)
            if kept is None:
                del receipts[device_id]
            else:
                del receipts[device_id][kept:]
        self._restore(point.counters)

    def _after_commit(self, action: Callable[[], None]) -> None:
        """Now, or when this thread's batch has committed (never if it fails)."""
        later: list[Callable[[], None]] | None = getattr(self._local, "later", None)
        if later is None:
            action()
        else:
            later.append(action)

    def _count_messages(self, count: int) -> None:
        """After a commit: the messages handled, and the counts shown to other threads (a batch
        counts as it goes; before, a reader woken by another message could see an event
        counted whose batch had not committed, and not find it in the database)."""
        with self._cond:
            self.messages += count
            self._shown = self._counters()
            self._cond.notify_all()

    def _changed(self, change: Change) -> None:
        self._after_commit(lambda: self.on_change(change))

    def _refused(self, exc: StorageFault) -> None:
        if self.storage_fault is None:
            log.error("%s: messages stay with the broker until it works again", exc)
            self._on_storage(str(exc))  # the banner first: then the fault is visible here
        self.storage_fault = str(exc)
        self.storing_changed()
        with self._cond:
            self._shown = self._counters()
            self._cond.notify_all()

    def _works(self) -> None:
        # A damaged file does not heal: a commit that missed its damaged pages leaves the
        # fault said (before, the log said "works again" and the banner went, until the next
        # alert met the damaged page: every few seconds, as held messages were retried).
        if self.storage_fault is not None and self.store.damage is None:
            log.info("the caregiver database works again")
            self._on_storage(None)
            self.storage_fault = None
            self.storing_changed()
            self._wake_waiters()  # after :meth:`handle`'s count, which woke them before this

    def _wake_waiters(self) -> None:
        """:meth:`wait_for`'s callers look again (at what changed outside a count)."""
        with self._cond:
            self._cond.notify_all()

    def _counters(self) -> _Counts:
        return dataclasses.replace(self._count)

    def _restore(self, counters: _Counts) -> None:
        self._count = dataclasses.replace(counters)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
        """Block until ``predicate()`` holds after some message (for tests and the benchmark)."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def _decode(self, topic: str, payload: bytes) -> _Received | None:
        try:
            parsed = parse_topic(self.prefix, topic)
        except BadTopic as exc:
            log.warning("%s", exc)
            self._count.rejected += 1
            return None
        if parsed is None or parsed.kind not in INGESTED_KINDS:
            return None
        device_id, kind = parsed.device_id, parsed.kind
        now = self.clock()
        if kind is TopicKind.STAGE and parsed.walker is not None and not payload:
            return _Received(topic, device_id, _StageCleared(parsed.walker), payload, now, None)
        if kind is TopicKind.AVAILABILITY and not payload:
            self._removed(device_id)
            return None
        try:
            body: Availability | msgspec.Struct = (
                decode_availability(payload)
                if kind is TopicKind.AVAILABILITY
                else decode(kind, payload)
            )
        except ProtocolError as exc:
            log.warning("%s: %s; ignored", topic, exc)
            self._count.rejected += 1
            return None
        if isinstance(body, StageMessage) and (
            body.walker.id != parsed.walker or body.device_id != device_id
        ):
            log.warning(
                "%s: the message is walker %r of %r, not the topic's; ignored",
                topic,
                body.walker.id,
                body.device_id,
            )
            self._count.rejected += 1
            return None
        if isinstance(body, StageMessage):
            stamped = moment_of(body.wall_time)
            if stamped is None:
                # it orders the walker's stages (the store keeps the latest): one stamped with
                # no time would be kept over, or block, every stage the device sends after it
                log.warning("%s: wall_time %r is no time; ignored", topic, body.wall_time[:40])
                self._count.rejected += 1
                return None
            ahead = stamped.timestamp() - now
            if ahead > STAGE_AHEAD_S and not body.wall_unsynced:  # flagged: not news
                # what it says is the device's word and is kept; its time orders nothing
                # (caregiver.storage.sql.STAGE_AHEAD_S): the device's next stage replaces it
                log.warning(
                    "%s: stamped %s, %.0f min ahead of this service's clock: the device's "
                    "clock is wrong; kept until the device's next stage, whatever its time",
                    topic,
                    body.wall_time[:40],
                    ahead / 60,
                )
        event = _new_event(device_id, body, payload) if isinstance(body, EventMessage) else None
        return _Received(topic, device_id, body, payload, now, event)

    def _store(self, received: _Received) -> Use | None:
        """Store one decoded message; what its handling did with its side part
        (:data:`SIDE_PARTS`) that worked: ``Use.WRITE`` when it wrote rows of it (committed
        with the message), ``Use.READ`` when it only read it (:data:`SIDE_READS`), None when
        neither: an alert's kind (its recording says its own), or a side message handled
        without a write (:func:`_written`)."""
        device_id, now, payload = received.device_id, received.now, received.payload
        match received.body:
            case Availability() as value:
                self._availability(device_id, value, now)
            case EventMessage() as message:
                event = received.event or _new_event(device_id, message, payload)
                self._event(device_id, message, event, now)
            case StateMessage(
                state=state, reason=reason, wall_time=wall_time, worn=worn, fault=fault
            ):
                said = worn_said(worn, reason)  # an older release's: from the reason's prefix
                # a kind outside FAULT is no one's: the card would say it of a running belt
                kind = fault if state is DeviceState.FAULT else None
                # a retained copy is what it said before: it keeps the time it was last heard
                seen = None if received.retained else now
                self.store.set_state(device_id, state.value, reason, wall_time, seen, said, kind)
                self._state_stored(device_id, TopicKind.STATE)
                self._changed(DeviceChanged(device_id))
            case TelemetryMessage() as message:
                # an upsert of the device's row: a write each time, whatever the figures
                self.store.set_telemetry(device_id, msgspec.to_builtins(message), now)
                # no live push: the cards do not show telemetry, and it is the bulk of the traffic
                return Use.WRITE
            case ReplyMessage() as message:
                return self._reply(device_id, message)
            case SessionSummary() as message:
                return self._session(device_id, message, payload, now)
            case ProgressMessage(week=week, week_prescribed=prescribed, walker=walker) as sent:
                if sent.zone is not None and _known_zone(sent.zone):
                    # the zone its weeks are counted in: the pages count the walkers' weeks in
                    # it too (caregiver.walkers.weeks_zone), as its progression does (kept in
                    # the device's row, not the progression's part)
                    # (a retained copy: what it said before, not heard from now)
                    heard = None if received.retained else now
                    self.store.set_device_zone(device_id, sent.zone, heard)
                if prescribed is None:
                    return None
                # the week's count in the device's zone, of the walker it is about (the one
                # walking, else the one chosen for the next session); one row a week, changed
                # when the stage is
                who = DEFAULT_WALKER.id if walker is None else walker.id
                return _written(self.store.set_prescribed(device_id, week, prescribed, who))
            case StageMessage() as stage:
                # every walker's progression, whoever is chosen at the treadmill: the plan and
                # progress pages show it, and the week's count its stage prescribes is theirs
                # (adherence counts against it) as a progress message about them would say
                with self.store.transaction() as tx:  # both or neither, outside a batch too
                    if not tx.set_walker_stage(device_id, stage, payload, now):
                        return None  # redelivered, or older than the one kept
                    # written even unchanged: a stage stored is then a write of both of its
                    # tables, which says both take writes (:func:`_side_tables`)
                    known = tx.prescribed_weeks(device_id, stage.walker.id)
                    for week, count in _stage_weeks(stage, known).items():
                        tx.set_prescribed(
                            device_id, week, count, stage.walker.id, always=week == stage.week
                        )
                self._changed(StageChanged(device_id, stage.walker.id))
                return Use.WRITE
            case _StageCleared(walker=walker):
                if self.store.forget_walker_stage(device_id, walker):
                    self._changed(StageChanged(device_id, walker))
                # a row deleted stores nothing: a table may take deletes and refuse the
                # inserts and updates said failing (a trigger, a permission on them)
                return None
            case WalkersMessage(walkers=walkers):
                # what the plan page offers; it adds, removes or chooses nobody on the device
                roster = [(w.id, w.name) for w in walkers]
                if self.store.set_device_walkers(device_id, roster):
                    return Use.WRITE
                if self._values_refused:  # a glance: the roster stored is this one as it is
                    self._after_commit(lambda: self._values_as_stored(device_id))
                return None
            case IncidentMessage(open=True, incident=str() as incident_id):
                self._device_missed_close(device_id, incident_id)
                return Use.READ  # the incident read, whatever it then sends
        return None

    def _availability(self, device_id: str, value: Availability, now: float) -> None:
        with self.store.transaction() as tx:
            before = tx.set_availability(device_id, value.value, now)
            offline = value is Availability.OFFLINE
            if offline and before.availability != "offline" and before.state == "ARMED":
                self.alerting.on_offline(tx, device_id, _iso_now())
            elif not offline and before.availability == "offline":
                self.alerting.on_online(tx, device_id)
        self._state_stored(device_id, TopicKind.AVAILABILITY)
        self._after_commit(self.alerting.wake_notifier)
        self._changed(DeviceChanged(device_id))

    def _event(self, device_id: str, message: EventMessage, event: NewEvent, now: float) -> None:
        recording = message.recording
        recorded = False  # this message's own recording stored (not a batch's)
        with self.store.transaction() as tx:
            new = tx.record_event(event, now)
            if new:
                if recording is not None and message.of is not None:
                    kept = _Recording(message.of, msgspec.msgpack.encode(recording), event)
                    pending: list[_Recording] | None = getattr(self._local, "recordings", None)
                    if pending is None:
                        recorded = self._store_recordings([kept], tx)
                    else:  # the batch's, at its end: one savepoint and one wait for them all
                        pending.append(kept)
                self.alerting.on_event(tx, device_id, message)
        if recorded:  # committed: outside a batch an after-commit action runs at once
            self.store.side_faults.works(Part.RECORDINGS, Use.WRITE, (Table.RECORDINGS,))
        self._send_receipt(device_id, message.id)
        if self._unstored:  # a glance: cleared under the lock
            key = f"{device_id} {message.id}"
            self._after_commit(lambda: self._refused_stored(Part.ALERTS, key))
        if not new:
            self._count.duplicates += 1
            return
        self._count.events_stored += 1
        self._after_commit(self.alerting.wake_notifier)
        self._changed(EventStored(device_id, message.id, _as_stored(event, now)))
        if message.of is not None:
            self._changed(EventStored(device_id, message.of))  # its plot can be drawn now
        self._changed(DeviceChanged(device_id))

    def _store_recordings(
        self, recordings: list[_Recording], tx: Transaction | None = None
    ) -> bool:
        """Store the recordings that window events carried (a batch's, at its end, or one
        message's): an attachment of each incident, not its alert; whether they were stored. Written
        under a savepoint of their own (:meth:`Store.attachment`; one for a batch's, the answers
        waited for once: a wait each cost PostgreSQL's batches a third more time): a recordings
        table that refuses them (damaged, missing, locked) leaves their events stored, receipted and
        alerted without them, each event's row saying so (the fall's page says its
        recording could not be stored), and the fault said where the banner and /healthz read it:
        a failed write, or a failed read when the table cannot be read either (missing, locked,
        damaged), which the housekeeping look clears once it reads again.
        Before, the refusal was the event's: it was held with the broker, and every event after it
        from the device, the next fall too, for as long as the table refused. ``tx``: the open
        transaction of the one message's event (a batch's end opens its own); its caller says the
        part works once that commits (before, it was said at once, outside a batch: before the
        commit, which could fail)."""
        faults = self.store.side_faults

        def write(ops: Transaction) -> None:
            for r in recordings:
                ops.store_recording(r.trip_id, r.event.id, r.blob)

        try:
            self.store.attachment(write)
        except StorageFault as exc:
            for r in recordings:
                log.error(
                    "%s: the recording of trip %s could not be stored, the event is stored "
                    "without it: %s",
                    r.event.device_id,
                    r.trip_id,
                    exc,
                )
            with contextlib.nullcontext(tx) if tx is not None else self.store.transaction() as ops:
                for r in recordings:
                    ops.recording_unstored(r.event.id)
            # a table that cannot be read either (missing, locked, damaged) failed a read: the
            # housekeeping look clears it once the table is back, as for a side message let
            # go (_said_let_go); said a failed write, it waited for the next fall's recording
            unread = self.store.unreadable((Table.RECORDINGS,))
            use = Use.READ if unread else Use.WRITE
            faults.failed(Part.RECORDINGS, exc, use, (Table.RECORDINGS,))
            return False
        if tx is None:  # a batch's end: said when the batch commits
            self._after_commit(
                lambda: faults.works(Part.RECORDINGS, Use.WRITE, (Table.RECORDINGS,))
            )
        return True

    def _device_missed_close(self, device_id: str, incident_id: str) -> None:
        """The device's retained ``incident`` says open an incident closed here by a caregiver
        (the dashboard, a notification's link): its ``ack`` was lost — the device was offline
        (its MQTT session starts clean, so a command sent meanwhile is gone), or restarted and
        carried the incident over. Send the close again, as recorded: same incident, who and
        how, the request id the events wait on, and as the event seen the incident's newest
        alert stored here. The device closes it only if nothing that would have opened it again
        came after that event (a fall still on its way here: then it stays open everywhere,
        and its arrival here opens it again too); an incident closed already is answered
        ``already`` and nothing is sent, so the repeats of several instances, or of every
        reconnect, change nothing. An incident the walker closed is the device's own news, and
        one open here is open on both sides: nothing to send. After the commit (never for a
        message undone)."""
        with self.store.transaction() as tx:
            incident = tx.incident(incident_id)
            if (
                incident is None
                or incident.device_id != device_id
                or incident.open
                or incident.closed_by is None
                or incident.closed_via in (None, "walker")
            ):
                return
            newest = newest_alert(tx.incident_events(incident_id))
            if newest is None:  # nothing to say it saw: the device could not judge what came after
                return
            request_id = tx.ack_request_of(incident_id)
        by, via, seen = incident.closed_by, incident.closed_via, newest.id

        def send() -> None:
            if self.client is None:
                return
            log.info(
                "%s still shows incident %s open, closed here by %s (%s): sending the close again",
                device_id,
                incident_id,
                by,
                via,
            )
            self.send_ack(device_id, seen, by, incident=incident_id, via=via, request_id=request_id)

        self._after_commit(send)

    def _session(
        self, device_id: str, summary: SessionSummary, payload: bytes, now: float
    ) -> Use | None:
        """A guided session's summary; ``Use.WRITE`` when its row was inserted or replaced,
        None when not (the summary again, as amended as the one kept, or naming another
        device's session: :meth:`Store.record_walk_session` says "same"; or unreadable)."""
        row, problem = parse_summary(msgspec.to_builtins(summary), device_id)
        if row is None:
            log.warning("session summary from %s ignored: %s", device_id, problem)
            self._count.rejected += 1
            return None
        outcome = self.store.record_walk_session(row, payload.decode("utf-8", "replace"), now)
        self._send_receipt(device_id, summary.id)
        if outcome == "same":
            self._count.duplicates += 1
            return None
        self._count.sessions_stored += 1
        self._changed(SessionStored(device_id, row.id))
        return Use.WRITE

    def _send_receipt(self, device_id: str, message_id: str) -> None:
        """Tell the device this alert is on our disk (it may forget it now): after the
        commit. In a batch, the ids of each device go in one receipt once it has committed
        (a QoS 1 publish costs the service about what storing the event does)."""
        receipts: dict[str, list[str]] | None = getattr(self._local, "receipts", None)
        if receipts is None:
            self._after_commit(lambda: self._publish_receipt(device_id, [message_id]))
        elif message_id not in (ids := receipts.setdefault(device_id, [])):
            ids.append(message_id)

    def _send_receipts(self, receipts: Mapping[str, list[str]]) -> None:
        """Receipts for what has committed: once it is on disk (a batch commits without a sync
        when :class:`DurableReceipts` runs: its thread syncs, then publishes), else now."""
        durable = self._durable_receipts
        if durable is not None:
            durable.submit(receipts)
        else:
            self._publish_receipts(receipts)

    def _publish_receipts(self, receipts: Mapping[str, list[str]]) -> None:
        """One receipt a device, not one an event; paho woken once for them all."""
        with self._wakes.quiet():
            for device_id, ids in receipts.items():
                self._publish_receipt(device_id, ids)

    def _receipts_held(self, exc: StorageFault) -> None:
        """A sync before receipts failed: reported as the database's fault until a batch
        stores again (the events are stored, not yet safe on disk: their devices resend)."""
        if self.storage_fault is None:
            log.error("%s: receipts held back until it works again", exc)
            self._on_storage(str(exc))
        self.storage_fault = str(exc)
        self.storing_changed()
        # On the receipts' thread, after every count: nothing else would wake a wait for it.
        self._wake_waiters()

    def _publish_receipt(self, device_id: str, ids: list[str]) -> None:
        client = self.client
        if client is None:
            return
        topic = Topics(self.prefix, device_id).receipt
        for payload in receipt_payloads(ids, self.config.mqtt.identity):
            client.publish(topic, payload, qos=1)
            self.receipts_sent += 1

    def _reply(self, device_id: str, reply: ReplyMessage) -> Use | None:
        """A device's answer to a command; ``Use.WRITE`` when it wrote the commands' part (a
        plan's or a check's answer recorded), None when not: an ``ack``'s confirmation is
        written to its events (an alert's table, not the part's), an answer already recorded
        (a redelivery), to another's request or to a command not kept changes no row."""
        if reply.command == CommandName.ACK and reply.ok and reply.request_id is not None:
            # the card, and the incident's row though a newer incident is the card's now
            for incident in self.store.confirm_ack(device_id, reply.request_id):
                self._changed(DeviceChanged(device_id, incident))
        elif reply.command in _ANSWERED and reply.request_id is not None:
            # the plan page shows it (caregiver.plan_answers); not a change the live feed shows
            return _written(
                self.store.command_answered(
                    device_id, reply.request_id, reply.ok, answer_of(reply), self.clock()
                )
            )
        elif reply.command == CommandName.SELF_TEST and reply.request_id is not None:
            # the device page's "Check this treadmill" (caregiver.self_test): only the answer
            # to the newest check asked from here is kept; Home Assistant's own change nothing
            outcome, reason = self_test_outcome(reply)
            return _written(
                self.store.self_test_answered(
                    device_id,
                    reply.request_id,
                    outcome,
                    reason if outcome == "refused" else "",
                    checks_of(reply),
                    self.clock(),
                )
            )
        return None

    # --------------------------------------------------------------- MQTT

    def start(self) -> None:
        share_property_tables()  # paho's MQTT 5 tables once, not once per message received
        cfg = self.config.mqtt
        # The Last Will says "offline" for us when the connection ends without our DISCONNECT
        # (a crash, a power cut, a lost network): devices then tell the walker, Home Assistant
        # and their self-test that a fall would page nobody (docs/mqtt.md, "Caregiver presence").
        client = make_client(
            cfg.link(),
            cfg.client_id,
            manual_ack=True,
            on_fault=self._callback_failed,
            will=(self.presence_topic, self._presence(CaregiverPresence.OFFLINE, stamped=False)),
        )
        # paho types the delays as whole seconds; its waits are float arithmetic and sleeps
        first, most = self.reconnect.first_s, self.reconnect.most_s
        client.reconnect_delay_set(first, most)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = cfg.session_expiry_s
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        client.connect_async(
            cfg.host, cfg.port, keepalive=cfg.keepalive_s, clean_start=False, properties=props
        )
        self.client = client
        self._retry_thread = threading.Thread(
            target=self._retry_held, name="caregiver-ingest-retry", daemon=True
        )
        self._retry_thread.start()
        self._ingest_thread = threading.Thread(
            target=self._ingest, name="caregiver-ingest", daemon=True
        )
        self._durable_receipts = DurableReceipts(
            self.store.sync_committed, self._publish_receipts, self._receipts_held
        )
        self._ingest_thread.start()
        client.loop_start()
        self._wakes = coalesce_wakeups(client)
        self._renewal = PresenceRenewal(self.presence_timing.renew_s, self._renew_online)
        self._renewal.start()

    def stop(self) -> None:
        self._stop.set()
        with self._queued:
            self._queued.notify_all()
        if self._ingest_thread is not None:  # what it has not stored, the broker sends again
            self._ingest_thread.join(5)
            self._ingest_thread = None
        if self._retry_thread is not None:
            self._retry_thread.join(5)
            self._retry_thread = None
        if self._durable_receipts is not None:  # the last batch's receipts, after a sync
            self._durable_receipts.stop()
            self._durable_receipts = None
        with self._presence_lock:
            if self._presence_timer is not None:  # offline follows: nothing left to say
                self._presence_timer.cancel()
                self._presence_timer = None
        if self._renewal is not None:
            self._renewal.stop()
            self._renewal = None
        if self.client is not None:
            self._say_offline(self.client)
            self.client.disconnect()  # a clean DISCONNECT: the broker drops the Last Will
            self.client.loop_stop()
            self.client = None

    def _callback_failed(self, fault: CallbackFault) -> None:
        """A callback raised on paho's thread: reconnecting (said as the link down), or a
        message that failed so before held on this connection (said as held: the others
        are received)."""
        if fault.held and fault.topic is not None:
            self.link.message_held(
                fault.topic,
                fault.error,
                fault.times,
                kept=fault.unacknowledged or fault.copy_of_held,
                held=max(fault.held_now, 1),
                let_go=fault.let_go,
            )
        else:
            self.link.handler_failed()

    def _presence(self, state: CaregiverPresence, *, stamped: bool = True) -> str:
        return caregiver_status_payload(state, self.config.mqtt.identity, stamped=stamped)

    def _storing_words(self) -> str | None:
        """Why this instance cannot store what it receives now, in the presence's words (None:
        it can). A damaged file is said until the service stops, whatever commits meanwhile:
        the next alert that reaches a damaged page is not stored."""
        if self.store.damage is not None:
            return STORING_DAMAGED
        return None if self.storage_fault is None else STORING_REFUSED

    def _say_online(self, client: mqtt.Client, *, again: bool = False) -> None:
        """``online`` (retained), saying whether it stores what it receives now: a service
        that stores nothing pages nobody (an alert not stored is neither receipted nor
        escalated), and the treadmills must not read it as there. Never once stopping: the
        ``offline`` a clean stop says must stay the last word (its DISCONNECT drops the Last
        Will), and Home Assistant's birth or another instance's ``offline`` heard between the
        two said ``online`` after it, for a service that was gone (:meth:`_say_offline`).
        ``again`` (a renewal): what it last said of storing, not a change, which
        :meth:`storing_changed` says at most once a :data:`PRESENCE_EVERY_S`."""
        with self._presence_lock:
            if self._stop.is_set():
                return
            fault = self._fault_said if again else self._storing_words()
            payload = caregiver_status_payload(
                CaregiverPresence.ONLINE,
                self.config.mqtt.identity,
                fault=fault,
                expires_s=self.presence_timing.expiry_s,
            )
            if not again:
                self._fault_said, self._presence_said_at = fault, time.monotonic()
            client.publish(
                self.presence_topic,
                payload,
                qos=1,
                retain=True,
                properties=self.presence_timing.online_properties(),  # gone unless said again
            )

    def _renew_online(self) -> None:
        """Our ``online`` again before it expires (the renewal's thread), while subscribed.
        Not over another instance's ``online`` that says it cannot store (``shared_group``):
        that one's renewals keep the presence alive, and ours would make every treadmill
        flip between "storing" and "not storing" each period; its stop or Last Will
        (``offline``) is answered as before (:meth:`_presence_heard`). It repeats what was
        last said of storing: a change within :data:`PRESENCE_EVERY_S` of the last is said at
        the interval's end, and a renewal saying the state of its instant would flap every
        treadmill within it (a fault that comes and goes)."""
        client = self.client
        if client is None or not self.connected.is_set() or self._other_not_storing:
            return
        self._say_online(client, again=True)

    def storing_changed(self) -> None:
        """The database started refusing, works again, or its file was found damaged (any
        thread: ingest's, the receipts' sync, a page's): the presence says it, at most once a
        :data:`PRESENCE_EVERY_S` (a change within it at the interval's end, as things then
        stand). Only while subscribed: the ``online`` that follows the subscriptions says it
        then."""
        self.on_storing_changed()
        with self._presence_lock:
            if self._presence_timer is not None or self._storing_words() == self._fault_said:
                return
            wait = self._presence_said_at + PRESENCE_EVERY_S - time.monotonic()
            if wait > 0:
                timer = threading.Timer(wait, self._say_storing)
                timer.daemon = True
                self._presence_timer = timer
                timer.start()
                return
        self._say_storing()

    def _say_storing(self) -> None:
        with self._presence_lock:
            self._presence_timer = None
            unchanged = self._storing_words() == self._fault_said  # it came and went
        client = self.client
        if unchanged or client is None or not self.connected.is_set():
            return
        self._say_online(client)

    def _say_offline(self, client: mqtt.Client) -> None:
        """A clean stop says ``offline`` itself (retained) before its DISCONNECT, which
        discards the Last Will: else a stopped service would read online for ever. Waited for
        briefly, and only while connected (a broker that is gone would only make stop wait).
        Published under the presence's lock, after :meth:`stop` set ``_stop``: an ``online``
        being said on paho's thread goes out before it, none after (waited for outside it, as
        paho's thread, which handles the acknowledgement, may be waiting for that lock)."""
        if not self.connected.is_set():
            log.warning(
                "stopping while not connected to the broker: could not say offline myself; "
                "the Last Will the broker holds says it, unless the broker crashed meanwhile "
                "(then its retained presence may still say online: docs/mqtt.md, "
                '"Caregiver presence")'
            )
            return
        try:
            with self._presence_lock:
                info = client.publish(
                    self.presence_topic,
                    self._presence(CaregiverPresence.OFFLINE),
                    qos=1,
                    retain=True,
                )
            info.wait_for_publish(timeout=PRESENCE_WAIT_S)
        except (RuntimeError, ValueError) as exc:
            log.warning("could not announce the caregiver service offline: %s", exc)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error(
                "broker refused the caregiver connection: %s (check [mqtt] username/password)",
                reason_code,
            )
            self.link.failed(Problem.REFUSED)
            return
        self._unreachable_said = False
        log.info(
            "connected to the broker (session %s)",
            "resumed" if flags.session_present else "new",
        )
        client.subscribe([(topic_filter, 1) for topic_filter in self.subscriptions])
        # Apart from the device streams: a broker whose ACL predates it refuses only this one,
        # and the service still receives every alert (it is said, not shown as an outage).
        _, self._presence_mid = client.subscribe(self.presence_topic, 1)
        if self.home_assistant_status is not None:  # apart too: refused, only this is missing
            _, self._birth_mid = client.subscribe(self.home_assistant_status, 1)

    def _presence_heard(self, client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
        """Another instance said ``offline`` on the one presence topic (its clean stop, or its
        Last Will) while this one is subscribed: it says ``online`` again, so the treadmills do
        not read "nobody is paged" while it still receives every alert. Its own word (its Last
        Will queued in its own session while it was down) is not an answer. Whether the last
        presence heard is another instance's saying it cannot store is kept for our renewals
        (:meth:`_renew_online`). Paho's thread; acknowledged here, as nothing is stored."""
        client.ack(message.mid, message.qos)
        try:
            said = decode_as(CaregiverStatusMessage, bytes(message.payload))
        except ProtocolError:
            self._other_not_storing = False
            return  # an empty retained message (cleared) or not ours: nothing to answer
        mine = said.by == self.config.mqtt.identity
        online = said.state == CaregiverPresence.ONLINE
        self._other_not_storing = online and not said.storing and not mine
        if said.state == CaregiverPresence.OFFLINE and not mine and self.connected.is_set():
            self._say_online(client)

    def _home_assistant_heard(self, client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
        """Home Assistant (re)started (its birth message, ``online``): this instance says its
        presence again. Instances sharing the devices share the one retained presence, and a
        Home Assistant that starts reads only the last one's: every other instance's Database
        sensor (:mod:`caregiver.health_discovery`, available while the presence names its
        instance) stayed unavailable until that instance next said its presence, for days,
        and a part of its database failing meanwhile was never shown. A treadmill announces
        its discovery again then, for the same reason. Paho's thread; acknowledged here, as
        nothing is stored."""
        client.ack(message.mid, message.qos)
        if bytes(message.payload).strip() == b"online" and self.connected.is_set():
            self._say_online(client)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # Nothing was said while paho retried a broker that never answered (a wrong [mqtt]
        # host or port, the broker down): the log looked like a quiet fleet, the dashboard
        # like one where no monitor has reported yet, and no fall could page anyone.
        self.link.failed(Problem.UNREACHABLE)  # every page's banner says it
        if not self._unreachable_said:
            self._unreachable_said = True
            cfg = self.config.mqtt
            log.error(
                "cannot reach the broker at %s:%d (refused, unreachable or TLS failure); "
                "retrying: until it answers, no monitor's event reaches the dashboard or pages "
                "anyone (check [mqtt] host and port)",
                cfg.host,
                cfg.port,
            )

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if mid == self._presence_mid:
            if any(rc.is_failure for rc in reason_codes):
                log.warning(
                    "the broker refused the subscription to %s (check its ACL): another "
                    "instance's crash may read as this service offline on the treadmills",
                    self.presence_topic,
                )
            return
        if mid == self._birth_mid:
            if any(rc.is_failure for rc in reason_codes):
                log.warning(
                    "the broker refused the subscription to %s (check its ACL): after a Home "
                    "Assistant restart this instance's Database sensor may show unavailable "
                    "until it next says its presence",
                    self.home_assistant_status,
                )
            return
        refused = [
            topic_filter
            for topic_filter, rc in zip(self.subscriptions, reason_codes, strict=False)
            if rc.is_failure
        ]
        if refused:  # connected, and yet what the refused filters carry never arrives
            log.error(
                "the broker refused the subscriptions %s (check its ACL): until it accepts "
                "them, what they carry reaches neither the dashboard nor anyone it would page",
                ", ".join(refused),
            )
            self.link.subscriptions_refused(refused)  # every page's banner says it
            return
        group = self.config.mqtt.shared_group
        log.info(
            "subscribed to every device%s",
            f" (sharing the streams with group {group!r})" if group else "",
        )
        # The link first: whoever waits on ``connected`` (running_service, the tests, the
        # benchmark) then reads the link, /healthz and the banner as connected too; the other
        # way round a waiter woken in between read "never_connected, connecting".
        self.link.subscribed()
        self.connected.set()
        # Only now does every device's alert reach us: devices read this as "a fall pages"
        # (unless it says it cannot store them).
        self._say_online(client)
        self.on_subscribed(client)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.on_published(mid, reason_code)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connected.clear()
        self.link.dropped()
        if reason_code.is_failure:
            log.warning("lost the broker connection: %s (reconnecting)", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == self.presence_topic:
            self._presence_heard(client, message)
            return
        if message.topic == self.home_assistant_status:
            self._home_assistant_heard(client, message)
            return
        with self._queued:  # the ingest thread stores it (paho's thread goes on reading)
            self._queue.append(message)
            self._queued.notify()

    def _ingest(self) -> None:
        """The ingest thread: store what has arrived, as one batch, then acknowledge it."""
        while True:
            with self._queued:
                self._queued.wait_for(lambda: bool(self._queue) or self._stop.is_set())
                if self._stop.is_set():
                    return
                take = min(len(self._queue), self._batch_max)
                batch = [self._queue.popleft() for _ in range(take)]
            with self.working(), self._wakes.quiet():  # receipts and acks: one wake-up
                with self._held_lock:
                    handled = self._store_received(batch)
                client = self.client
                if client is not None:
                    for message in handled:
                        client.ack(message.mid, message.qos)

    def _store_received(self, batch: list[mqtt.MQTTMessage]) -> list[mqtt.MQTTMessage]:
        """The ingest thread's batch stored (``_held_lock`` held): what of it was handled, to
        acknowledge; the rest is held for :meth:`_retry_held`, after any held before it (order
        is kept).

        A batch refused for the values of one of its messages (a data error: the database
        answered, refusing that row) is no database fault: each message is handled alone at
        once (:meth:`handle`), which lets that one go and says it as its own (an alert
        refused, a side part). Before, the batch was held and the database said refusing
        until the retry let it go, seconds later: every copy a treadmill sent again until a
        receipt named it (each minute at first) said "not storing" to the health message,
        the banner and the presence every treadmill reads, and delayed the alerts beside it.
        """
        if self._held:
            self._held.extend(batch)
            self._held_changed()
            return []
        fault = self._batch(
            [(m.topic, bytes(m.payload)) for m in batch],
            {index for index, m in enumerate(batch) if m.retain},
        )
        if fault is None:
            return batch
        if not fault.refused_data:
            self._refused(fault)
            self._held.extend(batch)
            self._held_changed()
            return []
        for n, message in enumerate(batch):
            if not self.handle(message.topic, bytes(message.payload), message.retain):
                self._held.extend(batch[n:])
                self._held_changed()
                return batch[:n]
        return batch

    def _retry_held(self) -> None:
        """While the database fails, try the oldest held message again every few seconds."""
        while not self._stop.wait(HELD_RETRY_S):
            with self._held_lock:
                while self._held:
                    message = self._held[0]
                    if not self.handle(message.topic, bytes(message.payload), message.retain):
                        if self._side_fault(message):
                            continue  # an alert stored behind it: it was let go
                        break
                    self._held.popleft()
                    self._held_changed()
                    self._ack(message)

    def _side_fault(self, message: mqtt.MQTTMessage) -> bool:
        """``message``, the oldest held, was just refused alone: if it carries no alert
        (:data:`SIDE_KINDS`) and the first held message that may (an event, a state, an
        availability) stores, the database works and the fault was ``message``'s own table
        (damaged, missing): that one is stored, and ``message`` let go (logged, acknowledged,
        counted rejected). True then; False when the database refuses that one too (it is
        down: both stay held, in order) or none is held.

        Held in order, a side message its table could not take stopped every message behind
        it, the falls too, for as long as the table stayed broken (and a retained one, the
        roster or a stage, comes with every reconnect). Let go, nothing is lost that the
        device does not send again: a retained message comes at the next connection, a
        session summary (not receipted) is sent again by the device, telemetry at its next
        interval; a command's reply is the one thing not sent again (the command reads as
        unanswered).

        A refusal for a lock (:attr:`StorageFault.locked`: another session's, past the wait)
        is no fault of its table: once the alert behind it has stored, the lock is over (on
        SQLite it is the whole file's), and ``message`` is tried once more, and stored (True).
        Before, it was let go and said failing as a refused write of its table until a message
        wrote that table again: a roster's, a changed roster, maybe months later. Only if it
        is refused again (a lock on its table alone, on PostgreSQL, or its table's own fault)
        is it let go."""
        kind = _kind_of(self.prefix, message.topic)
        if kind is None or kind not in SIDE_KINDS:
            return False
        fault = self.storage_fault
        tables: tuple[Table, ...] = getattr(self._local, "side_tables", ())  # just refused
        refusal: StorageFault | None = getattr(self._local, "refusal", None)
        waiting = next(
            (m for m in self._held if _kind_of(self.prefix, m.topic) not in SIDE_KINDS), None
        )
        if waiting is None or not self.handle(
            waiting.topic, bytes(waiting.payload), waiting.retain
        ):
            return False
        self._held.remove(waiting)
        self._ack(waiting)
        retried = refusal is not None and refusal.locked
        if retried:
            if self.handle(
                message.topic, bytes(message.payload), message.retain
            ):  # the lock is over
                self._held.popleft()
                self._held_changed()
                self._ack(message)
                return True
            fault = self.storage_fault or fault  # refused again: its words now
        log.error(
            "the database refuses a message on %s while it stores the alerts behind it, "
            "let go (its table: %s)",
            message.topic,
            fault,
        )
        # said where the banner and /healthz read it, not only in the log: what it carried is
        # missing from the pages until the device sends it again (before the counts wake
        # whoever waits on them)
        self._said_let_go(kind, fault or "refused", tables)
        if retried:  # its refusal said the database refuses: the alert before it stored
            self._works()
        self._held.popleft()
        self._count.rejected += 1
        self._count_messages(1)
        self._held_changed()
        self._ack(message)
        return True

    def _said_let_go(
        self,
        kind: TopicKind,
        fault: str,
        tables: tuple[Table, ...],
        refused_by: str | None = None,
    ) -> None:
        """A side message of ``kind`` whose handling uses ``tables`` was let go, refused with
        ``fault``: said failing where the banner and /healthz read it, as what a later
        success can clear. A kind that only reads (:data:`SIDE_READS`) failed a read. One that
        writes failed a write, unless a table of it cannot be read either (missing, locked,
        damaged): then that table's read is what failed (a write of a table that is not
        there says nothing of its writes), and a read of it once it is back clears it (the
        housekeeping look, a page). Before, a roster let go for its missing table was kept
        as a failed write: put back, the table read, and the treadmill's roster handed over
        again unchanged (no write), the walkers were said failing until a new roster or a
        restart. A table that reads and refuses writes stays a failed write, which no read
        clears. ``refused_by``: the treadmill whose values the write refused (a data error),
        whose write of those tables alone clears it (:meth:`_side_works`)."""
        part = SIDE_PARTS[kind]
        if kind in SIDE_READS:
            self.store.side_faults.failed(part, fault, Use.READ, tables)
            return
        unread = self.store.unreadable(tables or part.tables)
        if unread:
            self.store.side_faults.failed(part, fault, Use.READ, unread)
            return
        with self._values_lock:
            for table in tables or part.tables:
                if refused_by is not None:
                    self._values_refused.setdefault((part, table), set()).add(refused_by)
                else:
                    self._table_refused.add((part, table))
        self.store.side_faults.failed(part, fault, Use.WRITE, tables)

    def _values_as_stored(self, device_id: str) -> None:
        """``device_id``'s roster was handled unchanged (committed): the database holds the
        walkers it has, so a roster of it refused for its values before (:meth:`_said_let_go`)
        is no longer missing: its walker renamed back, or removed, at the treadmill. Before,
        that roster wrote no row, which clears nothing (:func:`_written`), and the walkers
        were said unstored until the roster next changed or the service restarted, while
        the database held exactly the treadmill's. Said working once no other treadmill's
        roster is refused for its values, and the table has no fault of its own (a write
        refused for no treadmill's values: a roster that writes nothing says nothing of it)."""
        part, table = Part.WALKERS, Table.DEVICE_WALKERS
        with self._values_lock:
            clear = self._values_no_longer_refused(device_id, [(part, table)])
        if clear:
            self.store.side_faults.works(part, Use.WRITE, (table,))

    def _values_no_longer_refused(
        self, device_id: str, tables: list[tuple[Part, Table]]
    ) -> list[tuple[Part, Table]]:
        """``device_id``'s values are refused no more in ``tables`` (its roster as stored, the
        treadmill gone): the tables of them that are now clear of every refusal — no other
        treadmill's values, and no fault of the table's own (:attr:`_table_refused`, which a
        treadmill's values going says nothing of). ``_values_lock`` held."""
        clear = []
        for key in tables:
            refused = self._values_refused.get(key)
            if refused is None or device_id not in refused:
                continue
            refused.discard(device_id)
            if refused:
                continue  # another treadmill's values are still not stored
            del self._values_refused[key]
            if key not in self._table_refused:
                clear.append(key)
        return clear

    def _alert_refused(self, topic: str, payload: bytes, fault: StorageFault) -> None:
        """An alert (``payload`` on ``topic``, an event) whose own values the database refused
        was let go, not receipted: said where the banner, ``/healthz`` and the health message
        read it, naming the device and the alert's kind and id, until that alert stores
        (:meth:`_refused_stored`); its resends, refused again, keep it said.

        Before, only the log said it: the device kept the fall and sent it again, refused
        again, and it was never shown or paged while every page said all was well. Said as a
        part the service goes on without (:attr:`Part.ALERTS`), not as a storing fault: the
        database takes every other alert, which are stored and paged (a storing fault says
        falls wait with the broker, and the next commit of anything clears it), and the
        banner, ``/healthz`` and the health message all say side parts already."""
        try:
            parsed = parse_topic(self.prefix, topic)
            message = decode(TopicKind.EVENT, payload)
        except (BadTopic, ProtocolError):  # it decoded to be refused: cannot happen
            return
        if parsed is None or not isinstance(message, EventMessage):
            return
        said = f"{parsed.device_id}'s {message.type} {message.id} refused: {fault}"
        self._refused_said(Part.ALERTS, f"{parsed.device_id} {message.id}", said)

    def _state_refused(
        self, kind: TopicKind, topic: str, payload: bytes, fault: StorageFault
    ) -> None:
        """A treadmill's state or availability (``kind``) whose own values the database
        refused was let go: said as :attr:`Part.STATES`, naming the treadmill, the kind and
        the value, until the next of that kind from that treadmill stores (it replaces the
        refused one: both say only the latest, retained, and the treadmill sends them anew
        as they change; a retained one refused again at a reconnect is said again).

        Before, only the log said it: the card showed the belt and whether the treadmill was
        online as they were before, an offline while walking opened no alert, and every page
        said all was well. Not a storing fault (the database takes everything else), as for
        an alert (:meth:`_alert_refused`)."""
        try:
            parsed = parse_topic(self.prefix, topic)
            value: Availability | msgspec.Struct = (
                decode_availability(payload)
                if kind is TopicKind.AVAILABILITY
                else decode(kind, payload)
            )
        except (BadTopic, ProtocolError):  # it decoded to be refused: cannot happen
            return
        if parsed is None:
            return
        what = value.value if isinstance(value, Availability) else getattr(value, "state", "")
        said = f"{parsed.device_id}'s {kind.value} {what} refused: {fault}"
        self._refused_said(Part.STATES, f"{parsed.device_id} {kind.value}", said)

    def _state_stored(self, device_id: str, kind: TopicKind) -> None:
        """A state or availability (``kind``) of ``device_id`` committed: one of that kind
        refused before is replaced, no longer said (:meth:`_state_refused`)."""
        if self._unstored:  # a glance: cleared under the lock
            key = f"{device_id} {kind.value}"
            self._after_commit(lambda: self._refused_stored(Part.STATES, key))

    def _removed(self, device_id: str) -> None:
        """``device_id``'s retained availability was cleared: the treadmill was taken off the
        broker (``retroguard ha remove --all``, docs/mqtt.md "Removing the device"). What was
        refused for its values and said until that treadmill's own next message replaced it
        (an alert it sends again, its next state, its next roster) is no longer said: none
        will come. Before, the banner, ``/healthz`` and the health message said it until the
        service restarted."""
        log.info("%s's retained availability was cleared: taken off the broker", device_id)
        mine = f"{device_id} "
        with self._unstored_lock:
            keys = [key for key in self._unstored if key[1].startswith(mine)]
        for part, key in keys:
            self._refused_stored(part, key)
        if self._values_refused:
            with self._values_lock:
                clear = self._values_no_longer_refused(device_id, list(self._values_refused))
            gone: dict[Part, list[Table]] = {}
            for part, table in clear:
                gone.setdefault(part, []).append(table)
            for part, tables in gone.items():
                self.store.side_faults.works(part, Use.WRITE, tables)

    def _refused_said(self, part: Part, key: str, said: str) -> None:
        """``key`` (:attr:`_unstored`) was refused for its values, let go: ``part`` says the
        first of its kind still refused."""
        faults = self.store.side_faults
        with self._unstored_lock:
            self._unstored.setdefault((part, key), (said, faults.clock()))
            first = next(words for (p, _), (words, _) in self._unstored.items() if p is part)
            faults.failed(part, first, Use.WRITE, part.tables)

    def _refused_stored(self, part: Part, key: str) -> None:
        """``key`` of ``part``, refused for its values before, committed (an alert: itself,
        its resend once the database takes it; a state: the next of its kind): no longer
        said; another still refused is, in its own words and since it was refused, never
        said stored in between (the health message kept "ok" for its interval). An alert is
        said by its id: before, any alert of the treadmill that stored cleared it, and a
        later fall made the banner, ``/healthz`` and the health message say all was well
        while the refused one was still unstored, until its next resend was refused again."""
        faults = self.store.side_faults
        with self._unstored_lock:
            if self._unstored.pop((part, key), None) is None:
                return
            left = next((kept for (p, _), kept in self._unstored.items() if p is part), None)
            if left is None:
                faults.works(part, Use.WRITE, part.tables)
            else:
                said, since = left
                faults.said_instead(part, said, since, Use.WRITE, part.tables)

    def look_at_refused_alerts(self) -> None:
        """Each alert said refused for its values (:meth:`_alert_refused`) that the database
        holds now is no longer said (any thread but ingest's: the service's housekeeping, while
        a part fails). Instances sharing the devices (``shared_group``) share the events'
        stream: the device's copy once the database took it went to another instance, which
        stored and receipted it, and nothing sent it here again. Before, this instance said a
        fall unstored that was stored, on every page and its health message, until it
        restarted. A database that cannot be read now leaves them said, for the next look."""
        with self._unstored_lock:  # an alert's key is its treadmill's and its own id
            said = {k.partition(" ")[2]: k for part, k in self._unstored if part is Part.ALERTS}
        if not said:
            return
        try:
            stored = self.store.events_by_id(list(said))
        except StorageFault:
            return
        for event_id in stored:
            self._refused_stored(Part.ALERTS, said[event_id])

    def _ack(self, message: mqtt.MQTTMessage) -> None:
        """Acknowledge ``message`` to the broker (handled: stored, or let go)."""
        if self.client is not None:
            self.client.ack(message.mid, message.qos)

    def _held_changed(self) -> None:
        """Wake :meth:`wait_for`'s callers: :attr:`held` changes after the commit or refusal
        that notified them (a wait for ``held == 0`` woken by the last message's commit, just
        before it left the queue, otherwise slept on until something else arrived)."""
        with self._cond:
            self._cond.notify_all()

    @property
    def ingest_thread(self) -> threading.Thread | None:
        """The thread that stores what arrives (None before :meth:`start` and after
        :meth:`stop`)."""
        return self._ingest_thread

    @property
    def retry_thread(self) -> threading.Thread | None:
        """The thread that tries held messages again (None before :meth:`start` and after
        :meth:`stop`): dead, what the database refused is never stored, nor paged."""
        return self._retry_thread

    @property
    def renewal_thread(self) -> threading.Thread | None:
        """The thread that says our ``online`` again before it expires (None before
        :meth:`start` and after :meth:`stop`): dead, every treadmill reads nobody paged within
        the expiry, while this instance stores and pages."""
        renewal = self._renewal
        return None if renewal is None else renewal.thread

    @property
    def receipts_thread(self) -> threading.Thread | None:
        """The thread that sends receipts once what they vouch for is on disk (None before
        :meth:`start` and after :meth:`stop`): dead, no device hears of an event stored."""
        durable = self._durable_receipts
        return None if durable is None else durable.thread

    @property
    def held(self) -> int:
        """Messages waiting for the database (not acknowledged to the broker)."""
        return len(self._held)

    def send_ack(
        self,
        device_id: str,
        event_id: str | None,
        by: str,
        *,
        incident: str | None = None,
        via: str | None = None,
        request_id: str | None = None,
    ) -> str:
        """Publish the device's ``ack`` command (QoS 1); return the request id (a new one
        unless given)."""
        request_id = request_id or new_request_id()
        command = Ack(event_id or LATEST, by[:64] or "caregiver", incident, via)
        if self.client is None:
            raise RuntimeError("not connected to the broker")
        self.client.publish(
            Topics(self.prefix, device_id).command(CommandName.ACK),
            encode_command(command, request_id),
            qos=1,
        )
        return request_id


class _MessageFailed(Exception):
    """A message's handling failed in a batch stored without savepoints: the batch is rolled
    back and stored again without it (:meth:`Ingestor.handle_batch`)."""

    def __init__(self, index: int) -> None:
        super().__init__(f"message {index} of the batch failed")
        self.index = index


@dataclass(frozen=True, slots=True)
class _UndoPoint:
    """What a batch had gathered before one of its messages (:meth:`Ingestor._undo_point`)."""

    later: int
    """After-commit actions."""
    receipts: dict[str, int]
    """Ids to receipt, by device."""
    counters: _Counts
    recordings: int
    """Recordings to store at the batch's end."""


@dataclass(frozen=True, slots=True)
class _Recording:
    """A window event's recording, to store beside it (:meth:`Ingestor._store_recordings`)."""

    trip_id: str
    """The trip it is about."""
    blob: bytes
    """The :class:`core.protocol.messages.ImuRecording`, as msgpack."""
    event: NewEvent
    """The window event that carried it (its stored payload, without it)."""


@dataclass(frozen=True, slots=True)
class _Received:
    """A message decoded from its topic and payload, not yet stored."""

    topic: str
    device_id: str
    body: Availability | msgspec.Struct
    payload: bytes
    now: float
    """When it was received (the clock's time)."""
    event: NewEvent | None
    """An event message's row (a batch inserts its events before handling them)."""
    retained: bool = False
    """A copy the broker kept (a retained state, "offline", progress...), handed over at a
    subscription: what the treadmill said before, not a sign of life now (its "last seen"
    stays). Its retained "online" is, though: the broker keeps it only while the treadmill's
    connection is up."""


def _heard(received: _Received) -> bool:
    """Whether ``received`` says its treadmill is there now (its "last seen" renewed): not the
    broker's "offline" (its will, or that copied), nor a copy of another of its words."""
    if received.body is Availability.OFFLINE:
        return False
    return not received.retained or received.body is Availability.ONLINE


def _new_event(device_id: str, message: EventMessage, payload: bytes) -> NewEvent:
    """The row an event message is stored as. The topic names the device (the broker's ACL
    vouches for it), not the body."""
    stored_payload = payload.decode("utf-8", "replace")
    if message.recording is not None:
        # stored once, compactly, beside the trip it is about; not as base64 in the payload
        stored_payload = encode(msgspec.structs.replace(message, recording=None))
    return NewEvent(
        id=message.id,
        device_id=device_id,
        seq=message.seq,
        type=message.type.value,
        severity=message.severity.value,
        state=message.state.value,
        reason=message.reason,
        wall_time=message.wall_time,
        figures=dict(message.figures),
        has_window=message.imu_window is not None,
        payload=stored_payload,
        incident=message.incident,
        wall_unsynced=message.wall_unsynced,
    )


def subscriptions(prefix: str, shared_group: str = "") -> list[str]:
    """The topic filters the service subscribes to, one per consumed kind: with a
    ``shared_group``, through MQTT 5 shared subscriptions (each message to one instance of the
    group), save the retained kinds, which a broker sends only to plain subscriptions."""
    return [
        shared(shared_group, all_devices(prefix, kind))
        if shared_group and kind not in RETAINED_KINDS
        else all_devices(prefix, kind)
        for kind in CONSUMED_KINDS
    ]


def _stage_weeks(stage: StageMessage, known: Mapping[str, int]) -> dict[str, int]:
    """The sessions prescribed to ``stage``'s walker in the weeks it settles, by the treadmill's
    own rule (:func:`core.progress.prescribed_weeks`, which ``retroguard sessions`` and the
    device's progress message count with): a stage whose newest change came this week (a
    schedule assigned, a stage advanced, stepped back) counts this week against the lesser of
    its count and the one in force before it (``known``, as stored: :func:`prescribed_in`),
    and the next week against its own; else this week against its count. Before, this week
    took the stage's count as it was: a schedule of 4 a week assigned on a Wednesday over 2
    made the week "0 of 4" on the dashboard and "0 of 2" on the treadmill."""
    count = stage.sessions_per_week
    try:
        zone = named_zone(stage.zone) if stage.zone else dt.UTC
        changed = week_of(utc_of(stage.changed_wall), zone)
    except ValueError:  # a zone this machine does not know: the stage's count, as before
        return {stage.week: count}
    if changed != stage.week:
        return {stage.week: count}
    year, number, _ = (week_start(stage.week) + dt.timedelta(weeks=1)).isocalendar()
    return {
        stage.week: min(prescribed_in(stage.week, known), count),
        f"{year:04d}-W{number:02d}": count,
    }


def _known_zone(name: str) -> bool:
    """True when this machine's time-zone data knows ``name``: one it does not (a newer zone
    than its tzdata) is not stored, and the pages count in the service's zone, as before."""
    try:
        named_zone(name)
    except ValueError:
        log.warning(
            "a device counts its weeks in %r, a time zone this machine does not know; "
            "its walkers' weeks are counted in [server] timezone",
            name,
        )
        return False
    return True


def progress_subscription(prefix: str) -> str:
    """The devices' retained progress messages, for the sessions a week each prescribes: a
    plain subscription on every instance (a broker sends retained messages to no shared one;
    every instance writes the same row)."""
    return all_devices(prefix, TopicKind.PROGRESS)


def incident_subscription(prefix: str) -> str:
    """The devices' retained incident messages, to send a close a device missed again: a
    plain subscription on every instance, like the progress (a repeat is answered
    ``already`` by the device)."""
    return all_devices(prefix, TopicKind.INCIDENT)


def walkers_subscription(prefix: str) -> str:
    """The devices' retained walker profiles, for the plan page: a plain subscription on every
    instance, like the progress (every instance writes the same rows)."""
    return all_devices(prefix, TopicKind.WALKERS)


def stage_subscription(prefix: str) -> str:
    """Every walker's retained stage of every device (``<prefix>/+/stage/+``): a plain
    subscription on every instance, like the progress (every instance writes the same row)."""
    return all_devices(prefix, TopicKind.STAGE)


def _iso_now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _as_stored(event: NewEvent, now: float) -> StoredEvent:
    """A just-recorded event as the store would return it (``record_event`` stores ``now`` as
    its arrival): what the live feed sends, without reading the row back."""
    return StoredEvent(
        id=event.id,
        device_id=event.device_id,
        seq=event.seq,
        type=event.type,
        severity=event.severity,
        state=event.state,
        reason=event.reason,
        wall_time=event.wall_time,
        received_at=now,
        figures=event.figures,
        has_window=event.has_window,
        acked_by=None,
        acked_at=None,
        ack_confirmed=False,
        incident=event.incident,
        wall_unsynced=event.wall_unsynced,
    )
