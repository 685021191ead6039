"""Typed payloads of every RetroGuard MQTT message, as msgspec Structs.

Why msgspec: it decodes JSON straight into these types and checks every
field's type, range and pattern on the way (one C pass, no dict walking), so
a consumer holds either a valid message or a :class:`ProtocolError` naming
the bad field — never a half-checked dict. It is small, typed and fast
enough for a Pi Zero, and imports in a few milliseconds.

Compatibility rules, which the JSON Schemas in ``docs/mqtt/schemas`` state
for outsiders (``tests/test_protocol.py`` checks those files against these
types):

* keys only ever grow: decoders ignore fields they do not know, and every
  field added later gets a default;
* a state message's ``fault`` or ``worn`` word a later release added is read as
  absent (:func:`core.protocol.payloads.decode_as`), not the message refused;
* ``schema`` says which version a producer wrote.

Producers build these types and encode them with :mod:`core.protocol.payloads`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct, field, structs

from core.progress import check_week
from core.protocol.events import EventType, Severity
from core.protocol.ids import DEVICE_ID_PATTERN, EVENT_ID_PATTERN
from core.protocol.walker import DEFAULT_WALKER, MAX_WALKERS, Walker, WalkerId

SCHEMA_VERSION = 1

DeviceId = Annotated[str, Meta(pattern=DEVICE_ID_PATTERN)]
EventId = Annotated[str, Meta(pattern=EVENT_ID_PATTERN)]
Seconds = Annotated[float, Meta(ge=0)]
INT64_MAX = 2**63 - 1
"""The largest integer either database stores (PostgreSQL's bigint, SQLite's INTEGER): a
number beyond it is refused when the message is decoded, as bad input, not met by the
database as a fault that would hold every message behind it."""
Count = Annotated[int, Meta(ge=0, le=INT64_MAX)]
WallTime = str
"""ISO 8601 UTC wall-clock time, for display only."""
SchemaVersion = Annotated[int, Meta(ge=1, le=INT64_MAX)]
"""Which version of the contract the producer wrote (always sent; producers pass
:data:`SCHEMA_VERSION`)."""


class ProtocolError(ValueError):
    """A payload that is not a valid message of its kind; the text names the problem."""


class NotJson(ProtocolError):
    """The payload is not JSON at all (or not UTF-8)."""


class InvalidMessage(ProtocolError):
    """JSON, but not a message of this kind: a missing or mistyped field, a broken rule."""


class Availability(StrEnum):
    """The retained availability payload (plain text, not JSON)."""

    ONLINE = "online"
    OFFLINE = "offline"


class DeviceState(StrEnum):
    """The monitor's safety state as reported on the wire."""

    STARTING = "STARTING"
    STANDBY = "STANDBY"
    ARMED = "ARMED"
    TRIPPED = "TRIPPED"
    FAULT = "FAULT"


IMU_WINDOW_COLUMNS = ("dt", "ax", "ay", "az", "gx", "gy", "gz")

ImuRow = tuple[float, float, float, float, float, float, float]


class ImuWindow(Struct, forbid_unknown_fields=True):
    """IMU samples up to a detection: ``dt`` in seconds relative to it (<= 0), g, deg/s."""

    columns: tuple[
        Literal["dt"],
        Literal["ax"],
        Literal["ay"],
        Literal["az"],
        Literal["gx"],
        Literal["gy"],
        Literal["gz"],
    ]
    rows: list[ImuRow]


class ImuMarks(Struct, kw_only=True, omit_defaults=True):
    """Moments inside a recording, in seconds from the trip it follows."""

    trip: float = 0.0
    impact: float | None = None
    """The landing the detector followed, if one falls inside the window."""
    confirm: float | None = None
    """When the fall was confirmed, if it was inside the window."""


class ImuRecording(Struct, kw_only=True):
    """The IMU around a trip, compactly: what the dashboard plots (docs/incidents.md).

    ``samples`` holds ``count`` rows of six little-endian int16 counts (ax,
    ay, az, gx, gy, gz), zlib-compressed; JSON carries bytes as base64.
    :mod:`core.protocol.recording` writes and reads it.
    """

    start_s: float
    """Time of the first sample, from the trip (negative: before it)."""
    period_s: Annotated[float, Meta(gt=0)]
    accel_g_per_count: Annotated[float, Meta(gt=0)]
    gyro_dps_per_count: Annotated[float, Meta(gt=0)]
    count: Count
    samples: bytes
    upright: tuple[float, float, float] | None = None
    """Sensor-frame "up" the detector had learned before the trip: tilt is measured from it."""
    marks: ImuMarks = msgspec.field(default_factory=ImuMarks)


class EventMessage(Struct, kw_only=True, omit_defaults=True):
    """``<prefix>/<device>/event``: one event record plus its per-device sequence number."""

    schema: SchemaVersion
    id: EventId
    seq: Annotated[int, Meta(ge=1, le=INT64_MAX)]
    type: EventType
    device_id: DeviceId
    severity: Severity
    state: DeviceState
    """Safety state after the event."""
    reason: str
    wall_time: WallTime
    t_monotonic: float
    """Device monotonic seconds of the decision (ordering, latency), not a time of day."""
    figures: dict[str, float]
    """The detector's measurements at decision time."""
    imu_window: ImuWindow | None = None
    """Stumble and fall, from devices before incidents (now: a ``window`` event)."""
    incident: EventId | None = None
    """The incident this event belongs to (docs/incidents.md)."""
    of: EventId | None = None
    """``window``: the trip event the recording is about."""
    by: Annotated[str, Meta(max_length=64)] | None = None
    """``ok`` and ``closed``: who closed the incident."""
    via: Annotated[str, Meta(max_length=32)] | None = None
    """``closed``: how (dashboard, home-assistant, notification, cli, ...)."""
    recording: ImuRecording | None = None
    """``window``: the IMU around the trip."""
    walker: WalkerId | None = None
    """The walker whose incident this event belongs to: the walker of the guided session under
    way when the incident opened, else the one chosen on the device; an event of no incident
    (a test alarm, a fault the courier raises): the walker of the session under way when it
    was raised. Absent: the default walker (a device with one walker, every older release),
    or no incident and no session under way."""
    wall_unsynced: bool = False
    """The device's wall clock was not synchronised (NTP) when it stamped ``wall_time``: a
    Pi without a battery-backed clock boots after a power cut with the time of its last
    shutdown, so ``wall_time`` may be hours or days off. A consumer shows when it received
    the event instead, said as such. Absent: synchronised (and every older release)."""


