"""What a caregiver reads: a device card's story and an event's, in plain words.

The card's headline is the device's incident (docs/incidents.md): the open
one, "FALL — not acknowledged", or the one that ended last, "Stumble — walker
pressed I'm OK", for :data:`RECENT_S` after it closed. Under it, what the
treadmill is doing ("Belt stopped, waiting for a reset at the machine"), and
whether the monitor is reporting at all. The colour follows the incident, not
the belt: a stopped belt whose incident is closed is no emergency, and an
offline monitor is grey unless an incident is still open on it.

An event's page tells its incident the same way, then the facts a caregiver
asks about (how hard the impact, whether the walker lay still, whether they
got up) with units; the detector's own figures stay behind a "details" toggle.
Nothing here reads the database or the clock: the routes pass both in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from caregiver.localtime import moment_of
from caregiver.plot import AfterTheTrip
from caregiver.storage import CLOSED_HERE, CardIncident, Device, Incident, StoredEvent
from core.protocol.events import EventType
from core.protocol.messages import WornSaid, worn_said
from core.protocol.words import (
    ALERT_SAID,
    FAULT_KIND_SAID,
    OFFLINE,
    EventSaid,
    alarm_words,
    alert_said,
    closed_via_said,
    event_said,
)

RECENT_S = 12 * 3600.0
"""How long a closed incident stays the card's headline."""


def device_link(device_id: str, tail: str = "") -> str:
    """A device's page (``tail``: one under it, "/progress"), its id percent-escaped as one
    path segment. :mod:`core.protocol.ids` keeps ``?``, ``#``, ``/`` and spaces out of a device
    id today, so this changes nothing for one stored now; a link is built the same way
    wherever it is built, so a wider id rule (or a row written past the checks) cannot turn
    an id into another address, a query or a fragment."""
    return f"/devices/{quote(device_id, safe='')}{tail}"


OPEN_TITLE: Mapping[str, str] = {kind: words.open for kind, words in ALERT_SAID.items()}
"""An open alert's name (:data:`core.protocol.words.ALERT_SAID`'s ``open``): the card's
headline, the "Still open" notice (``caregiver/seen.py``) and the held alarm's words;
``offline``: the alert outside any incident."""
_URGENT = frozenset({"fall", "no_recovery", "help"})
_ANSWERED_WHAT = {"fall": "the fall", "no_recovery": "the fall", "help": "the call for help"}
_BELT = {
    "ARMED": "Monitor armed: the belt can run",
    "TRIPPED": "Belt stopped, waiting for a reset at the machine",
    "FAULT": "Belt stopped by a monitor fault",
    "STANDBY": "Belt stopped: the monitor is ready to be armed at the machine",
    "STARTING": "Belt stopped: the monitor is starting",
}


@dataclass(frozen=True, slots=True)
class Headline:
    text: str
    since: float
    """When it happened (epoch seconds: the page shows "2 min ago")."""
    link: str
    urgent: bool
    open: bool


@dataclass(frozen=True, slots=True)
class CardStory:
    level: str
    """The card's colour: danger, warn, ok, idle or offline."""
    headline: Headline | None
    belt: str
    offline: bool
    last_seen: float | None
    can_acknowledge: bool
    seen: CardSeen


@dataclass(frozen=True, slots=True)
class CardSeen:
    """What the card's Acknowledge says it showed (its form's fields, :mod:`caregiver.seen`):
    the open incident it tells, that incident's newest alert event, and the newest open alert
    outside any incident ("" for none)."""

    incident: str
    seen: str
    alerts: str


CLOCK_NOT_SET = "the treadmill's clock was not set"
"""Said after the time an event was received when the device's clock was not synchronised as
it stamped the event (its ``wall_unsynced``): a Pi without a battery-backed clock boots after
a power cut with the time of its last shutdown, and a fall at 09:15 must not read "14:02
yesterday". The service's own time of receipt is shown instead, and called that: an event
queued through an outage was received later than it happened."""


HELD_S = 60.0
"""How far apart the device's stamp of an event and this service's receipt of it may be before
a page or a notification says both: a fall kept in the device's outbox through a network
outage was told by its receipt ("Since 14:52") above steps stamped by the device ("14:32 Fell
backward"), which a caregiver read as the fall happening twenty minutes later than it did."""


