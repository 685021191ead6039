"""What the live feed (``/stream``) sends: typed messages, data rather than HTML.

The dashboard's first page load is rendered on the server (``templates/_card.html``,
``_event_row.html``, ``_incident_row.html``); after that each change arrives as one
of these messages and ``static/app.js`` builds the card or row from it, in the same
markup. Sending data instead of rendered fragments keeps Jinja off the service's one
core during a burst (it rendered a row, a card and an incident line for every event)
and makes each message a third of the size; what a card *says* — the story — is still
decided once, on the server (:func:`caregiver.story.card`), and sent as words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from caregiver import story
from caregiver.broker_link import BrokerLink, Connected, HeldMessage, banner_words, held_words
from caregiver.storage import Device, Incident, Part, SideFault, StoredEvent, still_stored


class Moment(msgspec.Struct, frozen=True):
    """A time as the page shows it: UTC for the browser to localise (``static/time.js``),
    and the service zone's words until it has."""

    iso: str
    text: str
    format: str = "datetime"


class CardHeadline(msgspec.Struct, frozen=True):
    text: str
    link: str
    since: float
    open: bool


class CardSeen(msgspec.Struct, frozen=True):
    """What the card's Acknowledge says it showed (:class:`caregiver.story.CardSeen`): its
    form's hidden fields, current with every card the feed sends."""

    incident: str
    seen: str
    alerts: str


class Card(msgspec.Struct, frozen=True):
    """One device's card (``_card.html``)."""

    name: str
    level: str
    headline: CardHeadline | None
    belt: str
    offline: bool
    last_seen: float | None
    last_seen_at: Moment | None
    can_acknowledge: bool
    seen: CardSeen
    plan: str = ""
    """The walker's plan in words (:func:`caregiver.progress.card_plan`); "": no line."""


class EventRow(msgspec.Struct, frozen=True):
    """An event as the timelines list it (``_event_row.html``), with what the alarm needs."""

    id: str
    device_id: str
    type: str
    title: str
    """The row's label in words (:func:`caregiver.story.row_title`)."""
    text: str
    """What happened in words (:func:`caregiver.story.row_text`)."""
    listed: bool
    """Whether a device's timeline shows it (:func:`caregiver.story.in_timeline`)."""
    severity: str
    reason: str
    wall_time: str
    when: Moment | None
    """When to show it at (:func:`caregiver.story.event_time`): when it was received if
    ``received``."""
    received_at: float
    acked_by: str | None
    has_window: bool
    incident: str | None = None
    """Its incident (None: a device from before incidents, whose alert is its own): the
    alarm banner offers no "Open" on the page of the incident it alarms for (``app.js``)."""
    received: str | None = None
    """The device's clock was not set as it stamped the event: ``when`` is when the service
    received it, and this says so (:data:`caregiver.story.CLOCK_NOT_SET`)."""
    joined: str | None = None
    """An ``ok`` or ``reset`` of an incident: the one row's words for it and its partner of the
    same press (:data:`caregiver.story.ONE_PRESS`). ``app.js`` gives them to the row of the
    partner already listed (its ``data-press``, this ``incident``) instead of adding a row,
    as the page's own rendering (:func:`caregiver.story.timeline`) joins them."""
    since: float | None = None
    """What its "(2 min ago)" counts from: ``when`` (:attr:`caregiver.story.Stamped.since`),
    not its receipt. None: ``received_at`` (a message from an instance before it)."""
    late: str | None = None
    """Its receipt differs from the device's stamp by more than a minute: how ("held 20 min by
    the treadmill", :attr:`caregiver.story.Stamped.late`), said after ``received_when``."""
    received_when: Moment | None = None
    """When it was received, with ``late``."""


class IncidentRow(msgspec.Struct, frozen=True):
    """A line in the fleet's list of incidents (``_incident_row.html``)."""

    text: str
    link: str
    severity: str
    """Its colour: critical (open and urgent), warning (open) or closed."""
    device_name: str
    opened: Moment | None
    """When it opened (:func:`caregiver.story.incident_stamped`'s ``at``): when it was
    received if ``received``."""
    opened_at: float
    received: str | None = None
    """The device's clock was not set as it stamped the event that opened it: ``opened`` is
    when the service received it, and this says so (:data:`caregiver.story.CLOCK_NOT_SET`)."""
    since: float | None = None
    """What its "(2 min ago)" counts from: ``opened`` (:attr:`caregiver.story.Stamped.since`),
    not its receipt. None: ``opened_at`` (a message from an instance before it)."""
    late: str | None = None
    """As :attr:`EventRow.late`, of the event that opened it."""
    received_when: Moment | None = None
    """When that event was received, with ``late``."""


