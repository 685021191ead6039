"""The MQTT reporter: outbox → broker, state, telemetry, commands, discovery.

It lives in the courier process, apart from the real-time loop. Threads
there and who waits on whom:

* the courier's main thread calls :meth:`MqttReporter.publish_state` and
  :attr:`MqttReporter.sink` (store + queue in one SQLite transaction, then a
  wake-up token for the publisher) as the loop's messages arrive;
* paho's network thread runs the callbacks, which only put tokens on the
  same queue (no disk, no locks held by disk code);
* the publisher thread (``retroguard-mqtt``) does everything else: reads the
  outbox in order, publishes with QoS 1, deletes rows on PUBACK, publishes
  state and telemetry, keeps the retained incident and progress right
  (:mod:`firmware.mqtt.status`), runs commands, announces the device to Home
  Assistant (or, with ``discovery = false``, withdraws it).

Reconnection is paho's (exponential backoff between ``reconnect_min_s`` and
``reconnect_max_s``); messages already handed to paho are re-sent by paho on
reconnect, and the publisher hands over new outbox rows only once the
command subscription is confirmed (SUBACK), which paho processes after its
re-sends — so per-device order survives an outage. Anything not acknowledged
when the process dies is still in the outbox and is sent on the next start.
Delivery is at least once: a PUBACK lost with the connection means a repeat,
which consumers drop by event ``id``.
"""

from __future__ import annotations

import functools
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from core.mqtt_callbacks import CallbackFault
from core.mqttlink import MqttSetupError, make_client
from core.protocol import payloads
from core.protocol.commands import (
    LATEST,
    Ack,
    AssignPlan,
    AssignProgression,
    ChangeProgression,
    CommandName,
    Silence,
)
from core.protocol.discovery import REMOVE_PAYLOAD
from core.protocol.events import Event, EventType
from core.protocol.ids import check_device_id
from core.protocol.messages import (
    DeviceHealth,
    FaultSaid,
    PlanStored,
    ProgressionStored,
    ProtocolError,
    ReceiptMessage,
    SelfTestCheck,
    SelfTestResult,
    SilenceResult,
    WornSaid,
)
from core.protocol.topics import (
    Topics,
    caregiver_status_topic,
    discovery_topic,
    ha_status_topic,
)
from core.wallclock import WallClock, WallStamper
from firmware.config import MqttConfig
from firmware.mqtt.caregiver import CaregiverView, CaregiverWatch, self_test_check
from firmware.mqtt.commands import (
    FLOOD_REFUSAL_BURST,
    FLOOD_REFUSALS_PER_S,
    CommandBudget,
    CommandError,
    CommandHandler,
    CommandTarget,
    Reply,
    SilenceRequest,
    dropped_reply,
)
from firmware.mqtt.discovery import discovery_payload
from firmware.mqtt.status import Retained, RetainedStatus
from firmware.sinks import OutboxSink
from firmware.storage.database import Database
from firmware.storage.incidents import Shown
from firmware.storage.outbox import Outbox
from firmware.storage.progressions import (
    RELEASED_ADVANCED,
    HandPlan,
    ProgressionState,
    ProgressionUnchanged,
    change_progression,
    held_message,
    set_plan_by_hand,
    start_progression,
)
from firmware.storage.status import INCIDENT_EVENT_TYPES
from firmware.storage.walkers import active_walkers

log = logging.getLogger(__name__)

MAX_PACKET_BYTES = 65536
"""MQTT 5 Maximum Packet Size the device accepts: a command is at most 4 KB and a receipt of
1,000 ids about 35 KB; a 1 MB payload on a device's topics is dropped by the broker."""
RETRY_FIRST_S = 0.5
"""After a database error, the publisher's first pause before it tries again."""
RETRY_MAX_S = 10.0
"""Its longest pause: a database that stays broken is tried this often."""

PROGRESS_REFRESH_S = 60.0
"""How often the retained ``progress`` is recomputed without being asked: a running session's
figures move, and a new week starts at midnight with nothing queued."""

PAHO_LOGGER = "retroguard.mqtt.paho"
"""The logger the reporter's paho client logs to."""


class _OwnDisconnectIsNoError(logging.Filter):
    """paho's "Client is not connected" after the client's own disconnect is the end of a clean
    stop, not an error: it is logged at DEBUG instead.

    In threaded mode paho's network thread writes the DISCONNECT :meth:`MqttReporter.stop`
    asked for, closes the socket and runs its loop once more unless ``loop_stop()`` has told
    it to end by then (a race inside paho 2.2: nothing is published after the disconnect);
    that last pass logs the closed socket at ERROR. The state it names,
    ``MQTT_CS_DISCONNECTED``, is only ever set by a disconnect the client asked for: a broker
    that drops the link leaves ``MQTT_CS_CONNECTION_LOST``, which stays an ERROR.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR or not str(record.msg).startswith(
            "Client is not connected"
        ):
            return True
        text = record.getMessage()
        if "MQTT_CS_DISCONNECTED" not in text:
            return True
        log.debug("MQTT network thread ended after the reporter's own disconnect (%s)", text)
        return False


logging.getLogger(PAHO_LOGGER).addFilter(_OwnDisconnectIsNoError())

TelemetryProvider = Callable[[], DeviceHealth]
"""Returns the monitor's figures for the telemetry message; called on the publisher thread."""

SelfTestProvider = Callable[[], Mapping[str, Mapping[str, Any]]]
"""Returns read-only checks ``{name: {"ok": bool, "detail": str}}`` for ``self_test``."""


@dataclass(frozen=True, slots=True)
class ReporterStatus:
    """A snapshot of the publisher's view of the link, for tests, the demo and self-test."""

    connected: bool = False
    """The broker accepted the connection (CONNACK success)."""
    ready: bool = False
    """Subscriptions confirmed: outbox rows are being published."""
    last_error: str | None = None
    """Why the last connection attempt failed or the link dropped (never contains secrets)."""
    connects: int = 0
    acked: int = 0
    """Outbox rows acknowledged by the broker since start."""
    refused: int = 0
    """Refusals of outbox rows by the broker (MQTT 5 PUBACK failure, e.g. its ACL): each row is
    kept and sent again after every reconnect and every ``receipt_retry_s``."""
    republished: int = 0
    """Copies of rows awaiting a consumer's receipt sent again since start (after a reconnect
    or on the backing-off retry timer): each is one more message the broker queues for an
    offline caregiver's session."""
    depth: int = 0
    """Rows waiting in the outbox (as of the publisher's last look), receipt-waiting ones too."""
    awaiting: int = 0
    """Of those, rows the broker has and no consumer has confirmed yet (alert receipts)."""
    commands: int = 0
    """Commands answered since start (valid or not)."""
    pokes: int = 0
    """Wake-ups from :meth:`MqttReporter.wait_drained` handled; makes its wait see fresh figures."""
    caregiver: CaregiverView = field(default_factory=CaregiverView)
    """What the device hears of the caregiver service, and its oldest alert awaiting a receipt
    (:mod:`firmware.mqtt.caregiver`): the retained ``caregiver`` topic and the self-test."""
    device_state: str | None = None
    """The safety state the loop last reported (the state a ``closed`` event carries); None
    before the first report (then the newest stored event's state is used)."""