@dataclass(frozen=True, slots=True)
class Stamped:
    """When something happened, as the pages and the notifications say it (:func:`stamped`)."""

    at: str | float
    """The time to show: the device's ``wall_time``, or when this service received it if the
    device's clock was not set (:attr:`unsynced`)."""
    since: float
    """``at`` in epoch seconds: what "(2 min ago)" counts from."""
    received_at: float
    """When this service received it."""
    unsynced: bool
    """The device's clock was not set as it stamped it (:data:`CLOCK_NOT_SET`)."""
    late: str = ""
    """How the receipt differs from the device's stamp, when by more than :data:`HELD_S`
    ("held 28 min by the treadmill"; "the treadmill's clock was 3 min ahead"), else ""."""

    @property
    def received_format(self) -> str:
        """How to show :attr:`received_at` beside :attr:`at`: the time of day, or with its
        date when they are half a day or more apart."""
        return "time" if abs(self.received_at - self.since) < 12 * 3600 else "datetime"


def stamped(wall_time: str, received_at: float, unsynced: bool) -> Stamped:
    """When an event stamped ``wall_time`` by its device, received here at ``received_at``,
    happened: by the device's clock when it was set, else (and for a stamp that cannot be
    read) by the receipt, said as such."""
    moment = moment_of(wall_time) if not unsynced else None
    if moment is None:  # a stamp that is no time is shown as it came, counted from receipt
        return Stamped(received_at if unsynced else wall_time, received_at, received_at, unsynced)
    at = moment.timestamp()
    apart = received_at - at
    if apart > HELD_S:
        late = f"held {late_words(apart)} by the treadmill"
    elif apart < -HELD_S:
        late = f"the treadmill's clock was {late_words(-apart)} ahead"
    else:
        late = ""
    return Stamped(wall_time, at, received_at, False, late)


