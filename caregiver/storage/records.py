"""What the caregiver database holds, as the rest of the service sees it: plain typed records.

Nothing here knows SQL or which database is behind the store; these are the types
the store's named operations take and return.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Literal, TypedDict

from caregiver.outbox import ClockFrame as ClockFrame  # the notifier's too
from caregiver.outbox import PendingNotification as PendingNotification  # the notifier's
from caregiver.outbox import Urgency as Urgency
from core.protocol.commands import CommandName
from core.protocol.walker import DEFAULT_WALKER

OPEN_STATUSES = ("held", "paging")
"""Alert statuses that still want a caregiver (the others: acknowledged, resolved, logged)."""

WalkOutcome = Literal["new", "updated", "same"]
"""What storing a session summary did: a new row, a replaced one, or nothing (a redelivery, or
a summary naming another device's session)."""


@dataclass(frozen=True, slots=True)
class WalkSession:
    """A device's guided session as the caregiver keeps it: the summary's figures the
    dashboard shows (docs/mqtt/schemas/session.schema.json), one row per session id.

    It has what :mod:`core.progress` reads (``started_wall``, ``backward_s``,
    ``longest_backward_s``); the templates read its attributes.
    """

    id: str
    device_id: str
    plan: str
    status: str
    started_wall: str
    """ISO 8601, UTC."""
    ended_wall: str
    """"" when the summary had none."""
    planned_s: float
    done_s: float
    backward_s: float
    longest_backward_s: float
    steps: int
    walking_s: float
    cadence_spm: float
    trips: int
    stumbles: int
    walker: str = DEFAULT_WALKER.id
    """Who walked (a walker id of the device; "default" for a device with one walker)."""
    walker_name: str = DEFAULT_WALKER.name
    """The walker's name as the summary gave it (the device's profile, at the time)."""
    falls: int = 0
    """Of the trips, falls (a stumble confirmed as a fall in its incident is one, not a
    stumble); a summary without them (an older device): ``trips - stumbles``."""
    no_recovery: int = 0
    """Of the falls, those after which the walker lay without recovering."""
    amended: int = 0
    """How often the device changed the record after the session ended (a fall confirmed
    later in the incident of its trip): a summary with fewer is an older one."""
    wall_unsynced: int = 0
    """1 when the device's clock was never synchronised (NTP) while the session was recorded
    (the summary's ``wall_unsynced``): its date, and the week it counts in, may be wrong."""
    interrupted: int = 0
    """1 when the monitor stopped (a power cut, a crash, a kill) before it recorded the
    session's end and its next start closed the session with what its records prove (the
    summary's ``interrupted``, docs/sessions.md "A monitor stopped mid-session"): the status
    is what was walked, ``ended_wall`` the last record's time. A physio reads a "completed"
    or "stopped" session differently when the treadmill restarted before its end."""


WALK_FIELDS = tuple(f.name for f in fields(WalkSession))
"""The columns of a stored guided session, in :class:`WalkSession`'s order."""


class LastEvent(TypedDict):
    id: str
    type: str
    severity: str
    reason: str
    wall_time: str
    received_at: float


CLOSED_HERE = ("dashboard", "notification")
"""How an incident is closed by this service (its own clock stamps the close); any other close
came in a device's event (the walker's I'm OK, a reset, a close relayed from Home Assistant)."""


class CardIncident(TypedDict):
    """The incident a device card tells (see :mod:`caregiver.story`)."""

    id: str
    kind: str
    """The worst event so far: stumble, fall, no_recovery, fault, help."""
    status: str
    opened_at: float
    first_event_id: str
    last_event_at: float
    closed_at: float | None
    closed_by: str | None
    closed_via: str | None
    answered: bool
    """Open again with nothing new to answer (a fault after the walker's I'm OK): see
    :attr:`Incident.answered`."""
    newest_alert: str | None
    """Its newest event that opened or worsened it (by the device's sequence): what a card
    that shows it open says it showed when acknowledged (:mod:`caregiver.seen`)."""
    walker: str | None
    """Whose incident (a walker id of the device, :attr:`Incident.walker`): the card names
    them (:func:`caregiver.walkers.who`)."""
    told: bool
    """The device has it closed as this service does: its reply to the ``ack`` confirmed it,
    or it published the incident's ``closed`` event. False for one a caregiver closed here
    whose ``ack`` waits for the broker (the card says the treadmill is told when the
    connection is back)."""
    opened_wall: str
    """The device's stamp of the event that opened it: the card counts "(2 min ago)" from it
    (:func:`caregiver.story.stamped`), not from when it was received here."""
    opened_unsynced: bool
    """The device's clock was not set as it stamped that event: counted from ``opened_at``."""
    closed_wall: str
    """The device's stamp of the event the walker or the device closed it with (""; for one
    open, or closed by this service): a closed card counts "(2 min ago)" from it, as the event
    page's "Closed" line does (:func:`caregiver.story.page_moment`)."""
    closed_unsynced: bool
    """The device's clock was not set as it stamped that event: counted from ``closed_at``."""


class Device(TypedDict):
    """A device card: what it last reported and how many of its alerts are open.

    A dict (not a dataclass) because it goes as it is to the templates and ``/api/fleet``.
    """

    device_id: str
    availability: str
    state: str
    state_reason: str
    state_worn: str
    """What ``state_reason`` says of the sensor-worn check: a :class:`WornSaid` value, or ''
    for neither (the state message's ``worn``, :func:`~core.protocol.messages.worn_said`)."""
    state_fault: str
    """What kind of FAULT holds the belt: a :class:`~core.protocol.messages.FaultSaid` value, or
    '' outside FAULT and for a FAULT whose kind the device did not say (a release before it)."""
    state_time: str
    last_seen: float | None
    telemetry: dict[str, Any]
    last_event: LastEvent | None
    open_alerts: int
    incident: CardIncident | None
    """The open incident, else the latest closed one: what the card's headline tells."""
    newest_other_alert: int | None
    """The newest open alert outside any incident (the monitor went offline while armed): what
    the card says it showed when acknowledged (:mod:`caregiver.seen`)."""


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    availability: str
    state: str


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A device's event as ingestion stores it; ``payload`` is the message as received."""

    id: str
    device_id: str
    seq: int | None
    type: str
    severity: str
    state: str
    reason: str
    wall_time: str
    figures: dict[str, float]
    has_window: bool
    payload: str
    incident: str | None = None
    wall_unsynced: bool = False
    """The device's clock was not synchronised when it stamped ``wall_time`` (the event
    message's ``wall_unsynced``): ``wall_time`` may be hours or days off."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: str
    device_id: str
    seq: int | None
    type: str
    severity: str
    state: str
    reason: str
    wall_time: str
    received_at: float
    figures: dict[str, float]
    has_window: bool
    acked_by: str | None
    acked_at: float | None
    ack_confirmed: bool
    incident: str | None = None
    wall_unsynced: bool = False
    """The device's clock was not synchronised when it stamped ``wall_time``: a caregiver is
    shown ``received_at`` instead, said as the time it was received (:func:`caregiver.story.
    event_time`)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "device_id": self.device_id,
            "seq": self.seq,
            "type": self.type,
            "severity": self.severity,
            "state": self.state,
            "reason": self.reason,
            "wall_time": self.wall_time,
            "wall_unsynced": self.wall_unsynced,
            "received_at": self.received_at,
            "figures": self.figures,
            "has_window": self.has_window,
            "acked_by": self.acked_by,
            "acked_at": self.acked_at,
        }


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    kind: str
    device_id: str
    event_id: str | None
    status: str
    created_at: float
    next_at: float | None
    contact: int
    """The place in the config's list of the contact reached when it was stored (before
    schema 17 the only record of it: see ``reached``)."""
    sends: int
    paged: list[int | str]
    """Who gets its follow-ups: contact ids (:func:`caregiver.outbox.contact_id`); places in
    the list (int) for pages from before schema 17."""
    closed_by: str | None
    incident: str | None = None
    reached: str | None = None
    """The contact reached, by :func:`caregiver.outbox.contact_id`, so that a reordered config
    does not move the escalation (None: an alert from before schema 17, by ``contact``)."""