SENSOR_NOT_WORN = "sensor not worn"
"""How a state's ``reason`` begins when the belt sensor shows no body (docs/safety.md,
"Sensor-worn check"): STANDBY or TRIPPED that cannot be armed, or the FAULT of a sensor that
stopped being worn while ARMED. Dashboards show such a reason whatever the state. A reason
that begins :data:`STILL_MEASURING` begins so too, but says no such thing: read
:attr:`StateMessage.worn` (:func:`worn_said`)."""

STILL_MEASURING = f"{SENSOR_NOT_WORN}: still measuring"
"""How the reason of a reset press refused before the sensor-worn check's first verdict
begins (the first seconds after a start or a fault): the sensor may well be on the body. It
keeps the ``sensor not worn`` prefix every release has sent; the typed
:attr:`StateMessage.worn` tells the two apart, and this prefix does for releases before it."""


class WornSaid(StrEnum):
    """What a state's reason says of the sensor-worn check (:attr:`StateMessage.worn`)."""

    NOT_WORN = "not_worn"
    """The sensor shows no body: it cannot arm, or it stopped an armed walk (a FAULT)."""
    MEASURING = "measuring"
    """A press was refused because the check has no verdict yet: nothing says it is off."""


class FaultSaid(StrEnum):
    """What kind of FAULT holds the belt stopped (:attr:`StateMessage.fault`), so a dashboard
    or an automation knows who must act without reading the reason's words: a stall clears by
    itself within seconds, a relay contact that disagrees may not stop the belt at all."""

    STALL = "stall"
    """The loop or the IMU paused past the relay's hold, or the reset was let go before the
    latch closed: the belt stopped and the FAULT clears by itself once the data is healthy;
    a reset at the machine arms again seconds later. Nobody needs to come."""
    NOT_WORN = "not_worn"
    """The sensor at the waist stopped showing a body (it fell off, or was left on the
    console): clip it back on and press reset (the state's ``worn`` says so too)."""
    SENSOR = "sensor"
    """The IMU, its bus or its data cannot be trusted: someone must see to the sensor."""
    CONTACT = "contact"
    """The relay's contact read back disagrees with what the monitor asked: the relay may not
    stop the belt. Nobody walks until someone has checked the treadmill."""
    MONITOR = "monitor"
    """The monitor's own code failed (the detector, the loop): someone must see to it."""


def worn_said(worn: WornSaid | None, reason: str) -> WornSaid | None:
    """What a state message says of the sensor-worn check: its ``worn`` field, else, from a
    release before the field, its reason's prefix (the still-measuring refusal's first, as
    both begin :data:`SENSOR_NOT_WORN`). None: the reason is about something else."""
    if worn is not None:
        return worn
    if reason.startswith(STILL_MEASURING):
        return WornSaid.MEASURING
    if reason.startswith(SENSOR_NOT_WORN):
        return WornSaid.NOT_WORN
    return None


class StateMessage(Struct, kw_only=True, omit_defaults=True):
    """``<prefix>/<device>/state`` (retained): the safety state and why, in words."""

    schema: SchemaVersion
    device_id: DeviceId
    state: DeviceState
    reason: str
    wall_time: WallTime
    """When the state changed (the monitor's clock); Home Assistant shows it as ``since``."""
    wall_unsynced: bool = False
    """The device's wall clock was not synchronised (NTP) when it stamped ``wall_time``, which
    may be hours or days off (a Pi after a power cut), as an event's ``wall_unsynced``.
    Absent: synchronised (and every older release)."""
    worn: WornSaid | None = None
    """What ``reason`` says of the sensor-worn check, typed, so a dashboard need not read the
    words: ``not_worn`` (the sensor shows no body) or ``measuring`` (a press refused before
    the check's first verdict; the reason begins ``sensor not worn`` even so, for older
    consumers). Absent: neither — or a release before the field (:func:`worn_said` reads its
    reason's prefix)."""
    fault: FaultSaid | None = None
    """While ``state`` is FAULT: what kind of fault, typed (:class:`FaultSaid`). Absent in
    every other state, and from a release before the field (a FAULT of unknown kind)."""


class DeviceHealth(Struct, kw_only=True, omit_defaults=True):
    """The monitor's own figures in each telemetry message."""

    state: DeviceState | None = None
    sample_rate_hz: Seconds | None = None
    """IMU sample rate achieved over the last interval."""
    imu_ok: bool | None = None
    """IMU delivering plausible data."""
    imu_errors: Count | None = None
    bus_errors: Count | None = None
    belt_enabled: bool | None = None
    """The relay's key-loop contact read back closed: the treadmill may run. None when the
    contact is not read back (``gpio.relay_sense_wired = false``)."""
    storage_ok: bool | None = None
    """The device database takes writes; false while alerts are kept in memory only."""


class TelemetryMessage(Struct, kw_only=True, omit_defaults=True):
    """``<prefix>/<device>/telemetry``: periodic health (the device's figures, flat)."""

    schema: SchemaVersion
    device_id: DeviceId
    wall_time: WallTime
    outbox_depth: Count
    """Messages waiting for a broker acknowledgement when this was queued."""
    state: DeviceState | None = None
    sample_rate_hz: Seconds | None = None
    imu_ok: bool | None = None
    imu_errors: Count | None = None
    bus_errors: Count | None = None
    belt_enabled: bool | None = None
    """The relay's contact read back closed: the treadmill may run (absent: not read back)."""
    storage_ok: bool | None = None
    """The device database takes writes; false while alerts are kept in memory only."""
    uptime_s: Seconds | None = None

    @property
    def health(self) -> DeviceHealth:
        return DeviceHealth(
            state=self.state,
            sample_rate_hz=self.sample_rate_hz,
            imu_ok=self.imu_ok,
            imu_errors=self.imu_errors,
            bus_errors=self.bus_errors,
            belt_enabled=self.belt_enabled,
            storage_ok=self.storage_ok,
        )