class _StatusBox:
    """The current :class:`ReporterStatus` and a condition to wait for changes.

    A separate object so the command target can read the link status without
    holding the reporter (and through it the telemetry provider, which may
    well reference the safety controller).
    """

    def __init__(self) -> None:
        self.status = ReporterStatus()
        self.cond = threading.Condition()

    def update(self, **changes: Any) -> None:
        with self.cond:
            self.status = replace(self.status, **changes)
            self.cond.notify_all()

    def get(self) -> ReporterStatus:
        return self.status


@dataclass(frozen=True, slots=True)
class _Queued:
    """The event worker (or the session recorder) queued outbox rows."""


@dataclass(frozen=True, slots=True)
class _IncidentEvent:
    """An event that may open, worsen or close an incident was stored and queued."""


@dataclass(frozen=True, slots=True)
class _SessionsChanged:
    """The session log changed (a session started, advanced or ended)."""


@dataclass(frozen=True, slots=True)
class _SessionWalker:
    """Whose guided session is under way (None: none): the retained progress is theirs."""

    walker: str | None


@dataclass(frozen=True, slots=True)
class _WalkersChanged:
    """The walker profiles may have changed (``retroguard walker add`` or ``remove``)."""


@dataclass(frozen=True, slots=True)
class _WallClockChanged:
    """The wall clock became synchronised, or stopped being (the courier's heartbeat)."""


@dataclass(frozen=True, slots=True)
class _Acked:
    """The broker answered a publish (paho thread)."""

    mid: int
    failed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class _StateChange:
    """The safety state changed (real-time thread)."""

    state: str
    reason: str
    wall_time: str
    wall_unsynced: bool = False
    worn: WornSaid | None = None
    fault: FaultSaid | None = None


@dataclass(frozen=True, slots=True)
class _Subscribed:
    """The command subscription of connection ``generation`` is confirmed (SUBACK)."""

    generation: int


@dataclass(frozen=True, slots=True)
class _Down:
    """The connection to the broker dropped."""


@dataclass(frozen=True, slots=True)
class _Up:
    """The broker accepted our connection (CONNACK success; paho thread)."""


@dataclass(frozen=True, slots=True)
class _Unreachable:
    """An attempt to connect failed (paho thread): the broker refused the TCP connection or our
    CONNECT, the name did not resolve, TLS failed."""


@dataclass(frozen=True, slots=True)
class _HomeAssistantOnline:
    """Home Assistant (re)started: announce the device again."""


@dataclass(frozen=True, slots=True)
class _CommandArrived:
    name: str
    payload: bytes
    retained: bool = False
    """The broker kept it (published with the retain flag) and handed it over at subscribe:
    stale, refused unrun (:func:`retained_command_reply`)."""


@dataclass(frozen=True, slots=True)
class _SilenceAnswered:
    """The loop said what a caregiver's silence came to: the command's reply."""

    request_id: str | None
    result: SilenceResult


@dataclass(frozen=True, slots=True)
class _CommandDropped:
    """A command the flood limit dropped, to be refused (paho thread; a few a second)."""

    name: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class _ReceiptArrived:
    """A consumer says it committed some of our alerts (paho thread)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class _CaregiverHeard:
    """A message on the caregiver service's presence topic (paho thread)."""

    payload: bytes
    retained: bool = False
    """Handed over at subscribe (it was said before we listened)."""
    expires_at: float | None = None
    """When its Message Expiry Interval, as the broker handed it over (what remains of it),
    ends on the reporter's clock, counted from its arrival (None: it carried none)."""


@dataclass(frozen=True, slots=True)
class _Poke:
    """A waiter in :meth:`MqttReporter.wait_drained` wants fresh figures."""

    number: int


@dataclass(frozen=True, slots=True)
class _TelemetryDue:
    """Something telemetry shows changed (storage): queue a telemetry message now."""


@dataclass(frozen=True, slots=True)
class _Tick:
    """Nothing arrived before the telemetry timer."""


@dataclass(frozen=True, slots=True)
class _Stop:
    pass


_Token = (
    _Queued
    | _IncidentEvent
    | _SessionsChanged
    | _WalkersChanged
    | _WallClockChanged
    | _SessionWalker
    | _Acked
    | _StateChange
    | _Subscribed
    | _Down
    | _Up
    | _Unreachable
    | _HomeAssistantOnline
    | _CommandArrived
    | _CommandDropped
    | _ReceiptArrived
    | _CaregiverHeard
    | _SilenceAnswered
    | _Poke
    | _TelemetryDue
    | _Tick
    | _Stop
)
"""What wakes the publisher thread; every other thread only puts one of these on its queue."""


class _ReporterSink(OutboxSink):
    """:class:`OutboxSink` that also tells the publisher when the open incident may change.

    Only then is the retained ``incident`` recomputed (a fold of the new
    events, :class:`~firmware.mqtt.status.RetainedStatus`): telemetry-like
    events (start, stop, window, test) cost nothing more.
    """

    def __init__(
        self, outbox: Outbox, on_queued: Callable[[], None], on_incident: Callable[[], None]
    ) -> None:
        super().__init__(outbox, on_queued=on_queued)
        self._on_incident = on_incident

    def stored(self, event: Event) -> None:
        super().stored(event)
        if event.type in INCIDENT_EVENT_TYPES:
            self._on_incident()


