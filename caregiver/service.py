"""The caregiver service: the parts wired together, and the threads that run them.

```
 MQTT (paho thread) ─► Ingestor ─► Store ─► on_change ─► LiveFeed (feed thread) ─► Hub ─► /stream
                          │ in the same transaction
                          ▼
                      Alerting ─► notifications rows ─► wake ─► notifier process ─► Apprise
 ticker thread (1 s) ─► Alerting.tick (escalation, held stumbles)   } only on the holder of
 notifier process ─► due notifications (from the database)           } the escalation lease
 housekeeping thread (1 s) ─► retention sweep, WAL checkpoint, planner statistics, side-fault probe
 uvicorn thread ─► Starlette app (web.py, routes/) ─► worker threads ─► Store
 on PostgreSQL: on_change ─► NOTIFY ─► every other instance's listener thread ─► its LiveFeed
```

The service builds the dashboard with :func:`caregiver.web.create_app`, passing
itself as the web layer's :class:`~caregiver.routes.site.Backend`; the web layer
never imports this module.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from caregiver.alerts import Alerting
from caregiver.auth import Accounts, LoginThrottle
from caregiver.broker_link import BrokerLink, Connected, broker_address, status_of
from caregiver.changes import Change, DeviceChanged, EventStored, decode, encode
from caregiver.commands import CommandSender, new_request_id
from caregiver.config import CaregiverConfig
from caregiver.fault_once import FaultOnce
from caregiver.health import Health, health_of
from caregiver.health_topic import HealthTopic, health_message
from caregiver.hub import Hub
from caregiver.ingest import RECONNECT_DELAYS, Ingestor, ReconnectDelays
from caregiver.lease import Lease
from caregiver.liveness import Liveness, SystemdPinger
from caregiver.memory import compact_malloc
from caregiver.notify import GONE, Notifier, Sender, log_gone, send_notification
from caregiver.notify_process import NotifierProcess
from caregiver.plan_answers import KEPT_PER_DEVICE, sent_by, summary_of, walker_of
from caregiver.planner_statistics import PlannerStatistics
from caregiver.presence import PRESENCE_TIMING, PresenceTiming
from caregiver.retention import RetentionSweeper
from caregiver.seen import Acknowledged, Seen
from caregiver.storage import (
    SIDE_PROBE_EVERY_S,
    STATEMENT_TIMEOUTS,
    Listener,
    SentCommand,
    StatementTimeouts,
    StorageFault,
    Store,
)
from caregiver.walkers import named, offered
from caregiver.web import create_app
from core import sdnotify
from core.protocol.commands import (
    LATEST,
    AssignPlan,
    Command,
    SelfTest,
    TestAlarm,
    command_name,
)
from core.protocol.ids import is_event_id
from core.protocol.messages import CaregiverHealthMessage
from core.protocol.plan import Plan
from core.protocol.walker import DEFAULT_WALKER_ID
from core.wallclock import boot_id

log = logging.getLogger(__name__)

TICKER_WITHIN_S = 30.0
"""The escalation ticker turns every second; 30 s without a turn (a database lock held that
long, a hang) and the service stops telling systemd it is alive. On PostgreSQL no statement
outlasts :data:`caregiver.storage.pg_timeouts.STATEMENT_TIMEOUT_S` (15 s): one the ticker
waited for and its own fit."""
DASHBOARD_WITHIN_S = 30.0
"""The dashboard's event loop answers a posted beat at once unless something blocks it."""
DASHBOARD_PART = "the dashboard's event loop"
"""Its :class:`caregiver.liveness.Heartbeat`'s name (beaten through the loop by the pinger)."""
STORING_WITHIN_S = 60.0
"""One ingest batch (at most a few hundred messages, one commit) stored within this; longer
is a database that no longer answers (PostgreSQL's own statement timeouts are shorter)."""


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # systemd's stop: the ``finally`` blocks run, the exit is clean