class Role(StrEnum):
    """What an account may change (docs/caregiver.md, "Accounts and roles").

    Both see every page of the devices the account may see; only a physio sets
    a walker's plan and progression. New accounts are caregivers unless made
    physios; accounts from before roles became physios on the upgrade
    (schema version 6), since every account could set plans then.
    """

    CAREGIVER = "caregiver"
    """Sees plans and progress, read-only; acknowledges alerts, sends test alarms."""
    PHYSIO = "physio"
    """A caregiver who also sets plans and progressions (assign, hold, release, step back)."""


@dataclass(frozen=True, slots=True)
class LoginSession:
    """A caregiver's login: who, the CSRF token every state-changing request must carry, the
    devices the account may see and its role."""

    username: str
    csrf: str
    devices: frozenset[str] | None = None
    """The only devices this caregiver sees; None: every device."""
    role: Role = Role.CAREGIVER

    def may_see(self, device_id: str) -> bool:
        return self.devices is None or device_id in self.devices

    @property
    def may_prescribe(self) -> bool:
        """May set plans and progressions."""
        return self.role is Role.PHYSIO


@dataclass(frozen=True, slots=True)
class Account:
    """A caregiver account as ``retroguard caregiver users`` lists it."""

    username: str
    created_at: float
    devices: tuple[str, ...] | None
    """The only devices it sees, sorted; None: every device."""
    sessions: int
    """Logins not yet expired."""
    role: Role = Role.CAREGIVER


