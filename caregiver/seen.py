"""What an Acknowledge button's page showed, and what an acknowledgement left open.

An acknowledgement closes only what the caregiver saw (issue 14). Every
Acknowledge form says what its page showed: the open incident it tells of and
that incident's newest alert event (``incident``, ``seen``), and on a card the
newest open alert outside any incident it showed (``alerts``: a monitor gone
offline while armed). The live feed re-renders a card with each change, so its
fields stay current. The service closes the incident only if no event that
pages (:meth:`caregiver.alerts.Alerting.pages`) joined it after the one seen;
anything newer that pages — and, from a card, any other open alert of the
device — stays open and escalating, and the answer says so in plain words
(:func:`message`): JSON 409 to the page's script, a redirect back to the page
with a notice (:func:`notice`) to a plain form post. A post that says nothing
of what was shown (a page from before this, a script) closes nothing and is
answered the same way ("unsaid").

"Newest" is the order the store picks an incident's newest critical event by
(``_NEWEST_CRITICAL`` in :mod:`caregiver.storage.sql`): the device's sequence,
then arrival, then id. Nothing here reads the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from caregiver.storage import Incident, StoredEvent
from caregiver.story import OPEN_TITLE, closed_earlier
from core.protocol.events import INCIDENT_TYPES

ALERT_EVENTS = frozenset(t.value for t in INCIDENT_TYPES)
"""Event types that open or worsen an incident: what a seen marker counts."""

FIELD_LIMIT = 128
"""Characters a form field may have (an id is 32)."""

_SAID = ("incident", "seen", "alerts")

OFFLINE = "offline"
"""The kind of an alert outside any incident: the monitor went offline while armed."""

_STILL_OPEN = OPEN_TITLE
"""What a notice calls an alert left open (the card's words for an open incident, and
:data:`OFFLINE`'s)."""

_NOTICE_KINDS = 8
"""Kinds a notice's address names at most."""


@dataclass(frozen=True, slots=True)
class Seen:
    """What a page's Acknowledge form said it showed."""

    incident: str | None = None
    """The open incident the page told of (None: none, or on an event page, its event's)."""
    event: str | None = None
    """That incident's newest alert event the page showed ("" none, None not said)."""
    alerts: int | None = None
    """A card's newest open alert outside any incident (None: none shown)."""
    said: bool = True
    """False: the post named nothing of what was shown (an old page, a script)."""


def seen_from(form: Mapping[str, object]) -> Seen:
    """The fields of an Acknowledge form; :class:`ValueError` naming the field for a bad one."""
    values: dict[str, str] = {}
    for name in _SAID:
        value = form.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > FIELD_LIMIT or not value.isprintable():
            raise ValueError(f"{name}: at most {FIELD_LIMIT} printable characters")
        values[name] = value.strip()
    alerts: int | None = None
    if values.get("alerts"):
        try:
            alerts = int(values["alerts"])
        except ValueError:
            raise ValueError("alerts: the id of an alert (a whole number)") from None
    return Seen(
        incident=values.get("incident") or None,
        event=values.get("seen"),
        alerts=alerts,
        said=bool(values),
    )


def newest_first(event: StoredEvent) -> tuple[bool, int, float, str]:
    """Sort key, highest newest: the device's sequence (an event without one after those
    with one), then arrival, then id — ``_NEWEST_CRITICAL``'s order."""
    return (event.seq is not None, event.seq or 0, event.received_at, event.id)


def newest_alert(events: Iterable[StoredEvent]) -> StoredEvent | None:
    """The newest event of ``events`` that opens or worsens an incident (the seen marker)."""
    alerts = [e for e in events if e.type in ALERT_EVENTS]
    return max(alerts, key=newest_first) if alerts else None


def newer_alerts(events: Iterable[StoredEvent], seen: str | None) -> list[StoredEvent]:
    """The alert events of ``events`` newer than the one with id ``seen``: all of them when
    ``seen`` is none of them (nothing shown, or something else)."""
    alerts = [e for e in events if e.type in ALERT_EVENTS]
    marker = next((e for e in alerts if e.id == seen), None)
    if marker is None:
        return alerts
    mark = newest_first(marker)
    return [e for e in alerts if newest_first(e) > mark]


@dataclass(frozen=True, slots=True)
class StillOpen:
    """An alert an acknowledgement left open: newer than what the page showed."""

    kind: str
    """Its event's type (``offline`` for a monitor gone offline while armed)."""
    link: str
    """Where the caregiver looks at it."""
    incident: str | None = None

    @property
    def what(self) -> str:
        return _STILL_OPEN.get(self.kind, self.kind.replace("_", " ").capitalize())


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """What an acknowledgement closed, and what it left open."""

    closed: list[str] = field(default_factory=list)
    """Incidents closed (ids)."""
    alerts: list[int] = field(default_factory=list)
    """Alerts outside incidents closed (ids)."""
    still_open: list[StillOpen] = field(default_factory=list)
    said: bool = True
    earlier: str = ""
    """The incident the page showed was closed before this acknowledgement arrived (another
    caregiver's at the same moment, the walker's I'm OK): who closed it and how
    (:func:`caregiver.story.closed_earlier`), for the page to say instead of "Acknowledged"."""
    earlier_incident: str = ""
    """That incident's id: a plain form post is sent back with it (``earlier=``), and the page
    reads who closed it from the store, never from the address (:func:`earlier_notice`)."""
    waiting: bool = False
    """Closed here while the service had no broker link: the device's ``ack`` waits for the
    broker (:meth:`caregiver.service.CaregiverService.acknowledge_seen`), and the answer
    says so rather than let "acknowledged" read as "the treadmill knows"."""

    @property
    def outcome(self) -> str:
        """``done``, ``partial`` (closed what was seen, something newer is open), ``refused``
        (closed nothing: something newer) or ``unsaid`` (the post said nothing)."""
        if not self.said:
            return "unsaid"
        if not self.still_open:
            return "done"
        return "partial" if self.closed or self.alerts else "refused"

    def as_json(self) -> dict[str, object]:
        answer: dict[str, object] = {
            "ok": self.outcome == "done",
            "outcome": self.outcome,
            "acknowledged": self.closed,
        }
        if self.earlier:
            answer["earlier"] = self.earlier
        if self.outcome != "done":
            answer["still_open"] = [
                {"what": s.what, "kind": s.kind, "incident": s.incident, "link": s.link}
                for s in self.still_open
            ]
        if self.outcome != "done" or self.waiting:
            if self.waiting:
                answer["device"] = "waiting"
            answer["message"] = message(
                self.outcome, [s.kind for s in self.still_open], self.waiting
            )
        return answer

    @property
    def noticed(self) -> bool:
        """Whether the page needs a notice (a plain form post is sent back with one): also
        when someone closed the incident first, which the page's script says from the JSON
        answer and a page without scripts said nothing of."""
        return self.outcome != "done" or self.waiting or bool(self.earlier_incident)

    def query(self) -> str:
        """The notice's address part for the page a plain form post is sent back to."""
        kinds = list(dict.fromkeys(s.kind for s in self.still_open))[:_NOTICE_KINDS]
        waiting = [("device", "waiting")] if self.waiting else []
        earlier = [("earlier", self.earlier_incident)] if self.earlier_incident else []
        return urlencode([("ack", self.outcome), *waiting, *earlier, *(("open", k) for k in kinds)])


WAITING = "the treadmill will be told when the connection is back."
"""What an acknowledgement made without a broker link adds: closed here, not yet there."""


def message(outcome: str, kinds: Sequence[str], waiting: bool = False) -> str:
    """The notice in plain words ("" for an acknowledgement that closed all it was asked and
    told the device); ``waiting``: what it closed is not yet told to the device."""
    if outcome == "done" and waiting:
        return f"Acknowledged — {WAITING}"
    said = _still_open_words(outcome, kinds)
    if waiting and outcome == "partial":
        return f"{said} What you saw is closed here; {WAITING}"
    return said


def _still_open_words(outcome: str, kinds: Sequence[str]) -> str:
    if outcome == "unsaid":
        return (
            "Not acknowledged: the page did not say which alert you saw (it was older than "
            "the service). Look at it again, then acknowledge."
        )
    words = [_STILL_OPEN.get(k, k.replace("_", " ").capitalize()) for k in dict.fromkeys(kinds)]
    if outcome not in ("partial", "refused") or not words:
        return ""
    said = (
        f"A new alert arrived before your click: {words[0]} — it is still open. "
        "Look at it, then acknowledge."
        if len(words) == 1
        else f"New alerts arrived before your click: {'; '.join(words)} — they are still "
        "open. Look at them, then acknowledge."
    )
    return f"Acknowledged what you saw. {said}" if outcome == "partial" else said


def notice(query: Mapping[str, str], kinds: Sequence[str], earlier: str = "") -> str:
    """The notice a page shows after a plain form post was sent back to it (its address:
    ``ack`` the outcome, ``device=waiting`` when the device is not yet told, ``open`` each
    kind left open; kinds not known here are left out). ``earlier``: who had closed the
    incident first, in words (:func:`earlier_notice`), said before the rest."""
    outcome = query.get("ack", "")
    known = [k for k in kinds if k in _STILL_OPEN][:_NOTICE_KINDS]
    said = message(outcome, known, query.get("device") == "waiting")
    return f"{earlier} {said}".strip() if outcome else ""


def earlier_notice(incident: Incident | None, me: str, name: str) -> str:
    """What a page without scripts says after ``me``'s acknowledgement came second (its
    address's ``earlier``): "Already acknowledged by ann on the dashboard: the alert on Dad's
    treadmill is closed.", as the page's script says it. From the stored incident — who
    closed it, as it stands — so an address cannot put words in the page; nothing for an
    incident that is not closed (reopened since) or not found."""
    if incident is None or incident.open:
        return ""
    said = closed_earlier(incident.closed_by, incident.closed_via, me)
    return f"{said}: the alert on {name} is closed."