class ReplyMessage(Struct, kw_only=True, omit_defaults=True):
    """``<prefix>/<device>/reply``: the answer to one command, matched by ``request_id``."""

    schema: SchemaVersion
    device_id: DeviceId
    command: Annotated[str, Meta(max_length=64)]
    request_id: str | None
    ok: bool
    wall_time: WallTime
    result: dict[str, Any] | None = None
    """ok replies: ping {pong}; silence :class:`SilenceResult` (what the loop did); ack
    {event_id, acknowledged, already, by}; self_test :class:`SelfTestResult`; plan
    :class:`PlanStored` (``progression_held``: the walker's progression, held by this plan set
    by hand); progression :class:`ProgressionStored` (``plan_restored``: a release that put
    the stage's plan back)."""
    error: str | None = None
    """Refused commands: why. Nothing was changed."""


SilenceOutcome = Literal["stopped", "nothing_sounding", "not_that_alarm", "cue_left_playing"]
"""What a caregiver's ``silence`` came to, decided by the monitor loop: the alarm it named (or,
blank, the one sounding) was stopped; no alarm was sounding; another alarm than the one it
named is sounding and was kept (a newer fall the caregiver has not seen); or no alarm was
sounding and a walker's cue was left playing."""
SILENCE_OUTCOMES: tuple[SilenceOutcome, ...] = (
    "stopped",
    "nothing_sounding",
    "not_that_alarm",
    "cue_left_playing",
)


class SilenceResult(Struct, kw_only=True, omit_defaults=True):
    """The ``result`` of a ``silence``: the loop's answer, sent once it has looked at the
    buzzer (firmware/app.py ``silence_alarm``).

    ``pattern``, ``event_id`` and ``incident`` describe what was sounding: the alarm stopped,
    the one kept (``not_that_alarm``) or the cue left playing; absent when nothing sounded or
    the sound belongs to no event (a refused press's beeps)."""

    silence: SilenceOutcome
    pattern: str | None = None
    event_id: str | None = None
    incident: str | None = None


class SelfTestCheck(Struct, kw_only=True):
    """One line of a self-test: did it pass, and what it read, in words."""

    ok: bool
    detail: str = ""


class SelfTestResult(Struct, kw_only=True):
    """The ``result`` of a ``self_test`` that ran: the verdict and every check by name.

    A self-test only reads (firmware/mqtt/commands.py); ``passed`` is all checks ok."""

    passed: bool
    checks: dict[str, SelfTestCheck] = field(default_factory=dict)

    def failed(self) -> list[str]:
        """The names of the checks that failed, in the device's order."""
        return [name for name, check in self.checks.items() if not check.ok]

    def failure_words(self) -> str:
        """The failed checks as a caregiver or technician reads them (``name: what it read``,
        ``; `` between); Home Assistant's ``failures`` attribute is built the same way
        (firmware/mqtt/discovery.py)."""
        return "; ".join(
            f"{name}: {check.detail}" if check.detail else name
            for name, check in self.checks.items()
            if not check.ok
        )


SelfTestOutcome = Literal["passed", "failed", "refused"]
"""A self-test reply in one word: it ran and passed, it ran and a check failed (the device
has a problem), or it was refused unrun (a retained or malformed command: nothing was
checked, nothing is known to be wrong)."""
SELF_TEST_OUTCOMES: tuple[SelfTestOutcome, ...] = ("passed", "failed", "refused")


def self_test_outcome(reply: ReplyMessage) -> tuple[SelfTestOutcome, str]:
    """A ``self_test`` reply's outcome and its words: the failed checks, or why it was refused.

    A refusal is not a device problem: the command was not run (``error`` says why). A reply
    whose result cannot be read is shown as failed, naming that: the device could not say it
    is well."""
    if not reply.ok:
        return "refused", reply.error or "refused"
    try:
        result = msgspec.convert(reply.result, SelfTestResult)
    except msgspec.ValidationError as exc:
        return "failed", f"the self-test answer was not understood: {exc}"
    if result.passed:
        return "passed", "all checks passed"
    return "failed", result.failure_words() or "failed (no check named)"


def _whose(walker: str) -> str:
    return "The walker's" if walker == DEFAULT_WALKER.id else f"Walker {walker}'s"


class ProgressionHeld(Struct, kw_only=True):
    """In a ``plan`` result: the walker's progression, held because a plan was set by hand.

    A progression counts only sessions of its stage's plan; sessions of a plan set by hand
    would never move it on, so it stalled unseen. Setting a plan by hand now holds it (a
    ``progressions`` row by the same person) and the answer says so; releasing the hold puts
    the stage's plan back from the next session (docs/sessions.md, "Progression")."""

    progression: str
    stage: Count
    """1-based, as people count stages."""
    stages: Count
    plan: str
    """The stage's plan: in force again from the next session once the hold is released."""
    already: bool = False
    """It was held before this plan (a physio's hold, or a plan set by hand before): it stays
    held, no new row."""

    def words(self, walker: str = DEFAULT_WALKER.id) -> str:
        """What the physio who set the plan is told, on every surface (CLI, dashboard)."""
        where = f"progression {self.progression} at stage {self.stage} of {self.stages}"
        if self.already:
            said = f"{_whose(walker)} {where} stays held"
        else:
            said = (
                f"{_whose(walker)} {where} is now held, because a plan was set by hand: "
                "sessions of this plan do not move the progression on"
            )
        return (
            f"{said}. Release the hold to go back to the stage's plan ({self.plan}) from the "
            "next session."
        )


class PlanStored(Struct, kw_only=True):
    """The ``result`` of an accepted ``plan`` command: what the device stored."""

    plan: str
    revision: Count
    """Grows with every assignment on this device."""
    intervals: Count
    minutes: float
    backward_minutes: float
    applies: str
    """When it takes effect, in words ("at the next session start")."""
    walker: str = DEFAULT_WALKER.id
    """Whose plan it is (absent from releases before walker profiles: the default walker)."""
    progression_held: ProgressionHeld | None = None
    """The walker's progression, held by this plan set by hand (None: no progression assigned,
    or the plan is the stage's own; absent from older releases, which left it running and
    stalled)."""