class DeviceMessage(msgspec.Struct, frozen=True, tag_field="kind", tag="device"):
    device_id: str
    level: str
    card: Card


class EventMessage(msgspec.Struct, frozen=True, tag_field="kind", tag="event"):
    device_id: str
    device_name: str
    event: EventRow
    alarm: str | None = None
    """A critical event's alarm in words (:func:`caregiver.story.alarm`); None: no alarm."""


class IncidentMessage(msgspec.Struct, frozen=True, tag_field="kind", tag="incident"):
    device_id: str
    incident: str
    row: IncidentRow


class SessionMessage(msgspec.Struct, frozen=True, tag_field="kind", tag="session"):
    """A walking session was stored: the device's progress page reloads itself."""

    device_id: str
    session_id: str


class StageChangedMessage(msgspec.Struct, frozen=True, tag_field="kind", tag="stage"):
    """A walker's progression as the device keeps it changed (or was cleared): the device's
    plan page showing that walker fetches its "in force" section again in place (a form being
    filled in is left alone), and their progress page reloads itself."""

    device_id: str
    walker: str


class BrokerMessage(
    msgspec.Struct, frozen=True, tag_field="kind", tag="broker", omit_defaults=True
):
    """The service's link to the MQTT broker, as every page's banner shows it
    (:mod:`caregiver.broker_link`): ``down`` with the words and the time it went down, or
    not (no banner). To every caregiver, whatever devices they may see."""

    down: bool
    lead: str = ""
    detail: str = ""
    since: Moment | None = None
    consequence: str = ""
    degraded: bool = False
    """Shown, yet alerts still reach people: a part of the database the service goes on
    without (:func:`side_message`). The badge by the brand stays "live"."""


class HelloMessage(msgspec.Struct, frozen=True, tag_field="kind", tag="hello"):
    """A stream's first message: where the changes stood when it opened
    (:meth:`caregiver.hub.Hub.marker_for` the stream's caregiver; the page compares it with
    its own), and the broker link as it is then (a change between the page's render and
    the stream's opening is not missed)."""

    changes: str
    broker: BrokerMessage | None = None
    keepalive_s: float | None = None
    """The longest the stream stays quiet: a :class:`KeepaliveMessage` comes after this many
    seconds without a change. A page that hears nothing for a few of these takes its stream
    for dead (a phone's half-open connection) and opens another. None: an instance older
    than the keepalives a page sees (its comments never reached the page's script)."""


class KeepaliveMessage(msgspec.Struct, frozen=True, tag_field="kind", tag="keepalive"):
    """What a quiet stream sends every :attr:`HelloMessage.keepalive_s`, as the named event
    ``keepalive`` (the page's ``onmessage`` takes changes only): the page hears its stream is
    alive. It was an SSE comment, which keeps proxies from closing the connection but never
    reaches the page's script: a phone whose connection went half-open (the service's
    writes lost on the way) read "live" for ever, and heard of no fall."""


FeedMessage = DeviceMessage | EventMessage | IncidentMessage | SessionMessage | StageChangedMessage


def broker_message(
    link: BrokerLink, where: str, moment: Callable[[float, str], Moment | None]
) -> BrokerMessage:
    """The banner for ``link`` (the broker at ``where``), its time to the minute."""
    said = banner_words(link, where)
    if said is None or isinstance(link, Connected):
        return BrokerMessage(down=False)
    return BrokerMessage(
        True, said.lead, said.detail, moment(link.since, "minute"), said.consequence
    )


def held_message(held: HeldMessage, moment: Callable[[float, str], Moment | None]) -> BrokerMessage:
    """The banner while a message whose handler fails every time is held (the link is up:
    the badge stays "live"), since it was held on this connection, to the minute."""
    said = held_words(held)
    return BrokerMessage(
        True,
        said.lead,
        said.detail,
        moment(held.since, "minute"),
        said.consequence,
        degraded=True,
    )


