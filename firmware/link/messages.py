"""What the monitor loop and the courier process say to each other: typed, msgpack-encoded.

The loop process keeps the safety path (IMU, detector, controller, relay,
buzzer); the courier process owns storage and the network. Every message
between them is one of these Structs, tagged so either side decodes a
stream of mixed messages into the right type with one msgspec call.
"""

from __future__ import annotations

import msgspec

from core.protocol.events import Event
from core.protocol.messages import (
    DeviceHealth,
    FaultSaid,
    SessionRecord,
    SilenceResult,
    WornSaid,
)
from core.protocol.plan import Plan
from core.protocol.walker import DEFAULT_WALKER_ID, Walker
from firmware.config import Config

# ------------------------------------------------------------ loop -> courier


class Hello(msgspec.Struct, tag="hello"):
    """The first message every courier gets: the monitor's configuration."""

    config: Config
    monitor_pid: int
    started_wall: str = ""
    """When the monitor started (ISO 8601 UTC): with the pid it names the run, so a courier
    restarted within one run does not count a new run."""
    wall_synced: bool | None = None
    """Whether the monitor's wall clock is synchronised, said only by a monitor built to say
    it (the demo, whose loop's clock is a simulated one marked set): the courier stamps its
    own events (a caregiver's ``closed``, its faults) with the same judgement
    (:class:`~core.wallclock.SaidWallClock`). None (every installed monitor): the courier
    asks the host, as the loop does."""


class EventRecord(msgspec.Struct, tag="event", omit_defaults=True):
    """Store this event and publish it; answer :class:`Persisted` once it is on disk."""

    event: Event
    walker: str | None = None
    """The walker of the guided session under way when the loop decided it (None: none under
    way). An incident this event opens is theirs: a walker chosen meanwhile (``retroguard
    walker select``) walks from the next session, and the incident must not become theirs."""


class StateReport(msgspec.Struct, tag="state"):
    """The safety state changed (published retained)."""

    state: str
    reason: str
    wall_time: str
    wall_unsynced: bool = False
    """The loop's wall clock was not synchronised as it stamped ``wall_time`` (its
    :class:`~core.wallclock.WallStamper`, the one its events are stamped with)."""
    worn: WornSaid | None = None
    """What ``reason`` says of the sensor-worn check (the state message's ``worn``)."""
    fault: FaultSaid | None = None
    """While FAULT: what kind (the state message's ``fault``)."""


class Check(msgspec.Struct):
    ok: bool
    detail: str


class HealthReport(msgspec.Struct, tag="health"):
    """The loop's figures, about once a second: telemetry and self-test answer from these."""

    health: DeviceHealth
    checks: dict[str, Check]


class SessionReport(msgspec.Struct, tag="session"):
    """A guided session's record (stored; with ``final`` its summary is queued too)."""

    record: SessionRecord
    final: bool


def session_key(record: SessionRecord) -> str:
    """What a final session record is kept pending under in the loop, stored under by the
    courier and confirmed with (:class:`Persisted`): the session id, and for a record amended
    after the session ended the amendment too, so the confirmation of an earlier record never
    forgets a later one that is not on disk yet."""
    return record.id if not record.amended else f"{record.id}+{record.amended}"


class Goodbye(msgspec.Struct, tag="goodbye"):
    """The monitor is stopping on purpose: not an unclean stop.

    ``await_receipts_s``: on the way out the courier waits up to that long (after the
    broker has everything) for a consumer's receipts of the alerts it published (the demo,
    whose caregiver service is running); 0: not at all (``retroguard run``)."""

    reason: str
    await_receipts_s: float = 0.0


class WalkerChosen(msgspec.Struct, tag="walker_chosen"):
    """The walker picked a profile with the button (a double press in STANDBY): store the
    selection, so the CLI, the progress and a restarted monitor agree."""

    walker: str


class SilenceAnswered(msgspec.Struct, tag="silenced", omit_defaults=True):
    """What the loop did with a caregiver's :class:`SilenceBuzzer`: the courier sends it as the
    ``silence`` command's reply (the loop never waits for the courier; the reply waits for
    the loop). A courier that replaces the one that took the command gets it again
    (:meth:`~firmware.link.endpoint.CourierLink.answer_silence`)."""

    result: SilenceResult
    request_id: str | None = None


ToCourier = (
    Hello
    | EventRecord
    | StateReport
    | HealthReport
    | SessionReport
    | Goodbye
    | WalkerChosen
    | SilenceAnswered
)