class _DefaultTarget:
    """The command target the reporter builds: silence flag, ack bookkeeping, read-only checks.

    It holds the silence flag, the outbox and two read-only callables — no
    controller, relay or buzzer — which is what makes "no command can arm" true.
    """

    def __init__(
        self,
        silence: SilenceRequest,
        outbox: Outbox,
        status: Callable[[], ReporterStatus],
        self_test: SelfTestProvider | None,
        test_alarm: Callable[[str], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_plan: Callable[[], object] | None = None,
        on_closed: Callable[[str], object] | None = None,
        on_incident: Callable[[], object] | None = None,
        shown: Callable[[], Shown] | None = None,
        on_stored: Callable[[], object] | None = None,
        wall_clock: WallClock | None = None,
    ) -> None:
        """``wall_clock``: stamps the ``closed`` event (default the host's, read then; the
        courier's, which in the demo judges "synchronised" as the demo's loop does).
        ``on_closed``: told the incident a caregiver has just closed (the walker who asked
        for help hears it). ``on_incident``: told when an ack stored a ``closed`` event, so the
        retained ``incident`` is recomputed (the event is stored here, not through the sink).
        ``on_stored``: told when a plan or progression was stored, so the retained ``progress``
        and the walker's ``stage`` are recomputed (with or without a courier's ``on_plan``).
        ``shown``: what the retained ``incident`` message last showed, the incident an ack
        naming none (``"latest"``: Home Assistant's button) closes."""
        self._silence = silence
        self._shown = shown
        self._on_plan = on_plan
        self._on_closed = on_closed
        self._on_incident = on_incident
        self._on_stored = on_stored
        self._outbox = outbox
        self._status = status
        self._self_test = self_test
        self._test_alarm = test_alarm
        self._clock = clock
        self._wall_clock = wall_clock

    def test_alarm(self, by: str) -> Mapping[str, Any]:
        if self._test_alarm is None:
            raise CommandError("this device cannot send a test alarm")
        self._test_alarm(by)
        return {"test_alarm": "sent", "by": by}

    def set_self_test(self, self_test: SelfTestProvider) -> None:
        self._self_test = self_test

    def assign_plan(self, command: AssignPlan, request_id: str | None) -> Mapping[str, Any]:
        """Store the plan; ``on_plan`` tells the courier, which hands it to the loop.

        Storing is the whole effect here: the loop's session runner takes the
        plan at the next session start. Nothing is started or restarted. A
        progression the walker is on is held by it, and the result says so
        (``progression_held``): it would otherwise stall unseen.
        """
        plan = command.plan

        def store(conn: sqlite3.Connection) -> HandPlan:
            _known_walker(conn, command.walker)
            return set_plan_by_hand(
                conn,
                plan,
                by=command.by,
                via="mqtt",
                wall=payloads.wall_now(),
                request_id=request_id,
                walker=command.walker,
            )

        hand = self._outbox.database.write(store)
        revision = hand.revision
        log.info(
            "plan %r assigned to walker %s by %s (revision %d)",
            plan.name,
            command.walker,
            command.by,
            revision,
        )
        self._stored()
        stored = PlanStored(
            plan=plan.name,
            revision=revision,
            intervals=len(plan.intervals),
            minutes=round(plan.duration_s / 60.0, 2),
            backward_minutes=round(plan.backward_s / 60.0, 2),
            applies="at the next session start",
            walker=command.walker,
            progression_held=held_message(hand),
        )
        if stored.progression_held is not None:
            log.info("%s", stored.progression_held.words(command.walker))
        return msgspec.to_builtins(stored)  # type: ignore[no-any-return]

    def progression(
        self, command: AssignProgression | ChangeProgression, request_id: str | None
    ) -> Mapping[str, Any]:
        """Store the progression or the physio's change; the stage's plan rides with it."""
        wall = payloads.wall_now()
        walker = command.walker

        def store(conn: sqlite3.Connection) -> ProgressionState:
            _known_walker(conn, walker)
            if isinstance(command, AssignProgression):
                return start_progression(
                    conn,
                    command.progression,
                    stage=command.stage,
                    by=command.by,
                    wall=wall,
                    walker=walker,
                )
            return change_progression(conn, command.action, by=command.by, wall=wall, walker=walker)

        try:
            state = self._outbox.database.write(store)
        except (LookupError, ProgressionUnchanged) as exc:  # nothing written: the reply says why
            raise CommandError(str(exc)) from None
        log.info("progression %r: %s by %s", state.progression.name, state.changed, state.by)
        self._stored()
        stored = ProgressionStored(
            progression=state.progression.name,
            change=RELEASED_ADVANCED if state.advanced_on_release else state.changed,
            stage=state.stage + 1,
            stages=len(state.progression.stages),
            plan=state.progression.stages[state.stage].plan.name,
            held=state.held,
            applies="at the next session start",
            walker=walker,
            plan_restored=state.plan_restored,
        )
        return msgspec.structs.asdict(stored)

    def _stored(self) -> None:
        """A plan or progression was stored: the courier hears of it (the loop takes the plan),
        and the publisher recomputes the retained topics it shows in."""
        if self._on_plan is not None:
            self._on_plan()
        if self._on_stored is not None:
            self._on_stored()

    def request_silence(self, silence: Silence, request_id: str | None) -> bool:
        return self._silence.request(silence, request_id)

    def acknowledge(self, ack: Ack) -> Mapping[str, Any]:
        """Close the incident (once: a ``closed`` event stored and queued), or say who did."""
        # Read before the closing transaction, never inside it (in memory, one lock serves both).
        state = self._status().device_state or self._outbox.last_state()

        def closed_event(incident: str, by: str, via: str) -> Event:
            """The ``closed`` event: every consumer sees who closed the incident, and how."""
            return Event.now(
                EventType.CLOSED,
                self._outbox.topics.device_id,
                self._clock(),
                state,
                f"closed by {by} via {via}: the belt stays stopped until a reset at the machine",
                incident=incident,
                by=by,
                via=via,
                wall=None if self._wall_clock is None else WallStamper(self._wall_clock),
            )

        shown = None
        if ack.incident is None and ack.event_id == LATEST and self._shown is not None:
            shown = self._shown()  # the button's payload is static: what its page showed
        try:
            done = self._outbox.close_incident(ack, closed_event, shown)
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        if done.closed_event is not None:
            log.info("incident %s closed by %s via %s", done.incident, done.by, done.via)
            if self._on_incident is not None:
                self._on_incident()  # the retained incident says closed: HA's Fall goes off
            if self._on_closed is not None and done.incident is not None:
                self._on_closed(done.incident)
        result: dict[str, Any] = {
            "event_id": done.event_id,
            "acknowledged": True,
            "already": done.already,
            "by": done.by,
        }
        if done.incident is not None:
            result["incident"] = done.incident
        if done.via is not None:
            result["via"] = done.via
        return result

    def self_test(self) -> Mapping[str, Any]:
        """Read-only checks as a :class:`~core.protocol.messages.SelfTestResult` (the typed
        reply every consumer reads: Home Assistant's failed checks, ``retroguard watch``)."""
        checks: dict[str, SelfTestCheck] = {}
        try:
            depth = self._outbox.depth()
            checks["database"] = SelfTestCheck(ok=True, detail=f"outbox holds {depth} rows")
        except Exception as exc:
            checks["database"] = SelfTestCheck(ok=False, detail=f"{type(exc).__name__}: {exc}")
        status = self._status()
        checks["broker"] = SelfTestCheck(
            ok=status.connected, detail="connected" if status.connected else "not connected"
        )
        if status.caregiver.expected:  # the one thing that pages a caregiver after a fall
            checks["caregiver"] = self_test_check(status.caregiver, status.connected)
        if self._self_test is not None:
            try:
                for name, check in self._self_test().items():
                    checks[str(name)] = SelfTestCheck(
                        ok=bool(check.get("ok")), detail=str(check.get("detail", ""))
                    )
            except Exception as exc:
                checks["device"] = SelfTestCheck(ok=False, detail=f"self-test failed: {exc}")
        result = SelfTestResult(passed=all(c.ok for c in checks.values()), checks=checks)
        built: dict[str, Any] = msgspec.to_builtins(result)
        return built


class MqttReporter:
    """Caregiver reporting over MQTT, ready to wire into the monitor.

    It runs in the courier process (:mod:`firmware.courier.service`), never
    beside the real-time loop: the courier stores and queues each event
    through :attr:`sink`, forwards state changes to :meth:`publish_state`,
    and passes ``on_silence`` so a ``silence`` command reaches the loop.

    ``config.host == ""`` is the caller's "no broker" case: construct nothing
    and keep :class:`firmware.sinks.StoreSink`.
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        device_id: str,
        device_name: str,
        database: str | Path | Database,
        telemetry: TelemetryProvider | None = None,
        self_test: SelfTestProvider | None = None,
        command_target: CommandTarget | None = None,
        on_silence: Callable[[Silence, str | None], object] | None = None,
        on_test_alarm: Callable[[str], object] | None = None,
        on_plan: Callable[[], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_incident_closed: Callable[[str], object] | None = None,
        wall_clock: WallClock | None = None,
    ) -> None:
        try:
            check_device_id(device_id)
        except ValueError as exc:
            raise MqttSetupError(str(exc)) from None
        if not config.host:
            raise MqttSetupError("mqtt.host is empty: no broker configured")
        self.config = config
        self.device_id = device_id
        self.device_name = device_name
        self.topics = Topics(config.topic_prefix, device_id)
        self.outbox = Outbox(
            database, self.topics, max_rows=config.outbox_max_rows, receipts=config.alert_receipts
        )
        self.silence = SilenceRequest(on_request=on_silence)
        """Set by the ``silence`` command; ``on_silence`` carries it to the monitor loop, whose
        answer comes back through :meth:`answer_silence` and is the reply."""
        self._wake: queue.SimpleQueue[_Token] = queue.SimpleQueue()
        self.sink = _ReporterSink(self.outbox, self._on_queued, self._on_incident_event)
        """EventSink for the courier: stores *and* queues (use instead of StoreSink)."""
        self._telemetry = telemetry
        self._clock = clock
        self._box = _StatusBox()
        if wall_clock is None:
            self._retained = RetainedStatus(database, self.topics)
        else:
            self._retained = RetainedStatus(
                database, self.topics, now=wall_clock.now, wall_clock=wall_clock
            )
        """The retained ``incident``, ``progress``, ``walkers`` and ``stage/<walker>`` topics,
        computed from the database; ``wall_clock`` (default the host's) stamps them and says
        whether it is synchronised (a stage computed before it was is flagged)."""
        self._default_target = _DefaultTarget(
            self.silence,
            self.outbox,
            self._box.get,
            self_test,
            on_test_alarm,
            clock,
            on_closed=on_incident_closed,
            on_plan=on_plan,
            # the wake-up queue alone, not the reporter (whose telemetry provider may hold the
            # safety controller): nothing a command reaches can arm
            on_incident=functools.partial(self._wake.put_nowait, _IncidentEvent()),
            shown=self._retained.shown_incident,  # read-only, on the publisher thread
            on_stored=functools.partial(self._wake.put_nowait, _SessionsChanged()),
            wall_clock=wall_clock,
        )
        self._commands = CommandHandler(command_target or self._default_target)
        self._client: mqtt.Client | None = None
        self._thread: threading.Thread | None = None
        self._inflight: dict[int, int] = {}  # paho mid -> outbox row id
        self._cursor = 0  # highest outbox id handed to paho
        self._to_settle: list[int] = []  # rows the broker acknowledged, not yet settled
        self._outbox_generation = self.outbox.generation
        self._telemetry_due = False
        self._failing: str | None = None  # the database error the publisher is backing off from
        self._pokes = 0  # the last wait_drained poke handled (shown once the figures are fresh)
        self._generation = 0
        self._sub_mid: int | None = None
        self._state: _StateChange | None = None
        self._state_dirty = False
        self._ready = False
        self._logged_error: str | None = None
        self._callback_failed = False
        """A callback raised on paho's thread since the last connect (its words are the
        status's ``last_error`` until connected again, not the disconnect it caused)."""
        self._stopping = False
        self._poke_sent = 0
        self._budget = CommandBudget(clock, config.command_rate_per_s, config.command_burst)
        """Spent on the paho thread, where commands arrive: a flood never reaches the queue."""
        self._refusals = CommandBudget(clock, FLOOD_REFUSALS_PER_S, FLOOD_REFUSAL_BURST)
        """The dropped commands still answered (refused): a caller waiting on a reply, such as
        the dashboard's self-test, hears why nothing happened; a flood gets a trickle."""
        self._republish_due = False
        """Send again everything not confirmed: refused rows and receipt-waiting ones (a
        reconnect, an outbox that moved, or the receipt timer)."""
        self._refused_due = False
        """Send again the refused rows only (their own timer, every ``receipt_retry_s``)."""
        self._receipt_wait = config.receipt_retry_s
        """The wait before the next round of receipt-waiting rows: ``receipt_retry_s`` after a
        (re)connect or a consumer's receipt, doubled by each round that still had rows to send
        (none answered), up to ``receipt_retry_max_s``. Every copy is queued by the broker for
        an offline caregiver's persistent session: at a fixed 60 s that was 1,440 copies of one
        alert a day, which filled Mosquitto's per-session queue (``max_queued_messages``) with
        repeats, so it dropped new alerts for that session."""
        self._next_republish = clock() + config.receipt_retry_s
        self._next_refused = clock() + config.receipt_retry_s
        self._refused: set[int] = set()
        """Outbox rows the broker refused (its ACL, a quota) and has not taken since: sent again
        after every reconnect and every ``receipt_retry_s`` (receipts or not, no backoff: the
        broker queued no copy of them for anyone) until it takes them — before, only at the
        next start, so an alert refused while the ACL was wrong stayed on the device for as long
        as the monitor ran, even once it was fixed."""
        self.receipted = 0
        """Outbox rows forgotten on a consumer's receipt since start."""
        self._incident_due = True
        self._progress_due = True
        self._walkers_due = True
        self._stages_due = True
        """The walkers' retained ``stage`` topics: due whenever the progress is (a session, a
        plan or progression stored, a reconnect, the periodic refresh) and when the walkers
        changed (a removed walker's topic is cleared)."""
        self._next_progress = clock() + PROGRESS_REFRESH_S
        self._logged_status_error = False
        self._retained_retry_at: float | None = None
        """When a retained topic that could not be computed or handed over is tried again."""
        self._retained_pause = RETRY_FIRST_S
        self._withdrawn = False
        """``discovery = false``: the empty discovery message went out (once per start)."""
        self._caregiver = CaregiverWatch(config.expects_caregiver(), clock)
        self._caregiver_topic = caregiver_status_topic(config.topic_prefix)
        self._caregiver_sent: CaregiverView | None = None
        """What the retained ``caregiver`` topic says since the last connect (None: not yet)."""
        self._box.update(caregiver=self._caregiver.view(0, None))

    # ------------------------------------------------------------ public API

    def start(self) -> None:
        """Connect in the background (retrying forever) and start publishing. Returns at once."""
        if self._thread is not None:
            return
        client_id = self.config.client_id or f"retroguard-{self.device_id}"
        client = make_client(
            self.config.link(),
            client_id,
            will=(self.topics.availability, payloads.OFFLINE),
            on_fault=self._on_callback_fault,  # the status says it
        )
        client.enable_logger(logging.getLogger(PAHO_LOGGER))
        client.reconnect_delay_set(
            self.config.reconnect_min_s,  # type: ignore[arg-type]  # paho accepts floats
            self.config.reconnect_max_s,  # type: ignore[arg-type]
        )
        client.max_inflight_messages_set(self.config.max_inflight + 50)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.MaximumPacketSize = MAX_PACKET_BYTES  # the broker drops anything larger for us
        client.connect_async(
            self.config.host,
            self.config.port,
            keepalive=self.config.keepalive_s,
            clean_start=True,
            properties=props,
        )
        self._thread = threading.Thread(target=self._run, name="retroguard-mqtt", daemon=True)
        self._thread.start()
        client.loop_start()
        log.info(
            "MQTT reporter for %s: broker %s:%d%s",
            self.device_id,
            self.config.host,
            self.config.port,
            " (TLS)" if self.config.tls else "",
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Announce ``offline`` (when connected), disconnect and stop the threads.

        Queued rows stay in the outbox for the next start. Call after the
        courier has handled the loop's last records, so they are queued first.
        """
        thread = self._thread
        if thread is None:
            return
        self._wake.put_nowait(_Stop())
        thread.join(timeout)
        self._thread = None

    def close(self) -> None:
        """Stop, then close the outbox's database connections."""
        self.stop()
        self.outbox.close()

    def set_providers(
        self,
        *,
        telemetry: TelemetryProvider | None = None,
        self_test: SelfTestProvider | None = None,
    ) -> None:
        """Attach the monitor's figures after it is built (the monitor is built after us).

        Call before :meth:`start`; both run on the publisher thread.
        """
        if telemetry is not None:
            self._telemetry = telemetry
        if self_test is not None:
            self._default_target.set_self_test(self_test)

    def wake(self) -> None:
        """Another writer queued outbox rows (a session summary): publish them. Non-blocking."""
        self._on_queued()
        self.sessions_changed()

    def sessions_changed(self) -> None:
        """The session log changed: recompute the retained ``progress``. Non-blocking.

        The courier should call it after every save of a session record (a
        session started, paused, finished an interval); without it a running
        session shows within :data:`PROGRESS_REFRESH_S`.
        """
        self._wake.put_nowait(_SessionsChanged())

    def session_walker_is(self, walker: str | None) -> None:
        """The walker of the guided session under way (None: none ended it, or none runs):
        the retained progress is theirs until it ends. Non-blocking."""
        self._wake.put_nowait(_SessionWalker(walker))

    def wall_clock_changed(self) -> None:
        """The wall clock became synchronised (NTP's first setting after boot), or stopped
        being: recompute the walkers' retained ``stage`` (flagged ``wall_unsynced`` while it
        was not) and the ``progress`` (its week is the clock's). Non-blocking. A stage is
        otherwise sent again only when what it says changes, so one computed before the
        clock was set kept its unset clock's time, which the caregiver service cannot order
        by, until the walker's next change."""
        self._wake.put_nowait(_WallClockChanged())

    def walkers_changed(self) -> None:
        """The walker profiles may have changed (``retroguard walker``): recompute the retained
        ``walkers`` and publish it if it did. Non-blocking."""
        self._wake.put_nowait(_WalkersChanged())

    def report_telemetry(self) -> None:
        """Queue a telemetry message now (a figure it shows changed). Non-blocking.

        Nothing when periodic telemetry is off (``telemetry_interval_s = 0``).
        """
        self._wake.put_nowait(_TelemetryDue())

    def publish_state(
        self,
        state: str,
        reason: str,
        wall_time: str | None = None,
        *,
        wall_unsynced: bool = False,
        worn: WornSaid | None = None,
        fault: FaultSaid | None = None,
    ) -> None:
        """Report the safety state (retained). Non-blocking: safe on the real-time thread.

        ``wall_time``: when it changed (default: now); ``wall_unsynced``: the clock that stamped
        it was not set (the message's ``wall_unsynced``: Home Assistant's ``since`` may be days
        off); ``worn``: what ``reason`` says of the sensor-worn check (the message's ``worn``);
        ``fault``: while FAULT, what kind (the message's ``fault``)."""
        wall = wall_time if wall_time is not None else payloads.wall_now()
        self._wake.put_nowait(_StateChange(str(state), reason, wall, wall_unsynced, worn, fault))

    @property
    def status(self) -> ReporterStatus:
        return self._box.status

    @property
    def commands(self) -> CommandHandler:
        """The handler that runs network commands (it holds only a :class:`CommandTarget`)."""
        return self._commands

    def wait_until(self, predicate: Callable[[ReporterStatus], bool], timeout: float) -> bool:
        """Block (not for the real-time thread) until ``predicate(status)`` holds.

        On the status as it stands: figures such as ``depth`` change only at the publisher's
        next pass, so a predicate the status from before the caller's last hand-over already
        satisfies holds at once. To wait for what a hand-over caused, use
        :meth:`wait_drained` or :meth:`wait_received`, which wait on figures read after the
        call."""
        box = self._box
        with box.cond:
            return box.cond.wait_for(lambda: predicate(box.status), timeout)

    def wait_drained(self, timeout: float) -> bool:
        """Block until the broker has everything (tests, demo, shutdown).

        Rows that only wait for a consumer's receipt do not count: the broker
        has them, and they are sent again after the next start.
        """
        return self._wait_fresh(lambda s: s.ready and s.depth == s.awaiting, timeout)

    def wait_received(self, timeout: float) -> bool:
        """Block until the broker has everything and a consumer has confirmed every alert
        (the demo's shutdown: its caregiver service is running). False when ``timeout``
        passes first; what is left stays in the outbox, sent again after the next start.
        Without alert receipts it is :meth:`wait_drained`."""
        return self._wait_fresh(lambda s: s.ready and s.depth == 0, timeout)

    def _wait_fresh(self, predicate: Callable[[ReporterStatus], bool], timeout: float) -> bool:
        """:meth:`wait_until` on figures the publisher looked up after this call (a poke)."""
        self._poke_sent += 1
        sent = self._poke_sent
        self._wake.put_nowait(_Poke(sent))
        return self.wait_until(lambda s: s.pokes >= sent and predicate(s), timeout)

    # ------------------------------------------------- callbacks (paho thread)

    def _on_queued(self) -> None:
        self._wake.put_nowait(_Queued())

    def _on_incident_event(self) -> None:
        self._wake.put_nowait(_IncidentEvent())

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            hint = ""
            if reason_code.value in (134, 135):
                hint = " (check mqtt.username and mqtt.password / password_file)"
            self._set_error(
                f"broker {self.config.host}:{self.config.port} refused the connection: "
                f"{reason_code}{hint}; events stay queued"
            )
            self._wake.put_nowait(_Unreachable())
            return
        self._wake.put_nowait(_Up())  # before the subscription's token: the grace starts here
        self._generation += 1
        client.publish(self.topics.availability, payloads.ONLINE, qos=1, retain=True)
        subs = [(self.topics.command_filter, 1), (self._caregiver_topic, 1)]
        if self.config.alert_receipts:
            subs.append((self.topics.receipt, 1))
        if self.config.discovery:
            subs.append((ha_status_topic(self.config.discovery_prefix), 1))
        _, self._sub_mid = client.subscribe(subs)
        self._logged_error = None
        self._callback_failed = False
        self._update(connected=True, last_error=None, connects=self._box.status.connects + 1)
        log.info("MQTT connected to %s:%d", self.config.host, self.config.port)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._wake.put_nowait(_Unreachable())
        self._set_error(
            f"cannot reach broker {self.config.host}:{self.config.port} "
            "(refused, unreachable or TLS failure); retrying, events stay queued"
        )

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._wake.put_nowait(_Down())
        if self._box.status.connected and not self._stopping and not self._callback_failed:
            self._set_error(f"connection to the broker lost: {reason_code}")
        self._update(connected=False, ready=False)

    def _on_callback_fault(self, fault: CallbackFault) -> None:
        """A callback raised on paho's thread (:class:`core.mqtt_callbacks.GuardedClient`),
        which drops the connection: the status says it until connected again. Before, the
        disconnect it caused said "connection to the broker lost: Unspecified error" over it
        at once, blaming the network for a bug. Not logged again: the guard's line says it
        with the topic, the traceback (or, the same again, the count) and what follows; a
        held message (:attr:`CallbackFault.held`) drops nothing."""
        if not fault.held:
            self._callback_failed = True
        self._set_error(fault.words(), logged=True)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        for rc in reason_codes:
            if rc.is_failure:
                log.error("MQTT subscription refused by the broker: %s (check the ACL)", rc)
        if mid == self._sub_mid:
            self._wake.put_nowait(_Subscribed(self._generation))

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._wake.put_nowait(_Acked(mid, reason_code.is_failure, str(reason_code)))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == ha_status_topic(self.config.discovery_prefix):
            if message.payload.strip() == b"online":
                self._wake.put_nowait(_HomeAssistantOnline())
            return
        if message.topic == self.topics.receipt:
            self._wake.put_nowait(_ReceiptArrived(bytes(message.payload)))
            return
        if message.topic == self._caregiver_topic:
            expiry = getattr(message.properties, "MessageExpiryInterval", None)
            expires_at = None if expiry is None else self._clock() + expiry
            self._wake.put_nowait(
                _CaregiverHeard(bytes(message.payload), bool(message.retain), expires_at)
            )
            return
        name = self.topics.command_name(message.topic)
        if name is not None and not self._budget.take():
            if self._refusals.take():  # a few are answered, not run; the rest unanswered
                self._wake.put_nowait(_CommandDropped(name, bytes(message.payload)))
            if self._budget.dropped % 1000 == 1:
                log.warning(  # words a reader can act on (it said "1 commands dropped so far")
                    "MQTT commands arrive faster than mqtt.command_rate_per_s and "
                    "mqtt.command_burst allow: %d dropped so far, not run (a few answered with a "
                    "refusal); something is flooding the device's cmd/ topics (logged again "
                    "every 1000)",
                    self._budget.dropped,
                )
            return
        if name is not None:
            # a live publish reaches a subscriber without the flag (MQTT 5, no "retain as
            # published"): set, the broker kept it and hands it over at every subscribe
            retained = bool(message.retain)
            self._wake.put_nowait(_CommandArrived(name, bytes(message.payload), retained))

    # ------------------------------------------------------- publisher thread

    def _update(self, **changes: Any) -> None:
        self._box.update(**changes)

    def _set_error(self, text: str, *, logged: bool = False) -> None:
        """The status says ``text``; the log too, once until it changes, unless the caller's
        own line already said it (``logged``: a callback's fault, which the guard logs with
        its traceback and its count, :mod:`core.mqtt_callbacks`)."""
        if text != self._logged_error:
            self._logged_error = text
            if not logged:
                log.error("MQTT: %s", text)
        self._update(last_error=text)

    def _run(self) -> None:
        """Until stopped: wait for a token or a timer, apply, publish what is due.

        No database error ends this thread. Each pass runs whole or fails
        whole; a failure is logged once (with its traceback), shown in
        :attr:`ReporterStatus.last_error`, and the pass is tried again after a
        growing pause (:data:`RETRY_FIRST_S` up to :data:`RETRY_MAX_S`) while
        tokens keep arriving. What a failed pass did not finish (acknowledged
        rows to settle, telemetry due) is kept for the next one.
        """
        interval = self.config.telemetry_interval_s
        next_telemetry = self._clock() + interval if interval > 0 else None
        retry_at: float | None = None
        pause = RETRY_FIRST_S
        try:
            while True:
                wake_at = [self._next_progress]
                # A round already due waits for the connection (a token wakes us then), not
                # for its timer: before, a broker outage longer than receipt_retry_s made
                # this loop spin at a whole core until the broker was back.
                if self.config.alert_receipts and not self._republish_due:
                    wake_at.append(self._next_republish)
                if self._refused and not self._refused_due:
                    wake_at.append(self._next_refused)
                if next_telemetry is not None:
                    wake_at.append(next_telemetry)
                if retry_at is not None:
                    wake_at.append(retry_at)
                if self._retained_retry_at is not None:
                    wake_at.append(self._retained_retry_at)
                caregiver_lapses = self._caregiver.expires_at
                if caregiver_lapses is not None:  # its topic then says it has lapsed
                    wake_at.append(caregiver_lapses)
                timeout = max(0.0, min(wake_at) - self._clock())
                try:
                    first = self._wake.get(timeout=timeout)
                except queue.Empty:
                    first = _Tick()
                items = [first]
                while True:
                    try:
                        items.append(self._wake.get_nowait())
                    except queue.Empty:
                        break
                stop = self._handle(items)
                self._caregiver.lapse_if_due()  # after what was heard; a failing pass never looks
                if next_telemetry is not None and self._clock() >= next_telemetry:
                    next_telemetry = self._clock() + interval
                    self._telemetry_due = True
                if self.config.alert_receipts and self._clock() >= self._next_republish:
                    self._republish_due = True
                if self._refused and self._clock() >= self._next_refused:
                    self._refused_due = True
                if self._clock() >= self._next_progress:
                    self._next_progress = self._clock() + PROGRESS_REFRESH_S
                    self._progress_due = True
                    self._stages_due = True  # a new week's count starts at midnight
                retained_retry = self._retained_retry_at
                if retained_retry is not None and self._clock() >= retained_retry:
                    self._retained_retry_at = None  # this pass tries them; a failure sets it anew
                if stop:
                    return
                if retry_at is not None and self._clock() < retry_at:
                    continue  # backing off: tokens are applied, the database is left alone
                try:
                    self._pass()
                except Exception as exc:
                    self._database_failed(exc, pause)
                    retry_at = self._clock() + pause
                    pause = min(RETRY_MAX_S, pause * 2)
                else:
                    retry_at, pause = None, RETRY_FIRST_S
                    self._database_works()
        except Exception:  # pragma: no cover - a bug outside the guarded pass
            log.exception("MQTT publisher thread failed; events stay queued for the next start")
            self._update(last_error="publisher thread failed")
        finally:
            self._shutdown()

    def _pass(self) -> None:
        """Everything that touches the database, in order; raises what the database raised."""
        self._follow_outbox()
        if self._to_settle:
            self.outbox.settle(self._to_settle)
            self._update(acked=self._box.status.acked + len(self._to_settle))
            self._to_settle = []
        if self._telemetry_due and self.config.telemetry_interval_s > 0:
            self._queue_telemetry()
        self._telemetry_due = False
        self._pump()
        awaiting = self.outbox.awaiting_count() if self.config.alert_receipts else 0
        caregiver = self._caregiver.view(
            awaiting, self.outbox.oldest_awaiting_wall() if awaiting else None
        )
        self._publish_caregiver(caregiver)
        self._update(
            depth=self.outbox.depth(),
            awaiting=awaiting,
            caregiver=caregiver,
            pokes=self._pokes,  # with the figures it asked for, never before them
        )

    def _publish_caregiver(self, view: CaregiverView) -> None:
        """The retained ``caregiver`` topic, when what it says changed (or after a connect)."""
        client = self._client
        if client is None or not self._ready or view == self._caregiver_sent:
            return
        client.publish(
            self.topics.caregiver,
            payloads.encode(view.message(self.device_id)),
            qos=1,
            retain=True,
        )
        self._caregiver_sent = view

    def _follow_outbox(self) -> None:
        """The outbox moved between the file and memory: publish it again from the start.

        Row ids mean the same message in both, but a row may have been
        copied or left behind: starting over (consumers drop repeats by id)
        is what cannot miss one.
        """
        generation = self.outbox.generation
        if generation == self._outbox_generation:
            return
        self._outbox_generation = generation
        self._cursor = 0
        self._inflight.clear()
        self._to_settle = []
        self._refused.clear()  # the cursor starts over: they go out again anyway
        self._republish_due = True
        log.info("MQTT outbox moved (storage fault or recovery): publishing it all again")

    def _database_failed(self, exc: Exception, pause: float) -> None:
        text = f"database error: {type(exc).__name__}: {exc}"
        if text != self._failing:
            log.error(
                "MQTT publisher: %s; trying again in %.1f s (events stay queued)",
                text,
                pause,
                exc_info=exc,
            )
        self._failing = text
        self._update(last_error=text)

    def _database_works(self) -> None:
        if self._failing is not None:
            log.info("MQTT publisher: the database works again")
            self._failing = None
            self._update(last_error=None)

    def _handle(self, items: list[_Token]) -> bool:
        """Apply a batch of wake-up tokens; True means stop.

        Only commands and receipts touch the database here; each is guarded
        on its own, so one that fails costs nothing else in the batch (a lost
        receipt means the alert is sent again, and the consumer confirms again).
        """
        stop = False
        for item in items:
            match item:
                case _Poke(number=number):
                    self._pokes = max(self._pokes, number)
                case _Acked(mid=mid, failed=failed, reason=reason):
                    row = self._inflight.pop(mid, None)
                    if row is None:
                        continue
                    if failed:
                        log.log(
                            logging.DEBUG if row in self._refused else logging.ERROR,
                            "MQTT broker refused outbox message %d: %s (kept; sent again after "
                            "a reconnect and every %g s)",
                            row,
                            reason,
                            self.config.receipt_retry_s,
                        )
                        self._refused.add(row)
                        self._update(refused=self._box.status.refused + 1)
                    else:
                        self._refused.discard(row)  # taken at last
                        self._to_settle.append(row)
                case _StateChange(state=state) as change:
                    self._state = change
                    self._state_dirty = True
                    self._update(device_state=state)
                case _Subscribed(generation=generation):
                    if generation == self._generation:
                        self._ready = True
                        self._state_dirty = True
                        self._republish_due = True  # a new broker session may not have them
                        self._restart_backoff()  # then soon again
                        self._retained.forget()  # nor these retained ones
                        self._incident_due = self._progress_due = self._walkers_due = True
                        self._stages_due = True
                        self._caregiver_sent = None
                        self._caregiver.subscribed()  # its retained presence comes next
                        if self.config.discovery or not self._withdrawn:
                            self._publish_discovery()
                case _Down():
                    self._ready = False
                    self._caregiver.unreachable()  # nobody can be paged until we connect again
                    self._caregiver_sent = None
                case _Unreachable():
                    self._caregiver.unreachable()  # alerts wait in the outbox meanwhile
                case _Up():
                    self._caregiver.connected()  # its presence can be heard from now
                case _CaregiverHeard(payload=payload, retained=retained, expires_at=expires_at):
                    self._caregiver.heard(payload, retained, expires_at)
                case _HomeAssistantOnline():
                    if self._ready and self.config.discovery:
                        self._publish_discovery()
                case _SessionsChanged():
                    self._progress_due = True
                    self._stages_due = True  # a session counted, or a progression stored
                case _WalkersChanged():
                    self._walkers_due = True
                    self._stages_due = True
                case _WallClockChanged():
                    self._progress_due = True
                    self._stages_due = True
                case _SessionWalker(walker=walker):
                    if walker != self._retained.session_walker:
                        self._retained.session_walker = walker
                        self._progress_due = True
                case _CommandArrived(name=name, payload=payload, retained=retained):
                    self._guarded(
                        f"command {name}", lambda: self._run_command(name, payload, retained)
                    )
                case _CommandDropped(name=name, payload=payload):
                    self._guarded(
                        f"command {name}", lambda: self._publish_reply(dropped_reply(name, payload))
                    )
                case _ReceiptArrived(payload=payload):
                    self._guarded("receipt", lambda: self._take_receipt(payload))
                case _SilenceAnswered(request_id=silenced, result=result):
                    answer = Reply(CommandName.SILENCE, silenced, True, msgspec.to_builtins(result))
                    self._guarded("silence reply", functools.partial(self._publish_reply, answer))
                case _TelemetryDue():
                    self._telemetry_due = True
                case _Stop():
                    stop = True
                case _IncidentEvent():
                    self._incident_due = True
                case _Queued():
                    pass
                case _Tick():
                    pass
        self._update(ready=self._ready)
        return stop

    def _guarded(self, what: str, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception as exc:
            log.error("MQTT %s failed: %s: %s", what, type(exc).__name__, exc)

    def _pump(self) -> None:
        client = self._client
        if client is None or not self._ready:
            return
        if self._state_dirty and self._state is not None:
            told = self._state
            payload = payloads.state_payload(
                self.device_id,
                told.state,
                told.reason,
                told.wall_time,
                wall_unsynced=told.wall_unsynced,
                worn=told.worn,
                fault=told.fault,
            )
            client.publish(self.topics.state, payload, qos=1, retain=True)
            self._state_dirty = False
        if self._republish_due or self._refused_due:
            self._republish(client)
        self._publish_rows(client)
        self._publish_retained(client)

    def _publish_rows(self, client: mqtt.Client) -> None:
        """Hand the next outbox rows to paho, up to ``max_inflight`` unacknowledged."""
        room = self.config.max_inflight - len(self._inflight)
        if room <= 0:
            return
        for row in self.outbox.fetch_after(self._cursor, room):
            try:
                info = client.publish(row.topic, row.payload, qos=1)
            except ValueError as exc:  # e.g. payload over the broker's size limit
                log.error("MQTT outbox row %d cannot be published: %s", row.id, exc)
                return
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                log.warning("MQTT publish of outbox row %d: %s", row.id, mqtt.error_string(info.rc))
                return
            # NO_CONN still leaves the message in paho's session: it is re-sent on reconnect.
            self._inflight[info.mid] = row.id
            self._cursor = row.id

    def _publish_retained(self, client: mqtt.Client) -> None:
        """The retained ``incident``, ``progress``, ``walkers`` and walkers' ``stage``, when
        what they say may have changed: each computed and handed to the client on its own, so
        one that cannot be read now (a busy database) costs the others nothing. A topic stops
        being due only once the client has its message (or it says what the broker has); one
        that failed stays due and is tried again after a growing pause (:data:`RETRY_FIRST_S`
        up to :data:`RETRY_MAX_S`), whatever else wakes the publisher meanwhile."""
        if self._incident_due:
            self._incident_due = not self._publish_status(client, self._retained.incident)
        if self._progress_due:
            self._progress_due = not self._publish_status(client, self._retained.progress)
        if self._walkers_due:
            self._walkers_due = not self._publish_status(client, self._retained.walkers)
        if self._stages_due:
            self._stages_due = not self._publish_stages(client)
        if self._incident_due or self._progress_due or self._walkers_due or self._stages_due:
            self._retained_retry_at = self._clock() + self._retained_pause
            self._retained_pause = min(RETRY_MAX_S, self._retained_pause * 2)
        else:
            self._retained_retry_at, self._retained_pause = None, RETRY_FIRST_S
            self._logged_status_error = False

    def _publish_stages(self, client: mqtt.Client) -> bool:
        """Every walker's retained ``stage`` that changed, handed to the client; False: some
        are still owed (the database could not be read, or the client did not take one)."""
        try:
            messages = self._retained.stages()
        except Exception:
            self._status_failed()
            return False
        return all([self._hand_over(client, message) for message in messages])

    def _status_failed(self) -> None:
        # A database that cannot be read now: the events still go out; try again later.
        if not self._logged_status_error:
            log.exception("MQTT: a retained status message could not be computed")
            self._logged_status_error = True

    def _publish_status(self, client: mqtt.Client, compute: Callable[[], Retained | None]) -> bool:
        """Compute one retained status message and hand it to the client; False: it is still
        owed (the database could not be read, or the client did not take it)."""
        try:
            message = compute()
        except Exception:
            self._status_failed()
            return False
        if message is None:
            return True  # says what the broker has
        return self._hand_over(client, message)

    def _hand_over(self, client: mqtt.Client, message: Retained) -> bool:
        """Give one retained message to the client (QoS 1); False: it did not take it."""
        try:
            info = client.publish(message.topic, message.payload, qos=1, retain=True)
        except ValueError as exc:  # e.g. over the broker's size limit
            log.error("MQTT retained %s cannot be published: %s", message.topic, exc)
            return False
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            log.warning("MQTT publish of %s: %s", message.topic, mqtt.error_string(info.rc))
            return False
        # NO_CONN still leaves the message in paho's session; a reconnect sends them all anew.
        self._retained.published(message)
        return True

    def _take_receipt(self, payload: bytes) -> None:
        try:
            receipt = payloads.decode_as(ReceiptMessage, payload)
        except ProtocolError as exc:
            log.warning("MQTT receipt ignored: %s", exc)
            return
        # Only rows already sent: a summary amended since is queued under the same id.
        forgotten = self.outbox.receipted(receipt.ids, published_up_to=self._cursor)
        self.receipted += forgotten
        # A consumer is alive: what it has not confirmed goes again soon, not after the backoff.
        self._restart_backoff(sooner_only=True)
        confirmed = len(receipt.ids)
        log.info(
            "%s confirmed %d %s (%d left the outbox)",
            receipt.by,
            confirmed,
            "message" if confirmed == 1 else "messages",
            forgotten,
        )

    def _restart_backoff(self, *, sooner_only: bool = False) -> None:
        """The next round of receipt-waiting rows comes ``receipt_retry_s`` from now (a
        (re)connect), or by then at the latest (``sooner_only``: a receipt, which may arrive
        just before a round already due), and the backoff starts over."""
        self._receipt_wait = self.config.receipt_retry_s
        due = self._clock() + self._receipt_wait
        self._next_republish = min(self._next_republish, due) if sooner_only else due

    def _republish(self, client: mqtt.Client) -> None:
        """Send again what the broker refused, and (a reconnect, or the receipt timer) what it
        has acknowledged and no consumer has confirmed.

        The refused rows come back every ``receipt_retry_s``. The receipt-waiting ones back
        off: a round that still has some to send doubles the wait before the next, up to
        ``receipt_retry_max_s``; a (re)connect or any consumer's receipt brings it back to
        ``receipt_retry_s``, and a round with none waiting leaves it there. Nothing is
        forgotten meanwhile: the rows stay in the outbox until a receipt names them.
        """
        now = self._clock()
        timer = now >= self._next_republish  # not a reconnect's round, nor a moved outbox's
        awaiting = self._republish_due and self.config.alert_receipts
        self._republish_due = self._refused_due = False
        self._next_refused = now + self.config.receipt_retry_s
        in_flight = set(self._inflight.values())
        room = max(0, self.config.max_inflight - len(self._inflight))
        refused = self.outbox.fetch_ids(self._refused) if self._refused else []
        self._refused = {row.id for row in refused}  # a receipt may have taken some meanwhile
        rows = refused[:room]
        waiting = []
        if awaiting:
            waiting = self.outbox.awaiting_receipt(room - len(rows))
            if not waiting:
                self._receipt_wait = self.config.receipt_retry_s
            elif timer:  # the wait ran out with no receipt: wait twice as long for the next
                self._receipt_wait = min(self.config.receipt_retry_max_s, self._receipt_wait * 2)
            self._next_republish = now + self._receipt_wait
        copies = 0
        for row in rows + waiting:
            if row.id in in_flight:
                continue
            info = client.publish(row.topic, row.payload, qos=1)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                break
            self._inflight[info.mid] = row.id
            copies += row.id not in self._refused
        if copies:
            self._update(republished=self._box.status.republished + copies)

    def _queue_telemetry(self) -> None:
        health = DeviceHealth()
        if self._telemetry is not None:
            try:
                health = self._telemetry()
            except Exception:
                log.exception("telemetry provider failed")
        self.outbox.enqueue_telemetry(
            payloads.telemetry_payload(self.device_id, self.outbox.depth(), health)
        )

    def _publish_discovery(self) -> None:
        """Announce the device to Home Assistant, or (``discovery = false``) withdraw it.

        The empty retained message removes a device Home Assistant knows and
        is a no-op otherwise, so turning discovery off leaves no ghost device.
        """
        if self._client is None:
            return
        self._withdrawn = not self.config.discovery
        self._client.publish(
            discovery_topic(self.config.discovery_prefix, self.device_id),
            discovery_payload(
                self.topics,
                self.device_name,
                self.config.dashboard_url,
                telemetry=self.config.telemetry_interval_s > 0,
                caregiver=self.config.expects_caregiver(),
            )
            if self.config.discovery
            else REMOVE_PAYLOAD,
            qos=1,
            retain=True,
        )

    def answer_silence(self, request_id: str | None, result: SilenceResult) -> None:
        """The loop's answer to a ``silence`` (any thread; non-blocking): published as the
        command's reply by the publisher thread."""
        self._wake.put_nowait(_SilenceAnswered(request_id, result))

    def _run_command(self, name: str, payload: bytes, retained: bool = False) -> None:
        if retained:
            reply = retained_command_reply(self.topics.command(name), name)
        else:
            reply = self._commands.handle(name, payload)
        self._update(commands=self._box.status.commands + 1)
        if not reply.later:  # a silence: replied when the loop answers (answer_silence)
            self._publish_reply(reply)

    def _publish_reply(self, reply: Reply) -> None:
        if self._client is not None:
            self._client.publish(
                self.topics.reply,
                payloads.reply_payload(
                    self.device_id,
                    reply.command,
                    reply.request_id,
                    reply.ok,
                    reply.result,
                    reply.error,
                ),
                qos=1,
            )

    def _shutdown(self) -> None:
        self._retained.close()
        client = self._client
        if client is None:
            return
        self._stopping = True
        if self._box.status.connected:
            try:
                info = client.publish(
                    self.topics.availability, payloads.OFFLINE, qos=1, retain=True
                )
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError) as exc:
                log.warning("MQTT: could not announce offline: %s", exc)
        client.disconnect()
        client.loop_stop()
        self._update(connected=False, ready=False)
        self._client = None


def retained_command_reply(topic: str, name: str) -> Reply:
    """The refusal of a command the broker kept (published with the retain flag).

    A command is one-off: a retained one would be handed over, and run, at every start and
    every reconnect — a retained ``ack`` of ``latest`` closed whichever incident was open
    then (a fall during a network drop, before anyone saw it), a retained ``plan`` was
    assigned again over the physio's newer one. It is answered, so the sender's reply topic
    says why nothing happened and how to clear it, and not run."""
    log.warning("MQTT command %r ignored: it is retained on the broker (stale)", name[:64])
    return Reply(
        name[:64],
        None,
        False,
        error=(
            "retained command ignored: commands are one-off, a retained one would run at "
            f"every reconnect; publish it without the retain flag, and clear it with "
            f"mosquitto_pub -r -n -t '{topic}'"
        ),
    )


def _known_walker(conn: sqlite3.Connection, walker: str) -> None:
    """A plan for a walker this device does not have is refused, naming the field: walkers are
    added only at the device (``retroguard walker add``), never from the network."""
    if all(w.id != walker for w in active_walkers(conn)):
        raise CommandError(
            f"walker: no walker {walker!r} on this device (add one with retroguard walker add)"
        )
