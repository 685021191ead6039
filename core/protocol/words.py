"""What a person reads of each protocol event and alert: one copy for every place that says it.

The dashboard's timeline and event pages, the caregivers' notifications, Home
Assistant's sensors, ``retroguard watch`` and the PDF report each kept their own
words for the same event: a phone said "Monitor went OFFLINE while armed" where
the card said "offline", Home Assistant's Last event read "Armed again at the
machine" for the dashboard's "Reset at the machine", and the terminal printed
the protocol's type in capitals ("RESET", "NO_RECOVERY"). The words live here,
in ``core``, because the firmware (Home Assistant's discovery) and the tools may
not import the caregiver service.

Only what a person reads: the wire's names (event types, JSON keys, MQTT payload
values, Home Assistant's event types and unique ids) are the protocol's and never
change with these words. A test keeps every type the protocol defines worded, so
a new one cannot be added without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.protocol.events import INCIDENT_TYPES, EventType
from core.protocol.messages import FaultSaid

__all__ = [
    "ALERT_KINDS",
    "ALERT_SAID",
    "CLOSED_VIA_SAID",
    "EVENT_SAID",
    "FAULT_KIND_SAID",
    "OFFLINE",
    "AlertSaid",
    "EventSaid",
    "FaultKindSaid",
    "alarm_words",
    "alert_said",
    "closed_via_said",
    "event_said",
]


@dataclass(frozen=True, slots=True)
class EventSaid:
    """How one event type is said."""

    row: str
    """Its label in a list of events, what a person would say of it ("Reset at the machine"):
    the dashboard's timeline rows, Home Assistant's Last event, ``retroguard watch``'s event
    lines. They showed the type itself in capitals ("RESET", "CLOSED", "STOP")."""
    step: str
    """A sentence: its line in an incident's "What happened", its event page's heading and
    the title of its details ("Re-armed at the machine")."""


EVENT_SAID: Mapping[str, EventSaid] = {
    EventType.STUMBLE: EventSaid("Stumble — belt stopped", "Stumble: the monitor stopped the belt"),
    EventType.FALL: EventSaid("Fall", "Fall confirmed"),
    EventType.NO_RECOVERY: EventSaid(
        "Not getting up", "Not getting up: lying still after the fall"
    ),
    EventType.HELP: EventSaid("Help requested", "The walker asked for help"),
    EventType.FAULT: EventSaid("Monitor fault", "Monitor fault"),
    EventType.OK: EventSaid("Walker pressed I'm OK", "The walker pressed I'm OK"),
    EventType.CLOSED: EventSaid("Acknowledged", "Acknowledged"),
    EventType.RESET: EventSaid("Reset at the machine", "Re-armed at the machine"),
    EventType.START: EventSaid("Monitor started", "Monitor started"),
    EventType.STOP: EventSaid("Monitor stopped", "Monitor stopped"),
    EventType.TEST: EventSaid("Test alarm", "Test alarm"),
    EventType.WINDOW: EventSaid(
        "Sensor recording", "What the sensor at the waist recorded around the belt stop"
    ),
}
"""Every event type of the protocol (:class:`~core.protocol.events.EventType`) in words; a
type a later monitor adds, not yet here, is said as itself in sentence case
(:func:`event_said`)."""


def event_said(kind: str) -> EventSaid:
    """``kind``'s words (:data:`EVENT_SAID`), or the type itself in sentence case, never in
    capitals: "new_kind" reads "New kind"."""
    words = EVENT_SAID.get(kind)
    if words is None:
        plain = kind.replace("_", " ").capitalize()
        return EventSaid(plain, plain)
    return words


OFFLINE = "offline"
"""The kind of an alert outside any incident: the monitor went offline while it was armed
(the caregiver service opens it; no event of the protocol says it)."""


@dataclass(frozen=True, slots=True)
class AlertSaid:
    """How an alert is said: an incident by its severity (its worst event), or
    :data:`OFFLINE`."""

    name: str
    """What it was, in a sentence's case ("Fall, not getting up"): a closed incident's
    headline, a report's list, Home Assistant's Incident sensor, ``retroguard watch``'s
    closing line."""
    open: str
    """What is open, said louder where it is urgent ("FALL — not getting up"): the card's
    headline, the "Still open" notice, ``retroguard watch``'s line while it is open."""
    alarm: str
    """What the alarm says ("NOT GETTING UP after a fall"): the dashboard's banner, the tab's
    title and the browser's notification, and the title of the caregivers' notifications, so
    a phone and the dashboard name an alarm alike."""
    at_once: str = ""
    """What the alarm says when the policy pages at once rather than after the walker's grace
    for a reset ("" = :attr:`alarm`): "Stumble not reset" is true only under
    ``page_unless_reset``; under ``page`` nobody waited for a reset (:func:`alarm_words`)."""


