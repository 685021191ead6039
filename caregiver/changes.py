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

from caregiver.storage import StoredEvent


@dataclass(frozen=True, slots=True)
class DeviceChanged:
    """The device's card changed (availability, state, latest event, open alerts, ack)."""

    device_id: str


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


Change = DeviceChanged | EventStored | SessionStored


def encode(change: Change, origin: str) -> str:
    """``change`` as another instance reads it; ``origin`` names the instance that made it."""
    fields: dict[str, str] = {"origin": origin, "device_id": change.device_id}
    if isinstance(change, DeviceChanged):
        fields["kind"] = "device"
    elif isinstance(change, EventStored):
        fields.update(kind="event", event_id=change.event_id)
    else:
        fields.update(kind="session", session_id=change.session_id)
    return json.dumps(fields, separators=(",", ":"))


def decode(text: str) -> tuple[str, Change] | None:
    """The origin and the change :func:`encode` wrote; None for anything else."""
    try:
        fields = json.loads(text)
        origin, kind, device_id = fields["origin"], fields["kind"], fields["device_id"]
        if kind == "device":
            return origin, DeviceChanged(device_id)
        if kind == "event":
            return origin, EventStored(device_id, fields["event_id"])
        if kind == "session":
            return origin, SessionStored(device_id, fields["session_id"])
    except (ValueError, KeyError, TypeError):
        pass
    return None