def side_message(
    faults: Sequence[SideFault], moment: Callable[[float, str], Moment | None]
) -> BrokerMessage:
    """The banner for the parts of the database the service goes on without (the oldest
    first: :meth:`caregiver.storage.SideFaults.now`), since the first failed, to the minute:
    what does not work, and that the alerts still do. An alert refused for its own values
    (:attr:`Part.ALERTS`) leads it: a fall that is not shown or paged is the worst of them."""
    said = "; ".join(f"{f.part.what} ({f.fault})" for f in faults)
    lost = "; ".join(f.part.lost for f in faults)
    alert_refused = any(f.part is Part.ALERTS for f in faults)
    return BrokerMessage(
        True,
        "An alert cannot be stored"
        if alert_refused
        else "Part of the service's database cannot be used",
        said,
        moment(faults[0].since, "minute"),
        f"{still_stored(faults).capitalize()} are still stored and notified; meanwhile {lost}.",
        degraded=True,
    )


def card(
    device: Device,
    name: str,
    now: float,
    moment: Callable[[float], Moment | None],
    who: str | None = None,
    plan: str = "",
) -> Card:
    """``who``: the walker its incident names (:func:`caregiver.walkers.who`); ``plan``: the
    card's line on the walker's plan (:func:`caregiver.progress.card_plan`)."""
    s = story.card(device, now, who)
    headline = s.headline
    last_seen = s.last_seen if s.offline else None
    return Card(
        name=name,
        level=s.level,
        headline=(
            CardHeadline(headline.text, headline.link, headline.since, headline.open)
            if headline is not None
            else None
        ),
        belt=s.belt,
        offline=s.offline,
        last_seen=last_seen,
        last_seen_at=moment(last_seen) if last_seen else None,
        can_acknowledge=s.can_acknowledge,
        seen=CardSeen(s.seen.incident, s.seen.seen, s.seen.alerts),
        plan=plan,
    )


def event_message(
    event: StoredEvent,
    name: str,
    when: Moment | None,
    who: str | None = None,
    received_when: Moment | None = None,
) -> EventMessage:
    """An event as the live feed sends it, with its alarm's words if it is critical (naming
    ``who``, the walker of its incident, :func:`caregiver.walkers.who`)."""
    critical = event.severity == "critical"
    alarm = story.alarm(event.type, name, who) if critical else None
    return EventMessage(event.device_id, name, event_row(event, when, received_when), alarm)


def event_row(
    event: StoredEvent, when: Moment | None, received_when: Moment | None = None
) -> EventRow:
    """``when``: :attr:`caregiver.story.Stamped.at` as the page shows it; ``received_when``:
    its ``received_at``, said when the two differ (:attr:`caregiver.story.Stamped.late`)."""
    stamped = story.event_stamped(event)
    return EventRow(
        id=event.id,
        device_id=event.device_id,
        type=event.type,
        title=story.row_title(event.type),
        text=story.row_text(event),
        listed=story.in_timeline(event.type),
        severity=event.severity,
        reason=event.reason,
        wall_time=event.wall_time,
        when=when,
        received_at=event.received_at,
        acked_by=event.acked_by,
        has_window=event.has_window,
        incident=event.incident,
        received=story.CLOCK_NOT_SET if event.wall_unsynced else None,
        joined=story.ONE_PRESS.row if event.type in ("ok", "reset") and event.incident else None,
        since=stamped.since,
        late=stamped.late or None,
        received_when=received_when if stamped.late else None,
    )


def incident_row(
    incident: Incident,
    name: str,
    opened: Moment | None,
    who: str | None = None,
    received_when: Moment | None = None,
    told: bool = True,
) -> IncidentRow:
    """``who``: the walker it names (:func:`caregiver.walkers.who`); ``opened``, ``received_when``:
    as :func:`event_row`'s, of the event that opened it; ``told``: whether the treadmill has
    its close, as its card says (:attr:`caregiver.storage.CardIncident.told`): the row says
    "not yet confirmed by the treadmill" with the card (it said the close was done)."""
    h = story.headline(incident, f"/events/{incident.first_event_id}", who, told=told)
    severity = "critical" if h.open and h.urgent else ("warning" if h.open else "closed")
    received = story.CLOCK_NOT_SET if incident.opened_unsynced else None
    stamped = story.incident_stamped(incident)
    return IncidentRow(
        h.text,
        h.link,
        severity,
        name,
        opened,
        incident.opened_at,
        received,
        stamped.since,
        stamped.late or None,
        received_when if stamped.late else None,
    )