def late_words(seconds: float) -> str:
    """ "3 min", "2 h 5 min", "3 days": how long, in whole minutes (at least one), as the
    pages' "(3 min ago)" counts them."""
    minutes = max(1, int(seconds // 60))
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{minutes // (24 * 60)} days"


def event_stamped(event: StoredEvent) -> Stamped:
    """:func:`stamped` of a stored event."""
    return stamped(event.wall_time, event.received_at, event.wall_unsynced)


def incident_stamped(incident: Incident) -> Stamped:
    """:func:`stamped` of the event that opened ``incident``."""
    return stamped(incident.opened_wall, incident.opened_at, incident.opened_unsynced)


def page_moment(
    event: StoredEvent, incident: Incident | None, events: Sequence[StoredEvent]
) -> tuple[str, Stamped]:
    """What the event page's line under its headline says, and when: "Since" an open incident
    opened, "Closed" when a closed one closed, else "At" the event itself. A close the
    walker or the device made (the I'm OK, a close relayed from Home Assistant) is when the
    device stamped the event it closed with (``closed_at`` is its receipt), as its step says."""
    if incident is None:
        return "At", event_stamped(event)
    if incident.open:
        return "Since", incident_stamped(incident)
    closed_at = incident.closed_at or incident.opened_at
    if not told(incident, events):
        # closed here, not yet on the treadmill: "Closed" beside a card that said "not yet
        # confirmed by the treadmill" was a second truth (the headline says it too)
        acknowledged = event_said(EventType.CLOSED).step  # "Acknowledged", the close's word
        return acknowledged, Stamped(closed_at, closed_at, closed_at, False)
    if incident.closed_via not in CLOSED_HERE:
        closing = [
            e for e in events if e.type in ("ok", "reset", "closed") and e.received_at <= closed_at
        ]
        if closing:
            return "Closed", event_stamped(closing[-1])
    return "Closed", Stamped(closed_at, closed_at, closed_at, False)


def told(incident: Incident, events: Sequence[StoredEvent]) -> bool:
    """Whether the device has ``incident`` as this service does, from its ``events``, as a
    card reads it (``told``, caregiver/storage/sql.py): one of them was confirmed by the
    device's reply to the ``ack``, or the device published its ``closed`` event; a close the
    walker made is the device's own. False only for a caregiver's close the treadmill has
    not confirmed yet (:data:`UNTOLD`)."""
    if incident.open or incident.closed_by is None or incident.closed_via == "walker":
        return True
    return any(e.type == "closed" or e.ack_confirmed for e in events)


def event_time(event: StoredEvent) -> str | float:
    """The time to show for ``event``: the device's ``wall_time``, or, when the device's
    clock was not set as it stamped it, when this service received it (its own clock; shown
    as "received ...", :data:`CLOCK_NOT_SET`, never as when it happened)."""
    return event.received_at if event.wall_unsynced else event.wall_time


NOT_LIVE = "Not live — may be out of date"
"""What each card says while the page's live feed is lost (its badge says "reconnecting…",
``static/app.js``): a card shown as it stood when the feed broke. A green "Monitor armed" card
read as current while the page heard nothing; a fall since would not be on it."""


UNTOLD = "not yet confirmed by the treadmill"
"""A caregiver's close the device has not confirmed (its ``ack`` waits for the broker, or for
the device to come back): closed here, the card says it is not yet closed there."""


def headline(
    incident: CardIncident | Incident,
    first_event_link: str,
    who: str | None = None,
    on: str | None = None,
    told: bool = True,
) -> Headline:
    """The incident in a line; ``who``: the walker to name (:func:`caregiver.walkers.who`),
    right after what happened ("FALL — Anna — not acknowledged"), or None for today's words
    (the one walker of a treadmill, or an incident from before walkers were named); ``on``:
    the treadmill's name, for a page whose line names it (the event page), said next to what
    happened ("Fall on treadmill-1 — acknowledged by carol on the dashboard"; "FALL — Anna,
    on treadmill-1 — ..."). Appended after the line it read "... by carol on the dashboard
    on treadmill-1", as if the dashboard were on the treadmill. ``told``: of an
    :class:`Incident` (a card's incident says it itself), whether the treadmill has the close
    (:func:`told`): the event page said none was pending while the card said "not yet
    confirmed by the treadmill"; an incident read with its own (:attr:`Incident.told`, the
    list of recent alerts) says it whatever this says."""
    named = (
        f" — {who}, on {on}" if who and on else f" — {who}" if who else f" on {on}" if on else ""
    )
    # when it opened by the device's clock, when it was set (:func:`stamped`): "(2 min ago)"
    # of a fall the treadmill could only send twenty minutes later counted from its receipt
    if isinstance(incident, Incident):
        kind, status = incident.severity, incident.status
        opened = incident_stamped(incident).since
        closed_at, by, via = incident.closed_at, incident.closed_by, incident.closed_via
        closed = closed_at
        answered = incident.answered
        # or read with the fleet's "Recent alerts", or its card's said (the live feed's row): the
        # row said the close was done beside the card's "not yet confirmed by the treadmill";
        # only a caregiver's close waits for the treadmill, as the card reads it (below)
        waits = not told or incident.told is False
        untold = waits and by is not None and via != "walker"
    else:
        kind, status = incident["kind"], incident["status"]
        opened = stamped(
            incident["opened_wall"], incident["opened_at"], incident["opened_unsynced"]
        ).since
        closed_at, by, via = incident["closed_at"], incident["closed_by"], incident["closed_via"]
        # a close the walker or the device made: when the device stamped the event it closed
        # with, as the event page's "Closed" line (page_moment); it counted from its receipt
        closed = closed_at
        if closed_at is not None and incident["closed_wall"]:
            closed = stamped(incident["closed_wall"], closed_at, incident["closed_unsynced"]).since
        answered = incident["answered"]
        # a caregiver's close whose ack waits for the broker: closed here, not yet there
        untold = by is not None and via != "walker" and not incident.get("told", True)
    if status == "open" and answered:
        # reopened by a milder alert (a fault) after its fall was answered: the fall is not
        # news, and not an emergency again; the new alert is what waits for an answer
        what = _ANSWERED_WHAT.get(kind, "the incident")
        # the treadmill next to the alert, not to the answer ("answered on treadmill-1")
        new = f"New alert on {on} after {what} was answered" if on and not who else None
        return Headline(
            f"{new or f'New alert after {what} was answered{named}'} — not acknowledged",
            opened,
            first_event_link,
            False,
            True,
        )
    if status == "open":
        text = f"{alert_said(kind).open}{named} — not acknowledged"
        return Headline(text, opened, first_event_link, kind in _URGENT, True)
    title = alert_said(kind).name
    waiting = f" — {UNTOLD}" if untold else ""
    return Headline(
        f"{title}{named} — {closed_how(by, via)}{waiting}",
        closed or opened,
        first_event_link,
        False,
        False,
    )


def alarm(kind: str, device_name: str, who: str | None = None, *, at_once: bool = False) -> str:
    """What the dashboard's alarm says for a critical event of type ``kind`` — the banner, the
    tab's title and the browser's notification — whether the page heard it live or caught up
    on it after its feed broke ("FALL on Dad's treadmill"; of a named walker of a shared
    treadmill, ``who``: "FALL — Anna, on treadmill-1"): worded here only (its title is
    :data:`core.protocol.words.ALERT_SAID`'s ``alarm``, the caregivers' notifications' title
    too), sent to the page with the event (``caregiver/feed.py``) and with each missed alarm
    (``/api/alarms``). ``at_once``: its policy pages at once (:func:`alarm_words`)."""
    title = alarm_words(kind, at_once=at_once)
    return f"{title} — {who}, on {device_name}" if who else f"{title} on {device_name}"


def held_alarm(kind: str, device_name: str, pages_at: str, *, due: bool = False) -> str:
    """What the "Still open" notice says of an alert held for the walker's own reset (a
    stumble within ``policy.reset_grace_s``): open, not yet paging anyone, and when it will
    ("Stumble on Dad's treadmill — waiting for the walker to reset; caregivers are alerted at
    14:05:30 CET if not": a caregiver read "pages at" as jargon;
    ``pages_at`` in the service's zone). It was listed nowhere: the card was amber and the
    notice named nothing until the grace ran out. ``due``: that time has passed and the
    alert is still held (the escalation has not acted on it yet): what happened, "not reset
    by 14:05:30 CET, when caregivers were to be alerted", not a promise of a time gone by."""
    title = alert_said(kind).open
    if due:
        return (
            f"{title} on {device_name} — not reset by {pages_at}, "
            "when caregivers were to be alerted"
        )
    return (
        f"{title} on {device_name} — waiting for the walker to reset; "
        f"caregivers are alerted at {pages_at} if not"
    )


COUNTED: Mapping[str, str] = {
    "trips": "Belt stops",
    "stumbles": "Stumbles",
    "falls": "Falls",
    "incidents": "Alerts",
}
"""What the progress page's table and the PDF report call a session's or a week's counts, in
one place: a "trip" is the monitor's word for stopping the belt (a reader took "Trips" beside
"Stumbles" for tripping over), and an incident is what the dashboard lists as its "Recent
alerts" (the PDF said "Incidents" and "Stumb./falls"). The CSV and the session summaries keep
the protocol's names (trips, stumbles, falls, incidents)."""


ONE_PRESS = EventSaid(
    "Walker pressed I'm OK at the machine; belt re-armed",
    "The walker pressed I'm OK at the machine; the belt re-armed",
)
"""The walker's "I'm OK" and the re-arming it made, said once. One press of the reset button
with an incident open sends two events (``firmware/safety.py``, ``on_button``): ``ok``, which
closes the incident as the walker's, then ``reset``, the belt armed again — both with the
incident, one right after the other, the arming already allowed before either is sent. The
timeline showed them as two rows ("Walker pressed I'm OK", "Reset at the machine") a
caregiver read as two things done; both events stay stored, in the API and in the event
page's details, and a reset without an incident (the walk's first arming) keeps its row."""


def one_press(events: Sequence[StoredEvent]) -> dict[str, str]:
    """The presses among ``events`` that sent both an ``ok`` and a ``reset``
    (:data:`ONE_PRESS`): each such event's id to the other's. They are matched by their
    incident, which only the one press's two events share (a reset closes the incident it
    carries: the monitor's next one is new)."""
    oks = {e.incident: e.id for e in events if e.type == "ok" and e.incident}
    pairs: dict[str, str] = {}
    for e in events:
        if e.type == "reset" and e.incident and (ok := oks.get(e.incident)) is not None:
            pairs[ok], pairs[e.id] = e.id, ok
    return pairs


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One row of a device's timeline: the event it links to and its words."""

    event: StoredEvent
    title: str
    text: str


def timeline(events: Sequence[StoredEvent]) -> list[TimelineRow]:
    """A device's timeline rows: each event that is listed (:func:`in_timeline`) in its words
    (:func:`row_title`, :func:`row_text`), a press's "I'm OK" and re-arming as one row (the
    ``ok``'s, :data:`ONE_PRESS`) — the live feed joins them the same way (``app.js``)."""
    pairs = one_press(events)
    rows: list[TimelineRow] = []
    for e in events:
        if not in_timeline(e.type) or (e.type == "reset" and e.id in pairs):
            continue
        if e.id in pairs:
            rows.append(TimelineRow(e, ONE_PRESS.row, ""))
        else:
            rows.append(TimelineRow(e, row_title(e.type), row_text(e)))
    return rows


def row_title(kind: str) -> str:
    """A timeline row's label: the event as a caregiver says it ("Reset at the machine")."""
    return event_said(kind).row


def row_text(event: StoredEvent) -> str:
    """A timeline row's words: a fall's impact and posture in plain words, with units
    (:func:`impact_words`), instead of the detector's figures ("impact 5.1 g (0.30 g s),
    lying 83 deg"); a caregiver's close as who closed it and where; other events as the
    monitor said them, with degrees written as degrees, less what the row's label says
    already ("monitor started" under "Monitor started")."""
    if event.type == "closed" and (m := _CLOSED_BY.fullmatch(event.reason)):
        how = closed_how(m["by"], m["via"]).removeprefix("acknowledged ")
        return f"{how}: {m['rest']}" if m["rest"] else how
    text = event_words(event.type, event.reason, event.figures)
    label = row_title(event.type)
    if text.casefold().startswith(label.casefold()):
        return text[len(label) :].lstrip(" ;:,")
    return text


_CLOSED_BY = re.compile(r"closed by (?P<by>.+?) via (?P<via>[\w-]+)(?:: (?P<rest>.*))?", re.S)
"""The monitor's reason for a caregiver's close (``firmware/mqtt/reporter.py``): "closed by
ann via dashboard: the belt stays stopped until a reset at the machine", which the row says
as "by ann on the dashboard: the belt stays ..." (:func:`closed_how`'s words)."""


def event_words(kind: str, reason: str, figures: Mapping[str, float]) -> str:
    """An event's words from its type, the monitor's reason and figures: what the timeline
    row (:func:`row_text`) and the caregivers' notifications (``caregiver/alerts.py``) say,
    so a phone's message and the dashboard describe a fall alike."""
    if kind == "reset" and reason.startswith(_RESET):
        after = _RESET_AFTER.get(reason.removeprefix(_RESET))
        return f"re-armed at the machine after {after}" if after else "armed at the machine"
    if kind == "fall" and (impact := figures.get("impact_g")) is not None:
        text = f"impact {impact_words(impact)}"
        if (tilt := figures.get("tilt_deg")) is not None:
            text += f", {tilt:.0f}° from upright" + (" — lying down" if tilt >= 60 else "")
        return text
    return _G_SECONDS.sub("g·s", _DEGREES.sub(lambda m: "°/s" if m[1] else "°", reason))


_RESET = "armed by local reset from "
"""The monitor's reason for an arming press, then the state it left (firmware/safety.py)."""
_RESET_AFTER = {"TRIPPED": "the belt was stopped", "FAULT": "a fault"}
"""A reset's timeline words name what it ended, not the state machine ("armed by local
reset from TRIPPED"); from STANDBY it is the walk's start: "armed at the machine"."""

_DEGREES = re.compile(r" deg(/s)?\b")
"""The monitor's "12 deg", "130 deg/s" — not a word that starts with "deg"."""
_G_SECONDS = re.compile(r"(?<=\d )g s\b")
"""The monitor's impulse, "(0.30 g s)": g times seconds, written g·s as the figures are."""


def in_timeline(kind: str) -> bool:
    """Whether a device's timeline lists an event of this type: not the IMU recording,
    which is the plot on its stumble's or fall's page, not a line of its own."""
    return kind != "window"


def incident_kind(kind: str) -> str:
    """An incident's worst event as a report's reader says it ("Fall, not getting up")."""
    return alert_said(kind).name


def closed_how(by: str | None, via: str | None) -> str:
    if via == "walker":
        return "walker pressed I'm OK"
    who = by or "a caregiver"
    return f"acknowledged by {who} {closed_via_said(via)}".rstrip()


def closed_earlier(by: str | None, via: str | None, me: str) -> str:
    """What ``me``'s acknowledgement of an incident someone closed first is told: who did and
    how. Two caregivers pressing at once both read "Acknowledged: the alert is closed" (the
    second closed nothing), so neither knew the other was answering the fall."""
    if via == "walker":
        return "The walker had already pressed I'm OK"
    return f"Already {closed_how('you' if by == me else by, via)}"


def card(device: Device, now: float, who: str | None = None) -> CardStory:
    """``who``: the walker of the card's incident to name (:func:`headline`)."""
    incident = device["incident"]
    offline = device["availability"] == "offline"
    shown = None
    if incident is not None:
        ended = incident["closed_at"] or incident["last_event_at"]
        if incident["status"] == "open" or now - ended <= RECENT_S:
            shown = headline(incident, f"/events/{incident['first_event_id']}", who)
    other_alerts = device["open_alerts"] > 0 and not (shown is not None and shown.open)
    if other_alerts:
        # an alert outside any incident: the monitor went offline while armed. It outranks
        # an incident that ended in the last twelve hours: "Fall — acknowledged by ann" over
        # a grey card with an Acknowledge button hid what that button closes, and that the
        # treadmill stopped reporting while it could run.
        what = ALERT_SAID[OFFLINE].open if offline else "Alert"
        shown = Headline(
            f"{what} — not acknowledged",
            device["last_seen"] or now,
            device_link(device["device_id"]),
            False,
            True,
        )
    return CardStory(
        level=_level(device, shown, offline),
        headline=shown,
        belt=belt(
            device["state"],
            device["state_reason"],
            offline,
            device["state_worn"],
            device["state_fault"],
        ),
        offline=offline,
        last_seen=device["last_seen"],
        can_acknowledge=device["open_alerts"] > 0 or (shown is not None and shown.open),
        seen=card_seen(device),
    )


def card_seen(device: Device) -> CardSeen:
    """What a card's Acknowledge closes: the open incident it tells, as of its newest alert
    event, and the alerts outside incidents up to the newest open one — nothing newer."""
    incident = device["incident"]
    shown = incident is not None and incident["status"] == "open"
    other = device["newest_other_alert"]
    return CardSeen(
        incident=incident["id"] if incident is not None and shown else "",
        seen=(incident["newest_alert"] or "") if incident is not None and shown else "",
        alerts="" if other is None else str(other),
    )


def belt(state: str, reason: str, offline: bool, worn: str | None = None, fault: str = "") -> str:
    """The card's line on the belt. ``worn``: what the reason says of the sensor-worn check
    (the device's ``state_worn``); None: read from the reason (an event's, which has no such
    field). Typed, because a press refused while the check still measures begins "sensor not
    worn" too: the card said the sensor was not worn of one clipped on and just starting.
    ``fault``: the kind of FAULT (the device's ``state_fault``), whose words after the reason
    say who must act (:data:`~core.protocol.words.FAULT_KIND_SAID`); '' (a release before the
    field, or a kind this service does not know): the reason alone."""
    text = _BELT.get(state, state or "No report from the monitor yet")
    said = worn_said(None, reason) if worn is None else WornSaid(worn) if worn else None
    if state == "FAULT" and reason:
        text = f"{text}: {reason}"
    elif said is WornSaid.NOT_WORN:
        text = "Belt stopped: the sensor is not worn - it must be clipped on the walker's belt"
    elif said is WornSaid.MEASURING:
        text = "Belt stopped: starting, checking the sensor is worn (a few seconds)"
    # not of a monitor gone offline: "it clears by itself" is no longer known to be true
    if state == "FAULT" and not offline and (kind := FAULT_KIND_SAID.get(fault)) is not None:
        text = f"{text} — {kind.then}"
    # a dash, not a colon: the state's own words have one ("monitor armed: the belt can
    # run"), and "Last known: monitor armed: the belt can run" read as two lines run together
    return f"Last known — {text[0].lower()}{text[1:]}" if offline and state else text


URGENCY = {"danger": 0, "warn": 1}
"""A card level's place in the fleet (any other level: 2, name order within each): an open
fall, no-recovery or call for help first, then an open stumble or a fault. The stylesheet
orders the cards the same way on screen, and the live feed keeps the page in it."""


def _level(device: Device, shown: Headline | None, offline: bool) -> str:
    """The colour follows what is open, then the monitor's state: an open alert on a monitor
    that is offline keeps its colour, its card says offline in words. "Monitor went offline
    while armed — not acknowledged", an alert that pages, was grey as a quiet offline
    treadmill and sorted among the quiet cards: at a glance, nothing to do."""
    if shown is not None and shown.open and shown.urgent:
        return "danger"
    if shown is not None and shown.open:
        return "warn"
    if offline:
        return "offline"
    if device["state"] == "FAULT":
        return "warn"
    if device["state"] == "ARMED":
        return "ok"
    return "idle"


# ------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class Step:
    """One line of an incident's timeline."""

    event_id: str
    wall_time: str | float
    """When to show it at (:func:`event_time`): when it was received if ``received``."""
    text: str
    severity: str
    received: bool = False
    """The device's clock was not set: ``wall_time`` is when the service received it."""


@dataclass(frozen=True, slots=True)
class Fact:
    label: str
    value: str
    at: str | float | None = None
    """A time the value speaks of (the page shows it in the reader's time zone): ISO from the
    device, or the service's epoch seconds when ``received``."""
    received: bool = False
    """The device's clock was not set: ``at`` is when the service received the event."""


@dataclass(frozen=True, slots=True)
class Detail:
    """A detector figure as sent, with its unit (behind the page's "details" toggle)."""

    key: str
    value: float
    unit: str


def steps(events: Sequence[StoredEvent], incident: Incident | None) -> list[Step]:
    """The incident's timeline in words (the IMU recording is the plot, not a line; a press's
    "I'm OK" and re-arming one line, :data:`ONE_PRESS`)."""
    out: list[Step] = []
    pairs = one_press(events)
    for e in events:
        if e.type == "window" or (e.type == "reset" and e.id in pairs):
            continue
        if e.id in pairs:
            text = ONE_PRESS.step
        elif e.type == "closed" and incident is not None and incident.closed_via != "walker":
            text = closed_how(incident.closed_by, incident.closed_via).capitalize()
        else:
            text = event_said(e.type).step
        if e.type == "fault" and e.reason:
            text = f"{text}: {e.reason}"
        out.append(Step(e.id, event_time(e), text, e.severity, e.wall_unsynced))
    return out


def impact_words(impact_g: float) -> str:
    """How hard a landing was, for someone who does not think in g."""
    if impact_g >= 3.5:
        strength = "hard"
    elif impact_g >= 2.0:
        strength = "firm"
    else:
        strength = "light"
    return f"{strength} ({impact_g:.1f} g; standing still is 1 g)"


def facts(
    event: StoredEvent, events: Sequence[StoredEvent], after: AfterTheTrip | None
) -> list[Fact]:
    """What a caregiver asks about this event: impact, lying still, getting up, leaning."""
    figures = _worst_figures(event, events)
    out: list[Fact] = []
    if (impact := figures.get("impact_g")) is not None:
        out.append(Fact("Impact", impact_words(impact)))
    if (tilt := figures.get("tilt_deg")) is not None:
        lying = " — lying down" if tilt >= 60 else ""
        out.append(Fact("Body tilt", f"{tilt:.0f}° from upright{lying}"))
    if (descent := figures.get("descent_mps")) is not None and descent > 0:
        out.append(Fact("Dropping speed", f"{descent:.1f} m/s"))
    types = {e.type for e in events}
    if "no_recovery" in types:
        still = next((e.figures.get("still_s") for e in events if e.type == "no_recovery"), None)
        lay = f"yes, {still:.0f} s or more" if still else "yes, long enough to raise the alarm"
        out.append(Fact("Lying still", lay))
    got_up = _got_up(events, after)
    if got_up is not None:
        out.append(got_up)
    return out


def _worst_figures(event: StoredEvent, events: Sequence[StoredEvent]) -> Mapping[str, float]:
    for kind in ("fall", "stumble"):
        for e in events:
            if e.type == kind and e.figures:
                return e.figures
    return event.figures


def _got_up(events: Sequence[StoredEvent], after: AfterTheTrip | None) -> Fact | None:
    for e in events:
        if e.type == "ok":
            return Fact(
                "Got up", "yes — pressed I'm OK at the machine", event_time(e), e.wall_unsynced
            )
        if e.type == "reset":
            return Fact(
                "Got up",
                "yes — re-armed the monitor at the machine",
                event_time(e),
                e.wall_unsynced,
            )
    if after is not None and after.upright:
        return Fact("Got up", f"probably: the recording shows them {after.text}")
    if after is not None:
        return Fact("Got up", f"not yet: the recording shows them {after.text}")
    return None


_UNITS = (
    ("_gs", "g·s"),
    ("_g", "g"),
    ("_deg", "°"),
    ("_dps", "°/s"),
    ("_mps", "m/s"),
    ("_hz", "Hz"),
    ("_s", "s"),
)

FIGURE_SAID: Mapping[str, str] = {
    "impact_g": "Impact at its peak",
    "impulse_gs": "Impact over its duration (impulse)",
    "descent_mps": "Fastest drop before the impact",
    "turn_dps": "Fastest tilting away from upright before the impact",
    "pre_tilt_deg": "Trunk tilt just before the impact",
    "tilt_deg": "Trunk tilt from upright",
    "tilt_rate_dps": "How fast the trunk was tilting",
    "still_s": "Lying still for",
    "vz_mps": "Up-down speed (minus: going down)",
    "accel_g": "Acceleration (standing still is 1 g)",
    "freefall_s": "Time in free fall",
}
"""What the event page's details call each figure the detector sends
(``firmware/detection/retro.py``): the page showed the key less its unit, "vz", "pre tilt",
"freefall", "accel", which a physio had to guess at. The key stays the name in the event's
JSON, the MQTT payload and the CSV; a figure a later monitor adds is said from its key in
sentence case ("New figure")."""


@dataclass(frozen=True, slots=True)
class EventDetails:
    """One event's engineering record: what the monitor said and its figures."""

    event: StoredEvent
    title: str
    figures: list[Detail]
    belt: str = ""
    """What the treadmill was doing, in the card's words ("Belt stopped, waiting for a
    reset at the machine"). The monitor's state name beside it ("(TRIPPED)") is gone: it
    said the same thing in the state machine's capitals."""
    said: str = ""
    """What the monitor said, in words (:func:`monitor_said`)."""


def details(events: Sequence[StoredEvent]) -> list[EventDetails]:
    """Each event's figures with their units (from the key's suffix)."""
    return [
        EventDetails(
            e,
            event_said(e.type).step,
            figures(e.figures),
            _BELT.get(e.state, e.state),
            monitor_said(e),
        )
        for e in events
        if e.type != "window"
    ]


def monitor_said(event: StoredEvent) -> str:
    """The monitor's reason for the details' "Monitor said", in a physio's words but with
    its figures: degrees as °, "g s" as g·s, an arming press as what it ended ("re-armed at
    the machine after the belt was stopped", not "armed by local reset from TRIPPED"). The
    stored reason, and the JSON and MQTT that carry it, keep the monitor's own words."""
    return event_words(event.type, event.reason, {})


def figures(values: Mapping[str, float]) -> list[Detail]:
    out = []
    order = {key: n for n, key in enumerate(FIGURE_SAID)}
    for key, value in sorted(values.items(), key=lambda kv: order.get(kv[0], len(order))):
        suffix, unit = next(((s, u) for s, u in _UNITS if key.endswith(s)), ("", ""))
        name = FIGURE_SAID.get(key)
        if name is None:
            plain = (key.removesuffix(suffix) if suffix else key).replace("_", " ")
            name = plain[:1].upper() + plain[1:]
        out.append(Detail(name, value, unit))
    return out