class ProgressionStored(Struct, kw_only=True):
    """The ``result`` of an accepted ``progression`` command: the progression as it is now."""

    progression: str
    change: str
    stage: Count
    """1-based, as people count stages."""
    stages: Count
    plan: str
    """The plan of the stage in force."""
    held: bool
    applies: str
    walker: str = DEFAULT_WALKER.id
    """Whose progression it is (absent from older releases: the default walker)."""
    plan_restored: bool = False
    """A release that put the stage's plan back in force from the next session: a plan set by
    hand had replaced it (absent from older releases, whose release left that plan in force)."""

    def restored_words(self) -> str:
        """What a release that restored the stage's plan tells the physio ("" otherwise)."""
        return restored_words(self.plan) if self.plan_restored else ""


def restored_words(plan: str) -> str:
    """A release that put the stage's ``plan`` back, in words (the CLI's and the dashboard's)."""
    return (
        f"The stage's plan ({plan}) is in force again from the next session, in place of the "
        "plan set by hand."
    )


RECEIPT_MAX_IDS = 1000
"""The most ids one receipt may name (a longer list goes as several receipts)."""
RECEIPT_BY_MAX = 64
"""The longest consumer name a receipt carries (its ``by``): a device refuses a longer one, and
with it every id the receipt names, so the caregiver's config refuses an account or client id
longer than this (``caregiver.config``)."""


class ReceiptMessage(Struct, kw_only=True):
    """``<prefix>/<device>/receipt``: an alert consumer has these messages on its own disk.

    A PUBACK means the *broker* has a message, and a broker that crashes or
    restarts without its subscribers' sessions forgets it before any
    caregiver sees it. So a device keeps every alert, fault and session
    summary after the PUBACK, republishes it (after each reconnect and on a
    timer) and forgets it only when a consumer that commits alerts — the
    caregiver service — publishes its id here, after its own database
    commit. Receivers de-duplicate by id, so the repeats cost nothing.
    """

    schema: SchemaVersion
    ids: Annotated[list[EventId], Meta(min_length=1, max_length=RECEIPT_MAX_IDS)]
    """Event and session ids committed by the consumer."""
    by: Annotated[str, Meta(min_length=1, max_length=RECEIPT_BY_MAX)]
    """Who committed them (the consumer's name), for the device's log."""


Direction = Literal["backward", "forward", "rest"]
SessionStatus = Literal["completed", "stopped", "abandoned"]
"""How a guided session ended."""
RecordStatus = Literal["running", "completed", "stopped", "abandoned"]
"""A session record's status: ``running`` until it ends, then how it ended."""


AxesSource = Literal["mounting", "learned", "unknown"]
"""How AP and ML were told apart: the configured ``imu.mounting``, learned from the
walker's stride (an unknown mounting), or not (yet): then AP/ML figures are absent."""
BalanceCondition = Literal["eyes open", "eyes closed"]
BalanceStatus = Literal["measured", "moved", "interrupted"]
"""``measured``: the figures are there; ``moved``: the walker stepped or reached (no
figures); ``interrupted``: the monitor was armed or stopped before the end (no figures)."""
Ms2 = Annotated[float, Meta(ge=0)]
"""An acceleration figure in m/s² (RMS, range, path)."""
Ratio = Annotated[float, Meta(ge=0)]


class BalanceFigures(Struct, kw_only=True, omit_defaults=True, frozen=True):
    """A standing balance check (30 s, feet together): the ISway sway measures of the
    lower trunk (Mancini et al. 2012), see docs/gait.md. Not a diagnosis."""

    condition: BalanceCondition
    status: BalanceStatus
    duration_s: Seconds
    """Seconds measured (30 for a complete check)."""
    axes: AxesSource = "unknown"
    rms_ap_ms2: Ms2 | None = None
    rms_ml_ms2: Ms2 | None = None
    range_ap_ms2: Ms2 | None = None
    range_ml_ms2: Ms2 | None = None
    rms_ms2: Ms2 | None = None
    """RMS of the horizontal acceleration, AP and ML together (known without the axes)."""
    path_ms2: Ms2 | None = None
    """Length of the acceleration trajectory in the horizontal plane."""
    mean_velocity_ms: Annotated[float, Meta(ge=0)] | None = None
    jerk_m2s5: Annotated[float, Meta(ge=0)] | None = None
    """½ ∫ |d(acceleration)/dt|² dt, per 30 s."""
    ellipse_area_m2s4: Annotated[float, Meta(ge=0)] | None = None
    """95 % confidence ellipse of (AP, ML)."""
    noise_floor_ms2: Ms2 | None = None
    """What a still sensor would add to each RMS, measured in the same recording."""


class GaitFigures(Struct, kw_only=True, omit_defaults=True, frozen=True):
    """Gait in one interval (or pooled over a session's intervals of one direction), from
    its steady walking only; see docs/gait.md. Not a diagnosis, not a fall-risk score."""

    analysed_s: Seconds
    """Seconds of IMU data measured."""
    steady_s: Seconds
    """Of those, steady walking: runs of six or more regular steps, no turn."""
    steady_share: Annotated[float, Meta(ge=0, le=1)]
    steps: Count
    """Steady step times measured."""
    axes: AxesSource = "unknown"
    dropped_s: Seconds = 0.0
    """Seconds the measurement thread could not take (it was behind): not analysed."""
    cadence_spm: Seconds | None = None
    step_time_s: Seconds | None = None
    step_time_cv_pct: Ratio | None = None
    """Step-time variability: SD / mean, %."""
    step_asymmetry_pct: Ratio | None = None
    """|mean of odd steps - mean of even steps| / mean step time, %."""
    step_regularity: float | None = None
    """Ad1: the unbiased autocorrelation of vertical acceleration at one step (1 = identical
    steps; Moe-Nilssen & Helbostad 2004)."""
    stride_regularity: float | None = None
    """Ad2: the same at one stride."""
    step_symmetry: float | None = None
    """Ad1 / Ad2 (1 = left and right steps alike)."""
    harmonic_ratio_v: Ratio | None = None
    harmonic_ratio_ap: Ratio | None = None
    harmonic_ratio_ml: Ratio | None = None
    rms_v_ms2: Ms2 | None = None
    rms_ap_ms2: Ms2 | None = None
    rms_ml_ms2: Ms2 | None = None
    """Trunk sway while walking: RMS of the ML acceleration."""


