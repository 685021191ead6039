"""The courier: the monitor's storage and network, in a process of its own.

Why a separate process: in CPython a thread that parses JSON, hashes,
compresses or runs paho's network loop holds the GIL the real-time loop
needs; a flood of MQTT commands once delayed the relay heartbeat by up to
155 ms. In its own process the courier can be as busy as the network makes
it and the loop keeps its own interpreter (and, on a Pi, its own core and a
real-time scheduling class). The loop hands over events, state, health and
session records through :mod:`firmware.link`; the courier stores each event
(SQLite, WAL, synchronous=FULL), answers that it is on disk, and publishes
it through the MQTT outbox.

Threads here: the main thread reads the loop's messages and applies them in
order, what it read at once (a drain) with its events and session records in one
transaction (a trip's event and the session record counting it: both or neither); the
MQTT reporter has its own (paho's and its publisher); a small heartbeat thread tells the
loop once a second that the courier is alive, and tries the disk again while records are
kept in memory.

Storage faults never stop the courier (:mod:`firmware.storage.fallback`): a
damaged database is moved aside and a new one started; a disk that refuses
writes sends records to memory, where they are still published, and the
loop is told (it refuses to arm a new walk meanwhile) but not that they are
persisted, so it keeps them until they reach the disk.

Runs: each monitor run is recorded at its hello and marked clean at its
goodbye (:mod:`firmware.storage.runs`); a run that ended otherwise is
reported once, by this courier when the loop vanishes, or by the next run's.

Retention (:mod:`firmware.storage.retention`): the heartbeat thread deletes
what the policy no longer keeps, a little at a time, and gives the space
back to the card; a file from before incremental vacuum is converted once,
at start, before anything else uses it (arming waits meanwhile).
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from core.protocol.events import Event, EventType
from core.protocol.messages import DeviceHealth, SessionRecord
from core.protocol.payloads import wall_now
from core.protocol.walker import WalkerInvalid, is_walker_id
from core.wallclock import SaidWallClock, SystemWallClock, WallClock, WallStamper
from core.zones import system_zone
from firmware.config import Config
from firmware.courier.channel import SEND_TIMEOUT_S, LoopChannel
from firmware.link import messages
from firmware.session.record import SessionArchive
from firmware.session.summary import figures_line, week_line
from firmware.sinks import EventSink, LogSink, StoreSink, StoringSink
from firmware.storage import incidents
from firmware.storage.damage import MovedAside
from firmware.storage.events import CHOSEN_WALKER, EventStore
from firmware.storage.fallback import FallbackDatabase
from firmware.storage.faults import trouble
from firmware.storage.plans import current_plans, current_revision
from firmware.storage.progressions import (
    advance_if_done,
    prescribed_by_week,
    progression_revision,
)
from firmware.storage.retention import (
    Retention,
    RetentionPolicy,
    enable_incremental_vacuum,
    incremental_vacuum_enabled,
)
from firmware.storage.runs import begin_run, end_run, mark_reported, unreported_unclean_runs
from firmware.storage.sessions import close_left_running
from firmware.storage.status import sessions_started_since
from firmware.storage.walkers import roster, roster_revision, select_walker

if TYPE_CHECKING:
    from firmware.mqtt import MqttReporter

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
PROBE_S = 10.0
"""How often the courier proves the disk still takes a write when nothing else has written."""
DRAIN_TIMEOUT_S = 2.0
"""On the way out, how long queued messages may take to reach the broker; the rest stay
in the outbox for the next start."""
PERSISTED_BATCH = 256
"""Ids per :class:`~firmware.link.messages.Persisted`: the loop forgets them in small bites."""


_STORED = (messages.EventRecord, messages.SessionReport)
"""What the courier writes for the loop: a drain's are committed in one transaction."""
_TOGETHER = (*_STORED, messages.StateReport, messages.HealthReport, messages.SilenceAnswered)
"""What may sit between them in a drain without closing the transaction (no writes of its
own: applied after the commit, in order)."""


@dataclass(frozen=True, slots=True)
class _Stored:
    """What one record's writes in a drain's transaction came to."""

    key: str
    ok: bool
    queued: bool = False
    """A session summary was queued with it (the publisher is woken after the commit)."""