@dataclass(frozen=True, slots=True)
class LeaseSeen:
    """A lease as one look at its row found it: who holds it, how often it has been renewed
    (taken or renewed: the count only grows while its row lives) and the wall time its last
    renewal wrote. What an instance that does not hold it watches: unchanged for the lease's
    length on its own monotonic clock, the holder has stopped renewing
    (:class:`caregiver.lease.Lease`).

    ``expires_at`` is watched for a change only, never compared with a clock: a holder of a
    release before schema 27 (a rolling upgrade) renews by writing it and never counts, and
    watched by holder and count alone its live lease was taken over 10 s after the first look,
    both instances escalating and sending that round."""

    holder: str
    renewals: int
    expires_at: float


CommandStatus = Literal["pending", "accepted", "refused"]
"""A sent command's answer so far (one pending too long is shown as "no answer")."""


@dataclass(frozen=True, slots=True)
class SentCommand:
    """A plan or progression command the service sent a device, and the device's answer."""

    request_id: str
    device_id: str
    command: CommandName
    """plan or progression."""
    summary: str
    """What was sent, in words ("plan alternate-2-2: 30 min, ...", "progression: hold")."""
    sent_by: str
    sent_at: float
    status: CommandStatus = "pending"
    answered_at: float | None = None
    answer: str | None = None
    """accepted: what the device did; refused: why (naming the field, e.g.
    ``plan.intervals[1].minutes: ...``)."""
    walker: str | None = None
    """Whose plan or progression it was (a walker id); None for a command sent before the
    service kept it (schema 22)."""


SelfTestOutcome = Literal["passed", "failed", "refused"]
"""A self-test's answer in one word (:data:`core.protocol.messages.SelfTestOutcome`)."""


@dataclass(frozen=True, slots=True)
class SelfTestRecord:
    """A device's newest self-test asked for from the dashboard, and its newest answer.

    One row a device: a new check replaces the request but keeps the answer before it until
    its own comes, so the page can say "checking..." and still show the last result."""

    device_id: str
    request_id: str
    """The newest check asked for."""
    asked_by: str
    asked_at: float
    answered_request_id: str | None = None
    """The check the answer below is to (None: never answered); ``request_id`` unanswered
    while they differ."""
    answered_at: float | None = None
    outcome: SelfTestOutcome | None = None
    reason: str = ""
    """refused: why it was not run (nothing is known to be wrong); else empty."""
    checks: tuple[tuple[str, bool, str], ...] = ()
    """Each check the device ran, ``(name, ok, what it read)``, in the device's order."""

    @property
    def pending(self) -> bool:
        """The newest check asked for has no answer (yet, or at all)."""
        return self.answered_request_id != self.request_id


@dataclass(frozen=True, slots=True)
class Incident:
    """One bad moment on a belt: its events, worst severity, and who closed it, how, when."""

    id: str
    device_id: str
    severity: str
    status: str
    """open or closed."""
    opened_at: float
    opened_wall: str
    first_event_id: str
    last_event_at: float
    closed_at: float | None
    closed_by: str | None
    closed_via: str | None
    closed_severity: str | None
    walker: str | None = None
    """Whose incident (a walker id of the device); None: from before incidents named their
    walker (caregiver schema 10), unknown."""
    answered: bool = False
    """Open again, and its newest critical event is the one it was closed with: a fault (or
    another milder event) reopened it after its fall was answered, so the fall is not news;
    what is open is the milder alert. Read back with the incident (``_INCIDENT_READ``)."""
    opened_unsynced: bool = False
    """The device's clock was not set when it stamped the event that opened it: ``opened_wall``
    may be hours or days off; its list shows ``opened_at`` (when it was received here)."""
    told: bool | None = None
    """Whether the treadmill has it closed as this service does, as its card says it
    (:attr:`CardIncident.told`): False for a caregiver's close the treadmill has not confirmed
    yet. Read with the fleet's "Recent alerts" (``_INCIDENT_LISTED``); None where not read
    (:func:`caregiver.story.told` reads it from the incident's events; the live feed's row,
    from its card)."""

    @property
    def open(self) -> bool:
        return self.status == "open"

    @property
    def closed_by_walker(self) -> bool:
        return self.closed_via == "walker"