class IntervalSummary(Struct, kw_only=True, omit_defaults=True):
    """One planned interval of a guided session and what was measured in it."""

    index: Count
    direction: Direction
    """Planned direction (the IMU measures walking, not its direction)."""
    speed: str
    """Prescribed treadmill speed, a note (e.g. "0.5 mph")."""
    planned_s: Seconds
    done_s: Seconds
    steps: Count
    walking_s: Seconds
    cadence_spm: Seconds
    trips: Count
    stumbles: Count
    gait: GaitFigures | None = None
    """Gait measured in the interval (absent: rest, nothing measured, or an older release)."""
    falls: Count | None = None
    """Of the trips, falls: tripped on a fall, or a stumble the detector then confirmed as a
    fall in the same incident. Absent (an older release): ``trips - stumbles``."""
    no_recovery: Count = 0
    """Of the falls, those after which the walker lay without recovering (absent: none, or an
    older release)."""

    @property
    def fall_count(self) -> int:
        """Falls, also for a record written before they were counted."""
        return self.falls if self.falls is not None else self.trips - self.stumbles


class SessionFigures(Struct, kw_only=True, omit_defaults=True, frozen=True):
    """What a guided session's record and its summary share: one definition of the figures.

    :class:`SessionRecord` (the device's record, kept while the session runs)
    and :class:`SessionSummary` (the wire payload when it ends) are the same
    figures; the summary narrows ``status`` and ``ended_wall`` to an ended
    session's and adds ``schema`` and ``wall_time``. Frozen, so a narrower
    field in a subclass is a sound override and a record handed on cannot
    change under its reader.
    """

    id: str
    """Session id: 32 hex digits (a uuid4), the summary's idempotency key."""
    device_id: DeviceId
    plan: str
    """Preset name or the plan file's name."""
    status: RecordStatus
    started_wall: WallTime
    ended_wall: WallTime | None
    """None while the session runs."""
    planned_s: Seconds
    planned_backward_s: Seconds
    done_s: Seconds
    """Plan time walked through (the plan clock runs only while armed and not paused)."""
    backward_s: Seconds
    """Plan time done in backward intervals."""
    longest_backward_s: Seconds
    """Longest straight stretch backward (consecutive backward intervals join; a pause ends
    it), toward the 10-minute goal."""
    paused_s: Seconds
    pauses: Count
    steps: Count
    walking_s: Seconds
    """Time measured walking (not standing) while the session ran."""
    cadence_spm: Seconds
    """Steps per minute of walking time; 0 without walking."""
    trips: Count
    """Times the monitor stopped the treadmill during the session."""
    stumbles: Count
    """Of those, trips on a stumble that stayed a stumble (the rest are falls)."""
    intervals: list[IntervalSummary]
    balance: list[BalanceFigures] = field(default_factory=list)
    """The standing balance checks before the walk (eyes open, then eyes closed if set)."""
    gait_backward: GaitFigures | None = None
    """Gait pooled over the backward intervals (each interval weighted by its steady steps)."""
    gait_forward: GaitFigures | None = None
    """The same over the forward intervals."""
    walker: Walker = DEFAULT_WALKER
    """Who walked (the profile chosen at the start: a double press in standby, or
    ``retroguard walker select``). Absent: the default walker (and every older release)."""
    falls: Count | None = None
    """Of the trips, falls: tripped on a fall, or a stumble confirmed as a fall later in the
    same incident (then it is not a stumble). Absent (an older release): ``trips - stumbles``,
    which every release kept true."""
    no_recovery: Count = 0
    """Of the falls, those after which the walker lay without recovering (the detector's
    no-recovery). Absent: none, or an older release."""
    amended: Count = 0
    """Times the record changed after the session had ended: an event of an incident that
    began during the session arrived later (a stumble confirmed as a fall, a no-recovery) and
    was credited to it. A summary replaces one of the same id with fewer, never one with more.
    Absent: never (and every older release)."""
    wall_unsynced: bool = False
    """The device's wall clock was never seen synchronised (NTP) while the session was
    recorded: its start and end times, and so the ISO week it counts in, may be wrong (a Pi
    without a battery-backed clock boots with the time of its last shutdown). A clock set
    during the session is not this: the device corrects the times by the step
    (docs/sessions.md, "Wall clock"). Absent: synchronised (and every older release)."""
    interrupted: bool = False
    """The monitor stopped (a power cut, a crash, a kill) before it recorded the session's
    end: the next start closed it with what its last stored record proves
    (:func:`firmware.storage.sessions.close_left_running`) — ``completed`` when every interval
    was walked, else ``stopped`` — and ``ended_wall`` is that record's time (start, plan time
    and pauses), not the restart's. Absent: the device recorded the end itself (and every
    older release)."""

    @property
    def fall_count(self) -> int:
        """Falls, also for a record written before they were counted."""
        return self.falls if self.falls is not None else self.trips - self.stumbles


class SessionRecord(SessionFigures, kw_only=True, frozen=True):
    """The device's record of a guided session: stored at every interval's end, pause and end.

    The session runner builds it on the monitor loop, the link carries it to
    the courier (msgpack), the courier stores it as JSON
    (:func:`core.protocol.payloads.encode`) and, once ended, publishes
    :meth:`summary`. The id is any string here: a record is the device's own
    log and old logs are read back as they were written.
    """

    @property
    def ended(self) -> bool:
        return self.status != "running"

    def summary(self, wall_time: WallTime) -> SessionSummary:
        """The ``.../session`` payload of this ended session, queued at ``wall_time``.

        :class:`ValueError` while the session is still running: only an ended
        session has a summary.
        """
        if not self.ended or self.ended_wall is None:
            raise ValueError(f"session {self.id} is still running: it has no summary yet")
        return SessionSummary(schema=SCHEMA_VERSION, wall_time=wall_time, **structs.asdict(self))


class SessionSummary(SessionFigures, kw_only=True, frozen=True):
    """``<prefix>/<device>/session``: a guided session when it ends (idempotent by ``id``)."""

    schema: SchemaVersion
    id: EventId
    status: SessionStatus
    ended_wall: WallTime
    wall_time: WallTime
    """When the summary was queued."""


IncidentSeverity = Literal["stumble", "fall", "no_recovery", "help", "fault"]
"""An incident's severity: the type of its worst event so far (docs/incidents.md)."""