# ------------------------------------------------------------ courier -> loop


class Persisted(msgspec.Struct, tag="persisted"):
    """These events are committed to the device database (the loop may forget them)."""

    ids: list[str]


class StorageHealth(msgspec.Struct, tag="storage"):
    """Whether alerts can be persisted now; while not, no new walk may be armed.

    Sent when the courier has opened the database and whenever that changes
    (the disk refuses writes: records are kept in memory and still published;
    it takes them again: they are on disk).
    """

    ok: bool
    detail: str


class SilenceBuzzer(msgspec.Struct, tag="silence", omit_defaults=True):
    """A caregiver asked for silence (MQTT ``silence``): stop the alarm sounding, if one is
    and it is the one named (:func:`firmware.app.silence_alarm`; a walker's cue plays on).
    The loop answers each with :class:`SilenceAnswered`."""

    request_id: str | None = None
    """The command's request id, echoed in the reply."""
    event_id: str | None = None
    """The alarm's event the caregiver silenced (None: not named)."""
    incident: str | None = None
    """The alarm's incident the caregiver silenced (None: not named)."""


class Chirp(msgspec.Struct, tag="chirp"):
    """A caregiver's test alarm: play the confirmation chirp (the loop decides when)."""


class IncidentClosed(msgspec.Struct, tag="incident_closed"):
    """A caregiver closed an incident (MQTT ``ack``): the loop tells a walker who asked for
    help that someone answered."""

    incident: str


class OpenIncident(msgspec.Struct, tag="open_incident"):
    """The device's record has a trip or fault incident still open (the courier says so when
    it starts): a monitor that restarted — a crash, a power cut while the walker was on the
    floor — carries it on, so the walker's re-arming closes it as "I'm OK" everywhere
    instead of leaving it open until a caregiver acknowledges it."""

    incident: str


class CourierAlive(msgspec.Struct, tag="alive"):
    """The courier's heartbeat, about once a second."""

    broker_connected: bool
    outbox_depth: int
    caregivers_away: bool = False
    """A caregiver service is expected and the courier does not hear it online (offline, its
    Last Will, the broker out of reach — an attempt to connect failed or the link dropped —,
    or nothing heard once it could have been: 2 s after subscribing, 10 s into a connection
    attempt that has not answered): a fall would stop the belt but page nobody. The session
    runner tells the walker at arming; nothing else in the loop reads it."""
    caregivers_undecided: bool = False
    """Neither away nor online yet: a service is expected and nothing could be heard so far
    (the first connection attempt under way, or connected and its retained presence not yet
    in; at most :data:`~firmware.mqtt.caregiver.UNHEARD_GRACE_S`). An arming meanwhile is
    told once it is decided, if away."""


class PlanAssigned(msgspec.Struct, tag="plan"):
    """The plan in force changed (or the courier started): use it from the next session start.

    ``plan`` None: the config's ``session.plan`` again. ``revision`` grows with
    every assignment, so a courier restarted mid-run that says the same again
    changes nothing.
    """

    revision: int
    plan: Plan | None
    by: str
    walker: str = DEFAULT_WALKER_ID
    """Whose plan it is: the walker's next session uses it."""


class WalkerRoster(msgspec.Struct, tag="walkers"):
    """The walker profiles (button order) and the one chosen, when they changed (or the
    courier started). ``revision`` grows with every change: the same roster again is ignored."""

    revision: int
    walkers: list[Walker]
    selected: Walker
    choices: int = 0
    """Button choices (:class:`WalkerChosen`) this courier has stored: while the loop has made
    more, ``selected`` predates its latest choice and must not undo it."""


ToLoop = (
    Persisted
    | StorageHealth
    | SilenceBuzzer
    | Chirp
    | IncidentClosed
    | OpenIncident
    | CourierAlive
    | PlanAssigned
    | WalkerRoster
)

_encoder = msgspec.msgpack.Encoder()
_to_courier = msgspec.msgpack.Decoder(ToCourier)
_to_loop = msgspec.msgpack.Decoder(ToLoop)


def encode(message: ToCourier | ToLoop) -> bytes:
    return _encoder.encode(message)


def decode_for_courier(data: bytes) -> ToCourier:
    return _to_courier.decode(data)


def decode_for_loop(data: bytes) -> ToLoop:
    return _to_loop.decode(data)
