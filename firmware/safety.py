"""The safety controller: a declared state machine that owns relay and buzzer.

States and the only transitions allowed (:data:`SAFETY_TRANSITIONS`; the
same block is in docs/safety.md, and a test keeps the three equal)::

    stateDiagram-v2
        [*] --> STARTING : start
        STARTING --> STANDBY : IMU healthy
        STARTING --> FAULT : fault
        STANDBY --> ARMED : local reset
        STANDBY --> FAULT : fault
        ARMED --> TRIPPED : stumble or fall
        ARMED --> FAULT : fault
        TRIPPED --> ARMED : local reset
        TRIPPED --> FAULT : fault
        FAULT --> STANDBY : IMU healthy

The relay is held only in ARMED, and only for a batch that passed every
check: each healthy batch calls :meth:`Relay.hold` once (one heartbeat edge).
Everything else — a detection, IMU silence, frozen or impossible data, FIFO
overflow, a detector exception, a sensor that stopped showing a body for
``safety.not_worn_trip_s`` — releases it on the spot, before the next sample
is looked at. Arming needs a local button press that went down after the
trip (or after STANDBY began), with the IMU healthy for a while and showing
a body (the sensor-worn check, :mod:`firmware.detection.worn`); there is no
other way in: the table has no edge into ARMED but "local reset".

Every change of state goes through :meth:`SafetyController._enter`, which
releases the relay for every state but ARMED and checks the table. A
transition the table forbids is a bug in this module; it must not raise into
the real-time loop, so it releases the relay, logs, and goes to FAULT with
the usual FAULT event.

Each :class:`Transition` carries a typed :data:`Cause` (what happened, e.g.
``Detected(DetectionKind.STUMBLE)`` or ``Faulted(FaultKind.FROZEN_DATA)``)
beside the human ``reason`` that logs, events and MQTT payloads show.

Where the relay's contact is read back (:meth:`SafetyController.on_contact`),
the controller also compares it with what it asked for and faults when they
disagree for longer than ``safety.contact_debounce_s``: open while ARMED (the
hold circuit or the relay let go on its own, or the latch never closed), or
closed while released (a welded contact or a wiring fault: FAULT, and it stays
in FAULT while the contact reads closed). A gap between heartbeat edges as long
as the hold time needs no read-back: the controller measures it itself, and
it is a FAULT at once (:attr:`FaultKind.HEARTBEAT_GAP`).
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from core.protocol.events import Event, EventType
from core.protocol.messages import (
    SENSOR_NOT_WORN,
    STILL_MEASURING,
    FaultSaid,
    ImuRecording,
    WornSaid,
)
from core.samples import ImuSample
from core.wallclock import WallStamper
from firmware.config import HOLD_MARGIN as HOLD_MARGIN  # where tests and docs name it
from firmware.config import SafetyConfig
from firmware.contact import ContactWatch, Mismatch
from firmware.detection.base import (
    TRIPPING_KINDS,
    Detection,
    DetectionKind,
    Detector,
    KnowsPosture,
)
from firmware.detection.worn import WornCheck
from firmware.failure_log import RepeatedFailureLog, describe
from firmware.fsm import TransitionTable
from firmware.windows import KnowsImpact, KnowsUpright, Recording, WindowRecorder
from hal.errors import ImuBusError, ImuError, ImuFifoOverflowError
from hal.interfaces import Buzzer, Relay

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SoundingAlarm:
    """A safety pattern the controller played, and what it belongs to: the event it sounded
    for (a trip's, a fault's, a call for help's) and the incident. A caregiver's ``silence``
    naming an event or incident stops the alarm only when they match
    (:func:`firmware.app.silence_alarm`), so a late silence never stops a newer alarm."""

    pattern: str
    event: str | None
    incident: str | None


class SafetyState(StrEnum):
    STARTING = "STARTING"
    STANDBY = "STANDBY"
    ARMED = "ARMED"
    TRIPPED = "TRIPPED"
    FAULT = "FAULT"


class Trigger(StrEnum):
    """What may move the controller from one state to another: the table's edge labels."""

    START = "start"
    """The monitor starts (once, from the initial pseudo-state)."""
    IMU_HEALTHY = "IMU healthy"
    """Good batches for ``healthy_before_arm_s``: ready to be armed."""
    LOCAL_RESET = "local reset"
    """A press of the local reset button after the trip or fault, with the IMU healthy."""
    DETECTION = "stumble or fall"
    """A tripping detection while ARMED."""
    FAULT = "fault"
    """Anything that makes the data or the code untrustworthy (see :class:`FaultKind`)."""


NOT_UPRIGHT_REASON = (
    "not armed: the sensor reads the walker lying down; stand up on the treadmill with the "
    "sensor clipped upright on the belt, then press reset"
)
"""Why a reset press was refused while the detector reads lying (:class:`KnowsPosture`)."""

LET_GO_REASON = "not armed: reset was let go before the chirp; press and hold reset until the chirp"
"""Why a reset press let go before the chirp was refused (:meth:`SafetyController.on_button`)."""

STILL_MEASURING_REASON = (
    f"{STILL_MEASURING} the body signal (a few seconds after a start or a fault); press reset again"
)
"""Why a reset press in the first seconds after a start or a fault was refused: the sensor-worn
check has no verdict yet (:attr:`WornCheck.ready`). Not that the sensor is off: the walker
wearing it hears the ``refused`` beeps and, with a voice, to wait and press again — it used to
be the ``not_worn`` beeps and "The sensor is not on your body. Clip it on your belt"."""

NOT_READY_REASON = (
    "not armed: the sensor's data has not been healthy long enough yet (the first second or "
    "so after a start, or a break in the data); wait a few seconds, then press and hold reset"
)
"""Why a reset press was refused before the IMU data had been healthy for
``healthy_before_arm_s``: in STARTING, in STANDBY or TRIPPED after a break in the data, and in
STANDBY for a press that went down before STANDBY began (in STARTING or FAULT, its report
later). Such a press used to be logged only: the walker heard nothing. Now the ``refused``
beeps and, with a voice, the still-measuring words: wait, then press again."""

PRESSED_TWICE_REASON = (
    "not armed: reset was pressed twice; press reset once and hold it until the chirp"
)
"""Why two presses in STANDBY or TRIPPED were refused (a tap then a hold, a double press that
chooses no walker): the second press of a sequence never arms (:mod:`firmware.presses`)."""


class FaultKind(StrEnum):
    """Why the controller went to FAULT."""

    IMU_SILENT = "IMU silent"
    """No sample for longer than ``sample_timeout_s`` (lost bus, unplugged sensor)."""
    IMU_ERROR = "IMU error"
    """The driver gave up: disconnected, wrong chip identity, no wake-up."""
    FIFO_OVERFLOW = "FIFO overflow"
    """The sensor's FIFO overflowed: samples were lost, the detector may have missed a fall."""
    OUT_OF_RANGE = "out-of-range data"
    """A reading beyond what the configured ranges can report (or NaN)."""
    FROZEN_DATA = "frozen data"
    """Identical readings for ``frozen_after_s``: real sensor noise never does that."""
    TIMESTAMPS_NOT_INCREASING = "timestamps not increasing"
    DETECTOR_ERROR = "detector error"
    """The detector raised."""
    LOOP_CRASH = "loop crash"
    """An exception escaped the monitor loop (reported by :meth:`SafetyController.fail`)."""
    FORBIDDEN_TRANSITION = "forbidden transition"
    """The controller tried a transition its table does not allow: a bug here."""
    CONTACT_OPEN_WHILE_ARMED = "relay contact open while armed"
    """The contact read back open while ARMED for ``contact_debounce_s``: the hold circuit or
    the relay let go on its own, or the relay never closed after the reset press."""
    HEARTBEAT_GAP = "heartbeat gap"
    """While ARMED, no heartbeat edge for :data:`HOLD_MARGIN` of ``gpio.heartbeat_hold_s`` or
    longer (the loop
    stalled, or the IMU paused for less than ``sample_timeout_s``): the hold circuit has let
    the relay go and the latch keeps it open. Measured by the controller, so it is said with
    the contact read back or without it."""
    RESET_LET_GO = "reset let go before the latch closed"
    """The reset button read up right after the first heartbeat edge of an arming (let go as
    the press was reported, or before the edge came), so the latch, which closes only while
    the button is down as the edges begin, may be open under an ARMED state, and the next
    press would close it. At once, the contact read back or not: the contact's debounce
    (0.1 s) left the next press time to close the latch under ARMED; and the relay is fine,
    not :attr:`CONTACT_OPEN_WHILE_ARMED`'s "may not stop the belt"."""
    NOT_WORN = SENSOR_NOT_WORN
    """While ARMED, no body signal (sway, breathing, gait) for ``not_worn_trip_s``: the sensor
    fell off or was left on the console; it watches no one (see :mod:`firmware.detection.worn`)."""
    CONTACT_CLOSED_WHILE_RELEASED = "relay contact closed while released"
    """The contact read back closed while the relay was released, for ``contact_debounce_s``:
    a welded contact, a wiring fault, or a cut sense wire. FAULT while it lasts."""


class FaultClass(StrEnum):
    """What a fault means to the walker at the belt: the words a reset press in FAULT gets
    (:attr:`SafetyController.fault_class`; docs/safety.md, "Button press patterns")."""

    SENSOR = "sensor"
    """The sensor, its bus or its data cannot be trusted: the belt cannot run."""
    NOT_WORN = "not worn"
    """The sensor shows no body: clip it on."""
    CONTACT = "contact"
    """The relay's contact disagrees with what was asked: it may not stop the belt."""
    MONITOR = "monitor"
    """The monitor's own code failed (the detector, the loop, its table)."""
    STALL = "stall"
    """The loop or the IMU paused for longer than the relay's hold (or the reset was let go
    before the latch closed, the contact read back or not): the belt stopped, and the
    FAULT clears by itself after healthy data, so a reset arms again seconds later. Not
    :attr:`MONITOR`'s words ("the belt cannot run"), which would send a walker who can go on
    to call for help."""


FAULT_CLASSES: Mapping[FaultKind, FaultClass] = {
    FaultKind.IMU_SILENT: FaultClass.SENSOR,
    FaultKind.IMU_ERROR: FaultClass.SENSOR,
    FaultKind.FIFO_OVERFLOW: FaultClass.SENSOR,
    FaultKind.OUT_OF_RANGE: FaultClass.SENSOR,
    FaultKind.FROZEN_DATA: FaultClass.SENSOR,
    FaultKind.TIMESTAMPS_NOT_INCREASING: FaultClass.SENSOR,
    FaultKind.DETECTOR_ERROR: FaultClass.MONITOR,
    FaultKind.LOOP_CRASH: FaultClass.MONITOR,
    FaultKind.FORBIDDEN_TRANSITION: FaultClass.MONITOR,
    FaultKind.CONTACT_OPEN_WHILE_ARMED: FaultClass.CONTACT,
    FaultKind.HEARTBEAT_GAP: FaultClass.STALL,
    FaultKind.RESET_LET_GO: FaultClass.STALL,
    FaultKind.NOT_WORN: FaultClass.NOT_WORN,
    FaultKind.CONTACT_CLOSED_WHILE_RELEASED: FaultClass.CONTACT,
}
"""Every :class:`FaultKind`'s class (a test keeps it whole)."""

FAULT_SAID: Mapping[FaultClass, FaultSaid] = {
    FaultClass.STALL: FaultSaid.STALL,
    FaultClass.NOT_WORN: FaultSaid.NOT_WORN,
    FaultClass.SENSOR: FaultSaid.SENSOR,
    FaultClass.CONTACT: FaultSaid.CONTACT,
    FaultClass.MONITOR: FaultSaid.MONITOR,
}
"""Each class as the state message says it (its ``fault``): dashboards and Home Assistant
tell a stall, which clears by itself, from a fault someone must see to."""

PASSING = frozenset({FaultClass.STALL, FaultClass.NOT_WORN})
"""Faults that clear without anyone seeing to the monitor (a stall by itself, a sensor not
worn once clipped back on). Held in FAULT, they give way to a fault of another class found
meanwhile (:meth:`SafetyController._fault`): a sensor that died after a stall was said, to the
caregivers, Home Assistant and the walker, to clear by itself, for ever, and never restarted."""


def _worn_of(kind: FaultKind) -> WornSaid | None:
    """What a FAULT's reason says of the sensor-worn check (:attr:`SafetyController.worn_said`)."""
    return WornSaid.NOT_WORN if kind is FaultKind.NOT_WORN else None


@dataclass(frozen=True, slots=True)
class Started:
    trigger: ClassVar[Trigger] = Trigger.START


@dataclass(frozen=True, slots=True)
class ImuHealthy:
    trigger: ClassVar[Trigger] = Trigger.IMU_HEALTHY


@dataclass(frozen=True, slots=True)
class LocalReset:
    trigger: ClassVar[Trigger] = Trigger.LOCAL_RESET


@dataclass(frozen=True, slots=True)
class Detected:
    kind: DetectionKind
    trigger: ClassVar[Trigger] = Trigger.DETECTION


RESTART_MAY_CURE = frozenset(
    {
        FaultKind.IMU_SILENT,
        FaultKind.IMU_ERROR,
        FaultKind.FIFO_OVERFLOW,
        FaultKind.OUT_OF_RANGE,
        FaultKind.FROZEN_DATA,
        FaultKind.TIMESTAMPS_NOT_INCREASING,
        FaultKind.DETECTOR_ERROR,
    }
)
"""Faults a fresh process may cure (it re-initialises the sensor, the bus and the detector).
A welded contact or a bug in the table is not one of them: restarting would only repeat the
fault and its alert, forever."""


@dataclass(frozen=True, slots=True)
class Faulted:
    kind: FaultKind
    trigger: ClassVar[Trigger] = Trigger.FAULT


Cause = Started | ImuHealthy | LocalReset | Detected | Faulted
"""What made a transition happen, typed: read this, never the English ``reason``."""


_S = SafetyState
SAFETY_TRANSITIONS: TransitionTable[SafetyState, Trigger] = TransitionTable(
    {
        None: {_S.STARTING: Trigger.START},
        _S.STARTING: {_S.STANDBY: Trigger.IMU_HEALTHY, _S.FAULT: Trigger.FAULT},
        _S.STANDBY: {_S.ARMED: Trigger.LOCAL_RESET, _S.FAULT: Trigger.FAULT},
        _S.ARMED: {_S.TRIPPED: Trigger.DETECTION, _S.FAULT: Trigger.FAULT},
        _S.TRIPPED: {_S.ARMED: Trigger.LOCAL_RESET, _S.FAULT: Trigger.FAULT},
        _S.FAULT: {_S.STANDBY: Trigger.IMU_HEALTHY},
    }
)
"""The only transitions the controller makes (``None``: before :meth:`SafetyController.start`).

A plain frozen table, checked with one set lookup, rather than a state
machine library: see docs/safety.md, "Why a table".
"""


HELP_REPEAT_S = 10.0
"""A second call for help this soon after the last is confirmed to the walker, not re-sent."""

MIN_QUIET_BLOCKS = 2
"""The sensor-worn check's quiet blocks in a row before a trip, whatever the timestamps say:
one quiet block (a walker standing unusually still) never stops the belt. The config refuses
a ``not_worn_trip_s`` shorter than two blocks, so on a sensor clocked right this changes nothing."""


_DETECTION_EVENTS = {
    DetectionKind.STUMBLE: EventType.STUMBLE,
    DetectionKind.FALL: EventType.FALL,
    DetectionKind.NO_RECOVERY: EventType.NO_RECOVERY,
}


@dataclass(frozen=True, slots=True)
class SensorLimits:
    """Largest magnitude the configured ranges can report; beyond is garbage."""

    accel_g: float
    gyro_dps: float


@dataclass(frozen=True, slots=True)
class Transition:
    state: SafetyState
    """The state entered."""
    reason: str
    """For people: logs, events, MQTT. Code reads :attr:`cause`."""
    t: float
    cause: Cause
    source: SafetyState | None
    """The state left; None for the first transition (the start)."""


@dataclass(frozen=True, slots=True)
class _Problem:
    """A sample that failed a check: why, typed and in words."""

    kind: FaultKind
    reason: str


class SafetyController:
    """Decides, sample by sample, whether the treadmill may keep running.

    All methods run on the real-time thread; ``emit`` must not block (it is
    :meth:`firmware.link.endpoint.CourierLink.submit`).
    """

    def __init__(
        self,
        *,
        relay: Relay,
        buzzer: Buzzer,
        detector: Detector,
        emit: Callable[[Event], None],
        config: SafetyConfig,
        limits: SensorLimits,
        sample_rate_hz: float,
        device_id: str,
        on_state: Callable[[str, str, WornSaid | None, FaultSaid | None], None] | None = None,
        start_reason: str = "monitor started",
        heartbeat_hold_s: float | None = None,
        edge_clock: Callable[[], float] | None = None,
        arm_gate: Callable[[float], str | None] | None = None,
        wall: WallStamper | None = None,
        reset_held: Callable[[], bool] | None = None,
    ) -> None:
        """``heartbeat_hold_s``: the hold circuit's hold time (heartbeat drive): a gap between
        edges as long is a FAULT (:attr:`FaultKind.HEARTBEAT_GAP`); None for static drive.
        ``edge_clock``: the loop's monotonic clock, read at each heartbeat edge to measure the
        gaps between edges (a batch's ``now`` is read before the batch is processed, which can
        itself be delayed); without it ``now`` stands in. ``wall``: stamps each event's wall
        time and whether the clock was synchronised (default: the host's clock, its
        ``adjtimex`` read at most every few seconds, :class:`~core.wallclock.WallStamper`).
        ``reset_held``: the reset button's level now (one pin read), read right after the first
        heartbeat edge of each arming (:meth:`_hold`); None: not read (static drive has no
        latch). Up there is a FAULT at once, the contact read back or not: waiting for the
        contact's debounce to say the latch never closed left a window in which the next
        press closed it under ARMED."""
        self._wall = wall if wall is not None else WallStamper()
        self._relay = relay
        self._buzzer = buzzer
        self._detector = detector
        self._detector_failures = RepeatedFailureLog("detector", log)
        self._emit = emit
        self._config = config
        self._limits = limits
        self._device_id = device_id
        self._on_state = on_state
        self._start_reason = start_reason
        self._arm_gate = arm_gate
        """Asked at each reset press: why a new walk may not be armed now (None: it may)."""
        self._recorder = WindowRecorder(
            sample_rate_hz, limits.accel_g, limits.gyro_dps, before_s=config.window_before_s
        )
        """The recent IMU, and the recordings around trips under way (docs/incidents.md)."""
        self._upright = detector if isinstance(detector, KnowsUpright) else None
        self._posture = detector if isinstance(detector, KnowsPosture) else None
        self._impact = detector if isinstance(detector, KnowsImpact) else None
        self._incident: str | None = None
        self.state = SafetyState.STARTING
        self.reason = "starting"
        self.worn_said: WornSaid | None = None
        """What :attr:`reason` says of the sensor-worn check, typed (the state message's
        ``worn``): a dashboard tells "still measuring" from "not worn" without the words."""
        self.since = 0.0
        self.transitions: deque[Transition] = deque(maxlen=256)
        self._started = False
        self._last_good_t: float | None = None
        self._last_good_at: float | None = None
        self._healthy_since: float | None = None
        self._last_values: tuple[float, ...] | None = None
        self._frozen_since: float | None = None
        self.samples_seen = 0
        self.bus_errors = 0
        self.last_detection: Detection | None = None
        self._hold_s = heartbeat_hold_s
        self._edge_clock = edge_clock
        self._reset_held = reset_held
        self._contact = ContactWatch(config.contact_debounce_s)
        self._contact_fault: FaultKind | None = None
        self._last_hold_at: float | None = None
        self._edge_since_armed = False
        self._closed_since_armed = False
        self._worn: WornCheck | None = (
            WornCheck(
                sample_rate_hz,
                threshold_dps=config.worn_min_rotation_dps,
                block_s=config.worn_block_s,
            )
            if config.worn_check
            else None
        )
        """Is the sensor on a body? None when ``safety.worn_check`` is off (a bench)."""
        self._last_help_at: float | None = None
        self._help_incidents: deque[str] = deque(maxlen=8)
        """Incidents the walker asked for help in, until a caregiver answers (closes) one."""
        self._fault_kind: FaultKind | None = None
        """The fault that holds the controller in FAULT (the latest announced); None elsewhere."""
        self._fault_sound: SoundingAlarm | None = None
        """The last fault's beeps (its event, its incident): what a contact fault sounds again
        once a refused press's beeps are over."""
        self._beep_fault_again = False
        """A press was refused in a contact fault: its beeps come back after the refusal's."""
        self._said_not_worn = False
        """STANDBY's reason says "sensor not worn" (so it is said once, and taken back once)."""
        self._said_measuring = False
        """STANDBY's reason is a refused press's "still measuring": the first verdict replaces it
        (it stayed, the LED showing ``not_worn`` and the dashboard "sensor not worn", under a
        walker wearing the sensor, until the next press)."""
        self._sounded: SoundingAlarm | None = None
        """The last safety pattern this controller started, with its event and incident."""
        self._last_help: tuple[str, str] | None = None
        """The last call for help sent: its event and incident (a repeat within
        :data:`HELP_REPEAT_S` sounds for them again, sending nothing)."""

    @property
    def incident(self) -> str | None:
        """The incident open now (from the first trip or fault until the walker re-arms)."""
        return self._incident

    @property
    def fault_kind(self) -> FaultKind | None:
        """The fault that holds the controller in FAULT now (the newest: one found while
        already in FAULT replaces it, with no transition); None outside FAULT."""
        return self._fault_kind if self.state is SafetyState.FAULT else None

    @property
    def fault_class(self) -> FaultClass | None:
        """What the fault that holds the controller in FAULT means to the walker; None
        outside FAULT. One attribute read: the session runner's words for a refused press."""
        kind = self._fault_kind
        if kind is None or self.state is not SafetyState.FAULT:
            return None
        return FAULT_CLASSES[kind]

    @property
    def help_waiting(self) -> bool:
        """The walker called for help in the incident open now and no caregiver has answered
        (closed it) yet: what the after-trip words say instead of how to call for help."""
        incident = self._incident
        return incident is not None and incident in self._help_incidents

    @property
    def sounding(self) -> SoundingAlarm | None:
        """The safety pattern the buzzer is playing, with the event and incident it sounded
        for; None when the buzzer plays none of this controller's (silent, a cue, a chirp, or
        the pattern ended). One property read and a comparison: for the loop."""
        sounded = self._sounded
        if sounded is None or self._buzzer.pattern != sounded.pattern:
            return None
        return sounded

    def _sound(
        self, pattern: str, now: float, event: str | None = None, incident: str | None = None
    ) -> None:
        """Play a safety pattern and, when the buzzer took it (a lower one never cuts a higher
        one), note what it sounds for (:attr:`sounding`)."""
        self._buzzer.play(pattern, now)
        if self._buzzer.pattern == pattern:
            self._sounded = SoundingAlarm(pattern, event, incident)

    # ----------------------------------------------------------------- inputs

    def start(self, now: float) -> None:
        """Begin in STARTING with the relay released."""
        self._relay.release()
        self._enter(SafetyState.STARTING, Started(), "starting", now)
        self._healthy_since = None
        self._emit(
            self._event(
                EventType.START,
                now,
                self._start_reason,
            )
        )

    def on_samples(self, batch: Sequence[ImuSample], now: float) -> None:
        """Check and detect on each sample; hold the relay if the whole batch was good.

        The samples are checked first, up to the first bad one; the good ones before it are
        recorded in one call (:meth:`WindowRecorder.add_batch`), then detected in order, and
        only then does the bad one fault: the same detections, events and recordings as
        checking, recording and detecting sample by sample (a recording a detection starts
        holds the rest of its batch either way), for one recorder call a wake."""
        worn = self._worn
        passed, problem = self._check_batch(batch)
        good = batch if problem is None else batch[:passed]
        if good:
            self._recorder.add_batch(good)
            self.samples_seen += len(good)
            update = self._detector.update
            for sample in good:
                try:
                    detections = update(sample)
                except Exception as exc:
                    self._detector_failures.failed(exc, now)
                    reason = f"detector error: {describe(exc)}"
                    self._fault(FaultKind.DETECTOR_ERROR, reason, now)
                    self._buzzer.update(now)
                    return
                for detection in detections:
                    self._on_detection(detection, now)
            if self._detector_failures.failing:
                self._detector_failures.worked()
        if problem is not None:
            self._fault(problem.kind, problem.reason, now)
            # The buzzer's pattern moves on only when told the time: a fault that lasts (a
            # detector that raises at every sample, a sensor stuck on one reading) must not
            # leave the first beep of "fault" sounding for good, as it did.
            self._buzzer.update(now)
            return
        if not batch:
            self.on_idle(now)
            return
        if self._recorder.recording:
            self._send_windows(self._recorder.take_done(now), now)
        if worn is not None:
            worn.update_batch(batch)
            if not self._body_still_there(worn, batch[-1].t, now):
                self._buzzer.update(now)
                return
        self._last_good_at = now
        if self._healthy_since is None:
            self._healthy_since = now
        recovering = self.state in (SafetyState.STARTING, SafetyState.FAULT)
        if recovering:
            if self._beep_fault_again and self._buzzer.pattern is None:
                self._sound_fault_again(now)
            if self._contact_fault is None and self._healthy_long_enough(now):
                self._enter(
                    SafetyState.STANDBY, ImuHealthy(), "IMU healthy; press reset to arm", now
                )
        if self.state is SafetyState.ARMED:
            self._hold(now)
        self._buzzer.update(now)

    def on_idle(self, now: float) -> None:
        """A read returned nothing: fault once the silence exceeds the timeout."""
        last = self._last_good_at
        if last is None:
            last = self.since
        silence = now - last
        if silence > self._config.sample_timeout_s:
            if self.state is not SafetyState.FAULT:
                reason = f"no IMU sample for {silence * 1000:.0f} ms"
                self._fault(FaultKind.IMU_SILENT, reason, now)
            elif self._gives_way_to(FaultKind.IMU_SILENT):
                # a stall (or a sensor not worn) held, and the sensor gone silent since: said
                # as such, no longer as clearing by itself (and a restart may cure it)
                reason = f"no IMU sample for {silence * 1000:.0f} ms"
                self._fault(FaultKind.IMU_SILENT, reason, now)
            else:
                # Already in FAULT the silence is no new fault, but the good data before it no
                # longer counts: "IMU healthy" needs ``healthy_before_arm_s`` without a break.
                # An IMU that came and went (0.3 s of samples, 0.3 s of none) used to reach
                # STANDBY on the sum of its good spells, and fault again at the next gap.
                self._distrust_the_data()
        if self._recorder.recording:
            self._send_windows(self._recorder.take_done(now), now)
        self._buzzer.update(now)

    def on_imu_error(self, error: ImuError, now: float) -> None:
        """Map a HAL error to the state machine; transient bus errors wait for the timeout."""
        if isinstance(error, ImuBusError):
            self.bus_errors += 1
            self.on_idle(now)
            return
        if isinstance(error, ImuFifoOverflowError):
            reason = f"IMU FIFO overflow: samples lost ({error})"
            self._fault(FaultKind.FIFO_OVERFLOW, reason, now)
        else:
            self._fault(FaultKind.IMU_ERROR, f"IMU error: {error}", now)

    def on_button(
        self, pressed_at: float, now: float, *, held: bool = True, presses: int = 1
    ) -> None:
        """A local reset press: arm when allowed, otherwise say why not.

        ``held``: the button was still down when the press was reported (held until the
        chirp). A press let go sooner is refused: the latch closes only while the button is
        down as the heartbeat begins, so arming on it left the controller ARMED with the
        latch open — a FAULT 0.1 s later where the contact is read back, and where it is not
        (``gpio.relay_sense_wired = false``) an ARMED state that the next press of the
        button, the first of a call for help say, completed by closing the latch.
        ``presses``: 2 for two presses (never held): refused, said as pressed twice.
        """
        if self.state is SafetyState.FAULT and pressed_at > self.since:
            self._refuse_in_fault(now)
            return
        if self.state is SafetyState.STARTING and pressed_at > self.since:
            # Nothing can arm yet (the table has no edge): answered, not passed over in silence.
            self._refuse_not_ready(now)
            return
        # The transition table itself says where a reset may arm from (STANDBY, TRIPPED):
        # what follows sends the recorded windows and the walker's "I'm OK" before _enter,
        # so a guard of its own that drifted from the table would let those go out for an
        # arming the table then refuses (a FAULT after a false "re-armed").
        if not SAFETY_TRANSITIONS.allows(self.state, SafetyState.ARMED, Trigger.LOCAL_RESET):
            log.warning("reset ignored in %s: %s", self.state, self.reason)
            return
        if pressed_at <= self.since:
            # Pressed before this state began — before the trip, or while nothing could be
            # armed (STARTING, FAULT) and held into STANDBY: not a reset. A button held (or
            # jammed) through a fault used to arm the belt the moment the IMU recovered.
            if self.state is SafetyState.STANDBY:
                # Went down in STARTING or FAULT and reported now (let go, once its sequence
                # was over; or held for the chirp across the change): refused, not silent. A
                # press from before a trip stays silent: the alarm sounds on.
                self._refuse_not_ready(now)
            else:
                log.warning("reset ignored: pressed before %s began; press again", self.state)
            return
        if not self._healthy_long_enough(now):
            self._refuse_not_ready(now)
            return
        if not held:
            self._refuse_arming(LET_GO_REASON if presses == 1 else PRESSED_TWICE_REASON, now)
            return
        posture = self._posture
        if posture is not None and posture.lying:
            # A person lying after a fall breathes and moves: the sensor reads worn, and
            # nothing trips on someone already down (the fall episode has no second fall).
            self._refuse_arming(NOT_UPRIGHT_REASON, now)
            return
        # Judged on the last block and on the last 2 s (WornCheck.worn_now): the last block
        # alone let a press arm up to two blocks after the sensor fell off or was put down.
        worn = self._worn
        if worn is not None and not worn.worn_now:
            if not worn.ready:  # no verdict yet: nothing says the sensor is off
                self._refuse_arming(STILL_MEASURING_REASON, now, worn=WornSaid.MEASURING)
                self._said_measuring = True
            else:
                reason = self._not_worn_reason(worn)
                self._refuse_arming(reason, now, pattern="not_worn", worn=WornSaid.NOT_WORN)
            return
        refusal = self._arm_gate(now) if self._arm_gate is not None else None
        if refusal is not None:
            self._refuse_arming(f"cannot arm: alerts cannot be stored: {refusal}", now)
            return
        # What is recorded goes out before the walk is armed: no recording is ever encoded
        # while the relay is held.
        self._send_windows(self._recorder.take_all(), now)
        incident = self._incident
        if incident is not None:
            self._emit(
                self._event(
                    EventType.OK,
                    now,
                    "I'm OK: the walker re-armed at the machine",
                    incident=incident,
                    by="walker",
                )
            )
        previous = self.state
        reason = f"armed by local reset from {previous}"
        if not self._enter(SafetyState.ARMED, LocalReset(), reason, now):
            return
        if posture is not None:
            posture.end_fall()  # upright and re-armed: watch for the next fall from now
        self._buzzer.stop()
        self._buzzer.play("chirp", now)
        self._emit(
            self._event(
                EventType.RESET,
                now,
                self.reason,
                incident=incident,
            )
        )
        self._incident = None  # re-armed: the incident is over

    def on_help(self, source: str, pressed_at: float, now: float) -> None:
        """The walker asked for help (a press pattern or the help button): tell the caregivers.

        Nothing else: no transition, no relay call — an ARMED walk stays
        ARMED with its heartbeat, a TRIPPED one stays stopped. The ``help``
        event joins the incident open now (the trip or fault the walker is
        calling about) or opens one of its own, which is not kept: a later
        trip is a new incident. The walker hears ``help_sent`` at once; the
        press ends any alarm, as a reset press does. Asking again within
        :data:`HELP_REPEAT_S` is confirmed but not sent again (the caregivers
        are already being paged).
        """
        self._buzzer.stop()
        last = self._last_help_at
        if last is not None and pressed_at - last < HELP_REPEAT_S:
            log.info("help asked again (%s): already sent %.1f s ago", source, pressed_at - last)
            sent = self._last_help
            self._sound("help_sent", now, *(sent if sent is not None else (None, None)))
            return
        self._last_help_at = pressed_at
        incident = self._incident if self._incident is not None else uuid.uuid4().hex
        self._help_incidents.append(incident)
        log.warning("help requested with %s in %s", source, self.state.value)
        event = self._event(
            EventType.HELP,
            now,
            f"the walker asked for help with {source}",
            incident=incident,
        )
        self._last_help = (event.id, incident)
        self._sound("help_sent", now, event.id, incident)
        self._emit(event)

    def carry_on_incident(self, incident: str) -> bool:
        """The record says ``incident`` is still open from before this monitor started: it is
        the incident open now, so the walker's re-arming closes it ("I'm OK") — unless this
        run already has one of its own, or is ARMED (a walk re-armed since: the record only
        lags). Once re-armed, a run leaves ARMED only by a trip or a fault, each opening an
        incident of its own, so an incident it closed by re-arming is never carried on again,
        however late a restarted courier reads the record. Bookkeeping only: nothing here
        touches the relay. True when carried on."""
        if self._incident is not None or self.state is SafetyState.ARMED:
            log.info("incident %s on record left to the caregivers: this run moved on", incident)
            return False
        log.warning("incident %s open from before this start: re-arming closes it", incident)
        self._incident = incident
        return True

    def on_incident_closed(self, incident: str, now: float) -> None:
        """A caregiver closed ``incident`` (an ``ack``): if the walker asked for help in it,
        ``help_answered`` tells them someone answered. The incident stays the one open on the
        belt until the walker re-arms: what follows joins it, and a call for help, a fault or
        anything worse than it was opens it again everywhere
        (:func:`core.protocol.events.reopens`). Bookkeeping
        and a sound; nothing else."""
        if incident in self._help_incidents:
            self._help_incidents.remove(incident)
            log.info("help answered: a caregiver closed incident %s", incident)
            self._sound("help_answered", now, None, incident)

    def on_contact(self, closed: bool, now: float) -> None:
        """The relay's contact, read back once per loop iteration, against what was asked.

        A disagreement that outlasts ``contact_debounce_s`` is a FAULT. The
        latch dropped while ARMED: the relay is released for good (the loop
        must not go on sending edges into a circuit it no longer commands)
        and the reason says whether the latch ever closed (a stall of the loop
        is no contact fault: the gap between edges is one, :meth:`_hold`). Closed
        while released: the relay is already released — the contact is
        welded or stuck, or the sense wire is cut — so the controller says
        so (even if it was in FAULT for something else) and stays in FAULT
        while it lasts.
        """
        armed = self.state is SafetyState.ARMED
        if armed and closed:
            self._closed_since_armed = True
        mismatch = self._contact.update(armed, closed, now)
        if mismatch is None:
            if (
                self._contact_fault is not None
                and self._contact.agreeing_for(now) >= self._contact.debounce_s
            ):
                log.info("relay contact agrees again (was: %s)", self._contact_fault.value)
                self._contact_fault = None
            return
        if mismatch.expected_closed:
            self._contact_fault = FaultKind.CONTACT_OPEN_WHILE_ARMED
            self._fault(FaultKind.CONTACT_OPEN_WHILE_ARMED, self._why_open(mismatch), now)
        elif self._contact_fault is not FaultKind.CONTACT_CLOSED_WHILE_RELEASED:
            self._contact_fault = FaultKind.CONTACT_CLOSED_WHILE_RELEASED
            self._fault_even_in_fault(
                FaultKind.CONTACT_CLOSED_WHILE_RELEASED, self._why_closed(mismatch), now
            )

    @property
    def contact_closed(self) -> bool | None:
        """The latest reading of the relay's contact; None when it is not read back."""
        return self._contact.closed

    @property
    def contact_fault(self) -> FaultKind | None:
        """The contact's disagreement being reported now, if any."""
        return self._contact_fault

    @property
    def longest_contact_settling_s(self) -> float:
        """The longest disagreement of the contact that ended by itself (the debounce's margin)."""
        return self._contact.longest_settled_s

    @property
    def measuring(self) -> bool:
        """The sensor-worn check is on and has no verdict yet (the first 4 s after a start or
        a fault): a press now is refused as still measuring. An attribute read and a
        comparison, for the status LED, which shows ``starting`` meanwhile, not STANDBY's
        "press reset to arm" (:mod:`firmware.status_light`)."""
        worn = self._worn
        return worn is not None and not worn.ready

    @property
    def worn(self) -> WornCheck | None:
        """The sensor-worn check (read-only for reports); None when it is switched off."""
        return self._worn

    def _body_still_there(self, worn: WornCheck, t: float, now: float) -> bool:
        """After a batch: trip an ARMED walk whose sensor stopped showing a body; in STANDBY,
        say "sensor not worn" (and take it back) so the dashboard shows why it cannot arm.

        False when it released the relay (FAULT): the batch must not hold it."""
        state = self.state
        if state is SafetyState.ARMED:
            quiet = worn.quiet_for(t)
            # Both clocks: the timestamps follow the host's clock, the blocks the sensor's, so
            # on a sensor clocked slow the time alone is up before the second block is in.
            if quiet >= self._config.not_worn_trip_s and worn.quiet_blocks >= MIN_QUIET_BLOCKS:
                reason = (
                    f"{SENSOR_NOT_WORN}: no body movement for {quiet:.0f} s "
                    f"({worn.rotation_dps:.3f} deg/s, a body shows "
                    f"{worn.threshold_dps:g} deg/s or more): it fell off or was left on the "
                    "console - clip it on the belt and press reset"
                )
                self._fault(FaultKind.NOT_WORN, reason, now)
                return False
            return True
        if state is SafetyState.STANDBY and worn.ready:
            measuring = self._said_measuring
            if not worn.worn and (measuring or not self._said_not_worn):
                self._said_not_worn, self._said_measuring = True, False
                self._say(self._not_worn_reason(worn), WornSaid.NOT_WORN)
            elif worn.worn and (measuring or self._said_not_worn):
                self._said_not_worn, self._said_measuring = False, False
                self._say("IMU healthy; sensor worn; press reset to arm")
        return True

    @staticmethod
    def _not_worn_reason(worn: WornCheck) -> str:
        if not worn.ready:
            return STILL_MEASURING_REASON
        if worn.worn:  # the last block showed a body, the last seconds do not
            return (
                f"{SENSOR_NOT_WORN}: no body movement in the last {worn.recent_s:g} s "
                f"({worn.recent_dps:.3f} deg/s, a body shows {worn.threshold_dps:g} deg/s or "
                "more): clip the sensor on the belt, stand on the treadmill, then press reset"
            )
        return (
            f"{SENSOR_NOT_WORN}: no body movement ({worn.rotation_dps:.3f} deg/s, a body shows "
            f"{worn.threshold_dps:g} deg/s or more): clip the sensor on the belt, stand on "
            "the treadmill, then press reset"
        )

    def _say(self, reason: str, worn: WornSaid | None = None) -> None:
        """A new reason for the current state, without a transition (dashboard, MQTT, logs);
        ``worn``: what it says of the sensor-worn check (:attr:`worn_said`)."""
        self.reason, self.worn_said = reason, worn
        log.info("still %s: %s", self.state.value, reason)
        self._report_state()

    def _report_state(self) -> None:
        if self._on_state is not None:
            fault = self.fault_class
            said = None if fault is None else FAULT_SAID[fault]
            self._on_state(self.state.value, self.reason, self.worn_said, said)

    def _refuse_arming(
        self, reason: str, now: float, pattern: str = "refused", worn: WornSaid | None = None
    ) -> None:
        """Stay where we are (no transition), say why, and sound the refusal.

        The press was the walker's: it ends the alarm as arming would, so the
        refusal is heard. Only a new walk is refused; nothing here touches a
        walk already ARMED (the gate is asked on a reset press, never while armed).
        """
        self.reason, self.worn_said = reason, worn
        log.warning("reset refused in %s: %s", self.state.value, reason)
        self._buzzer.stop()
        self._sound(pattern, now, None, self._incident)
        self._report_state()

    def _refuse_not_ready(self, now: float) -> None:
        """A press before the IMU data was healthy long enough (:data:`NOT_READY_REASON`).

        It used to be logged only ("IMU not healthy long enough"): a walker pressing in the
        first second after a start heard nothing. Refused as any press that cannot arm (the
        ``refused`` beeps; with a voice, to wait and press again). In STANDBY while the worn
        check still measures, its first verdict replaces the reason, as it replaces
        "still measuring" (:meth:`_body_still_there`)."""
        self._refuse_arming(NOT_READY_REASON, now)
        if self.state is SafetyState.STANDBY:
            worn = self._worn
            self._said_measuring = worn is not None and not worn.ready

    def _refuse_in_fault(self, now: float) -> None:
        """A press in FAULT: the ``refused`` beeps, and nothing else.

        It used to be logged only: the walker on a stopped belt pressed and heard nothing
        (or the fault's slow beeps going on), with no way to tell the press was taken. The
        beeps say "no"; the session runner, with a voice, says why in the words of the
        fault's class (:attr:`fault_class`) and how to call for help. The fault's reason
        stays the state's reason (the dashboard's, the LED's): only the press is answered.
        The press ends the alarm (a trip's, sounding on into the fault) and the fault's
        beeps, as a refused press ends the alarm elsewhere (:meth:`_refuse_arming`), so the
        refusal is heard; the fault itself, its event and its incident stay. No transition:
        FAULT has no edge to ARMED.
        """
        log.warning("reset refused in FAULT: %s", self.reason)
        self._buzzer.stop()
        self._sound("refused", now, None, self._incident)
        # A contact fault may leave the belt running with a contact the monitor cannot open
        # (welded): its beeps are the warning a walker without a voice has, so they come back
        # once the refusal's are over (:meth:`on_samples`), not silenced by the press.
        self._beep_fault_again = self.fault_class is FaultClass.CONTACT

    def _sound_fault_again(self, now: float) -> None:
        """The contact fault's beeps again, for its event and incident (a refused press's are
        over)."""
        self._beep_fault_again = False
        sound = self._fault_sound
        if sound is not None:
            self._sound(sound.pattern, now, sound.event, sound.incident)

    def fail(self, reason: str, now: float) -> None:
        """An exception escaped the monitor loop: release and go to FAULT."""
        self._fault(FaultKind.LOOP_CRASH, reason, now)

    def stop(self, now: float, reason: str = "monitor stopped") -> None:
        self._relay.release()
        self._buzzer.stop()
        self._send_windows(self._recorder.take_all(), now)
        self._emit(
            self._event(
                EventType.STOP,
                now,
                reason,
                incident=self._incident,
            )
        )

    # ---------------------------------------------------------------- helpers

    def _event(
        self,
        type: EventType,
        now: float,
        reason: str,
        *,
        figures: Mapping[str, float] | None = None,
        incident: str | None = None,
        of: str | None = None,
        by: str | None = None,
        recording: ImuRecording | None = None,
    ) -> Event:
        """An event of this controller, decided now, in the current state: its wall time from
        the loop's own stamper (:class:`core.wallclock.WallStamper`, which reads ``adjtimex``
        seldom) — :meth:`Event.now` without it would make that system call at every event."""
        return Event.now(
            type,
            self._device_id,
            now,
            self.state,
            reason,
            figures,
            incident=incident,
            of=of,
            by=by,
            recording=recording,
            wall=self._wall,
        )

    def _hold(self, now: float) -> None:
        """One heartbeat edge, unless the last one is :data:`HOLD_MARGIN` of the hold time or
        more ago: then a FAULT.

        By then the hold circuit has let the relay go (or is about to, the real hold being
        known only to its tolerance) and the latch keeps it open, and the walk is over
        whatever the loop does next. Holding on used to leave the state ARMED over a stopped
        belt (unless the contact was read back, 0.1 s later): the edges ran again, and the
        next press of the button closed the latch — a call for help's first press started
        the belt. A gap of exactly the limit counts (the hold timer is active for less than
        its time after its last edge).

        The first edge is measured from the arming (:meth:`_record`): the latch closes only
        if the button is still down as the edges begin, and a loop that stalled between the
        press that armed and its first edge, while the walker let go after the chirp, left
        the state ARMED over a latch that never closed — the same belt started by the next
        press. A healthy arming sends its first edge within one wake (a quarter of the hold).
        """
        t = self._edge_clock() if self._edge_clock is not None else now
        last = self._last_hold_at
        hold_s = self._hold_s
        if last is not None and hold_s is not None and t - last >= hold_s * HOLD_MARGIN:
            gap_ms = f"{(t - last) * 1000:.0f} ms"
            limit_ms = f"{hold_s * HOLD_MARGIN * 1000:.0f} ms"
            hold = f"the relay's {hold_s * 1000:.0f} ms hold ({limit_ms} with its tolerance)"
            if self._edge_since_armed:
                reason = (
                    f"no heartbeat for {gap_ms}, against {hold}: its latch let go or was about "
                    "to, so the belt stopped (the loop stalled or the IMU paused)"
                )
            else:
                reason = (
                    f"no heartbeat for {gap_ms} after the reset armed, against {hold}: the "
                    "button may have been let go before the latch closed (the loop stalled or "
                    "the IMU paused)"
                )
            self._fault(FaultKind.HEARTBEAT_GAP, reason, now)
            return
        self._last_hold_at = t
        first = not self._edge_since_armed
        self._edge_since_armed = True
        self._relay.hold()
        if first and hold_s is not None and self._reset_held is not None:
            self._latch_closed_or_fault(self._reset_held(), now)

    def _latch_closed_or_fault(self, reset_held: bool, now: float) -> None:
        """The reset button read right after an arming's first edge: down, the latch closed
        on that edge; up, it was let go before the edge came (or as it came) and the latch may
        be open — a FAULT, or the next press (a call for help's first) would close it and
        start the belt. The press was reported while down, but the walker may let go in the
        few milliseconds between that look and the first edge. The contact read back would
        say the latch never closed only after its debounce, and a press inside it closed the
        latch under ARMED: this reading decides, read back or not."""
        if reset_held:
            return
        reason = (
            "reset let go before the relay's latch closed (up at the first heartbeat edge "
            "after arming): the belt did not start; press and hold reset until the chirp"
        )
        self._fault(FaultKind.RESET_LET_GO, reason, now)

    def _why_open(self, mismatch: Mismatch) -> str:
        waited = self._how_long(mismatch)
        if not self._closed_since_armed:
            return (
                f"relay did not close after the reset (contact still open {waited} after "
                "arming): hold reset until the chirp; otherwise check the latch and coil wiring"
            )
        stall = "" if self._slow(mismatch) else ", no loop stall"
        return (
            f"relay contact opened while armed (open for {waited}{stall}): the hold "
            "circuit or the relay let go — check its supply and wiring"
        )

    def _why_closed(self, mismatch: Mismatch) -> str:
        return (
            f"relay contact reads closed while released (for {self._how_long(mismatch)}): "
            "a welded contact, a wiring fault or a cut sense wire — RetroGuard cannot stop the "
            "belt: pull the safety key and have the relay and its wiring checked"
        )

    def _slow(self, mismatch: Mismatch) -> bool:
        """The loop read the contact less often than the debounce while it disagreed."""
        return mismatch.widest_gap_s > self._contact.debounce_s

    def _how_long(self, mismatch: Mismatch) -> str:
        """How long the disagreement was seen, and, when the loop read the contact less often
        than the debounce, how seldom (a disagreement seen only so is still reported)."""
        lasted = f"{mismatch.lasted_s * 1000:.0f} ms"
        if not self._slow(mismatch):
            return lasted
        return (
            f"{lasted}, at every reading; the loop read it as seldom as every "
            f"{mismatch.widest_gap_s * 1000:.0f} ms"
        )

    def _fault_even_in_fault(self, kind: FaultKind, reason: str, now: float) -> None:
        """Like :meth:`_fault`, but already in FAULT the new reason is still announced.

        FAULT has no edge to itself, so no transition is recorded: the reason,
        the state report, the FAULT event and the buzzer say it.
        """
        if self.state is not SafetyState.FAULT:
            self._fault(kind, reason, now)
            return
        self._relay.release()
        self._distrust_the_data()
        self._fault_kind = kind
        self.reason, self.worn_said = reason, _worn_of(kind)
        log.error("still FAULT: %s", reason)
        self._report_state()
        self._announce_fault(reason, now)

    def _check_batch(self, batch: Sequence[ImuSample]) -> tuple[int, _Problem | None]:
        """The samples of ``batch`` checked in order: how many passed before the first that
        did not, and why that one did not (None: all passed). Each passed sample moves the
        checks' state on (its time, the run of identical readings); the one that failed does
        not, except that it extends the run of identical readings it belongs to. One call a
        wake, not one a sample."""
        limit_a = self._limits.accel_g
        limit_g = self._limits.gyro_dps
        for index, sample in enumerate(batch):
            values = sample[1:]
            ax, ay, az, gx, gy, gz = values
            # ``not (a <= x <= b)`` is also true for NaN, which is exactly what we want.
            if not (
                -limit_a <= ax <= limit_a
                and -limit_a <= ay <= limit_a
                and -limit_a <= az <= limit_a
                and -limit_g <= gx <= limit_g
                and -limit_g <= gy <= limit_g
                and -limit_g <= gz <= limit_g
            ):
                shown = tuple(round(v, 3) for v in values)
                return index, _Problem(FaultKind.OUT_OF_RANGE, f"IMU data out of range: {shown}")
            t = sample[0]
            last_t = self._last_good_t
            if last_t is not None and not t > last_t:
                return index, _Problem(
                    FaultKind.TIMESTAMPS_NOT_INCREASING,
                    f"IMU timestamps not increasing ({t:.6f} after {last_t:.6f})",
                )
            if values == self._last_values:
                if self._frozen_since is None:
                    self._frozen_since = last_t
                assert self._frozen_since is not None
                if t - self._frozen_since >= self._config.frozen_after_s:
                    frozen_s = t - self._frozen_since
                    return index, _Problem(
                        FaultKind.FROZEN_DATA, f"IMU data frozen for {frozen_s:.2f} s"
                    )
            else:
                self._frozen_since = None
                self._last_values = values
            self._last_good_t = t
        return len(batch), None

    def _healthy_long_enough(self, now: float) -> bool:
        """Good batches for ``healthy_before_arm_s``, the latest within the sample timeout,
        and not all of that time one reading repeated: with a ``frozen_after_s`` longer than
        the healthy time, a sensor stuck since the start would otherwise be armable until its
        FAULT (frozen data) came."""
        frozen_since = self._frozen_since
        last_t = self._last_good_t
        return (
            self._healthy_since is not None
            and self._last_good_at is not None
            and now - self._last_good_at <= self._config.sample_timeout_s
            and now - self._healthy_since >= self._config.healthy_before_arm_s
            and (
                frozen_since is None
                or last_t is None
                or last_t - frozen_since < self._config.healthy_before_arm_s
            )
        )

    def _on_detection(self, detection: Detection, now: float) -> None:
        self.last_detection = detection
        tripping = detection.kind in TRIPPING_KINDS
        if tripping and self.state is SafetyState.ARMED:
            self._relay.release()
            self._open_incident()
            reason = f"{detection.kind.value}: {detection.reason}"
            self._enter(SafetyState.TRIPPED, Detected(detection.kind), reason, now)
        event = self._event(
            _DETECTION_EVENTS[detection.kind],
            now,
            detection.reason,
            figures=detection.figures,
            incident=self._incident,
        )
        if tripping or detection.kind is DetectionKind.NO_RECOVERY:
            self._sound("alarm", now, event.id, self._incident)
        self._emit(event)
        if tripping:
            self._record_around(event, detection, now)

    def _open_incident(self) -> None:
        """A new incident at the first trip or fault; the one open stays open otherwise."""
        if self._incident is None:
            self._incident = uuid.uuid4().hex

    def _record_around(self, event: Event, detection: Detection, now: float) -> None:
        """Record the IMU around a stumble or fall, or mark it in the recording that holds it.

        A fall confirmed within a recording under way (the stumble that
        tripped before it) is marked there, with its landing: one plot tells
        the story. Any other stumble or fall gets a recording of its own.
        """
        recorder = self._recorder
        covering = recorder.covering(detection.t)
        impact: float | None = None
        if detection.kind is DetectionKind.FALL:
            impact_g = detection.figures.get("impact_g")
            if self._impact is not None:
                impact = self._impact.impact_t  # the detector knows it: no search on the loop
            elif impact_g is not None:
                impact = recorder.impact_before(detection.t, impact_g)
        if not covering:
            upright = self._upright.upright if self._upright is not None else None
            covering = [recorder.start(event, detection.t, now, upright)]
        if detection.kind is DetectionKind.FALL:
            for recording in covering:
                recording.confirm = detection.t - recording.trip_t
                if impact is not None:
                    recording.impact = impact - recording.trip_t

    def _send_windows(self, recordings: list[Recording], now: float) -> None:
        """A ``window`` event for each recording: the IMU around its trip, in its incident.

        Its reason names what the trip became: "around the fall" when a fall was confirmed in
        it (the stumble that tripped was the start of a fall), else "around the trip".
        """
        for recording in recordings:
            trip = recording.trip
            fell = trip.type is EventType.FALL or recording.confirm is not None
            imu = self._recorder.finish(recording)
            end = imu.start_s + imu.period_s * max(0, imu.count - 1)
            self._emit(
                self._event(
                    EventType.WINDOW,
                    now,
                    f"IMU {imu.start_s:+.1f} .. {end:+.1f} s around the "
                    + ("fall" if fell else "trip"),
                    incident=trip.incident,
                    of=trip.id,
                    recording=imu,
                )
            )

    def _fault(self, kind: FaultKind, reason: str, now: float) -> None:
        self._relay.release()
        self._distrust_the_data()
        if self.state is SafetyState.FAULT:
            if self._gives_way_to(kind):
                self._fault_even_in_fault(kind, reason, now)
            return
        if self._enter(SafetyState.FAULT, Faulted(kind), reason, now):
            self._announce_fault(reason, now)

    def _gives_way_to(self, kind: FaultKind) -> bool:
        """In FAULT: the fault held now is one that passes (:data:`PASSING`) and ``kind``,
        found meanwhile, is not: it replaces it, said as a FAULT of its own."""
        held = self._fault_kind
        return (
            held is not None
            and FAULT_CLASSES[held] in PASSING
            and FAULT_CLASSES[kind] not in PASSING
        )

    def _distrust_the_data(self) -> None:
        """Arming again needs ``healthy_before_arm_s`` of good data from now on.

        The run of identical readings is kept (:meth:`_check_batch`): a sensor stuck on one
        reading is still stuck after the fault it caused, so its samples keep it in FAULT.
        Forgetting the run here let them start a new one, count as healthy, and — with a
        ``frozen_after_s`` longer than ``healthy_before_arm_s`` — bring the controller back
        to STANDBY, armable, until the run was long enough to fault again: a FAULT event
        every ``frozen_after_s``, the watchdog pinging in between, a belt armed on a dead
        sensor. Real noise never repeats all six axes for long, so nothing else is kept out.
        """
        self._healthy_since = None
        if self._worn is not None:
            self._worn.reset()

    def _announce_fault(self, reason: str, now: float) -> None:
        self._open_incident()
        event = self._event(
            EventType.FAULT,
            now,
            reason,
            incident=self._incident,
        )
        self._sound("fault", now, event.id, self._incident)
        self._fault_sound = SoundingAlarm("fault", event.id, self._incident)
        self._emit(event)

    def _enter(self, state: SafetyState, cause: Cause, reason: str, now: float) -> bool:
        """Go to ``state`` if :data:`SAFETY_TRANSITIONS` allows it; True if it did."""
        if state is not SafetyState.ARMED:
            self._relay.release()
        source = self.state if self._started else None
        if not SAFETY_TRANSITIONS.allows(source, state, cause.trigger):
            self._refuse(source, state, cause, reason, now)
            return False
        self._record(source, state, cause, reason, now)
        return True

    def _refuse(
        self, source: SafetyState | None, state: SafetyState, cause: Cause, reason: str, now: float
    ) -> None:
        """A transition the table forbids: a bug in this module, never raised into the loop.

        Releases the relay and goes to FAULT by :meth:`_record` directly, not
        through :meth:`_enter`: FAULT is where every check ends, so entering it
        must not depend on the check (nor recurse into it).
        """
        self._relay.release()
        self._distrust_the_data()
        what = (
            f"forbidden transition {source.value if source else '[*]'} -> {state.value}"
            f" on {cause.trigger.value} ({reason})"
        )
        log.error("%s: relay released, going to FAULT", what)
        if self.state is SafetyState.FAULT:
            return  # already there; its FAULT event went out when it was entered
        self._record(source, SafetyState.FAULT, Faulted(FaultKind.FORBIDDEN_TRANSITION), what, now)
        self._announce_fault(what, now)

    def _record(
        self, source: SafetyState | None, state: SafetyState, cause: Cause, reason: str, now: float
    ) -> None:
        self._started = True
        self._said_not_worn = False
        self._said_measuring = False
        self._beep_fault_again = False
        self._fault_kind = cause.kind if isinstance(cause, Faulted) else None
        if state is SafetyState.ARMED:
            self._closed_since_armed = False
            # The first edge is measured from here (see _hold): the latch needs the button
            # still down when it comes.
            self._last_hold_at = self._edge_clock() if self._edge_clock is not None else now
            self._edge_since_armed = False
        self.state = state
        self.reason = reason
        self.worn_said = _worn_of(cause.kind) if isinstance(cause, Faulted) else None
        self.since = now
        self.transitions.append(Transition(state, reason, now, cause, source))
        log.info("state %s: %s", state.value, reason)
        self._report_state()