class IncidentMessage(Struct, kw_only=True, omit_defaults=True):
    """``<prefix>/<device>/incident`` (retained): the open incident, or that none is open.

    The event stream is not retained, so a consumer that starts late (Home
    Assistant after a restart) could not tell from it whether a fall is still
    open. The device derives this from its own event log and publishes it
    again on every connect and whenever an event opens, worsens or closes an
    incident; ``wall_time`` is that event's time, so a repeat is byte for byte
    the same message.
    """

    schema: SchemaVersion
    device_id: DeviceId
    open: bool
    """An incident is open: nobody has closed it (caregiver, walker's "I'm OK" or re-arming)."""
    wall_time: WallTime
    """When this last changed (the deciding event's time), or when it was first published."""
    incident: EventId | None = None
    """The open incident; when none is open, the last one (absent before the first)."""
    severity: IncidentSeverity | None = None
    """Its worst event so far."""
    opened_wall: WallTime | None = None
    last_event: EventId | None = None
    """The newest event that belongs to it."""
    closed_by: Annotated[str, Meta(max_length=64)] | None = None
    """A closed incident: who closed it (a caregiver's name, "walker", ...)."""
    closed_via: Annotated[str, Meta(max_length=32)] | None = None
    """A closed incident: how (dashboard, home-assistant, button, ...)."""
    closed_wall: WallTime | None = None
    walker: WalkerId | None = None
    """The walker whose incident it is: the walker of the session under way when it opened,
    else the one chosen on the device. Absent: the default walker (a device with one walker,
    every older release) or no incident yet."""
    opened_unsynced: bool = False
    """The device's wall clock was not synchronised (NTP) when it stamped the event that
    opened the incident (that event's ``wall_unsynced``): ``opened_wall`` may be hours or days
    off (a Pi after a power cut), so a consumer says so rather than show it as fact. Absent:
    synchronised (and every older release)."""


SessionState = Literal["none", "running", "completed", "stopped", "abandoned"]
"""The newest guided session's status, or ``none`` before the first."""
IsoWeek = Annotated[str, Meta(pattern=r"^[0-9]{4}-W(0[1-9]|[1-4][0-9]|5[0-3])$(?!\n)")]
"""An ISO week, "2026-W49": W01 to W53 (a year without a 53rd week is refused by the message
that carries it, :func:`core.progress.check_week`)."""


