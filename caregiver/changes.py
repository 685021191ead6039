"""What changed in the store, as ingestion and acknowledgements report it to the live feed.

Ingestion calls ``on_change`` after each commit; the dashboard's feed
(:mod:`caregiver.routes.stream`) renders the card or timeline row it concerns and
pushes it to every open browser. Instances sharing a PostgreSQL database tell each
other their changes (:func:`encode` / :func:`decode`, over ``NOTIFY``), so a caregiver
connected to one sees what another ingested.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import msgspec

from caregiver.storage import StoredEvent

ROW_LIMIT = 2000
"""Bytes an announced change may take with its event's row *as a notification carries it*
(JSON-quoted: each non-ASCII character escaped to 6 or 12 bytes); a longer one (a long
reason, many figures, a reason in Japanese) goes without it, and the other instances read
the row. A notification holds a few thousand (:data:`caregiver.storage.engines.NOTIFY_LIMIT`):
a message that does not fit would not reach them at all."""


@dataclass(frozen=True, slots=True)
class DeviceChanged:
    """The device's card changed (availability, state, latest event, open alerts, ack)."""

    device_id: str
    incident: str | None = None
    """An incident of the device whose row in the fleet's "Recent alerts" changed, perhaps not
    the card's newest (an older close the treadmill confirmed after a newer incident opened:
    the feed sent only the card's incident's row, and the older one's said "not yet confirmed
    by the treadmill" until the page was loaded again)."""


@dataclass(frozen=True, slots=True)
class EventStored:
    """A new event, or an event's acknowledgement."""

    device_id: str
    event_id: str
    row: StoredEvent | None = field(default=None, compare=False)
    """The event as stored, when the one who stored it has it at hand (ingest of a new
    event): the feed sends it without reading it back (None: the feed reads the store)."""


@dataclass(frozen=True, slots=True)
class SessionStored:
    """A guided-session summary stored or replaced (the progress page reloads)."""

    device_id: str
    session_id: str


@dataclass(frozen=True, slots=True)
class StageChanged:
    """A walker's progression as the device keeps it (its retained ``stage/<walker>``) changed
    or was cleared: the plan page shows it again in place, their progress page reloads."""

    device_id: str
    walker: str


Change = DeviceChanged | EventStored | SessionStored | StageChanged


def encode(change: Change, origin: str) -> str:
    """``change`` as another instance reads it; ``origin`` names the instance that made it.
    A new event goes with its row (as its ingest stored it), when it is short enough: the
    other instances send it to their browsers without reading it back (in a burst, half of
    each instance's events are the other's: a read of each take, on the feed's thread, while
    the rows waited)."""
    fields: dict[str, Any] = {"origin": origin, "device_id": change.device_id}
    if isinstance(change, DeviceChanged):
        fields["kind"] = "device"
        if change.incident is not None:
            fields["incident"] = change.incident
    elif isinstance(change, EventStored):
        fields.update(kind="event", event_id=change.event_id)
        if change.row is not None:  # msgspec: a fraction of json.dumps's time (ingest's thread)
            text = _encoder.encode({**fields, "row": change.row}).decode()
            if len(text) <= ROW_LIMIT and carried_size(text) <= ROW_LIMIT:  # cheap test first
                return text
    elif isinstance(change, StageChanged):
        fields.update(kind="stage", walker=change.walker)
    else:
        fields.update(kind="session", session_id=change.session_id)
    return _encoder.encode(fields).decode()


_encoder = msgspec.json.Encoder()


def carried_size(message: str) -> int:
    """The bytes ``message`` takes in a notification's JSON list (quoted and escaped as
    ``json.dumps`` does, non-ASCII as ``\\uXXXX``), and its separating comma."""
    return len(json.dumps(message)) + 1


def decode(text: str) -> tuple[str, Change] | None:
    """The origin and the change :func:`encode` wrote; None for anything else."""
    try:
        fields = json.loads(text)
        origin, kind, device_id = fields["origin"], fields["kind"], fields["device_id"]
        if kind == "device":
            incident = fields.get("incident")
            return origin, DeviceChanged(device_id, incident if isinstance(incident, str) else None)
        if kind == "event":
            event_id = fields["event_id"]
            return origin, EventStored(device_id, event_id, _row(fields, device_id, event_id))
        if kind == "session":
            return origin, SessionStored(device_id, fields["session_id"])
        if kind == "stage":
            return origin, StageChanged(device_id, fields["walker"])
    except (ValueError, KeyError, TypeError):
        pass
    return None


def _row(fields: dict[str, Any], device_id: str, event_id: str) -> StoredEvent | None:
    """The event's row an announcement carries, if it has a valid one of that event (None: the
    feed reads it from the database, as for an announcement without one)."""
    if "row" not in fields:
        return None
    try:
        row = msgspec.convert(fields["row"], StoredEvent)
    except msgspec.ValidationError:
        return None
    return row if (row.id, row.device_id) == (event_id, device_id) else None
