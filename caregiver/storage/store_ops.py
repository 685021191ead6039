"""The store's named operations that are each their own transaction: what the service calls
on :class:`caregiver.storage.store.Store` directly (``store.device(...)``), each handed to the
:class:`caregiver.storage.store.Transaction` operation of the same name.

A mixin holding no state of its own: :class:`Store` (the connection, its transactions, batches
and reads) is made of it, and its SQL is in the transaction's parts (``tx_*.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from caregiver.storage.records import (
    Account,
    Alert,
    ClockFrame,
    Device,
    Incident,
    LeaseSeen,
    LoginSession,
    PendingNotification,
    Role,
    SelfTestOutcome,
    SelfTestRecord,
    SentCommand,
    StoredEvent,
    WalkOutcome,
    WalkSession,
)
from core.protocol.messages import FaultSaid, StageMessage, WornSaid
from core.protocol.walker import DEFAULT_WALKER

if TYPE_CHECKING:
    from caregiver.config import Contact
    from caregiver.storage.store import Transaction

_T = TypeVar("_T")


class StoreOperations:
    """The named operations :class:`Store` offers directly, each its own transaction."""

    if TYPE_CHECKING:
        # Store's own: how each operation gets its transaction

        def _read(self, read: Callable[[Transaction], _T]) -> _T: ...

        def _statement(self) -> AbstractContextManager[Transaction]: ...

        def transaction(self) -> AbstractContextManager[Transaction]: ...

    # ------------------------------------------------------------ devices

    def set_state(
        self,
        device_id: str,
        state: str,
        reason: str,
        wall_time: str,
        now: float | None,
        worn: WornSaid | None = None,
        fault: FaultSaid | None = None,
    ) -> None:
        with self._statement() as ops:
            ops.set_state(device_id, state, reason, wall_time, now, worn, fault)

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

    def confirm_ack(self, device_id: str, request_id: str) -> list[str]:
        """The device confirmed the ack command ``request_id``: the incidents it confirmed."""
        with self._statement() as ops:
            return ops.confirm_ack(device_id, request_id)

    # ----------------------------------------------------------- incidents

    def incident(self, incident_id: str) -> Incident | None:
        return self._read(lambda ops: ops.incident(incident_id))

    def incidents_by_id(
        self, incident_ids: Collection[str], listed: bool = False
    ) -> dict[str, Incident]:
        """These incidents (those stored), by id, read at once (see :meth:`events_by_id`);
        ``listed``: with whether the treadmill has each one's close, as "Recent alerts" says."""
        return self._read(lambda ops: ops.incidents_by_id(incident_ids, listed))

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

    def recording_unstored(self, event: StoredEvent) -> bool:
        """Whether the recording :meth:`recording_for` would show with ``event`` was sent and
        could not be stored (its table refused it: the alert was stored without it)."""
        return self._read(lambda ops: ops.recordings_unstored(event))

    # ----------------------------------------------------- guided sessions

    def record_walk_session(self, session: WalkSession, payload: str, now: float) -> WalkOutcome:
        with self.transaction() as tx:
            return tx.record_walk_session(session, payload, now)

    def walk_session_received(self, session_id: str) -> float | None:
        """When the session's summary first reached this service (its own clock)."""
        return self._read(lambda ops: ops.walk_session_received(session_id))

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

    def set_device_zone(self, device_id: str, zone: str, now: float | None) -> bool:
        """Store the IANA zone the device counts its weeks in (its retained ``progress``
        message's ``zone``); True when it changed. ``now`` None: the broker's retained copy,
        which keeps the time the device was last heard."""
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

    def sent_commands(
        self, device_id: str, limit: int = 20, walker: str | None = None
    ) -> list[SentCommand]:
        """The plan and progression commands sent to the device, newest first; ``walker``:
        the newest ``limit`` sent for them (and any sent before commands kept their walker),
        not theirs among the newest ``limit`` sent for any walker."""
        with self._statement() as ops:
            return ops.sent_commands(device_id, limit, walker)

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
        self,
        device_id: str,
        week: str,
        sessions: int,
        walker: str = DEFAULT_WALKER.id,
        *,
        always: bool = False,
    ) -> bool:
        with self.transaction() as tx:
            return tx.set_prescribed(device_id, week, sessions, walker, always=always)

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