ALERT_SAID: Mapping[str, AlertSaid] = {
    EventType.STUMBLE: AlertSaid(
        "Stumble", "Stumble", "Stumble not reset", EVENT_SAID[EventType.STUMBLE].row
    ),
    EventType.FALL: AlertSaid("Fall", "FALL", "FALL"),
    EventType.NO_RECOVERY: AlertSaid(
        "Fall, not getting up", "FALL — not getting up", "NOT GETTING UP after a fall"
    ),
    EventType.HELP: AlertSaid("Help requested", "HELP requested", "HELP requested"),
    EventType.FAULT: AlertSaid("Monitor fault", "Monitor fault", "Monitor fault"),
    OFFLINE: AlertSaid(
        "Monitor went offline while armed",
        "Monitor went offline while armed",
        "Monitor went offline while armed",
    ),
}
"""Every kind of alert in words: the protocol's incident types
(:data:`~core.protocol.events.INCIDENT_TYPES`, an incident's severities) and
:data:`OFFLINE`."""

ALERT_KINDS = frozenset({*(t.value for t in INCIDENT_TYPES), OFFLINE})
"""The kinds :data:`ALERT_SAID` words."""


def alert_said(kind: str) -> AlertSaid:
    """``kind``'s words (:data:`ALERT_SAID`), or, for a kind a later monitor adds, the type
    itself: in sentence case, and in capitals for the alarm."""
    words = ALERT_SAID.get(kind)
    if words is None:
        plain = kind.replace("_", " ")
        return AlertSaid(plain.capitalize(), plain.capitalize(), plain.upper())
    return words


def alarm_words(kind: str, *, at_once: bool) -> str:
    """What the alarm of an alert of ``kind`` says (:attr:`AlertSaid.alarm`); ``at_once``:
    its policy pages at once (``page``), not after the walker's grace for a reset, so a
    stumble is "Stumble — belt stopped", not "Stumble not reset"."""
    words = alert_said(kind)
    return (words.at_once or words.alarm) if at_once else words.alarm


CLOSED_VIA_SAID: Mapping[str, str] = {
    "dashboard": "on the dashboard",
    "home-assistant": "from Home Assistant",
    "notification": "from a notification",
    "walker": "at the machine",
    "device": "at the monitor",
    "mqtt": "by an MQTT command",
}
"""How an incident was closed (its ``closed_via``), as it ends "acknowledged by ann ...": the
dashboard's headline and incident pages, the report, ``retroguard watch``'s closing line.
The dashboard and the terminal each kept a table of their own, the dashboard's without
"mqtt" (an acknowledgement with no ``via`` of its own: "acknowledged by ann via mqtt" where the
terminal said "by an MQTT command"). A way a later release adds is said as itself
(:func:`closed_via_said`)."""


def closed_via_said(via: str | None) -> str:
    """How an incident was closed (:data:`CLOSED_VIA_SAID`): "via pager" for a way not in it,
    "" when nobody said how."""
    if not via:
        return ""
    return CLOSED_VIA_SAID.get(via, f"via {via}")


@dataclass(frozen=True, slots=True)
class FaultKindSaid:
    """How one kind of FAULT (the state message's ``fault``) is said."""

    name: str
    """Its name, Home Assistant's Fault ``kind``: "Stall (clears by itself)"."""
    then: str
    """What happens next and who must act, the dashboard card's belt line after the reason:
    a caregiver reading "heartbeat gap" could not tell that nobody needs to come, nor reading
    "relay contact open while armed" that nobody may walk until the treadmill is checked."""


FAULT_KIND_SAID: Mapping[str, FaultKindSaid] = {
    FaultSaid.STALL: FaultKindSaid(
        "Stall (clears by itself)",
        "it clears by itself within seconds, then a reset at the machine arms again",
    ),
    FaultSaid.NOT_WORN: FaultKindSaid(
        "Not worn", "clip the sensor back on the walker's belt, then reset at the machine"
    ),
    FaultSaid.SENSOR: FaultKindSaid(
        "Sensor", "someone must check the sensor and its cable before the belt can run"
    ),
    FaultSaid.CONTACT: FaultKindSaid(
        "Relay contact",
        "the relay may not stop the belt: nobody walks until someone has checked the treadmill",
    ),
    FaultSaid.MONITOR: FaultKindSaid(
        "Monitor", "someone must see to the monitor before the belt can run"
    ),
}
"""Every :class:`~core.protocol.messages.FaultSaid` in words (a test keeps it whole)."""