def _readable(wall: str) -> str:
    """``2026-12-01T21:00:03.120+00:00`` as ``2026-12-01 21:00:03 UTC`` for sentences."""
    return f"{wall[:19].replace('T', ' ')} UTC" if len(wall) >= 19 else wall


class Courier:
    """Applies the loop's messages to storage and the broker, and answers the loop.

    It hears from its :class:`~firmware.storage.fallback.FallbackDatabase`
    (a :class:`~firmware.storage.fallback.StorageListener`) when the disk
    stops or starts taking writes again, and says so to the loop
    (:class:`~firmware.link.messages.StorageHealth`, which refuses arming
    meanwhile), to caregivers (a FAULT event, telemetry ``storage_ok``) and
    to the log.
    """

    def __init__(
        self,
        config: Config,
        channel: LoopChannel,
        *,
        clock: Callable[[], float] = time.monotonic,
        monitor_pid: int = 0,
        monitor_started: str = "",
        wall_clock: WallClock | None = None,
    ) -> None:
        self.config = config
        self.channel = channel
        self.clock = clock
        self.wall_clock: WallClock = wall_clock if wall_clock is not None else SystemWallClock()
        """The wall clock the retained status is stamped with (default the host's); the
        heartbeat follows whether it is synchronised (:meth:`follow_wall_clock`)."""
        self._wall_synced: bool | None = None
        """What the heartbeat last read of it (None: not yet)."""
        self.health = DeviceHealth()
        self.checks: dict[str, dict[str, object]] = {}
        self.clean_stop = False
        self.await_receipts_s = 0.0
        """How long to wait on the way out for a consumer's receipts (the goodbye says)."""
        self.state = "STARTING"
        """The loop's last reported safety state (for the events the courier itself raises)."""
        self.session_walker: str | None = None
        """The walker of the guided session under way, as the loop's session records say (None:
        none under way): the events the courier itself raises (a test alarm, a storage or
        crash fault) name them, as the loop's link names them on its own events, and not the
        walker chosen meanwhile for the next session."""
        self.run_name = (str(monitor_pid), monitor_started) if monitor_started else None
        """(monitor pid, its start time): the run this courier serves; None when the monitor
        did not say when it started (then runs are not recorded)."""
        self.reporter: MqttReporter | None = None
        self.db = FallbackDatabase(config.storage.database, listener=self)
        self.opened = self.db.open()
        self.store = EventStore(self.db)
        persist: StoringSink = StoreSink(self.store)
        if config.mqtt.host:
            from firmware.mqtt import MqttReporter

            self.reporter = MqttReporter(
                config.mqtt,
                device_id=config.device.id,
                device_name=config.device.name,
                database=self.db,
                on_silence=lambda silence, request_id: self.channel.send(
                    messages.SilenceBuzzer(request_id, silence.event_id, silence.incident)
                ),
                on_test_alarm=self._test_alarm,
                on_plan=self._plan_changed,
                on_incident_closed=lambda incident: self.channel.send(
                    messages.IncidentClosed(incident)
                ),
                wall_clock=self.wall_clock,
            )
            self.reporter.set_providers(telemetry=self._telemetry, self_test=self._self_test)
            persist = self.reporter.sink  # stores and queues in one transaction
        self._storing = persist
        self._sinks: list[EventSink] = [LogSink()]
        """After the storing sink, in order."""
        storage = config.storage
        self.retention = Retention(
            self.db,
            RetentionPolicy(
                keep_telemetry_days=storage.keep_telemetry_days,
                keep_windows_days=storage.keep_windows_days,
                keep_events_days=storage.keep_events_days,
            ),
            paused=lambda: self.db.in_memory,
        )
        self.sessions = SessionArchive(
            self.db,
            summary_topic=self.reporter.topics.session if self.reporter is not None else None,
            on_queued=self.reporter.wake if self.reporter is not None else None,
        )
        self._plan_lock = threading.Lock()
        self._plan_sent = 0
        """The plan revision the loop was last told (0: none yet, or none stored)."""
        self._roster_sent = -1
        """The walker roster's revision the loop was last told (-1: none yet)."""
        self._refused_said = -1
        """The roster revision whose refused rows were logged: once a change, not at each
        look while the link to the loop is down, nor at each forced re-send."""
        self._progressions_seen = -1
        """The newest progression row the publisher was woken for (-1: none yet)."""
        self._choices = 0
        """Walker choices from the button stored (or refused) by this courier: the roster says
        how many, so the loop can tell an older selection from its latest choice."""
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(
            target=self._beat, name="retroguard-courier-heartbeat", daemon=True
        )

    # ---------------------------------------------------------------- running

    def run(self) -> None:
        """Serve until the loop closes the link; then drain and close."""
        self._enable_incremental_vacuum()
        if self.reporter is not None:
            self.reporter.start()
        self._carry_on_open_incident()  # before the storage report a test waits for
        # The plans and the walker profiles before the storage report too: the loop arms only
        # once storage has been reported, and starts a session only once it knows whose it is
        # (the roster), so a walker who arms as soon as the monitor allows finds both there.
        self.forward_plan()
        self.forward_roster()  # after the plans: the loop prepares the prompts of both at once
        self._report_opening()
        self._begin_run()
        self._heartbeat.start()
        try:
            for drain in self.channel.drains():
                self.apply_drain(drain)
        finally:
            self.finish()

    def apply_drain(self, drain: Sequence[messages.ToCourier]) -> None:
        """Apply what the courier read at once from the link, in order: its events and session
        records (and the state and health reports between them) as one transaction.

        Why: a trip hands the session's record, the trip counted, to the courier right
        behind the trip's event, and the loop sends an iteration's messages in one piece; a
        commit each left a power cut between the two keeping the event and losing the trip
        from the session's figures. Nothing waits for what has not arrived: a drain is what
        was there when the courier looked (docs/sessions.md, "A trip in the last moments").
        A message that does its own writes (a walker chosen, the goodbye) closes the run
        before it, so the database sees everything in the loop's order.
        """
        together: list[messages.ToCourier] = []
        for message in drain:
            if isinstance(message, _TOGETHER):
                together.append(message)
                continue
            self._apply_together(together)
            together = []
            self.apply(message)
        self._apply_together(together)

    def apply(self, message: messages.ToCourier) -> None:
        match message:
            case messages.EventRecord(event=event):
                self._persist(event, self._walker_of(message))
            case messages.StateReport(state=state, reason=reason) as report:
                self.state = state
                if self.reporter is not None:
                    # the loop's stamp: when the state changed, and whether its clock was set
                    self.reporter.publish_state(
                        state,
                        reason,
                        report.wall_time,
                        wall_unsynced=report.wall_unsynced,
                        worn=report.worn,
                        fault=report.fault,
                    )
            case messages.HealthReport(health=health, checks=checks):
                self.health = health
                self.checks = {n: {"ok": c.ok, "detail": c.detail} for n, c in checks.items()}
                self._alive()  # an answer per report: the loop hears us on its own clock
            case messages.SessionReport(record=record, final=final):
                self._session_saved(record, final, self.sessions.save(record, final))
            case messages.Goodbye(reason=reason, await_receipts_s=await_receipts_s):
                log.info("monitor stopping: %s", reason)
                self.clean_stop = True
                self.await_receipts_s = max(0.0, await_receipts_s)
                self._end_run(clean=True)
            case messages.WalkerChosen(walker=walker):
                self._walker_chosen(walker)
            case messages.SilenceAnswered(request_id=request_id, result=result):
                if self.reporter is not None:  # the silence's reply: what the loop did
                    self.reporter.answer_silence(request_id, result)
            case messages.Hello():
                log.warning("a second hello from the monitor ignored")

    @staticmethod
    def _walker_of(message: messages.EventRecord) -> str | None:
        walker = message.walker
        if walker is not None and not is_walker_id(walker):
            log.warning("event %s: walker %r is not a walker id; ignored", message.event.id, walker)
            return None
        return walker

    def _session_saved(self, record: SessionRecord, final: bool, saved: bool) -> None:
        """After a session record was stored (``saved``) or not: whose session is under way,
        the retained progress, and at a final record the loop's confirmation, the progression
        and the journal's summary line."""
        if not record.amended:  # an amendment is of a session that ended before
            self.session_walker = None if record.ended else record.walker.id
            if self.reporter is not None:  # the progress is the session's walker's
                self.reporter.session_walker_is(self.session_walker)
        if saved and self.reporter is not None:
            self.reporter.sessions_changed()  # the retained progress follows at once
        if saved and final:
            self._confirm([messages.session_key(record)])
            if not record.amended:  # its end moved the progression on already
                self._advance_progression(record.walker.id)
                self._log_session_end(record)

    def _apply_together(self, run: Sequence[messages.ToCourier]) -> None:
        """``run``'s events and session records committed in one transaction, then every
        message's follow-up in order; one such record alone goes the usual way. Each record
        is written inside a savepoint: one that fails (not for the disk's sake: a constraint,
        a bug) is rolled back alone, logged and not confirmed, as it would have been on its
        own. A disk that fails moves the whole drain to memory (its records held there, not
        confirmed); should even that fail, every message is applied on its own after all."""
        if sum(isinstance(m, _STORED) for m in run) < 2:
            for message in run:
                self.apply(message)
            return
        try:
            stored = self.db.write(
                lambda conn: self._store_together(conn, run),
                keys=lambda done: [d.key for d in done.values() if d.ok],
            )
        except Exception:
            log.exception("storage: %d records could not be stored together; one by one", len(run))
            for message in run:
                self.apply(message)
            return
        for n, message in enumerate(run):
            match message:
                case messages.EventRecord(event=event):
                    if stored[n].ok:
                        self._storing.stored(event)
                        self._after_stored(event)
                case messages.SessionReport(record=record, final=final):
                    if stored[n].ok:
                        self.sessions.written(stored[n].queued)
                    self._session_saved(record, final, stored[n].ok)
                case _:
                    self.apply(message)

    def _store_together(
        self, conn: sqlite3.Connection, run: Sequence[messages.ToCourier]
    ) -> dict[int, _Stored]:
        """:meth:`_apply_together`'s transaction (run again in memory if the file fails it):
        by position in ``run``, what each record's writes came to."""
        done: dict[int, _Stored] = {}
        for n, message in enumerate(run):
            if not isinstance(message, _STORED):
                continue
            conn.execute("SAVEPOINT hand_over")
            try:
                if isinstance(message, messages.EventRecord):
                    key = message.event.id
                    self._storing.store_in(conn, message.event, self._walker_of(message))
                    queued = False
                else:
                    key = messages.session_key(message.record)
                    queued = self.sessions.write(conn, message.record, message.final)
            except Exception as exc:
                if trouble(exc) is not None or not conn.in_transaction:
                    raise  # the disk's, or SQLite rolled everything back: the drain fails
                conn.execute("ROLLBACK TO hand_over")
                conn.execute("RELEASE hand_over")
                if isinstance(message, messages.EventRecord):
                    log.exception("storing event %s failed", message.event.id)
                else:
                    log.exception("session %s could not be stored", message.record.id)
                done[n] = _Stored(key, ok=False)
                continue
            conn.execute("RELEASE hand_over")
            done[n] = _Stored(key, ok=True, queued=queued)
        return done

    def _persist(self, event: Event, walker: str | None = None) -> None:
        """Store ``event`` (``walker``: whose session is under way), then the other sinks."""
        try:
            self._storing.handle(event, walker)
        except Exception:
            log.exception("storing event %s failed", event.id)
            return  # not stored: the loop keeps it and sends it again
        self._after_stored(event)

    def _after_stored(self, event: Event) -> None:
        """``event`` is committed: the other sinks, then the loop hears it is on disk."""
        for sink in self._sinks:
            try:
                sink.handle(event)
            except Exception:
                log.exception("event sink %s failed for event %s", type(sink).__name__, event.id)
        self._confirm([event.id])

    def _confirm(self, ids: Sequence[str]) -> None:
        """Tell the loop these records are on disk; one held in memory only is not (yet)."""
        on_disk = [i for i in ids if not self.db.holds_in_memory(i)]
        for start in range(0, len(on_disk), PERSISTED_BATCH):
            self.channel.send(messages.Persisted(on_disk[start : start + PERSISTED_BATCH]))

    def _telemetry(self) -> DeviceHealth:
        return msgspec.structs.replace(self.health, storage_ok=not self.db.in_memory)

    def _test_alarm(self, by: str) -> None:
        """On the reporter's thread: chirp on the device, and a ``test`` event to everyone."""
        self.channel.send(messages.Chirp())
        self._persist(
            Event.now(
                EventType.TEST,
                self.config.device.id,
                self.clock(),
                self.state,
                f"test alarm sent by {by}: if this reached you, alerts from this treadmill do",
                wall=WallStamper(self.wall_clock),
            ),
            self._walker_now(),
        )

    def _walker_now(self) -> str:
        """Whose an event the courier raises itself is: the session's walker while one is
        under way, else the one chosen for the next (the default walker without a choice),
        read in the event's own transaction (:data:`CHOSEN_WALKER`; before: a copy refreshed
        on the roster's heartbeat, a second behind a selection)."""
        walker = self.session_walker
        return walker if walker is not None else CHOSEN_WALKER

    def _advance_progression(self, walker: str) -> None:
        """A session ended: the walker's progression moves on if its stage is done."""
        try:
            state = self.db.write(
                lambda conn: advance_if_done(conn, system_zone(), wall_now(), walker=walker)
            )
        except Exception:
            log.exception("storage: the progression could not be advanced")
            return
        if state is not None:
            log.info(
                "progression %r advanced to stage %d of %d: %s from the next session",
                state.progression.name,
                state.stage + 1,
                len(state.progression.stages),
                state.progression.stages[state.stage].plan.name,
            )
            self._plan_changed()

    def _log_session_end(self, record: SessionRecord) -> None:
        """A session ended, however it ended (the plan's end, a long press, the CLI): its
        figures and its walker's week, in the journal, in the words ``retroguard session stop``
        prints (:mod:`firmware.session.summary`) — read after the progression moved on, so the
        week is counted as ``retroguard sessions`` will count it."""
        zone = system_zone()
        walker = record.walker.id

        def read(conn: sqlite3.Connection) -> tuple[list[SessionRecord], dict[str, int]]:
            stored = sessions_started_since(conn, record.device_id, "", walker)
            return stored, prescribed_by_week(conn, zone, walker)

        try:
            stored, prescribed = self.db.read(read)
            week = week_line(record, stored, prescribed, zone)
        except Exception:
            log.exception("session %s: its week could not be read for the summary", record.id)
            week = "(the week's figures could not be read)"
        log.info(
            "session %s of %s ended. %s %s",
            record.id,
            record.walker.name,
            figures_line(record),
            week,
        )

    def _plan_changed(self) -> None:
        """A plan or progression was stored: the loop hears of it, and the retained progress
        (whose prescribed sessions a progression sets) is computed again."""
        self.forward_plan()
        if self.reporter is not None:
            self.reporter.sessions_changed()

    def forward_plan(self) -> None:
        """Tell the loop the plan in force when it changed (any thread; cheap when it did not).

        The loop uses it from the next session start; a session under way keeps its plan.
        """
        with self._plan_lock:
            try:
                revision = self.db.read(current_revision)
                if revision == self._plan_sent:
                    return
                assignments = self.db.read(current_plans)
            except Exception:
                log.exception("storage: the assigned plan could not be read")
                return
            sent = all(
                self.channel.send(messages.PlanAssigned(a.revision, a.plan, a.by, walker))
                for walker, a in assignments.items()
                if a.revision > self._plan_sent
            )
            if sent:
                self._plan_sent = revision

    def forward_roster(self, *, force: bool = False) -> None:
        """Tell the loop the walker profiles and the one chosen when they changed (any
        thread; cheap when they did not). ``retroguard walker`` writes the database directly."""
        with self._plan_lock:
            try:
                if self.db.read(roster_revision) == self._roster_sent and not force:
                    return
                current = self.db.read(roster)
            except Exception:
                log.exception("storage: the walker profiles could not be read")
                return
            if current.revision != self._refused_said:
                self._refused_said = current.revision
                for refused in current.refused:
                    log.error("storage: %s", refused)
            message = messages.WalkerRoster(
                current.revision, list(current.walkers), current.selected, self._choices
            )
            if self.channel.send(message):
                self._roster_sent = current.revision
        if self.reporter is not None:
            self.reporter.sessions_changed()  # the retained progress is the chosen walker's
            self.reporter.walkers_changed()  # and the retained walkers, if one was added

    def follow_progressions(self) -> None:
        """Wake the publisher when a progression row was stored since the last look (the
        heartbeat's thread; cheap when none was: the newest row's id). ``retroguard plan
        progression`` writes the database directly, from another process, so a hold or a
        release typed at the device reached the walker's retained ``stage`` only at the
        publisher's minute refresh; a command's own change wakes it already (a second wake
        finds nothing changed, and sends nothing). Nothing is sent to the loop here."""
        if self.reporter is None:
            return
        try:
            revision = self.db.read(progression_revision)
        except Exception:
            log.exception("storage: the progressions could not be read")
            return
        if revision != self._progressions_seen:
            self._progressions_seen = revision
            self.reporter.sessions_changed()

    def follow_wall_clock(self) -> None:
        """Wake the publisher when the wall clock became synchronised since the last look, or
        stopped being (the heartbeat's thread: one ``adjtimex``, or under the monitor's unit a
        ``stat`` in ``/run``; never the loop's). A walker's retained ``stage`` computed before
        NTP set the clock after boot went out flagged ``wall_unsynced`` with the unset clock's
        time; the publisher sends a stage again only when what it says changes, so without
        this wake it went out again, stamped with the true time, only at the minute's refresh.
        Nothing is sent to the loop here."""
        if self.reporter is None:
            return
        try:
            synced = self.wall_clock.synchronized()
        except Exception:
            synced = False  # as the retained status reads a failed read: not synchronised
        if synced != self._wall_synced:
            self._wall_synced = synced
            self.reporter.wall_clock_changed()

    def _walker_chosen(self, walker: str) -> None:
        """The button chose a walker: store it (a removed one meanwhile: the roster says so)."""
        try:
            self.db.write(
                lambda conn: select_walker(conn, walker, by="walker", via="button", wall=wall_now())
            )
        except WalkerInvalid as exc:  # removed with the CLI meanwhile: the roster says so
            log.warning("the walker chosen with the button was not stored: %s", exc)
        except Exception:
            log.exception("storage: the walker chosen with the button could not be stored")
        self._choices += 1
        self.forward_roster(force=True)  # the loop learns its choice is in (or why not)

    def _carry_on_open_incident(self) -> None:
        """Tell the loop of a trip or fault incident still open on record (a monitor that
        restarted mid-incident carries it on)."""
        device = self.config.device.id
        try:
            still_open = self.db.read(lambda conn: incidents.open_on_the_belt(conn, device))
        except Exception:
            log.exception("storage: open incidents could not be read")
            return
        if still_open is not None:
            self.channel.send(messages.OpenIncident(still_open))

    def _self_test(self) -> dict[str, dict[str, object]]:
        checks = dict(self.checks)
        fault = self.db.fault
        checks["storage"] = {
            "ok": fault is None,
            "detail": fault or f"{self.db.path} takes writes",
        }
        return checks

    def _alive(self) -> bool:
        status = self.reporter.status if self.reporter is not None else None
        caregiver = status.caregiver if status is not None else None
        now = time.monotonic()
        return self.channel.send(
            messages.CourierAlive(
                broker_connected=bool(status and status.connected),
                outbox_depth=status.depth if status is not None else 0,
                # Not while nothing could be heard yet (a connection under way): the walker
                # who arms at once must not hear "caregivers will not be called" with them
                # online. At once when the broker is out of reach (CaregiverView.away).
                caregivers_away=caregiver is not None and caregiver.away(now),
                caregivers_undecided=caregiver is not None and caregiver.undecided(now),
            )
        )

    def _beat(self) -> None:
        """Once a second: the disk probed (every :data:`PROBE_S`) or tried again; 'alive'."""
        next_probe = time.monotonic() + PROBE_S
        while not self._stop.wait(HEARTBEAT_S):
            try:
                if time.monotonic() >= next_probe:
                    next_probe = time.monotonic() + PROBE_S
                    self.db.probe()
                self.db.recover()
                self.retention.tick()
                self.forward_plan()  # `retroguard plan set` writes the database directly
                self.forward_roster()  # and `retroguard walker` too
                self.follow_progressions()  # and `retroguard plan progression` too
                self.follow_wall_clock()  # NTP's first setting: the stages, unflagged
            except Exception:
                log.exception("storage: probing, trying the disk again or retention failed")
            if not self._alive():
                return

    # ---------------------------------------------------------------- storage

    def _enable_incremental_vacuum(self) -> None:
        """Convert a file from before incremental vacuum, once, before anything else uses it.

        A ``VACUUM`` rewrites the whole file and holds the write lock while it
        does, so it runs here, before the publisher and the heartbeat start;
        the loop hears that storage is not ready (arming waits) and that the
        courier is alive. A failure (no room for the copy) leaves the file as
        it was; it is tried again at the next start.
        """
        if self.db.in_memory:
            return
        path = self.db.path
        try:
            if self.db.read(incremental_vacuum_enabled):
                return
            megabytes = path.stat().st_size / 1e6
        except Exception:
            log.exception("storage: cannot read the vacuum mode of %s", path)
            return
        detail = (
            f"compacting the device database once after an upgrade ({megabytes:.0f} MB): "
            "arming waits until it is done"
        )
        log.warning("storage: %s", detail)
        self.channel.send(messages.StorageHealth(False, detail))
        done = threading.Event()

        def tell_the_loop_we_are_alive() -> None:
            while not done.wait(HEARTBEAT_S):
                self._alive()

        ticker = threading.Thread(target=tell_the_loop_we_are_alive, daemon=True)
        ticker.start()
        started = time.monotonic()
        conn = sqlite3.connect(str(path), timeout=5.0, isolation_level=None)
        try:
            enable_incremental_vacuum(conn)
            log.info(
                "storage: %s converted to incremental vacuum in %.1f s",
                path,
                time.monotonic() - started,
            )
        except sqlite3.Error as exc:
            log.error("storage: could not convert %s (tried at the next start): %s", path, exc)
        finally:
            conn.close()
            done.set()
            ticker.join()

    def _report_opening(self) -> None:
        opened = self.opened
        if opened.moved is not None:
            self.storage_replaced(opened.moved)
        if opened.fault is not None:
            self.storage_lost(opened.fault)
            return
        detail = "device database open"
        if opened.moved is not None:
            detail += f" (new; the damaged one is {opened.moved.moved_to})"
        self.channel.send(messages.StorageHealth(True, detail))

    def storage_lost(self, why: str) -> None:
        detail = (
            f"{why}; alerts are kept in memory and still published until the disk takes "
            "writes again"
        )
        self.channel.send(messages.StorageHealth(False, detail))
        self._raise_fault(
            f"storage fault: {detail}; no new walk can be armed meanwhile", self.state
        )
        if self.reporter is not None:
            self.reporter.report_telemetry()

    def storage_replaced(self, moved: MovedAside) -> None:
        self._raise_fault(moved.sentence(), self.state)

    def storage_back(self, now_on_disk: Sequence[str], detail: str) -> None:
        self._confirm_all(now_on_disk)
        self.channel.send(messages.StorageHealth(True, detail))
        if self.reporter is not None:
            self.reporter.report_telemetry()

    def _confirm_all(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), PERSISTED_BATCH):
            self.channel.send(messages.Persisted(ids[start : start + PERSISTED_BATCH]))

    def _raise_fault(self, reason: str, state: str) -> None:
        """Store and publish a FAULT the courier itself saw (the loop's state is unchanged)."""
        self._persist_quietly(
            Event.now(
                EventType.FAULT,
                self.config.device.id,
                self.clock(),
                state,
                reason,
                wall=WallStamper(self.wall_clock),
            )
        )

    # ------------------------------------------------------------------- runs

    def _begin_run(self) -> None:
        """Record this run; report every earlier one that stopped uncleanly and was not reported."""
        if self.run_name is None:
            return
        monitor, started = self.run_name
        try:
            earlier = self.db.read(lambda conn: unreported_unclean_runs(conn, monitor, started))
            for run in earlier:
                self._raise_fault(
                    f"the previous run (started {_readable(run.started_wall)}) did not stop "
                    "cleanly (power loss, crash or kill): events of its last moments may be "
                    "missing",
                    self.state,
                )

            def record(conn: sqlite3.Connection) -> list[SessionRecord]:
                mark_reported(conn, [run.id for run in earlier])
                if not begin_run(conn, monitor, started):
                    return []  # a courier restarted within the run: its session may be under way
                # A new run: no session of it has started, so one still running is a previous
                # run's, whose end a power cut, crash or kill kept from being recorded.
                return close_left_running(conn, self.sessions.summary_for)

            closed = self.db.write(record)
        except Exception:
            log.exception("the run log could not be updated")
            return
        self._sessions_closed(closed)

    def _sessions_closed(self, closed: list[SessionRecord]) -> None:
        """Sessions a previous run left running, closed at this run's start: told as any
        session's end (the journal's summary line, the retained progress, the progression)."""
        if not closed:
            return
        self.sessions.queued(len(closed) if self.reporter is not None else 0)
        if self.reporter is not None:
            self.reporter.sessions_changed()
        for record in closed:
            self._advance_progression(record.walker.id)
            self._log_session_end(record)

    def _end_run(self, *, clean: bool) -> None:
        if self.run_name is None:
            return
        monitor, started = self.run_name
        try:
            self.db.write(lambda conn: end_run(conn, monitor, started, wall_now(), clean=clean))
        except Exception:
            log.exception("the run log could not be updated")

    # -------------------------------------------------------------- stopping

    def finish(self) -> None:
        """The loop is gone: record an unclean end, push what is queued out, close."""
        self._stop.set()
        if self._heartbeat.is_alive():
            self._heartbeat.join(HEARTBEAT_S + SEND_TIMEOUT_S)
        if not self.clean_stop:
            self._persist_quietly(
                Event.now(
                    EventType.FAULT,
                    self.config.device.id,
                    self.clock(),
                    "FAULT",
                    "the monitor stopped without shutting down (crash, kill or hang): events of "
                    "its last moments may be missing",
                    wall=WallStamper(self.wall_clock),
                )
            )
            self._end_run(clean=False)
        if self.db.in_memory:
            self.db.recover(now=True)  # a last try: what memory holds is lost with this process
        if self.reporter is not None:
            self.reporter.wait_drained(DRAIN_TIMEOUT_S)
            self._await_receipts(self.reporter)
            self.reporter.close()
        self.sessions.close()
        self.store.close()
        self.db.close()

    def _await_receipts(self, reporter: MqttReporter) -> None:
        """With a goodbye that asks for it: wait (bounded) for a consumer's receipts of the
        alerts published; what is left stays in the outbox, sent again after the next start."""
        if self.await_receipts_s <= 0 or not reporter.config.alert_receipts:
            return
        if reporter.wait_received(self.await_receipts_s):
            log.info("every alert published was confirmed by a consumer")
            return
        status = reporter.status
        log.warning(
            "%d alerts not confirmed by a consumer and %d messages not taken by the broker "
            "within %.0f s: kept in the outbox, sent again after the next start",
            status.awaiting,
            status.depth - status.awaiting,
            self.await_receipts_s,
        )

    def _persist_quietly(self, event: Event) -> None:
        """Record an event the courier raised itself, naming its walker (:meth:`_walker_now`)."""
        try:
            self._storing.handle(event, self._walker_now())
        except Exception:
            log.exception("could not record %s", event.reason)
        for sink in self._sinks:
            try:
                sink.handle(event)
            except Exception:
                log.exception("could not record %s", event.reason)