ZoneKey = Annotated[
    str, Meta(max_length=64, pattern=r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$(?!\n)")
]
"""An IANA time zone's name, "Europe/Berlin" (a consumer that does not know it counts in its
own zone: :func:`core.zones.named_zone`)."""


class ProgressMessage(Struct, kw_only=True, omit_defaults=True):
    """``<prefix>/<device>/progress`` (retained): the guided session now, and this week.

    Session summaries (``.../session``) arrive only when a session ends and
    are not retained; this is what a dashboard or Home Assistant shows at any
    moment. The week and the goal follow :mod:`core.progress`.
    """

    schema: SchemaVersion
    device_id: DeviceId
    wall_time: WallTime
    """When the device computed it."""
    session: SessionState
    week: IsoWeek
    week_sessions: Count
    week_at_goal: Count
    """Sessions this week whose longest straight backward stretch reached the goal's minutes."""
    week_backward_s: Seconds
    week_longest_backward_s: Seconds
    goal_sessions: Count
    """Sessions at goal a week that meet the goal (3)."""
    goal_backward_s: Seconds
    """Straight backward walking that makes a session count toward the goal (600 s)."""
    week_done: Count | None = None
    """Adherence: sessions this week that walked their plan through (absent from older
    releases)."""
    week_prescribed: Count | None = None
    """Adherence: sessions the prescription asks for a week (3)."""
    weeks_at_goal: Count | None = None
    """Weeks so far whose goal was met, toward ``milestone_weeks``."""
    milestone_weeks: Count | None = None
    """Weeks at goal after which a difference in balance and strength is expected (4)."""
    session_id: Annotated[str, Meta(max_length=64)] | None = None
    plan: str | None = None
    started_wall: WallTime | None = None
    ended_wall: WallTime | None = None
    planned_s: Seconds | None = None
    done_s: Seconds | None = None
    backward_s: Seconds | None = None
    clock_not_set: bool | None = None
    """True when the newest session was recorded while the device's wall clock was never
    synchronised (its ``wall_unsynced``): its date, and the week it counts in, may be wrong
    (docs/sessions.md, "Wall clock"). Absent before the first session and from older
    releases."""
    session_interrupted: bool | None = None
    """True when the newest session's end was not recorded (the monitor stopped: a power cut,
    a crash, a kill) and the next start closed it with what its records proved (the record's
    ``interrupted``, docs/sessions.md). Absent otherwise, and from older releases."""
    week_clock_not_set: Count | None = None
    """Of this week's sessions, those recorded with the clock not set: the week's figures may
    hold sessions of another week, or miss some (absent from older releases)."""
    sway_rms_ap_ms2: Ms2 | None = None
    """The newest measured eyes-open balance check's sway RMS, AP (docs/gait.md)."""
    sway_rms_ml_ms2: Ms2 | None = None
    sway_wall: WallTime | None = None
    """When the session of that balance check started."""
    step_time_cv_pct: Ratio | None = None
    """The newest session's backward step-time variability (SD / mean, %)."""
    gait_wall: WallTime | None = None
    """When the session of that step-time variability started."""
    walker: Walker | None = None
    """Whose week this is: the walker of the guided session under way, else the walker chosen
    for the next session (absent from older releases: the device's one walker)."""
    zone: ZoneKey | None = None
    """The IANA time zone ``week`` is counted in: the treadmill's (its system zone), whose
    weeks its progression advances by, so a dashboard elsewhere counts the walker's weeks in it
    too (absent from older releases, and from a device whose zone has no IANA name)."""

    def __post_init__(self) -> None:
        # The pattern takes W53 of any year; "2025-W53" is no week (2025 has 52), and stored
        # as one it would carry its count into 2026's weeks.
        try:
            check_week(self.week)
        except ValueError as exc:
            raise ValueError(f"week: {exc}") from None


StageStatus = Literal["running", "held", "complete"]
"""Where a progression stands: moving on by itself (``running``, also after a release), held
by a physio (or by a plan set by hand), or ``complete``: at its last stage with that stage's
prescription done (the walker stays there; nothing moves on any more)."""
MAX_STAGE_NUMBER = 64
"""Far above any progression's stages (:data:`core.protocol.plan.MAX_STAGES`)."""


class StageMessage(Struct, kw_only=True, omit_defaults=True):
    """``<prefix>/<device>/stage/<walker>`` (retained): one walker's progression on the device.

    The device's word on where each walker is on the progression a physio assigned: the
    ``progress`` message is only the walker chosen at the treadmill (or walking), and a
    command's reply only what the stage was when it was answered, so a stage the device moved
    on by itself (an advance after a session) reached a consumer only through the chosen
    walker's ``week_prescribed``. Published by the device, computed from its own database
    (the progression's rows and the walker's sessions), whenever it may have changed: a
    progression assigned, held, released, stepped back or advanced, a session counted, a
    reconnect, and at start for every walker with a progression. Information only: nothing a
    consumer makes of it reaches the device (docs/safety.md, rule 2).
    """

    schema: SchemaVersion
    device_id: DeviceId
    walker: Walker
    """Whose progression it is (the topic's last level is their id)."""
    wall_time: WallTime
    """When the device computed it."""
    progression: Annotated[str, Meta(min_length=1, max_length=80)]
    stage: Annotated[int, Meta(ge=1, le=MAX_STAGE_NUMBER)]
    """The stage in force, 1-based as people count stages (``cmd/progression``'s replies too)."""
    stages: Annotated[int, Meta(ge=1, le=MAX_STAGE_NUMBER)]
    stage_name: Annotated[str, Meta(min_length=1, max_length=80)]
    """The stage's plan's name: what the walker walks from their next session."""
    stage_started_wall: WallTime
    """When the stage began counting (sessions before it count toward the stage before), as
    the device's clock reads that moment now: moved by an NTP step since it was stored in the
    same boot (:func:`core.wallclock.after_step`), as the rule that advances it reads it."""
    status: StageStatus
    held: bool
    """A physio holds it (or a plan set by hand does): it does not move on by itself."""
    change: Annotated[str, Meta(min_length=1, max_length=64)]
    """What the device's newest record of it says happened: assigned, advanced, held,
    released, stepped back, or "held: a plan was set by hand"."""
    changed_wall: WallTime
    """When that happened."""
    sessions_per_week: Annotated[int, Meta(ge=1, le=INT64_MAX)]
    """The stage's prescribed sessions a week: what adherence counts this walker's week
    against."""
    stage_weeks: Annotated[int, Meta(ge=1, le=INT64_MAX)]
    """Weeks meeting ``sessions_per_week`` that complete the stage."""
    weeks_done: Count
    """Weeks since the stage began that met its count (toward ``stage_weeks``)."""
    week: IsoWeek
    """The week ``week_done`` counts, in the treadmill's zone (``zone``)."""
    week_done: Count
    """This week's sessions that count toward the stage (completed sessions of its plan since
    it began, a day once: :func:`core.progression.week_counts`)."""
    zone: ZoneKey | None = None
    """The IANA zone the weeks are counted in (absent when the device's has no IANA name)."""
    wall_unsynced: bool = False
    """The device's wall clock was not synchronised (NTP) as it computed this: ``wall_time``,
    and ``week``, may be hours or days off (a Pi after a power cut reads the time of its last
    shutdown), so ``wall_time`` orders nothing: a consumer takes such a stage as the device's
    newest by arrival. The device publishes the stage again, unflagged and stamped with the
    true time, once its clock is synchronised, whether or not the stage changed. Absent:
    synchronised (and every older release)."""

    def __post_init__(self) -> None:
        try:
            check_week(self.week)
        except ValueError as exc:
            raise ValueError(f"week: {exc}") from None
        if self.stage > self.stages:
            raise ValueError(f"stage: {self.stage} is past the last of {self.stages} stages")


class WalkersMessage(Struct, kw_only=True):
    """``<prefix>/<device>/walkers`` (retained): the treadmill's walker profiles, button order.

    Published again on every connect and whenever ``retroguard walker add`` or
    ``remove`` changed them; ``wall_time`` is the newest such change's, so a
    repeat is byte for byte the same message. It is the device's word on who
    walks there: consumers offer these walkers (a plan for a walker who has not
    walked yet); nothing a consumer sends can add, remove or choose one.
    """

    schema: SchemaVersion
    device_id: DeviceId
    wall_time: WallTime
    """When the profiles last changed (an add or a remove), or when first published."""
    walkers: Annotated[list[Walker], Meta(min_length=1, max_length=MAX_WALKERS)]
    """Every walker of the treadmill, in the order the button cycles them (the default walker
    among them)."""

    def __post_init__(self) -> None:
        ids = [w.id for w in self.walkers]
        if len(set(ids)) != len(ids):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"walkers: the walker id {twice[0]!r} is listed twice")


class CaregiverPresence(StrEnum):
    """Whether the caregiver service (the one thing that pages a caregiver) is there."""

    ONLINE = "online"
    """Connected and subscribed to every device: an alert reaches it and can page someone."""
    OFFLINE = "offline"
    """Stopped cleanly, or its Last Will: it crashed or lost the network. Alerts wait on the
    device (kept until received) and page nobody meanwhile."""


STORING_FAULT_MAX = 200
"""The caregiver presence's ``fault`` words at most (the service says a few; a device repeats
them on its own ``caregiver`` topic)."""
PRESENCE_EXPIRY_MAX_S = 86400
"""The longest an ``online`` may say it lasts unrenewed (a day): a longer one is no message."""