class CaregiverService:
    def __init__(
        self,
        config: CaregiverConfig,
        *,
        clock: Callable[[], float] = time.time,
        send: Sender = send_notification,
        monotonic: Callable[[], float] | None = None,
        boot: str | None = None,
        timeouts: StatementTimeouts = STATEMENT_TIMEOUTS,
        presence: PresenceTiming = PRESENCE_TIMING,
        reconnect: ReconnectDelays = RECONNECT_DELAYS,
    ) -> None:
        """``boot``: which machine's boot ``monotonic`` counts from, when it is given (tests
        restarting a service on one fake boot clock); the system's own is Linux's boot id.
        ``timeouts``: PostgreSQL's limits on a statement (tests give short ones). ``presence``:
        how long its ``online`` lasts on the broker unrenewed (tests give a short one).
        ``reconnect``: the waits between its tries at a broker out of reach (tests give short
        ones: a test starting the broker late waited out 1, 2, 4 s)."""
        self.config = config
        self.clock = clock
        self.store = Store(config.server.database, timeouts=timeouts)
        self.instance = secrets.token_hex(8)
        """This process among the instances sharing a database (its own changes come back)."""
        self.listener: Listener | None = None
        # the wall clock's steps are measured against the time since boot; a fake wall
        # clock given alone (tests driving the timers) is its own: no step is ever measured
        boot_clock = clock if clock is not time.time and monotonic is None else monotonic
        # the alerts' timers are stored in the clock frame of the time since boot they were
        # measured against: one per boot of the machine (every process and restart in it
        # reads the same CLOCK_BOOTTIME), so a step while the service was stopped is measured
        # too; without a boot id (not Linux, a fake clock), this process's instance
        machine = boot if boot is not None else boot_id() if boot_clock is None else ""
        # a take-over of the lease is timed on a clock that never steps (the fake one, in tests)
        self.lease = Lease(
            self.store,
            self.instance,
            clock,
            monotonic=boot_clock if boot_clock is not None else time.monotonic,
        )
        frame_of = f"boot:{machine}" if machine else self.instance
        self.notifier = Notifier(
            self.store,
            config,
            clock,
            send,
            may_send=self.lease.held,
            boot=boot_clock,
            frame_of=frame_of,  # the retries' due times are in the alerts' timers' frame
        )
        """Sends due notifications in this process: what tests on a fake clock drive, and the
        background sender when ``send`` is not Apprise's."""
        self.notifier_process: NotifierProcess | None = None
        """The background sender with Apprise (:meth:`start`): a child process of its own
        (:mod:`caregiver.notify_process`)."""
        self.alerting = Alerting(
            self.store,
            config,
            clock,
            self._wake_notifier,
            may_escalate=self.lease.held,
            monotonic=boot_clock,
            started_paging=lambda device_id: self._changed(DeviceChanged(device_id)),
            instance=frame_of,
        )
        self.accounts = Accounts(self.store)
        self.limiter = LoginThrottle(config.server.login_attempts, config.server.login_window_s)
        self.hub = Hub()
        self.ingestor = Ingestor(
            self.store,
            config,
            self.alerting,
            self._changed,
            clock,
            self._link_changed,
            self._storage_changed,
            presence,
            reconnect,
        )
        self.commands = CommandSender(lambda: self.ingestor.client, config.mqtt.topic_prefix)
        dashboard = create_app(self)
        self.app = dashboard.app
        self._feed = dashboard.feed
        self._feed.broker(self.ingestor.link.state)  # not yet connected: pages say so
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self.port = 0
        self.monotonic = monotonic if monotonic is not None else time.monotonic
        """The clock the liveness and the housekeeping's hourly statistics are timed on."""
        self.liveness = Liveness(self.monotonic)
        """What :meth:`serve_forever` tells systemd's watchdog the service is alive by."""
        self._ticker_beat = self.liveness.heartbeat("the escalation ticker", TICKER_WITHIN_S)
        self._housekeeping: threading.Thread | None = None
        self.statistics = PlannerStatistics(self.store, self.monotonic)
        """The query planner's statistics, refreshed by the housekeeping thread (its hour
        counted from here, not from when that thread first runs)."""
        self.liveness.thread("the housekeeping thread", lambda: self._housekeeping)
        self.ingestor.working = self.liveness.busy(
            "storing what the broker sent", STORING_WITHIN_S
        ).working
        self.liveness.thread("the MQTT ingest thread", lambda: self.ingestor.ingest_thread)
        self.liveness.thread("the held-message retry thread", lambda: self.ingestor.retry_thread)
        self.liveness.thread("the receipts thread", lambda: self.ingestor.receipts_thread)
        self.liveness.thread("the presence renewal thread", lambda: self.ingestor.renewal_thread)
        self.liveness.thread("the notifier's thread", self._notifier_thread)
        self.liveness.thread("the live feed's thread", lambda: self._feed.thread)
        self.liveness.thread("the thread hearing other instances", self._listener_thread)
        self.liveness.thread("the thread announcing to other instances", self._announcer_thread)
        self.store.on_damaged = self._damaged
        self.health_topic = HealthTopic(
            config.mqtt,
            lambda: self.ingestor.client,
            self.ingestor.connected,
            self._database_health,
            dashboard_url=config.server.public_url.rstrip("/"),
            several=bool(config.mqtt.shared_group),
        )
        """The database's health on the broker, for Home Assistant (:mod:`caregiver.
        health_topic`): said once subscribed and on every change of the side faults, of
        ingest's refusal and of the file's damage (the last two through ingest's
        :meth:`~caregiver.ingest.Ingestor.storing_changed`, which the presence hears too)."""
        self.ingestor.on_subscribed = self.health_topic.subscribed
        self.ingestor.on_published = self.health_topic.published
        self.ingestor.on_storing_changed = self.health_topic.changed
        self.store.side_faults.on_change = self._side_faults_changed

    def _notifier_thread(self) -> threading.Thread | None:
        """The notifier process's supervisor, or the notifier's own thread in this process."""
        process = self.notifier_process
        return self.notifier.thread if process is None else process.thread

    def _listener_thread(self) -> threading.Thread | None:
        listener = self.listener
        return None if listener is None else listener.thread

    def _announcer_thread(self) -> threading.Thread | None:
        return self.store.announcer_thread

    # ------------------------------------------------------------ changes

    def _changed(self, change: Change) -> None:
        """After a commit: the changed card / timeline row goes to the browsers, this
        instance's and (through the database) every other instance's."""
        self._feed.publish(change)
        if self.store.shared:
            self.store.announce(encode(change, self.instance))

    def _side_faults_changed(self) -> None:
        """A part of the database failed or works again (any thread, the store's lock maybe
        held): every page's banner and the health message say it."""
        self._feed.side_faults_changed()
        self.health_topic.changed()

    def _database_health(self) -> CaregiverHealthMessage:
        """What the health message says now (unstamped): the database's part of
        :meth:`health`, from the same sources."""
        return health_message(
            self.config.mqtt.identity,
            storing=self.ingestor.storage_fault is None,
            damaged=self.store.damage is not None,
            side=self.store.side_faults.now(),
            held=isinstance(link := self.ingestor.link.state, Connected) and link.held is not None,
        )

    def _damaged(self, damage: str) -> None:
        """A statement met a damaged page of the database file (any thread: ingest, a page, the
        retention sweep): the log and every page's banner say it from then on, whatever
        commits meanwhile (:meth:`_storage_changed`), and so does the presence the treadmills
        hear (``storing`` false: what it does not store pages nobody)."""
        log.error("%s", damage)
        self._feed.storage(damage)
        self.ingestor.storing_changed()

    def _link_changed(self, link: BrokerLink) -> None:
        """Ingest's link to the broker changed (paho's thread): every page's banner says it,
        and the health message a message held or no longer held."""
        self._feed.broker(link)
        self.health_topic.changed()

    def _storage_changed(self, fault: str | None) -> None:
        """Ingest's database started refusing (``fault``) or works again (None; ingest's
        thread, or the receipts' sync): every page's banner says it. A damaged file
        (:attr:`Store.damage`) is said until the service stops, whatever commits meanwhile:
        the next alert that reaches a damaged page is not stored."""
        self._feed.storage(fault or self.store.damage)

    def _heard(self, message: str) -> None:
        """Another instance committed a change: this instance's browsers see it too."""
        decoded = decode(message)
        if decoded is not None and decoded[0] != self.instance:
            self._feed.publish(decoded[1])
            self._wake_notifier()  # its ingest may have queued pages this instance sends

    def _deaf_meanwhile(self) -> None:
        """Listening again after a loss: what the other instances changed meanwhile was not
        heard. The marker moves on and every stream ends, so each page reconnects, fetches
        itself and asks for the alarms it missed (before: another instance's fall during the
        gap never alarmed)."""
        self.hub.changed()
        self._feed.forget_plans()  # a session or stage stored meanwhile: the cards read it
        self.hub.shutdown()
        self._wake_notifier()

    def _wake_notifier(self) -> None:
        """Notifications were queued (committed): whichever sender runs, send them now."""
        if self.notifier_process is not None:
            self.notifier_process.wake()
        else:
            self.notifier.wake()

    def device_name(self, device_id: str) -> str:
        return self.alerting.device_name(device_id)

    def acknowledge(
        self,
        device_id: str,
        event_id: str,
        by: str,
        via: str = "dashboard",
        seen: str | None = None,
    ) -> Acknowledged:
        """Close the incident of ``event_id`` as of ``seen``, its newest alert event the
        caregiver saw (by default ``event_id`` itself: the one a notification was sent for).
        If an event that pages joined it after that one, it stays open
        (:meth:`acknowledge_seen`)."""
        return self.acknowledge_seen(device_id, Seen(event=seen or event_id), by, via, event_id)

    def acknowledge_seen(
        self,
        device_id: str,
        seen: Seen,
        by: str,
        via: str = "dashboard",
        event_id: str | None = None,
    ) -> Acknowledged:
        """Close what a page showed (:mod:`caregiver.seen`): ``event_id``'s incident (its
        page), else the incident a card showed and the alerts outside incidents up to the
        newest it showed — not what arrived after. Record who and how, stop escalation here,
        and tell the device, which tells everyone. A post that said nothing closes nothing.
        :class:`ValueError` for something that is not this device's; :class:`RuntimeError`
        when ingest runs no MQTT client (before :meth:`start`, after :meth:`stop`: nothing
        closed).

        A broker that is down closes nothing less: closing the alert for the people (the
        escalation, the reminders) is this database's business, and the ``ack`` is delivery
        that waits for the broker. paho keeps the QoS 1 publish and sends it when the link is
        back; should that be lost (this process restarts, the device's clean session missed
        it) the device's retained ``incident`` still says open and ingest sends the close
        again as recorded (:meth:`Ingestor._device_missed_close`: same incident, event seen
        and request id; every instance may, a repeat is answered ``already``). The answer is
        then :attr:`Acknowledged.waiting`, so the page says the treadmill is told once the
        connection is back rather than let "acknowledged" read as "the treadmill knows"."""
        if not seen.said:
            return Acknowledged(said=False)
        if self.ingestor.client is None:
            raise RuntimeError("not connected to the broker")
        linked = isinstance(self.ingestor.link.state, Connected)
        now = self.clock()
        request_id = new_request_id()
        with self.store.transaction() as tx:
            tx.hold_devices([device_id])  # after any batch of its messages: no lock cycle
            event = tx.event(event_id) if event_id is not None else None
            if event_id is not None and (event is None or event.device_id != device_id):
                raise ValueError(f"no event {event_id} on this device")
            done, acked = self.alerting.acknowledge_seen(tx, device_id, seen, by, via, event)
            tx.acknowledge_events(acked, by, now, request_id)
        self._wake_notifier()
        named = next((e for e in (seen.event, event_id) if e and is_event_id(e)), LATEST)
        for incident in done.closed:  # the device closes it too, and tells everyone
            self.ingestor.send_ack(
                device_id, named, by, incident=incident, via=via, request_id=request_id
            )
        for acked_event in acked:
            self._changed(EventStored(device_id, acked_event))
        self._changed(DeviceChanged(device_id))
        if done.closed and not linked:
            return dataclasses.replace(done, waiting=True)
        return done

    def test_alarm(self, device_id: str, by: str) -> str:
        """Ask the device for a test alarm (it chirps and publishes a ``test`` event, which
        pages every contact as a TEST); the command's request id."""
        return self.commands.send(device_id, TestAlarm(by[:64] or "caregiver"))

    def self_test(self, device_id: str, by: str) -> str:
        """Ask the device for its self-test (read-only there: it never arms or touches the
        relay); the command's request id. Recorded as asked first (a prompt reply must find
        its row: ingest keeps only the answer to the newest check asked), undone when it
        cannot be published; the device page words the answer (:mod:`caregiver.self_test`)."""
        request_id = new_request_id()
        self.store.self_test_asked(device_id, request_id, by[:64] or "caregiver", self.clock())
        try:
            return self.commands.send(device_id, SelfTest(), request_id)
        except RuntimeError:
            self.store.self_test_unsent(device_id, request_id)
            raise

    def assign_plan(
        self, device_id: str, plan: Plan, by: str, walker: str = DEFAULT_WALKER_ID
    ) -> str:
        """Send a physio's plan (checked already) for ``walker``; the device stores it for
        their next session. The command's request id; the plan page shows the device's
        answer."""
        return self.send_command(device_id, AssignPlan(plan, by[:64] or "caregiver", walker))

    def _named(self, device_id: str, walker: str | None) -> str | None:
        """``walker`` as the plan page names them, for what was sent ("for Carla Díaz": "for
        walker carla-diaz" was an id nobody typed); None when the names cannot be read (the
        summary then says the id: a damaged sessions table must not stop a plan going out)."""
        if walker is None:
            return None
        try:
            return named(walker, offered(self.store, device_id).walkers)
        except StorageFault as exc:
            log.warning("what was sent to %s names walker %s by id: %s", device_id, walker, exc)
            return None

    def send_command(self, device_id: str, command: Command) -> str:
        """Send a command the web layer built and checked; its request id. Recorded as
        pending first (a prompt reply must find its row), forgotten if it cannot be sent."""
        request_id = new_request_id()
        walker = walker_of(command)
        who = self._named(device_id, walker)
        self.store.command_sent(
            SentCommand(
                request_id=request_id,
                device_id=device_id,
                command=command_name(command),
                summary=summary_of(command, who),
                sent_by=sent_by(command),
                sent_at=self.clock(),
                walker=walker,
            ),
            KEPT_PER_DEVICE,
        )
        try:
            return self.commands.send(device_id, command, request_id)
        except RuntimeError:
            self.store.forget_command(request_id)
            raise

    # ------------------------------------------------------------ threads

    def start(self, *, web: bool = True, background: bool = True, port: int | None = None) -> None:
        """Connect to the broker; with ``background`` also run the notifier and the escalation
        ticker (tests on a fake clock drive :meth:`Alerting.tick` and
        :meth:`Notifier.deliver_due` themselves); with ``web`` serve the dashboard in a thread."""
        self.listener = self.store.listen(self._heard, self._deaf_meanwhile)
        self.ingestor.start()
        if background:
            self._drop_orphan_notifications()
            if self.notifier.send is not send_notification:
                self.notifier.start()
            elif self.config.contacts:  # nobody to page, no process: nothing is ever queued
                self.notifier_process = NotifierProcess(self.config, self.instance)
                self.notifier_process.start()
            ticker = threading.Thread(target=self._tick_loop, name="caregiver-tick", daemon=True)
            self._housekeeping = threading.Thread(
                target=self._housekeeping_loop, name="caregiver-housekeeping", daemon=True
            )
            for thread in (ticker, self._housekeeping):
                thread.start()
                self._threads.append(thread)
        if web:
            self._serve_in_thread(port if port is not None else self.config.server.port)

    def _drop_orphan_notifications(self) -> None:
        """Rows queued for contacts or URLs a config change removed (all of them, when no
        contact is left and no notifier process runs to find them): marked failed, never
        sent to anyone else, each logged. Rows are addressed by the contact's name and the
        URL (:func:`caregiver.outbox.addressee`), so a contact only moved in the list keeps
        its messages. A database that cannot say is left to the notifier, which drops each
        such row when it comes due."""
        try:
            dropped = self.store.drop_notifications_unaddressed(self.config.contacts, GONE)
        except StorageFault as exc:
            log.warning("could not look for notifications to removed contacts: %s", exc)
            return
        for note in dropped:
            log_gone(note)

    def _tick_loop(self) -> None:
        """The escalation ticker: reminders and the step to the next contact, every second,
        on a thread of its own. Its beat is what ``/healthz`` and systemd's watchdog hear
        (:data:`TICKER_WITHIN_S`): the work that must not stop while an alarm is open.
        Before, it also ran the housekeeping (:meth:`_housekeeping_loop`) before each tick, so
        a slow or blocked sweep, checkpoint or probe held the reminders behind it."""
        escalation = self.escalation_faults()
        while True:
            self._ticker_beat.beat()
            if self._stop.wait(1.0):
                return
            self.escalation_tick(escalation)

    def _housekeeping_loop(self) -> None:
        """The database's upkeep, every second, beside the escalation ticker (each failure
        said in the log): the retention sweep (at start, then every ``sweep_hours``), the WAL
        checkpoint, the query planner's statistics (hourly,
        :mod:`caregiver.planner_statistics`), and the look at the side tables said to fail.
        None of it pages anyone, so none of it may hold a tick: a checkpoint or probe that is
        slow or waits on a lock waits here alone. The sweep's transaction is on the store's
        one writing connection, so the ticker's writes still wait for it (on PostgreSQL a
        statement at most :data:`caregiver.storage.pg_timeouts.STATEMENT_TIMEOUT_S`). No beat
        of its own (a first sweep of a big backlog may take long, and is no hang); a thread
        that died (a bug) is said (:attr:`liveness`). A stop ends the sweep before its next
        chunk (:meth:`stop`) and this loop before its next piece of work."""
        sweeper = RetentionSweeper(
            self.store, self.config.retention, self.clock, stopping=self._stop.is_set
        )
        # The WAL into the database file here rather than in ingest's commits
        # (:meth:`Store.checkpoint`); a failure is said once until a checkpoint works again (the
        # next commit that crosses the backstop checkpoints anyway, and the fault shows there).
        checkpoint = FaultOnce(
            log,
            "could not copy the write-ahead log into the database",
            "the write-ahead log is copied into the database again",
        )
        probed = time.monotonic()
        while True:
            sweeper.tick()
            if self._stop.is_set():
                return
            checkpoint.run(self.store.checkpoint)
            self.statistics.tick()
            if self.store.side_faults.failing and time.monotonic() - probed >= SIDE_PROBE_EVERY_S:
                probed = time.monotonic()  # a part put back is said to work within seconds
                self.store.probe_side_faults()
                self.ingestor.look_at_refused_alerts()  # stored by another instance, say
            if self._stop.wait(1.0):
                return

    def escalation_faults(self) -> FaultOnce:
        """How the ticker says that the escalation tick cannot use the database."""
        return FaultOnce(
            log,
            "escalation is held (no reminder, no step to the next contact) while the database "
            "refuses it",
            "escalation runs again: the database takes it",
        )

    def escalation_tick(self, faults: FaultOnce) -> None:
        """One escalation tick: a storage fault said once until a tick works again; any other
        error (a bug) logged with its traceback every time, and the ticker goes on."""
        try:
            faults.run(self.alerting.tick)
        except Exception:
            log.exception("escalation tick failed")

    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in self.config.server.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.server.host, port))
        self.port = int(sock.getsockname()[1])
        return sock

    def _uvicorn(self) -> uvicorn.Server:
        proxies = self.config.server.trusted_proxies
        config = uvicorn.Config(
            self.app,
            # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: only the
            # proxies the config names may say where a client is.
            proxy_headers=bool(proxies),
            forwarded_allow_ips=",".join(proxies) if proxies else "",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
            lifespan="on",
        )
        return uvicorn.Server(config)

    def _serve_in_thread(self, port: int) -> None:
        self._socket = self._bind(port)
        self._server = self._uvicorn()
        thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="caregiver-web",
            daemon=True,
        )
        thread.start()
        self._threads.append(thread)
        if not self.hub.attached.wait(20):
            raise RuntimeError("the dashboard did not start")
        # lifespan startup runs before uvicorn accepts: wait for the listening flag too
        deadline = time.monotonic() + 20
        while not self._server.started and time.monotonic() < deadline:
            threading.Event().wait(0.01)

    def serve_forever(self) -> None:
        """``retroguard caregiver``: the dashboard in this thread (Ctrl-C / SIGTERM stop it)."""
        # uvicorn handles SIGTERM while it serves, then restores the handler it found and
        # raises the signal again: with the default handler that killed the process before
        # :meth:`stop` ran (no STOPPING=1, the notifier process and the broker session
        # left to die). This handler turns it into an orderly exit, also during start-up.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        compact_malloc()  # before any thread allocates
        self.start(web=False)
        sock = self._bind(self.config.server.port)
        server = self._uvicorn()
        self._server = server
        pinger = self.systemd_pinger(
            sdnotify.Notifier.from_env(),
            watchdog_s=sdnotify.watchdog_timeout_from_env(),
            serving=lambda: server.started,
        )
        pinger.start()
        log.info("caregiver dashboard on %s", self.url)
        try:
            server.run(sockets=[sock])
        finally:
            pinger.stop()
            self.stop()

    def systemd_pinger(
        self,
        notifier: sdnotify.Notifier,
        *,
        watchdog_s: float | None,
        serving: Callable[[], bool],
    ) -> SystemdPinger:
        """What tells systemd this service is up (``serving``) and alive: the ticker, the
        ingest thread and its batches, and the dashboard's event loop (:mod:`caregiver.
        liveness`). Call once; :meth:`serve_forever` starts it."""
        return SystemdPinger(
            notifier,
            self.liveness,
            watchdog_s=watchdog_s,
            serving=serving,
            dashboard=self.liveness.heartbeat(DASHBOARD_PART, DASHBOARD_WITHIN_S),
            post=self.hub.run_on_loop,
        )

    @property
    def url(self) -> str:
        host = self.config.server.host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Stop every part, then close the store. The housekeeping thread sees the stop
        before its retention sweep's next chunk and ends (a sweep cut short says so in one
        INFO line; the next start goes on): it is waited for (up to 10 s) before the store
        closes, as is a chunk under way, which holds the store's lock that closing it takes.
        A chunk is bounded: at most :data:`~caregiver.storage.store.PRUNE_CHUNK` rows or
        :data:`~caregiver.storage.store.RECLAIM_CHUNK_PAGES` pages of work, after at most
        SQLite's busy timeout (5 s) for another process's write (the notifier's) or, on
        PostgreSQL, each statement within its lock and statement timeouts
        (:mod:`caregiver.storage.pg_timeouts`). Before, a stop during a long first sweep
        closed the store under it, and its next chunk logged that the sweep failed."""
        self._stop.set()
        self.hub.shutdown()
        self.health_topic.stop()
        if self._server is not None:
            self._server.should_exit = True
        self.ingestor.stop()
        self.notifier.stop()
        if self.notifier_process is not None:
            self.notifier_process.stop()
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
        self._feed.close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        self._housekeeping = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self.lease.release()
        self.store.close()

    def health(self) -> Health:
        """``/healthz``: the parts :meth:`systemd_pinger` checks, but the dashboard's event
        loop, which answering the request shows is turning (its heartbeat beats only while
        a pinger runs), the broker link and whether the database takes writes."""
        problems = tuple(text for name, text in self.liveness.failing() if name != DASHBOARD_PART)
        return health_of(
            problems,
            self.ingestor.link.state,
            time.monotonic(),
            storing=self.ingestor.storage_fault is None and self.store.damage is None,
            notify_hanging=self.notifier_hanging(),
            damaged=self.store.damage is not None,
            side=self.store.side_faults.now(),
        )

    def notifier_hanging(self) -> int:
        """Sends abandoned at their deadline that still hang now (:mod:`caregiver.notify`):
        some contact's phone service does not answer at all, and the log names whom."""
        process = self.notifier_process
        return self.notifier.hanging + (process.hanging if process else 0)

    def status(self) -> dict[str, Any]:
        process = self.notifier_process
        return {
            "messages": self.ingestor.messages,
            "events": self.ingestor.events_stored,
            "duplicates": self.ingestor.duplicates,
            "notified": self.notifier.sent + (process.sent if process else 0),
            "notify_failures": self.notifier.failed + (process.failed if process else 0),
            "notify_abandoned": self.notifier.abandoned + (process.abandoned if process else 0),
            "notify_hanging": self.notifier_hanging(),
            "broker": status_of(
                self.ingestor.link.state,
                broker_address(self.config.mqtt.host, self.config.mqtt.port),
                time.monotonic(),
            ),
        }