def serve(
    sock: socket.socket,
    *,
    adopt_log_level: bool = False,
    on_ready: Callable[[Courier], None] | None = None,
) -> int:
    """Run a courier on ``sock`` (its first message is the monitor's :class:`Hello`).

    ``adopt_log_level``: set the process's log level from the monitor's config
    (a courier process; not a courier thread, which shares the monitor's logging).
    ``on_ready`` receives the courier once built (the in-process mode's tests use it).
    """
    channel = LoopChannel(sock)
    first = next(channel.messages(), None)
    if not isinstance(first, messages.Hello):
        log.error("the monitor did not say hello: %r", first)
        channel.close()
        return 2
    if adopt_log_level:
        logging.getLogger().setLevel(first.config.logging.level.upper())
    courier = Courier(
        first.config,
        channel,
        monitor_pid=first.monitor_pid,
        monitor_started=first.started_wall,
        wall_clock=None if first.wall_synced is None else SaidWallClock(first.wall_synced),
    )
    if on_ready is not None:
        on_ready(courier)
    log.info(
        "courier %d for monitor %d: database %s, broker %s",
        os.getpid(),
        first.monitor_pid,
        first.config.storage.database,
        first.config.mqtt.host or "none",
    )
    courier.run()
    channel.close()
    return 0