class CaregiverStatusMessage(Struct, kw_only=True, omit_defaults=True):
    """``<prefix>/caregiver/status`` (retained, QoS 1): the caregiver service announces itself.

    ``online`` once its subscriptions are confirmed, said again well before it expires
    (:attr:`expires_s`); ``offline`` when it stops, and as its MQTT 5 Last Will, which the
    broker publishes when the service's connection ends without a DISCONNECT (a crash, a power
    cut, a lost network). Not a device topic: devices subscribe to it (docs/mqtt/mosquitto.acl)
    and say what they hear on their own ``caregiver`` topic.
    """

    schema: SchemaVersion
    state: CaregiverPresence
    by: Annotated[str, Meta(min_length=1, max_length=65535)]
    """Which instance said it: its broker account (the user name it logs in with), else its
    MQTT client id. On the documented broker (``use_username_as_clientid``) the account is the
    client id the broker gives it, whatever the service's ``client_id`` setting says."""
    wall_time: WallTime | None = None
    """When it said it. Absent from the Last Will: the broker sends that when the link is lost,
    and nobody stamps it (the device then says when it heard it)."""
    storing: bool = True
    """It can store what it receives now. False while its database refuses (damaged, a full
    disk, PostgreSQL down): it is ``online`` and receives every alert, but stores none, and an
    alert it has not stored pages nobody (they wait with the broker, not receipted). Said
    again whenever it changes. Absent (true) in the normal case: a device from before this
    field ignores it (the type does not forbid unknown fields) and reads ``online``."""
    fault: Annotated[str, Meta(min_length=1, max_length=STORING_FAULT_MAX)] | None = None
    """Why it cannot store, in a few plain words (``database damaged``, ``cannot write its
    database``); absent while :attr:`storing`."""
    expires_s: Annotated[int, Meta(ge=1, le=PRESENCE_EXPIRY_MAX_S)] | None = None
    """An ``online``'s lifetime unless the service says it again: the PUBLISH's MQTT 5 Message
    Expiry Interval, which the broker counts down (and removes the message at its end), said
    here too for a device that is handed the message without it: Mosquitto 2.0.11 restores a
    retained message whose expiry ends in the second it restarts with none at all, and a
    bridge or an MQTT 3.1.1 hop drops it. A device counts an ``online`` not renewed within the
    broker's remaining interval, else this from when it heard it, as no presence. Absent from
    ``offline`` (a stale ``offline`` errs on the safe side) and from a service from before
    (its ``online`` is believed until something else is heard, as then)."""


class DatabasePart(Struct, frozen=True):
    """A part of the caregiver service's database it goes on without (a side table damaged,
    missing or locked): alerts are still stored and paged, but what the part keeps is missing
    meanwhile. ``/healthz`` and the service's health message say it alike."""

    part: str
    """Which part, by what it keeps: ``walkers``, ``recordings``, ``sessions``, ``progress``,
    ``plans``, ``commands``, ``telemetry``, ``closes``, ``alerts`` (an alert refused for
    its own values, let go: the others are stored and paged), or ``states`` (a treadmill's
    state or availability refused for its own values, let go)."""
    since: WallTime
    """When it first failed (UTC, ISO 8601)."""
    said: str
    """In words: what cannot be used since when, that alerts still reach people, what not."""


DatabaseStatus = Literal["ok", "degraded", "not storing", "database damaged"]
"""The caregiver service's database, in ``/healthz``'s words: ``ok``; ``degraded`` (alerts are
stored and paged, but parts of it cannot be used: :class:`DatabasePart`); ``not storing`` (it
refuses what ingest commits: a full disk, a lock, PostgreSQL down: an alert it has not stored
pages nobody); ``database damaged`` (its SQLite file is: not storing until a person replaces
it)."""


class CaregiverHealthMessage(Struct, kw_only=True, omit_defaults=True):
    """``<prefix>/caregiver/health/<instance>`` (retained, QoS 1): the caregiver service's
    database, as its ``/healthz`` says it, for whoever watches the broker and not the
    dashboard (Home Assistant's **Database** problem sensor of the service).

    Said when the service is subscribed, and again on every change of what it says (at most
    once every 5 s, the latest always): never on a timer. Whether the instance is there at
    all is its presence's word (``<prefix>/caregiver/status``, with its Last Will): a health
    message outlives the instance that said it."""

    schema: SchemaVersion
    by: Annotated[str, Meta(min_length=1, max_length=65535)]
    """Which instance: as the presence's ``by`` (its account, else its client id)."""
    wall_time: WallTime
    """When it said it."""
    status: DatabaseStatus
    storing: bool = True
    """It can store alerts now (false while ``not storing`` or ``database damaged``)."""
    parts: tuple[DatabasePart, ...] = ()
    """The parts it goes on without, the oldest first (absent: none)."""
    message_held: bool = False
    """A message whose handler fails every time (a bug) is held unacknowledged on its
    connection, the others received (``/healthz``'s ``message_held``: only a flag, no topic,
    as the message names no device). Absent: none held; a reader from before it ignores it."""


CaregiverSeen = Literal["online", "offline", "unknown"]
"""What a device knows of the caregiver service: ``unknown`` before it heard anything (no
service ever announced itself on this broker, or the device is not connected to it)."""


class CaregiverLinkMessage(Struct, kw_only=True, omit_defaults=True):
    """``<prefix>/<device>/caregiver`` (retained): what the device hears of the caregiver
    service, and how long its oldest alert has waited for the service's receipt.

    Published on every connect and whenever either changes; Home Assistant's **Caregiver
    service** connectivity sensor and **Oldest unreceived alert** read it. While the device
    itself is offline its availability greys them out: it cannot tell then."""

    schema: SchemaVersion
    device_id: DeviceId
    wall_time: WallTime
    state: CaregiverSeen
    expected: bool
    """A caregiver service is expected (``mqtt.caregiver_expected``): the self-test fails and
    the walker is told while it is not online."""
    since: WallTime | None = None
    """When it went ``state`` (the service's own time when it said so, else when the device
    heard it); absent while ``unknown``, and for a Last Will found retained at subscribe (some
    time before: a Last Will carries no time)."""
    awaiting: Count = 0
    """Alerts the broker has and the caregiver service has not yet confirmed (receipts)."""
    oldest_awaiting: WallTime | None = None
    """When the oldest of those was queued on the device; absent when none waits."""
    storing: bool = True
    """The service says it can store what it receives (its presence's ``storing``). False while
    ``online`` and its database refuses: nobody is paged, as while it is offline."""
    fault: Annotated[str, Meta(min_length=1, max_length=STORING_FAULT_MAX)] | None = None
    """Why it cannot store, in the service's words; absent while :attr:`storing`."""
    fault_since: WallTime | None = None
    """When it stopped storing (the service's time when it said so); absent while storing."""


JSON_MESSAGES: dict[str, type[Struct]] = {
    "event": EventMessage,
    "state": StateMessage,
    "telemetry": TelemetryMessage,
    "reply": ReplyMessage,
    "session": SessionSummary,
    "receipt": ReceiptMessage,
    "incident": IncidentMessage,
    "progress": ProgressMessage,
    "walkers": WalkersMessage,
    "caregiver": CaregiverLinkMessage,
    "stage": StageMessage,
}
"""Topic kind -> payload type, for the JSON-encoded kinds (availability is plain text)."""
